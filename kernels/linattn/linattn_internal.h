// Internal helpers of the linattn family (fq/kernels/linattn.h), shared by ref.cc and the ISA
// variants: the token / head driver of the contract, written once as a template over the row
// primitives each variant supplies: gate a state row, accumulate x^T S, write k (x) u into a state
// row, and for the RWKV extensions write_bonus (the write plus output_first's bonus row), axpy
// (o += q * bonus row) and write2 (v7's two clamped write terms). Internal linkage (anonymous namespace), as llm_internal.h, whose helpers it uses.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../llm/llm_internal.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/linattn.h"

namespace fq::k::linattn {
namespace {

using llm::bitlen64;
using llm::expq;
using llm::mag64;
using llm::shs;

constexpr int kMaxDim = 1024;
constexpr int64_t kL61 = int64_t{1} << 61;
constexpr int64_t kL16 = int64_t{1} << 16;
constexpr int64_t kL20 = int64_t{1} << 20;
using llm::kL40;

// Scalar row primitives (the definitions; SIMD variants use them for tails).
struct ScalarOps {
  // s[j] = rshift_round(G * s[j], 30), 0 <= G <= 2^30.
  static void gate(int32_t* s, int64_t n, int64_t G) {
    for (int64_t j = 0; j < n; ++j) s[j] = int32_t(rshift_round(G * s[j], 30));
  }
  // acc[j] = sum_i x[i] * S[i][j] over dk rows of width dv (acc overwritten).
  static void acc(const int32_t* S, int64_t dk, int64_t dv, const int16_t* x, int64_t* acc) {
    acc_cols(S, dk, dv, x, acc, 0);
  }
  // The same for the columns j >= j0 only (the SIMD variants' tails).
  static void acc_cols(const int32_t* S, int64_t dk, int64_t dv, const int16_t* x, int64_t* acc, int64_t j0) {
    for (int64_t j = j0; j < dv; ++j) {
      int64_t s = 0;
      for (int64_t i = 0; i < dk; ++i) s += int64_t{x[i]} * S[i * dv + j];
      acc[j] = s;
    }
  }
  // s[j] = sat32(s[j] + shift_s(kk * u[j], sh)), any sh.
  static void write(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int64_t sh) {
    for (int64_t j = 0; j < n; ++j) s[j] = saturate<int32_t>(int64_t{s[j]} + shs(kk * u[j], sh));
  }
  // output_first with a bonus: X = shift_s(kk * u[j], sh); s[j] = sat32(s[j] + X);
  // bt[j] = rshift_round(U * sat32(X), 16) (|U| <= 2^20, |bt| <= 2^35 + 1), any sh.
  static void write_bonus(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int64_t sh, int64_t U, int64_t* bt) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t x = shs(kk * u[j], sh);
      s[j] = saturate<int32_t>(int64_t{s[j]} + x);
      bt[j] = rshift_round(U * saturate<int32_t>(x), 16);
    }
  }
  // o[j] += q * bt[j] (|q| <= 2^15, |bt| <= 2^35 + 1).
  static void axpy(int64_t* o, int64_t n, int64_t q, const int64_t* bt) {
    for (int64_t j = 0; j < n; ++j) o[j] += q * bt[j];
  }
  // output_first fused (steps 4', 1, 3 for one state row and the row's key i; entry-local, the
  // output's int64 sum exact): X = shift_s(kk * u[j], sh); o[j] += q * (s[j] + rshift_round(U * sat32(X), 16));
  // s[j] = sat32(rshift_round(G * s[j], 30) + X). U = 0 without a bonus; 1 <= sh <= 62 (SIMD bodies).
  static void fused_row(int32_t* s, int64_t n, int64_t kk, int64_t q, int64_t G, int64_t U, const int32_t* u, int64_t sh,
                        int64_t* o) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t x = shs(kk * u[j], sh);
      o[j] += q * (int64_t{s[j]} + rshift_round(U * saturate<int32_t>(x), 16));
      s[j] = saturate<int32_t>(rshift_round(G * s[j], 30) + x);
    }
  }
  // RWKV v7: s[j] = sat32(s[j] + clamp(shift_s(kk * u[j], sh), +-2^40) + clamp(shift_s(bb * w[j], shb), +-2^40)),
  // any sh, shb.
  static void write2(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int64_t sh, int64_t bb, const int32_t* w,
                     int64_t shb) {
    for (int64_t j = 0; j < n; ++j)
      s[j] = saturate<int32_t>(int64_t{s[j]} + clamp64(shs(kk * u[j], sh), -kL40, kL40) +
                               clamp64(shs(bb * w[j], shb), -kL40, kL40));
  }
};

