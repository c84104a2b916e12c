// Integer RWKV element-wise family (RWKV v5 / v6 / v7 blocks, docs/rwkv.md "Integer graphs"): the
// token-shift mix x + (x_prev - x) * mu (constant mu from a codebook or int8, or data-dependent mu),
// the fixed-point rescale that feeds a DULUT activation, the integer data-dependent decay of v6
// (-exp(w)), ReLU squared and the element-wise product of two dynamic activations. The WKV
// recurrences are the linattn family's (linattn.h); GroupNorm / LayerNorm the llm family's. The
// scalar variant (kernels/rwkv/ref.cc) is the executable form of this contract; every other variant
// writes the same bytes. No floating point anywhere in the family.
//
// Dynamic activations, RowScale, shift_s, normalize, quantize_row, scale_of, exp_q: llm.h.
// clamp(x, lo, hi) is min(max(x, lo), hi). Every operator works on row ranges [m0, m1) of M rows
// (rows independent; no state). A row whose scale mant is 0 is an all-zero row.
//
// ---- mix: y = a + (p - a) * mu -------------------------------------------------------------------
//   a, p int16 [M][n] + as, ps [M] (a: this token's normed activation, p: the previous token's, from
//   the token shift); mu = mu_c (int32 Q16 per channel [n], or nullptr = 0) + the data-dependent
//   part md (int16 [M][n] + mds [M], or nullptr = 0). Per row m:
//     ea = as.exp, ep = ps.exp; if as.mant == 0: ea = ep; if ps.mant == 0: ep = ea
//     e  = min(max(ea, ep), min(ea, ep) + 12)                      (the finer unit, at most 2^12 finer)
//     A_i = shift_s(a_i * as.mant, ea - e);  P_i = shift_s(p_i * ps.mant, ep - e)   (|A|, |P| <= 2^42)
//     u_i = md ? clamp(shift_s(md_i * mds.mant, mds.exp - 16), -2^40, 2^40) : 0
//     m_i = clamp((mu_c ? mu_c[i] : 0) + u_i, -2^18, 2^18)         (mu in Q16, |mu| <= 4)
//     v_i = A_i * 2^16 + (P_i - A_i) * m_i                          (|v| <= 2^58 + 2^61 < 2^62)
//     q, d, Am = quantize_row(v, qmax);  y = q (int8 if qmax <= 127 else int16)
//     ys = scale_of(Am, qmax, d, 1, e + 16)
//
// ---- fixed: the input of a DULUT table (lut.h) -----------------------------------------------------
//   x int16 [M][n] + xs [M], bias int32 [n] in Q(F) or nullptr, F = frac in [0, 30]:
//     z_i = clamp(clamp(shift_s(x_i * xs.mant, xs.exp - F), -2^40, 2^40) + (bias ? bias[i] : 0), lo, hi)
//   (shift_s of |x * mant| <= 2^30 saturates at 2^62; clamp before the add: the shifted value is
//   first clamped into [-2^40, 2^40].) Output int16 (out_bits 16: lo = -32768, hi = 32767) or
//   int32 (out_bits 32: lo = -2^31, hi = 2^31 - 1) [M][n]. The engine then runs the lut kernel
//   on the int16 codes (real input = code * 2^-F).
//
// ---- neg_exp: the RWKV v6 log-decay -exp(w) -------------------------------------------------------
//   x int16 [M][n] + xs [M], bias int32 [n] Q24 or nullptr; y int32 [M][n] in Q24, y <= 0:
//     z_i = clamp(shift_s(x_i * xs.mant, xs.exp - 24), -2^40, 2^40) + (bias ? bias[i] : 0)
//     t_i = z_i - L, L = 81403560 = round(7 ln 2 * 2^24)        (exp(z) = 2^7 exp(z - 7 ln 2))
//     y_i = t_i > 0 ? -2^31 : -2 * exp_q(max(t_i, -2^40), 24)  (exp_q Q30 of e^t; 2 * 2^-30 * 2^7 =
//                                                                2^-24: e^z in Q24, at most 2^31)
//   so e^z >= 128 gives the floor -2^31 (= -128.0: a decay factor e^-128, zero in any state unit).
//
// ---- relu_sq: y = max(x, 0)^2 -------------------------------------------------------------------
//   x int16 [M][n] + xs [M]: v_i = max(x_i, 0)^2 (int64, <= 2^30); q, d, Am = quantize_row(v, qmax);
//   (mu, eu) = normalize(xs.mant^2, 2 xs.exp); ys = scale_of(Am, qmax, d, mu, eu).
//
// ---- mul: y = a * b -----------------------------------------------------------------------------
//   a, b int16 [M][n] + as, bs [M]: v_i = a_i * b_i (int64, |v| <= 2^30); q, d, Am =
//   quantize_row(v, qmax); (mu, eu) = normalize(as.mant * bs.mant, as.exp + bs.exp);
//   ys = scale_of(Am, qmax, d, mu, eu).
//
// ---- l2norm: RWKV v7's kk = per-head l2-normalized (x * c) ---------------------------------------
//   x int16 [M][n] + xs [M], c int32 [n] (Q16; clamped into [-2^24, 2^24]), heads H (n = H N, N <=
//   1024); y int16 [M][n] in Q15 (real = y 2^-15; the row scale cancels). Per row and head:
//     v_i = x_i * clamp(c_i)                                   (|v| <= 2^39)
//     A0 = max |v_i|; A0 == 0 or xs.mant == 0: y = 0 for the head
//     d = bitlen(A0) - 23;  v'_i = shift_s(v_i, d)              (|v'| <= 2^23; d < 0 is exact)
//     S = sum v'_i^2 (<= 2^56);  r = isqrt64(S) (floor; r >= 2^22);  R = (2^61 - 1) / r (<= 2^39)
//     y_i = clamp(rshift_round(v'_i * R, 46), -32767, 32767)   (|v' R| <= 2^62)
//   (x / |x|: the sign of c carries through, so c = -k_k gives -kk directly.)
//
// ---- head_bonus: RWKV v7's y + v * per-head sum(p * c) ---------------------------------------------
//   y, v, p int16 [M][n] + ys, vs, ps [M] (p = r * k, from mul); c int32 [n] (Q16, clamped into
//   [-2^20, 2^20]), heads H (n = H N, N <= 1024); out int8 / int16 [M][n] (qmax) + os [M]. Per row:
//     s_h = sum_{i in head h} p_i * clamp(c_i)                 (|s| <= 2^45; unit ps 2^-16)
//     T_i = v_i * s_{h(i)}                                      (|T| <= 2^60)
//     d1 = max(0, bitlen(max_i |T_i|) - 29);  Z_i = shift_s(T_i, d1) * (vs.mant * ps.mant)
//                                             (|Z| <= 2^59; real Z 2^-et, et = vs.exp + ps.exp + 16 - d1)
//     Y_i = y_i * ys.mant                      (|Y| <= 2^30; real Y 2^-ey, ey = ys.exp)
//     no Y (ys.mant == 0): ey = et; no Z (vs.mant, ps.mant or every T zero): Z = 0, et = ey
//     e = min(ey, et);  W_i = shift_s(Y_i, ey - e) + shift_s(Z_i, et - e)   (coarser unit: right
//                                                                  shifts only; |W| < 2^61)
//     q, d, A = quantize_row(W, qmax); out = q; os = scale_of(A, qmax, d, 1, e)
//
// ---- decode_mu (scalar, once at load): element-wise vectors to Q16 -------------------------------
//   A vector of n values stored as codes c_i with a per-tensor scale s = (mant, exp) (real = value *
//   mant * 2^-exp, mant in [0, 2^15]):
//     scalar (bits 8, cb nullptr): value_i = int8 code c_i
//     codebook (bits 2..4, cb int8 [ceil(n / group)][2^bits]): value_i = cb[i / group][c_i]
//   c_i: `bits`-bit indices packed LSB first (element i at bit i * bits of the byte stream; bits 8:
//   one int8 per element). q16_i = clamp(shift_s(value_i * mant, exp - 16), -2^31, 2^31 - 1).
//   Returns false (q16 untouched) on bad arguments (bits not in {2, 3, 4, 8}, group < 1, mant out
//   of range).
//
// ---- Variants ----------------------------------------------------------------------------------
// mix, relu_sq, mul and head_bonus take scratch of rwkv_scratch(n) bytes per worker (no alignment
// needed; room for four int64 rows: two before quantize_row, and a mix call's constant mu rows);
// fixed, neg_exp and l2norm take none.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/cpu.h"
#include "fq/kernels/llm.h"

