// Integer linear-attention family (linear / gated / delta / gated-delta recurrences, GQA): the
// recurrent matrix state of Gated DeltaNet-style layers and of ONNX LinearAttention (opset 27). The
// scalar variant (kernels/linattn/ref.cc) is the executable form of this contract; every other
// variant writes the same bytes. No floating point anywhere in the family. Shared definitions
// (RowScale, shift_s, exp_q, quantize_row, scale_of, normalize) are the llm family's (fq/kernels/llm.h);
// bitlen, rshift_round and sat32 (= saturate<int32_t>) as there and in fixed_point.h.
//
// Real-valued recurrence (one sequence; per kv head g, state S_g [dk][dv]; tokens t in order):
//   S = diag(exp(decay_t)) S                                     (gated rules; decay <= 0, log space)
//   r = S^T a_t                                                  (delta rules; a_t = k_t unless given)
//   S = S + k_t (x) u,  u = beta_t (v_t - r)  (delta rules)  or  u = v_t  (linear / gated)
//   o_t[h] = scale * S_{g(h)}^T q_t[h],  g(h) = h / (Hq / Hkv)   (GQA: Hq / Hkv query heads per state)
// ONNX LinearAttention: update_rule linear = no decay, no beta; gated = decay; delta = beta;
// gated_delta = both; its erase_gate is a = erase_gate (.) k. RWKV v7 (S_t = S diag(w) + (S a) b^T
// + v k^T in its [dv][dk] layout) maps to per-key decay, retrieve_pre_decay = 1 and a = its kk; its
// correction is written with a second key b = kk (.) a_gate instead of beta k, the one extension
// this contract does not have yet (a second write term b (x) r, built from the same r and units).
//
// Units. q, k, v, a: int16 rows with one RowScale per token (real = x * mant * 2^-exp, mant in
// [2^14, 2^15) or 0, as DI-MatMul / quantize_row produce): q [T][Hq*dk], k and a [T][Hkv*dk],
// v [T][Hkv*dv]. The state: int32 [Hkv][dk][dv], real = S * 2^-Es with a static power-of-two unit
// Es = state_exp chosen offline (calibration), zeros at the start of a sequence. decay: int32 in
// Q(F) (F = decay_frac, clamped into [8, 24]), [T][Hkv*dk] (per key dim, decay_per_key = 1) or
// [T][Hkv] (one per head), or nullptr (no gate). beta: int32 Q15 [T][Hkv] (clamped into
// [-2^16, 2^16], i.e. beta in [-2, 2]) or nullptr (no delta correction). scale: a RowScale
// (mant in [0, 2^15]), real = mant * 2^-exp (ONNX: 1/sqrt(dk) by default).
// Exps are assumed within [-2^20, 2^20]; shift_s saturates, so nothing overflows.
//
// Per token t (rows in order), per kv head g (heads independent), with K = ks[t], V = vs[t],
// A = as[t] (= K when a == nullptr) and Q = qs[t]:
//   1. gate (decay != nullptr): x_i = decay[t][g*dk + i] (per key) or decay[t][g], per key row i:
//        G_i = exp_q(min(x_i, 0), F)                                      (Q30, 0 <= G_i <= 2^30)
//        S[i][j] = rshift_round(G_i * S[i][j], 30)                         (|G * S| <= 2^61)
//      With retrieve_pre_decay = 1, step 2 is done before step 1 (RWKV v7); else after (ONNX).
//   2. update value u_j (unit 2^-(Es+16) * 2^c1):
//        e_j  = clamp(shift_s(v[t][g*dv + j] * V.mant, V.exp - Es - 16), -2^61, 2^61)   (|v*mant| <= 2^30)
//      delta (beta != nullptr): subtract the retrieval
//        r_j  = sum_i a[t][g*dk + i] * S[i][j]                             (int64, |r| <= 2^56)
//        e_j -= clamp(shift_s(shift_s(r_j, 15) * A.mant, A.exp - 31), -2^61, 2^61)
//        c1 = max(0, bitlen(max_j |e_j|) - 46);  b = clamp(beta[t][g], -2^16, 2^16)
//        u_j  = rshift_round(shift_s(e_j, c1) * b, 15)                     (|u| <= 2^47)
//      else c1 = 0, u_j = e_j (|u| <= 2^62).
//   3. write: c2 = max(0, bitlen(max_j |u_j|) - 30); u'_j = shift_s(u_j, c2) (|u'| <= 2^30);
//        c = c1 + c2;  kk_i = k[t][g*dk + i] * K.mant                      (|kk| <= 2^30)
//        S[i][j] = sat32(S[i][j] + shift_s(kk_i * u'_j, K.exp + 16 - c))   (|kk * u'| <= 2^60)
//      (c1, c2 keep the products in int64 whatever the ratio of v's range to the state's unit.)
//   4. output, for each query head h of g: o[t][h*dv + j] = sum_i q[t][h*dk + i] * S[i][j]
//      (int64 into work [T][Hq*dv], |o| <= 2^56; unit Q.mant * 2^-(Q.exp + Es)).
// out (per row t, after every head unit is done): qv, d, Am = quantize_row(o[t], 32767);
//   (mu, eu) = normalize(Q.mant * scale.mant, Q.exp + scale.exp + Es);
//   y[t] = qv (int16 [Hq*dv]); ys[t] = scale_of(Am, 32767, d, mu, eu).
//
// RWKV extensions (all off by default; docs/rwkv.md "Integer graphs"):
//   decay_const = 1: the decay has no row dimension ([Hkv*dk] or [Hkv]); every token uses row 0
//     (RWKV v5's static per-channel decay).
//   output_first = 1 (RWKV v5 / v6 order; requires beta == nullptr and b == nullptr): per token and
//     kv head, with u'_j, c and kk_i of steps 2-3 (no delta) and X_ij = shift_s(kk_i * u'_j,
//     K.exp + 16 - c) (the write term):
//       4'. output first, from the state before this token:
//             o[t][h*dv + j] = sum_i q[t][h*dk + i] * (S[i][j] + (bonus ? rshift_round(U_i * sat32(X_ij), 16) : 0))
//           with U_i = clamp(bonus[g*dk + i], -2^20, 2^20) (the bonus u, Q16 [Hkv*dk]; |S + U X / 2^16|
//           <= 2^31 + 2^35, times |q| <= 2^15, dk terms: < 2^61)
//       1. gate as above;  3. S[i][j] = sat32(S[i][j] + X_ij).
//     (RWKV v5: y = r . (S + u k v^T), S = w S + k v^T.)
//   b != nullptr (RWKV v7's second write key; requires a != nullptr, bs != nullptr, beta == nullptr,
//     retrieve_pre_decay = 1): the retrieval r_j = sum_i a[t][g*dk + i] * S[i][j] (step 2's form,
//     before the gate) is written back along b. With
//       s_j  = clamp(shift_s(shift_s(r_j, 15) * A.mant, A.exp - 31), -2^61, 2^61)   (unit 2^-(Es+16))
//       c3   = max(0, bitlen(max_j |s_j|) - 30);  s'_j = shift_s(s_j, c3);  bb_i = b[t][g*dk + i] * B.mant
//       Y_ij = shift_s(bb_i * s'_j, B.exp + 16 - c3)        (B = bs[t]; |bb * s'| <= 2^60)
//     step 3 becomes S[i][j] = sat32(S[i][j] + clamp(X_ij, -2^40, 2^40) + clamp(Y_ij, -2^40, 2^40))
//     (the clamps are part of the definition: X and Y each reach +-(2^62 - 1), so S + X + Y could
//     overflow int64; clamped, |sum| <= 2^31 + 2^41. They change the result only when a term exceeds
//     2^40 and the other one cancels it, far beyond any calibrated state unit), and e_j
//     of step 2 is v's alone (no beta). (RWKV v7: S = S diag(w) + (S a) b^T + v k^T with a = -kk,
//     b = kk * a_gate, in its [dv][dk] layout; the output is step 4 after the update.)
// Rows are a strict recurrence, so T rows in one call give the same bytes as T calls of one row
// (the prefill / decode identity). Variants vectorize over j (dv) with exact int64 sums, never
// reassociating anything that rounds.
//
// Limits: 1 <= dk, dv <= 1024, Hq % Hkv == 0, 1 <= Hkv. Invalid arguments (linattn_valid false)
// leave the state untouched and give y = 0, ys = {0, 0}.
//
// ---- Variants ----------------------------------------------------------------------------------
// heads runs over kv-head ranges [g0, g1) (independent work units: every token of those heads, in
// token order, their state and their query heads' work rows); out then runs over row ranges
// [m0, m1) after every head unit has finished. No scratch beyond args.work.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/cpu.h"
#include "fq/kernels/llm.h"

