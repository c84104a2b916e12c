// Integer LLM operator family (I-LLM): DI-RMSNorm, integer RoPE, DI-ClippedSoftmax attention with
// an int8 KV cache, DI-SwiGLU, residual add, embedding gather, online Hadamard, row softmax /
// log-softmax (DI-ClippedSoftmax) and DI-LayerNorm / GroupNorm, and the shared DI-Exp and per-row
// quantizer. The scalar variant (kernels/llm/ref.cc) is the executable form of this contract;
// every other variant writes the same bytes. No floating point anywhere in the family.
//
// ---- Dynamic activations -------------------------------------------------------------------------
// An activation row carries its own scale: a RowScale {mant, exp} means
//     real(q) = q * mant * 2^-exp,
// with mant normalized to [2^14, 2^15) (or mant = 0, exp = 0 for an all-zero row). A tensor
// [M, N] of int8/int16 values has one RowScale per row (an i32 [M, 2] tensor in graphs); the KV
// cache has one per (position, kv head). The residual stream is int32 with a static power-of-two
// scale 2^-E (E = `exp` attributes). Weights: real(w[n,k]) = w * mw[n] * 2^-w_exp (matmul.h).
// Bounds assumed of every input: RowScale exps and E within [-2^24, 2^24] (exponent arithmetic is
// done in int64 and shift amounts saturate, so larger values cannot overflow, only lose meaning);
// RowScale mants in [0, 2^15]. With these, no intermediate below can overflow int64: the bound of
// each product is given next to it.
//
// Shared definitions (fixed_point.h: rshift_round, saturate; bitlen(x) = 64 - clz(x), bitlen(0)=0):
//   shift_s(x, s)   = rshift_round(x, s) for s > 0; x for s == 0; x * 2^-s for s < 0, where a left
//                     shift saturates to +-(2^62 - 1) when |x| * 2^-s would reach 2^62; s > 62
//                     gives 0 (any sign: the value is far below one unit). Defined for every int64
//                     x (computed as (x >> s) + bit s-1 of x, which cannot overflow); the callers
//                     below keep |x| < 2^62.
//   normalize(v, e) for v >= 0 (uint64) and exponent e: the RowScale of v * 2^-e:
//                     v == 0 -> {0, 0}; b = bitlen(v); d = b - 15;
//                     m = shift_s(v, d); e' = e - d; if m == 2^15 { m = 2^14; e' -= 1 }
//                     -> {m, e'}  (exact when b <= 15, else rounded half up)
//
// quantize_row(v[0..n), qmax) -> q[0..n), d, A       (v int64 with |v| < 2^62; qmax in [1, 32767])
//   A0 = max |v|; if A0 == 0: q = 0, d = 0, A = 0.
//   d  = bitlen(A0) - 23;  v' = shift_s(v, d) for each element;  A = shift_s(A0, d)  (2^22 <= A <= 2^23)
//   F  = (qmax * 2^40 + A / 2) / A         (uint64 integer division, once per row; F < 2^34)
//   q  = clamp(rshift_round(v' * F, 40), -qmax, qmax)       (|v'| <= 2^23: |v' * F| < 2^57)
//   (d in [-22, 39]: d < 0 is an exact left shift.) q goes to q8 when qmax <= 127, else to q16.
//   so real(q) = q * (A / qmax) * 2^d * (unit of v). Callers build the row scale from A and d:
//   scale_of(A, qmax, d, mant_in, e_in) = normalize((A * mant_in * 2^20) / qmax, e_in - d + 20)
//   (mant_in in [0, 2^15], integer division truncates; A = 0 or mant_in = 0 gives {0, 0}; the
//   product A * mant_in * 2^20 < 2^59) where the unit of v is mant_in * 2^-e_in.
//
// exp_q(x, F) for x <= 0 in Q(F) fixed point (x real = x / 2^F), 8 <= F <= 24: e^x in Q30, uint32:
//   t = rshift_round(-x * 94548, 16)          (94548 = round(log2(e) * 2^16); -x <= 2^40 required,
//                                              so -x * 94548 < 2^57)
//   n = t >> F;  f = t & (2^F - 1);  i = f >> (F - 8);  r = f & (2^(F-8) - 1)
//   P  = rshift_round(TH[i >> 4] * TL[i & 15], 30)                 (~ 2^30 * 2^(-i/256))
//   rc = rshift_round(r * C, F - 8)                                 (F == 8: r = 0, rc = 0)
//   v  = P - rshift_round(P * rc, 32)          (chord of 2^-y over y in [i, i+1] / 256: relative
//                                              error <= (ln2/256)^2 / 8 < 1e-6, as with a 257-entry
//                                              table and linear interpolation between its knots)
//   exp_q = n > 31 ? 0 : rshift_round(v, n)
//   TH[a] = round(2^30 * 2^(-a/16)), TL[b] = round(2^30 * 2^(-b/256)), a, b = 0..15 (kExp2HiQ30,
//   kExp2LoQ30), C = round(2^32 * (1 - 2^(-1/256))) = 11613351 (kExp2ChordQ32); tables checked
//   against double in tests. Bounds: r * C < 2^40, P <= 2^30, rc < 2^24.
//   [Changed from a 257-entry table T[j] = round(2^30 * 2^(-j/256)) with v = T[i] -
//   rshift_round((T[i] - T[i+1]) * r, F - 8): the two 16-entry tables fit one vector register
//   each, so SIMD variants look them up with a permute instead of a gather (same accuracy bounds).]
//
// exp_shift(x, F) for x <= 0 in Q(F), 8 <= F <= 24, -x <= 2^40: e^x in Q30 by bit shifts only
//   (DI-Exp, I-LLM Algorithm 1 / I-ViT shift_exp; the low-accuracy, table-free form of exp_q):
//   z = x + (x >> 1) - (x >> 4)      (arithmetic shifts, floor: z ~ 1.4375 x = x log2(e) in Q(F)
//                                     log2 units; slope error -0.36 %, z <= 0)
//   q = (-z) >> F                    (integer part: division by the row's constant 2^F, the
//                                     number of input steps per unit of log2; a shift in Q(F))
//   r = z + q * 2^F                  (in (-2^F, 0]: the fraction p = r / 2^F in (-1, 0])
//   v = (r >> 1) + 2^F               (2^F (1 + p/2) ~ 2^F 2^p: the linear chord, in (2^(F-1), 2^F])
//   exp_shift = q >= 31 ? 0 : (v * 2^(30 - F)) >> q      (2^-q (1 + p/2) in Q30, truncated)
//   exp_shift(0) = 2^30. Resolution: the input step is 2^-F, the output Q30, so e^x survives down
//   to e^-20.8 (one output unit) instead of the ~e^-3 of a 16-step (4-bit) resolution. Error vs
//   e^x (docs/accuracy.md, tests/kernels/llm_test.cc): up to +6.2 % from the chord (1 + p/2 >= 2^p)
//   and a relative drift of -0.36 % of |x| log2(e) from the 1.4375 slope (e.g. +3.6 % at x = -10).
//   z, q, r, v < 2^42 in magnitude (int64).
//
// exp (array form of exp_q / exp_shift, one element per unit): y[i] = fn(min(x[i], 0), F) for
//   i in [i0, i1), fn = exp_q (kind kExpQ) or exp_shift (kExpShift); x int32 Q(F), F clamped into
//   [8, 24]; y uint32 Q30 (<= 2^30). No scratch.
//
// ---- Operators (row-wise; M rows of a decode/prefill step) ---------------------------------------
// rmsnorm (DI-RMSNorm, no affine: gamma is folded into the next matmul's weights offline):
//   x int32 [M][D] (unit 2^-E), eps as (eps_m, eps_e): eps in x's squared units = eps_m * 2^-eps_e
//   (eps_m in [0, 2^31) (a negative eps_m acts as 0), eps_e in [-62, 124]), D <= 16384. Per row:
//     A0 = max|x|; A0 == 0 -> y = 0, scale {0, 0}.
//     c = bitlen(A0) - 24; x' = shift_s(x, c)     (|x'| <= 2^24)
//     ss = sum x'^2 (int64, <= D * 2^48 <= 2^62)
//     e2 = eps_e + 2c;  k = max(0, ceil((bitlen(eps_m) - e2 - 60) / 2))
//       (k > 0 only when eps in x'^2 units reaches 2^60, i.e. eps >> max|x|^2: the mean square is
//        then taken in units of 4^k so that nothing saturates)
//     ms = shift_s(ss / D, 2k) + shift_s(eps_m, e2 + 2k)          (< 2^60 + 2^48; ss / D truncates)
//     r = max(1, isqrt64(ms))                                      (r <= 2^30 + 2^24)
//     q, d, A = quantize_row(x', qmax)
//     real(y) = x' / (r * 2^k): scale = normalize((A * 2^39) / (qmax * r), 39 - d + k)
//       [A * 2^39 <= 2^62; uint64 division, truncating; the quotient keeps >= 16 significant bits]
//   y int8 [M][D] (qmax <= 127) or int16 (qmax <= 32767); scale [M]. D >= 1.
//
// rope: x int16 [M][W], W = heads * hd (hd even), scale passes through with exp - 1; table int16
//   [S][hd/2][2] = (cos, sin) in Q14 of the angle pos * base^(-2i/hd) (built offline). Row m is
//   at position p = pos + m (< S). For each head and pair (a, b) = (x[2i], x[2i+1]):
//     y[2i]   = sat16(rshift_round(a*cos - b*sin, 15));  y[2i+1] = sat16(rshift_round(a*sin + b*cos, 15))
//   (interleaved pairs, frequencies restart in every head: llama2.c's convention). W is a multiple
//   of hd; the scale of an all-zero row ({0, 0}) stays {0, 0}. A row whose position is outside
//   [0, S) (a precondition violation) gets y = 0 and scale {0, 0} instead of an out-of-bounds read.
//
// attention (decode or prefill; DI-ClippedSoftmax in QANS order; GQA):
//   q int16 [M][H*hd] + qs [M]; k, v int16 [M][G*hd] + ks, vs [M]; caches kc, vc int8 [S][G*hd]
//   with kcs, vcs RowScale [S][G]; H % G == 0, head h reads kv head g = h / (H / G); hd <= 256;
//   row m is at position p = pos + m (< S); clip in Q16 (1 <= clip <= 2^40; values outside are
//   clamped into that range); qmax of the output (<= 127); S < 2^32.
//   Invalid arguments (pos < 0, pos + M > S, G == 0, H % G != 0, hd outside [1, 256]) leave the
//   cache untouched and give y = 0, ys = {0, 0} (the engine validates them; this only keeps the
//   kernel in bounds).
//   1. Cache write, for every row m and kv head g: q8, d, A = quantize_row(k[m][g], 127);
//      kc[p][g] = q8; kcs[p][g] = scale_of(A, 127, d, ks[m].mant, ks[m].exp); same for v.
//      (All rows are written before any row is read: row m sees rows <= p of the cache.)
//   2. Per row m and head h, over u = 0..p:
//      s_u = sum_j q[m][h*hd+j] * kc[u][g*hd+j]                      (int32: |s_u| <= 2^15*127*256)
//      w_u = s_u * kcs[u][g].mant                                     (int64, |w_u| < 2^45; |w_u*mant| < 2^60)
//      L_u = clamp(shift_s(w_u * qs[m].mant, qs[m].exp + kcs[u][g].exp - 16), -2^40, 2^40)  (Q16)
//      (1/sqrt(hd) is folded into wq offline.)  Lmax = max_u L_u
//      e_u = exp_q(max(L_u - Lmax, -clip), 16)                        (Q30; e = 2^30 at the max)
//      Z = sum_u e_u (int64, 2^30 <= Z <= S * 2^30);  F = (2^62 - 1) / Z (integer division,
//      F < 2^32: 32 significant bits, so the normalization error is ~2^-32 and not ~1/F);
//      p_u = rshift_round(e_u * F, 46)                                (e_u * F < 2^62)
//      (16-bit probabilities: p_u in [0, 2^16])
//      Emin = min_u vcs[u][g].exp over u with vcs[u][g].mant != 0 (if none: o = 0)
//      c_u = shift_s(p_u * vcs[u][g].mant, vcs[u][g].exp - Emin)     (0 <= c_u <= 2^31)
//      o[h*hd+j] = sum_u c_u * vc[u][g*hd+j]                          (int64, unit 2^-(Emin+16);
//                 |o| <= 127 * sum_u c_u <= 127 * 2^15 * (2^16 + S))
//      work_exp = Emin + 16, or INT32_MAX and o = 0 when no u has vcs[u][g].mant != 0.
//      The cache scales must be as attention_cache writes them (mant in [2^14, 2^15) or 0, so
//      p_u * mant < 2^31) or zero (a reset state).
//   3. Per row m: Eh = Emin+16 of head h (heads without values: skipped); Er = min_h Eh;
//      o' = shift_s(o_h, Eh - Er) per head (heads without values: o' = 0; o' may be computed in
//      place in work); q, d, A = quantize_row(o', qmax);
//      y[m] = q; ys[m] = scale_of(A, qmax, d, 1, Er). No head with values: y[m] = 0, ys = {0, 0}.
//   y int8 [M][H*hd].
//
// swiglu (DI-SwiGLU, stable sigmoid): gate, up int16 [M][N] + gs, us [M] -> y int8/int16 + ys.
//   Per row: zq = clamp(shift_s(g * gs.mant, gs.exp - 12), -2^17, 2^17)      (Q12, |z| <= 32)
//     E = exp_q(-|zq|, 12) >> 14                                          (Q16, 0 <= E <= 2^16)
//     sig = zq >= 0 ? 2^32 / (2^16 + E) : (E * 2^16) / (2^16 + E)          (Q16, integer division)
//     v = g * sig * u                                                       (int64, |v| < 2^47)
//     (mu, eu) = normalize(gs.mant * us.mant, gs.exp + us.exp + 16)
//     q, d, A = quantize_row(v, qmax); ys = scale_of(A, qmax, d, mu, eu)
//   (g * gs.mant < 2^30; |zq| <= 2^17 keeps exp_q's input in range.)
//
// residual_add: h int32 [M][D] (unit 2^-E), y int16 [M][D] + ys [M]:
//   out = sat32(h + shift_s(y * ys.mant, ys.exp - E))          (out may alias h; |y*mant| <= 2^30)
//
// embedding: ids int32 [M], table int8 [V][D], table scale RowScale [V], unit 2^-E of the output:
//   out[m] = sat32(shift_s(table[id] * ts[id].mant, ts[id].exp - E)); ids outside [0, V): zeros.
//
// hadamard (online Walsh-Hadamard, for rotations that cannot be folded into weights):
//   x int8 or int16 [M][N] + xs, N = 2^k * b with b in {1, 12, 20, 28, 44}; t = H_N x (exact
//   integer sums of +-x, |t| <= N * 128, or N * 2^15 for int16 input with N <= 65536: int32); q, d, A = quantize_row(t, qmax); ys = scale_of(A, qmax, d, xs.mant,
//   xs.exp) (the 1/sqrt(N) normalization is folded into the next weights offline). H_N is the
//   Sylvester power H_{2^k} (x) H_b, with H_b from kernels/llm/hadamard_tables.h:
//   H_N[i][j] = (-1)^popcount((i / b) & (j / b)) * H_b[i % b][j % b] (b = 1: H_1 = [1]).
//   b is the one that makes n / b a power of two (odd part of n: 1, 3, 5, 7, 11); qmax <= 127.
//   An n of no such form (hadamard_size_ok(n) false) gives y = 0, ys = {0, 0}.
//
// softmax (DI-ClippedSoftmax in QANS order: max-subtract, clip, exp; rows of the last axis):
//   x int8 or int16 [M][n] (in_bits 8 / 16), scale xs[m * xs_stride] (xs_stride 1: one RowScale
//   per row; 0: one per tensor), real(x) = x * mant * 2^-exp (mant in [0, 2^15]);
//   valid: nullptr, or the number of valid columns of each row V[m] (columns >= V are masked:
//   causal / padding; V is clamped into [0, n]); clip in Q16 (clamped into [1, 2^40]); n < 2^31.
//   Per row, with V = valid ? clamp(valid[m], 0, n) : n:
//     V == 0: every output is 0 (u8 / u16) or -32768 (log).
//     qx = max_{i<V} x_i;  d_i = x_i - qx (<= 0; |d_i * mant| < 2^31)
//     t_i = max(shift_s(d_i * mant, exp - 16), -clip)        (Q16 logit difference, -2^40 <= t_i <= 0)
//     e_i = exp_q(t_i, 16)                                    (Q30; e = 2^30 at the max)
//     Z = sum_{i<V} e_i (int64, 2^30 <= Z <= V * 2^30);  F = (2^62 - 1) / Z  (integer division)
//     out kSoftmaxU16: y_i = min(rshift_round(e_i * F, 46), 65535)   p = y * 2^-16   (e_i * F < 2^62)
//     out kSoftmaxU8:  y_i = min(rshift_round(e_i * F, 54), 255)     p = y * 2^-8
//     out kLogSoftmaxI16 (Q10: real = y * 2^-10, range [-32, 0]):
//       lnZ = ln_q16(Z) (below);  y_i = clamp(rshift_round(t_i - lnZ, 6), -32768, 0)
//     masked columns i >= V: y_i = 0 (u8 / u16), -32768 (log).
//   ln_q16(Z) for Z >= 2^30: ln(Z / 2^30) in Q16:
//     b = bitlen(Z) - 1; m = Z >> (b - 30) (Q30 in [1, 2), truncated); L = b - 30;
//     16 times: m = rshift_round(m * m, 30); L = 2 L; if m >= 2^31 { m = m >> 1; L = L + 1 }
//     (L = log2(Z / 2^30) in Q16, truncated bit by bit);  ln_q16 = rshift_round(L * 2977044472, 32)
//     (2977044472 = round(ln 2 * 2^32); L < 2^22).
//   The clip is the QANS one: logits more than clip below the row max all get e^-clip (clip >= 22
//   in real units makes it a no-op at Q30: exp_q is 0 below about -21.5). Probabilities keep
//   32 significant bits through F; small probabilities survive down to e^-21.5 relative to the
//   max (Q30), i.e. below the 2^-16 output step.
//
// layernorm (DI-LayerNorm; also GroupNorm): x int8 / int16 / int32 [M][d] (in_bits 8 / 16 / 32),
//   scale xs[m * xs_stride] (as softmax), eps = eps_m * 2^-eps_e in real units (eps_m in
//   [0, 2^31), eps_e in [-62, 124]); affine per channel: gm[ch] (|gm| <= 2^15), bo[ch] (|bo| < 2^31),
//   one exponent ae for both: gamma = gm * 2^-ae, beta = bo * 2^-ae (gm == nullptr: gamma = 1,
//   beta = 0, ae = 0). Element i of row m belongs to channel
//     ch(m, i) = (m % groups) * (d / inner) + i / inner
//   (LayerNorm: groups = 1, inner = 1; GroupNorm over x [N][C][HW] with G groups: rows of
//   d = (C / G) * HW, groups = G, inner = HW). 1 <= d <= 2^24. Per row:
//     x0 = x_0 (the row's first element: an anchor, so that a large common offset costs no precision)
//     A0 = max|x_i - x0|; P = d <= 2^16 ? 22 : 18; c = bitlen(A0) - P;
//     x'_i = shift_s(x_i - x0, c)                                (|x'| <= 2^P)
//     S = sum x'; mu = floor((2 S + d) / (2 d))                  (rounded mean, half up)
//     ms = sum (x'_i - mu)^2                                      (int64, exact, <= 2^62)
//     eps in x'^2 units = q * 2^e2: q = mant == 0 ? 0 : (eps_m * 2^30) / mant^2 (uint64, truncating),
//       e2 = 2 exp - eps_e - 2 c - 30;  k = q > 0 ? max(0, ceil((bitlen(q) + e2 - 60) / 2)) : 0
//       (k > 0 only when eps reaches 2^60 x'^2 units: the variance is then taken in units of 4^k)
//     v = shift_s(ms / d, 2 k) + shift_s(q, 2 k - e2)              (< 2^63; ms / d truncates)
//     v == 0: r = 2^30, j = 30 (then every x' - mu is 0); else j = floor((62 - bitlen(v)) / 2),
//       r = max(1, isqrt64(shift_s(v, -2 j)))                     (~ sqrt(v) * 2^j, in [2^30, 2^31))
//     R = (2^61 - 1) / r (uint64, < 2^31);  z_i = shift_s((x'_i - mu) * R, min(63, 61 - j + k - 16))
//                                                                 (Q16 normalized value; |(x'-mu) R| < 2^55)
//     w_i = gm[ch] * z_i + bo[ch] * 2^16                          (|w| < 2^48 + 2^47)
//     q, dq, A = quantize_row(w, qmax); ys = scale_of(A, qmax, dq, 1, ae + 16)
//   y int8 (qmax <= 127) or int16; ys [M]. A row whose w is all zero gets ys = {0, 0}.
//   stats (optional): {x0, mu, r, c, k - j}: mean = (x0 + mu 2^c) and sqrt(var + eps) = r 2^(c + k - j)
//   in input units (the float boundary derives ONNX's Mean / InvStdDev outputs from them).
//   segments (default 1, divides d): the row is `segments` equal runs of d / segments elements
//   (RWKV's GroupNorm over the heads of a token): every statistic above (x0, A0, P, c, S, mu, ms,
//   k, j, r, R) is taken per run, with the run length in place of d; w is the whole row's, and
//   one quantize_row over the row gives one row scale. stats must be nullptr when segments > 1.
//
// ---- Variants ----------------------------------------------------------------------------------
// Each variant implements every operator; a variant may forward an operator to the scalar one.
// Operators run over a range of rows [m0, m1) (independent work units) except attention, whose
// units are (row, head) pairs after a cache-write call that must complete first.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/cpu.h"

