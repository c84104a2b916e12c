// AVX2 lane helpers shared by the llm, ssm and rwkv families' avx2.cc files: 64-bit lane min / max
// / abs / arithmetic shift (AVX2 has none of them), the one vector form of shift_s, exp_q and
// quantize_row (llm.h). Include only from a file compiled with the avx2 flags (fq_isa_sources ...
// avx2); everything has internal linkage (anonymous namespace), so each including file gets its
// own copy compiled with its own flags and nothing leaks into a baseline file through the ODR.
#pragma once
#if !defined(__AVX2__)
#error "x86_avx2_helpers.h needs the avx2 ISA flags (see cmake/FQIsa.cmake)"
#endif
#include <immintrin.h>

#include <cstdint>

#include "llm_internal.h"

namespace fq::k::avx2h {
namespace {

using V = __m256i;

inline V s64(int64_t x) { return _mm256_set1_epi64x(x); }
inline V zero() { return _mm256_setzero_si256(); }
inline V neg_mask(V x) { return _mm256_cmpgt_epi64(zero(), x); }      // all ones where x < 0
inline V blend(V a, V b, V m) { return _mm256_blendv_epi8(a, b, m); }  // m ? b : a
inline V minv(V a, V b) { return blend(a, b, _mm256_cmpgt_epi64(a, b)); }
inline V maxv(V a, V b) { return blend(a, b, _mm256_cmpgt_epi64(b, a)); }
inline V clampv(V x, int64_t lo, int64_t hi) { return maxv(minv(x, s64(hi)), s64(lo)); }
inline V absv(V x) { return blend(x, _mm256_sub_epi64(zero(), x), neg_mask(x)); }
// Logical shifts of every lane by one count c (counts past 63 give 0, as the xmm-count forms do).
// On Intel the xmm-count vpsrlq / vpsllq are two uops (p01 + p5), the per-lane-count forms one.
inline V srl64(V x, int64_t c) { return _mm256_srlv_epi64(x, s64(c)); }
inline V sll64(V x, int64_t c) { return _mm256_sllv_epi64(x, s64(c)); }
// Arithmetic right shift by 0 < s < 64.
inline V sra(V x, int64_t s) {
  return _mm256_or_si256(srl64(x, s), sll64(neg_mask(x), 64 - s));
}

// shift_s(x, s) per lane, one s for every lane (llm.h: rounding right shift, saturating left
// shift to +-(2^62 - 1), 0 beyond 62).
inline V vshs(V x, int64_t s) {
  if (s == 0) return x;
  if (s > 62) return zero();
  if (s > 0)  // (x >> s) + bit s-1 of x
    return _mm256_add_epi64(sra(x, s), _mm256_and_si256(srl64(x, s - 1), s64(1)));
  const int64_t l = -s;
  const V sat = blend(s64(llm::kSat62), s64(-llm::kSat62), neg_mask(x));
  const V nz = _mm256_xor_si256(_mm256_cmpeq_epi64(x, zero()), s64(-1));
  if (l >= 62) return _mm256_and_si256(sat, nz);
  const V mag = absv(x);  // INT64_MIN stays negative: counted as big
  const V big = _mm256_or_si256(_mm256_cmpgt_epi64(mag, s64((int64_t{1} << (62 - l)) - 1)), neg_mask(mag));
  return blend(sll64(x, l), sat, big);
}

// shift_s(x, s) per lane when nothing saturates: |x| < 2^62 and, for s < 0, |x| 2^-s < 2^62.
// A right shift rounds as ((x + 2^62 + 2^(s-1)) >>> s) - 2^(62-s) (3 ops instead of vshs's 7).
inline V vshs_exact(V x, int64_t s) {
  if (s == 0) return x;
  if (s < 0) return sll64(x, -s);
  if (s > 62) return zero();
  const V add = s64(int64_t((uint64_t{1} << 62) + (uint64_t{1} << (s - 1))));
  return _mm256_sub_epi64(srl64(_mm256_add_epi64(x, add), s), s64(int64_t{1} << (62 - s)));
}

// A 16-entry uint32 table lookup by the low 4 bits of each dword's index (the bits above are
// ignored): vpermd reads the low 3, bit 3 (moved to the sign bit) picks the half.
inline V lookup16(const uint32_t* tab, V idx) {
  const V lo = _mm256_loadu_si256(reinterpret_cast<const V*>(tab));
  const V hi = _mm256_loadu_si256(reinterpret_cast<const V*>(tab + 8));
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(_mm256_permutevar8x32_epi32(lo, idx)),
                                              _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(hi, idx)),
                                              _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28))));
}

