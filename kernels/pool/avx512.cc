// AVX-512 global average pool: 16 channels per zmm, i32 sums (vpmovzxbd + vpaddd, wrapping like
// the reference), then the reference epilogue on even/odd i64 lanes: vpmuldq (exact), rounding
// add, vpsraq, 64-bit clamp, narrow, masked store for the channel tail.
// GCC 12 false positive inside its own AVX-512 intrinsics headers (GCC PR 105593, fixed in 13).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "fq/kernels/pool.h"

namespace fq::k {
namespace {

void gap_avx512(const uint8_t* x, int n, int hw, int c, int32_t mult, int shift, int32_t lo,
                int32_t hi, OutType out, void* y) {
  const __m512i m = _mm512_set1_epi64(mult);  // vpmuldq reads the low (signed) dword
  const __m512i rnd = _mm512_set1_epi64(shift > 0 ? int64_t{1} << (shift - 1) : 0);
  const __m512i sh = _mm512_set1_epi64(shift);   // a per-lane count (vpsravq: one uop)
  const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
  for (int b = 0; b < n; ++b) {
    const uint8_t* xb = x + int64_t{b} * hw * c;
    for (int c0 = 0; c0 < c; c0 += 16) {
      const int live = c - c0 < 16 ? c - c0 : 16;
      const __mmask16 mask = __mmask16((1u << live) - 1);
      __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
      int p = 0;
      for (; p + 1 < hw; p += 2) {  // two independent sums, combined below (i32 addition commutes)
        s0 = _mm512_add_epi32(
            s0, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, xb + int64_t{p} * c + c0)));
        s1 = _mm512_add_epi32(
            s1, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, xb + int64_t{p + 1} * c + c0)));
      }
      if (p < hw)
        s0 = _mm512_add_epi32(
            s0, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, xb + int64_t{p} * c + c0)));
      const __m512i sum = _mm512_add_epi32(s0, s1);
      __m512i ve = _mm512_mul_epi32(sum, m), vo = _mm512_mul_epi32(_mm512_srli_epi64(sum, 32), m);
      ve = _mm512_srav_epi64(_mm512_add_epi64(ve, rnd), sh);
      vo = _mm512_srav_epi64(_mm512_add_epi64(vo, rnd), sh);
      ve = _mm512_min_epi64(_mm512_max_epi64(ve, vlo), vhi);
      vo = _mm512_min_epi64(_mm512_max_epi64(vo, vlo), vhi);
      const __m512i v = _mm512_mask_blend_epi32(0xaaaa, ve, _mm512_slli_epi64(vo, 32));
      const int64_t i = int64_t{b} * c + c0;
      switch (out) {  // clamped into the type: truncating narrows are exact
        case OutType::u8:
        case OutType::i8:
          _mm512_mask_cvtepi32_storeu_epi8(static_cast<int8_t*>(y) + i, mask, v);
          break;
        case OutType::i16:
          _mm512_mask_cvtepi32_storeu_epi16(static_cast<int16_t*>(y) + i, mask, v);
          break;
        case OutType::i32:
          _mm512_mask_storeu_epi32(static_cast<int32_t*>(y) + i, mask, v);
          break;
      }
    }
  }
}

}  // namespace

extern const PoolKernel kPoolAvx512 = {Isa::avx512, "avx512", gap_avx512};

}  // namespace fq::k
