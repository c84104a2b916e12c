// fqquant-llama: float llama2.c checkpoint + recipe -> the integer decode graph of
// docs/llm_int.md. All floating-point work (folding, rotations, redundant frames, smoothing,
// clipping search, GPTQ, calibration) happens here, offline; the graph holds integers only.
// docs/llm_int.md ("Quantizer") describes every step and its measured effect.
//
// Pipeline (quantize_model, then build_int_graph):
//   1. calibration text: sequences the float model samples itself (sample_sequences, seeds
//      >= 1000; the evaluation sequences use seeds < 1000)
//   2. a float "transformed model" (TModel): rmsnorm gamma and 1/sqrt(head_dim) folded into the
//      weights, hidden padded (online Hadamard, optionally a wider scattered frame), up->down
//      smoothing, residual rotation, residual frame, per-head v/o rotation, the online Hadamard
//      folded into w2 -- every step exact in real numbers
//   3. per-linear input statistics of the transformed model (Hessians X^T X, per-channel abs-max,
//      residual max |x|)
//   4. weight quantization per linear (gptq.h): scales (abs-max or clipping search on the output
//      error), GPTQ and refinements, integer encodings
//   5. the residual exponent E, eps and the RoPE table; the graph (build_int_graph)
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint.h"
#include "fq/graph.h"

namespace fq::tools {
struct GraphBuilder;  // tools/common/graph_builder.h
}

namespace fq::llama {

// ------------------------------------------------------------------------------------- recipe

// An LLM quantization recipe (configs/llm-*.yaml). Every key is optional; unknown keys are errors.
struct LlmRecipe {
  std::string name = "llm";
  std::string path;             // the file it was read from
  int weight_bits = 8;          // 8: per-channel int8; 4: int4 in groups of `group`
  int group = 32;               // int4 group size along k: 32, 64 or 128
  int activation_bits = 8;      // 8 (qmax 127) or 4 (qmax 7) for every matmul input
  int classifier_bits = 8;      // the logits matmul's weights (8 or 4)
  bool rotate = false;          // residual-stream Hadamard (QuaRot), folded into the weights
  int rotate_seed = 0;          // random signs of the residual Hadamard (0: no signs)
  int rotate_trials = 1;        // try seeds rotate_seed .. + trials - 1, keep the best (calib loss)
  bool rotate_heads = false;    // per-head Hadamard on v (rows of wv) / o (columns of wo)
  bool online_hadamard = false; // integer Hadamard before w2 (hidden padded to a supported size)
  double hidden_expand = 1;     // online Hadamard over >= expand x hidden (zero-padded, channels
                                // scattered): a redundant frame; w2 discards the padded noise
  double residual_expand = 1;   // residual stream in a redundant frame of >= expand x dim
  bool online_hadamard_o = false;  // integer Hadamard on the attention output (before wo)
  bool smooth = false;          // up -> down smoothing (w3 rows / s, w2 columns * s)
  double smooth_alpha = 0.5;    // closed-form init s = amax_x^a / amax_w^(1-a)
  bool smooth_search = false;   // grid search of alpha on the calibration loss
  bool clip_search = false;     // per-channel / per-group weight clipping search (output MSE)
  double clip_min = 0.5;        // smallest clipping ratio tried
  bool clip_row_search = false; // then a per-row ratio judged by the error after GPTQ
  bool gptq = false;            // GPTQ error compensation
  double gptq_damp = 0.01;      // Hessian dampening (fraction of the mean diagonal)
  bool scale_refine = false;    // least-squares refit of the scales to the chosen codes
  bool local_search = false;    // greedy +-1 code moves after GPTQ (layer output error)
  bool gptq_act_order = false;  // GPTQ in decreasing order of the Hessian diagonal
  bool gptq_sequential = false; // Hessians of layer l from the model with layers < l quantized
  bool refit = false;           // (sequential) weights refit to the float outputs first
  double refit_damp = 0.01;
  int calib_sequences = 32;     // calibration: sequences sampled from the float model
  int calib_tokens = 256;       // tokens per sequence (BOS included)
  int calib_seed = 1000;        // first sampling seed (>= 1000: evaluation sets use < 1000)
  double calib_topp = 0.9;      // top-p of the sampler (run.c's default)
  bool calib_stop_at_bos = false;  // end a sequence at a sampled BOS (else a new story starts)
  double attention_clip = 15;   // DI-ClippedSoftmax clip, in logit units (stored Q16)
  double residual_headroom = 16;  // E: int32 range = headroom x calibrated max |x|

