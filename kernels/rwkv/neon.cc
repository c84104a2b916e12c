// NEON variant of the rwkv family (aarch64): the same bytes as ref.cc for every input the contract
// allows; sdot has nothing to offer here, so one variant serves neon and neondot. Four elements per
// step: int32x4 where the values fit (the int16 x mant products, exp_q's index arithmetic and tbl
// lookups, the narrowed outputs), int64x2 halves for the rest (shift_s, v = A 2^16 + (P - A) mu,
// the quantizer's x' F). NEON has no 64-bit multiply: (P - A) mu and x' F are sums of vmull_s32
// products of 32-bit halves; vrshl / vrshr are rshift_round exactly, without the add's overflow.
// Each row's last n % 4 elements take the scalar formulas of rwkv_internal.h.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../llm/neon_helpers.h"
#include "rwkv_internal.h"

namespace fq::k {
namespace rwkv {
namespace {

using namespace neonh;

inline I4 add(I4 a, I4 b) { return {vaddq_s64(a.lo, b.lo), vaddq_s64(a.hi, b.hi)}; }
inline int32x4_t load_i16(const int16_t* p) { return vmovl_s16(vld1_s16(p)); }
// x * m for int32 lanes, exact in 64 bits.
inline I4 mul(int32x4_t x, int32_t m) { return {vmull_s32(vget_low_s32(x), vdup_n_s32(m)), vmull_high_s32(x, vdupq_n_s32(m))}; }
inline I4 mul(int32x4_t x, int32x4_t y) { return {vmull_s32(vget_low_s32(x), vget_low_s32(y)), vmull_high_s32(x, y)}; }

void x_mix(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(llm::align64(scratch));
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const MixRow r = mix_row(a, m);
    const int16_t *ap = a.a + m * n, *pp = a.p + m * n, *mdp = a.md ? a.md + m * n : nullptr;
    uint64x2_t mx = vdupq_n_u64(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const I4 A = vshs(mul(load_i16(ap + i), int32_t(r.ma)), r.sa);   // |A|, |P| <= 2^42
      const I4 P = vshs(mul(load_i16(pp + i), int32_t(r.mp)), r.sp);
      I4 mu = a.mu_c ? widen(vld1q_s32(a.mu_c + i)) : I4{d64(0), d64(0)};
      if (mdp) mu = add(mu, clampv(vshs(mul(load_i16(mdp + i), int32_t(r.mdm)), r.sd), -kL40, kL40));
      const int32x4_t mu32 = narrow(clampv(mu, -kL18, kL18));
      // (P - A) mu with |P - A| <= 2^43 split at bit 22: both parts and mu fit vmull_s32
      const I2 Dl = vsubq_s64(P.lo, A.lo), Dh = vsubq_s64(P.hi, A.hi);
      const int32x4_t D22 = narrow(I4{vshrq_n_s64(Dl, 22), vshrq_n_s64(Dh, 22)});
      const int32x4_t Dlow = narrow(I4{vandq_s64(Dl, d64((1 << 22) - 1)), vandq_s64(Dh, d64((1 << 22) - 1))});
      const I4 hi = mul(D22, mu32), low = mul(Dlow, mu32);
      const I2 xl = vaddq_s64(vshlq_n_s64(A.lo, 16), vaddq_s64(vshlq_n_s64(hi.lo, 22), low.lo));
      const I2 xh = vaddq_s64(vshlq_n_s64(A.hi, 16), vaddq_s64(vshlq_n_s64(hi.hi, 22), low.hi));
      vst1q_s64(v + i, xl);
      vst1q_s64(v + i + 2, xh);
      mx = maxu(mx, maxu(absu(xl), absu(xh)));
    }
    uint64_t A0 = vgetq_lane_u64(mx, 0) > vgetq_lane_u64(mx, 1) ? vgetq_lane_u64(mx, 0) : vgetq_lane_u64(mx, 1);
    for (; i < n; ++i) {
      v[i] = mix_v(a, r, m, i);
      A0 = llm::mag64(v[i]) > A0 ? llm::mag64(v[i]) : A0;
    }
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.y, a.qmax, n, m), A0, &d,
                             [v](int64_t j) { return I4{vld1q_s64(v + j), vld1q_s64(v + j + 2)}; },
                             [v](int64_t j) { return v[j]; });
    a.ys[m] = mix_scale(A, a.qmax, d, r);
  }
}

