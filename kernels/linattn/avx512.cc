// AVX-512 variant of the linattn family: the state-row primitives on 8 int64 lanes (vpmuldq,
// vpsraq, vpminsq / vpmaxsq, vpmovqd); the driver and the O(dv) value side are the shared ones
// (linattn_internal.h). output_first with Hq == Hkv (RWKV v5 / v6) takes fused paths: a small
// head's whole state in registers across the call's tokens (heads_small), else one pass over the
// state rows per token (heads_rows). Bit-exact to ref.cc: the same integer formulas, exact int64 sums.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>

// GCC 12 reports the `_mm512_undefined_*` placeholders inside the conversion / shift intrinsics as
// "may be used uninitialized" once inlined here (a false positive: every lane is written).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "../llm/x86_avx512_helpers.h"
#include "fq/kernels/linattn.h"
#include "linattn_internal.h"

namespace fq::k {
namespace linattn {
namespace {

inline __m512i load8x32(const int32_t* p) {
  return _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline void store8x32(int32_t* p, __m512i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi64_epi32(v));
}

struct Avx512Ops {
  static void gate(int32_t* s, int64_t n, int64_t G) {
    const __m512i g = _mm512_set1_epi64(G);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i p = _mm512_mul_epi32(load8x32(s + j), g);
      // rshift_round(p, 30) = (p >> 30) + bit 29 of p.
      const __m512i r = _mm512_add_epi64(_mm512_srai_epi64(p, 30),
                                         _mm512_and_si512(_mm512_srli_epi64(p, 29), _mm512_set1_epi64(1)));
      store8x32(s + j, r);
    }
    ScalarOps::gate(s + j, n - j, G);
  }
  static void acc(const int32_t* S, int64_t dk, int64_t dv, const int16_t* x, int64_t* acc) {
    int64_t j = 0;
    for (; j + 16 <= dv; j += 16) {
      __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
      for (int64_t i = 0; i < dk; ++i) {
        const __m512i xv = _mm512_set1_epi64(x[i]);
        a0 = _mm512_add_epi64(a0, _mm512_mul_epi32(load8x32(S + i * dv + j), xv));
        a1 = _mm512_add_epi64(a1, _mm512_mul_epi32(load8x32(S + i * dv + j + 8), xv));
      }
      _mm512_storeu_si512(acc + j, a0);
      _mm512_storeu_si512(acc + j + 8, a1);
    }
    for (; j + 8 <= dv; j += 8) {
      __m512i a0 = _mm512_setzero_si512();
      for (int64_t i = 0; i < dk; ++i)
        a0 = _mm512_add_epi64(a0, _mm512_mul_epi32(load8x32(S + i * dv + j), _mm512_set1_epi64(x[i])));
      _mm512_storeu_si512(acc + j, a0);
    }
    ScalarOps::acc_cols(S, dk, dv, x, acc, j);
  }
  static void write(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh) {
    const __m512i k = _mm512_set1_epi64(kk);
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m512i n1 = _mm512_set1_epi64(sh), n0 = _mm512_set1_epi64(sh - 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i p = _mm512_mul_epi32(load8x32(u + j), k);
      const __m512i r = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(load8x32(s + j), shr_round(p, n1, n0)), lo), hi);
      store8x32(s + j, r);
    }
    ScalarOps::write(s + j, n - j, kk, u + j, sh);
  }
  // shift_s(p, sh) for 1 <= sh <= 62: (p >> sh) + bit sh-1 of p (counts n1 = sh, n0 = sh - 1 in
  // every lane: the per-lane-count shifts are one uop on Intel, the xmm-count forms two).
  static __m512i shr_round(__m512i p, __m512i n1, __m512i n0) {
    return _mm512_add_epi64(_mm512_srav_epi64(p, n1), _mm512_and_si512(_mm512_srlv_epi64(p, n0), _mm512_set1_epi64(1)));
  }
  // 1 <= sh <= 62. X = shift_s(kk * u, sh); s = sat32(s + X); bt = rshift_round(U * sat32(X), 16).
  static void write_bonus(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t U, int64_t* bt) {
    const __m512i k = _mm512_set1_epi64(kk), uu = _mm512_set1_epi64(U), one = _mm512_set1_epi64(1);
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m512i n1 = _mm512_set1_epi64(sh), n0 = _mm512_set1_epi64(sh - 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i x = shr_round(_mm512_mul_epi32(load8x32(u + j), k), n1, n0);
      store8x32(s + j, _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(load8x32(s + j), x), lo), hi));
      const __m512i p = _mm512_mul_epi32(_mm512_min_epi64(_mm512_max_epi64(x, lo), hi), uu);
      _mm512_storeu_si512(bt + j, _mm512_add_epi64(_mm512_srai_epi64(p, 16),
                                                   _mm512_and_si512(_mm512_srli_epi64(p, 15), one)));
    }
    ScalarOps::write_bonus(s + j, n - j, kk, u + j, sh, U, bt + j);
  }
  // o += q * bt (vpmullq: |q * bt| <= 2^51).
  static void axpy(int64_t* o, int64_t n, int64_t q, const int64_t* bt) {
    const __m512i qv = _mm512_set1_epi64(q);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
      _mm512_storeu_si512(o + j, _mm512_add_epi64(_mm512_loadu_si512(o + j),
                                                  _mm512_mullo_epi64(_mm512_loadu_si512(bt + j), qv)));
    ScalarOps::axpy(o + j, n - j, q, bt + j);
  }
  // 1 <= sh, shb <= 62. s = sat32(s + clamp(shift_s(kk * u, sh), +-2^40) + clamp(shift_s(bb * w, shb), +-2^40)).
  static void write2(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t bb, const int32_t* w, int shb) {
    const __m512i k = _mm512_set1_epi64(kk), b = _mm512_set1_epi64(bb);
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m512i l40 = _mm512_set1_epi64(-kL40), h40 = _mm512_set1_epi64(kL40);
    const __m512i n1 = _mm512_set1_epi64(sh), n0 = _mm512_set1_epi64(sh - 1);
    const __m512i m1 = _mm512_set1_epi64(shb), m0 = _mm512_set1_epi64(shb - 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m512i x = shr_round(_mm512_mul_epi32(load8x32(u + j), k), n1, n0);
      const __m512i y = shr_round(_mm512_mul_epi32(load8x32(w + j), b), m1, m0);
      const __m512i r = _mm512_add_epi64(_mm512_add_epi64(load8x32(s + j), _mm512_min_epi64(_mm512_max_epi64(x, l40), h40)),
                                         _mm512_min_epi64(_mm512_max_epi64(y, l40), h40));
      store8x32(s + j, _mm512_min_epi64(_mm512_max_epi64(r, lo), hi));
    }
    ScalarOps::write2(s + j, n - j, kk, u + j, sh, bb, w + j, shb);
  }
};


