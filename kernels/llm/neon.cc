// NEON variant of the llm family (aarch64, baseline armv8-a): the same bytes as ref.cc for every
// input the contract allows. Every operator is vectorized:
//   rmsnorm, rope, residual_add, embedding (64-bit lanes, vrshl = rshift_round, saturating narrow);
//   exp_q / exp_shift (expq4, expshift4): exp_q's two 16-entry tables are vqtbl4q_u8 lookups, its
//     products 32 x 32 -> 64 bit (vmull_u32), its rounding shifts vrshrn / vrshl (exact);
//   the row quantizer (vquant: vmull_s32, or two of them for F >= 2^31);
//   swiglu (the division by a Newton reciprocal in u32 lanes and an exact correction, as avx512.cc);
//   hadamard (H_b by vmlal_s8 on int8 columns, or vmlal_s16 with int32 sums for int16 input;
//     butterflies in int32, 4-point transforms for b = 1);
//   softmax (int8 rows of >= 128 columns: byte-plane tables of k = max - x read with vqtbl4q /
//     vqtbx4q; other rows: t and exp_q per element in int32 lanes);
//   layernorm / GroupNorm (min/max anchor, sums in int64, per-element channel parameters expanded
//     per chunk); attention_cache / out (vquant), attention_heads (dot products four positions at a
//     time, logits by vqrshl, exp_q, and the P.V sums by vmlal_laneq_s32 in int64).
// The family has no neondot variant: its products are int16 x int8 or wider (sdot does not apply),
// so one variant serves both.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>
#include <type_traits>

#include "llm_internal.h"
#include "neon_helpers.h"

namespace fq::k {
namespace llm {
namespace {

using namespace neonh;  // minv / maxv / maxu / absu of int64x2 lanes, ...

// ---- rope ---------------------------------------------------------------------------------------

void x_rope(const RopeArgs& a, int64_t m0, int64_t m1) {
  const int hd = a.head_dim;
  if (hd <= 0 || (hd & 3)) return ref_rope(a, m0, m1);
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t p = int64_t{a.pos} + m;
    if (p < 0 || p >= a.table_rows) {
      ref_rope(a, m, m + 1);
      continue;
    }
    const int16_t* x = a.x + m * a.width;
    int16_t* y = a.y + m * a.width;
    const int16_t* t = a.table + p * hd;
    for (int64_t h0 = 0; h0 + hd <= a.width; h0 += hd)
      for (int i = 0; i < hd; i += 4) {  // two pairs: (a0, b0, a1, b1) with (c0, s0, c1, s1)
        const int16x4_t xr = vld1_s16(x + h0 + i), tr = vld1_s16(t + i);
        const int16x4_t xs = vrev32_s16(xr);                              // (b0, a0, b1, a1)
        const int32x4_t ac = vmull_s16(xr, tr);                           // a0c0 b0s0 a1c1 b1s1
        const int32x4_t as = vmull_s16(xs, tr);                           // b0c0 a0s0 b1c1 a1s1
        // a c - b s and a s + b c in int64 (two products can reach 2^31 for any int16 table)
        const int64x2_t e = vsubl_s32(vget_low_s32(vuzp1q_s32(ac, ac)), vget_low_s32(vuzp2q_s32(ac, ac)));
        const int64x2_t o = vaddl_s32(vget_low_s32(vuzp1q_s32(as, as)), vget_low_s32(vuzp2q_s32(as, as)));
        const int32x2_t r0 = vqmovn_s64(vrshrq_n_s64(vzip1q_s64(e, o), 15));  // y0, y1
        const int32x2_t r1 = vqmovn_s64(vrshrq_n_s64(vzip2q_s64(e, o), 15));  // y2, y3
        vst1_s16(y + h0 + i, vqmovn_s32(vcombine_s32(r0, r1)));
      }
    const RowScale in = a.xs[m];
    a.ys[m] = in.mant == 0 ? RowScale{} : RowScale{in.mant, clamp_exp(int64_t{in.exp} - 1)};
  }
}

// ---- residual_add / embedding -------------------------------------------------------------------

// out[0..4) = sat32(h + shift_s(x, s)) for |x| <= 2^30 (h may be null: 0).
inline void add_shift_store(int32x4_t x, int64_t s, const int32_t* h, int32_t* out) {
  int64x2_t lo = vmovl_s32(vget_low_s32(x)), hi = vmovl_high_s32(x);
  if (s >= 32) {  // |x| < 2^(s-1): rounds to 0
    lo = hi = vdupq_n_s64(0);
  } else if (s != 0) {  // right: rounding shift; left: at most 32 (larger saturates the same way)
    const int64x2_t c = vdupq_n_s64(s > 0 ? -s : (-s > 32 ? 32 : -s));
    lo = s > 0 ? vrshlq_s64(lo, c) : vshlq_s64(lo, c);
    hi = s > 0 ? vrshlq_s64(hi, c) : vshlq_s64(hi, c);
  }
  if (h) {
    const int32x4_t hv = vld1q_s32(h);
    lo = vaddq_s64(lo, vmovl_s32(vget_low_s32(hv)));
    hi = vaddq_s64(hi, vmovl_high_s32(hv));
  }
  vst1q_s32(out, vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi)));
}

void x_residual_add(const ResidualArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale ys = a.ys[m];
    const int64_t sh = int64_t{ys.exp} - a.e, base = m * a.d;
    int64_t i = 0;
    for (; i + 4 <= a.d; i += 4) {
      const int32x4_t yv = vmulq_n_s32(vmovl_s16(vld1_s16(a.y + base + i)), ys.mant);
      add_shift_store(yv, sh, a.h + base + i, a.out + base + i);
    }
    for (; i < a.d; ++i)
      a.out[base + i] = saturate<int32_t>(a.h[base + i] + shs(int64_t{a.y[base + i]} * ys.mant, sh));
  }
}

void x_embedding(const EmbeddingArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t id = a.ids[m];
    if (id < 0 || id >= a.vocab) {
      ref_embedding(a, m, m + 1);
      continue;
    }
    int32_t* out = a.out + m * a.d;
    const int8_t* t = a.table + id * a.d;
    const RowScale ts = a.ts[id];
    const int64_t sh = int64_t{ts.exp} - a.e;
    int64_t i = 0;
    for (; i + 8 <= a.d; i += 8) {
      const int16x8_t tv = vmovl_s8(vld1_s8(t + i));
      add_shift_store(vmulq_n_s32(vmovl_s16(vget_low_s16(tv)), ts.mant), sh, nullptr, out + i);
      add_shift_store(vmulq_n_s32(vmovl_high_s16(tv), ts.mant), sh, nullptr, out + i + 4);
    }
    for (; i < a.d; ++i) out[i] = saturate<int32_t>(shs(int64_t{t[i]} * ts.mant, sh));
  }
}

// ---- shared vector helpers ----------------------------------------------------------------------

inline uint64_t hmaxu64(uint64x2_t v) {
  const uint64_t a = vgetq_lane_u64(v, 0), b = vgetq_lane_u64(v, 1);
  return a > b ? a : b;
}
inline int64_t hmax64(int64x2_t v) {
  const int64_t a = vgetq_lane_s64(v, 0), b = vgetq_lane_s64(v, 1);
  return a > b ? a : b;
}
// Lanes [0, k) all ones, the others zero (k in [0, 4] / [0, 16]).
inline uint32x4_t lanes4(int64_t k) {
  const uint32x4_t iota = {0, 1, 2, 3};
  return vcltq_u32(iota, vdupq_n_u32(uint32_t(k < 0 ? 0 : k > 4 ? 4 : k)));
}
inline uint8x16_t lanes16(int64_t k) {
  const uint8x16_t iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return vcltq_u8(iota, vdupq_n_u8(uint8_t(k < 0 ? 0 : k > 16 ? 16 : k)));
}
inline int32x4_t lo_hi_s32(int64x2_t a, int64x2_t b) { return vcombine_s32(vmovn_s64(a), vmovn_s64(b)); }

// exp_q(-nx, F) of llm.h on 4 lanes, nx >= 0 (u32): the two 16-entry tables are byte lookups
// (vqtbl4q_u8 of the 64-byte tables with the byte indices 4 i .. 4 i + 3 of each lane). nx is first
// clamped to 2^(F+5): beyond, n >= 46 and the output is 0 either way. Every product is a 32 x 32 ->
// 64 bit multiply and every rounding shift is exact (vrshrn / vrshl round without overflow).
struct ExpTabs {
  uint8x16x4_t hi, lo;
  ExpTabs()
      : hi(vld1q_u8_x4(reinterpret_cast<const uint8_t*>(kExp2HiQ30))),
        lo(vld1q_u8_x4(reinterpret_cast<const uint8_t*>(kExp2LoQ30))) {}
};
inline uint32x4_t expq4(uint32x4_t nx, int F, const ExpTabs& tb) {
  nx = vminq_u32(nx, vdupq_n_u32(1u << (F + 5)));
  const uint32x4_t t = vcombine_u32(vrshrn_n_u64(vmull_n_u32(vget_low_u32(nx), uint32_t(kLog2eQ16)), 16),
                                    vrshrn_n_u64(vmull_high_n_u32(nx, uint32_t(kLog2eQ16)), 16));  // < 2^30
  const uint32x4_t n = vminq_u32(vshlq_u32(t, vdupq_n_s32(-F)), vdupq_n_u32(32));
  const uint32x4_t i = vandq_u32(vshlq_u32(t, vdupq_n_s32(8 - F)), vdupq_n_u32(255));
  const uint32x4_t r = vandq_u32(t, vdupq_n_u32((1u << (F - 8)) - 1));
  const uint32x4_t bytes = vdupq_n_u32(0x03020100u);
  const uint8x16_t ih = vreinterpretq_u8_u32(vmlaq_n_u32(bytes, vshrq_n_u32(i, 4), 0x04040404u));
  const uint8x16_t il = vreinterpretq_u8_u32(vmlaq_n_u32(bytes, vandq_u32(i, vdupq_n_u32(15)), 0x04040404u));
  const uint32x4_t a = vreinterpretq_u32_u8(vqtbl4q_u8(tb.hi, ih)), b = vreinterpretq_u32_u8(vqtbl4q_u8(tb.lo, il));
  const uint32x4_t P = vcombine_u32(vrshrn_n_u64(vmull_u32(vget_low_u32(a), vget_low_u32(b)), 30),
                                    vrshrn_n_u64(vmull_high_u32(a, b), 30));  // <= 2^30
  const int64x2_t sr = vdupq_n_s64(8 - F);
  const uint32x4_t rc = vcombine_u32(vmovn_u64(vrshlq_u64(vmull_n_u32(vget_low_u32(r), uint32_t(kExp2ChordQ32)), sr)),
                                     vmovn_u64(vrshlq_u64(vmull_high_n_u32(r, uint32_t(kExp2ChordQ32)), sr)));  // < 2^24
  const uint32x4_t pr = vcombine_u32(vrshrn_n_u64(vmull_u32(vget_low_u32(P), vget_low_u32(rc)), 32),
                                     vrshrn_n_u64(vmull_high_u32(P, rc), 32));
  const uint32x4_t v = vsubq_u32(P, pr);
  return vrshlq_u32(v, vnegq_s32(vreinterpretq_s32_u32(n)));  // n == 32 (any n > 31): 0 as v < 2^31
}

