// Integer selective-state-space family (Mamba v1 mixer core): causal depthwise conv1d with carried
// state + SiLU, the selective scan with an int32 fixed-point state, and a per-row requantizer. The
// scalar variant (kernels/ssm/ref.cc) is the executable form of this contract; every other variant
// writes the same bytes. No floating point anywhere in the family. Shared definitions (RowScale,
// shift_s, exp_q, quantize_row, scale_of, normalize) are the llm family's (fq/kernels/llm.h).
//
// Units. Dynamic activations carry RowScales (real = q * mant * 2^-exp, mant in [2^14, 2^15) or 0),
// as produced by DI-MatMul. Inside the mixer the recurrent quantities use static power-of-two units
// chosen offline by the quantizer: the conv input 2^-Ex (x_exp), the conv weights 2^-Ew (w_exp), the
// scan input u 2^-Eu (u_exp), the state of channel c 2^-Eh[c] (h_exp), the scan output 2^-Ey (y_exp).
// Attributes and exps are assumed within [-2^20, 2^20]; shift_s saturates, so nothing overflows.
//
// ---- conv (causal depthwise conv1d over time + SiLU; decode M = 1 or prefill M > 1) --------------
//   x int16 [M][C] + xs [M] (in_proj's x half), w int16 [C][K] (real = w * 2^-Ew), bias int32 [C]
//   (real = b * 2^-(Ex+Ew)) or nullptr, state int32 [K-1][C] (unit 2^-Ex; the previous K-1 inputs,
//   oldest first; zeros at the start of a sequence), 2 <= K <= 64.
//   Row m, channel c (rows in order; row m sees rows < m of this call, then the state):
//     xf[m][c] = sat32(shift_s(x[m][c] * xs[m].mant, xs[m].exp - Ex))            (|x * mant| <= 2^30)
//     win_j    = xf[m - K + 1 + j][c], j = 0..K-1 (an index i < 0 reads state[K - 1 + i][c])
//     acc      = bias[c] + sum_j w[c][j] * win_j                                   (int64, < 2^53)
//     zq       = clamp(shift_s(acc, Ex + Ew - 16), -(2^31 - 1), 2^31 - 1)          (Q16)
//     zc       = clamp(rshift_round(zq, 4), -2^17, 2^17)                           (Q12, |z| <= 32)
//     sig      = swiglu's stable sigmoid of zc (Q16, llm.h): E = exp_q(-|zc|, 12) >> 14;
//                zc >= 0 ? 2^32 / (2^16 + E) : (E * 2^16) / (2^16 + E)
//     v[m][c]  = zq * sig                                                          (Q32, |v| < 2^47)
//     uf[m][c] = sat32(shift_s(v[m][c], 32 - Eu))                                  (scan input, unit 2^-Eu)
//   Row m: q, d, A = quantize_row(v[m], qmax); u[m] = q (int8); us[m] = scale_of(A, qmax, d, 1, 32).
//   After the call the state holds the last K-1 xf rows of (old state rows, then the M new rows).
//   M rows in one call give the same bytes as M calls of one row (the prefill/decode identity).
//
// ---- scan (selective scan, h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, y_t = C_t . h_t + D u_t) -----
//   u int32 [M][C] (conv's uf, unit 2^-Eu); dt int16 [M][C] + dts [M] (dt_proj output with its bias,
//   before softplus); b, c int16 [M][N] + bs, cs [M] (x_proj's B and C); a int32 [C][N] = |A| in
//   Q(a_frac), 0 <= a < 2^24 (A = -exp(A_log) < 0); d int32 [C] = D in Q16 (|d| < 2^24); h_exp
//   int8 [C]; state h int32 [C][N] (unit 2^-Eh[c]; zeros at the start of a sequence); 1 <= N <= 256.
//   Per row m (rows in order), with Bm[n] = rshift_round(b[m][n] * bs[m].mant, 14) and Cm likewise
//   (|Bm|, |Cm| <= 2^16), per channel c:
//     xq  = clamp(shift_s(dt[m][c] * dts[m].mant, dts[m].exp - 12) + dt_bias[c], -2^17, 2^17)
//           (Q12; dt_bias: dt_proj's bias in Q12, |dt_bias| <= 2^20, nullptr = 0: a DI-MatMul
//           bias is in accumulator units, which a per-token scale makes row dependent)
//     dq  = softplus in Q24:  xq >= 2^16: xq * 2^12;  xq < -2^16: 0;  else j = xq + 2^16,
//           i = j >> 8, r = j & 255, dq = T[i] + rshift_round((T[i+1] - T[i]) * r, 8), with
//           T = kSoftplusQ24[i] = round(2^24 * ln(1 + e^(-16 + i/16))), i = 0..512 (a uniform
//           table, 1/16 apart, linear interpolation; checked against double in the tests)
//     W   = clamp(shift_s(dq * u[m][c], 24), -(2^31 - 1), 2^31 - 1)      (dt * u, unit 2^-Eu; dq < 2^29)
//     per n (any order: the n are independent):
//       t   = min(shift_s(dq * a[c][n], a_frac + 8), 2^40)            (dt |A| in Q16; the shift is
//             rshift_round for a_frac + 8 in [1, 62]; the cap only binds for a_frac < 5, where
//             exp_q(-t) is already 0 beyond t ~ 2^20.5, and keeps exp_q's input in range)
//       g   = exp_q(-t, 16)                                             (exp(dt A) in Q30, <= 2^30)
//       bb  = shift_s(W * Bm[n], Eu + bs[m].exp - 14 - Eh[c])            (|W * Bm| < 2^48)
//       h[c][n] = sat32(rshift_round(g * h[c][n], 30) + bb)            (|g * h| < 2^61)
//     ysum = sum_n Cm[n] * h[c][n]                                      (int64, |ysum| < 2^56)
//     yt[m][c] = clamp(shift_s(ysum, Eh[c] + cs[m].exp - 14 - Ey)
//                      + shift_s(d[c] * u[m][c], 16 + Eu - Ey), -2^61, 2^61)   (unit 2^-Ey)
//   scan writes yt into work (int64 [M][C]); scan_out then, per row: q, dd, A = quantize_row(yt[m],
//   32767); y[m] = q (int16); ys[m] = scale_of(A, 32767, dd, 1, Ey). The gate y * SiLU(z) is the llm
//   family's swiglu(gate = z, up = y). Rows are a strict recurrence (a state update per row), so a
//   prefill call of M rows equals M decode calls bit for bit; variants vectorize over channels and
//   states, never reassociate over rows.
//
// ---- requant (per-row requantization of a dynamic activation to a narrower width) ---------------
//   x int16 or int32 [M][n] (in_bits) + xs [M]: q, d, A = quantize_row(x[m], qmax);
//   y[m] = q (int8 when qmax <= 127, else int16); ys[m] = scale_of(A, qmax, d, xs[m].mant, xs[m].exp).
//
// ---- Variants ----------------------------------------------------------------------------------
// conv and scan run over channel ranges [c0, c1) (independent work units: every row of those
// channels, in row order, including their state); conv_out and scan_out then run over row ranges
// [m0, m1) after every channel unit has finished. requant runs over row ranges.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/cpu.h"
#include "fq/kernels/llm.h"