void x_fixed(const RwkvFixedArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, lo = fixed_lo(a), hi = fixed_hi(a);
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale s = a.xs[m];
    const int64_t sh = int64_t{s.exp} - a.frac;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      I4 z = clampv(vshs(mul(load_i16(a.x + m * n + i), s.mant), sh), -kL40, kL40);
      if (a.bias) z = add(z, widen(vld1q_s32(a.bias + i)));
      const int32x4_t z32 = narrow(clampv(z, lo, hi));
      if (a.out_bits == 16) vst1_s16(static_cast<int16_t*>(a.y) + m * n + i, vmovn_s32(z32));
      else vst1q_s32(static_cast<int32_t*>(a.y) + m * n + i, z32);
    }
    for (; i < n; ++i) fixed_store(a, m * n + i, fixed_z(a, m, i));
  }
}

void x_neg_exp(const RwkvNegExpArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale s = a.xs[m];
    const int64_t sh = int64_t{s.exp} - 24;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      I4 z = clampv(vshs(mul(load_i16(a.x + m * n + i), s.mant), sh), -kL40, kL40);
      if (a.bias) z = add(z, widen(vld1q_s32(a.bias + i)));
      const I4 t = add(z, I4{d64(-kRwkvExpShiftQ24), d64(-kRwkvExpShiftQ24)});
      const uint32x4_t e = vexpq<24>(I4{maxv(vnegq_s64(t.lo), d64(0)), maxv(vnegq_s64(t.hi), d64(0))});
      // -2 e in uint32 arithmetic: e = 2^30 gives 2^31, whose int32 reading is the floor -2^31 itself
      const int32x4_t y = vreinterpretq_s32_u32(vsubq_u32(vdupq_n_u32(0), vshlq_n_u32(e, 1)));
      const uint32x4_t pos = vcombine_u32(vmovn_u64(vcgtzq_s64(t.lo)), vmovn_u64(vcgtzq_s64(t.hi)));
      vst1q_s32(a.y + m * n + i, vbslq_s32(pos, vdupq_n_s32(int32_t(kNegExpFloor)), y));
    }
    for (; i < n; ++i) a.y[m * n + i] = neg_exp_y(neg_exp_t(a, m, i));
  }
}

void x_relu_sq(const RwkvUnaryArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* x = a.x + m * n;
    // max v = max(0, max x)^2: the row maximum on 8 int16 lanes, no squares
    int16x8_t mx = vdupq_n_s16(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mx = vmaxq_s16(mx, vld1q_s16(x + i));
    int64_t xm = vmaxvq_s16(mx);
    for (; i < n; ++i) xm = x[i] > xm ? x[i] : xm;
    int d = 0;
    const int64_t A = vquant_gen(
        n, a.qmax, qrow(a.y, a.qmax, n, m), uint64_t(xm * xm), &d,
        [x](int64_t j) {
          const int32x4_t xj = vmaxq_s32(load_i16(x + j), vdupq_n_s32(0));
          return mul(xj, xj);
        },
        [x](int64_t j) { return relu_sq_v(x[j]); });
    a.ys[m] = unit_scale(A, a.qmax, d, relu_sq_unit(a.xs[m]));
  }
}

