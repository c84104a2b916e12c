// AVX-512 (BW) variant of the DULUT family: 32 int16 lanes per zmm, every table lookup one vpermi2w
// (64 int16 entries in two registers), the warp product one vpmullw + vpmulhuw pair, the value
// interpolation one vpmulhrsw (see lut.h for why that is exactly rshift_round), tails with masked
// loads and stores. int8 inputs (n >= 256): the 256 possible outputs are first evaluated by the
// same code (8 vectors), then every element is one 256-entry lookup (4 vpermi2w + 3 blends):
// the same bytes, about half the work per element. Bit-exact to ref.cc.
#include <immintrin.h>

#include "fq/kernels/lut.h"

namespace fq::k {
namespace {

inline __m512i lookup(__m512i idx, __m512i lo, __m512i hi) {
  return _mm512_permutex2var_epi16(lo, idx, hi);
}

struct Eval {
  __m512i b1lo, b1hi, d1lo, d1hi, b2lo, b2hi, d2lo, d2hi, m15, round_mul;
  __m128i c_s1, c_f1, c_F, c_F1, c_k2m1;
  bool round;

  explicit Eval(const LutTable& t) {
    b1lo = _mm512_loadu_si512(t.b1);
    b1hi = _mm512_loadu_si512(t.b1 + 32);
    d1lo = _mm512_loadu_si512(t.d1);
    d1hi = _mm512_loadu_si512(t.d1 + 32);
    b2lo = _mm512_loadu_si512(t.b2);
    b2hi = _mm512_loadu_si512(t.b2 + 32);
    d2lo = _mm512_loadu_si512(t.d2);
    d2hi = _mm512_loadu_si512(t.d2 + 32);
    const int s1 = t.in_bits - t.k1, F = 16 - t.k2;
    c_s1 = _mm_cvtsi32_si128(s1);
    c_f1 = _mm_cvtsi32_si128(16 - s1);
    c_F = _mm_cvtsi32_si128(F);
    c_F1 = _mm_cvtsi32_si128(F + 1);
    c_k2m1 = _mm_cvtsi32_si128(t.k2 - 1);
    m15 = _mm512_set1_epi16(0x7fff);
    round = t.g > 0;
    round_mul = _mm512_set1_epi16(static_cast<int16_t>(1 << (15 - (round ? t.g : 1))));
  }

  // u: 32 offset-binary inputs -> 32 int16 results before the output saturation.
  inline __m512i operator()(__m512i u) const {
    const __m512i i = _mm512_srl_epi16(u, c_s1);
    const __m512i f1 = _mm512_sll_epi16(u, c_f1);  // Q16 fraction of the warp segment
    const __m512i d1 = lookup(i, d1lo, d1hi);
    const __m512i lo = _mm512_mullo_epi16(d1, f1), hi = _mm512_mulhi_epu16(d1, f1);
    const __m512i p = _mm512_add_epi16(lookup(i, b1lo, b1hi), hi);
    const __m512i j = _mm512_srl_epi16(p, c_F);
    const __m512i q = _mm512_or_si512(_mm512_and_si512(_mm512_sll_epi16(p, c_k2m1), m15),
                                      _mm512_srl_epi16(lo, c_F1));
    const __m512i v = _mm512_add_epi16(lookup(j, b2lo, b2hi), _mm512_mulhrs_epi16(lookup(j, d2lo, d2hi), q));
    return round ? _mm512_mulhrs_epi16(v, round_mul) : v;
  }
};

template <bool kOut8>
inline void store(void* yv, int64_t k, int64_t rem, __mmask32 m, __m512i v) {
  if (kOut8) {
    int8_t* yp = static_cast<int8_t*>(yv) + k;
    const __m256i y8 = _mm512_maskz_cvtsepi16_epi8(~__mmask32{0}, v);  // (maskz: no GCC 12 warning)
    if (rem >= 32) _mm256_storeu_si256(reinterpret_cast<__m256i*>(yp), y8);
    else _mm256_mask_storeu_epi8(yp, m, y8);
  } else {
    int16_t* yp = static_cast<int16_t*>(yv) + k;
    if (rem >= 32) _mm512_storeu_si512(yp, v);
    else _mm512_mask_storeu_epi16(yp, m, v);
  }
}

inline __mmask32 tail_mask(int64_t rem) {
  return rem >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint64_t{1} << rem) - 1);
}

template <bool kOut8>
void run_i8(const LutTable& t, const int8_t* x, int64_t n, void* y) {
  const Eval ev(t);
  const __m512i offset = _mm512_set1_epi16(128);
  if (n < 256) {  // direct evaluation
    for (int64_t k = 0; k < n; k += 32) {
      const int64_t rem = n - k;
      const __mmask32 m = tail_mask(rem);
      const __m256i x8 = rem >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k))
                                   : _mm256_maskz_loadu_epi8(m, x + k);
      store<kOut8>(y, k, rem, m, ev(_mm512_add_epi16(_mm512_cvtepi8_epi16(x8), offset)));
    }
    return;
  }
  // The 256 outputs, indexed by u = x + 128, in 8 registers of 32.
  __m512i tab[8];
  const __m512i iota = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int c = 0; c < 8; ++c) tab[c] = ev(_mm512_add_epi16(iota, _mm512_set1_epi16(static_cast<int16_t>(32 * c))));
  const __m512i bit6 = _mm512_set1_epi16(64), bit7 = _mm512_set1_epi16(128);
  for (int64_t k = 0; k < n; k += 32) {
    const int64_t rem = n - k;
    const __mmask32 m = tail_mask(rem);
    const __m256i x8 = rem >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k))
                                 : _mm256_maskz_loadu_epi8(m, x + k);
    const __m512i u = _mm512_add_epi16(_mm512_cvtepi8_epi16(x8), offset);
    const __mmask32 m6 = _mm512_test_epi16_mask(u, bit6), m7 = _mm512_test_epi16_mask(u, bit7);
    const __m512i a = _mm512_mask_blend_epi16(m6, lookup(u, tab[0], tab[1]), lookup(u, tab[2], tab[3]));
    const __m512i b = _mm512_mask_blend_epi16(m6, lookup(u, tab[4], tab[5]), lookup(u, tab[6], tab[7]));
    store<kOut8>(y, k, rem, m, _mm512_mask_blend_epi16(m7, a, b));
  }
}

template <bool kOut8>
void run_i16(const LutTable& t, const int16_t* x, int64_t n, void* y) {
  const Eval ev(t);
  const __m512i offset = _mm512_set1_epi16(static_cast<int16_t>(0x8000));
  for (int64_t k = 0; k < n; k += 32) {
    const int64_t rem = n - k;
    const __mmask32 m = tail_mask(rem);
    const __m512i xv = rem >= 32 ? _mm512_loadu_si512(x + k) : _mm512_maskz_loadu_epi16(m, x + k);
    store<kOut8>(y, k, rem, m, ev(_mm512_xor_si512(xv, offset)));
  }
}

void avx512_run(const LutTable& t, const void* x, int64_t n, void* y) {
  if (t.in_bits == 8) {
    if (t.out_bits == 8) run_i8<true>(t, static_cast<const int8_t*>(x), n, y);
    else run_i8<false>(t, static_cast<const int8_t*>(x), n, y);
  } else {
    if (t.out_bits == 8) run_i16<true>(t, static_cast<const int16_t*>(x), n, y);
    else run_i16<false>(t, static_cast<const int16_t*>(x), n, y);
  }
}

}  // namespace

extern const LutKernel kLutAvx512 = {Isa::avx512, "avx512", avx512_run};

}  // namespace fq::k
