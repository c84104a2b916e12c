// Internal helpers of the rwkv family (fq/kernels/rwkv.h), shared by ref.cc and the ISA variants:
// the per-row constants and per-element formulas of the contract, written once (the SIMD variants
// use them for their row set-up and their scalar tails). Internal linkage (anonymous namespace) as
// in llm_internal.h, whose helpers (shs, expq, qparams, qelem, normalize, scale_of_i) these build on.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../llm/llm_internal.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/rwkv.h"

namespace fq::k::rwkv {
namespace {

using llm::expq;
using llm::shs;

constexpr int64_t kL18 = int64_t{1} << 18;
constexpr int64_t kL40 = int64_t{1} << 40;
constexpr int64_t kNegExpFloor = INT32_MIN;   // neg_exp's -2^31 (e^z >= 128)

using llm::QRow;
using llm::qrow;
using llm::quant_tail;
using llm::zero_row;

// ---- mix ----------------------------------------------------------------------------------------

// The row constants of mix: A = shs(a * ma, sa), P = shs(p * mp, sp), u = shs(md * mdm, sd)
// (clamped), all in the common unit 2^-e (Q16 for mu).
struct MixRow {
  int64_t ma, sa, mp, sp, mdm, sd, e;
};
inline MixRow mix_row(const RwkvMixArgs& a, int64_t m) {
  const RowScale as = a.as[m], ps = a.ps[m];
  int64_t ea = as.exp, ep = ps.exp;
  if (as.mant == 0) ea = ep;  // a zero row takes the other's unit, so it costs no precision
  if (ps.mant == 0) ep = ea;
  const int64_t lo = ea < ep ? ea : ep, hi = ea < ep ? ep : ea;
  MixRow r;
  r.e = hi < lo + 12 ? hi : lo + 12;
  r.ma = as.mant, r.sa = ea - r.e;
  r.mp = ps.mant, r.sp = ep - r.e;
  r.mdm = a.md ? a.mds[m].mant : 0;
  r.sd = a.md ? int64_t{a.mds[m].exp} - 16 : 0;
  return r;
}
// mu of element i of row m (Q16, |mu| <= 2^18).
inline int64_t mix_mu(const RwkvMixArgs& a, const MixRow& r, int64_t m, int64_t i) {
  const int64_t u = a.md ? clamp64(shs(int64_t{a.md[m * a.n + i]} * r.mdm, r.sd), -kL40, kL40) : 0;
  return clamp64((a.mu_c ? int64_t{a.mu_c[i]} : 0) + u, -kL18, kL18);
}
// v = A * 2^16 + (P - A) * mu of element i of row m (|v| < 2^62).
inline int64_t mix_v(const RwkvMixArgs& a, const MixRow& r, int64_t m, int64_t i) {
  const int64_t k = m * a.n + i;
  const int64_t A = shs(int64_t{a.a[k]} * r.ma, r.sa), P = shs(int64_t{a.p[k]} * r.mp, r.sp);
  return A * 65536 + (P - A) * mix_mu(a, r, m, i);
}
inline RowScale mix_scale(int64_t A, int qmax, int d, const MixRow& r) {
  return llm::scale_of_i(A, qmax, d, 1, r.e + 16);
}

// x_mix's driver for the SIMD variants: rows software-pipelined over the two int64 rows of scratch
// (rwkv_scratch). Row m + 1's v is formed before row m is quantized, so row m's chain (its maximum,
// the quantizer's division, the scale) overlaps independent work. v_row(r, m, v) writes row m's v
// and returns max |v|; quant(m, v, A0, &d) quantizes row m and returns its A.
template <class VRow, class Quant>
void mix_pipelined(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch, VRow v_row, Quant quant) {
  if (m0 >= m1) return;
  int64_t* buf[2] = {reinterpret_cast<int64_t*>(llm::align64(scratch)), nullptr};
  buf[1] = buf[0] + llm::pad16(a.n) + 16;
  MixRow r = mix_row(a, m0);
  uint64_t A0 = v_row(r, m0, buf[0]);
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t* v = buf[(m - m0) & 1];
    const MixRow rm = r;
    const uint64_t A0m = A0;
    if (m + 1 < m1) {
      r = mix_row(a, m + 1);
      A0 = v_row(r, m + 1, buf[(m + 1 - m0) & 1]);
    }
    int d = 0;
    const int64_t A = quant(m, v, A0m, &d);
    a.ys[m] = mix_scale(A, a.qmax, d, rm);
  }
}

// ---- fixed --------------------------------------------------------------------------------------

inline int64_t fixed_lo(const RwkvFixedArgs& a) { return a.out_bits == 16 ? INT16_MIN : INT32_MIN; }
inline int64_t fixed_hi(const RwkvFixedArgs& a) { return a.out_bits == 16 ? INT16_MAX : INT32_MAX; }
// z of element i of row m.
inline int64_t fixed_z(const RwkvFixedArgs& a, int64_t m, int64_t i) {
  const RowScale s = a.xs[m];
  const int64_t z = clamp64(shs(int64_t{a.x[m * a.n + i]} * s.mant, int64_t{s.exp} - a.frac), -kL40, kL40);
  return clamp64(z + (a.bias ? a.bias[i] : 0), fixed_lo(a), fixed_hi(a));
}
inline void fixed_store(const RwkvFixedArgs& a, int64_t k, int64_t z) {
  if (a.out_bits == 16) static_cast<int16_t*>(a.y)[k] = int16_t(z);
  else static_cast<int32_t*>(a.y)[k] = int32_t(z);
}

// ---- neg_exp ------------------------------------------------------------------------------------

// t = z - L of element i of row m (|t| < 2^41).
inline int64_t neg_exp_t(const RwkvNegExpArgs& a, int64_t m, int64_t i) {
  const RowScale s = a.xs[m];
  const int64_t z = clamp64(shs(int64_t{a.x[m * a.n + i]} * s.mant, int64_t{s.exp} - 24), -kL40, kL40);
  return z + (a.bias ? a.bias[i] : 0) - kRwkvExpShiftQ24;
}
inline int32_t neg_exp_y(int64_t t) {
  return int32_t(t > 0 ? kNegExpFloor : -2 * expq(t < -kL40 ? -kL40 : t, 24));
}

// ---- relu_sq, mul -------------------------------------------------------------------------------

inline int64_t relu_sq_v(int64_t x) { return x > 0 ? x * x : 0; }
inline RowScale relu_sq_unit(const RowScale& s) {
  return llm::normalize(uint64_t(int64_t{s.mant} * s.mant), 2 * int64_t{s.exp});
}
inline RowScale mul_unit(const RowScale& a, const RowScale& b) {
  return llm::normalize(uint64_t(int64_t{a.mant} * b.mant), int64_t{a.exp} + b.exp);
}
// The row scale of quantize_row's (A, d) in the unit u.
inline RowScale unit_scale(int64_t A, int qmax, int d, const RowScale& u) {
  return llm::scale_of_i(A, qmax, d, u.mant, u.exp);
}


// ---- l2norm, head_bonus: per-head operators ----------------------------------------------------

constexpr int64_t kL20 = int64_t{1} << 20;
constexpr int64_t kL24 = int64_t{1} << 24;

// Head size N = n / heads, or 0 when the heads do not split the row (heads < 1, n not a multiple
// of heads, n < 1): every variant then returns without writing anything.
inline int64_t head_size(int64_t n, int heads) {
  return heads >= 1 && n >= 1 && n % heads == 0 ? n / heads : 0;
}

// l2norm: v = x * clamp(c) (|v| <= 2^39); the head's shift d from A0 = max |v| (> 0), the
// reciprocal R from S = sum v'^2 (>= 2^44: r >= 2^22), and the output of one v' = shift_s(v, d).
inline int64_t l2_c(int32_t c) { return clamp64(c, -kL24, kL24); }
inline int l2_d(uint64_t A0) { return llm::bitlen64(A0) - 23; }
inline int64_t l2_R(uint64_t S) { return int64_t(((uint64_t{1} << 61) - 1) / isqrt64(S)); }
inline int16_t l2_y(int64_t vp, int64_t R) { return int16_t(clamp64(rshift_round(vp * R, 46), -32767, 32767)); }

// head_bonus: the row constants from max |T| (Tmax) and the row scales. W_i = shift_s(y_i * my,
// sy) + shift_s(shift_s(T_i, d1) * mz, sz) in the unit 2^-e (mz = 0 when there is no Z).
inline int64_t bonus_c(int32_t c) { return clamp64(c, -kL20, kL20); }
struct BonusRow {
  int64_t d1, mz, my, sy, sz, e;
};
inline BonusRow bonus_row(const RwkvBonusArgs& a, int64_t m, uint64_t Tmax) {
  const RowScale ys = a.ys[m], vs = a.vs[m], ps = a.ps[m];
  BonusRow r;
  const int b = llm::bitlen64(Tmax);
  r.d1 = b > 29 ? b - 29 : 0;
  r.mz = int64_t{vs.mant} * ps.mant;   // <= 2^30
  if (Tmax == 0) r.mz = 0;
  r.my = ys.mant;
  int64_t ey = ys.exp, et = int64_t{vs.exp} + ps.exp + 16 - r.d1;
  if (r.my == 0) ey = et;   // no Y: Z's unit
  if (r.mz == 0) et = ey;   // no Z: Y's unit (neither: W = 0, e irrelevant)
  r.e = ey < et ? ey : et;
  r.sy = ey - r.e, r.sz = et - r.e;
  return r;
}
inline int64_t bonus_w(const BonusRow& r, int64_t y, int64_t T) {
  return shs(y * r.my, r.sy) + shs(shs(T, r.d1) * r.mz, r.sz);
}

}  // namespace

// The scalar operators (ref.cc), for variants that forward one.
void ref_mix(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_fixed(const RwkvFixedArgs& a, int64_t m0, int64_t m1);
void ref_neg_exp(const RwkvNegExpArgs& a, int64_t m0, int64_t m1);
void ref_relu_sq(const RwkvUnaryArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_mul(const RwkvMulArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_l2norm(const RwkvL2normArgs& a, int64_t m0, int64_t m1);
void ref_head_bonus(const RwkvBonusArgs& a, int64_t m0, int64_t m1, void* scratch);

}  // namespace fq::k::rwkv