// The per (token, kv head) value side of the contract (step 2 after r, and step 3's c and u').
// r == nullptr: no delta. Returns the write shift c = c1 + c2 and fills u' (int32).
inline int64_t make_u(const LinattnArgs& a, int64_t t, int g, const int64_t* r, int32_t* up) {
  const int dv = a.dv;
  const RowScale V = a.vs[t];
  const RowScale A = a.a ? a.as[t] : a.ks[t];
  const int16_t* v = a.v + (t * a.kv_heads + g) * dv;
  int64_t u[kMaxDim];
  uint64_t mx = 0;
  const int64_t vsh = int64_t{V.exp} - a.state_exp - 16;
  for (int j = 0; j < dv; ++j) {
    int64_t e = clamp64(shs(int64_t{v[j]} * V.mant, vsh), -kL61, kL61);
    if (r) e -= clamp64(shs(shs(r[j], 15) * A.mant, int64_t{A.exp} - 31), -kL61, kL61);
    u[j] = e;
    const uint64_t m = mag64(e);
    if (m > mx) mx = m;
  }
  int64_t c1 = 0;
  if (r) {
    const int64_t b = clamp64(a.beta[t * a.kv_heads + g], -kL16, kL16);
    c1 = bitlen64(mx) > 46 ? bitlen64(mx) - 46 : 0;
    mx = 0;
    for (int j = 0; j < dv; ++j) {
      u[j] = rshift_round(shs(u[j], c1) * b, 15);
      const uint64_t m = mag64(u[j]);
      if (m > mx) mx = m;
    }
  }
  const int64_t c2 = bitlen64(mx) > 30 ? bitlen64(mx) - 30 : 0;
  for (int j = 0; j < dv; ++j) up[j] = int32_t(shs(u[j], c2));
  return c1 + c2;
}

// RWKV v7's second write value (contract "RWKV extensions", b != nullptr): from the retrieval r,
// s_j = clamp(shift_s(shift_s(r_j, 15) * A.mant, A.exp - 31), +-2^61), c3 = max(0, bitlen(max |s|) - 30),
// s'_j = shift_s(s_j, c3) (int32). Returns c3.
inline int64_t make_s(const LinattnArgs& a, int64_t t, const int64_t* r, int32_t* sp) {
  const RowScale A = a.as[t];
  int64_t s[kMaxDim];
  uint64_t mx = 0;
  for (int j = 0; j < a.dv; ++j) {
    s[j] = clamp64(shs(shs(r[j], 15) * A.mant, int64_t{A.exp} - 31), -kL61, kL61);
    const uint64_t m = mag64(s[j]);
    if (m > mx) mx = m;
  }
  const int64_t c3 = bitlen64(mx) > 30 ? bitlen64(mx) - 30 : 0;
  for (int j = 0; j < a.dv; ++j) sp[j] = int32_t(shs(s[j], c3));
  return c3;
}

// G[i] = exp_q(min(x_i, 0), F) (Q30) for the keys of kv head g, from decay row td (per key or one
// per head); G = 2^30 (the identity) without a decay.
inline void gate_row(const LinattnArgs& a, int64_t td, int64_t g, int F, int64_t* G) {
  const int dk = a.dk;
  for (int i = 0; i < dk; ++i) {
    if (!a.decay) {
      G[i] = int64_t{1} << 30;
      continue;
    }
    const int64_t x = a.decay_per_key ? a.decay[(td * a.kv_heads + g) * dk + i] : a.decay[td * a.kv_heads + g];
    G[i] = expq(x < 0 ? x : 0, F);
  }
}

