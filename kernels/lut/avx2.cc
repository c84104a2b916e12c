// AVX2 variant of the DULUT family. AVX2 has no 16-bit permute, so the tables are re-laid out per
// call as (base | rise << 16) int32 pairs and each stage is one vpgatherdd per 8 elements; the
// arithmetic runs in 32-bit lanes (vpmulld products are exact: |d * q| < 2^30). 16 elements per
// iteration, the tail through the scalar reference. int8 input with n >= kTableMin: the 256
// outputs are evaluated once per call and gathered. Bit-exact to ref.cc.
#include <immintrin.h>

#include "fq/kernels/lut.h"

namespace fq::k {
namespace {

constexpr int64_t kTableMin = 1024;  // int8 input: elements from which the per-call table pays

template <bool kIn8, bool kOut8>
void run_impl(const LutTable& t, const void* xv, int64_t n, void* yv) {
  alignas(32) int32_t pair1[kLutMaxEntries], pair2[kLutMaxEntries];
  for (int e = 0; e < kLutMaxEntries; ++e) {
    pair1[e] = int32_t(uint32_t{t.b1[e]} | (uint32_t{t.d1[e]} << 16));
    pair2[e] = int32_t(uint32_t(uint16_t(t.b2[e])) | (uint32_t(uint16_t(t.d2[e])) << 16));
  }
  const int s1 = t.in_bits - t.k1, F = 16 - t.k2, G = t.g;
  const __m128i c_s1 = _mm_cvtsi32_si128(s1), c_G = _mm_cvtsi32_si128(G);
  const __m256i m1 = _mm256_set1_epi32((1 << s1) - 1);
  const __m128i c_f1 = _mm_cvtsi32_si128(16 - s1), c_jF = _mm_cvtsi32_si128(16 + F), c_F1 = _mm_cvtsi32_si128(F + 1);
  const __m256i m15 = _mm256_set1_epi32(0x7fff), h15 = _mm256_set1_epi32(1 << 14);
  const __m256i hG = _mm256_set1_epi32(G > 0 ? 1 << (G - 1) : 0);
  const __m256i offset = _mm256_set1_epi32(1 << (t.in_bits - 1));

  auto eval8 = [&](__m256i x) {  // 8 int32 inputs -> 8 int32 outputs (before saturation)
    const __m256i u = _mm256_add_epi32(x, offset);
    const __m256i i = _mm256_srl_epi32(u, c_s1), f = _mm256_and_si256(u, m1);
    const __m256i q1 = _mm256_i32gather_epi32(pair1, i, 4);
    const __m256i b1 = _mm256_srli_epi32(_mm256_slli_epi32(q1, 16), 16);
    const __m256i d1 = _mm256_srli_epi32(q1, 16);
    // P < 2^32: exact in uint32 (the product < 2^32, the sum wraps back into range).
    const __m256i P = _mm256_add_epi32(_mm256_slli_epi32(b1, 16), _mm256_mullo_epi32(d1, _mm256_sll_epi32(f, c_f1)));
    const __m256i j = _mm256_srl_epi32(P, c_jF);
    const __m256i r = _mm256_and_si256(_mm256_srl_epi32(P, c_F1), m15);
    const __m256i q2 = _mm256_i32gather_epi32(pair2, j, 4);
    const __m256i b2 = _mm256_srai_epi32(_mm256_slli_epi32(q2, 16), 16);
    const __m256i d2 = _mm256_srai_epi32(q2, 16);
    const __m256i v = _mm256_add_epi32(
        b2, _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(d2, r), h15), 15));
    return _mm256_sra_epi32(_mm256_add_epi32(v, hG), c_G);
  };

  int64_t k = 0;
  // int8 input over many elements (the engine's row batches): eval8 once per input value, then
  // one vpgatherdd per 8 elements from the 256-entry table (1 KB, in L1) instead of two
  if (kIn8 && n >= kTableMin) {
    alignas(32) int32_t table[256];
    for (int v = 0; v < 256; v += 8)
      _mm256_store_si256(reinterpret_cast<__m256i*>(table + v), eval8(_mm256_add_epi32(_mm256_set1_epi32(v - 128), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
    const __m256i c128 = _mm256_set1_epi32(128);
    for (; k + 16 <= n; k += 16) {
      const __m128i x8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(xv) + k));
      const __m256i ya = _mm256_i32gather_epi32(table, _mm256_add_epi32(_mm256_cvtepi8_epi32(x8), c128), 4);
      const __m256i yb = _mm256_i32gather_epi32(table, _mm256_add_epi32(_mm256_cvtepi8_epi32(_mm_srli_si128(x8, 8)), c128), 4);
      const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(ya, yb), 0xD8);
      if (kOut8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<int8_t*>(yv) + k),
                         _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int16_t*>(yv) + k), w);
      }
    }
  }
  for (; k + 16 <= n; k += 16) {
    __m256i xa, xb;
    if (kIn8) {
      const __m128i x8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(xv) + k));
      xa = _mm256_cvtepi8_epi32(x8);
      xb = _mm256_cvtepi8_epi32(_mm_srli_si128(x8, 8));
    } else {
      const __m256i x16 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const int16_t*>(xv) + k));
      xa = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(x16));
      xb = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(x16, 1));
    }
    // packs works per 128-bit lane: (a0-3 b0-3 | a4-7 b4-7) -> reorder the 64-bit quarters.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(eval8(xa), eval8(xb)), 0xD8);
    if (kOut8) {
      const __m128i y8 = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<int8_t*>(yv) + k), y8);
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int16_t*>(yv) + k), w);
    }
  }
  for (; k < n; ++k) {
    const int32_t xk = kIn8 ? static_cast<const int8_t*>(xv)[k] : static_cast<const int16_t*>(xv)[k];
    const int32_t yk = lut_eval_one(t, xk);
    if (kOut8) static_cast<int8_t*>(yv)[k] = static_cast<int8_t>(yk);
    else static_cast<int16_t*>(yv)[k] = static_cast<int16_t>(yk);
  }
}

void avx2_run(const LutTable& t, const void* x, int64_t n, void* y) {
  if (t.in_bits == 8) {
    if (t.out_bits == 8) run_impl<true, true>(t, x, n, y);
    else run_impl<true, false>(t, x, n, y);
  } else {
    if (t.out_bits == 8) run_impl<false, true>(t, x, n, y);
    else run_impl<false, false>(t, x, n, y);
  }
}

}  // namespace

extern const LutKernel kLutAvx2 = {Isa::avx2, "avx2", avx2_run};

}  // namespace fq::k
