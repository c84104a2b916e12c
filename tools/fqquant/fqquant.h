// fqquant: float FQ graph + recipe + calibration data -> integer FQ graph (docs/quantization.md).
//
// The quantizer is a pipeline of small passes over the graph IR, each doing one thing:
//   fold_relu            relu node after a conv/fc that only it reads -> the producer's relu attr
//   reparameterize       RepVGG branches (convs on one input summed by an add) -> one conv
//   calibrate            float activations -> per-tensor real ranges (minmax, percentile, KL)
//   quantize_graph       float graph + ranges -> integer graph (int8 weights, optional CFWS split,
//                        i32 biases, dyadic requantization parameters)
// plus the numeric building blocks they use (cfws_split, quantize_weights, choose_threshold), which
// are exposed for tests.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fq/fq.h"
#include "fq/graph.h"

namespace fq::quant {

// ------------------------------------------------------------------------------------- recipe

enum class Granularity { per_tensor, per_channel };
enum class CalibMethod { minmax, percentile, kl };
const char* granularity_name(Granularity g);
const char* calib_method_name(CalibMethod m);

// A quantization recipe (configs/*.yaml). Every key is optional; the defaults are the production
// choices (configs/digits-int8.yaml, docs/quantization.md section 6). Unknown keys are errors.
struct Recipe {
  std::string name = "default";
  Granularity weights = Granularity::per_channel;     // int8 symmetric weight scales
  CalibMethod activations = CalibMethod::percentile;  // how an activation's range is chosen
  double percentile = 99.99;                          // for CalibMethod::percentile, (0, 100]
  int histogram_bins = 2048;                          // |x| histogram resolution (percentile/kl)
  bool cfws = true;                                   // coarse/fine split of k x k (k > 1) kernels
  bool reparameterize = true;                         // merge RepVGG branches first
  int calib_images = 1000;                            // calibration images (first N of the split)
  double logit_headroom = 2.0;                        // i16 logits: scale = headroom * max / 32767
};
// Parses a recipe file; throws fq::Error "FILE: message" on unknown keys or bad values.
Recipe load_recipe(const std::string& path);
Recipe parse_recipe(const std::string& yaml_text, const std::string& path_for_messages);

// --------------------------------------------------------------------------- graph-level passes

// Folds every standalone relu whose input is produced by a conv2d / fully_connected node and read
// by nothing else into that node (relu: 1). Returns the number of relus folded.
int fold_relu(Graph& g);

// Branch re-parameterization: an `add` whose inputs are all outputs of f32 conv2d nodes that (a)
// are read only by that add, (b) read the same input tensor with the same stride, (c) have
// constant weights/biases, no relu, odd kernel sizes and the same centre alignment (pad - k/2 on
// each side), and (d) have the same output shape, becomes one conv2d: every kernel is zero-padded
// to the largest size (a 1x1 lands on the centre tap of a 3x3), kernels and biases are summed
// (in double, stored as f32), and the add's relu is carried over. The merged node replaces the
// add (same output tensor); it is named after the branches' common prefix ("b1.c3", "b1.c1" ->
// "b1") when that name is free. Validates the graph afterwards. Returns the number of adds merged.
int reparameterize(Graph& g);

// ------------------------------------------------------------------------- numeric building blocks

// int8 symmetric weight quantization of `rows` x `per_row` weights (row = output channel):
// scale = amax / 127 per row (per_channel) or over all rows (per_tensor; one scale);
// q = round_half_away_from_zero(w / scale), clamped to [-127, 127]. An all-zero row/tensor gets
// scale 1 (its codes are 0).
struct QuantizedWeights {
  std::vector<int8_t> q;
  std::vector<double> scale;  // rows entries (per_channel) or 1 (per_tensor)
  double scale_of(int row) const { return scale.size() == 1 ? scale[0] : scale[row]; }
};
QuantizedWeights quantize_weights(const float* w, int rows, int64_t per_row, Granularity g);

// CFWS split (algorithms.md 8.1, divide_weight_headache) of a conv kernel W [O, KH, KW, I], KH and
// KW odd: Wc = W[:, KH/2, KW/2, :]; step g = max|Wc| / 127 per output channel (per_channel) or
// over the tensor (per_tensor); coarse = round_half_up(Wc / g) * g (f32, [O, 1, 1, I]);
// fine = W - pad(coarse) (f32, [O, KH, KW, I]). In f32, coarse + fine reproduces W exactly
// (Sterbenz: each coarse tap is within a factor 2 of its weight or zero).
struct CfwsSplit {
  std::vector<float> coarse;  // [O, 1, 1, I]
  std::vector<float> fine;    // [O, KH, KW, I]
};
CfwsSplit cfws_split(const float* w, int o, int kh, int kw, int i, Granularity g);

// Statistics of one activation tensor over the calibration images.
struct ActStats {
  double max = 0;             // max |x| seen
  bool negative = false;      // any x < 0 seen
  std::vector<double> hist;   // counts of the non-zero |x| in equal bins over [0, max]
  double bin_width() const { return hist.empty() || max <= 0 ? 0 : max / hist.size(); }
};

// Chooses the clipping threshold T (real units; the scale is T / levels) for a quantizer with
// `levels` positive steps (255 for u8):
//   minmax     -> max;
//   percentile -> upper edge of the first bin where the cumulative count reaches `percentile`%
//                 of the histogram (i.e. of the non-zero values);
//   kl         -> TensorRT-style search over thresholds i * bin_width, i = levels .. bins,
//                 minimizing CFWS's masked KL (kl_masked) between the clipped reference p (tail
//                 folded into its last bin) and its `levels`-step quantization q.
// Returns 0 when the tensor was always 0.
double choose_threshold(const ActStats& s, CalibMethod m, double percentile, int levels);

// CFWS's KL (statistic.py::safe_entropy_numpy): over bins where both p and q are non-zero,
// KL = [sum p log(P p) - sum p log(Q q)] / P with P = sum p, Q = sum q.
double kl_masked(const std::vector<double>& p, const std::vector<double>& q);

// ------------------------------------------------------------------------------- calibration

// Fills the graph's inputs for calibration sample `index` (float graph: f32 real values).
using InputFiller = std::function<void(int index, Session& s)>;

// Runs the float graph `count` times with Session::run_observed, twice (pass 1: max |x|; pass 2:
// histograms of the non-zero |x| over [0, max]; exact zeros, half of every ReLU output, are
// representable at any scale and would swamp the first bin), and returns the statistics of every
// f32 tensor written by a node, by name.
std::map<std::string, ActStats> collect_stats(const Graph& g, int count, const InputFiller& fill,
                                              int bins);

// ------------------------------------------------------------------------------ quantization

struct QuantizeOptions {
  Recipe recipe;
  std::string name;                          // integer graph name
  std::map<std::string, std::string> meta;   // extra meta entries
  double input_scale = 1.0 / 255;            // graph input: u8, real = scale * q (image pixels)
};

// Builds the integer graph from a (re-parameterized) float graph and its calibration statistics.
// Graph inputs become u8 (scale options.input_scale); relu outputs u8 with the recipe's
// threshold / 255; conv2d without relu -> i8; fully_connected without relu -> i16 logits
// (scale logit_headroom * max / 32767); global_avg_pool -> u8; softmax -> u16 (scale 2^-16).
// Throws fq::Error naming the node for graphs outside this subset (e.g. an add left unmerged).
// The result is validated.
Graph quantize_graph(const Graph& f, const std::map<std::string, ActStats>& stats,
                     const QuantizeOptions& opt);

// --------------------------------------------------------------------------------- helpers

// Copy of an f32 constant's values (throws when the tensor is not an f32 constant with data).
std::vector<float> const_f32(const Graph& g, const std::string& name);
// Largest relative difference max|a - b| / max(max|a|, tiny) over two float tensors of one size.
double max_rel_diff(const float* a, const float* b, size_t n);

}  // namespace fq::quant
