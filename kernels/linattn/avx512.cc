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
  // shift_s(p, sh) for 1 <= sh <= 62: (p >> sh) + bit sh-1 of p.
  static __m512i shr_round(__m512i p, __m128i n1, __m128i n0) {
    return _mm512_add_epi64(_mm512_sra_epi64(p, n1), _mm512_and_si512(_mm512_srl_epi64(p, n0), _mm512_set1_epi64(1)));
  }
  // 1 <= sh <= 62. X = shift_s(kk * u, sh); s = sat32(s + X); bt = rshift_round(U * sat32(X), 16).
  static void write_bonus(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t U, int64_t* bt) {
    const __m512i k = _mm512_set1_epi64(kk), uu = _mm512_set1_epi64(U), one = _mm512_set1_epi64(1);
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m128i n1 = _mm_cvtsi32_si128(sh), n0 = _mm_cvtsi32_si128(sh - 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i x = shr_round(_mm512_mul_epi32(load8x32(u + j), k), n1, n0);
      store8x32(s + j, _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(load8x32(s + j), x), lo), hi));
      const __m512i p = _mm512_mul_epi32(_mm512_min_epi64(_mm512_max_epi64(x, lo), hi), uu);
      _mm512_storeu_si512(bt + j, _mm512_add_epi64(_mm512_srai_epi64(p, 16),
                                                   _mm512_and_si512(_mm512_srli_epi64(p, 15), one)));
    }
    ScalarOps::write_bonus(s + j, n - j, kk, u + j, sh, U, bt + j);
  }
  // o += q * bt (vpmullq: |q * bt| <= 2^51).
  static void axpy(int64_t* o, int64_t n, int64_t q, const int64_t* bt) {
    const __m512i qv = _mm512_set1_epi64(q);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
      _mm512_storeu_si512(o + j, _mm512_add_epi64(_mm512_loadu_si512(o + j),
                                                  _mm512_mullo_epi64(_mm512_loadu_si512(bt + j), qv)));
    ScalarOps::axpy(o + j, n - j, q, bt + j);
  }
  // 1 <= sh, shb <= 62. s = sat32(s + clamp(shift_s(kk * u, sh), +-2^40) + clamp(shift_s(bb * w, shb), +-2^40)).
  static void write2(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t bb, const int32_t* w, int shb) {
    const __m512i k = _mm512_set1_epi64(kk), b = _mm512_set1_epi64(bb);
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m512i l40 = _mm512_set1_epi64(-kL40), h40 = _mm512_set1_epi64(kL40);
    const __m128i n1 = _mm_cvtsi32_si128(sh), n0 = _mm_cvtsi32_si128(sh - 1);
    const __m128i m1 = _mm_cvtsi32_si128(shb), m0 = _mm_cvtsi32_si128(shb - 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i x = shr_round(_mm512_mul_epi32(load8x32(u + j), k), n1, n0);
      const __m512i y = shr_round(_mm512_mul_epi32(load8x32(w + j), b), m1, m0);
      const __m512i r = _mm512_add_epi64(_mm512_add_epi64(load8x32(s + j), _mm512_min_epi64(_mm512_max_epi64(x, l40), h40)),
                                         _mm512_min_epi64(_mm512_max_epi64(y, l40), h40));
      store8x32(s + j, _mm512_min_epi64(_mm512_max_epi64(r, lo), hi));
    }
    ScalarOps::write2(s + j, n - j, kk, u + j, sh, bb, w + j, shb);
  }
};

}  // namespace
}  // namespace linattn

extern const LinattnKernel kLinattnAvx512 = {Isa::avx512, "avx512", linattn::heads_impl<linattn::Avx512Ops>, linattn::out_impl};

}  // namespace fq::k