// exp_shift of llm.h on 4 int32 lanes (x > 0 acts as 0). x is first clamped to >= -2^(F+5): z is
// monotone in x and already gives q >= 46 there (output 0), so z stays within int32.
inline uint32x4_t expshift4(int32x4_t x, int F) {
  x = vmaxq_s32(vminq_s32(x, vdupq_n_s32(0)), vdupq_n_s32(-(1 << (F + 5))));
  const int32x4_t z = vsubq_s32(vaddq_s32(x, vshrq_n_s32(x, 1)), vshrq_n_s32(x, 4));
  const uint32x4_t q = vshlq_u32(vreinterpretq_u32_s32(vnegq_s32(z)), vdupq_n_s32(-F));
  const int32x4_t r = vaddq_s32(z, vshlq_s32(vreinterpretq_s32_u32(q), vdupq_n_s32(F)));
  const int32x4_t v = vaddq_s32(vshrq_n_s32(r, 1), vdupq_n_s32(1 << F));
  // q >= 32 shifts everything out (0), as q >= 31 does in the definition (v * 2^(30-F) <= 2^30)
  return vshlq_u32(vshlq_u32(vreinterpretq_u32_s32(v), vdupq_n_s32(30 - F)), vnegq_s32(vreinterpretq_s32_u32(q)));
}

// ---- quantize_row -------------------------------------------------------------------------------
// The row constants as vectors: q = clamp(rshift_round(v' * F, 40), +-qmax) for v' = shift_s(v, d)
// (|v'| <= 2^23). F < 2^31 (qmax <= 127 always) is one vmull_s32; a larger F (qmax up to 32767,
// F < 2^34) is split as Fh * 2^16 + Fl, both products exact in int64.
struct QVec {
  int32x2_t f, fh, fl;
  bool split;
  int32x4_t hi, lo;
  int32x4_t nd32;
  int64x2_t nd64;
  QVec(const QParams& p, int qmax) {
    split = p.F >= (int64_t{1} << 31);
    f = vdup_n_s32(int32_t(split ? 0 : p.F));
    fh = vdup_n_s32(int32_t(p.F >> 16));
    fl = vdup_n_s32(int32_t(p.F & 0xFFFF));
    hi = vdupq_n_s32(qmax), lo = vdupq_n_s32(-qmax);
    nd32 = vdupq_n_s32(-p.d);
    nd64 = vdupq_n_s64(-p.d);
  }
  int64x2_t mul(int32x2_t v) const {
    if (!split) return vmull_s32(v, f);
    return vmlal_s32(vshlq_n_s64(vmull_s32(v, fh), 16), v, fl);
  }
  int32x4_t q(int32x4_t v) const {
    const int32x4_t r = lo_hi_s32(vrshrq_n_s64(mul(vget_low_s32(v)), 40), vrshrq_n_s64(mul(vget_high_s32(v)), 40));
    return vmaxq_s32(vminq_s32(r, hi), lo);
  }
};
// v' = shift_s(v, d) of 4 elements (d in [-22, 39]; right shifts of int32 inputs are by <= 8).
inline int32x4_t qload(const int64_t* v, const QVec& c) {
  return lo_hi_s32(vrshlq_s64(vld1q_s64(v), c.nd64), vrshlq_s64(vld1q_s64(v + 2), c.nd64));
}
inline int32x4_t qload(const int32_t* v, const QVec& c) { return vrshlq_s32(vld1q_s32(v), c.nd32); }
inline int32x4_t qload(const int16_t* v, const QVec& c) { return vrshlq_s32(vmovl_s16(vld1_s16(v)), c.nd32); }

// quantize_row (llm.h) with A0 = max |v| known: 8 elements per step, the tail by qelem.
template <typename T>
int64_t vquant(const T* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout, uint64_t A0) {
  const bool narrow = qmax <= 127;
  *dout = 0;
  if (A0 == 0) {  // all-zero row
    std::memset(narrow ? static_cast<void*>(q8) : static_cast<void*>(q16), 0, size_t(n) * (narrow ? 1 : 2));
    return 0;
  }
  const QParams p = qparams(A0, qmax);
  const QVec c(p, qmax);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int16x8_t q = vcombine_s16(vmovn_s32(c.q(qload(v + i, c))), vmovn_s32(c.q(qload(v + i + 4, c))));
    if (narrow) vst1_s8(q8 + i, vmovn_s16(q));
    else vst1q_s16(q16 + i, q);
  }
  for (; i < n; ++i) {
    if (narrow) q8[i] = int8_t(qelem(v[i], p, qmax));
    else q16[i] = int16_t(qelem(v[i], p, qmax));
  }
  *dout = p.d;
  return p.A;
}
// quantize_row of v[0..n) into y (int8 when qmax <= 127, else int16) at element k, and the row
// scale scale_of(A, qmax, d, mant_in, e_in).
template <typename T>
RowScale vquant_scale(const T* v, int64_t n, int qmax, void* y, int64_t k, uint64_t A0, int64_t mant_in, int64_t e_in) {
  const bool narrow = qmax <= 127;
  int d = 0;
  const int64_t A = vquant(v, n, qmax, narrow ? static_cast<int8_t*>(y) + k : nullptr,
                           narrow ? nullptr : static_cast<int16_t*>(y) + k, &d, A0);
  return scale_of_i(A, qmax, d, mant_in, e_in);
}

// ---- rmsnorm ------------------------------------------------------------------------------------

// shift_s(x, c) for |x| < 2^31 and any c with |result| <= 2^24 (the rmsnorm normalization).
inline int32x4_t shift_c(int32x4_t x, int c) {
  return c > 0 ? vrshlq_s32(x, vdupq_n_s32(-c)) : vshlq_s32(x, vdupq_n_s32(-c));
}

void x_rmsnorm(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int32_t* xs = reinterpret_cast<int32_t*>(align64(scratch));  // x' (int32; the scratch holds int64 [D])
  const int64_t D = a.d;
  const bool narrow = a.qmax <= 127;
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t* x = a.x + m * D;
    uint32x4_t mx = vdupq_n_u32(0);
    int64_t i = 0;
    for (; i + 4 <= D; i += 4) mx = vmaxq_u32(mx, vreinterpretq_u32_s32(vabsq_s32(vld1q_s32(x + i))));
    uint64_t A0 = vmaxvq_u32(mx);
    for (; i < D; ++i) A0 = mag64(x[i]) > A0 ? mag64(x[i]) : A0;
    if (A0 == 0 || A0 > (uint64_t{1} << 31) - 1) {  // zero rows and INT32_MIN: the reference
      ref_rmsnorm(a, m, m + 1, scratch);
      continue;
    }
    const int c = bitlen64(A0) - 24;
    // x' = shift_s(x, c) (|x'| <= 2^24), its max and sum of squares.
    int64x2_t ss = vdupq_n_s64(0);
    uint32x4_t mx2 = vdupq_n_u32(0);
    int64_t sum = 0;
    uint64_t A1 = 0;
    for (i = 0; i + 4 <= D; i += 4) {
      const int32x4_t v = shift_c(vld1q_s32(x + i), c);
      vst1q_s32(xs + i, v);
      ss = vmlal_s32(ss, vget_low_s32(v), vget_low_s32(v));
      ss = vmlal_high_s32(ss, v, v);
      mx2 = vmaxq_u32(mx2, vreinterpretq_u32_s32(vabsq_s32(v)));
    }
    sum = vaddvq_s64(ss);
    A1 = vmaxvq_u32(mx2);
    for (; i < D; ++i) {
      const int64_t v = shs(x[i], c);
      xs[i] = int32_t(v);
      sum += v * v;
      A1 = mag64(v) > A1 ? mag64(v) : A1;
    }
    int d = 0;
    const int64_t A = vquant(xs, D, a.qmax, static_cast<int8_t*>(a.y) + (narrow ? m * D : 0),
                             static_cast<int16_t*>(a.y) + (narrow ? 0 : m * D), &d, A1);
    a.ys[m] = rms_row_scale(a, c, sum, A, d);
  }
}

// ---- exp (array form of exp_q / exp_shift) ------------------------------------------------------

void x_exp(const ExpArgs& a, int64_t i0, int64_t i1) {
  const int F = exp_bits(a);
  const ExpTabs tb;
  auto four = [&](int32x4_t x) -> uint32x4_t {
    if (a.kind == kExpShift) return expshift4(x, F);
    // -min(x, 0) as u32 (INT32_MIN: 2^31)
    return expq4(vreinterpretq_u32_s32(vnegq_s32(vminq_s32(x, vdupq_n_s32(0)))), F, tb);
  };
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) vst1q_u32(a.y + i, four(vld1q_s32(a.x + i)));
  if (i < i1) {
    int32_t xt[4] = {0, 0, 0, 0};
    uint32_t yt[4];
    for (int64_t j = i; j < i1; ++j) xt[j - i] = a.x[j];
    vst1q_u32(yt, four(vld1q_s32(xt)));
    for (int64_t j = i; j < i1; ++j) a.y[j] = yt[j - i];
  }
}

// ---- swiglu -------------------------------------------------------------------------------------

// A uniform shift_s(p, s) of int32 lanes whose result only matters inside +-2^(cap - 1) (it is
// clamped there next): a right shift by >= 32 gives 0 (|p| < 2^31); a left shift by l is done as
// clamp(p, +-2^(cap - l')) * 2^l' (l' = min(l, cap)), which lands outside +-2^(cap - 1) exactly when
// p * 2^l does (and stays within int32).
struct ShiftI32 {
  bool left;
  int32x4_t sh, pre;
  ShiftI32(int64_t s, int cap) : left(s < 0) {
    const int l = !left ? 0 : -s > cap ? cap : int(-s);
    sh = vdupq_n_s32(!left ? -int32_t(s > 32 ? 32 : s) : l);
    pre = vdupq_n_s32(1 << (cap - l));
  }
  int32x4_t apply(int32x4_t p) const {
    return left ? vshlq_s32(vmaxq_s32(vminq_s32(p, pre), vnegq_s32(pre)), sh) : vrshlq_s32(p, sh);
  }
};
// swiglu's zq = clamp(shift_s(g * gs.mant, gs.exp - 12), +-2^17) (|g * gs.mant| <= 2^30).
inline int32x4_t swiglu_zq(int32x4_t p, const ShiftI32& zs) {
  const int32x4_t lim = vdupq_n_s32(1 << 17);
  return vmaxq_s32(vminq_s32(zs.apply(p), lim), vnegq_s32(lim));
}

