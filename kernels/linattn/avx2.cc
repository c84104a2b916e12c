// AVX2 variant of the linattn family: the state-row primitives (gate, x^T S, k (x) u write) on
// 4 int64 lanes (vpmuldq); the driver and the O(dv) value side are the shared ones
// (linattn_internal.h), except for RWKV's output_first with Hq == Hkv and dv % 4 == 0, which takes
// heads_rows (one pass over the state per token, constants hoisted). Bit-exact to ref.cc: the same
// integer formulas, exact int64 sums.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../llm/x86_avx2_helpers.h"
#include "fq/kernels/linattn.h"
#include "linattn_internal.h"

namespace fq::k {
namespace linattn {
namespace {

inline __m256i load4x32(const int32_t* p) {
  return _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// Low 32 bits of 4 int64 lanes -> 4 int32.
inline void store4x32(int32_t* p, __m256i v) {
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, idx)));
}
// Arithmetic right shift of int64 lanes by n (1..63): ((x ^ s) >>> n) ^ s, s = sign mask.
inline __m256i sra64(__m256i x, __m256i n) {
  const __m256i s = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(x, s), n), s);
}

struct Avx2Ops {
  static void gate(int32_t* s, int64_t n, int64_t G) {
    const __m256i g = _mm256_set1_epi64x(G), h = _mm256_set1_epi64x(int64_t{1} << 29);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      // |G * s| <= 2^61 and the result fits int32: a logical shift keeps the low 32 bits right.
      const __m256i p = _mm256_add_epi64(_mm256_mul_epi32(load4x32(s + j), g), h);
      store4x32(s + j, _mm256_srli_epi64(p, 30));
    }
    ScalarOps::gate(s + j, n - j, G);
  }
  static void acc(const int32_t* S, int64_t dk, int64_t dv, const int16_t* x, int64_t* acc) {
    int64_t j = 0;
    for (; j + 8 <= dv; j += 8) {
      __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
      for (int64_t i = 0; i < dk; ++i) {
        const __m256i xv = _mm256_set1_epi64x(x[i]);
        a0 = _mm256_add_epi64(a0, _mm256_mul_epi32(load4x32(S + i * dv + j), xv));
        a1 = _mm256_add_epi64(a1, _mm256_mul_epi32(load4x32(S + i * dv + j + 4), xv));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j), a0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j + 4), a1);
    }
    ScalarOps::acc_cols(S, dk, dv, x, acc, j);
  }
  // 1 <= sh <= 62: shift_s = (p >> sh) + bit sh-1 of p; then sat32(s + .).
  static void write(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh) {
    const __m256i k = _mm256_set1_epi64x(kk);
    const __m256i lo = _mm256_set1_epi64x(INT32_MIN), hi = _mm256_set1_epi64x(INT32_MAX);
    const __m256i n1 = _mm256_set1_epi64x(sh), n0 = _mm256_set1_epi64x(sh - 1);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const __m256i p = _mm256_mul_epi32(load4x32(u + j), k);
      __m256i r = _mm256_add_epi64(load4x32(s + j), shr_round(p, n1, n0));
      r = _mm256_blendv_epi8(r, hi, _mm256_cmpgt_epi64(r, hi));
      r = _mm256_blendv_epi8(r, lo, _mm256_cmpgt_epi64(lo, r));
      store4x32(s + j, r);
    }
    ScalarOps::write(s + j, n - j, kk, u + j, sh);
  }
  // shift_s(p, sh) for 1 <= sh <= 62: (p >> sh) + bit sh-1 of p.
  static __m256i shr_round(__m256i p, __m256i n1, __m256i n0) {
    return _mm256_add_epi64(sra64(p, n1), _mm256_and_si256(_mm256_srlv_epi64(p, n0), _mm256_set1_epi64x(1)));
  }
  static __m256i clamp(__m256i x, __m256i lo, __m256i hi) {
    x = _mm256_blendv_epi8(x, hi, _mm256_cmpgt_epi64(x, hi));
    return _mm256_blendv_epi8(x, lo, _mm256_cmpgt_epi64(lo, x));
  }
  // 1 <= sh <= 62. X = shift_s(kk * u, sh); s = sat32(s + X); bt = rshift_round(U * sat32(X), 16).
  static void write_bonus(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t U, int64_t* bt) {
    const __m256i k = _mm256_set1_epi64x(kk), uu = _mm256_set1_epi64x(U);
    const __m256i lo = _mm256_set1_epi64x(INT32_MIN), hi = _mm256_set1_epi64x(INT32_MAX);
    // |U * sat32(X)| <= 2^51: (p + 2^15 + 2^52) >>> 16 - 2^36 = floor((p + 2^15) / 2^16) = rshift_round(p, 16).
    const __m256i bias = _mm256_set1_epi64x((int64_t{1} << 52) + (int64_t{1} << 15));
    const __m256i unbias = _mm256_set1_epi64x(int64_t{1} << 36);
    const __m256i n1 = _mm256_set1_epi64x(sh), n0 = _mm256_set1_epi64x(sh - 1);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const __m256i x = shr_round(_mm256_mul_epi32(load4x32(u + j), k), n1, n0);
      store4x32(s + j, clamp(_mm256_add_epi64(load4x32(s + j), x), lo, hi));
      const __m256i p = _mm256_mul_epi32(clamp(x, lo, hi), uu);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(bt + j),
                          _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(p, bias), 16), unbias));
    }
    ScalarOps::write_bonus(s + j, n - j, kk, u + j, sh, U, bt + j);
  }
  // o += q * bt: |bt| <= 2^35 + 1, so bt + 2^40 = h 2^16 + l with 0 <= h < 2^25, 0 <= l < 2^16 and
  // q bt = (q h) 2^16 + q l - q 2^40 (vpmuldq on 32-bit halves, exact).
  static void axpy(int64_t* o, int64_t n, int64_t q, const int64_t* bt) {
    const __m256i qv = _mm256_set1_epi64x(q), off = _mm256_set1_epi64x(int64_t{1} << 40);
    const __m256i qoff = _mm256_set1_epi64x(q * (int64_t{1} << 40)), m16 = _mm256_set1_epi64x(0xFFFF);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const __m256i b = _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bt + j)), off);
      const __m256i ph = _mm256_slli_epi64(_mm256_mul_epi32(_mm256_srli_epi64(b, 16), qv), 16);
      const __m256i pl = _mm256_mul_epi32(_mm256_and_si256(b, m16), qv);
      __m256i* op = reinterpret_cast<__m256i*>(o + j);
      _mm256_storeu_si256(op, _mm256_add_epi64(_mm256_loadu_si256(op), _mm256_sub_epi64(_mm256_add_epi64(ph, pl), qoff)));
    }
    ScalarOps::axpy(o + j, n - j, q, bt + j);
  }
  // 1 <= sh <= 62. The output_first fused row (ScalarOps::fused_row). Rounding shifts of values
  // within +-2^62 as logical shifts of value + 2^62 (a multiple of 2^sh), minus 2^(62 - sh).
  static void fused_row(int32_t* s, int64_t n, int64_t kk, int64_t q, int64_t G, int64_t U, const int32_t* u, int sh,
                        int64_t* o) {
    const __m256i k = _mm256_set1_epi64x(kk), qv = _mm256_set1_epi64x(q), g = _mm256_set1_epi64x(G);
    const __m256i uu = _mm256_set1_epi64x(U);
    const __m256i lo = _mm256_set1_epi64x(INT32_MIN), hi = _mm256_set1_epi64x(INT32_MAX);
    const int64_t b62 = int64_t{1} << 62;
    // X = shift_s(kk u, sh), |kk u| <= 2^60
    const __m256i xb = _mm256_set1_epi64x(b62 + (int64_t{1} << (sh - 1))), xu = _mm256_set1_epi64x(int64_t{1} << (62 - sh));
    const __m256i n1 = _mm256_set1_epi64x(sh);
    // rshift_round(G s, 30), |G s| <= 2^61
    const __m256i gb = _mm256_set1_epi64x(b62 + (int64_t{1} << 29)), gu = _mm256_set1_epi64x(int64_t{1} << 32);
    // bt = rshift_round(U sat32(X), 16) (|.| <= 2^51, as write_bonus); q bt as axpy (bt + 2^40 split at bit 16)
    const __m256i bias = _mm256_set1_epi64x((int64_t{1} << 52) + (int64_t{1} << 15));
    const __m256i unbias = _mm256_set1_epi64x((int64_t{1} << 36) - (int64_t{1} << 40));   // and + 2^40 for the split
    const __m256i qoff = _mm256_set1_epi64x(q * (int64_t{1} << 40)), m16 = _mm256_set1_epi64x(0xFFFF);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const __m256i x = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(_mm256_mul_epi32(load4x32(u + j), k), xb), n1), xu);
      const __m256i sv = load4x32(s + j);
      __m256i* op = reinterpret_cast<__m256i*>(o + j);
      __m256i ov = _mm256_add_epi64(_mm256_loadu_si256(op), _mm256_mul_epi32(sv, qv));
      if (U) {
        // b = bt + 2^40 = ((p + 2^15 + 2^52) >>> 16) - 2^36 + 2^40 >= 0
        const __m256i b = _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(clamp(x, lo, hi), uu), bias), 16), unbias);
        const __m256i ph = _mm256_slli_epi64(_mm256_mul_epi32(_mm256_srli_epi64(b, 16), qv), 16);
        const __m256i pl = _mm256_mul_epi32(_mm256_and_si256(b, m16), qv);
        ov = _mm256_add_epi64(ov, _mm256_sub_epi64(_mm256_add_epi64(ph, pl), qoff));
      }
      _mm256_storeu_si256(op, ov);
      const __m256i gs = _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(sv, g), gb), 30), gu);
      store4x32(s + j, clamp(_mm256_add_epi64(gs, x), lo, hi));
    }
    ScalarOps::fused_row(s + j, n - j, kk, q, G, U, u + j, sh, o + j);
  }
  // 1 <= sh, shb <= 62. s = sat32(s + clamp(shift_s(kk * u, sh), +-2^40) + clamp(shift_s(bb * w, shb), +-2^40)).
  static void write2(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t bb, const int32_t* w, int shb) {
    const __m256i k = _mm256_set1_epi64x(kk), b = _mm256_set1_epi64x(bb);
    const __m256i lo = _mm256_set1_epi64x(INT32_MIN), hi = _mm256_set1_epi64x(INT32_MAX);
    const __m256i l40 = _mm256_set1_epi64x(-kL40), h40 = _mm256_set1_epi64x(kL40);
    const __m256i n1 = _mm256_set1_epi64x(sh), n0 = _mm256_set1_epi64x(sh - 1);
    const __m256i m1 = _mm256_set1_epi64x(shb), m0 = _mm256_set1_epi64x(shb - 1);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const __m256i x = clamp(shr_round(_mm256_mul_epi32(load4x32(u + j), k), n1, n0), l40, h40);
      const __m256i y = clamp(shr_round(_mm256_mul_epi32(load4x32(w + j), b), m1, m0), l40, h40);
      store4x32(s + j, clamp(_mm256_add_epi64(_mm256_add_epi64(load4x32(s + j), x), y), lo, hi));
    }
    ScalarOps::write2(s + j, n - j, kk, u + j, sh, bb, w + j, shb);
  }
};