// One (token t, kv head g) step of the contract (steps 1-4 with the RWKV extensions) on the
// state in a.state, the query heads' work rows (t, g*grp .. ) written; arguments valid. Every step
// after the retrieval / output-first reads is row-local (row i of the state: gate, then write), so
// the gate runs over all rows before the writes. (The SIMD variants' specialised paths fall back
// to this for a step they do not take.)
template <class Ops>
inline void head_token(const LinattnArgs& a, int64_t t, int64_t g) {
  const int dk = a.dk, dv = a.dv, Hk = a.kv_heads, Hq = a.q_heads, grp = a.q_heads / a.kv_heads;
  const int F = a.decay_frac < 8 ? 8 : a.decay_frac > 24 ? 24 : a.decay_frac;
  const bool retrieve = a.beta || a.b;
  const bool bonus = a.output_first && a.bonus;
  alignas(64) int64_t r[kMaxDim];
  alignas(64) int32_t up[kMaxDim];
  alignas(64) int32_t sp[kMaxDim];
  alignas(64) int64_t bt[kMaxDim];
  const RowScale K = a.ks[t];
  const int64_t td = a.decay_const ? 0 : t;   // the decay's row
  int32_t* S = a.state + g * dk * dv;
  const int16_t* kr = a.k + (t * Hk + g) * dk;
  const int16_t* ar = a.a ? a.a + (t * Hk + g) * dk : kr;
  const int16_t* qg = a.q + (t * Hq + g * grp) * dk;   // the group's query heads, [grp][dk]
  int64_t* og = a.work + (t * Hq + g * grp) * dv;      // their work rows, [grp][dv]
  if (a.output_first)
    for (int h = 0; h < grp; ++h) Ops::acc(S, dk, dv, qg + h * dk, og + h * dv);
  if (retrieve && a.retrieve_pre_decay) Ops::acc(S, dk, dv, ar, r);
  if (a.decay) {
    for (int i = 0; i < dk; ++i) {
      const int64_t x = a.decay_per_key ? a.decay[(td * Hk + g) * dk + i] : a.decay[td * Hk + g];
      Ops::gate(S + i * dv, dv, expq(x < 0 ? x : 0, F));
    }
  }
  if (retrieve && !a.retrieve_pre_decay) Ops::acc(S, dk, dv, ar, r);
  const int64_t c = make_u(a, t, int(g), a.beta ? r : nullptr, up);
  const int64_t sh = int64_t{K.exp} + 16 - c;
  const bool fast = sh >= 1 && sh <= 62;
  if (a.b) {
    const RowScale B = a.bs[t];
    const int16_t* br = a.b + (t * Hk + g) * dk;
    const int64_t shb = int64_t{B.exp} + 16 - make_s(a, t, r, sp);
    const bool fast2 = fast && shb >= 1 && shb <= 62;
    for (int i = 0; i < dk; ++i) {
      const int64_t kk = int64_t{kr[i]} * K.mant, bb = int64_t{br[i]} * B.mant;
      if (fast2) Ops::write2(S + i * dv, dv, kk, up, int(sh), bb, sp, int(shb));
      else ScalarOps::write2(S + i * dv, dv, kk, up, sh, bb, sp, shb);
    }
  } else if (bonus) {
    for (int i = 0; i < dk; ++i) {
      const int64_t kk = int64_t{kr[i]} * K.mant;
      const int64_t U = clamp64(a.bonus[g * dk + i], -kL20, kL20);
      if (fast) Ops::write_bonus(S + i * dv, dv, kk, up, int(sh), U, bt);
      else ScalarOps::write_bonus(S + i * dv, dv, kk, up, sh, U, bt);
      for (int h = 0; h < grp; ++h) Ops::axpy(og + h * dv, dv, qg[h * dk + i], bt);
    }
  } else {
    for (int i = 0; i < dk; ++i) {
      const int64_t kk = int64_t{kr[i]} * K.mant;
      if (fast) Ops::write(S + i * dv, dv, kk, up, int(sh));
      else ScalarOps::write(S + i * dv, dv, kk, up, sh);
    }
  }
  if (!a.output_first)
    for (int h = 0; h < grp; ++h) Ops::acc(S, dk, dv, qg + h * dk, og + h * dv);
}