// sig of swiglu (llm.h) on 4 lanes: floor(N * 2^16 / den), N = 2^16 (zq >= 0) or E,
// den = 2^16 + E in [2^16, 2^17]. The reciprocal y ~ 2^48 / den of avx512.cc (linear start, two
// Newton steps, y in [2^31, 2^32): u32 lanes; the signed product y * e' as (y - 2^31) * e' + e' 2^31),
// then one correction step each way: exact for every den and both numerators (checked
// exhaustively).
inline uint32x4_t swiglu_sig(int32x4_t zq, uint32x4_t E) {
  const uint32x4_t den = vaddq_u32(E, vdupq_n_u32(1u << 16));
  const uint32x4_t np = vbslq_u32(vcgezq_s32(zq), vdupq_n_u32(1u << 16), E);
  uint32x4_t y = vmlsq_n_u32(vdupq_n_u32(uint32_t(6063483241ull)), den, 30840u);  // exact mod 2^32
  for (int it = 0; it < 2; ++it) {
    const uint64x2_t two48 = vdupq_n_u64(uint64_t{1} << 48);
    const int64x2_t e0 = vreinterpretq_s64_u64(vsubq_u64(two48, vmull_u32(vget_low_u32(den), vget_low_u32(y))));
    const int64x2_t e1 = vreinterpretq_s64_u64(vsubq_u64(two48, vmull_high_u32(den, y)));
    const int32x4_t ep = vcombine_s32(vshrn_n_s64(e0, 16), vshrn_n_s64(e1, 16));  // |e >> 16| < 2^28
    const int32x4_t ys = vreinterpretq_s32_u32(veorq_u32(y, vdupq_n_u32(0x80000000u)));  // y - 2^31
    const int64x2_t p0 = vmlal_s32(vshlq_n_s64(vmovl_s32(vget_low_s32(ep)), 31), vget_low_s32(ys), vget_low_s32(ep));
    const int64x2_t p1 = vmlal_high_s32(vshlq_n_s64(vmovl_high_s32(ep), 31), ys, ep);
    y = vaddq_u32(y, vreinterpretq_u32_s32(vcombine_s32(vshrn_n_s64(p0, 32), vshrn_n_s64(p1, 32))));
  }
  uint32x4_t q = vcombine_u32(vshrn_n_u64(vmull_u32(vget_low_u32(np), vget_low_u32(y)), 32),
                              vshrn_n_u64(vmull_high_u32(np, y), 32));
  const int32x4_t rem = vreinterpretq_s32_u32(vsubq_u32(vshlq_n_u32(np, 16), vmulq_u32(q, den)));  // small: exact mod 2^32
  q = vaddq_u32(q, vreinterpretq_u32_s32(vreinterpretq_s32_u32(vcltzq_s32(rem))));       // rem < 0: -1
  q = vsubq_u32(q, vcgeq_s32(rem, vreinterpretq_s32_u32(den)));                         // rem >= den: +1
  return q;
}

void x_swiglu(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t N = a.n;
  const ExpTabs tb;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* g = a.gate + m * N;
    const int16_t* u = a.up + m * N;
    const RowScale gs = a.gs[m], us = a.us[m];
    const ShiftI32 zs(int64_t{gs.exp} - 12, 18);
    uint64x2_t mx = vdupq_n_u64(0);
    // 4 elements: v = g * sig * u (|g * sig| <= 2^31 fits int32: g >= -2^15, sig <= 2^16)
    auto four = [&](int16x4_t g16, int16x4_t u16, int64_t* out, uint32x4_t keep) {
      const int32x4_t g32 = vmovl_s16(g16), u32 = vmovl_s16(u16);
      const int32x4_t zq = swiglu_zq(vmulq_n_s32(g32, gs.mant), zs);
      const uint32x4_t E = vshrq_n_u32(expq4(vreinterpretq_u32_s32(vabsq_s32(zq)), 12, tb), 14);
      const int32x4_t gsig = vmulq_s32(g32, vreinterpretq_s32_u32(swiglu_sig(zq, E)));
      const int32x4_t uk = vandq_s32(u32, vreinterpretq_s32_u32(keep));
      const int64x2_t v0 = vmull_s32(vget_low_s32(gsig), vget_low_s32(uk)), v1 = vmull_high_s32(gsig, uk);
      vst1q_s64(out, v0);
      vst1q_s64(out + 2, v1);
      mx = maxu(mx, maxu(absu(v0), absu(v1)));
    };
    int64_t i = 0;
    const uint32x4_t all = vdupq_n_u32(~0u);
    for (; i + 4 <= N; i += 4) four(vld1_s16(g + i), vld1_s16(u + i), v + i, all);
    if (i < N) {  // scratch is padded: the tail writes 4 entries
      int16_t gt[4] = {0, 0, 0, 0}, ut[4] = {0, 0, 0, 0};
      for (int64_t j = i; j < N; ++j) gt[j - i] = g[j], ut[j - i] = u[j];
      four(vld1_s16(gt), vld1_s16(ut), v + i, lanes4(N - i));
    }
    const RowScale mu = normalize(uint64_t(int64_t{gs.mant} * us.mant), int64_t{gs.exp} + us.exp + 16);
    a.ys[m] = vquant_scale(v, N, a.qmax, a.y, m * N, hmaxu64(mx), mu.mant, mu.exp);
  }
}

// ---- hadamard -----------------------------------------------------------------------------------

// Columns of H_b (b in {12, 20, 28, 44}) as int8, rows padded to 48: col[w][j][i] = H_b[i][j].
struct HadamardCols {
  int8_t c[4][44][48];
};
const HadamardCols& hadamard_cols() {
  static const HadamardCols tab = [] {
    HadamardCols h{};
    const int bs[4] = {12, 20, 28, 44};
    for (int w = 0; w < 4; ++w) {
      const int8_t* M = hadamard_matrix(bs[w]);
      for (int j = 0; j < bs[w]; ++j)
        for (int i = 0; i < bs[w]; ++i) h.c[w][j][i] = M[i * bs[w] + j];
    }
    return h;
  }();
  return tab;
}

// t[jb b + i] = sum_j H[i][j] x[jb b + j] for every block: int16 lanes over i (|t| <= 44 * 128),
// NR registers of 16 rows, b / 4 int32 stores per block.
template <int NR>
void hadamard_blocks(const int8_t* x, int64_t nb, int b, const int8_t (*col)[48], int32_t* t) {
  for (int64_t jb = 0; jb < nb; ++jb) {
    int16x8_t acc[2 * NR];
    for (auto& v : acc) v = vdupq_n_s16(0);
    const int8_t* xb = x + jb * b;
    for (int j = 0; j < b; ++j) {
      const int8x16_t xj = vdupq_n_s8(xb[j]);
      for (int r = 0; r < NR; ++r) {
        const int8x16_t c = vld1q_s8(col[j] + 16 * r);
        acc[2 * r] = vmlal_s8(acc[2 * r], vget_low_s8(c), vget_low_s8(xj));
        acc[2 * r + 1] = vmlal_high_s8(acc[2 * r + 1], c, xj);
      }
    }
    int32_t* tb = t + jb * b;
    for (int k = 0; k < b / 4; ++k) {
      const int16x8_t v = acc[k / 2];
      vst1q_s32(tb + 4 * k, k % 2 ? vmovl_high_s16(v) : vmovl_s16(vget_low_s16(v)));
    }
  }
}

// The same for int16 x (|t| <= 44 * 2^15): int32 lanes over i by vmlal_s16 of the int8 columns
// widened, NR registers of 16 rows.
template <int NR>
void hadamard_blocks16(const int16_t* x, int64_t nb, int b, const int8_t (*col)[48], int32_t* t) {
  for (int64_t jb = 0; jb < nb; ++jb) {
    int32x4_t acc[4 * NR];
    for (auto& v : acc) v = vdupq_n_s32(0);
    const int16_t* xb = x + jb * b;
    for (int j = 0; j < b; ++j) {
      const int16x8_t xj = vdupq_n_s16(xb[j]);
      for (int r = 0; r < NR; ++r) {
        const int8x16_t c = vld1q_s8(col[j] + 16 * r);
        const int16x8_t cl = vmovl_s8(vget_low_s8(c)), ch = vmovl_high_s8(c);
        acc[4 * r] = vmlal_s16(acc[4 * r], vget_low_s16(cl), vget_low_s16(xj));
        acc[4 * r + 1] = vmlal_high_s16(acc[4 * r + 1], cl, xj);
        acc[4 * r + 2] = vmlal_s16(acc[4 * r + 2], vget_low_s16(ch), vget_low_s16(xj));
        acc[4 * r + 3] = vmlal_high_s16(acc[4 * r + 3], ch, xj);
      }
    }
    int32_t* tb = t + jb * b;
    for (int k = 0; k < b / 4; ++k) vst1q_s32(tb + 4 * k, acc[k]);
  }
}