namespace fq::k {

extern const int32_t kSoftplusQ24[513];   // round(2^24 * ln(1 + e^(-16 + i/16)))

struct SsmConvArgs {
  const int16_t* x; const RowScale* xs;       // [M][C], [M]
  int64_t rows, channels;                     // M, C
  int taps;                                   // K in [2, 64]
  const int16_t* w; const int32_t* bias;      // [C][K]; [C] or nullptr
  int x_exp, w_exp, u_exp;                    // Ex, Ew, Eu
  int qmax;                                   // u's qmax (<= 127)
  int32_t* state;                             // [K-1][C] in/out
  int8_t* u; RowScale* us;                    // [M][C], [M]
  int32_t* uf;                                // [M][C]
  int64_t* work;                              // v [M][C] (conv -> conv_out)
};

struct SsmScanArgs {
  const int32_t* u;                           // [M][C], unit 2^-Eu
  const int16_t* dt; const RowScale* dts;     // [M][C], [M]
  const int16_t* b; const RowScale* bs;       // [M][N], [M]
  const int16_t* c; const RowScale* cs;       // [M][N], [M]
  const int32_t* a;                           // [C][N], |A| in Q(a_frac)
  const int32_t* d;                           // [C], D in Q16
  const int8_t* h_exp;                        // [C]
  int64_t rows, channels, states;             // M, C, N
  int u_exp, a_frac, y_exp;                   // Eu, a_frac, Ey
  int32_t* h;                                 // [C][N] in/out
  int16_t* y; RowScale* ys;                   // [M][C], [M]
  int64_t* work;                              // yt [M][C] (scan -> scan_out)
  const int32_t* dt_bias = nullptr;           // [C] Q12, |b| <= 2^20, or nullptr (= 0)
};

struct RequantArgs {
  const void* x; int in_bits;                 // int16 / int32 [M][n]
  const RowScale* xs; int64_t n;
  int qmax;                                   // int8 if <= 127 else int16
  void* y; RowScale* ys;
};

// One variant of the family (see Variants above). Scratch: requant takes requant_scratch(n) bytes
// per worker (no alignment needed); the others use args.work.
struct SsmKernel {
  Isa isa;
  const char* name;
  void (*conv)(const SsmConvArgs& a, int64_t c0, int64_t c1);
  void (*conv_out)(const SsmConvArgs& a, int64_t m0, int64_t m1);
  void (*scan)(const SsmScanArgs& a, int64_t c0, int64_t c1);
  void (*scan_out)(const SsmScanArgs& a, int64_t m0, int64_t m1);
  void (*requant)(const RequantArgs& a, int64_t m0, int64_t m1, void* scratch);
};

size_t requant_scratch(int64_t n);

const SsmKernel* ssm_kernel(Isa want);
const SsmKernel* const* ssm_kernels(size_t* count);

}  // namespace fq::k
