// AVX-512 variant of the linattn family: the state-row primitives on 8 int64 lanes (vpmuldq,
// vpsraq, vpminsq / vpmaxsq, vpmovqd); the driver and the O(dv) value side are the shared ones
// (linattn_internal.h). Bit-exact to ref.cc: the same integer formulas, exact int64 sums.
#include <immintrin.h>

// GCC 12 reports the `_mm512_undefined_*` placeholders inside the conversion / shift intrinsics as
// "may be used uninitialized" once inlined here (a false positive: every lane is written).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "fq/kernels/linattn.h"
#include "linattn_internal.h"

namespace fq::k {
namespace linattn {
namespace {

inline __m512i load8x32(const int32_t* p) {
  return _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline void store8x32(int32_t* p, __m512i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi64_epi32(v));
}

struct Avx512Ops {
  static void gate(int32_t* s, int64_t n, int64_t G) {
    const __m512i g = _mm512_set1_epi64(G);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i p = _mm512_mul_epi32(load8x32(s + j), g);
      // rshift_round(p, 30) = (p >> 30) + bit 29 of p.
      const __m512i r = _mm512_add_epi64(_mm512_srai_epi64(p, 30),
                                         _mm512_and_si512(_mm512_srli_epi64(p, 29), _mm512_set1_epi64(1)));
      store8x32(s + j, r);
    }
    ScalarOps::gate(s + j, n - j, G);
  }
  static void acc(const int32_t* S, int64_t dk, int64_t dv, const int16_t* x, int64_t* acc) {
    int64_t j = 0;
    for (; j + 16 <= dv; j += 16) {
      __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
      for (int64_t i = 0; i < dk; ++i) {
        const __m512i xv = _mm512_set1_epi64(x[i]);
        a0 = _mm512_add_epi64(a0, _mm512_mul_epi32(load8x32(S + i * dv + j), xv));
        a1 = _mm512_add_epi64(a1, _mm512_mul_epi32(load8x32(S + i * dv + j + 8), xv));
      }
      _mm512_storeu_si512(acc + j, a0);
      _mm512_storeu_si512(acc + j + 8, a1);
    }
    for (; j + 8 <= dv; j += 8) {
      __m512i a0 = _mm512_setzero_si512();
      for (int64_t i = 0; i < dk; ++i)
        a0 = _mm512_add_epi64(a0, _mm512_mul_epi32(load8x32(S + i * dv + j), _mm512_set1_epi64(x[i])));
      _mm512_storeu_si512(acc + j, a0);
    }
    ScalarOps::acc_cols(S, dk, dv, x, acc, j);
  }
  static void write(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh) {
    const __m512i k = _mm512_set1_epi64(kk), one = _mm512_set1_epi64(1);
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m128i n1 = _mm_cvtsi32_si128(sh), n0 = _mm_cvtsi32_si128(sh - 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i p = _mm512_mul_epi32(load8x32(u + j), k);
      const __m512i d = _mm512_add_epi64(_mm512_sra_epi64(p, n1), _mm512_and_si512(_mm512_srl_epi64(p, n0), one));
      const __m512i r = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(load8x32(s + j), d), lo), hi);
      store8x32(s + j, r);
    }
    ScalarOps::write(s + j, n - j, kk, u + j, sh);
  }
};

}  // namespace
}  // namespace linattn

extern const LinattnKernel kLinattnAvx512 = {Isa::avx512, "avx512", linattn::heads_impl<linattn::Avx512Ops>, linattn::out_impl};

}  // namespace fq::k