void x_hadamard(const HadamardArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int b = hadamard_block(a.n);
  if (b == 0 || (b == 1 && a.n < 16)) return ref_hadamard(a, m0, m1, scratch);
  const int64_t n = a.n, nb = n / b;
  int32_t* t = reinterpret_cast<int32_t*>(align64(scratch));  // int32 [n] (hadamard_scratch: 12 bytes each)
  const int w = b == 12 ? 0 : b == 20 ? 1 : b == 28 ? 2 : 3;
  const int8_t(*col)[48] = b == 1 ? nullptr : hadamard_cols().c[w];
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* x = a.x16 ? nullptr : a.x + m * n;
    const int16_t* x16 = a.x16 ? a.x16 + m * n : nullptr;  // int16 input: |t| <= n * 2^15 <= 2^31
    int64_t len = b;
    if (b == 1) {
      // n = 2^k >= 16: widen, and the first two butterfly stages as 4-point transforms
      for (int64_t i = 0; i < n; i += 16) {
        int16x8_t l, h;
        if (x16) {
          l = vld1q_s16(x16 + i), h = vld1q_s16(x16 + i + 8);
        } else {
          const int8x16_t v = vld1q_s8(x + i);
          l = vmovl_s8(vget_low_s8(v)), h = vmovl_high_s8(v);
        }
        vst1q_s32(t + i, vmovl_s16(vget_low_s16(l)));
        vst1q_s32(t + i + 4, vmovl_high_s16(l));
        vst1q_s32(t + i + 8, vmovl_s16(vget_low_s16(h)));
        vst1q_s32(t + i + 12, vmovl_high_s16(h));
      }
      for (int64_t i = 0; i < n; i += 16) {
        int32x4x4_t q = vld4q_s32(t + i);
        const int32x4_t s0 = vaddq_s32(q.val[0], q.val[1]), d0 = vsubq_s32(q.val[0], q.val[1]);
        const int32x4_t s1 = vaddq_s32(q.val[2], q.val[3]), d1 = vsubq_s32(q.val[2], q.val[3]);
        q.val[0] = vaddq_s32(s0, s1), q.val[1] = vaddq_s32(d0, d1);
        q.val[2] = vsubq_s32(s0, s1), q.val[3] = vsubq_s32(d0, d1);
        vst4q_s32(t + i, q);
      }
      len = 4;
    } else if (b == 12) {
      if (x16) hadamard_blocks16<1>(x16, nb, b, col, t);
      else hadamard_blocks<1>(x, nb, b, col, t);
    } else if (b == 44) {
      if (x16) hadamard_blocks16<3>(x16, nb, b, col, t);
      else hadamard_blocks<3>(x, nb, b, col, t);
    } else {
      if (x16) hadamard_blocks16<2>(x16, nb, b, col, t);
      else hadamard_blocks<2>(x, nb, b, col, t);
    }
    // Sylvester butterflies across blocks (len a multiple of 4; |t| <= n * 128, or n * 2^15 <= 2^31)
    for (; len < n; len <<= 1)
      for (int64_t i0 = 0; i0 < n; i0 += 2 * len)
        for (int64_t i = i0; i < i0 + len; i += 4) {
          const int32x4_t p = vld1q_s32(t + i), q = vld1q_s32(t + i + len);
          vst1q_s32(t + i, vaddq_s32(p, q));
          vst1q_s32(t + i + len, vsubq_s32(p, q));
        }
    uint32x4_t mx = vdupq_n_u32(0);
    for (int64_t i = 0; i < n; i += 4) mx = vmaxq_u32(mx, vreinterpretq_u32_s32(vabsq_s32(vld1q_s32(t + i))));
    a.ys[m] = vquant_scale(t, n, a.qmax, a.y, m * n, vmaxvq_u32(mx), a.xs[m].mant, a.xs[m].exp);
  }
}

// ---- softmax ------------------------------------------------------------------------------------

// t = max(shift_s(p, exp - 16), -clip) for p = d * mant (d <= 0, |p| < 2^31), in int32 lanes and
// clamped at -cl, cl = min(clip, 2^22): exp_q is 0 below -2^21 (Q16) and the log output saturates
// at -32768 below -2^21 - lnZ, so the extra clamp changes no output (ShiftI32 with cap 23).
struct SmShift {
  ShiftI32 s;
  int32x4_t ncl;
  SmShift(const RowScale& rs, int64_t clip)
      : s(int64_t{rs.exp} - 16, 23), ncl(vdupq_n_s32(-int32_t(clip < (int64_t{1} << 22) ? clip : int64_t{1} << 22))) {}
  int32x4_t t(int32x4_t p) const { return vmaxq_s32(s.apply(p), ncl); }
};

// Outputs of 4 elements from e (u32 Q30) or t (log), as int32 lanes (sm_out of llm_internal.h).
inline int32x4_t sm_out4(int out, uint32x4_t e, int32x4_t t, uint32_t F, int32_t lnZ) {
  if (out == kLogSoftmaxI16)  // t - lnZ >= -2^23; <= 0 so the result is <= 0
    return vmaxq_s32(vrshrq_n_s32(vsubq_s32(t, vdupq_n_s32(lnZ)), 6), vdupq_n_s32(-32768));
  uint64x2_t lo = vmull_n_u32(vget_low_u32(e), F), hi = vmull_high_n_u32(e, F);  // < 2^62
  if (out == kSoftmaxU16) lo = vrshrq_n_u64(lo, 46), hi = vrshrq_n_u64(hi, 46);
  else lo = vrshrq_n_u64(lo, 54), hi = vrshrq_n_u64(hi, 54);
  const uint32x4_t p = vcombine_u32(vmovn_u64(lo), vmovn_u64(hi));  // <= 2^16 / 2^8
  return vreinterpretq_s32_u32(vminq_u32(p, vdupq_n_u32(out == kSoftmaxU16 ? 65535 : 255)));
}
// Stores 8 outputs (int32 lanes already in range) at element k of y.
inline void sm_store8v(const SoftmaxArgs& a, int64_t k, int32x4_t v0, int32x4_t v1) {
  const int16x8_t h = vcombine_s16(vmovn_s32(v0), vmovn_s32(v1));
  if (a.out == kSoftmaxU8) vst1_u8(static_cast<uint8_t*>(a.y) + k, vmovn_u16(vreinterpretq_u16_s16(h)));
  else vst1q_s16(static_cast<int16_t*>(a.y) + k, h);
}
inline void sm_fill(const SoftmaxArgs& a, int64_t k0, int64_t k1) {
  if (k1 <= k0) return;
  if (a.out != kLogSoftmaxI16) {
    std::memset(static_cast<uint8_t*>(a.y) + k0 * (a.out == kSoftmaxU8 ? 1 : 2), 0,
                size_t(k1 - k0) * (a.out == kSoftmaxU8 ? 1 : 2));
    return;
  }
  int16_t* y = static_cast<int16_t*>(a.y);
  int64_t k = k0;
  for (; k + 8 <= k1; k += 8) vst1q_s16(y + k, vdupq_n_s16(-32768));
  for (; k < k1; ++k) y[k] = -32768;
}

// 8 inputs of a row from element i as int16 (int8 rows widened); the tail (< 8 left) padded with pad.
inline int16x8_t sm_load8(const SoftmaxArgs& a, int64_t k, int64_t left, int16_t pad) {
  if (left >= 8) {
    if (a.in_bits == 8) return vmovl_s8(vld1_s8(static_cast<const int8_t*>(a.x) + k));
    return vld1q_s16(static_cast<const int16_t*>(a.x) + k);
  }
  int16_t b[8];
  for (int j = 0; j < 8; ++j)
    b[j] = j >= left ? pad
           : a.in_bits == 8 ? int16_t(static_cast<const int8_t*>(a.x)[k + j])
                            : static_cast<const int16_t*>(a.x)[k + j];
  return vld1q_s16(b);
}

// Any row (int8 or int16): t and exp_q per element, 8 at a time; e (u32) kept in scratch.
void sm_row_generic(const SoftmaxArgs& a, int64_t m, int64_t V_, const RowScale& s, int64_t clip, uint32_t* e,
                    const ExpTabs& tb) {
  const int64_t base = m * a.n;
  int16x8_t mx = vdupq_n_s16(INT16_MIN);
  for (int64_t i = 0; i < V_; i += 8) mx = vmaxq_s16(mx, sm_load8(a, base + i, V_ - i, INT16_MIN));
  const int16_t qx = vmaxvq_s16(mx);
  const SmShift sh(s, clip);
  const int16x8_t qv = vdupq_n_s16(qx);
  // t of 8 elements: d = x - qx in int32, p = d * mant (|p| < 2^31)
  auto tt = [&](int16x8_t x, int32x4_t& t0, int32x4_t& t1) {
    t0 = sh.t(vmulq_n_s32(vsubl_s16(vget_low_s16(x), vget_low_s16(qv)), s.mant));
    t1 = sh.t(vmulq_n_s32(vsubl_high_s16(x, qv), s.mant));
  };
  uint64x2_t z = vdupq_n_u64(0);
  for (int64_t i = 0; i < V_; i += 8) {  // e is padded: the tail writes 8 entries
    int32x4_t t0, t1;
    tt(sm_load8(a, base + i, V_ - i, qx), t0, t1);
    const uint32x4_t e0 = vandq_u32(expq4(vreinterpretq_u32_s32(vnegq_s32(t0)), 16, tb), lanes4(V_ - i));
    const uint32x4_t e1 = vandq_u32(expq4(vreinterpretq_u32_s32(vnegq_s32(t1)), 16, tb), lanes4(V_ - i - 4));
    vst1q_u32(e + i, e0);
    vst1q_u32(e + i + 4, e1);
    z = vpadalq_u32(z, e0);
    z = vpadalq_u32(z, e1);
  }
  const int64_t Z = int64_t(vaddvq_u64(z));
  const uint32_t F = uint32_t(kSat62 / Z);
  const int32_t lnZ = a.out == kLogSoftmaxI16 ? int32_t(lnq16(uint64_t(Z))) : 0;
  int64_t i = 0;
  for (; i < V_; i += 8) {
    int32x4_t t0 = vdupq_n_s32(0), t1 = t0;
    if (a.out == kLogSoftmaxI16) tt(sm_load8(a, base + i, V_ - i, qx), t0, t1);
    const int32x4_t o0 = sm_out4(a.out, vld1q_u32(e + i), t0, F, lnZ);
    const int32x4_t o1 = sm_out4(a.out, vld1q_u32(e + i + 4), t1, F, lnZ);
    if (V_ - i >= 8) {
      sm_store8v(a, base + i, o0, o1);
    } else {
      int32_t ob[8];
      vst1q_s32(ob, o0);
      vst1q_s32(ob + 4, o1);
      for (int64_t j = i; j < V_; ++j) sm_store(a, base + j, ob[j - i]);
    }
  }
}

// ---- int8 rows of >= 128 valid columns: tables of k = qx - x (K = qx - min + 1 <= 256 entries) -
// e_k (Q30) is split into 4 byte planes and the outputs into 1 (u8) or 2 (16-bit) byte planes; a
// plane is looked up 16 elements at a time with vqtbl4q_u8 / vqtbx4q_u8 over its 64-entry blocks.
// k is first clamped to the plane's last distinct entry (the tail of a plane is constant), which
// often leaves one block; an all-zero plane is skipped. The sums of the e planes are exact (u16
// lanes flushed to u64 every 128 steps). The same values as the per-element formula.