// ---- RWKV output_first path (Hq == Hkv; no beta, no b by validity): fused, one pass per token ----
// Per (token, head) and state entry (i, j), with X = shift_s(kk_i u'_j, sh) (1 <= sh <= 62):
//   o_j += q_i (S_ij + bt_ij)   (bt = rshift_round(U_i sat32(X), 16), 0 without a bonus)
//   S_ij = sat32(rshift_round(G_i S_ij, 30) + X)
// i.e. steps 4', 1 and 3 of the contract entry by entry (they are entry-local; the output's int64
// sum is exact, so its order is free). A token whose sh is outside [1, 62] takes head_token.
// BONUS: kNoBonus, kBonusAny, or kBonusSmall when every |U_i| of the call's heads is below 2^16:
// then |bt| <= ((2^16 - 1) 2^31 + 2^15) / 2^16 < 2^31, and q (S + bt) = q S + q bt is two vpmuldq
// (32-bit signed operands) instead of one vpmullq (3 uops on Intel; S + bt may need 36 bits).
using V = __m512i;
inline V s64(int64_t x) { return _mm512_set1_epi64(x); }
inline __mmask8 tail8(int64_t n) { return n >= 8 ? __mmask8(0xFF) : n <= 0 ? __mmask8(0) : __mmask8((1u << n) - 1); }
inline V ld16(const int16_t* p, __mmask8 m) { return _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(m, p)); }
inline V ld32(const int32_t* p, __mmask8 m) { return _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, p)); }
inline V clampv(V x, int64_t lo, int64_t hi) { return _mm512_min_epi64(_mm512_max_epi64(x, s64(lo)), s64(hi)); }
inline V sat32v(V x) { return clampv(x, INT32_MIN, INT32_MAX); }
// rshift_round(x, s) for 1 <= s <= 62 when x + 2^(s-1) does not overflow.
inline V rsr(V x, int s) { return _mm512_srav_epi64(_mm512_add_epi64(x, s64(int64_t{1} << (s - 1))), s64(s)); }