namespace fq::k {

struct RowScale {
  int32_t mant = 0;
  int32_t exp = 0;
};

extern const uint32_t kExp2HiQ30[16];   // round(2^30 * 2^(-a/16))
extern const uint32_t kExp2LoQ30[16];   // round(2^30 * 2^(-b/256))
constexpr int64_t kExp2ChordQ32 = 11613351;  // round(2^32 * (1 - 2^(-1/256)))

// Scalar definitions of the shared helpers (identical in every variant).
int64_t shift_s(int64_t x, int s);
RowScale normalize_scale(uint64_t v, int e);
int64_t exp_q(int64_t x, int frac_bits);
int64_t ln_q16(uint64_t z);   // softmax's ln(z / 2^30) in Q16, z >= 2^30
int64_t exp_shift(int64_t x, int frac_bits);   // bit-shift DI-Exp (above), Q30
// Returns A (0 for an all-zero row) and writes d; q is int8 when qmax <= 127 (q8) else int16.
int64_t quantize_row(const int64_t* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* d);
RowScale scale_of(int64_t A, int qmax, int d, int32_t mant_in, int e_in);

struct RmsnormArgs {
  const int32_t* x; int64_t d;           // [M][d]
  int32_t eps_m; int eps_e;
  int qmax;                              // output int8 if <= 127 else int16
  void* y; RowScale* ys;
};

struct RopeArgs {
  const int16_t* x; int64_t width; int head_dim;
  const int16_t* table; int64_t table_rows;   // [S][hd/2][2]
  int32_t pos;
  const RowScale* xs;
  int16_t* y; RowScale* ys;                   // y may alias x
};

struct AttentionArgs {
  const int16_t *q, *k, *v;                   // [M][H*hd], [M][G*hd], [M][G*hd]
  const RowScale *qs, *ks, *vs;               // [M]
  int8_t *kc, *vc;                            // [S][G*hd] state
  RowScale *kcs, *vcs;                        // [S][G] state
  int64_t rows;                               // M
  int heads, kv_heads, head_dim;
  int64_t cache_rows;                         // S
  int32_t pos;                                // position of row 0; pos + M <= S
  int64_t clip_q16;
  int qmax;                                   // output int8 (<= 127)
  int8_t* y; RowScale* ys;                    // [M][H*hd], [M]
  int64_t* work;                              // shared by steps 2 and 3: o [M][H*hd] int64
  int32_t* work_exp;                          // [M][H]: Emin + 16 of each (row, head); INT32_MAX
                                              // when the head saw no values
};

struct SwigluArgs {
  const int16_t *gate, *up; int64_t n;        // [M][n]
  const RowScale *gs, *us;
  int qmax;                                   // int8 if <= 127 else int16
  void* y; RowScale* ys;
};

struct ResidualArgs {
  const int32_t* h; const int16_t* y; const RowScale* ys; int64_t d; int e;
  int32_t* out;                               // may alias h
};

struct EmbeddingArgs {
  const int32_t* ids; const int8_t* table; const RowScale* ts; int64_t vocab, d; int e;
  int32_t* out;
};

struct HadamardArgs {
  const int8_t* x; const RowScale* xs; int64_t n; int qmax;
  int8_t* y; RowScale* ys;
  const int16_t* x16 = nullptr;               // int16 input instead of x (n <= 65536)
};

enum SoftmaxOut : int { kSoftmaxU8 = 0, kSoftmaxU16 = 1, kLogSoftmaxI16 = 2 };

struct SoftmaxArgs {
  const void* x; int in_bits;                 // int8 or int16 [M][n]
  int64_t n;
  const RowScale* xs; int64_t xs_stride;      // xs[m * xs_stride]: 1 per row, 0 per tensor
  const int32_t* valid;                       // [M] valid columns, or nullptr (all)
  int64_t clip_q16;
  int out;                                    // SoftmaxOut
  void* y;                                    // uint8 / uint16 / int16 [M][n]
};

enum ExpKind : int { kExpQ = 0, kExpShift = 1 };

struct ExpArgs {
  const int32_t* x;                           // Q(frac_bits), <= 0 (larger values act as 0)
  int frac_bits;                              // F, clamped into [8, 24]
  int kind;                                   // ExpKind
  uint32_t* y;                                // Q30
};

// The integer statistics of a layernorm row (optional output): in input units (real = value *
// mant * 2^-exp of the row's scale), mean = x0 + mu * 2^c and sqrt(var + eps) = r * 2^(c + e).
struct LnStats {
  int64_t x0 = 0, mu = 0, r = 0;
  int32_t c = 0, e = 0;
};

struct LayernormArgs {
  const void* x; int in_bits;                 // int8 / int16 / int32 [M][d]
  int64_t d;
  const RowScale* xs; int64_t xs_stride;
  int32_t eps_m; int eps_e;
  const int32_t* gm; const int32_t* bo; int ae;   // per channel, or gm == nullptr
  int64_t groups, inner;                      // channel of (m, i): (m % groups) * (d / inner) + i / inner
  int qmax;                                   // int8 if <= 127 else int16
  void* y; RowScale* ys;
  LnStats* stats;                             // [M] or nullptr: x0, mu, c, r, e = k - j of each row
  int64_t segments = 1;                       // statistics per run of d / segments (stats == nullptr)
};

// One variant of the family. Row ranges [m0, m1); attention_rows: units are m * heads + h.
// Scratch (per worker, bytes) sizes come from the *_scratch functions of the shape; they cover every
// variant, and the scratch pointer needs no particular alignment (kernels align inside it).
// rope, residual_add and embedding need no scratch; attention_cache/heads/out take
// attention_scratch(a) bytes.
struct LlmKernel {
  Isa isa;
  const char* name;
  void (*rmsnorm)(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*rope)(const RopeArgs& a, int64_t m0, int64_t m1);
  void (*attention_cache)(const AttentionArgs& a, void* scratch);          // step 1 (all rows)
  void (*attention_heads)(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch);  // step 2
  void (*attention_out)(const AttentionArgs& a, int64_t m0, int64_t m1, void* scratch);    // step 3
  void (*swiglu)(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*residual_add)(const ResidualArgs& a, int64_t m0, int64_t m1);
  void (*embedding)(const EmbeddingArgs& a, int64_t m0, int64_t m1);
  void (*hadamard)(const HadamardArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*softmax)(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*layernorm)(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch);
  void (*exp)(const ExpArgs& a, int64_t i0, int64_t i1);       // elements [i0, i1)
};

// Scratch bytes per worker.
size_t rmsnorm_scratch(int64_t d);
size_t swiglu_scratch(int64_t n);
size_t hadamard_scratch(int64_t n);
size_t softmax_scratch(int64_t n);
size_t layernorm_scratch(int64_t d);
size_t attention_scratch(const AttentionArgs& a);   // from cache_rows * kv_heads and head_dim
// (attention_scratch grew from one entry per position to one per (position, kv head): the
// AVX-512 kernel processes every kv head of a position at once; hadamard_scratch from 8 to 12 bytes
// per element: int32 sums next to the int64 row.)
// Steps of one attention call: attention_cache (one unit, all rows), then attention_heads over
// units [0, M*H) (unit = m * H + h, writes work/work_exp), then attention_out over rows [0, M).

// True when n = 2^k * b with b in {1, 12, 20, 28, 44} (k >= 0).
bool hadamard_size_ok(int64_t n);

const LlmKernel* llm_kernel(Isa want);
const LlmKernel* const* llm_kernels(size_t* count);

}  // namespace fq::k
