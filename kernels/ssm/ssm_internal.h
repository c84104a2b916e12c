// Internal helpers of the ssm family (fq/kernels/ssm.h), shared by ref.cc and the ISA variants:
// the per-element formulas of the contract, written once. Internal linkage (anonymous namespace)
// as in llm_internal.h, whose helpers (shs, expq, swiglu_v, qparams, ...) these build on.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../llm/llm_internal.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/ssm.h"

namespace fq::k::ssm {
namespace {

using llm::expq;
using llm::shs;

constexpr int64_t kSat31 = (int64_t{1} << 31) - 1;
constexpr int64_t kL17 = int64_t{1} << 17;
constexpr int64_t kL40 = int64_t{1} << 40;
constexpr int64_t kL61 = int64_t{1} << 61;
constexpr int kMaxTaps = 64;
constexpr int kMaxStates = 256;

inline int64_t clamp_s31(int64_t v) { return clamp64(v, -kSat31, kSat31); }   // +-(2^31 - 1)
// Preconditions enforced as bounds (never reading or writing past the fixed-size windows).
inline int taps_of(const SsmConvArgs& a) { return a.taps < 2 ? 2 : a.taps > kMaxTaps ? kMaxTaps : a.taps; }
inline int64_t states_of(const SsmScanArgs& a) { return a.states > kMaxStates ? kMaxStates : a.states; }

// ---- conv ---------------------------------------------------------------------------------------

// xf = sat32(shift_s(x * mant, xs.exp - Ex)).
inline int32_t conv_xf(int64_t x, const RowScale& s, int x_exp) {
  return saturate<int32_t>(shs(x * s.mant, int64_t{s.exp} - x_exp));
}
// The uniform shift of acc (Ex + Ew - 16) and of v (32 - Eu).
inline int64_t conv_zsh(const SsmConvArgs& a) { return int64_t{a.x_exp} + a.w_exp - 16; }
inline int64_t conv_ush(const SsmConvArgs& a) { return 32 - int64_t{a.u_exp}; }
// v = zq * sig(zc), zq = clamp(shift_s(acc, zsh), +-(2^31 - 1)), zc = clamp(rshift_round(zq, 4),
// +-2^17): exactly swiglu's element with g = zq, gate scale (1, 4) and up = 1.
inline int64_t conv_v(int64_t acc, int64_t zsh) { return llm::swiglu_v(clamp_s31(shs(acc, zsh)), 1, 1, 4); }

// ---- scan ---------------------------------------------------------------------------------------

// softplus of xq (Q12, |xq| <= 2^17) in Q24 from kSoftplusQ24 (linear interpolation).
inline int64_t softplus_q24(int64_t xq) {
  if (xq >= (int64_t{1} << 16)) return xq << 12;
  if (xq < -(int64_t{1} << 16)) return 0;
  const int64_t j = xq + (int64_t{1} << 16), i = j >> 8, r = j & 255;
  const int64_t t0 = kSoftplusQ24[i], t1 = kSoftplusQ24[i + 1];
  return t0 + rshift_round((t1 - t0) * r, 8);
}

// Bm / Cm of one row: rshift_round(b * mant, 14).
inline int32_t scan_bc(int64_t b, const RowScale& s) { return int32_t(rshift_round(b * s.mant, 14)); }

// The per (row, channel) scalars of the scan.
struct ScanCh {
  int64_t dq;    // softplus(dt) in Q24
  int64_t W;     // dt * u, unit 2^-Eu
  int64_t bsh;   // shift of W * Bm[n]
};
inline ScanCh scan_ch(const SsmScanArgs& a, int64_t m, int64_t c) {
  const int64_t C = a.channels, k = m * C + c;
  const RowScale ds = a.dts[m];
  const int64_t bias = a.dt_bias ? int64_t{a.dt_bias[c]} : 0;  // |shs| < 2^62: the sum fits
  const int64_t xq = clamp64(shs(int64_t{a.dt[k]} * ds.mant, int64_t{ds.exp} - 12) + bias, -kL17, kL17);
  ScanCh p;
  p.dq = softplus_q24(xq);
  p.W = clamp_s31(shs(p.dq * a.u[k], 24));
  p.bsh = int64_t{a.u_exp} + a.bs[m].exp - 14 - a.h_exp[c];
  return p;
}
// t = dt |A| in Q16: shift_s(dq * a, a_frac + 8), kept <= 2^40 (exp_q's range; it is 0 there).
inline int64_t scan_t(int64_t dq, int64_t an, int a_frac) {
  const int64_t t = shs(dq * an, int64_t{a_frac} + 8);
  return t > kL40 ? kL40 : t;
}
// One state update h' = sat32(rshift_round(g * h, 30) + bb).
inline int32_t scan_h(int64_t g, int64_t h, int64_t bb) {
  return saturate<int32_t>(rshift_round(g * h, 30) + bb);
}
// The per-row shift of ysum (without Eh[c]) and the shift of d * u of scan_y.
inline int64_t scan_ysh0(const SsmScanArgs& a, int64_t m) { return int64_t{a.cs[m].exp} - 14 - a.y_exp; }
inline int64_t scan_dsh(const SsmScanArgs& a) { return 16 + int64_t{a.u_exp} - a.y_exp; }
// yt from ysum = sum_n Cm[n] h[n].
inline int64_t scan_y(const SsmScanArgs& a, int64_t m, int64_t c, int64_t ysum) {
  const int64_t ysh = a.h_exp[c] + scan_ysh0(a, m);
  return clamp64(shs(ysum, ysh) + shs(int64_t{a.d[c]} * a.u[m * a.channels + c], scan_dsh(a)), -kL61, kL61);
}

// Bm / Cm of one row (scan_bc of v[0..N)) in a SIMD scan's order, zeros up to N rounded up to P:
// per group of G states the even ones, then the odd ones (G = 2: the natural order).
template <int G, int P, typename T>
void bc_order(const int16_t* v, const RowScale& s, int64_t N, T* out) {
  for (int64_t n = 0; n < (N + P - 1) / P * P; ++n) {
    const int64_t src = n / G * G + 2 * (n % (G / 2)) + (n % G) / (G / 2);
    out[n] = T(src < N ? scan_bc(v[src], s) : 0);
  }
}

// The row and channel-block loop of the SIMD scans (L channels per block, Bm / Cm by
// bc_order<G, P>): block(m, c, nc, Bm, Cm, bsh, fast) for the channels [c, c + nc), nc <= L, with
// bsh[l] the shift of W * Bm[n] of channel c + l and fast = (a_frac + 8 and every bsh in [1, 62]).
template <int L, int G, int P, typename T, class Block>
void scan_blocks(const SsmScanArgs& a, int64_t c0, int64_t c1, Block block) {
  const int64_t N = states_of(a), S = a.states, tsh = int64_t{a.a_frac} + 8;
  alignas(64) T Bm[kMaxStates], Cm[kMaxStates];
  alignas(64) int64_t bsh[L];
  for (int64_t m = 0; m < a.rows; ++m) {
    bc_order<G, P>(a.b + m * S, a.bs[m], N, Bm);
    bc_order<G, P>(a.c + m * S, a.cs[m], N, Cm);
    const int64_t bsh0 = int64_t{a.u_exp} + a.bs[m].exp - 14;
    for (int64_t c = c0; c < c1; c += L) {
      const int nc = int(c1 - c < L ? c1 - c : L);
      bool fast = tsh >= 1 && tsh <= 62;
      for (int l = 0; l < nc; ++l) {
        bsh[l] = bsh0 - a.h_exp[c + l];
        fast = fast && bsh[l] >= 1 && bsh[l] <= 62;
      }
      block(m, c, nc, static_cast<const T*>(Bm), static_cast<const T*>(Cm), static_cast<const int64_t*>(bsh), fast);
    }
  }
}
// ---- the row passes (conv_out, scan_out, requant), given a row quantizer ------------------------
// quant(v, n, qmax, q8, q16, &d) -> A has quantize_row's contract for v of int64 (conv_out,
// scan_out) and of int16 / int32 (requant): each variant passes its own (a generic lambda).

template <class Quant>
void conv_out_rows(const SsmConvArgs& a, int64_t m0, int64_t m1, Quant quant) {
  const int64_t C = a.channels;
  for (int64_t m = m0; m < m1; ++m) {
    int d = 0;
    const int64_t A = quant(a.work + m * C, C, a.qmax, a.u + m * C, static_cast<int16_t*>(nullptr), &d);
    a.us[m] = scale_of(A, a.qmax, d, 1, 32);
  }
}

template <class Quant>
void scan_out_rows(const SsmScanArgs& a, int64_t m0, int64_t m1, Quant quant) {
  const int64_t C = a.channels;
  for (int64_t m = m0; m < m1; ++m) {
    int d = 0;
    const int64_t A = quant(a.work + m * C, C, 32767, static_cast<int8_t*>(nullptr), a.y + m * C, &d);
    a.ys[m] = scale_of(A, 32767, d, 1, a.y_exp);
  }
}

template <class Quant>
void requant_rows(const RequantArgs& a, int64_t m0, int64_t m1, Quant quant) {
  for (int64_t m = m0; m < m1; ++m) {
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * a.n : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * a.n;
    int d = 0;
    const int64_t A = a.in_bits == 16 ? quant(static_cast<const int16_t*>(a.x) + m * a.n, a.n, a.qmax, y8, y16, &d)
                                      : quant(static_cast<const int32_t*>(a.x) + m * a.n, a.n, a.qmax, y8, y16, &d);
    a.ys[m] = scale_of(A, a.qmax, d, a.xs[m].mant, a.xs[m].exp);
  }
}

}  // namespace

// The scalar operators (ref.cc), for variants that forward a part.
void ref_conv(const SsmConvArgs& a, int64_t c0, int64_t c1);
void ref_conv_out(const SsmConvArgs& a, int64_t m0, int64_t m1);
void ref_scan(const SsmScanArgs& a, int64_t c0, int64_t c1);
void ref_scan_out(const SsmScanArgs& a, int64_t m0, int64_t m1);
void ref_requant(const RequantArgs& a, int64_t m0, int64_t m1, void* scratch);

}  // namespace fq::k::ssm