// exp_q(min(x, 0), F) per lane (x: int32 values), 8 <= F <= 24; llm avx512's vexpq with a run-time F.
inline V vexpq_rt(V x, int F) {
  const V zero = _mm512_setzero_si512();
  V nx = _mm512_max_epi64(_mm512_sub_epi64(zero, x), zero);
  nx = _mm512_min_epi64(nx, s64(int64_t{1} << (F + 5)));   // beyond: n >= 32 -> 0 either way
  const V t = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(nx, s64(llm::kLog2eQ16)), s64(1 << 15)), 16);
  const V n = _mm512_srlv_epi64(t, s64(F));
  const V i = _mm512_srlv_epi64(t, s64(F - 8));   // bits above the 8 of i are ignored below
  const V th = _mm512_loadu_si512(kExp2HiQ30), tl = _mm512_loadu_si512(kExp2LoQ30);
  const V ha = _mm512_permutexvar_epi32(_mm512_srli_epi64(_mm512_and_si512(i, s64(0xF0)), 4), th);
  const V lb = _mm512_permutexvar_epi32(_mm512_and_si512(i, s64(0xF)), tl);
  const V P = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(ha, lb), s64(int64_t{1} << 29)), 30);
  V v = P;
  if (F > 8) {
    const V r = _mm512_and_si512(t, s64((int64_t{1} << (F - 8)) - 1));
    const V rc = _mm512_srlv_epi64(_mm512_add_epi64(_mm512_mul_epu32(r, s64(kExp2ChordQ32)), s64(int64_t{1} << (F - 9))),
                                   s64(F - 8));
    v = _mm512_sub_epi64(P, _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(P, rc), s64(int64_t{1} << 31)), 32));
  }
  const V half = _mm512_sllv_epi64(s64(1), _mm512_sub_epi64(n, s64(1)));   // n == 0: count -1 -> 0
  return _mm512_srlv_epi64(_mm512_add_epi64(v, half), n);                  // n >= 64 -> 0
}

// e = clamp(shift_s(p, vsh), +-2^61) per lane, |p| <= 2^30, any vsh (make_u without delta).
inline V make_e(V p, int64_t vsh) {
  if (vsh > 62) return _mm512_setzero_si512();
  if (vsh >= 1) return rsr(p, int(vsh));
  if (vsh == 0) return p;
  // left by l: clamp(p 2^l, +-2^61) = clamp(p, +-2^(61-l)) 2^l; l >= 62 saturates like l = 61
  const int l = vsh < -61 ? 61 : int(-vsh);
  const int64_t lim = int64_t{1} << (61 - l);
  return _mm512_sllv_epi64(clampv(p, -lim, lim), s64(l));
}
inline int c2_of(uint64_t mx) { return bitlen64(mx) > 30 ? bitlen64(mx) - 30 : 0; }

inline int clampF(int F) { return F < 8 ? 8 : F > 24 ? 24 : F; }

