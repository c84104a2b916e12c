// fqquant-mamba: the MambaQuant-style quantizer of Mamba (v1) models into integer-only graphs
// (docs/mamba.md, "Integer graphs"). Float code, offline: everything it knows in floating point is
// folded into integer constants of the graph (fq/kernels/ssm.h, llm.h, matmul.h).
//
//   1. calibration text: the float model's own samples (seeds calib_seed..);
//   2. exact transforms: the norms' gammas folded into in_proj / the head; the residual rotation
//      R1 (none, a random-signed Hadamard = QuaRot, or MambaQuant's KLT-enhanced K H, K the
//      eigenvectors of the calibration covariance of the normalized residual); the online
//      Hadamard R2 of the out_proj input (a `hadamard` node, out_proj <- out_proj H^T / d_inner);
//   3. statistics of the transformed float64 model on the calibration text (input second moments
//      of every linear, ranges of the residual, conv input, scan input, per-channel state and scan
//      output);
//   4. weights: int8 per channel or int4 per group (round to nearest, or clipping search + GPTQ,
//      the LLM quantizer's quantize_linear), the conv taps int16, A, D, biases as fixed point.
#pragma once
#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>

#include "fq/graph.h"
#include "model.h"
#include "quantize.h"  // fq::llama::Mat, QLinear

namespace fq::mamba {

using llama::Mat;
using llama::QLinear;

struct MambaRecipe {
  std::string path, name;
  int weight_bits = 8;        // 8 or 4 (in_proj, x_proj, dt_proj, out_proj)
  int group = 32;             // int4 group along K
  int head_bits = 8;          // the tied head (8 or 4)
  int activation_bits = 8;    // 8 (qmax 127) or 4 (qmax 7): every matmul input
  std::string rotate = "none";  // R1: none | hadamard | klt | auto (calibration search)
  int rotate_seed = 1;
  bool online_hadamard = false;  // R2
  bool online_auto = false;      // online_hadamard: auto (calibration search)
  bool clip_search = false, gptq = false, act_order = false;
  int calib_sequences = 8, calib_tokens = 256;
  int calib_seed = 1000;
  int act_qmax() const { return activation_bits == 8 ? 127 : 7; }
};

// A recipe file (flat YAML map; every key optional), then `sets` ("key=value") applied in order.
// Errors name the file and line (or the --set).
MambaRecipe read_recipe(const std::string& path, const std::vector<std::string>& sets = {});

// The float model after the exact transforms, and its quantized form.
struct QLayer {
  Mat wx, wz, xdt, xb, xc, wdt, wout;           // float, transformed
  QLinear qx, qz, qdt_low, qb, qc, qdt, qout;   // quantized
  std::vector<double> conv_w, conv_b, dt_b, a, d;   // [Di*K], [Di], [Di], |A| [Di*N], [Di]
  // integer constants (ssm.h)
  int x_exp = 0, w_exp = 0, u_exp = 0, a_frac = 0, y_exp = 0;
  std::vector<int16_t> conv_wq;
  std::vector<int32_t> conv_bq, aq, dq, dt_bq;
  std::vector<int8_t> h_exp;
};

struct QModel {
  Config c;
  MambaRecipe r;
  Mat emb, head;               // [V][D], transformed (head: gamma_f folded)
  std::vector<QLayer> layers;
  std::vector<int8_t> emb_q;   // int8 rows
  std::vector<double> emb_scale;
  QLinear qhead;
  int residual_exp = 0;        // E
  std::vector<double> rotation;  // R1 [D][D] (x' = R^T x), empty without rotation
  std::string notes;           // what calibration chose (printed with -v)
};

// The whole pipeline. `sample` = true samples the calibration text from the float model
// (otherwise `calib` is used).
QModel quantize(const Model& m, const MambaRecipe& r, const std::vector<std::vector<int>>& calib = {});

// Calibration / evaluation text: n sequences of `tokens` tokens sampled (temperature 1) from the
// float64 reference, starting from token 0, seeds seed, seed + 1, ...
std::vector<std::vector<int>> sample_sequences(const Model& m, int n, int tokens, uint64_t seed);

// The integer graph (docs/mamba.md): inputs tokens i32 [rows], pos i32 [1]; outputs logits i16
// [rows, V] + logits_scale, hidden i32 [rows, D] (the last layer's residual stream, unit
// 2^-residual_exp, in the rotated frame; the head reads its rmsnorm). rows = 1 is the decode graph; rows > 1 a prefill graph with the same weights and state
// tensors (Session::save_state / load_state carry the state between them).
Graph build_int_graph(const QModel& q, const std::string& name, int rows = 1,
                      const std::string& tokenizer = "");

// Float64 simulation of the graph's quantization points on the transformed model (an ablation
// tool): per-token symmetric rounding at qmax (0 = exact) of the in_proj input (`in`), the x_proj
// input (`u`), the dt_proj input (`dtl`), the out_proj input (`g`), and `weights` = the quantized
// weights. Returns, per token, the relative L2 error of the normalized final residual against the
// exact transformed model.
struct SimPoints {
  int in = 0, u = 0, dtl = 0, g = 0;
  bool weights = false;
};
std::vector<double> simulate_error(const QModel& q, const std::vector<int>& toks, const SimPoints& sim);

// Fidelity of an integer graph (rows 1) against the float64 reference on one sequence from the
// zero state, per token t: the final hidden state (gamma_f * x / rms(x), x the last residual) of
// the graph, mapped back through R1, against the reference's: cosine similarity and
// relative L2 error; and the logits: KL(reference || graph) and both models' NLL of the next
// token (seq[t + 1]).
struct Fidelity {
  std::vector<double> cos, rel_err, kl, nll_ref, nll_q;
  double mean(const std::vector<double>& v, size_t t0 = 0, size_t t1 = SIZE_MAX) const;
};
Fidelity fidelity(const Model& m, const QModel& q, const Graph& g, const std::vector<int>& seq,
                  int threads = 1);

}  // namespace fq::mamba
