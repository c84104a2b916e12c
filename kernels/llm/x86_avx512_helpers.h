// AVX-512 (F/BW/DQ/VL) lane helpers shared by the llm, ssm and rwkv families' avx512.cc files: the
// one vector form of shift_s, exp_q and quantize_row (llm.h) in 64-bit lanes, tails and masked
// loads. Include only from a file compiled with the avx512 flags (fq_isa_sources ... avx512);
// everything has internal linkage (anonymous namespace), so each including file gets its own copy
// compiled with its own flags and nothing leaks into a baseline file through the ODR.
#pragma once
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__)
#error "x86_avx512_helpers.h needs the avx512 ISA flags (see cmake/FQIsa.cmake)"
#endif
#include <immintrin.h>

#include <cstdint>

#include "llm_internal.h"

namespace fq::k::avx512h {
namespace {

using V = __m512i;

inline V s64(int64_t x) { return _mm512_set1_epi64(x); }
inline V zero() { return _mm512_setzero_si512(); }
inline __mmask8 tail8(int64_t left) { return left >= 8 ? __mmask8(0xFF) : __mmask8((1u << left) - 1); }
inline __mmask16 tail16(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }
inline __mmask32 tail32(int64_t left) { return left >= 32 ? ~__mmask32(0) : __mmask32((1u << left) - 1); }
inline __mmask64 tail64(int64_t left) { return left >= 64 ? ~__mmask64(0) : __mmask64((uint64_t{1} << left) - 1); }
inline V clampv(V x, int64_t lo, int64_t hi) { return _mm512_max_epi64(_mm512_min_epi64(x, s64(hi)), s64(lo)); }
inline V load_i16(const int16_t* p, __mmask8 k) { return _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(k, p)); }
inline V load_i32(const int32_t* p, __mmask8 k) { return _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, p)); }
inline V load_i64(const int64_t* p, __mmask8 k) { return _mm512_maskz_loadu_epi64(k, p); }
// The same, overloaded on the element type (row code templated on it).
inline V load8(const int16_t* p, __mmask8 k) { return load_i16(p, k); }
inline V load8(const int32_t* p, __mmask8 k) { return load_i32(p, k); }
inline V load8(const int64_t* p, __mmask8 k) { return load_i64(p, k); }

// Shifts of every lane by one count c (any int64: counts past the width fill, as the xmm-count
// forms do). On Intel the xmm-count vpsraq / vpsllq / vpsrlq are two uops (p0 + p5); the
// per-lane-count forms are one (p0), and the broadcast count is hoisted out of loops.
inline V sra64(V x, int64_t c) { return _mm512_srav_epi64(x, s64(c)); }
inline V sll64(V x, int64_t c) { return _mm512_sllv_epi64(x, s64(c)); }
inline V srl64(V x, int64_t c) { return _mm512_srlv_epi64(x, s64(c)); }

// shift_s(x, s) per lane for one shift s of every lane (llm.h: rounding right shift, saturating
// left shift to +-(2^62 - 1), 0 beyond 62).
inline V vshs(V x, int64_t s) {
  if (s == 0) return x;
  if (s > 62) return zero();
  if (s > 0) {  // (x >> s) + bit s-1 of x: no overflow of the rounding add
    return _mm512_add_epi64(sra64(x, s), _mm512_and_si512(sra64(x, s - 1), s64(1)));
  }
  const int64_t l = -s;
  const V sat = _mm512_mask_blend_epi64(_mm512_movepi64_mask(x), s64(llm::kSat62), s64(-llm::kSat62));
  const __mmask8 nz = _mm512_test_epi64_mask(x, x);
  if (l >= 62) return _mm512_maskz_mov_epi64(nz, sat);
  const __mmask8 big = _mm512_cmpge_epu64_mask(_mm512_abs_epi64(x), s64(int64_t{1} << (62 - l)));
  return _mm512_mask_blend_epi64(big, sll64(x, l), sat);
}

