// Weight quantization of one linear (quantize.h, step 4): scales (abs-max or clipping search on
// the output error e^T H e), their integer encodings (matmul.h: int8 per-channel mult + w_exp;
// int4 per-group gmult int16 + per-row gshift + w_exp), then round-to-nearest or GPTQ.
#pragma once
#include <vector>

#include "quantize.h"

namespace fq::llama {

struct WeightQuantOptions {
  int bits = 8;              // 8 or 4
  int group = 0;             // int4 group (0 = whole row)
  bool clip_search = false;
  double clip_min = 0.5;
  bool row_search = false;   // clip search: also a per-row ratio judged after GPTQ
  bool scale_refine = false; // least-squares group scales for the chosen codes, iterated
  bool local_search = false; // then greedy +-1 code moves lowering e^T H e
  bool gptq = false;
  bool act_order = false;
  double damp = 0.01;
};

// H: K x K second moment of the inputs (sum over samples of x x^T), or empty (then clip search
// uses the plain weight MSE and GPTQ is not possible).
QLinear quantize_linear(const Mat& w, const std::vector<double>& h, const WeightQuantOptions& o);

// Upper Cholesky factor U of the inverse of H (K x K, dampened by damp x its mean diagonal; dead
// columns get a unit diagonal) in the column order perm (Hinv = U^T U), row-major: the GPTQ update
// factor. Returns false when H is not positive definite.
bool gptq_factor(const std::vector<double>& h, int K, const std::vector<int>& perm, double damp,
                 std::vector<double>* out);

// Lower Cholesky factor of a symmetric positive definite n x n matrix (row-major, in place).
// Returns false when a pivot is not positive.
bool cholesky_lower(std::vector<double>& a, int n);

}  // namespace fq::llama