struct SmPlane {
  uint8x16x4_t blk[4];
  uint8x16_t lim;  // the clamp of k
  int nb;          // blocks in use (0: the plane is 0 for every valid k)
};
// Plane p[0..K) (padded to a multiple of 16 with anything): its constant tail cut off.
inline SmPlane sm_plane(const uint8_t* p, int K) {
  SmPlane t;
  const uint8_t last = p[K - 1];
  int L = 1;  // entries [L - 1, K) equal the last one
  const uint8x16_t lv = vdupq_n_u8(last);
  for (int i0 = (K - 1) & ~15; i0 >= 0; i0 -= 16) {
    uint8x16_t ne = vmvnq_u8(vceqq_u8(vld1q_u8(p + i0), lv));
    ne = vandq_u8(ne, lanes16(K - 1 - i0));  // entries < K - 1 only
    if (vmaxvq_u8(ne)) {
      int j = 15;
      while (p[i0 + j] == last || i0 + j >= K - 1) --j;
      L = i0 + j + 2;
      break;
    }
  }
  t.nb = L == 1 && last == 0 ? 0 : (L + 63) / 64;
  t.lim = vdupq_n_u8(uint8_t(L - 1));
  for (int b = 0; b < 4; ++b) {  // unused blocks: never selected (k - 64 b is out of range), zeroed
    if (b < t.nb) t.blk[b] = vld1q_u8_x4(p + 64 * b);
    else t.blk[b].val[0] = t.blk[b].val[1] = t.blk[b].val[2] = t.blk[b].val[3] = vdupq_n_u8(0);
  }
  return t;
}
template <int NB>
inline uint8x16_t sm_look(const SmPlane& t, uint8x16_t k) {
  k = vminq_u8(k, t.lim);
  uint8x16_t r = vqtbl4q_u8(t.blk[0], k);
  if (NB > 1) r = vqtbx4q_u8(r, t.blk[1], vsubq_u8(k, vdupq_n_u8(64)));
  if (NB > 2) r = vqtbx4q_u8(r, t.blk[2], vsubq_u8(k, vdupq_n_u8(128)));
  if (NB > 3) r = vqtbx4q_u8(r, t.blk[3], vsubq_u8(k, vdupq_n_u8(192)));
  return r;
}
// k = qx - x of 16 elements (a byte, wrapping) and the lane mask; the tail padded with qx (k = 0).
inline uint8x16_t sm_k16(const int8_t* x, int64_t left, int8_t qx) {
  int8x16_t v;
  if (left >= 16) {
    v = vld1q_s8(x);
  } else {
    int8_t b[16];
    for (int j = 0; j < 16; ++j) b[j] = j < left ? x[j] : qx;
    v = vld1q_s8(b);
  }
  return vreinterpretq_u8_s8(vsubq_s8(vdupq_n_s8(qx), v));
}
// sum over the V_ elements of plane[qx - x].
template <int NB>
uint64_t sm_plane_sum(const SmPlane& t, const int8_t* x, int64_t V_, int8_t qx) {
  uint64x2_t tot = vdupq_n_u64(0);
  for (int64_t c0 = 0; c0 < V_; c0 += 16 * 128) {  // u16 lanes: <= 2 * 255 per step
    const int64_t c1 = V_ - c0 < 16 * 128 ? V_ : c0 + 16 * 128;
    uint16x8_t acc = vdupq_n_u16(0);
    int64_t i = c0;
    for (; i + 16 <= c1; i += 16) acc = vpadalq_u8(acc, sm_look<NB>(t, sm_k16(x + i, 16, qx)));
    if (i < c1) acc = vpadalq_u8(acc, vandq_u8(sm_look<NB>(t, sm_k16(x + i, c1 - i, qx)), lanes16(c1 - i)));
    tot = vpadalq_u32(tot, vpaddlq_u16(acc));
  }
  return vaddvq_u64(tot);
}
inline uint64_t sm_plane_sum_any(const SmPlane& t, const int8_t* x, int64_t V_, int8_t qx) {
  switch (t.nb) {
    case 0: return 0;
    case 1: return sm_plane_sum<1>(t, x, V_, qx);
    case 2: return sm_plane_sum<2>(t, x, V_, qx);
    case 3: return sm_plane_sum<3>(t, x, V_, qx);
    default: return sm_plane_sum<4>(t, x, V_, qx);
  }
}
// Output of elements [0, V_) from the planes (lo; hi for 16-bit outputs), y at the row start.
template <int NB>
void sm_plane_out(const SmPlane& lo, const SmPlane* hi, const int8_t* x, int64_t V_, int8_t qx, uint8_t* y) {
  for (int64_t i = 0; i < V_; i += 16) {
    const uint8x16_t k = sm_k16(x + i, V_ - i, qx);
    const uint8x16_t l = lo.nb ? sm_look<NB>(lo, k) : vdupq_n_u8(0);
    if (!hi) {
      if (V_ - i >= 16) {
        vst1q_u8(y + i, l);
      } else {
        uint8_t b[16];
        vst1q_u8(b, l);
        std::memcpy(y + i, b, size_t(V_ - i));
      }
      continue;
    }
    uint8x16x2_t w;
    w.val[0] = l;
    w.val[1] = hi->nb ? sm_look<NB>(*hi, k) : vdupq_n_u8(0);
    if (V_ - i >= 16) {
      vst2q_u8(y + 2 * i, w);
    } else {
      uint8_t b[32];
      vst2q_u8(b, w);
      std::memcpy(y + 2 * i, b, size_t(2 * (V_ - i)));
    }
  }
}

// e_k tables of one (mant, exp, clip), kept across the rows of one call (per-tensor scales) and
// extended when a row needs more entries; nothing is kept across calls.
struct SmTabs {
  int32_t mant = -1, exp = 0;
  int64_t clip = -1;
  int K = 0;                       // entries [0, K) valid (a multiple of 16)
  alignas(16) uint32_t T[256];     // e_k (Q30)
  alignas(16) uint8_t P[4][256];   // its byte planes
};

void sm_row_i8(const SoftmaxArgs& a, int64_t m, int64_t V_, const RowScale& s, int64_t clip, SmTabs& c,
               const ExpTabs& tb) {
  const int64_t n = a.n, base = m * n;
  const int8_t* x = static_cast<const int8_t*>(a.x) + base;
  int8x16_t mx = vdupq_n_s8(INT8_MIN), mn = vdupq_n_s8(INT8_MAX);
  int64_t i = 0;
  for (; i + 16 <= V_; i += 16) {
    const int8x16_t v = vld1q_s8(x + i);
    mx = vmaxq_s8(mx, v), mn = vminq_s8(mn, v);
  }
  int qx = vmaxvq_s8(mx), qn = vminvq_s8(mn);
  for (; i < V_; ++i) qx = x[i] > qx ? x[i] : qx, qn = x[i] < qn ? x[i] : qn;
  const int K = qx - qn + 1, K16 = (K + 15) & ~15;
  const SmShift sh(s, clip);
  const int32x4_t lane = {0, 1, 2, 3};
  auto tk = [&](int k0) {  // t of d = -(k0 .. k0 + 3)
    return sh.t(vmulq_n_s32(vnegq_s32(vaddq_s32(lane, vdupq_n_s32(k0))), s.mant));
  };
  if (c.mant != s.mant || c.exp != s.exp || c.clip != clip) c.mant = s.mant, c.exp = s.exp, c.clip = clip, c.K = 0;
  if (c.K < K16) {
    for (int k0 = c.K; k0 < K16; k0 += 4)
      vst1q_u32(c.T + k0, expq4(vreinterpretq_u32_s32(vnegq_s32(tk(k0))), 16, tb));
    for (int k0 = c.K; k0 < K16; k0 += 16) {
      const uint8x16x4_t pl = vld4q_u8(reinterpret_cast<const uint8_t*>(c.T + k0));
      for (int p = 0; p < 4; ++p) vst1q_u8(c.P[p] + k0, pl.val[p]);
    }
    c.K = K16;
  }
  uint64_t Z = 0;
  for (int p = 0; p < 4; ++p) Z += sm_plane_sum_any(sm_plane(c.P[p], K), x, V_, int8_t(qx)) << (8 * p);
  const uint32_t F = uint32_t(kSat62 / int64_t(Z));
  const int32_t lnZ = a.out == kLogSoftmaxI16 ? int32_t(lnq16(Z)) : 0;
  // output table O[k] (u8, or u16 / i16 as two byte planes)
  alignas(16) uint16_t O[256];
  alignas(16) uint8_t OP[2][256];
  for (int k0 = 0; k0 < K16; k0 += 8) {
    const int32x4_t t0 = a.out == kLogSoftmaxI16 ? tk(k0) : vdupq_n_s32(0);
    const int32x4_t t1 = a.out == kLogSoftmaxI16 ? tk(k0 + 4) : vdupq_n_s32(0);
    const int32x4_t o0 = sm_out4(a.out, vld1q_u32(c.T + k0), t0, F, lnZ);
    const int32x4_t o1 = sm_out4(a.out, vld1q_u32(c.T + k0 + 4), t1, F, lnZ);
    vst1q_u16(O + k0, vreinterpretq_u16_s16(vcombine_s16(vmovn_s32(o0), vmovn_s32(o1))));
  }
  for (int k0 = 0; k0 < K16; k0 += 16) {
    const uint8x16x2_t pl = vld2q_u8(reinterpret_cast<const uint8_t*>(O + k0));
    vst1q_u8(OP[0] + k0, pl.val[0]);
    vst1q_u8(OP[1] + k0, pl.val[1]);
  }
  const SmPlane lo = sm_plane(OP[0], K);
  uint8_t* y = static_cast<uint8_t*>(a.y) + base * (a.out == kSoftmaxU8 ? 1 : 2);
  if (a.out == kSoftmaxU8) {
    switch (lo.nb) {
      case 0: case 1: sm_plane_out<1>(lo, nullptr, x, V_, int8_t(qx), y); break;
      case 2: sm_plane_out<2>(lo, nullptr, x, V_, int8_t(qx), y); break;
      case 3: sm_plane_out<3>(lo, nullptr, x, V_, int8_t(qx), y); break;
      default: sm_plane_out<4>(lo, nullptr, x, V_, int8_t(qx), y); break;
    }
  } else {
    const SmPlane hi = sm_plane(OP[1], K);
    switch (lo.nb > hi.nb ? lo.nb : hi.nb) {
      case 0: case 1: sm_plane_out<1>(lo, &hi, x, V_, int8_t(qx), y); break;
      case 2: sm_plane_out<2>(lo, &hi, x, V_, int8_t(qx), y); break;
      case 3: sm_plane_out<3>(lo, &hi, x, V_, int8_t(qx), y); break;
      default: sm_plane_out<4>(lo, &hi, x, V_, int8_t(qx), y); break;
    }
  }
  sm_fill(a, base + V_, base + n);
}

void x_softmax(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t clip = sm_clip(a);
  uint32_t* e = reinterpret_cast<uint32_t*>(align64(scratch));
  const ExpTabs tb;
  SmTabs tabs;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t V_ = sm_valid(a, m), n = a.n;
    const RowScale s = a.xs[m * a.xs_stride];
    if (a.in_bits == 8 && V_ >= 128) {
      sm_row_i8(a, m, V_, s, clip, tabs, tb);
      continue;
    }
    sm_fill(a, m * n + V_, m * n + n);
    if (V_ > 0) sm_row_generic(a, m, V_, s, clip, e, tb);
  }
}