// ---- RWKV output_first path (Hq == Hkv; no beta, no b by validity), dv % 4 == 0 ------------------
// Per (token, head) one pass over the state rows with every per-call constant hoisted and the
// output sums of a block of 4 NB columns in registers (ScalarOps::fused_row's formulas, entry by
// entry; the output's int64 sum is exact, so its order is free). The bonus product q * bt
// (|bt| <= 2^35 + 1) is summed as q * h and q * l with bt + 2^40 = h 2^16 + l (vpmuldq operands
// below 2^25 and 2^16), the q 2^40 terms taken off once per column block. Rounding shifts of
// values within +-2^62 are logical shifts of value + 2^62 (a multiple of 2^sh), minus 2^(62 - sh).
using avx2h::s64;
inline __m256i load4x16(const int16_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_cvtepi16_epi64(_mm_cvtsi64_si128(v));
}
// make_u without delta (linattn_internal.h) for dv % 4 == 0: u' into up, returns c; *ub = a bound
// of |u'| (2^min(bitlen(max |e|), 30): u' is e, or e rounded to 30 bits).
inline int64_t make_u4(const LinattnArgs& a, int64_t row, int32_t* up, int64_t* e, uint64_t* ub) {
  const RowScale Vs = a.vs[row / a.kv_heads];
  const int64_t vsh = int64_t{Vs.exp} - a.state_exp - 16;
  const int16_t* v = a.v + row * a.dv;
  const __m256i vm = s64(Vs.mant);
  const int l = vsh < -61 ? 61 : int(-vsh);   // vsh < 0: left by l, clamp(p 2^l, +-2^61) = clamp(p, +-2^(61-l)) 2^l
  const __m256i lim = s64(vsh < 0 ? int64_t{1} << (61 - l) : 0);
  __m256i mag = _mm256_setzero_si256();
  for (int j = 0; j < a.dv; j += 4) {
    __m256i x = _mm256_mul_epi32(load4x16(v + j), vm);   // |v * mant| <= 2^30
    if (vsh > 62) x = _mm256_setzero_si256();
    else if (vsh >= 1) x = avx2h::vshs_exact(x, vsh);
    else if (vsh < 0) x = _mm256_sllv_epi64(Avx2Ops::clamp(x, _mm256_sub_epi64(_mm256_setzero_si256(), lim), lim), _mm256_set1_epi64x(l));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + j), x);
    mag = _mm256_or_si256(mag, avx2h::absv(x));   // bitlen(OR |e|) = bitlen(max |e|)
  }
  const __m128i o = _mm_or_si128(_mm256_castsi256_si128(mag), _mm256_extracti128_si256(mag, 1));
  const int b = bitlen64(uint64_t(_mm_cvtsi128_si64(_mm_or_si128(o, _mm_unpackhi_epi64(o, o)))));
  const int64_t c2 = b - 30;
  *ub = uint64_t{1} << (b < 30 ? b : 30);
  for (int j = 0; j < a.dv; j += 4) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e + j));
    store4x32(up + j, c2 > 0 ? avx2h::vshs_exact(x, c2) : x);
  }
  return c2 > 0 ? c2 : 0;
}