constexpr int kNoBonus = 0, kBonusAny = 1, kBonusSmall = 2;
// o + q (s + bt), q an int16 and s an int32 value per lane (see BONUS above).
template <int BONUS>
inline V bonus_term(V o, V q, V s, V bt) {
  if (BONUS == kBonusSmall) return _mm512_add_epi64(o, _mm512_add_epi64(_mm512_mul_epi32(q, s), _mm512_mul_epi32(q, bt)));
  return _mm512_add_epi64(o, _mm512_mullo_epi64(q, _mm512_add_epi64(s, bt)));
}

// Small heads: dv = DV in {1, 2, 4, 8}, dk <= 16, dk * dv <= 8 NV (NV <= 8 vectors): the whole
// state of a head lives in NV registers (entry p = i dv + j in lane p % 8 of vector p / 8, int64)
// for all the tokens of the call. The per-key values (kk, q, G, U; dk <= 16: two vectors over i)
// and u' (one vector over j) reach the lanes by permutes.
template <int DV, int NV, int BONUS>
void heads_small(const LinattnArgs& a, int64_t g0, int64_t g1) {
  const int dk = a.dk, Hk = a.kv_heads, F = clampF(a.decay_frac);
  const int64_t P = int64_t{dk} * DV;
  __mmask8 msk[NV];
  for (int v = 0; v < NV; ++v) msk[v] = tail8(P - 8 * v);
  const __mmask8 mk0 = tail8(dk), mk1 = tail8(dk - 8), mdv = tail8(DV);
  const V iota = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const V jidx = _mm512_and_si512(iota, s64(DV - 1));
  const V zero = _mm512_setzero_si512();
  alignas(64) int64_t ki[8], qi[8], Gi[8], Ui[8];   // DV == 8: the per-key values, broadcast per row
  for (int64_t g = g0; g < g1; ++g) {
    int32_t* Sg = a.state + g * P;
    V S[NV];
    for (int v = 0; v < NV; ++v) S[v] = ld32(Sg + 8 * v, msk[v]);
    V U0 = zero, U1 = zero;
    if (BONUS) {
      U0 = clampv(ld32(a.bonus + g * dk, mk0), -kL20, kL20);
      U1 = clampv(ld32(a.bonus + g * dk + 8, mk1), -kL20, kL20);
    }
    V G0 = s64(int64_t{1} << 30), G1 = G0;   // no decay: G = 2^30 (the identity)
    const auto gates = [&](int64_t td) {
      if (a.decay_per_key) {
        const int32_t* d = a.decay + (td * Hk + g) * dk;
        G0 = vexpq_rt(ld32(d, mk0), F);
        if (dk > 8) G1 = vexpq_rt(ld32(d + 8, mk1), F);
      } else {
        const int64_t x = a.decay[td * Hk + g];
        G0 = G1 = s64(expq(x < 0 ? x : 0, F));
      }
    };
    if (a.decay && a.decay_const) gates(0);
    for (int64_t t = 0; t < a.rows; ++t) {
      const RowScale K = a.ks[t], Vs = a.vs[t];
      const int64_t row = t * Hk + g;
      const V e = make_e(_mm512_mul_epi32(ld16(a.v + row * DV, mdv), s64(Vs.mant)),
                         int64_t{Vs.exp} - a.state_exp - 16);
      const int c2 = c2_of(_mm512_reduce_max_epu64(_mm512_abs_epi64(e)));
      const int64_t sh = int64_t{K.exp} + 16 - c2;
      if (sh < 1 || sh > 62) {   // rare: the generic step on the state in memory
        for (int v = 0; v < NV; ++v) _mm256_mask_storeu_epi32(Sg + 8 * v, msk[v], _mm512_cvtepi64_epi32(S[v]));
        head_token<Avx512Ops>(a, t, g);
        for (int v = 0; v < NV; ++v) S[v] = ld32(Sg + 8 * v, msk[v]);
        continue;
      }
      if (a.decay && !a.decay_const) gates(t);
      const V up = c2 ? rsr(e, c2) : e;
      const V u = DV == 8 ? up : _mm512_permutexvar_epi64(jidx, up);
      const V km = s64(K.mant);
      const V kk0 = _mm512_mul_epi32(ld16(a.k + row * dk, mk0), km);
      const V kk1 = _mm512_mul_epi32(ld16(a.k + row * dk + 8, mk1), km);
      const V q0 = ld16(a.q + row * dk, mk0), q1 = ld16(a.q + row * dk + 8, mk1);
      if (DV == 8) {
        _mm512_store_si512(ki, kk0), _mm512_store_si512(qi, q0), _mm512_store_si512(Gi, G0);
        if (BONUS) _mm512_store_si512(Ui, U0);
        // Keep the per-entry broadcasts as loads (vpbroadcastq m64: a load port only). Without this
        // barrier GCC forwards the stores as register permutes (vpermq: port 5, which the state
        // update's min / max / add also need), and port 5 bounds the loop.
        asm("" : "+m"(ki), "+m"(qi), "+m"(Gi), "+m"(Ui));
      }
      const V hx = s64(int64_t{1} << (sh - 1));
      const V shc = s64(sh);   // (a per-lane count: one uop, the xmm form two)
      V o = zero;
      for (int v = 0; v < NV; ++v) {
        V kk, q, G, U;
        if (DV == 8) {   // lane p = 8v + j: i = v (dk <= 8): broadcasts from memory (load ports)
          kk = s64(ki[v]), q = s64(qi[v]), G = s64(Gi[v]), U = BONUS ? s64(Ui[v]) : zero;
        } else {         // i = (8v + lane) / DV, in [0, 16)
          const V iv = _mm512_srli_epi64(_mm512_add_epi64(iota, s64(8 * v)), DV == 4 ? 2 : DV == 2 ? 1 : 0);
          kk = _mm512_permutex2var_epi64(kk0, iv, kk1), q = _mm512_permutex2var_epi64(q0, iv, q1);
          G = _mm512_permutex2var_epi64(G0, iv, G1);
          U = BONUS ? _mm512_permutex2var_epi64(U0, iv, U1) : zero;
        }
        const V X = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(kk, u), hx), shc);
        const V s = S[v];
        if (BONUS) {
          const V bt = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(U, sat32v(X)), s64(1 << 15)), 16);
          o = bonus_term<BONUS>(o, q, s, bt);
        } else {
          o = _mm512_add_epi64(o, _mm512_mul_epi32(q, s));
        }
        const V gs = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(G, s), s64(int64_t{1} << 29)), 30);
        S[v] = sat32v(_mm512_add_epi64(gs, X));
      }
      // lanes l and l + w hold the same j for w >= DV: fold them
      for (int w = 4; w >= DV; w >>= 1)
        o = _mm512_add_epi64(o, _mm512_permutexvar_epi64(_mm512_and_si512(_mm512_add_epi64(iota, s64(w)), s64(7)), o));
      _mm512_mask_storeu_epi64(a.work + row * DV, mdv, o);
    }
    for (int v = 0; v < NV; ++v) _mm256_mask_storeu_epi32(Sg + 8 * v, msk[v], _mm512_cvtepi64_epi32(S[v]));
  }
}