// ---- layernorm ----------------------------------------------------------------------------------

// x' = shift_s(x - x0, c) of 8 elements from k (|x'| <= 2^22); fewer than 8 left: padded with x0
// (x' = 0).
struct LnLoad {
  const LayernormArgs& a;
  int64_t x0;
  int c;
  void operator()(int64_t k, int64_t left, int32x4_t& lo, int32x4_t& hi) const {
    alignas(16) int32_t b32[8];
    alignas(16) int16_t b16[8];
    alignas(16) int8_t b8[8];
    const void* p;
    if (left >= 8) {
      p = a.in_bits == 8 ? static_cast<const void*>(static_cast<const int8_t*>(a.x) + k)
          : a.in_bits == 16 ? static_cast<const void*>(static_cast<const int16_t*>(a.x) + k)
                            : static_cast<const void*>(static_cast<const int32_t*>(a.x) + k);
    } else {
      for (int j = 0; j < 8; ++j) {
        const int64_t v = j < left ? ln_x(a, k + j) : x0;
        b32[j] = int32_t(v), b16[j] = int16_t(v), b8[j] = int8_t(v);
      }
      p = a.in_bits == 8 ? static_cast<const void*>(b8) : a.in_bits == 16 ? static_cast<const void*>(b16)
                                                                           : static_cast<const void*>(b32);
    }
    if (a.in_bits == 32) {  // x - x0 needs 33 bits
      const int32x4_t v0 = vld1q_s32(static_cast<const int32_t*>(p)), v1 = vld1q_s32(static_cast<const int32_t*>(p) + 4);
      const int32x2_t x0v = vdup_n_s32(int32_t(x0));
      const int64x2_t nc = vdupq_n_s64(-c);
      lo = lo_hi_s32(vrshlq_s64(vsubl_s32(vget_low_s32(v0), x0v), nc), vrshlq_s64(vsubl_high_s32(v0, vdupq_n_s32(int32_t(x0))), nc));
      hi = lo_hi_s32(vrshlq_s64(vsubl_s32(vget_low_s32(v1), x0v), nc), vrshlq_s64(vsubl_high_s32(v1, vdupq_n_s32(int32_t(x0))), nc));
      return;
    }
    const int16x8_t v = a.in_bits == 8 ? vmovl_s8(vld1_s8(static_cast<const int8_t*>(p)))
                                       : vld1q_s16(static_cast<const int16_t*>(p));
    const int16x8_t x0v = vdupq_n_s16(int16_t(x0));
    const int32x4_t nc = vdupq_n_s32(-c);  // c < 0 here (|x - x0| < 2^16 <= 2^P): exact left shift
    lo = vrshlq_s32(vsubl_s16(vget_low_s16(v), vget_low_s16(x0v)), nc);
    hi = vrshlq_s32(vsubl_high_s16(v, x0v), nc);
  }
};

// isqrt64 of 2 lanes (u < 2^62): the bit-by-bit square root of fixed_point.h, 32 steps for every
// lane (steps with r = 0 and bit > u change nothing, as its skip loop).
inline uint64x2_t visqrt2(uint64x2_t u) {
  uint64x2_t r = vdupq_n_u64(0);
  for (int it = 0; it < 32; ++it) {
    const uint64x2_t bit = vdupq_n_u64(uint64_t{1} << (62 - 2 * it));
    const uint64x2_t t = vaddq_u64(r, bit);
    const uint64x2_t ge = vcgeq_u64(u, t);
    u = vsubq_u64(u, vandq_u64(ge, t));
    r = vaddq_u64(vshrq_n_u64(r, 1), vandq_u64(ge, bit));
  }
  return r;
}

// Four elements of a layernorm run: z = shift_s((x' - mu) * R, sh), w = gm * z + bo * 2^16 (g
// non-null), lanes outside `keep` zeroed, stored to out; wm keeps the running max |w|.
inline void ln_half(const LnRow& r, int32x4_t muv, int32x2_t Rv, int64x2_t nsh, int32x4_t xp, const int32_t* g,
                    const int32_t* bo, int64_t* out, uint32x4_t keep, uint64x2_t& wm) {
  const int32x4_t dd = vsubq_s32(xp, muv);
  int64x2_t z0 = vdupq_n_s64(0), z1 = z0;
  if (r.sh <= 62) {
    z0 = vrshlq_s64(vmull_s32(vget_low_s32(dd), Rv), nsh);
    z1 = vrshlq_s64(vmull_high_s32(dd, vcombine_s32(Rv, Rv)), nsh);
  }
  if (g) {
    const int32x4_t z = lo_hi_s32(z0, z1), gv = vld1q_s32(g), bv = vld1q_s32(bo);
    z0 = vmlal_s32(vshll_n_s32(vget_low_s32(bv), 16), vget_low_s32(z), vget_low_s32(gv));
    z1 = vmlal_high_s32(vshll_high_n_s32(bv, 16), z, gv);
  }
  const uint64x2_t k0 = vmovl_u32(vget_low_u32(keep)), k1 = vmovl_high_u32(keep);
  z0 = vandq_s64(z0, vreinterpretq_s64_u64(vshlq_n_u64(k0, 32) | k0));
  z1 = vandq_s64(z1, vreinterpretq_s64_u64(vshlq_n_u64(k1, 32) | k1));
  vst1q_s64(out, z0);
  vst1q_s64(out + 2, z1);
  wm = maxu(wm, maxu(absu(z0), absu(z1)));
}

// segments > 1 (RWKV's GroupNorm over heads): runs of L = d / segments elements, statistics per run
// (any L >= 1: a short run is one block padded with its anchor). Per batch of up to 64 runs: the
// stats of each run, the runs' square roots 2 at a time, then w of each run from x' again (a
// block's stores past the run write zeros that the next run overwrites); one quantizer per row.
__attribute__((noinline)) void x_layernorm_seg(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));  // int64 [pad16(d) + 16]
  const int64_t D = a.d, runs = a.segments, L = D / runs;
  const int64_t inner = a.inner < 1 ? 1 : a.inner;
  const int P = ln_P(L), lg = ln_log2(L);
  constexpr int kB = 64;
  LnPre pre[kB];
  int64_t mus[kB], x0s[kB];
  int cs[kB];
  alignas(16) uint64_t us[kB + 2], rs[kB + 2];
  alignas(16) int32_t gx[8], bx[8];
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const LnEps eps = ln_eps(a, a.xs[m * a.xs_stride]);
    const int64_t chbase = a.gm ? ln_ch(a, m, 0) : 0;
    uint64x2_t wm = vdupq_n_u64(0);
    for (int64_t rb = 0; rb < runs; rb += kB) {
      const int nb = int(runs - rb < kB ? runs - rb : kB);
      for (int t = 0; t < nb; ++t) {
        const int64_t b = base + (rb + t) * L;
        const int64_t x0 = ln_x(a, b);
        int64_t xmax = x0, xmin = x0, i = 0;
        if (a.in_bits == 32) {
          const int32_t* x = static_cast<const int32_t*>(a.x) + b;
          if (L >= 4) {
            int32x4_t vx = vdupq_n_s32(int32_t(x0)), vn = vx;
            for (; i + 4 <= L; i += 4) vx = vmaxq_s32(vx, vld1q_s32(x + i)), vn = vminq_s32(vn, vld1q_s32(x + i));
            xmax = vmaxvq_s32(vx), xmin = vminvq_s32(vn);
          }
        } else if (L >= 8) {
          int16x8_t vx = vdupq_n_s16(int16_t(x0)), vn = vx;
          for (; i + 8 <= L; i += 8) {
            const int16x8_t v = a.in_bits == 8 ? vmovl_s8(vld1_s8(static_cast<const int8_t*>(a.x) + b + i))
                                               : vld1q_s16(static_cast<const int16_t*>(a.x) + b + i);
            vx = vmaxq_s16(vx, v), vn = vminq_s16(vn, v);
          }
          xmax = vmaxvq_s16(vx), xmin = vminvq_s16(vn);
        }
        for (; i < L; ++i) {
          const int64_t v = ln_x(a, b + i);
          xmax = v > xmax ? v : xmax, xmin = v < xmin ? v : xmin;
        }
        const int c = bitlen64(uint64_t(xmax - x0 > x0 - xmin ? xmax - x0 : x0 - xmin)) - P;
        const LnLoad ld{a, x0, c};
        int64x2_t sv = vdupq_n_s64(0), qv = vdupq_n_s64(0);
        for (int64_t j = 0; j < L; j += 8) {
          int32x4_t lo, hi;
          ld(b + j, L - j, lo, hi);
          sv = vpadalq_s32(vpadalq_s32(sv, lo), hi);
          qv = vmlal_s32(qv, vget_low_s32(lo), vget_low_s32(lo));
          qv = vmlal_high_s32(qv, lo, lo);
          qv = vmlal_s32(qv, vget_low_s32(hi), vget_low_s32(hi));
          qv = vmlal_high_s32(qv, hi, hi);
        }
        const int64_t S = vaddvq_s64(sv), Q = vaddvq_s64(qv), mu = ln_mu(S, L);
        const int64_t ms = int64_t(uint64_t(Q) - 2 * uint64_t(mu) * uint64_t(S) + uint64_t(L) * uint64_t(mu) * uint64_t(mu));
        pre[t] = ln_pre(eps, c, ln_div(ms, L, lg));
        mus[t] = mu, x0s[t] = x0, cs[t] = c;
        us[t] = pre[t].u;
      }
      us[nb] = 0;
      for (int t = 0; t < nb; t += 2) vst1q_u64(rs + t, visqrt2(vld1q_u64(us + t)));
      for (int t = 0; t < nb; ++t) {
        const LnRow r = ln_fin(pre[t], mus[t], int64_t(rs[t]));
        const int64_t s0 = (rb + t) * L;
        const LnLoad ld{a, x0s[t], cs[t]};
        const int32x4_t muv = vdupq_n_s32(int32_t(r.mu));
        const int32x2_t Rv = vdup_n_s32(int32_t(r.R));
        const int64x2_t nsh = vdupq_n_s64(-r.sh);
        auto half = [&](int32x4_t xp, const int32_t* g, const int32_t* bo, int64_t* out, uint32x4_t keep) {
          ln_half(r, muv, Rv, nsh, xp, g, bo, out, keep, wm);
        };
        for (int64_t i = 0; i < L; i += 8) {
          int32x4_t lo, hi;
          ld(base + s0 + i, L - i, lo, hi);
          const int32_t *g = nullptr, *bo = nullptr;
          if (a.gm) {
            if (inner == 1 && s0 + i + 8 <= D) {  // 8 parameters inside the row's channels
              g = a.gm + chbase + s0 + i, bo = a.bo + chbase + s0 + i;
            } else {
              for (int64_t j = 0; j < 8; ++j) {
                const int64_t ch = i + j < L ? chbase + (s0 + i + j) / inner : -1;
                gx[j] = ch < 0 ? 0 : a.gm[ch], bx[j] = ch < 0 ? 0 : a.bo[ch];
              }
              g = gx, bo = bx;
            }
          }
          half(lo, g, bo, w + s0 + i, lanes4(L - i));
          half(hi, g ? g + 4 : nullptr, g ? bo + 4 : nullptr, w + s0 + i + 4, lanes4(L - i - 4));
        }
      }
    }
    a.ys[m] = vquant_scale(w, D, a.qmax, a.y, base, hmaxu64(wm), 1, int64_t{a.ae} + 16);
  }
}

