// Float reference operators of the Mamba (v1) graphs (docs/mamba.md, docs/format.md section 3).
// Rows are tokens ([T, C] activations); the recurrent states are updated in place row by row, so
// T rows give the same results as T single-row calls (decode and sequence forms agree bit for
// bit). Compiled without floating-point contraction.
#pragma once
#include <cstdint>

namespace fq::ref {

// Causal depthwise conv1d with carried state (mamba's conv1d, groups = channels, left padding
// k - 1): x [rows, c], w [c, k] (conv1d.weight [c, 1, k] without the middle axis), b [c] or null,
// state [k - 1, c] = the previous k - 1 input rows, oldest first (zero at the start of a sequence).
// With xx = (state rows, x rows): y[t][ch] = b[ch] + sum_{j < k} w[ch][j] * xx[t + j][ch], summed
// in j order starting from the bias. Then state = the last k - 1 rows of xx.
void causal_conv1d(const float* x, int rows, int c, int k, const float* w, const float* b,
                   float* state, float* y);

// Mamba's selective scan (selective_scan_ref / selective_state_update without z and delta bias):
// per row t, channel d and state n (n ascending):
//   h[d][n] = h[d][n] * expf(dt[t][d] * A[d][n]) + (dt[t][d] * B[t][n]) * x[t][d]
//   y[t][d] = (sum_n h[d][n] * C[t][n]) + D[d] * x[t][d]     (the sum starts at 0)
// x, dt [rows, c]; A [c, n] (negative, -exp(A_log)); B, C [rows, n]; D [c] or null (0);
// state h [c, n].
void selective_scan(const float* x, const float* dt, const float* A, const float* B,
                    const float* C, const float* D, int rows, int c, int n, float* state, float* y);

}  // namespace fq::ref
