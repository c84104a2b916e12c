// NEON (aarch64) lane helpers shared by the llm, ssm and rwkv families' neon.cc files: four int64
// lanes as two int64x2 halves, the one vector form of shift_s and exp_q (llm.h), and the int64-row
// quantizer of the ssm and rwkv families. Include only from a file of the neon variant
// (fq_isa_sources ... neon); everything has internal linkage (anonymous namespace), so each
// including file gets its own copy compiled with its own flags.
#pragma once
#if !defined(__aarch64__)
#error "neon_helpers.h is for aarch64 files only"
#endif
#include <arm_neon.h>

#include <cstdint>

#include "llm_internal.h"

namespace fq::k::neonh {
namespace {

using I2 = int64x2_t;
struct I4 {  // four int64 lanes as two halves
  I2 lo, hi;
};

inline I2 d64(int64_t x) { return vdupq_n_s64(x); }
inline I2 minv(I2 a, I2 b) { return vbslq_s64(vcgtq_s64(a, b), b, a); }
inline I2 maxv(I2 a, I2 b) { return vbslq_s64(vcgtq_s64(b, a), b, a); }
inline I2 clampv(I2 x, int64_t lo, int64_t hi) { return maxv(minv(x, d64(hi)), d64(lo)); }
inline I4 clampv(I4 x, int64_t lo, int64_t hi) { return {clampv(x.lo, lo, hi), clampv(x.hi, lo, hi)}; }
inline I4 widen(int32x4_t x) { return {vmovl_s32(vget_low_s32(x)), vmovl_high_s32(x)}; }
// int32x4 of four int64 lanes known to be in int32 range.
inline int32x4_t narrow(I4 x) { return vcombine_s32(vmovn_s64(x.lo), vmovn_s64(x.hi)); }
inline uint64x2_t absu(I2 x) { return vreinterpretq_u64_s64(vabsq_s64(x)); }  // mag64
inline uint64x2_t maxu(uint64x2_t a, uint64x2_t b) { return vbslq_u64(vcgtq_u64(a, b), a, b); }

// shift_s(x, s) per lane, one s for every lane (llm.h).
inline I2 vshs(I2 x, int64_t s) {
  if (s == 0) return x;
  if (s > 62) return d64(0);
  if (s > 0) return vrshlq_s64(x, d64(-s));  // (x + 2^(s-1)) >> s without overflow
  const int64_t l = -s;
  const I2 sat = vbslq_s64(vcltzq_s64(x), d64(-llm::kSat62), d64(llm::kSat62));
  const uint64x2_t nz = vtstq_s64(x, x);
  if (l >= 62) return vbslq_s64(nz, sat, d64(0));
  const uint64x2_t big = vcgeq_u64(absu(x), vdupq_n_u64(uint64_t{1} << (62 - l)));
  return vbslq_s64(big, sat, vshlq_s64(x, d64(l)));
}
inline I4 vshs(I4 x, int64_t s) { return {vshs(x.lo, s), vshs(x.hi, s)}; }

// A 16-entry uint32 table lookup per lane (index in [0, 15]) by byte shuffle.
inline uint32x4_t lookup16(const uint8x16x4_t& tab, uint32x4_t idx) {
  const uint32x4_t bytes = vmlaq_u32(vdupq_n_u32(0x03020100u), idx, vdupq_n_u32(0x04040404u));
  return vreinterpretq_u32_u8(vqtbl4q_u8(tab, vreinterpretq_u8_u32(bytes)));
}
// rshift_round of four uint64 products to uint32 (results < 2^32).
template <int S>
inline uint32x4_t rmul_u32(uint32x4_t a, uint32x4_t b) {
  return vcombine_u32(vmovn_u64(vrshrq_n_u64(vmull_u32(vget_low_u32(a), vget_low_u32(b)), S)),
                      vmovn_u64(vrshrq_n_u64(vmull_high_u32(a, b), S)));
}

// exp_q(-nx, F) for four lanes 0 <= nx (llm.h), 9 <= F <= 24; Q30 as uint32. Beyond 2^(F+5) the
// result is 0 either way, so nx is capped there and every field fits 32 bits: t < 2^(F+6) <= 2^30;
// r * C is a 32-bit product for F <= 16 (r < 2^8), a 64-bit one above.
template <int F>
inline uint32x4_t vexpq(I4 nx) {
  static_assert(F > 8 && F <= 24, "F in (8, 24]");
  const I2 cap = d64(int64_t{1} << (F + 5));
  const uint32x4_t x = vreinterpretq_u32_s32(narrow(I4{minv(nx.lo, cap), minv(nx.hi, cap)}));
  const uint32x4_t t = rmul_u32<16>(x, vdupq_n_u32(uint32_t(llm::kLog2eQ16)));
  const uint32x4_t n = vshrq_n_u32(t, F);
  const uint32x4_t i = vandq_u32(vshrq_n_u32(t, F - 8), vdupq_n_u32(255));
  static const uint8x16x4_t th = vld1q_u8_x4(reinterpret_cast<const uint8_t*>(kExp2HiQ30));
  static const uint8x16x4_t tl = vld1q_u8_x4(reinterpret_cast<const uint8_t*>(kExp2LoQ30));
  const uint32x4_t P = rmul_u32<30>(lookup16(th, vshrq_n_u32(i, 4)), lookup16(tl, vandq_u32(i, vdupq_n_u32(15))));
  const uint32x4_t r = vandq_u32(t, vdupq_n_u32((1u << (F - 8)) - 1));
  uint32x4_t rc;
  if constexpr (F <= 16) rc = vrshrq_n_u32(vmulq_u32(r, vdupq_n_u32(uint32_t(kExp2ChordQ32))), F - 8);  // r * C < 2^32
  else rc = rmul_u32<F - 8>(r, vdupq_n_u32(uint32_t(kExp2ChordQ32)));
  const uint32x4_t v = vsubq_u32(P, rmul_u32<32>(P, rc));
  const uint32x4_t e = vrshlq_u32(v, vnegq_s32(vreinterpretq_s32_u32(n)));
  return vbicq_u32(e, vcgtq_u32(n, vdupq_n_u32(31)));
}

// quantize_row (llm.h) of the int64 row whose lanes i..i+3 are gen(i) (element i alone: gen1(i)),
// given A0 = max |v|: the one NEON row quantizer of the ssm and rwkv families (llm's rows of
// int16 / int32 values take the int32-lane form in llm/neon.cc). x' * F with |x'| <= 2^23, F <
// 2^34 as vmull_s32 of 17-bit halves of F.
template <class Gen, class Gen1>
inline int64_t vquant_gen(int64_t n, int qmax, const llm::QRow& o, uint64_t A0, int* dout, Gen gen, Gen1 gen1) {
  llm::QParams p;
  if (!llm::quant_setup(n, qmax, o, A0, dout, &p)) return 0;
  const int32x2_t F0 = vdup_n_s32(int32_t(p.F & 0x1FFFF)), F1 = vdup_n_s32(int32_t(p.F >> 17));
  const int32x4_t hi = vdupq_n_s32(qmax), lo = vdupq_n_s32(-qmax);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const int32x4_t x = narrow(vshs(gen(i), p.d));
    const int32x2_t xl = vget_low_s32(x), xh = vget_high_s32(x);
    const I2 pl = vaddq_s64(vshlq_n_s64(vmull_s32(xl, F1), 17), vmull_s32(xl, F0));
    const I2 ph = vaddq_s64(vshlq_n_s64(vmull_s32(xh, F1), 17), vmull_s32(xh, F0));
    const int32x4_t q = vmaxq_s32(vminq_s32(narrow(I4{vrshrq_n_s64(pl, 40), vrshrq_n_s64(ph, 40)}), hi), lo);
    const int16x4_t qh = vmovn_s32(q);
    if (o.q8) vst1_lane_s32(reinterpret_cast<int32_t*>(o.q8 + i), vreinterpret_s32_s8(vmovn_s16(vcombine_s16(qh, qh))), 0);
    else vst1_s16(o.q16 + i, qh);
  }
  llm::quant_tail(i, n, p, qmax, o, gen1);
  *dout = p.d;
  return p.A;
}

}  // namespace
}  // namespace fq::k::neonh