namespace fq::k {

struct LinattnArgs {
  const int16_t* q; const RowScale* qs;       // [T][Hq*dk], [T]
  const int16_t* k; const RowScale* ks;       // [T][Hkv*dk], [T]
  const int16_t* v; const RowScale* vs;       // [T][Hkv*dv], [T]
  const int16_t* a; const RowScale* as;       // retrieval key [T][Hkv*dk] + [T], or nullptr (= k)
  const int32_t* decay;                       // [T][Hkv*dk] or [T][Hkv] in Q(decay_frac), or nullptr
  int decay_per_key;                          // 1: [T][Hkv*dk]; 0: [T][Hkv]
  int decay_frac;                             // F
  const int32_t* beta;                        // [T][Hkv] Q15, or nullptr
  int retrieve_pre_decay;                     // 0: ONNX order (gate, then retrieve); 1: RWKV v7
  int64_t rows;                               // T
  int q_heads, kv_heads, dk, dv;              // Hq, Hkv
  int state_exp;                              // Es
  RowScale scale;                             // output factor
  int32_t* state;                             // [Hkv][dk][dv] in/out
  int16_t* y; RowScale* ys;                   // [T][Hq*dv], [T]
  int64_t* work;                              // o [T][Hq*dv] (heads -> out)
  // RWKV extensions (see above); the defaults keep the plain contract.
  int decay_const = 0;                        // 1: decay has no row dimension
  int output_first = 0;                       // 1: RWKV v5 / v6 order
  const int32_t* bonus = nullptr;             // [Hkv*dk] Q16 (output_first only), or nullptr
  const int16_t* b = nullptr;                 // [T][Hkv*dk] second write key (v7), or nullptr
  const RowScale* bs = nullptr;               // [T]
};

bool linattn_valid(const LinattnArgs& a);

struct LinattnKernel {
  Isa isa;
  const char* name;
  void (*heads)(const LinattnArgs& a, int64_t g0, int64_t g1);
  void (*out)(const LinattnArgs& a, int64_t m0, int64_t m1);
};

const LinattnKernel* linattn_kernel(Isa want);
const LinattnKernel* const* linattn_kernels(size_t* count);

}  // namespace fq::k