// Any dk, dv: per token one pass over the state rows, columns in blocks of 8 NB (the block's
// output sums in registers); the state stays in memory.
template <int NB, int BONUS>
void heads_rows(const LinattnArgs& a, int64_t g0, int64_t g1) {
  const int dk = a.dk, dv = a.dv, Hk = a.kv_heads, F = clampF(a.decay_frac);
  alignas(64) int64_t G[kMaxDim], U[kMaxDim], kk[kMaxDim], q[kMaxDim], u[kMaxDim];
  for (int64_t g = g0; g < g1; ++g) {
    int32_t* Sg = a.state + g * dk * dv;
    for (int i = 0; i < dk; ++i) U[i] = BONUS ? clamp64(a.bonus[g * dk + i], -kL20, kL20) : 0;
    const auto gates = [&](int64_t td) {
      if (a.decay_per_key) {
        const int32_t* d = a.decay + (td * Hk + g) * dk;
        for (int i = 0; i < dk; i += 8) _mm512_store_si512(G + i, vexpq_rt(ld32(d + i, tail8(dk - i)), F));
      } else {
        const int64_t x = a.decay[td * Hk + g];
        const int64_t e = expq(x < 0 ? x : 0, F);
        for (int i = 0; i < dk; ++i) G[i] = e;
      }
    };
    if (!a.decay)
      for (int i = 0; i < dk; ++i) G[i] = int64_t{1} << 30;
    else if (a.decay_const)
      gates(0);
    for (int64_t t = 0; t < a.rows; ++t) {
      const RowScale K = a.ks[t], Vs = a.vs[t];
      const int64_t row = t * Hk + g;
      const int16_t* vr = a.v + row * dv;
      const int64_t vsh = int64_t{Vs.exp} - a.state_exp - 16;
      V mx = _mm512_setzero_si512();
      for (int j = 0; j < dv; j += 8) {
        const V e = make_e(_mm512_mul_epi32(ld16(vr + j, tail8(dv - j)), s64(Vs.mant)), vsh);
        _mm512_store_si512(u + j, e);
        mx = _mm512_max_epu64(mx, _mm512_abs_epi64(e));
      }
      const int c2 = c2_of(_mm512_reduce_max_epu64(mx));
      const int64_t sh = int64_t{K.exp} + 16 - c2;
      if (sh < 1 || sh > 62) {
        head_token<Avx512Ops>(a, t, g);
        continue;
      }
      if (c2)
        for (int j = 0; j < dv; j += 8) _mm512_store_si512(u + j, rsr(_mm512_load_si512(u + j), c2));
      if (a.decay && !a.decay_const) gates(t);
      const int16_t* kr = a.k + row * dk;
      const int16_t* qr = a.q + row * dk;
      for (int i = 0; i < dk; i += 8) {
        const __mmask8 m = tail8(dk - i);
        _mm512_store_si512(kk + i, _mm512_mul_epi32(ld16(kr + i, m), s64(K.mant)));
        _mm512_store_si512(q + i, ld16(qr + i, m));
      }
      const V hx = s64(int64_t{1} << (sh - 1));
      const V shc = s64(sh);   // (a per-lane count: one uop, the xmm form two)
      int64_t* og = a.work + row * dv;
      for (int jb = 0; jb < dv; jb += 8 * NB) {
        __mmask8 m[NB];
        V uv[NB], o[NB];
        for (int v = 0; v < NB; ++v) {
          m[v] = tail8(dv - jb - 8 * v);
          uv[v] = _mm512_maskz_loadu_epi64(m[v], u + jb + 8 * v);
          o[v] = _mm512_setzero_si512();
        }
        int32_t* Sr = Sg + jb;
        for (int i = 0; i < dk; ++i, Sr += dv) {
          const V kv = s64(kk[i]), qv = s64(q[i]), Gv = s64(G[i]), Uv = s64(U[i]);
          for (int v = 0; v < NB; ++v) {
            const V s = ld32(Sr + 8 * v, m[v]);
            const V X = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(kv, uv[v]), hx), shc);
            if (BONUS) {
              const V bt = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(Uv, sat32v(X)), s64(1 << 15)), 16);
              o[v] = bonus_term<BONUS>(o[v], qv, s, bt);
            } else {
              o[v] = _mm512_add_epi64(o[v], _mm512_mul_epi32(qv, s));
            }
            const V gs = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(Gv, s), s64(int64_t{1} << 29)), 30);
            _mm256_mask_storeu_epi32(Sr + 8 * v, m[v], _mm512_cvtsepi64_epi32(_mm512_add_epi64(gs, X)));
          }
        }
        for (int v = 0; v < NB; ++v) _mm512_mask_storeu_epi64(og + jb + 8 * v, m[v], o[v]);
      }
    }
  }
}