void x_mul(const RwkvMulArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *pa = a.a + m * n, *pb = a.b + m * n;
    // max |a b| on 4 int32 lanes (|a b| <= 2^30), 8 products per step
    uint32x4_t mx = vdupq_n_u32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const int16x8_t x = vld1q_s16(pa + i), y = vld1q_s16(pb + i);
      const uint32x4_t l = vreinterpretq_u32_s32(vabsq_s32(vmull_s16(vget_low_s16(x), vget_low_s16(y))));
      const uint32x4_t h = vreinterpretq_u32_s32(vabsq_s32(vmull_high_s16(x, y)));
      mx = vmaxq_u32(mx, vmaxq_u32(l, h));
    }
    uint64_t A0 = vmaxvq_u32(mx);
    for (; i < n; ++i) A0 = llm::mag64(int64_t{pa[i]} * pb[i]) > A0 ? llm::mag64(int64_t{pa[i]} * pb[i]) : A0;
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.y, a.qmax, n, m), A0, &d,
                             [pa, pb](int64_t j) { return widen(vmull_s16(vld1_s16(pa + j), vld1_s16(pb + j))); },
                             [pa, pb](int64_t j) { return int64_t{pa[j]} * pb[j]; });
    a.ys[m] = unit_scale(A, a.qmax, d, mul_unit(a.as[m], a.bs[m]));
  }
}

// 4 int32 of c clamped into [-lim, lim].
inline int32x4_t load_c(const int32_t* p, int32_t lim) {
  return vmaxq_s32(vminq_s32(vld1q_s32(p), vdupq_n_s32(lim)), vdupq_n_s32(-lim));
}
inline uint64_t hmax(uint64x2_t x) { return vgetq_lane_u64(x, 0) > vgetq_lane_u64(x, 1) ? vgetq_lane_u64(x, 0) : vgetq_lane_u64(x, 1); }
inline uint64x2_t maxabs(uint64x2_t mx, I4 x) { return maxu(mx, maxu(absu(x.lo), absu(x.hi))); }

// l2norm, head by head as in avx512.cc; the last N % 4 elements of a head take the scalar
// formulas. v = x c (vmull_s32), v' narrowed to int32 (|v'| <= 2^23), S by vmlal_s32, v' R
// (R < 2^40) as vmull_s32 of 20-bit halves of R, rshift_round(., 46) as vrshr.
void x_l2norm(const RwkvL2normArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  const int32_t lim = int32_t(kL24);
  const int64_t N4 = N & ~int64_t{3};
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      const int16_t* x = a.x + m * n + h0;
      const int32_t* c = a.c + h0;
      int16_t* y = a.y + m * n + h0;
      uint64x2_t mx = vdupq_n_u64(0);
      for (int64_t i = 0; i < N4; i += 4) mx = maxabs(mx, mul(load_i16(x + i), load_c(c + i, lim)));
      uint64_t A0 = hmax(mx);
      for (int64_t i = N4; i < N; ++i) A0 = llm::mag64(x[i] * l2_c(c[i])) > A0 ? llm::mag64(x[i] * l2_c(c[i])) : A0;
      if (A0 == 0 || a.xs[m].mant == 0) {
        for (int64_t i = 0; i < N; ++i) y[i] = 0;
        continue;
      }
      const int d = l2_d(A0);
      I2 acc = d64(0);
      for (int64_t i = 0; i < N4; i += 4) {
        const int32x4_t vp = narrow(vshs(mul(load_i16(x + i), load_c(c + i, lim)), d));
        acc = vmlal_high_s32(vmlal_s32(acc, vget_low_s32(vp), vget_low_s32(vp)), vp, vp);
      }
      uint64_t S = uint64_t(vaddvq_s64(acc));
      for (int64_t i = N4; i < N; ++i) {
        const int64_t vp = llm::shs(x[i] * l2_c(c[i]), d);
        S += uint64_t(vp * vp);
      }
      const int64_t R = l2_R(S);
      const int32x2_t R0 = vdup_n_s32(int32_t(R & ((1 << 20) - 1))), R1 = vdup_n_s32(int32_t(R >> 20));
      for (int64_t i = 0; i < N4; i += 4) {
        const int32x4_t vp = narrow(vshs(mul(load_i16(x + i), load_c(c + i, lim)), d));
        const int32x2_t vl = vget_low_s32(vp), vh = vget_high_s32(vp);
        const I2 pl = vmlal_s32(vshlq_n_s64(vmull_s32(vl, R1), 20), vl, R0);
        const I2 ph = vmlal_s32(vshlq_n_s64(vmull_s32(vh, R1), 20), vh, R0);
        const int32x4_t q = narrow(I4{vrshrq_n_s64(pl, 46), vrshrq_n_s64(ph, 46)});   // |q| <= 2^15
        vst1_s16(y + i, vmovn_s32(vmaxq_s32(vminq_s32(q, vdupq_n_s32(32767)), vdupq_n_s32(-32767))));
      }
      for (int64_t i = N4; i < N; ++i) y[i] = l2_y(llm::shs(x[i] * l2_c(c[i]), d), R);
    }
  }
}