// exp_q(-nx, F) per lane for 0 <= nx, 9 <= F <= 24 (llm.h), Q30: x86_avx512_helpers.h's vexpq
// (the fields of t read from u) with lookup16 for vpermd.
template <int F>
inline V vexpq(V nx) {
  static_assert(F > 8 && F <= 24, "F in (8, 24]");
  nx = minv(nx, s64(int64_t{1} << (F + 5)));
  const V u = _mm256_add_epi64(_mm256_mul_epu32(nx, s64(llm::kLog2eQ16)), s64(1 << 15));  // t = u >> 16
  const V n = _mm256_srli_epi64(u, 16 + F);
  const V a = lookup16(kExp2HiQ30, _mm256_srli_epi64(u, 12 + F));
  const V b = lookup16(kExp2LoQ30, _mm256_srli_epi64(u, 8 + F));
  const V P = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(a, b), s64(int64_t{1} << 29)), 30);
  const V r16 = _mm256_and_si256(u, s64(((int64_t{1} << (F - 8)) - 1) << 16));
  const V rc = _mm256_srli_epi64(
      _mm256_add_epi64(_mm256_mul_epu32(r16, s64(kExp2ChordQ32)), s64(int64_t{1} << (F + 7))), F + 8);
  const V v = _mm256_sub_epi64(
      P, _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(P, rc), s64(int64_t{1} << 31)), 32));
  const V half = _mm256_sllv_epi64(s64(1), _mm256_sub_epi64(n, s64(1)));  // n == 0: count -1 -> 0
  return _mm256_srlv_epi64(_mm256_add_epi64(v, half), n);                 // n >= 64 -> 0
}

// sig(zc) of swiglu_v (llm_internal.h) per lane, Q16, for |zc| <= 2^17: x86_avx512_helpers.h's
// vsig, with the signed y * (e >> 16) built from vpmuludq.
inline V vsig(V zc) {
  const V E = _mm256_srli_epi64(vexpq<12>(absv(zc)), 14);
  const V den = _mm256_add_epi64(E, s64(1 << 16));
  const V np = blend(s64(1 << 16), E, neg_mask(zc));
  V y = _mm256_sub_epi64(s64(6063483241), _mm256_mul_epu32(den, s64(30840)));  // in [2^31, 2^32)
  for (int it = 0; it < 2; ++it) {
    const V f = sra(_mm256_sub_epi64(s64(int64_t{1} << 48), _mm256_mul_epu32(den, y)), 16);  // |f| < 2^28
    // y * f: vpmuludq reads f's low half as unsigned (f + 2^32 when f < 0)
    const V yf = _mm256_sub_epi64(_mm256_mul_epu32(y, f), _mm256_and_si256(neg_mask(f), _mm256_slli_epi64(y, 32)));
    y = _mm256_add_epi64(y, sra(yf, 32));
  }
  V q = _mm256_srli_epi64(_mm256_mul_epu32(np, y), 32);
  const V rem = _mm256_sub_epi64(_mm256_slli_epi64(np, 16), _mm256_mul_epu32(q, den));
  q = _mm256_add_epi64(q, neg_mask(rem));                                           // rem < 0: -1
  return _mm256_sub_epi64(q, _mm256_cmpgt_epi64(rem, _mm256_sub_epi64(den, s64(1))));  // rem >= den: +1
}

// shift_s by a uniform d in [-62, 62] where a left shift cannot overflow (the quantizer's
// normalization): rounding right shift, exact left shift.
inline V vshift_uniform(V x, int d) {
  if (d > 0) return _mm256_add_epi64(sra(x, d), _mm256_and_si256(srl64(x, d - 1), s64(1)));
  if (d < 0) return sll64(x, -d);
  return x;
}