// Per token and head: the constants of the pass over the state rows.
struct RowsToken {
  const int64_t *kk, *q, *G, *U;
  const int32_t* up;
  __m256i xb, xu, qoff;
  __m256i n1;   // (per-lane counts: vpsrlvq is one uop on Intel, the xmm-count form two)
};

// Columns [jb, jb + 4 NB) of one (token, head) pass: S rows of stride dv, outputs into og.
// SMALL (with BONUS): |X| <= INT32_MAX (no sat32) and |U X| < 2^46 for the whole pass, so the
// bonus bt = rshift_round(U X, 16) is within +-2^30 and q * bt is one vpmuldq.
template <int NB, bool BONUS, bool SMALL = false>
inline void rows_block(const RowsToken& c, int32_t* S, int dk, int dv, int jb, int64_t* og) {
  const __m256i lo = s64(INT32_MIN), hi = s64(INT32_MAX);
  const __m256i gb = s64((int64_t{1} << 62) + (int64_t{1} << 29)), gu = s64(int64_t{1} << 32);   // rshift_round(G s, 30)
  const __m256i bb = s64((int64_t{1} << 52) + (int64_t{1} << 15));   // bt + 2^40 = ((p + bb) >>> 16) - 2^36 + 2^40
  const __m256i ub = s64((int64_t{1} << 36) - (int64_t{1} << 40)), m16 = s64(0xFFFF), b36 = s64(int64_t{1} << 36);
  __m256i uv[NB], o[NB], oh[NB];
  for (int v = 0; v < NB; ++v) {
    uv[v] = load4x32(c.up + jb + 4 * v);
    o[v] = oh[v] = _mm256_setzero_si256();
  }
  int32_t* Sr = S + jb;
  for (int i = 0; i < dk; ++i, Sr += dv) {
    const __m256i kv = s64(c.kk[i]), qv = s64(c.q[i]), Gv = s64(c.G[i]);
    for (int v = 0; v < NB; ++v) {
      const __m256i sv = load4x32(Sr + 4 * v);
      const __m256i X = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(_mm256_mul_epi32(uv[v], kv), c.xb), c.n1), c.xu);
      o[v] = _mm256_add_epi64(o[v], _mm256_mul_epi32(sv, qv));
      if (SMALL) {
        // bt = ((p + bb) >>> 16) - 2^36 (p + 2^52 > 0 for |p| < 2^46)
        const __m256i bt = _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(X, s64(c.U[i])), bb), 16), b36);
        o[v] = _mm256_add_epi64(o[v], _mm256_mul_epi32(bt, qv));
      } else if (BONUS) {
        const __m256i b = _mm256_sub_epi64(
            _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(Avx2Ops::clamp(X, lo, hi), s64(c.U[i])), bb), 16), ub);
        oh[v] = _mm256_add_epi64(oh[v], _mm256_mul_epi32(_mm256_srli_epi64(b, 16), qv));
        o[v] = _mm256_add_epi64(o[v], _mm256_mul_epi32(_mm256_and_si256(b, m16), qv));
      }
      const __m256i gs = _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(sv, Gv), gb), 30), gu);
      store4x32(Sr + 4 * v, Avx2Ops::clamp(_mm256_add_epi64(gs, X), lo, hi));
    }
  }
  for (int v = 0; v < NB; ++v) {
    __m256i r = o[v];
    if (BONUS && !SMALL) r = _mm256_sub_epi64(_mm256_add_epi64(r, _mm256_slli_epi64(oh[v], 16)), c.qoff);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(og + jb + 4 * v), r);
  }
}