  int act_qmax() const { return activation_bits == 4 ? 7 : 127; }
};

// Parses a recipe; throws fq::Error "FILE:LINE: message" (one line) on bad input.
LlmRecipe parse_llm_recipe(const std::string& yaml_text, const std::string& path);
LlmRecipe load_llm_recipe(const std::string& path);

// ----------------------------------------------------------------------- transformed float model

struct Mat {
  int rows = 0, cols = 0;
  std::vector<float> a;
  Mat() = default;
  Mat(int r, int c) : rows(r), cols(c), a(size_t(r) * c, 0.f) {}
  float* row(int i) { return a.data() + size_t(i) * cols; }
  const float* row(int i) const { return a.data() + size_t(i) * cols; }
  float& at(int i, int j) { return a[size_t(i) * cols + j]; }
  float at(int i, int j) const { return a[size_t(i) * cols + j]; }
};

// A quantized linear: integer codes plus their encodings (docs/llm_int.md, matmul.h), and the
// dequantized float matrix the simulator uses.
struct QLinear {
  int bits = 0;                 // 0: not quantized (float), 8 or 4; 3 or 4 with a codebook
  int group = 0;                // int4, codebook
  std::vector<int8_t> q;        // [N][K] codes
  std::vector<int32_t> mult;    // int8: [N]
  std::vector<int16_t> gmult;   // int4: [N][ng]
  std::vector<int8_t> gshift;   // int4: [N]
  int w_exp = 0;
  std::vector<int8_t> codebook; // codebook weights (matmul.h cb3 / cb4): [ceil(N/R)][ceil(K/G)][2^bits]
                                // int8 entries; q holds the indices and mult the row scales
  int codebook_rows = 1;        // R: rows sharing one codebook per group
  Mat deq;                      // real weights q * scale
};

struct TLayer {
  Mat wq, wk, wv, wo, w1, w3, w2;           // float, transformed (see quantize.h top)
  QLinear qq, qk, qv, qo, q1, q3, q2;
};

struct TModel {
  LlamaConfig c;
  int hidden = 0;               // hidden width of the graph (padded when online Hadamard)
  bool online_had = false;
  int res = 0;                  // residual width when expanded into a frame (0: dim)
  double norm_eps = 1e-5;       // rmsnorm eps at the residual width (eps * dim / res)
  bool online_had_o = false;    // hadamard(attention output) before wo
  Mat emb;                      // [V][D] (rotated)
  Mat wcls;                     // [V][D] (final gamma folded, rotated)
  std::vector<TLayer> layers;
  QLinear qcls;
  // Embedding table quantized per row to int8 (always): codes and the float dequantized table.
  std::vector<int8_t> emb_q;
  std::vector<float> emb_scale; // [V] real scale per row
  Mat emb_deq;
  bool quantized = false;       // weights quantized (simulator uses deq)
};

// Unnormalized Hadamard matrix of order n = 2^k * b (b in {1, 12, 20, 28, 44}) exactly as the
// `hadamard` op applies it: H_{2^k} (x) H_b with H_b from kernels/llm/hadamard_tables.h.
// Entries +-1, row-major [n][n]. Throws for unsupported n.
std::vector<int8_t> hadamard_matrix(int n);
// Smallest supported Hadamard size >= n.
int hadamard_size_at_least(int n);

// ------------------------------------------------------------------------------ the simulator

// Float simulation of the integer graph on one sequence (all positions, causal): activation
// quantization points of docs/llm_int.md (per-token abs-max at qmax, int8 KV cache per token and
// head, clipped softmax), dequantized weights. act_qmax = 0: float activations.
struct SimConfig {
  int act_qmax = 0;             // matmul inputs
  bool kv_int8 = false;
  double clip = 0;              // attention clip (0: none)
  int stop_layer = -1;          // >= 0: stop after this layer (returns 0)
};

enum Site { kSiteAtt = 0, kSiteO = 1, kSiteFfn = 2, kSiteDown = 3, kSites = 4 };

// Optional observer of matmul inputs (before their quantization): layer (n_layers = final norm),
// site, X [T][width].
struct SimObserver {
  virtual ~SimObserver() = default;
  virtual void input(int layer, int site, const float* x, int t, int width) = 0;
  virtual void residual(int layer, const float* x, int t, int width) { (void)layer, (void)x, (void)t, (void)width; }
};

// Returns the summed NLL (nats) of tokens[1..T) given their prefixes; optional logits [T][V].
double simulate(const TModel& m, bool use_quantized, const SimConfig& cfg, const int* tokens,
                int t, SimObserver* obs = nullptr, std::vector<float>* logits = nullptr);

// ------------------------------------------------------------------------------ the quantizer

struct QuantReport {
  int residual_exp = 0;         // E
  double residual_max = 0;      // calibrated max |x|
  std::vector<std::string> lines;  // human-readable notes (chosen alphas, seeds, timings)
};

// Builds the transformed, quantized model (steps 1-4 of the pipeline above).
TModel quantize_model(const LlamaWeights& w, const LlmRecipe& r, QuantReport* rep,
                      const std::vector<std::vector<int>>* calib_override = nullptr);

// The integer graph of docs/llm_int.md (step 5).
// Packs int4 codes [N][K] two per byte (matmul.h's layout: low nibble = even k).
std::vector<uint8_t> pack_i4(const std::vector<int8_t>& q, int n, int k);
// Adds a `dimatmul` node `name` to g: the weights `wname` (+ `.mult`, or `.gmult` / `.gshift` for
// int4) as constants, reading the dynamic activation x (values, scales) and writing y. x_col >= 0:
// the node reads x's columns [x_col, x_col + K) (attribute x_cols) instead of all of them.
void add_dimatmul(tools::GraphBuilder& b, const std::string& name, const std::string& wname,
                  const QLinear& q, const std::pair<std::string, std::string>& x,
                  const std::pair<std::string, std::string>& y, int64_t x_col = -1);

Graph build_int_graph(const TModel& m, const LlmRecipe& r, const QuantReport& rep,
                      const std::string& name);

// Calibration sequences: n sequences of up to `tokens` tokens (BOS first) sampled from the float
// model at temperature 1 and top-p `topp` with seeds seed, seed + 1, ... (with stop_at_bos a
// sequence ends early at a sampled BOS; otherwise BOS is fed and a new story starts).
std::vector<std::vector<int>> sample_sequences(const LlamaWeights& w, int n, int tokens,
                                               uint64_t seed, float topp, bool stop_at_bos);

// Reads an evaluation token file: one sequence per line, whitespace-separated ids.
std::vector<std::vector<int>> read_token_file(const std::string& path);

}  // namespace fq::llama