template <int BONUS>
bool rwkv_dispatch(const LinattnArgs& a, int64_t g0, int64_t g1) {
  const int dk = a.dk, dv = a.dv;
  if (dk <= 16 && dk * dv <= 64 && (dv == 1 || dv == 2 || dv == 4 || dv == 8)) {
    const int nv = (dk * dv + 7) / 8, NVc = nv <= 1 ? 1 : nv <= 2 ? 2 : nv <= 4 ? 4 : 8;
#define FQ_LA_SMALL(D, N) if (dv == D && NVc == N) { heads_small<D, N, BONUS>(a, g0, g1); return true; }
    FQ_LA_SMALL(1, 1) FQ_LA_SMALL(1, 2)
    FQ_LA_SMALL(2, 1) FQ_LA_SMALL(2, 2) FQ_LA_SMALL(2, 4)
    FQ_LA_SMALL(4, 1) FQ_LA_SMALL(4, 2) FQ_LA_SMALL(4, 4) FQ_LA_SMALL(4, 8)
    FQ_LA_SMALL(8, 1) FQ_LA_SMALL(8, 2) FQ_LA_SMALL(8, 4) FQ_LA_SMALL(8, 8)
#undef FQ_LA_SMALL
  }
  const int nb = (dv + 7) / 8;
  if (nb <= 1) heads_rows<1, BONUS>(a, g0, g1);
  else if (nb <= 2) heads_rows<2, BONUS>(a, g0, g1);
  else if (nb <= 4) heads_rows<4, BONUS>(a, g0, g1);
  else heads_rows<8, BONUS>(a, g0, g1);
  return true;
}