// exp_q(-nx, F) per lane for 0 <= nx, 9 <= F <= 24 (llm.h), Q30. Beyond 2^(F+5) the result is 0
// either way, so nx is capped there: then t = rshift_round(nx log2e, 16) = u >> 16 with u < 2^46
// from one vpmuludq, and its fields are read from u directly (n = t >> F; the table indices are
// the low 4 bits of two shifts of u, which is all vpermd reads (the odd dwords' lookups are
// ignored by vpmuludq); r << 16 is a field of u, < 2^32).
template <int F>
inline V vexpq(V nx) {
  static_assert(F > 8 && F <= 24, "F in (8, 24]");
  nx = _mm512_min_epi64(nx, s64(int64_t{1} << (F + 5)));
  const V u = _mm512_add_epi64(_mm512_mul_epu32(nx, s64(llm::kLog2eQ16)), s64(1 << 15));
  const V n = _mm512_srli_epi64(u, 16 + F);
  const V th = _mm512_loadu_si512(kExp2HiQ30), tl = _mm512_loadu_si512(kExp2LoQ30);
  const V a = _mm512_permutexvar_epi32(_mm512_srli_epi64(u, 12 + F), th);
  const V b = _mm512_permutexvar_epi32(_mm512_srli_epi64(u, 8 + F), tl);
  const V P = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(a, b), s64(int64_t{1} << 29)), 30);
  const V r16 = _mm512_and_si512(u, s64(((int64_t{1} << (F - 8)) - 1) << 16));
  const V rc = _mm512_srli_epi64(
      _mm512_add_epi64(_mm512_mul_epu32(r16, s64(kExp2ChordQ32)), s64(int64_t{1} << (F + 7))), F + 8);
  const V v = _mm512_sub_epi64(
      P, _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(P, rc), s64(int64_t{1} << 31)), 32));
  const V half = _mm512_sllv_epi64(s64(1), _mm512_sub_epi64(n, s64(1)));  // n == 0: count -1 -> 0
  return _mm512_srlv_epi64(_mm512_add_epi64(v, half), n);                 // n >= 64 -> 0
}

// sig(zc) of swiglu_v (llm_internal.h) per lane, Q16, for |zc| <= 2^17 (Q12): floor(np 2^16 / den)
// with E = exp_q(-|zc|, 12) >> 14, den = 2^16 + E in [2^16, 2^17], np = 2^16 (zc >= 0) or E. A
// reciprocal y ~ 2^48 / den (linear start, two Newton steps: y in [2^31, 2^32)) gives a quotient
// within 1 of the exact one (checked for every den and both numerators offline), then one
// correction step each way makes it exact.
inline V vsig(V zc) {
  const V E = _mm512_srli_epi64(vexpq<12>(_mm512_abs_epi64(zc)), 14);
  const V den = _mm512_add_epi64(E, s64(1 << 16));
  const V np = _mm512_mask_blend_epi64(_mm512_cmpge_epi64_mask(zc, zero()), E, s64(1 << 16));
  V y = _mm512_sub_epi64(s64(6063483241), _mm512_mul_epu32(den, s64(30840)));  // (24 - 8 x) / 17
  for (int it = 0; it < 2; ++it) {
    const V e = _mm512_sub_epi64(s64(int64_t{1} << 48), _mm512_mul_epu32(den, y));  // |e| < 2^44
    y = _mm512_add_epi64(y, _mm512_srai_epi64(_mm512_mullo_epi64(y, _mm512_srai_epi64(e, 16)), 32));
  }
  V q = _mm512_srli_epi64(_mm512_mul_epu32(np, y), 32);
  const V rem = _mm512_sub_epi64(_mm512_slli_epi64(np, 16), _mm512_mul_epu32(q, den));
  q = _mm512_mask_sub_epi64(q, _mm512_cmplt_epi64_mask(rem, zero()), q, s64(1));
  return _mm512_mask_add_epi64(q, _mm512_cmpge_epi64_mask(rem, den), q, s64(1));
}

// Uniform rounding right shift by d >= 1 (d <= 62), or exact left shift by -d (no saturation
// needed by the callers), or identity.
inline V vshift_uniform(V x, int d) {
  if (d > 0) {
    return _mm512_add_epi64(sra64(x, d), _mm512_and_si512(sra64(x, d - 1), s64(1)));
  }
  if (d < 0) return sll64(x, -d);
  return x;
}