// head_bonus as in avx512.cc: s by vmlal_s32, T = v s (|s| <= 2^45) as vmull_s32 of s >> 23 and
// its low 23 bits, Z = shift_s(T, d1) (narrowed: <= 2^29) * mz and Y = y my by vmull_s32.
void x_head_bonus(const RwkvBonusArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  int64_t* t = reinterpret_cast<int64_t*>(llm::align64(scratch));
  const int32_t lim = int32_t(kL20);
  const int64_t N4 = N & ~int64_t{3};
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *y = a.y + m * n, *v = a.v + m * n, *p = a.p + m * n;
    uint64x2_t tmx = vdupq_n_u64(0);
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      I2 acc = d64(0);
      for (int64_t i = h0; i < h0 + N4; i += 4) {
        const int32x4_t pi = load_i16(p + i), ci = load_c(a.c + i, lim);
        acc = vmlal_high_s32(vmlal_s32(acc, vget_low_s32(pi), vget_low_s32(ci)), pi, ci);
      }
      int64_t s = vaddvq_s64(acc);
      for (int64_t i = h0 + N4; i < h0 + N; ++i) s += p[i] * bonus_c(a.c[i]);
      const int32_t s1 = int32_t(s >> 23), s0 = int32_t(s & ((1 << 23) - 1));
      for (int64_t i = h0; i < h0 + N4; i += 4) {
        const int32x4_t vi = load_i16(v + i);
        const I4 hi = mul(vi, s1), lo = mul(vi, s0);
        const I4 T = {vaddq_s64(vshlq_n_s64(hi.lo, 23), lo.lo), vaddq_s64(vshlq_n_s64(hi.hi, 23), lo.hi)};
        vst1q_s64(t + i, T.lo);
        vst1q_s64(t + i + 2, T.hi);
        tmx = maxabs(tmx, T);
      }
      for (int64_t i = h0 + N4; i < h0 + N; ++i) {
        t[i] = v[i] * s;
        tmx = maxu(tmx, vdupq_n_u64(llm::mag64(t[i])));
      }
    }
    const BonusRow r = bonus_row(a, m, hmax(tmx));
    uint64x2_t mx = vdupq_n_u64(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const I4 Y = mul(load_i16(y + i), int32_t(r.my));
      const I4 Z = mul(narrow(vshs(I4{vld1q_s64(t + i), vld1q_s64(t + i + 2)}, r.d1)), int32_t(r.mz));
      const I4 W = add(vshs(Y, r.sy), vshs(Z, r.sz));
      vst1q_s64(t + i, W.lo);
      vst1q_s64(t + i + 2, W.hi);
      mx = maxabs(mx, W);
    }
    uint64_t A0 = hmax(mx);
    for (; i < n; ++i) {
      t[i] = bonus_w(r, y[i], t[i]);
      A0 = llm::mag64(t[i]) > A0 ? llm::mag64(t[i]) : A0;
    }
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.out, a.qmax, n, m), A0, &d,
                             [t](int64_t j) { return I4{vld1q_s64(t + j), vld1q_s64(t + j + 2)}; },
                             [t](int64_t j) { return t[j]; });
    a.os[m] = llm::scale_of_i(A, a.qmax, d, 1, r.e);
  }
}

}  // namespace
}  // namespace rwkv

extern const RwkvKernel kRwkvNeon = {Isa::neon,       "neon",          rwkv::x_mix, rwkv::x_fixed,
                                     rwkv::x_neg_exp, rwkv::x_relu_sq, rwkv::x_mul,
                                     rwkv::x_l2norm,  rwkv::x_head_bonus};

}  // namespace fq::k
#endif  // __aarch64__