namespace fq::k {

constexpr int64_t kRwkvExpShiftQ24 = 81403560;   // round(7 ln 2 * 2^24)

struct RwkvMixArgs {
  const int16_t* a; const RowScale* as;       // [M][n], [M]
  const int16_t* p; const RowScale* ps;       // [M][n], [M]
  const int32_t* mu_c;                        // [n] Q16, or nullptr
  const int16_t* md; const RowScale* mds;     // [M][n], [M], or nullptr
  int64_t n;
  int qmax;                                   // int8 if <= 127 else int16
  void* y; RowScale* ys;
};

struct RwkvFixedArgs {
  const int16_t* x; const RowScale* xs;       // [M][n], [M]
  const int32_t* bias;                        // [n] Q(frac), or nullptr
  int64_t n;
  int frac;                                   // F in [0, 30]
  int out_bits;                               // 16 or 32
  void* y;                                    // int16 / int32 [M][n]
};

struct RwkvNegExpArgs {
  const int16_t* x; const RowScale* xs;       // [M][n], [M]
  const int32_t* bias;                        // [n] Q24, or nullptr
  int64_t n;
  int32_t* y;                                 // [M][n] Q24
};

struct RwkvUnaryArgs {                        // relu_sq
  const int16_t* x; const RowScale* xs;
  int64_t n; int qmax;
  void* y; RowScale* ys;
};

struct RwkvMulArgs {
  const int16_t* a; const RowScale* as;
  const int16_t* b; const RowScale* bs;
  int64_t n; int qmax;
  void* y; RowScale* ys;
};

struct RwkvL2normArgs {
  const int16_t* x; const RowScale* xs;       // [M][n], [M]
  const int32_t* c;                           // [n] Q16
  int64_t n; int heads;
  int16_t* y;                                 // [M][n] Q15
};

struct RwkvBonusArgs {
  const int16_t* y; const RowScale* ys;       // [M][n], [M]
  const int16_t* v; const RowScale* vs;
  const int16_t* p; const RowScale* ps;
  const int32_t* c;                           // [n] Q16
  int64_t n; int heads; int qmax;
  void* out; RowScale* os;                    // int8 if qmax <= 127 else int16
};

struct RwkvKernel {
  Isa isa;
  const char* name;
  void (*mix)(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*fixed)(const RwkvFixedArgs& a, int64_t m0, int64_t m1);
  void (*neg_exp)(const RwkvNegExpArgs& a, int64_t m0, int64_t m1);
  void (*relu_sq)(const RwkvUnaryArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*mul)(const RwkvMulArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*l2norm)(const RwkvL2normArgs& a, int64_t m0, int64_t m1);
  void (*head_bonus)(const RwkvBonusArgs& a, int64_t m0, int64_t m1, void* scratch);
};

size_t rwkv_scratch(int64_t n);

bool decode_mu(const uint8_t* codes, const int8_t* cb, int bits, int64_t group, RowScale s,
               int64_t n, int32_t* q16);

const RwkvKernel* rwkv_kernel(Isa want);
const RwkvKernel* const* rwkv_kernels(size_t* count);

}  // namespace fq::k