// quantize_row (llm.h) of the int64 row whose 4 lanes at i are gen(i) (element i alone: gen1(i)),
// given A0 = max |v|: the one AVX2 row quantizer of the llm, ssm and rwkv families. x' =
// shift_s(v, d) (|x'| <= 2^23) times F (< 2^34) as two vpmuldq (exact: |x' F| < 2^57), the floor
// shift by 40 read from the high dwords; 8 elements per step, the last n mod 8 by the scalar element.
template <class Gen, class Gen1>
inline int64_t vquant_gen(int64_t n, int qmax, const llm::QRow& o, uint64_t A0, int* dout, Gen gen, Gen1 gen1) {
  llm::QParams p;
  if (!llm::quant_setup(n, qmax, o, A0, dout, &p)) return 0;
  // F < 2^34 as 8 F8 + F3 (F8 < 2^31, F3 < 8): x' F = 8 x' F8 + x' F3, two signed vpmuldq.
  const V F8 = s64(p.F >> 3), F3 = s64(p.F & 7), rnd = s64(int64_t{1} << 39);
  // x' = shift_s(v, d) by vshs_exact: |v| < 2^62, and a left shift (d < 0) cannot overflow
  const V odd = _mm256_setr_epi32(1, 3, 5, 7, 0, 0, 0, 0);
  const __m128i hi = _mm_set1_epi32(qmax), lo = _mm_set1_epi32(-qmax);
  auto q4 = [&](V v) {  // clamp(rshift_round(x' F, 40)) as 4 int32
    const V x = vshs_exact(v, p.d);
    const V h = _mm256_add_epi64(_mm256_add_epi64(_mm256_slli_epi64(_mm256_mul_epi32(x, F8), 3), _mm256_mul_epi32(x, F3)), rnd);
    const __m128i q = _mm_srai_epi32(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(h, odd)), 8);
    return _mm_max_epi32(_mm_min_epi32(q, hi), lo);
  };
  // F < 2^31 (qmax < 2^13, so every int8 row): x' F is one vpmuldq
  const V F1 = s64(p.F);
  auto q4s = [&](V v) {
    const V h = _mm256_add_epi64(_mm256_mul_epi32(vshs_exact(v, p.d), F1), rnd);
    const __m128i q = _mm_srai_epi32(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(h, odd)), 8);
    return _mm_max_epi32(_mm_min_epi32(q, hi), lo);
  };
  int64_t i = 0;
  if (p.F < (int64_t{1} << 31)) {
    for (; i + 8 <= n; i += 8) {
      const __m128i w = _mm_packs_epi32(q4s(gen(i)), q4s(gen(i + 4)));
      if (o.q8) _mm_storel_epi64(reinterpret_cast<__m128i*>(o.q8 + i), _mm_packs_epi16(w, w));
      else _mm_storeu_si128(reinterpret_cast<__m128i*>(o.q16 + i), w);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m128i w = _mm_packs_epi32(q4(gen(i)), q4(gen(i + 4)));
    if (o.q8) _mm_storel_epi64(reinterpret_cast<__m128i*>(o.q8 + i), _mm_packs_epi16(w, w));
    else _mm_storeu_si128(reinterpret_cast<__m128i*>(o.q16 + i), w);
  }
  llm::quant_tail(i, n, p, qmax, o, gen1);
  *dout = p.d;
  return p.A;
}

// vquant_gen for rows whose values fit int32 (A0 < 2^31), 8 int32 lanes per step: gen8(i) gives
// elements i..i+7 as int32. x' = shift_s(v, d) in int32 (d <= 8; |x'| <= 2^23), x' F (F < 2^31:
// qmax < 2^13, so every int8 row) as vpmuldq of the even lanes and of the odd ones shifted down,
// the two high dwords merged back into element order and shifted by 8 (= >> 40). Rows with
// F >= 2^31 take vquant_gen with gen (4 int64 lanes).
template <class Gen8, class Gen, class Gen1>
inline int64_t vquant32_gen(int64_t n, int qmax, const llm::QRow& o, uint64_t A0, int* dout, Gen8 gen8, Gen gen, Gen1 gen1) {
  if (qmax >= (1 << 13)) return vquant_gen(n, qmax, o, A0, dout, gen, gen1);
  llm::QParams p;
  if (!llm::quant_setup(n, qmax, o, A0, dout, &p)) return 0;
  const V F1 = s64(p.F), rnd = s64(int64_t{1} << 39), one = _mm256_set1_epi32(1);
  const V hi = _mm256_set1_epi32(qmax), lo = _mm256_set1_epi32(-qmax);
  const V cr = _mm256_set1_epi32(p.d > 0 ? p.d : 0), cr1 = _mm256_set1_epi32(p.d > 0 ? p.d - 1 : 0);
  const V cl = _mm256_set1_epi32(p.d < 0 ? -p.d : 0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V x = gen8(i);
    if (p.d > 0) x = _mm256_add_epi32(_mm256_srav_epi32(x, cr), _mm256_and_si256(_mm256_srav_epi32(x, cr1), one));
    else if (p.d < 0) x = _mm256_sllv_epi32(x, cl);
    const V he = _mm256_add_epi64(_mm256_mul_epi32(x, F1), rnd);
    const V ho = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), F1), rnd);
    V q = _mm256_srai_epi32(_mm256_blend_epi32(_mm256_srli_epi64(he, 32), ho, 0xAA), 8);
    q = _mm256_max_epi32(_mm256_min_epi32(q, hi), lo);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    if (o.q8) _mm_storel_epi64(reinterpret_cast<__m128i*>(o.q8 + i), _mm_packs_epi16(w, w));
    else _mm_storeu_si128(reinterpret_cast<__m128i*>(o.q16 + i), w);
  }
  llm::quant_tail(i, n, p, qmax, o, gen1);
  *dout = p.d;
  return p.A;
}

}  // namespace
}  // namespace fq::k::avx2h
