// NEON variant of the ssm family (aarch64): the same bytes as ref.cc for every input the contract
// allows; neondot has nothing more to offer, so one variant serves both. Four lanes at a time:
// int32x4 where the values fit (h, xf, exp_q's index arithmetic and table lookups by tbl), int64x2
// halves for the products (vmull_s32 / vmull_u32) and the rounding shifts (vrshl / vrshr are
// rshift_round exactly, without the overflow of the add).
//   scan: 4 channels per step (their scan_ch and scan_y as vectors), 4 states per step; conv: 4
//   channels per step (the swiglu sigmoid by a Newton reciprocal made exact, as the x86 variants);
//   the row quantizer 4 elements per step.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../llm/neon_helpers.h"
#include "ssm_internal.h"

namespace fq::k {
namespace ssm {
namespace {

using namespace neonh;

inline int32x4_t narrow_sat(I4 x) { return vcombine_s32(vqmovn_s64(x.lo), vqmovn_s64(x.hi)); }

// ---- row quantizer ------------------------------------------------------------------------------

inline I4 load4(const int64_t* p) { return {vld1q_s64(p), vld1q_s64(p + 2)}; }
inline I4 load4(const int32_t* p) { return widen(vld1q_s32(p)); }
inline I4 load4(const int16_t* p) { return widen(vmovl_s16(vld1_s16(p))); }

// quantize_row of n values of type T (max |v|, then neonh::vquant_gen); returns A and writes d.
template <typename T>
int64_t vquant_row(const T* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout) {
  uint64x2_t mx = vdupq_n_u64(0);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const I4 x = load4(v + i);
    mx = maxu(mx, maxu(absu(x.lo), absu(x.hi)));
  }
  uint64_t A0 = vgetq_lane_u64(mx, 0) > vgetq_lane_u64(mx, 1) ? vgetq_lane_u64(mx, 0) : vgetq_lane_u64(mx, 1);
  for (; i < n; ++i) A0 = llm::mag64(v[i]) > A0 ? llm::mag64(v[i]) : A0;
  return vquant_gen(n, qmax, llm::QRow{q8, q16}, A0, dout, [v](int64_t j) { return load4(v + j); },
                    [v](int64_t j) { return int64_t(v[j]); });
}

// vquant_row as a value for the row passes of ssm_internal.h.
constexpr auto kQuant = [](const auto* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* d) {
  return vquant_row(v, n, qmax, q8, q16, d);
};

// ---- conv ---------------------------------------------------------------------------------------

// y * f for y in [0, 2^32) and |f| < 2^31 (vmull_u32 reads f as f + 2^32 when f < 0).
inline I2 mul_uy(uint32x2_t y, I2 f) {
  const I2 p = vreinterpretq_s64_u64(vmull_u32(y, vmovn_u64(vreinterpretq_u64_s64(f))));
  return vsubq_s64(p, vandq_s64(vreinterpretq_s64_u64(vcltzq_s64(f)), vreinterpretq_s64_u64(vshll_n_u32(y, 32))));
}

// v = zq * sig(zc) of swiglu for four lanes (the Newton reciprocal of the x86 variants).
inline I4 vsilu(I4 zq) {
  const int32x4_t zc = narrow(I4{clampv(vshs(zq.lo, 4), -kL17, kL17), clampv(vshs(zq.hi, 4), -kL17, kL17)});
  const uint32x4_t E = vshrq_n_u32(vexpq<12>(widen(vabsq_s32(zc))), 14);
  const uint32x4_t den = vaddq_u32(E, vdupq_n_u32(1u << 16));
  const uint32x4_t np = vbslq_u32(vcltzq_s32(zc), E, vdupq_n_u32(1u << 16));
  const uint32x2_t dl = vget_low_u32(den), dh = vget_high_u32(den);
  // y ~ 2^48 / den in [2^31, 2^32): (24 - 8 x) / 17 (in uint32: the true value is < 2^32, so the
  // wrap of 6063483241 cancels), then two Newton steps
  const uint32x4_t y0 = vmlsq_u32(vdupq_n_u32(uint32_t(6063483241 - (int64_t{1} << 32))), den, vdupq_n_u32(30840));
  I2 yl = vreinterpretq_s64_u64(vmovl_u32(vget_low_u32(y0))), yh = vreinterpretq_s64_u64(vmovl_high_u32(y0));
  for (int it = 0; it < 2; ++it) {
    const uint32x2_t ul = vmovn_u64(vreinterpretq_u64_s64(yl)), uh = vmovn_u64(vreinterpretq_u64_s64(yh));
    const I2 fl = vshrq_n_s64(vsubq_s64(d64(int64_t{1} << 48), vreinterpretq_s64_u64(vmull_u32(dl, ul))), 16);
    const I2 fh = vshrq_n_s64(vsubq_s64(d64(int64_t{1} << 48), vreinterpretq_s64_u64(vmull_u32(dh, uh))), 16);
    yl = vaddq_s64(yl, vshrq_n_s64(mul_uy(ul, fl), 32));
    yh = vaddq_s64(yh, vshrq_n_s64(mul_uy(uh, fh), 32));
  }
  const uint32x4_t y = vcombine_u32(vmovn_u64(vreinterpretq_u64_s64(yl)), vmovn_u64(vreinterpretq_u64_s64(yh)));
  uint32x4_t q = vcombine_u32(vshrn_n_u64(vmull_u32(vget_low_u32(np), vget_low_u32(y)), 32),
                              vshrn_n_u64(vmull_high_u32(np, y), 32));
  // rem = np * 2^16 - q * den in (-den, 2 den): exact as int32
  const int32x4_t rem = vreinterpretq_s32_u32(vsubq_u32(vshlq_n_u32(np, 16), vmulq_u32(q, den)));
  q = vaddq_u32(q, vreinterpretq_u32_s32(vreinterpretq_s32_u32(vcltzq_s32(rem))));           // -1
  q = vsubq_u32(q, vcgeq_s32(rem, vreinterpretq_s32_u32(den)));                              // +1
  const int32x4_t qs = vreinterpretq_s32_u32(q);
  const int32x4_t z = narrow(zq);  // |zq| <= 2^31 - 1
  return {vmull_s32(vget_low_s32(z), vget_low_s32(qs)), vmull_high_s32(z, qs)};
}

void x_conv(const SsmConvArgs& a, int64_t c0, int64_t c1) {
  const int K = taps_of(a);
  const int64_t C = a.channels, zsh = conv_zsh(a), ush = conv_ush(a);
  int32x4_t wt[kMaxTaps], win[kMaxTaps];
  alignas(16) int32_t tmp[4];
  alignas(16) int64_t tmp64[4];
  for (int64_t c = c0; c < c1; c += 4) {
    const int nc = int(c1 - c < 4 ? c1 - c : 4);
    // 4 lanes of an int32 row (zeros past the unit); x of int16
    auto ld32 = [&](const int32_t* p) {
      if (nc == 4) return vld1q_s32(p);
      for (int l = 0; l < 4; ++l) tmp[l] = l < nc ? p[l] : 0;
      return vld1q_s32(tmp);
    };
    for (int j = 0; j < K; ++j) {
      for (int l = 0; l < 4; ++l) tmp[l] = l < nc ? a.w[(c + l) * K + j] : 0;
      wt[j] = vld1q_s32(tmp);
    }
    for (int j = 0; j < K - 1; ++j) win[j] = ld32(a.state + j * C + c);
    const I4 bias = a.bias ? widen(ld32(a.bias + c)) : I4{d64(0), d64(0)};
    for (int64_t m = 0; m < a.rows; ++m) {
      const int64_t o = m * C + c;
      const RowScale s = a.xs[m];
      for (int l = 0; l < 4; ++l) tmp[l] = l < nc ? a.x[o + l] : 0;
      const int32x4_t xv = vld1q_s32(tmp);
      const int32x2_t mant = vdup_n_s32(s.mant);
      const I4 xm{vmull_s32(vget_low_s32(xv), mant), vmull_high_s32(xv, vdupq_n_s32(s.mant))};
      win[K - 1] = narrow_sat(vshs(xm, int64_t{s.exp} - a.x_exp));
      I4 acc = bias;
      for (int j = 0; j < K; ++j) {
        acc.lo = vmlal_s32(acc.lo, vget_low_s32(wt[j]), vget_low_s32(win[j]));
        acc.hi = vmlal_high_s32(acc.hi, wt[j], win[j]);
      }
      const I4 zs = vshs(acc, zsh);
      const I4 v = vsilu(I4{clampv(zs.lo, -kSat31, kSat31), clampv(zs.hi, -kSat31, kSat31)});
      const int32x4_t uf = narrow_sat(vshs(v, ush));
      if (nc == 4) {
        vst1q_s64(a.work + o, v.lo), vst1q_s64(a.work + o + 2, v.hi);
        vst1q_s32(a.uf + o, uf);
      } else {
        vst1q_s64(tmp64, v.lo), vst1q_s64(tmp64 + 2, v.hi), vst1q_s32(tmp, uf);
        for (int l = 0; l < nc; ++l) a.work[o + l] = tmp64[l], a.uf[o + l] = tmp[l];
      }
      for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
    }
    for (int j = 0; j < K - 1; ++j) {
      vst1q_s32(tmp, win[j]);
      for (int l = 0; l < nc; ++l) a.state[j * C + c + l] = tmp[l];
    }
  }
}

void x_conv_out(const SsmConvArgs& a, int64_t m0, int64_t m1) { conv_out_rows(a, m0, m1, kQuant); }

// ---- scan ---------------------------------------------------------------------------------------

// shift_s(x, s) per lane with a per-lane shift s (as vshs; vrshl / vshl read the shift from the
// low byte, so the lanes where it would wrap are replaced by the blends).
inline I2 vshsv(I2 x, I2 s) {
  const I2 l = vnegq_s64(s);  // s <= 0: the left shift l
  const I2 lim = vshlq_s64(d64(1), maxv(vsubq_s64(d64(62), l), d64(0)));  // l >= 62: 1
  const uint64x2_t small = vcltq_u64(vreinterpretq_u64_s64(vabsq_s64(x)), vreinterpretq_u64_s64(lim));
  const I2 sat = vbslq_s64(vcltzq_s64(x), d64(-llm::kSat62), d64(llm::kSat62));
  I2 r = vbslq_s64(small, vshlq_s64(x, l), sat);  // small with l >= 62 only for x == 0
  r = vbslq_s64(vcgtzq_s64(s), vrshlq_s64(x, l), r);  // s in [1, 62]: rshift_round
  r = vbslq_s64(vceqzq_s64(s), x, r);
  return vbslq_s64(vcgtq_s64(s, d64(62)), d64(0), r);
}

// Four lanes of an int32 / int16 / int8 row from p[0..nc) (zeros past nc).
inline int32x4_t ld4(const int32_t* p, int nc) {
  if (nc == 4) return vld1q_s32(p);
  alignas(16) int32_t t[4] = {0, 0, 0, 0};
  for (int l = 0; l < nc; ++l) t[l] = p[l];
  return vld1q_s32(t);
}
template <typename T>
inline int32x4_t ld4w(const T* p, int nc) {
  alignas(16) int32_t t[4] = {0, 0, 0, 0};
  for (int l = 0; l < nc; ++l) t[l] = p[l];
  return vld1q_s32(t);
}

// scan_ch of the channels [c, c + nc) (nc <= 4) of row m: dq and W per lane (int32: dq <= 2^29).
inline void vscan_ch(const SsmScanArgs& a, int64_t m, int64_t c, int nc, int32_t* dqo, int32_t* Wo) {
  const int64_t o = m * a.channels + c;
  const RowScale ds = a.dts[m];
  const int32x4_t dt = ld4w(a.dt + o, nc);
  I4 x = vshs(I4{vmull_s32(vget_low_s32(dt), vdup_n_s32(ds.mant)), vmull_high_s32(dt, vdupq_n_s32(ds.mant))},
              int64_t{ds.exp} - 12);
  if (a.dt_bias) {
    const I4 b = widen(ld4(a.dt_bias + c, nc));
    x = I4{vaddq_s64(x.lo, b.lo), vaddq_s64(x.hi, b.hi)};
  }
  const int32x4_t xq = narrow(I4{clampv(x.lo, -kL17, kL17), clampv(x.hi, -kL17, kL17)});
  // softplus from the table (j clamped into it; the lanes outside [-2^16, 2^16) are replaced)
  const int32x4_t j = vmaxq_s32(vminq_s32(vaddq_s32(xq, vdupq_n_s32(1 << 16)), vdupq_n_s32((1 << 17) - 1)), vdupq_n_s32(0));
  alignas(16) int32_t iv[4], t0[4], t1[4];
  vst1q_s32(iv, vshrq_n_s32(j, 8));
  for (int l = 0; l < 4; ++l) t0[l] = kSoftplusQ24[iv[l]], t1[l] = kSoftplusQ24[iv[l] + 1];
  const int32x4_t T0 = vld1q_s32(t0), r = vandq_s32(j, vdupq_n_s32(255));
  int32x4_t d = vaddq_s32(T0, vrshrq_n_s32(vmulq_s32(vsubq_s32(vld1q_s32(t1), T0), r), 8));  // < 2^28
  d = vbslq_s32(vcgeq_s32(xq, vdupq_n_s32(1 << 16)), vshlq_n_s32(xq, 12), d);
  d = vbslq_s32(vcltq_s32(xq, vdupq_n_s32(-(1 << 16))), vdupq_n_s32(0), d);
  vst1q_s32(dqo, d);
  const int32x4_t u = ld4(a.u + o, nc);
  const int32x4_t w = narrow_sat(I4{vrshrq_n_s64(vmull_s32(vget_low_s32(d), vget_low_s32(u)), 24),
                                    vrshrq_n_s64(vmull_high_s32(d, u), 24)});
  vst1q_s32(Wo, vmaxq_s32(w, vdupq_n_s32(-INT32_MAX)));  // clamp to +-(2^31 - 1)
}

// The N states of one channel (N4 = N rounded up to 4; h, an padded when N != N4); returns the
// two partial sums of C . h.
inline I2 vscan_states(int32_t* h, const int32_t* an, const int32_t* Bm, const int32_t* Cm, int64_t N4,
                       int32_t dq32, int32_t W32, int64_t tsh, int64_t bsh) {
  const int32x4_t dq = vdupq_n_s32(dq32), W = vdupq_n_s32(W32);
  I2 ys = d64(0);
  for (int64_t n = 0; n < N4; n += 4) {
    const int32x4_t av = vld1q_s32(an + n), hv = vld1q_s32(h + n);
    const I4 t = vshs(I4{vmull_s32(vget_low_s32(dq), vget_low_s32(av)), vmull_high_s32(dq, av)}, tsh);
    const int32x4_t g = vreinterpretq_s32_u32(vexpq<16>(t));  // <= 2^30
    const int32x4_t bv = vld1q_s32(Bm + n), cv = vld1q_s32(Cm + n);
    const I4 bb = vshs(I4{vmull_s32(vget_low_s32(W), vget_low_s32(bv)), vmull_high_s32(W, bv)}, bsh);
    const I2 rl = vrshrq_n_s64(vmull_s32(vget_low_s32(g), vget_low_s32(hv)), 30);
    const I2 rh = vrshrq_n_s64(vmull_high_s32(g, hv), 30);
    const int32x4_t hn = narrow_sat(I4{vaddq_s64(rl, bb.lo), vaddq_s64(rh, bb.hi)});
    vst1q_s32(h + n, hn);
    ys = vmlal_s32(ys, vget_low_s32(cv), vget_low_s32(hn));
    ys = vmlal_high_s32(ys, cv, hn);
  }
  return ys;
}

// 4 channels per step (scan_blocks): scan_ch as vectors, the states of each channel, then scan_y
// as vectors (the partial sums of two channels reduced by one pairwise add).
void x_scan(const SsmScanArgs& a, int64_t c0, int64_t c1) {
  const int64_t C = a.channels, N = states_of(a), S = a.states, N4 = (N + 3) & ~int64_t{3};
  const int64_t tsh = int64_t{a.a_frac} + 8, dsh = scan_dsh(a);
  alignas(16) int32_t hb[kMaxStates], ab[kMaxStates], dqb[4], Wb[4];
  alignas(16) int64_t yt[4];
  for (int64_t n = N; n < N4; ++n) hb[n] = ab[n] = 0;  // the tail lanes of a partial step
  scan_blocks<4, 2, 4, int32_t>(a, c0, c1, [&](int64_t m, int64_t c, int nc, const int32_t* Bm, const int32_t* Cm,
                                                const int64_t* bsh, bool /*fast*/) {
    vscan_ch(a, m, c, nc, dqb, Wb);
    I2 ys[4] = {d64(0), d64(0), d64(0), d64(0)};
    for (int l = 0; l < nc; ++l) {
      int32_t* hc = a.h + (c + l) * S;
      const int32_t* ac = a.a + (c + l) * S;
      int32_t* h = hc;
      const int32_t* an = ac;
      if (N != N4) {  // a partial last step: work on padded copies
        for (int64_t n = 0; n < N; ++n) hb[n] = hc[n], ab[n] = ac[n];
        h = hb, an = ab;
      }
      ys[l] = vscan_states(h, an, Bm, Cm, N4, dqb[l], Wb[l], tsh, bsh[l]);
      if (h != hc)
        for (int64_t n = 0; n < N; ++n) hc[n] = hb[n];
    }
    const I4 he = widen(ld4w(a.h_exp + c, nc));
    const I2 ysh0 = d64(scan_ysh0(a, m));
    const int32x4_t dv = ld4(a.d + c, nc), uv = ld4(a.u + m * C + c, nc);
    const I4 du = vshs(I4{vmull_s32(vget_low_s32(dv), vget_low_s32(uv)), vmull_high_s32(dv, uv)}, dsh);
    const I2 ylo = clampv(vaddq_s64(vshsv(vpaddq_s64(ys[0], ys[1]), vaddq_s64(he.lo, ysh0)), du.lo), -kL61, kL61);
    const I2 yhi = clampv(vaddq_s64(vshsv(vpaddq_s64(ys[2], ys[3]), vaddq_s64(he.hi, ysh0)), du.hi), -kL61, kL61);
    int64_t* out = a.work + m * C + c;
    vst1q_s64(yt, ylo), vst1q_s64(yt + 2, yhi);
    for (int l = 0; l < nc; ++l) out[l] = yt[l];
  });
}

void x_scan_out(const SsmScanArgs& a, int64_t m0, int64_t m1) { scan_out_rows(a, m0, m1, kQuant); }

void x_requant(const RequantArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) { requant_rows(a, m0, m1, kQuant); }

}  // namespace
}  // namespace ssm

extern const SsmKernel kSsmNeon = {Isa::neon,   "neon",          ssm::x_conv, ssm::x_conv_out,
                                   ssm::x_scan, ssm::x_scan_out, ssm::x_requant};

}  // namespace fq::k
#endif  // __aarch64__
