// AVX2 global average pool: 8 channels per ymm (vpmovzxbd + vpaddd, i32 wrapping like the
// reference), epilogue on even/odd i64 lanes with vpmuldq; AVX2 lacks vpsraq and vpmaxsq, so the
// arithmetic shift is ~srl(~x) for negative lanes and the clamp uses vpcmpgtq + blends. A channel
// tail narrower than 8 goes through a zero-padded copy of each pixel's tail bytes.
#include <immintrin.h>

#include <cstring>

#include "fq/kernels/pool.h"

namespace fq::k {
namespace {

__m256i sra64(__m256i x, __m128i s) {
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
  return _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(x, sign), s), sign);
}

__m256i clamp64(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

__m256i load8(const uint8_t* p, int live) {
  if (live == 8) return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  uint8_t t[8] = {};
  std::memcpy(t, p, size_t(live));
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t)));
}

void gap_avx2(const uint8_t* x, int n, int hw, int c, int32_t mult, int shift, int32_t lo,
              int32_t hi, OutType out, void* y) {
  const __m256i m = _mm256_set1_epi64x(mult);
  const __m256i rnd = _mm256_set1_epi64x(shift > 0 ? int64_t{1} << (shift - 1) : 0);
  const __m128i sh = _mm_cvtsi32_si128(shift);
  const __m256i vlo = _mm256_set1_epi64x(lo), vhi = _mm256_set1_epi64x(hi);
  for (int b = 0; b < n; ++b) {
    const uint8_t* xb = x + int64_t{b} * hw * c;
    for (int c0 = 0; c0 < c; c0 += 8) {
      const int live = c - c0 < 8 ? c - c0 : 8;
      __m256i sum = _mm256_setzero_si256();
      for (int p = 0; p < hw; ++p)
        sum = _mm256_add_epi32(sum, load8(xb + int64_t{p} * c + c0, live));
      __m256i ve = _mm256_mul_epi32(sum, m), vo = _mm256_mul_epi32(_mm256_srli_epi64(sum, 32), m);
      ve = clamp64(sra64(_mm256_add_epi64(ve, rnd), sh), vlo, vhi);
      vo = clamp64(sra64(_mm256_add_epi64(vo, rnd), sh), vlo, vhi);
      const __m256i v = _mm256_blend_epi32(ve, _mm256_slli_epi64(vo, 32), 0xaa);
      // Clamped into the type: the saturating packs are exact narrows.
      const __m128i w16 =
          _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      alignas(32) uint8_t buf[32];
      size_t esize = 1;
      switch (out) {
        case OutType::u8:
          _mm_storel_epi64(reinterpret_cast<__m128i*>(buf), _mm_packus_epi16(w16, w16));
          break;
        case OutType::i8:
          _mm_storel_epi64(reinterpret_cast<__m128i*>(buf), _mm_packs_epi16(w16, w16));
          break;
        case OutType::i16:
          _mm_store_si128(reinterpret_cast<__m128i*>(buf), w16), esize = 2;
          break;
        case OutType::i32:
          _mm256_store_si256(reinterpret_cast<__m256i*>(buf), v), esize = 4;
          break;
      }
      std::memcpy(static_cast<uint8_t*>(y) + (int64_t{b} * c + c0) * esize, buf,
                  esize * size_t(live));
    }
  }
}

}  // namespace

extern const PoolKernel kPoolAvx2 = {Isa::avx2, "avx2", gap_avx2};

}  // namespace fq::k
