// Internal helpers of the llm family, shared by ref.cc and the ISA variants. Everything here has
// internal linkage (anonymous namespace): each variant's translation unit gets its own copy,
// compiled with its own flags, so no AVX-512 body can leak into the scalar build through the ODR.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "fq/kernels/fixed_point.h"
#include "fq/kernels/llm.h"
#include "hadamard_tables.h"

namespace fq::k::llm {
namespace {

constexpr int64_t kSat62 = (int64_t{1} << 62) - 1;
constexpr int64_t kLog2eQ16 = 94548;   // round(log2(e) * 2^16)
constexpr int64_t kL40 = int64_t{1} << 40;

inline int bitlen64(uint64_t x) { return x ? 64 - clz64(x) : 0; }
inline uint64_t mag64(int64_t v) { return v < 0 ? 0 - uint64_t(v) : uint64_t(v); }

// shift_s of llm.h for any int64 x and any (64-bit) shift: rounding right shift for s > 0 written
// so that it cannot overflow ((x >> s) + bit s-1 of x == (x + 2^(s-1)) >> s), saturating left
// shift for s < 0.
inline int64_t shs(int64_t x, int64_t s) {
  if (s == 0) return x;
  if (s > 0) {
    if (s > 62) return 0;
    return (x >> s) + ((x >> (s - 1)) & 1);
  }
  if (x == 0) return 0;
  const int64_t l = -s;
  if (l >= 62) return x < 0 ? -kSat62 : kSat62;
  const uint64_t lim = uint64_t{1} << (62 - l);
  if (mag64(x) >= lim) return x < 0 ? -kSat62 : kSat62;
  return x * (int64_t{1} << l);
}

inline int32_t clamp_exp(int64_t e) {
  return int32_t(e < INT32_MIN ? INT32_MIN : e > INT32_MAX ? INT32_MAX : e);
}

// normalize(v, e) of llm.h.
inline RowScale normalize(uint64_t v, int64_t e) {
  RowScale r;
  if (v == 0) return r;
  const int d = bitlen64(v) - 15;
  uint64_t m = d > 0 ? (v >> d) + ((v >> (d - 1)) & 1) : v << -d;
  int64_t ee = e - d;
  if (m == (uint64_t{1} << 15)) { m = uint64_t{1} << 14; ee -= 1; }
  r.mant = int32_t(m);
  r.exp = clamp_exp(ee);
  return r;
}

// exp_q of llm.h; requires x <= 0, -x <= 2^40, 8 <= F <= 24.
inline int64_t expq(int64_t x, int F) {
  const int64_t t = rshift_round(-x * kLog2eQ16, 16);
  const int64_t n = t >> F;
  if (n > 31) return 0;
  const int64_t f = t & ((int64_t{1} << F) - 1);
  const int64_t i = f >> (F - 8);
  const int64_t P = rshift_round(int64_t{kExp2HiQ30[i >> 4]} * kExp2LoQ30[i & 15], 30);
  const int64_t r = f & ((int64_t{1} << (F - 8)) - 1);
  const int64_t rc = rshift_round(r * kExp2ChordQ32, F - 8);
  return rshift_round(P - rshift_round(P * rc, 32), int(n));
}

// exp_shift of llm.h (bit-shift DI-Exp); requires x <= 0, -x <= 2^40, 8 <= F <= 24.
inline int64_t expshift(int64_t x, int F) {
  const int64_t z = x + (x >> 1) - (x >> 4);
  const int64_t q = (-z) >> F;
  if (q >= 31) return 0;
  const int64_t r = z + (q << F);
  const int64_t v = (r >> 1) + (int64_t{1} << F);
  return (v << (30 - F)) >> q;
}
inline int exp_bits(const ExpArgs& a) { return a.frac_bits < 8 ? 8 : a.frac_bits > 24 ? 24 : a.frac_bits; }
// Calls f(std::integral_constant<int, F>{}) for F in [9, 24] (the SIMD exp_q's compile-time
// widths) and returns true; false for any other F.
template <class Fn>
bool with_exp_bits(int F, Fn f) {
  switch (F) {
#define FQ_EXPQ_CASE(n) \
  case n: f(std::integral_constant<int, n>{}); return true;
    FQ_EXPQ_CASE(9) FQ_EXPQ_CASE(10) FQ_EXPQ_CASE(11) FQ_EXPQ_CASE(12) FQ_EXPQ_CASE(13)
    FQ_EXPQ_CASE(14) FQ_EXPQ_CASE(15) FQ_EXPQ_CASE(16) FQ_EXPQ_CASE(17) FQ_EXPQ_CASE(18)
    FQ_EXPQ_CASE(19) FQ_EXPQ_CASE(20) FQ_EXPQ_CASE(21) FQ_EXPQ_CASE(22) FQ_EXPQ_CASE(23)
    FQ_EXPQ_CASE(24)
#undef FQ_EXPQ_CASE
    default: return false;
  }
}

// The row-constant part of quantize_row: from A0 = max|v| > 0, the shift d, A and the factor F.
struct QParams {
  int d;
  int64_t A;
  int64_t F;
};
inline QParams qparams(uint64_t A0, int qmax) {
  QParams p;
  p.d = bitlen64(A0) - 23;
  p.A = shs(int64_t(A0), p.d);
  p.F = int64_t((uint64_t(qmax) * (uint64_t{1} << 40) + uint64_t(p.A) / 2) / uint64_t(p.A));
  return p;
}
inline int64_t qelem(int64_t v, const QParams& p, int qmax) {
  const int64_t q = rshift_round(shs(v, p.d) * p.F, 40);
  return q < -qmax ? -qmax : q > qmax ? qmax : q;
}

// The destination of one quantized row: int8 (q8), or int16 (q16) when q8 is null. The SIMD row
// quantizers (vquant_gen in the ISA helper headers) write through it.
struct QRow {
  int8_t* q8;
  int16_t* q16;
};
// Row m of an [M][n] output that is int8 when qmax <= 127, else int16.
inline QRow qrow(void* y, int qmax, int64_t n, int64_t m) {
  if (qmax <= 127) return {static_cast<int8_t*>(y) + m * n, nullptr};
  return {nullptr, static_cast<int16_t*>(y) + m * n};
}
inline void zero_row(int64_t n, const QRow& o) {
  for (int64_t i = 0; i < n; ++i) {
    if (o.q8) o.q8[i] = 0; else o.q16[i] = 0;
  }
}
// The head of every SIMD quantize_row: an all-zero row (A0 == 0) is written as zeros with d = 0
// (false: nothing left to do); otherwise *p = qparams(A0, qmax).
inline bool quant_setup(int64_t n, int qmax, const QRow& o, uint64_t A0, int* dout, QParams* p) {
  *dout = 0;
  if (A0 == 0) {
    zero_row(n, o);
    return false;
  }
  *p = qparams(A0, qmax);
  return true;
}
// Elements [i, n) of a row by the scalar quantize_row element (a SIMD loop's tail); v(i) gives
// element i of the int64 row.
template <class Gen>
void quant_tail(int64_t i, int64_t n, const QParams& p, int qmax, const QRow& o, Gen v) {
  for (; i < n; ++i) {
    const int64_t q = qelem(v(i), p, qmax);
    if (o.q8) o.q8[i] = int8_t(q); else o.q16[i] = int16_t(q);
  }
}

// scale_of of llm.h (mant_in in [0, 2^15]).
inline RowScale scale_of_i(int64_t A, int qmax, int d, int64_t mant_in, int64_t e_in) {
  if (A <= 0 || mant_in <= 0) return RowScale{};
  const uint64_t v = uint64_t(A * mant_in * (int64_t{1} << 20));
  // (the two qmax every graph uses divide by a constant: a multiply, not a 64-bit div, per row)
  const uint64_t q = qmax == 32767 ? v / 32767 : qmax == 127 ? v / 127 : v / uint64_t(qmax);
  return normalize(q, e_in - d + 20);
}

// Hadamard size decomposition: n = 2^k * b, b in {1, 12, 20, 28, 44}; returns b (0: invalid).
inline int hadamard_block(int64_t n) {
  if (n <= 0) return 0;
  int64_t odd = n;
  while ((odd & 1) == 0) odd >>= 1;
  const int b = odd == 1 ? 1 : odd == 3 ? 12 : odd == 5 ? 20 : odd == 7 ? 28 : odd == 11 ? 44 : 0;
  if (b == 0 || n % b != 0) return 0;
  return b;
}

// rmsnorm: the unit exponent k of the mean square (0 unless eps in x'^2 units reaches 2^60) and
// the output scale from A, d, k and ms.
inline int64_t rms_k(int32_t eps_m, int eps_e, int c) {
  const int64_t over = int64_t{bitlen64(uint64_t(eps_m < 0 ? 0 : eps_m))} - (int64_t{eps_e} + 2 * c) - 60;
  return eps_m > 0 && over > 0 ? (over + 1) / 2 : 0;
}
inline RowScale rms_scale(int64_t A, int qmax, int d, int64_t k, int64_t ms) {
  int64_t r = isqrt64(uint64_t(ms));
  if (r < 1) r = 1;
  return normalize(uint64_t(A << 39) / uint64_t(int64_t{qmax} * r), int64_t{39} - d + k);
}

// The row scale of rmsnorm (llm.h) from c, sum x'^2 over the row and the quantizer's A and d.
inline RowScale rms_row_scale(const RmsnormArgs& a, int c, int64_t sum, int64_t A, int d) {
  const int32_t eps_m = a.eps_m < 0 ? 0 : a.eps_m;
  const int64_t k = rms_k(eps_m, a.eps_e, c);
  const int64_t ms = shs(sum / a.d, 2 * k) + shs(eps_m, int64_t{a.eps_e} + 2 * c + 2 * k);
  return rms_scale(A, a.qmax, d, k, ms);
}

// zq, sigmoid and v = g * sig * u of swiglu for one element (gsh = gs.exp - 12).
inline int64_t swiglu_v(int64_t g, int64_t u, int64_t gm, int64_t gsh) {
  const int64_t zq = clamp64(shs(g * gm, gsh), -(int64_t{1} << 17), int64_t{1} << 17);
  const int64_t E = expq(zq < 0 ? zq : -zq, 12) >> 14;
  const int64_t sig = zq >= 0 ? (int64_t{1} << 32) / ((int64_t{1} << 16) + E)
                              : (E << 16) / ((int64_t{1} << 16) + E);
  return g * sig * u;
}

inline const int8_t* hadamard_matrix(int b) {
  return b == 12 ? &llm_tables::kHadamard12[0][0]
         : b == 20 ? &llm_tables::kHadamard20[0][0]
         : b == 28 ? &llm_tables::kHadamard28[0][0]
         : b == 44 ? &llm_tables::kHadamard44[0][0] : nullptr;
}

// t = H_N x for one row (b = hadamard_block(n) != 0): H_b on each block of b consecutive
// elements, then the Sylvester butterflies across the n / b blocks.
template <class T>
inline void hadamard_row(const T* x, int64_t n, int b, int64_t* t) {
  const int8_t* Hb = hadamard_matrix(b);
  const int64_t nb = n / b;
  if (!Hb) {
    for (int64_t i = 0; i < n; ++i) t[i] = x[i];
  } else {
    for (int64_t jb = 0; jb < nb; ++jb)
      for (int i = 0; i < b; ++i) {
        int64_t acc = 0;
        for (int j = 0; j < b; ++j) acc += Hb[i * b + j] * int64_t{x[jb * b + j]};
        t[jb * b + i] = acc;
      }
  }
  for (int64_t len = 1; len < nb; len <<= 1)
    for (int64_t i0 = 0; i0 < nb; i0 += 2 * len)
      for (int64_t i = i0; i < i0 + len; ++i)
        for (int r = 0; r < b; ++r) {
          const int64_t p = t[i * b + r], q = t[(i + len) * b + r];
          t[i * b + r] = p + q;
          t[(i + len) * b + r] = p - q;
        }
}

// H_b (b in {12, 20, 28, 44}) as int16 pairs for the SIMD Hadamards (vpmaddwd / vpdpwssd):
// t[w][pair p][i] = (H[i][2p], H[i][2p+1]), i padded to 48 with zeros; w indexes {12, 20, 28, 44}.
struct HadamardPairs {
  int32_t t[4][22][48];
};
inline const HadamardPairs& hadamard_pairs() {
  static const HadamardPairs tab = [] {
    HadamardPairs h{};
    const int bs[4] = {12, 20, 28, 44};
    for (int w = 0; w < 4; ++w) {
      const int b = bs[w];
      const int8_t* M = hadamard_matrix(b);
      for (int pp = 0; pp < b / 2; ++pp)
        for (int i = 0; i < b; ++i)
          h.t[w][pp][i] = int32_t(uint32_t(uint16_t(int16_t(M[i * b + 2 * pp]))) |
                                  (uint32_t(uint16_t(int16_t(M[i * b + 2 * pp + 1]))) << 16));
    }
    return h;
  }();
  return tab;
}

// Scratch carving: 64-byte aligned pieces of a per-worker block.
inline uint8_t* align64(void* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}
inline int64_t pad16(int64_t n) { return (n + 15) & ~int64_t{15}; }

// Attention scratch: L (int64 [S']), E (int64 [S']), C (int64 [S']), S32 (int32 [S']),
// then V (int64 [hd']) for the cache write; S' = pad16(S * G) + 16 (one entry per cache slot
// (position, kv head): the grouped kernels process every kv head of a position together),
// hd' = pad16(hd) + 16. G is taken as 1 when kv_heads is outside [1, 256] (invalid arguments).
struct AttnScratch {
  int64_t* L;
  int64_t* E;
  int64_t* C;
  int32_t* S32;
  int64_t* V;
};
inline int64_t attn_slots(const AttentionArgs& a) {
  const int64_t S = a.cache_rows < 0 ? 0 : a.cache_rows;
  return S * (a.kv_heads >= 1 && a.kv_heads <= 256 ? a.kv_heads : 1);
}
inline size_t attn_scratch_bytes(const AttentionArgs& a) {
  const int64_t s = pad16(attn_slots(a)) + 16, h = pad16(a.head_dim < 0 ? 0 : a.head_dim) + 16;
  return size_t(64 + s * (8 + 8 + 8 + 4) + h * 8 + 256);
}
inline AttnScratch attn_scratch(void* scratch, const AttentionArgs& a) {
  const int64_t s = pad16(attn_slots(a)) + 16;
  uint8_t* p = align64(scratch);
  AttnScratch r;
  r.L = reinterpret_cast<int64_t*>(p); p += s * 8;
  r.E = reinterpret_cast<int64_t*>(p); p += s * 8;
  r.C = reinterpret_cast<int64_t*>(p); p += s * 8;
  r.S32 = reinterpret_cast<int32_t*>(p); p += s * 4;
  r.V = reinterpret_cast<int64_t*>(align64(p));
  return r;
}

inline bool attn_valid(const AttentionArgs& a) {
  return a.pos >= 0 && a.rows >= 0 && int64_t{a.pos} + a.rows <= a.cache_rows && a.heads > 0 &&
         a.kv_heads > 0 && a.heads % a.kv_heads == 0 && a.head_dim > 0 && a.head_dim <= 256;
}
inline int64_t attn_clip(const AttentionArgs& a) {
  return a.clip_q16 < 1 ? 1 : a.clip_q16 > kL40 ? kL40 : a.clip_q16;
}

// attention_out's rows (llm.h): each head's int64 outputs brought to the row's smallest exponent Er
// in place by head(oh, hd, sh) -> max |value| (sh = e - Er >= 0; 63 for a head without values:
// shift_s gives 0 beyond 62), then quant(o, W, y, Er, A0) -> RowScale (quantize_row to int8 with
// A0 = max |o|, scale_of(A, qmax, d, 1, Er)). A row without values (or an invalid shape): y = 0.
template <class Head, class Quant>
void attn_out_rows(const AttentionArgs& a, int64_t m0, int64_t m1, Head head, Quant quant) {
  const int H = a.heads, hd = a.head_dim;
  const int64_t W = int64_t{H} * hd;
  const bool ok = attn_valid(a);
  for (int64_t m = m0; m < m1; ++m) {
    int64_t* o = a.work + m * W;
    int8_t* y = a.y + m * W;
    int64_t Er = INT32_MAX;
    for (int h = 0; h < H && ok; ++h) Er = a.work_exp[m * H + h] < Er ? a.work_exp[m * H + h] : Er;
    if (Er == INT32_MAX) {
      for (int64_t i = 0; i < W; ++i) y[i] = 0;
      a.ys[m] = RowScale{};
      continue;
    }
    uint64_t A0 = 0;
    for (int h = 0; h < H; ++h) {
      const int64_t e = a.work_exp[m * H + h];
      const uint64_t mh = head(o + int64_t{h} * hd, hd, e == INT32_MAX ? 63 : e - Er);
      A0 = mh > A0 ? mh : A0;
    }
    a.ys[m] = quant(o, W, y, Er, A0);
  }
}

// The attention cache write (attention_cache, llm.h): each slot (row m, kv head g) of the new K and
// V rows goes to cache slot (pos + m) G + g, quantized to int8 by slot(src, hd, scale, dst) ->
// RowScale (quantize_row of the hd int16 values, then scale_of_i with the row's scale; one per
// variant).
template <class Slot>
void cache_write(const AttentionArgs& a, Slot slot) {
  if (!attn_valid(a)) return;
  const int hd = a.head_dim, G = a.kv_heads;
  for (int64_t sl = 0; sl < int64_t{a.rows} * G; ++sl) {
    const int64_t at = (int64_t{a.pos} * G + sl) * hd;
    a.kcs[a.pos * int64_t{G} + sl] = slot(a.k + sl * hd, hd, a.ks[sl / G], a.kc + at);
    a.vcs[a.pos * int64_t{G} + sl] = slot(a.v + sl * hd, hd, a.vs[sl / G], a.vc + at);
  }
}

// ---- softmax / layernorm helpers (llm.h) ----------------------------------------------------------

constexpr int64_t kLn2Q32 = 2977044472;  // round(ln 2 * 2^32)

// ln_q16 of llm.h: ln(z / 2^30) in Q16 for z >= 2^30.
inline int64_t lnq16(uint64_t z) {
  const int b = bitlen64(z) - 1;
  int64_t m = int64_t(z >> (b - 30));
  int64_t L = b - 30;
  for (int it = 0; it < 16; ++it) {
    m = rshift_round(m * m, 30);
    L *= 2;
    if (m >= (int64_t{1} << 31)) { m >>= 1; L += 1; }
  }
  return rshift_round(L * kLn2Q32, 32);
}

inline int64_t sm_clip(const SoftmaxArgs& a) {
  return a.clip_q16 < 1 ? 1 : a.clip_q16 > kL40 ? kL40 : a.clip_q16;
}
inline int64_t sm_valid(const SoftmaxArgs& a, int64_t m) {
  if (!a.valid) return a.n;
  const int64_t v = a.valid[m];
  return v < 0 ? 0 : v > a.n ? a.n : v;
}
// t = max(shift_s(d * mant, exp - 16), -clip) for one element.
inline int64_t sm_t(int64_t d, const RowScale& s, int64_t clip) {
  const int64_t t = shs(d * s.mant, int64_t{s.exp} - 16);
  return t < -clip ? -clip : t;
}
// Output of one element from e (or t for log) and the row's F / lnZ.
inline int64_t sm_out(int out, int64_t e, int64_t t, int64_t F, int64_t lnZ) {
  if (out == kSoftmaxU16) { const int64_t p = rshift_round(e * F, 46); return p > 65535 ? 65535 : p; }
  if (out == kSoftmaxU8) { const int64_t p = rshift_round(e * F, 54); return p > 255 ? 255 : p; }
  return clamp64(rshift_round(t - lnZ, 6), -32768, 0);
}
inline void sm_store(const SoftmaxArgs& a, int64_t k, int64_t v) {
  if (a.out == kSoftmaxU8) static_cast<uint8_t*>(a.y)[k] = uint8_t(v);
  else if (a.out == kSoftmaxU16) static_cast<uint16_t*>(a.y)[k] = uint16_t(v);
  else static_cast<int16_t*>(a.y)[k] = int16_t(v);
}
inline int64_t sm_masked(int out) { return out == kLogSoftmaxI16 ? -32768 : 0; }

inline int64_t ln_x(const LayernormArgs& a, int64_t k) {
  if (a.in_bits == 8) return static_cast<const int8_t*>(a.x)[k];
  if (a.in_bits == 16) return static_cast<const int16_t*>(a.x)[k];
  return static_cast<const int32_t*>(a.x)[k];
}
inline int floor_half(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }
// The row constants of layernorm from A0, S = sum x', ms = sum (x' - mu)^2: c (computed by the
// caller), mu, j and R.
struct LnRow {
  int64_t mu;
  int64_t r;     // isqrt result
  int e;         // k - j
  int sh;        // 61 - j - 16
  int64_t R;
};
inline int ln_P(int64_t d) { return d <= (int64_t{1} << 16) ? 22 : 18; }
inline int64_t ln_mu(int64_t S, int64_t d) {
  const int64_t num = 2 * S + d, den = 2 * d;
  if (d > 0 && (d & (d - 1)) == 0) return num >> __builtin_ctzll(uint64_t(den));   // floor division by 2^j
  int64_t q = num / den;
  if (num % den != 0 && num < 0) q -= 1;
  return q;
}
// ln_row in three steps, so that the segments variants can take the integer square roots of many
// runs at once: ln_eps (per row: eps in x'^2 units before the run's c), ln_pre (per run: k, j and
// the isqrt argument u), then ln_fin with rr = isqrt64(u) (ignored when the run's v is 0).
struct LnEps {
  int64_t q;     // (eps_m * 2^30) / mant^2, 0 when mant or eps_m is 0
  int64_t e2c;   // e2 + 2 c
};
inline LnEps ln_eps(const LayernormArgs& a, const RowScale& xs) {
  LnEps e{0, 0};
  const int64_t eps_m = a.eps_m < 0 ? 0 : a.eps_m;
  if (xs.mant != 0 && eps_m != 0) {
    e.q = int64_t((uint64_t(eps_m) << 30) / (uint64_t(xs.mant) * uint64_t(xs.mant)));
    e.e2c = 2 * int64_t{xs.exp} - a.eps_e - 30;
  }
  return e;
}
struct LnPre {
  int64_t k, j;
  uint64_t u;    // the isqrt64 argument (< 2^62); 0 when v == 0
  bool zero;     // v == 0: r = 2^30, j = 30
};
// msd = ms / d (truncating; ms >= 0), d the run length.
inline LnPre ln_pre(const LnEps& e, int c, int64_t msd) {
  const int64_t e2 = e.e2c - 2 * int64_t{c};
  int64_t k = 0;
  if (e.q > 0) {  // (q == 0: k = 0 and shift_s(q, .) = 0 whatever e2 is)
    const int64_t over = bitlen64(uint64_t(e.q)) + e2 - 60;
    if (over > 0) k = (over + 1) / 2;
  }
  const uint64_t v = uint64_t(shs(msd, 2 * k)) + uint64_t(shs(e.q, 2 * k - e2));
  LnPre p;
  p.k = k;
  p.zero = v == 0;
  if (p.zero) {
    p.j = 30, p.u = 0;
  } else {
    p.j = floor_half(62 - bitlen64(v));
    p.u = uint64_t(shs(int64_t(v), -2 * p.j));   // v < 2^63; the argument is < 2^62
  }
  return p;
}
inline LnRow ln_fin(const LnPre& p, int64_t mu, int64_t rr) {
  if (p.zero) rr = int64_t{1} << 30;
  else if (rr < 1) rr = 1;
  const int64_t sh = 61 - p.j + p.k - 16;
  LnRow r;
  r.mu = mu;
  r.sh = int(sh > 63 ? 63 : sh);
  r.r = rr;
  r.e = int(p.k - p.j);
  r.R = int64_t(((uint64_t{1} << 61) - 1) / uint64_t(rr));
  return r;
}
// ms / d for a run of d elements (ms >= 0): a shift when d is a power of two (lg = log2(d), else -1).
inline int64_t ln_div(int64_t ms, int64_t d, int lg) { return lg >= 0 ? ms >> lg : ms / d; }
inline int ln_log2(int64_t d) { return d > 0 && (d & (d - 1)) == 0 ? __builtin_ctzll(uint64_t(d)) : -1; }
// d: the length of the statistics' run (0: the whole row, a.d; layernorm segments).
inline LnRow ln_row(const LayernormArgs& a, const RowScale& xs, int c, int64_t mu, int64_t ms,
                    int64_t d = 0) {
  if (d <= 0) d = a.d;
  const LnPre p = ln_pre(ln_eps(a, xs), c, ln_div(ms, d, ln_log2(d)));
  return ln_fin(p, mu, p.zero ? 0 : int64_t{isqrt64(p.u)});
}
inline void ln_stats(const LayernormArgs& a, int64_t m, int64_t x0, int c, const LnRow& r) {
  if (!a.stats) return;
  LnStats& s = a.stats[m];
  s.x0 = x0, s.mu = r.mu, s.r = r.r, s.c = c, s.e = r.e;
}
inline int64_t ln_ch(const LayernormArgs& a, int64_t m, int64_t i) {
  const int64_t g = a.groups < 1 ? 1 : a.groups, in = a.inner < 1 ? 1 : a.inner;
  return (m % g) * (a.d / in) + i / in;
}
inline int64_t ln_w(const LayernormArgs& a, int64_t xp, const LnRow& r, int64_t ch) {
  const int64_t z = shs((xp - r.mu) * r.R, r.sh);
  if (!a.gm) return z;
  return a.gm[ch] * z + a.bo[ch] * (int64_t{1} << 16);
}

}  // namespace

// swiglu's sigmoid by table, for variants that gather it. For 0 <= z <= kSigLast, sig_table()[z]
// = sig(z) - 2^15 (uint16), sig(z) = 2^32 / (2^16 + E(z)) the sigmoid of swiglu_v at zq = z >= 0;
// E(z) = 0 (sig = 2^16) for every z >= kSigLast. For zq < 0, sig = E ? 2^16 - 1 - sig(|zq|) : 0:
// E 2^16 / den = 2^16 - 2^32 / den, and den = 2^16 + E divides 2^32 only where E = 0 (sig(|zq|)
// = 2^16) or E = 2^16 (zq = 0 alone). One padding entry (a 4-byte gather of the last). Built on
// first use from the scalar formulas; tests check every zq in [-2^17, 2^17] against swiglu_v.
constexpr int kSigLast = 45427;
const uint16_t* sig_table();

// The scalar operators (ref.cc), for variants that forward an operator or a part of it.
void ref_rmsnorm(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_rope(const RopeArgs& a, int64_t m0, int64_t m1);
void ref_attention_cache(const AttentionArgs& a, void* scratch);
void ref_attention_heads(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch);
void ref_attention_out(const AttentionArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_swiglu(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_residual_add(const ResidualArgs& a, int64_t m0, int64_t m1);
void ref_embedding(const EmbeddingArgs& a, int64_t m0, int64_t m1);
void ref_hadamard(const HadamardArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_softmax(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_layernorm(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch);
void ref_exp(const ExpArgs& a, int64_t i0, int64_t i1);

}  // namespace fq::k::llm