// One head unit range [g0, g1): every token in order.
template <class Ops>
void heads_impl(const LinattnArgs& a, int64_t g0, int64_t g1) {
  if (!linattn_valid(a)) return;
  for (int64_t t = 0; t < a.rows; ++t)
    for (int64_t g = g0; g < g1; ++g) head_token<Ops>(a, t, g);
}

// output_first with one query head per state (Hq == Hkv; valid arguments, so no beta and no b):
// per head, per token, one fused pass over the state rows (Ops::fused_row, the steps 4', 1 and 3
// entry by entry) instead of the three passes of head_token; G per key once per call with
// decay_const. A token whose write shift is outside [1, 62] takes head_token. Same bytes.
template <class Ops>
void rwkv_heads_impl(const LinattnArgs& a, int64_t g0, int64_t g1) {
  const int dk = a.dk, dv = a.dv, Hk = a.kv_heads;
  const int F = a.decay_frac < 8 ? 8 : a.decay_frac > 24 ? 24 : a.decay_frac;
  alignas(64) int32_t up[kMaxDim];
  alignas(64) int64_t G[kMaxDim];
  for (int64_t g = g0; g < g1; ++g) {
    int32_t* S = a.state + g * dk * dv;
    const auto gates = [&](int64_t td) { gate_row(a, td, g, F, G); };
    if (!a.decay || a.decay_const) gates(0);   // the identity, or the static decay, once
    for (int64_t t = 0; t < a.rows; ++t) {
      const RowScale K = a.ks[t];
      const int64_t c = make_u(a, t, int(g), nullptr, up);
      const int64_t sh = int64_t{K.exp} + 16 - c;
      if (sh < 1 || sh > 62) {
        head_token<Ops>(a, t, g);
        continue;
      }
      if (a.decay && !a.decay_const) gates(t);
      const int16_t* kr = a.k + (t * Hk + g) * dk;
      const int16_t* qr = a.q + (t * Hk + g) * dk;
      int64_t* og = a.work + (t * Hk + g) * dv;
      for (int j = 0; j < dv; ++j) og[j] = 0;
      for (int i = 0; i < dk; ++i)
        Ops::fused_row(S + i * dv, dv, int64_t{kr[i]} * K.mant, qr[i], G[i],
                       a.bonus ? clamp64(a.bonus[g * dk + i], -kL20, kL20) : 0, up, int(sh), og);
    }
  }
}

// heads with the output_first path taken by rwkv_heads_impl (the SIMD variants' heads).
template <class Ops>
void heads_fused(const LinattnArgs& a, int64_t g0, int64_t g1) {
  if (!linattn_valid(a)) return;
  if (a.output_first && a.q_heads == a.kv_heads) rwkv_heads_impl<Ops>(a, g0, g1);
  else heads_impl<Ops>(a, g0, g1);
}

}  // namespace
}  // namespace fq::k::linattn

namespace fq::k::linattn {
namespace {

// The output row scale of row t (contract "out") from the quantizer's A and d.
inline RowScale out_scale(const LinattnArgs& a, int64_t t, int64_t A, int d) {
  const RowScale Q = a.qs[t];
  const RowScale mu = llm::normalize(uint64_t(int64_t{Q.mant} * a.scale.mant),
                                     int64_t{Q.exp} + a.scale.exp + a.state_exp);
  return llm::scale_of_i(A, 32767, d, mu.mant, mu.exp);
}

// out over rows [m0, m1): quantize each work row to int16 with its row scale (contract "out").
inline void out_impl(const LinattnArgs& a, int64_t m0, int64_t m1) {
  const bool ok = linattn_valid(a);
  const int64_t n = int64_t{a.q_heads} * a.dv;
  for (int64_t t = m0; t < m1; ++t) {
    int16_t* y = a.y + t * n;
    if (!ok) {
      for (int64_t j = 0; j < n; ++j) y[j] = 0;
      a.ys[t] = RowScale{};
      continue;
    }
    int d = 0;
    const int64_t A = quantize_row(a.work + t * n, n, 32767, nullptr, y, &d);
    a.ys[t] = out_scale(a, t, A, d);
  }
}

}  // namespace
}  // namespace fq::k::linattn