// bitlen64 per lane (0 <= x < 2^63), without AVX512CD: a binary search on the lanes.
inline V vbitlen(V x) {
  V n = zero();
  for (int s = 32; s >= 1; s >>= 1) {
    const __mmask8 m = _mm512_cmpge_epu64_mask(x, s64(int64_t{1} << s));
    x = _mm512_mask_srlv_epi64(x, m, x, s64(s));
    n = _mm512_mask_add_epi64(n, m, n, s64(s));
  }
  return _mm512_add_epi64(n, x);  // x is 0 or 1 here
}
// vshift_uniform with a count per lane (|d| <= 63).
inline V vshift_lanes(V x, V d) {
  const V one = s64(1);
  const V r = _mm512_add_epi64(_mm512_srav_epi64(x, d), _mm512_and_si512(_mm512_srav_epi64(x, _mm512_sub_epi64(d, one)), one));
  const V l = _mm512_sllv_epi64(x, _mm512_sub_epi64(zero(), d));
  return _mm512_mask_blend_epi64(_mm512_cmpgt_epi64_mask(d, zero()),
                                 _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(d, zero()), x, l), r);
}
// llm::shs with a count per lane (any s; |x| < 2^62).
inline V vshs_lanes(V x, V s) {
  const V one = s64(1), sc = _mm512_min_epi64(s, s64(63));
  V r = _mm512_add_epi64(_mm512_srav_epi64(x, sc), _mm512_and_si512(_mm512_srav_epi64(x, _mm512_sub_epi64(sc, one)), one));
  r = _mm512_maskz_mov_epi64(_mm512_cmple_epi64_mask(s, s64(62)), r);            // s > 62: 0
  const V l = _mm512_min_epi64(_mm512_sub_epi64(zero(), s), s64(62));             // left: l >= 62 saturates
  const V sat = _mm512_mask_blend_epi64(_mm512_movepi64_mask(x), s64(llm::kSat62), s64(-llm::kSat62));
  const __mmask8 big = _mm512_cmpge_epu64_mask(_mm512_abs_epi64(x), _mm512_sllv_epi64(one, _mm512_sub_epi64(s64(62), l)));
  const V left = _mm512_maskz_mov_epi64(_mm512_test_epi64_mask(x, x), _mm512_mask_blend_epi64(big, _mm512_sllv_epi64(x, l), sat));
  return _mm512_mask_blend_epi64(_mm512_cmpgt_epi64_mask(s, zero()),
                                 _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(s, zero()), x, left), r);
}

// quantize_row (llm.h) of the int64 row whose 8 lanes at i (mask k) are gen(i, k), given A0 = max |v|:
// the one AVX-512 row quantizer of the llm, ssm and rwkv families.
template <class Gen>
inline int64_t vquant_gen(int64_t n, int qmax, const llm::QRow& o, uint64_t A0, int* dout, Gen gen) {
  llm::QParams p;
  if (!llm::quant_setup(n, qmax, o, A0, dout, &p)) return 0;
  // |v| <= A0: |x| <= 2^23 (no overflow), F < 2^34. x F is one vpmuldq when F < 2^31 (qmax <
  // 2^13: every int8 row), else 8 x F8 + x F3 (F8 < 2^31, F3 < 8): vpmullq is 3 uops on Intel.
  const V rnd = s64(int64_t{1} << 39), lo = s64(-qmax), hi = s64(qmax);
  // The saturating narrowing store clamps to the type's range: for qmax = its maximum (127 /
  // 32767, nearly every row) that is the upper clamp, and one vpmaxsq does the lower one.
  const bool upper = qmax != (o.q8 ? 127 : 32767);
  auto store = [&](int64_t i, __mmask8 k, V h) {
    V q = _mm512_max_epi64(_mm512_srai_epi64(_mm512_add_epi64(h, rnd), 40), lo);
    if (upper) q = _mm512_min_epi64(q, hi);
    if (o.q8) _mm512_mask_cvtsepi64_storeu_epi8(o.q8 + i, k, q);
    else _mm512_mask_cvtsepi64_storeu_epi16(o.q16 + i, k, q);
  };
  if (p.F < (int64_t{1} << 31)) {
    const V F = s64(p.F);
    for (int64_t i = 0; i < n; i += 8) {
      const __mmask8 k = tail8(n - i);
      store(i, k, _mm512_mul_epi32(vshift_uniform(gen(i, k), p.d), F));
    }
  } else {
    const V F8 = s64(p.F >> 3), F3 = s64(p.F & 7);
    for (int64_t i = 0; i < n; i += 8) {
      const __mmask8 k = tail8(n - i);
      const V x = vshift_uniform(gen(i, k), p.d);
      store(i, k, _mm512_add_epi64(_mm512_slli_epi64(_mm512_mul_epi32(x, F8), 3), _mm512_mul_epi32(x, F3)));
    }
  }
  *dout = p.d;
  return p.A;
}

}  // namespace
}  // namespace fq::k::avx512h