void x_layernorm(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  if (a.segments > 1) return x_layernorm_seg(a, m0, m1, scratch);
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));  // int64 [pad16(d) + 16]
  const int64_t D = a.d;
  const int64_t inner = a.inner < 1 ? 1 : a.inner;
  constexpr int64_t kChunk = 512;
  alignas(16) int32_t gx[kChunk + 8], bx[kChunk + 8];  // gm, bo of each element of a chunk
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const RowScale xs = a.xs[m * a.xs_stride];
    const int64_t x0 = ln_x(a, base);
    // A0 = max |x - x0| = max(max x - x0, x0 - min x)
    int64_t xmax = x0, xmin = x0;
    {
      int64_t i = 0;
      if (a.in_bits == 32) {
        const int32_t* x = static_cast<const int32_t*>(a.x) + base;
        int32x4_t vx = vdupq_n_s32(int32_t(x0)), vn = vx;
        for (; i + 4 <= D; i += 4) vx = vmaxq_s32(vx, vld1q_s32(x + i)), vn = vminq_s32(vn, vld1q_s32(x + i));
        xmax = vmaxvq_s32(vx), xmin = vminvq_s32(vn);
      } else {
        int16x8_t vx = vdupq_n_s16(int16_t(x0)), vn = vx;
        for (; i + 8 <= D; i += 8) {
          const int16x8_t v = a.in_bits == 8 ? vmovl_s8(vld1_s8(static_cast<const int8_t*>(a.x) + base + i))
                                             : vld1q_s16(static_cast<const int16_t*>(a.x) + base + i);
          vx = vmaxq_s16(vx, v), vn = vminq_s16(vn, v);
        }
        xmax = vmaxvq_s16(vx), xmin = vminvq_s16(vn);
      }
      for (; i < D; ++i) {
        const int64_t v = ln_x(a, base + i);
        xmax = v > xmax ? v : xmax, xmin = v < xmin ? v : xmin;
      }
    }
    const uint64_t A0 = uint64_t(xmax - x0 > x0 - xmin ? xmax - x0 : x0 - xmin);
    const int c = bitlen64(A0) - ln_P(D);
    const LnLoad ld{a, x0, c};
    // S = sum x', Q = sum x'^2 (padding lanes are 0)
    int64x2_t sv = vdupq_n_s64(0), qv = vdupq_n_s64(0);
    for (int64_t i = 0; i < D; i += 8) {
      int32x4_t lo, hi;
      ld(base + i, D - i, lo, hi);
      sv = vpadalq_s32(vpadalq_s32(sv, lo), hi);
      qv = vmlal_s32(qv, vget_low_s32(lo), vget_low_s32(lo));
      qv = vmlal_high_s32(qv, lo, lo);
      qv = vmlal_s32(qv, vget_low_s32(hi), vget_low_s32(hi));
      qv = vmlal_high_s32(qv, hi, hi);
    }
    const int64_t S = vaddvq_s64(sv), Q = vaddvq_s64(qv);
    const int64_t mu = ln_mu(S, D);
    // sum (x' - mu)^2 = Q - 2 mu S + D mu^2, exact (the result fits; computed modulo 2^64)
    const int64_t ms = int64_t(uint64_t(Q) - 2 * uint64_t(mu) * uint64_t(S) + uint64_t(D) * uint64_t(mu) * uint64_t(mu));
    const LnRow r = ln_row(a, xs, c, mu, ms);
    ln_stats(a, m, x0, c, r);
    // z = shift_s((x' - mu) * R, sh) (|x' - mu| <= 2^23, R < 2^31; |z| < 2^29 as
    // (x' - mu)^2 <= ms), w = gm * z + bo * 2^16
    const int32x4_t muv = vdupq_n_s32(int32_t(r.mu));
    const int32x2_t Rv = vdup_n_s32(int32_t(r.R));
    const int64x2_t nsh = vdupq_n_s64(-r.sh);
    uint64x2_t wm = vdupq_n_u64(0);
    auto half = [&](int32x4_t xp, const int32_t* g, const int32_t* bo, int64_t* out, uint32x4_t keep) {
      ln_half(r, muv, Rv, nsh, xp, g, bo, out, keep, wm);
    };
    const int64_t chbase = (m % (a.groups < 1 ? 1 : a.groups)) * (D / inner);
    for (int64_t c0 = 0; c0 < D; c0 += kChunk) {
      const int64_t c1 = D - c0 < kChunk ? D : c0 + kChunk;
      if (a.gm) {  // per-element channel parameters of the chunk
        if (inner == 1) {
          std::memcpy(gx, a.gm + chbase + c0, size_t(c1 - c0) * 4);
          std::memcpy(bx, a.bo + chbase + c0, size_t(c1 - c0) * 4);
        } else {
          for (int64_t i = c0; i < c1;) {  // runs of `inner` elements; stores may spill into the next run
            const int64_t ch = chbase + i / inner, e0 = (i / inner + 1) * inner < c1 ? (i / inner + 1) * inner : c1;
            const int32x4_t gv = vdupq_n_s32(a.gm[ch]), bv = vdupq_n_s32(a.bo[ch]);
            for (int64_t j = i; j < e0; j += 4) vst1q_s32(gx + (j - c0), gv), vst1q_s32(bx + (j - c0), bv);
            i = e0;
          }
        }
      }
      for (int64_t i = c0; i < c1; i += 8) {  // w is padded: the tail writes 8 entries
        int32x4_t lo, hi;
        ld(base + i, D - i, lo, hi);
        const int32_t* g = a.gm ? gx + (i - c0) : nullptr;
        half(lo, g, g ? bx + (i - c0) : nullptr, w + i, lanes4(c1 - i));
        half(hi, g ? g + 4 : nullptr, g ? bx + (i - c0) + 4 : nullptr, w + i + 4, lanes4(c1 - i - 4));
      }
    }
    a.ys[m] = vquant_scale(w, D, a.qmax, a.y, base, hmaxu64(wm), 1, int64_t{a.ae} + 16);
  }
}

// ---- attention ----------------------------------------------------------------------------------

// s_u = q . kc[u] for u in [0, n) (int32, exact): 8 columns per step (the last step overlapping
// the previous one, its q zeroed there, when hd % 8 != 0), four positions at once.
void dots(const int16_t* q, const int8_t* kb, int64_t rw, int hd, int64_t n, int32_t* out) {
  if (hd < 8) {
    for (int64_t u = 0; u < n; ++u) {
      int32_t s = 0;
      for (int j = 0; j < hd; ++j) s += int32_t{q[j]} * kb[u * rw + j];
      out[u] = s;
    }
    return;
  }
  const int nc = (hd + 7) / 8;
  alignas(16) int16_t qb[256 + 8];
  int off[32];
  for (int ch = 0; ch < nc; ++ch) {
    const int j0 = 8 * ch + 8 <= hd ? 8 * ch : hd - 8;
    off[ch] = j0;
    for (int j = 0; j < 8; ++j) qb[8 * ch + j] = j0 + j >= 8 * ch ? q[j0 + j] : 0;
  }
  int64_t u = 0;
  for (; u + 4 <= n; u += 4) {
    int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    const int8_t* k0 = kb + u * rw;
    for (int ch = 0; ch < nc; ++ch) {
      const int16x8_t qv = vld1q_s16(qb + 8 * ch);
      for (int l = 0; l < 4; ++l) {
        const int16x8_t kv = vmovl_s8(vld1_s8(k0 + l * rw + off[ch]));
        acc[l] = vmlal_s16(acc[l], vget_low_s16(qv), vget_low_s16(kv));
        acc[l] = vmlal_high_s16(acc[l], qv, kv);
      }
    }
    vst1q_s32(out + u, vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3])));
  }
  for (; u < n; ++u) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int ch = 0; ch < nc; ++ch) {
      const int16x8_t qv = vld1q_s16(qb + 8 * ch), kv = vmovl_s8(vld1_s8(kb + u * rw + off[ch]));
      acc = vmlal_s16(acc, vget_low_s16(qv), vget_low_s16(kv));
      acc = vmlal_high_s16(acc, qv, kv);
    }
    out[u] = vaddvq_s32(acc);
  }
}

// {mant} and {exp} of the RowScales of positions u .. u + 3 of kv head g (positions >= n read
// position n - 1 instead).
inline void scales4(const RowScale* sc, int64_t u, int64_t n, int G, int g, int32x4_t& mant, int32x4_t& ex) {
  if (G == 1 && u + 4 <= n) {
    const int32x4x2_t v = vld2q_s32(reinterpret_cast<const int32_t*>(sc + u));
    mant = v.val[0], ex = v.val[1];
    return;
  }
  int64x1_t r[4];
  for (int l = 0; l < 4; ++l) {
    const int64_t uu = u + l < n ? u + l : n - 1;
    r[l] = vld1_s64(reinterpret_cast<const int64_t*>(sc + uu * G + g));
  }
  const int32x4_t a = vreinterpretq_s32_s64(vcombine_s64(r[0], r[1])), b = vreinterpretq_s32_s64(vcombine_s64(r[2], r[3]));
  mant = vuzp1q_s32(a, b), ex = vuzp2q_s32(a, b);
}