void heads(const LinattnArgs& a, int64_t g0, int64_t g1) {
  if (!linattn_valid(a)) return;
  // output_first (valid: no beta, no b) with one query head per state: the fused paths
  if (a.output_first && a.q_heads == a.kv_heads) {
    if (!a.bonus) {
      rwkv_dispatch<kNoBonus>(a, g0, g1);
      return;
    }
    int64_t umax = 0;   // max |U| over the call's heads (U: the bonus clamped to +-2^20)
    for (int64_t i = g0 * a.dk; i < g1 * a.dk; ++i) umax = std::max(umax, std::abs(clamp64(a.bonus[i], -kL20, kL20)));
    if (umax < (int64_t{1} << 16)) rwkv_dispatch<kBonusSmall>(a, g0, g1);
    else rwkv_dispatch<kBonusAny>(a, g0, g1);
    return;
  }
  heads_impl<Avx512Ops>(a, g0, g1);
}
// out_impl with the row quantizer on 8 lanes (avx512h::vquant_gen, the llm family's).
void out(const LinattnArgs& a, int64_t m0, int64_t m1) {
  if (!linattn_valid(a)) return out_impl(a, m0, m1);
  using namespace avx512h;
  const int64_t n = int64_t{a.q_heads} * a.dv;
  for (int64_t t = m0; t < m1; ++t) {
    const int64_t* w = a.work + t * n;
    __m512i mx = zero();
    for (int64_t j = 0; j < n; j += 8) mx = _mm512_max_epu64(mx, _mm512_abs_epi64(load_i64(w + j, tail8(n - j))));
    int d = 0;
    const int64_t A = vquant_gen(n, 32767, llm::QRow{nullptr, a.y + t * n}, _mm512_reduce_max_epu64(mx), &d,
                                 [w](int64_t i, __mmask8 k) { return load_i64(w + i, k); });
    a.ys[t] = out_scale(a, t, A, d);
  }
}

}  // namespace
}  // namespace linattn

extern const LinattnKernel kLinattnAvx512 = {Isa::avx512, "avx512", linattn::heads, linattn::out};

}  // namespace fq::k