template <bool BONUS>
void heads_rows(const LinattnArgs& a, int64_t g0, int64_t g1) {
  const int dk = a.dk, dv = a.dv, Hk = a.kv_heads;
  const int F = a.decay_frac < 8 ? 8 : a.decay_frac > 24 ? 24 : a.decay_frac;
  alignas(32) int64_t G[kMaxDim], U[kMaxDim], kk[kMaxDim], q[kMaxDim], e[kMaxDim];
  alignas(32) int32_t up[kMaxDim];
  RowsToken c{kk, q, G, U, up, {}, {}, {}, {}};
  for (int64_t g = g0; g < g1; ++g) {
    int32_t* Sg = a.state + g * dk * dv;
    uint64_t Umax = 0;   // max |U_i| of the head
    for (int i = 0; i < dk; ++i) {
      U[i] = BONUS ? clamp64(a.bonus[g * dk + i], -kL20, kL20) : 0;
      Umax = uint64_t(U[i] < 0 ? -U[i] : U[i]) > Umax ? uint64_t(U[i] < 0 ? -U[i] : U[i]) : Umax;
    }
    const auto gates = [&](int64_t td) {
      const int32_t* d = a.decay + (a.decay_per_key ? (td * Hk + g) * dk : td * Hk + g);
      const bool vec = a.decay_per_key && dk % 4 == 0 && llm::with_exp_bits(F, [&](auto Fc) {   // F in [9, 24]
        for (int i = 0; i < dk; i += 4)   // G = exp_q(min(x, 0), F), x int32
          _mm256_store_si256(reinterpret_cast<__m256i*>(G + i),
                             avx2h::vexpq<decltype(Fc)::value>(avx2h::maxv(_mm256_sub_epi64(_mm256_setzero_si256(), load4x32(d + i)),
                                                                           _mm256_setzero_si256())));
      });
      for (int i = 0; i < dk && !vec; ++i) {
        const int64_t x = d[a.decay_per_key ? i : 0];
        G[i] = expq(x < 0 ? x : 0, F);
      }
    };
    if (!a.decay)
      for (int i = 0; i < dk; ++i) G[i] = int64_t{1} << 30;
    else if (a.decay_const)
      gates(0);
    for (int64_t t = 0; t < a.rows; ++t) {
      const int64_t row = t * Hk + g;
      const RowScale K = a.ks[t];
      uint64_t ub = 0;
      const int64_t sh = int64_t{K.exp} + 16 - make_u4(a, row, up, e, &ub);
      if (sh < 1 || sh > 62) {
        head_token<Avx2Ops>(a, t, g);
        continue;
      }
      if (a.decay && !a.decay_const) gates(t);
      const int16_t* kr = a.k + row * dk;
      const int16_t* qr = a.q + row * dk;
      int64_t qsum = 0;
      uint64_t kmax = 0;
      int i0 = 0;
      if (dk >= 4) {  // 4 at a time: kk = k K.mant, q, sum q, max |kk|
        const __m256i mant = s64(K.mant);
        __m256i qs = _mm256_setzero_si256(), km = qs;
        for (; i0 + 4 <= dk; i0 += 4) {
          const __m256i k4 = _mm256_mul_epi32(load4x16(kr + i0), mant), q4 = load4x16(qr + i0);
          _mm256_store_si256(reinterpret_cast<__m256i*>(kk + i0), k4);
          _mm256_store_si256(reinterpret_cast<__m256i*>(q + i0), q4);
          qs = _mm256_add_epi64(qs, q4);
          km = avx2h::maxv(km, avx2h::absv(k4));
        }
        alignas(32) int64_t t4[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(t4), qs);
        _mm256_store_si256(reinterpret_cast<__m256i*>(t4 + 4), km);
        qsum = t4[0] + t4[1] + t4[2] + t4[3];
        for (int l = 4; l < 8; ++l) kmax = uint64_t(t4[l]) > kmax ? uint64_t(t4[l]) : kmax;
      }
      for (int i = i0; i < dk; ++i) {
        kk[i] = int64_t{kr[i]} * K.mant, q[i] = qr[i], qsum += qr[i];
        kmax = uint64_t(kk[i] < 0 ? -kk[i] : kk[i]) > kmax ? uint64_t(kk[i] < 0 ? -kk[i] : kk[i]) : kmax;
      }
      // |X| <= (ub kmax >> sh) + 1 (a rounding shift of |kk u'| <= ub kmax)
      const unsigned __int128 xb = (((unsigned __int128)ub * kmax) >> sh) + 1;
      const bool small = BONUS && xb <= INT32_MAX && xb * Umax < ((unsigned __int128)1 << 46);
      c.xb = s64(int64_t((uint64_t{1} << 62) + (uint64_t{1} << (sh - 1)))), c.xu = s64(int64_t{1} << (62 - sh));
      c.n1 = _mm256_set1_epi64x(sh);
      c.qoff = s64(int64_t(uint64_t(qsum) << 40));   // the sums wrap mod 2^64; the total is exact
      int64_t* og = a.work + row * dv;
      int jb = 0;
      if (small) {
        for (; jb + 16 <= dv; jb += 16) rows_block<4, BONUS, true>(c, Sg, dk, dv, jb, og);
        if (jb + 8 <= dv) rows_block<2, BONUS, true>(c, Sg, dk, dv, jb, og), jb += 8;
        if (jb < dv) rows_block<1, BONUS, true>(c, Sg, dk, dv, jb, og);
        continue;
      }
      for (; jb + 16 <= dv; jb += 16) rows_block<4, BONUS>(c, Sg, dk, dv, jb, og);
      if (jb + 8 <= dv) rows_block<2, BONUS>(c, Sg, dk, dv, jb, og), jb += 8;
      if (jb < dv) rows_block<1, BONUS>(c, Sg, dk, dv, jb, og);
    }
  }
}