// o[0..W) = sum_u C[u] * v[u][0..W) (int64; C[u] < 2^31, zero-padded to a multiple of 4), W = 4 NQ.
template <int NQ>
void pv_tile(const int32_t* C, const int8_t* vb, int64_t rw, int64_t n, int64_t* o) {
  int64x2_t acc[2 * NQ];
  for (auto& v : acc) v = vdupq_n_s64(0);
  auto step = [&](const int8_t* vr, int32x4_t c4, auto lane) {
    constexpr int L = decltype(lane)::value;
    int32x4_t v32[NQ];
    if (NQ == 1) {
      uint32_t b4;
      std::memcpy(&b4, vr, 4);
      v32[0] = vmovl_s16(vget_low_s16(vmovl_s8(vcreate_s8(b4))));
    } else if (NQ == 2) {
      const int16x8_t v16 = vmovl_s8(vld1_s8(vr));
      v32[0] = vmovl_s16(vget_low_s16(v16)), v32[1] = vmovl_high_s16(v16);
    } else {
      for (int h = 0; h < NQ / 4; ++h) {
        const int8x16_t v8 = vld1q_s8(vr + 16 * h);
        const int16x8_t a = vmovl_s8(vget_low_s8(v8)), b = vmovl_high_s8(v8);
        v32[4 * h] = vmovl_s16(vget_low_s16(a)), v32[4 * h + 1] = vmovl_high_s16(a);
        v32[4 * h + 2] = vmovl_s16(vget_low_s16(b)), v32[4 * h + 3] = vmovl_high_s16(b);
      }
    }
    for (int k = 0; k < NQ; ++k) {
      acc[2 * k] = vmlal_laneq_s32(acc[2 * k], vget_low_s32(v32[k]), c4, L);
      acc[2 * k + 1] = vmlal_high_laneq_s32(acc[2 * k + 1], v32[k], c4, L);
    }
  };
  using L0 = std::integral_constant<int, 0>;
  int64_t u = 0;
  for (; u + 4 <= n; u += 4) {
    const int32x4_t c4 = vld1q_s32(C + u);
    const int8_t* vr = vb + u * rw;
    step(vr, c4, L0{});
    step(vr + rw, c4, std::integral_constant<int, 1>{});
    step(vr + 2 * rw, c4, std::integral_constant<int, 2>{});
    step(vr + 3 * rw, c4, std::integral_constant<int, 3>{});
  }
  for (; u < n; ++u) step(vb + u * rw, vdupq_n_s32(C[u]), L0{});
  for (int k = 0; k < 2 * NQ; ++k) vst1q_s64(o + 2 * k, acc[k]);
}

void pv_any(const int32_t* C, const int8_t* vb, int64_t rw, int hd, int64_t n, int64_t* o) {
  int j = 0;
  for (; j + 32 <= hd; j += 32) pv_tile<8>(C, vb + j, rw, n, o + j);
  if (hd - j >= 16) pv_tile<4>(C, vb + j, rw, n, o + j), j += 16;
  if (hd - j >= 8) pv_tile<2>(C, vb + j, rw, n, o + j), j += 8;
  if (hd - j >= 4) pv_tile<1>(C, vb + j, rw, n, o + j), j += 4;
  for (; j < hd; ++j) {
    int64_t s = 0;
    for (int64_t u = 0; u < n; ++u) s += int64_t{C[u]} * vb[u * rw + j];
    o[j] = s;
  }
}

void x_attention_heads(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch) {
  if (!attn_valid(a)) return ref_attention_heads(a, u0, u1, scratch);
  const int H = a.heads, G = a.kv_heads, hd = a.head_dim;
  const AttnScratch s = attn_scratch(scratch, a);
  const int64_t clip = attn_clip(a), rw = int64_t{G} * hd;
  uint32_t* E32 = reinterpret_cast<uint32_t*>(s.E);
  int32_t* C32 = reinterpret_cast<int32_t*>(s.C);
  const ExpTabs tb;
  const int64x2_t hi40 = vdupq_n_s64(kL40), lo40 = vdupq_n_s64(-kL40);
  for (int64_t t = u0; t < u1; ++t) {
    const int64_t m = t / H, n = a.pos + m + 1, at = t * hd;  // unit t = m H + h: q and o at t hd
    const int g = int(t % H) / (H / G);
    int64_t* o = a.work + at;
    const RowScale qs = a.qs[m];
    dots(a.q + at, a.kc + int64_t{g} * hd, rw, hd, n, s.S32);
    for (int l = 0; l < 4; ++l) s.S32[n + l] = s.S32[n - 1];  // lanes past n repeat position n - 1
    // L = clamp(shift_s(s * (kmant * qmant), qexp + kexp - 16), +-2^40) (|kmant qmant| <= 2^30,
    // the product < 2^61; vqrshl: rounding right shift, or saturating left shift that the clamp
    // turns into the same +-2^40 as shift_s's saturation), Lmax, and Emin over nonzero v mants
    int64x2_t lmax = vdupq_n_s64(INT64_MIN);
    int32x4_t emin = vdupq_n_s32(INT32_MAX);
    const int32x4_t qe = vdupq_n_s32(qs.exp - 16);
    for (int64_t u = 0; u < n; u += 4) {
      int32x4_t km, ke, vm, ve;
      scales4(a.kcs, u, n, G, g, km, ke);
      scales4(a.vcs, u, n, G, g, vm, ve);
      const int32x4_t sv = vld1q_s32(s.S32 + u), mm = vmulq_n_s32(km, qs.mant);
      const int32x4_t nsh = vnegq_s32(vmaxq_s32(vminq_s32(vaddq_s32(ke, qe), vdupq_n_s32(63)), vdupq_n_s32(-63)));
      int64x2_t L0 = vqrshlq_s64(vmull_s32(vget_low_s32(sv), vget_low_s32(mm)), vmovl_s32(vget_low_s32(nsh)));
      int64x2_t L1 = vqrshlq_s64(vmull_high_s32(sv, mm), vmovl_high_s32(nsh));
      L0 = maxv(minv(L0, hi40), lo40), L1 = maxv(minv(L1, hi40), lo40);
      vst1q_s64(s.L + u, L0);
      vst1q_s64(s.L + u + 2, L1);
      lmax = maxv(lmax, maxv(L0, L1));  // lanes past n repeat position n - 1
      emin = vminq_s32(emin, vbslq_s32(vceqzq_s32(vm), vdupq_n_s32(INT32_MAX), ve));
    }
    const int64_t Emin = vminvq_s32(emin);
    if (Emin == INT32_MAX) {
      for (int j = 0; j < hd; ++j) o[j] = 0;
      a.work_exp[t] = INT32_MAX;
      continue;
    }
    // e = exp_q(max(L - Lmax, -clip), 16), Z
    const int64x2_t lm = vdupq_n_s64(hmax64(lmax));
    const uint32x4_t clipv = vdupq_n_u32(uint32_t(clip < (int64_t{1} << 21) ? clip : int64_t{1} << 21));
    uint64x2_t z = vdupq_n_u64(0);
    for (int64_t u = 0; u < n; u += 4) {
      const uint64x2_t d0 = vreinterpretq_u64_s64(vsubq_s64(lm, vld1q_s64(s.L + u)));
      const uint64x2_t d1 = vreinterpretq_u64_s64(vsubq_s64(lm, vld1q_s64(s.L + u + 2)));
      const uint32x4_t nx = vminq_u32(vcombine_u32(vqmovn_u64(d0), vqmovn_u64(d1)), clipv);
      const uint32x4_t e = vandq_u32(expq4(nx, 16, tb), lanes4(n - u));
      vst1q_u32(E32 + u, e);
      z = vpadalq_u32(z, e);
    }
    const int64_t Z = int64_t(vaddvq_u64(z));
    const uint32_t F = uint32_t(kSat62 / Z);
    // c = shift_s(p * vmant, vexp - Emin), p = rshift_round(e * F, 46) (p * vmant < 2^31; the
    // shift is >= 0 wherever vmant != 0, and p * 0 = 0 for any shift)
    const int32x4_t em = vdupq_n_s32(int32_t(Emin));
    for (int64_t u = 0; u < n; u += 4) {
      int32x4_t vm, ve;
      scales4(a.vcs, u, n, G, g, vm, ve);
      const uint32x4_t e = vld1q_u32(E32 + u);
      const uint32x4_t p = vcombine_u32(vmovn_u64(vrshrq_n_u64(vmull_n_u32(vget_low_u32(e), F), 46)),
                                        vmovn_u64(vrshrq_n_u64(vmull_high_n_u32(e, F), 46)));
      const int32x4_t sh = vmaxq_s32(vminq_s32(vsubq_s32(ve, em), vdupq_n_s32(40)), vdupq_n_s32(0));
      const uint32x4_t c = vrshlq_u32(vmulq_u32(p, vreinterpretq_u32_s32(vm)), vnegq_s32(sh));
      vst1q_s32(C32 + u, vreinterpretq_s32_u32(vandq_u32(c, lanes4(n - u))));
    }
    pv_any(C32, a.vc + int64_t{g} * hd, rw, hd, n, o);
    a.work_exp[t] = clamp_exp(Emin + 16);
  }
}

// One cache slot: q8 = quantize_row(src, 127) and its scale (|src| <= 2^15: A0 from max / min).
RowScale cache_slot(const int16_t* src, int hd, const RowScale& sc, int8_t* dst) {
  int16x8_t mx = vdupq_n_s16(0), mn = mx;
  int j = 0;
  for (; j + 8 <= hd; j += 8) mx = vmaxq_s16(mx, vld1q_s16(src + j)), mn = vminq_s16(mn, vld1q_s16(src + j));
  int64_t hi = vmaxvq_s16(mx), lo = vminvq_s16(mn);
  for (; j < hd; ++j) hi = src[j] > hi ? src[j] : hi, lo = src[j] < lo ? src[j] : lo;
  return vquant_scale(src, hd, 127, dst, 0, uint64_t(hi > -lo ? hi : -lo), sc.mant, sc.exp);
}

void x_attention_cache(const AttentionArgs& a, void* /*scratch*/) { cache_write(a, cache_slot); }

void x_attention_out(const AttentionArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  attn_out_rows(
      a, m0, m1,
      [](int64_t* oh, int hd, int64_t sh) {
        uint64x2_t mx = vdupq_n_u64(0);
        const int64x2_t ns = vdupq_n_s64(-sh);
        int j = 0;
        for (; j + 2 <= hd; j += 2) {
          const int64x2_t v = sh > 62 ? vdupq_n_s64(0) : vrshlq_s64(vld1q_s64(oh + j), ns);
          vst1q_s64(oh + j, v);
          mx = maxu(mx, absu(v));
        }
        if (j < hd) {
          oh[j] = shs(oh[j], sh);
          mx = maxu(mx, vdupq_n_u64(mag64(oh[j])));
        }
        return hmaxu64(mx);
      },
      [&a](const int64_t* o, int64_t W, int8_t* y, int64_t Er, uint64_t A0) {
        return vquant_scale(o, W, a.qmax, y, 0, A0, 1, Er);
      });
}

}  // namespace
}  // namespace llm

extern const LlmKernel kLlmNeon = {
    Isa::neon,                "neon",
    llm::x_rmsnorm,
    llm::x_rope,              llm::x_attention_cache,
    llm::x_attention_heads,   llm::x_attention_out,
    llm::x_swiglu,            llm::x_residual_add,
    llm::x_embedding,         llm::x_hadamard,
    llm::x_softmax,           llm::x_layernorm,
    llm::x_exp};

}  // namespace fq::k
#endif  // __aarch64__