void heads(const LinattnArgs& a, int64_t g0, int64_t g1) {
  if (!linattn_valid(a)) return;
  if (!(a.output_first && a.q_heads == a.kv_heads)) return heads_impl<Avx2Ops>(a, g0, g1);
  if (a.dv % 4) return rwkv_heads_impl<Avx2Ops>(a, g0, g1);
  if (a.bonus) heads_rows<true>(a, g0, g1);
  else heads_rows<false>(a, g0, g1);
}

// out_impl with the row quantizer on 4 lanes (avx2h::vquant_gen, the llm family's).
void out(const LinattnArgs& a, int64_t m0, int64_t m1) {
  if (!linattn_valid(a)) return out_impl(a, m0, m1);
  const int64_t n = int64_t{a.q_heads} * a.dv;
  for (int64_t t = m0; t < m1; ++t) {
    const int64_t* w = a.work + t * n;
    __m256i mx = _mm256_setzero_si256();
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) mx = avx2h::maxv(mx, avx2h::absv(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j))));
    alignas(32) int64_t l[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), mx);
    uint64_t A0 = uint64_t(std::max(std::max(l[0], l[1]), std::max(l[2], l[3])));
    for (; j < n; ++j) A0 = std::max(A0, mag64(w[j]));
    int d = 0;
    const int64_t A = avx2h::vquant_gen(
        n, 32767, llm::QRow{nullptr, a.y + t * n}, A0, &d,
        [w](int64_t i) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)); }, [w](int64_t i) { return w[i]; });
    a.ys[t] = out_scale(a, t, A, d);
  }
}

}  // namespace
}  // namespace linattn

extern const LinattnKernel kLinattnAvx2 = {Isa::avx2, "avx2", linattn::heads, linattn::out};

}  // namespace fq::k
