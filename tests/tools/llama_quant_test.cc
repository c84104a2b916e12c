// tools/llama/quantize.h (fqquant-llama): recipes, the Hadamard matrices against the integer
// `hadamard` kernel, exactness of the offline transforms (folding, rotations, smoothing, online
// Hadamard) in float, the integer graphs of the `models` target (load, validate, meta) and their
// perplexity relative to the float model on the committed evaluation sequences, run by the
// integer engine (fq::Session).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "forward.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "fq/kernels/llm.h"
#include "llama_test_util.h"
#include "quantize.h"

using namespace fq::llama;
using namespace fq::llama::test;
namespace fs = std::filesystem;

namespace {

const LlamaWeights& stories() {
  static const LlamaWeights w = load_checkpoint(model_file("stories260K.bin"));
  return w;
}

const std::string kModels = FQ_MODELS_DIR "/";
const std::string kEvalTokens = FQ_SOURCE_DIR "/graphs/llama/stories260K-eval.tokens";
const std::string kConfigs = FQ_SOURCE_DIR "/configs/";

// The message of the fq::Error thrown by parsing `text` as recipe "bad.yaml" ("" if none).
std::string recipe_error(const std::string& text) {
  try {
    parse_llm_recipe(text, "bad.yaml");
  } catch (const fq::Error& e) {
    return e.what();
  }
  return "";
}

// Mean NLL (nats) of the token sequences under an integer or float decode graph, teacher forced,
// one Session::run() per token (the same computation as `fqrun eval --tokens`).
double graph_nll(const fq::Graph& g, const std::vector<std::vector<int>>& seqs, int64_t* count) {
  fq::Session s(g);
  double nll = 0;
  *count = 0;
  for (const auto& seq : seqs) {
    s.reset_state();
    for (size_t p = 0; p + 1 < seq.size(); ++p) {
      static_cast<int32_t*>(s.input("tokens").data)[0] = seq[p];
      static_cast<int32_t*>(s.input("pos").data)[0] = int32_t(p);
      s.run();
      const fq::TensorView lo = s.output("logits");
      const int64_t V = lo.shape.back();
      std::vector<double> l(static_cast<size_t>(V));
      if (lo.dtype == fq::DType::f32) {
        for (int64_t j = 0; j < V; ++j) l[j] = static_cast<const float*>(lo.data)[j];
      } else {
        const int32_t* sc = static_cast<const int32_t*>(s.output("logits_scale").data);
        for (int64_t j = 0; j < V; ++j)
          l[j] = std::ldexp(double(static_cast<const int16_t*>(lo.data)[j]) * sc[0], -sc[1]);
      }
      double mx = l[0];
      for (double v : l) mx = std::max(mx, v);
      double z = 0;
      for (double v : l) z += std::exp(v - mx);
      nll += std::log(z) + mx - l[size_t(seq[p + 1])];
      ++*count;
    }
  }
  return nll / double(*count);
}

// The float reference NLL (forward.h) of the sequences.
double reference_nll(const std::vector<std::vector<int>>& seqs) {
  const LlamaWeights& w = stories();
  double nll = 0;
  int64_t n = 0;
  for (const auto& seq : seqs) {
    RunState st(w.config);
    for (size_t p = 0; p + 1 < seq.size(); ++p) {
      const float* l = forward(w, st, seq[p], int(p));
      double mx = l[0];
      for (int j = 0; j < w.config.vocab_size; ++j) mx = std::max(mx, double(l[j]));
      double z = 0;
      for (int j = 0; j < w.config.vocab_size; ++j) z += std::exp(double(l[j]) - mx);
      nll += std::log(z) + mx - l[seq[p + 1]];
      ++n;
    }
  }
  return nll / double(n);
}

}  // namespace

TEST_CASE("llm recipes: the shipped configs parse", "[llama_quant]") {
  const LlmRecipe a = load_llm_recipe(kConfigs + "llm-w8a8.yaml");
  CHECK(a.weight_bits == 8);
  CHECK(a.activation_bits == 8);
  CHECK(a.act_qmax() == 127);
  const LlmRecipe b = load_llm_recipe(kConfigs + "llm-w4a8.yaml");
  CHECK(b.weight_bits == 4);
  CHECK(b.activation_bits == 8);
  const LlmRecipe c = load_llm_recipe(kConfigs + "llm-w4a4.yaml");
  CHECK(c.weight_bits == 4);
  CHECK(c.activation_bits == 4);
  CHECK(c.act_qmax() == 7);
  CHECK(c.calib_seed >= 1000);
  CHECK(parse_llm_recipe("", "empty.yaml").weight_bits == 8);  // every key optional
}

TEST_CASE("llm recipes: bad recipes are one-line errors naming the file", "[llama_quant]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"weight_bits: 3\n", "weight_bits must be 4 or 8"},
      {"activation_bits: 16\n", "activation_bits must be 4 or 8"},
      {"group: 48\n", "group must be 32, 64 or 128"},
      {"rotate: maybe\n", "cannot read 'maybe'"},
      {"gptq: true\ngptq: false\n", "duplicate recipe key 'gptq'"},
      {"smoothing: true\n", "unknown recipe key 'smoothing'"},
      {"- a\n- b\n", "a recipe is a map"},
      {"calib_seed: 5\n", "calib_seed must be in"},
      {"smooth_alpha: 1.5\n", "smooth_alpha must be in"},
      {"clip_search: [1, 2]\n", "must be a scalar"},
      {"name: [unclosed\n", "bad.yaml:"},
  };
  for (const auto& [text, want] : cases) {
    INFO(text);
    const std::string msg = recipe_error(text);
    CHECK(msg.rfind("bad.yaml:", 0) == 0);
    CHECK(msg.find(want) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
  CHECK_THROWS_AS(load_llm_recipe(kConfigs + "no-such-recipe.yaml"), fq::Error);
}

TEST_CASE("hadamard_matrix is the integer hadamard op's transform", "[llama_quant]") {
  CHECK(hadamard_size_at_least(172) == 176);
  CHECK(hadamard_size_at_least(64) == 64);
  CHECK_THROWS_AS(hadamard_matrix(172), fq::Error);
  for (int n : {8, 64, 176}) {
    const std::vector<int8_t> h = hadamard_matrix(n);
    for (int i = 0; i < n; ++i)  // H H^T = n I
      for (int j = 0; j < n; ++j) {
        int s = 0;
        for (int k = 0; k < n; ++k) s += h[size_t(i) * n + k] * h[size_t(j) * n + k];
        REQUIRE(s == (i == j ? n : 0));
      }
    // The kernel on unit vectors e_j * 127: t = 127 * column j of H, quantized at qmax 127 exactly.
    const fq::k::LlmKernel* kern = fq::k::llm_kernel(fq::k::Isa::scalar);
    std::vector<uint8_t> scratch(fq::k::hadamard_scratch(n));
    for (int j = 0; j < n; ++j) {
      std::vector<int8_t> x(n, 0), y(n, 0);
      x[j] = 127;
      fq::k::RowScale xs{1 << 14, 20}, ys;
      fq::k::HadamardArgs a{x.data(), &xs, n, 127, y.data(), &ys};
      kern->hadamard(a, 0, 1, scratch.data());
      for (int i = 0; i < n; ++i) REQUIRE(y[i] == 127 * h[size_t(i) * n + j]);
    }
  }
}

TEST_CASE("offline transforms are exact in float; quantized simulation is close", "[llama_quant]") {
  // A few short calibration sequences keep this fast; the transforms do not depend on them.
  const auto calib = sample_sequences(stories(), 4, 64, 1000, 1.0f, true);
  const auto eval = sample_sequences(stories(), 3, 64, 2000, 1.0f, true);
  const double ref = reference_nll(eval);
#if defined(FQ_TEST_SLICE)   // one recipe: the next case quantizes int8 and int4 (CMakeLists.txt)
  for (const char* cfg : {"llm-w4a4.yaml"}) {
#else
  for (const char* cfg : {"llm-w8a8.yaml", "llm-w4a8.yaml", "llm-w4a4.yaml"}) {
#endif
    INFO(cfg);
    LlmRecipe r = load_llm_recipe(kConfigs + cfg);
    r.rotate = r.rotate_heads = r.online_hadamard = r.online_hadamard_o = r.smooth = true;
    r.residual_expand = 1.5;  // every transform, with both redundant frames
    r.hidden_expand = 2;
    r.rotate_trials = 1;
    QuantReport rep;
    const TModel m = quantize_model(stories(), r, &rep, &calib);
    CHECK(m.hidden == 352);
    CHECK(m.res == 96);
    double nf = 0;
    int64_t n = 0;
    for (const auto& s : eval) {
      nf += simulate(m, false, {}, s.data(), int(s.size()));
      n += int64_t(s.size()) - 1;
    }
    CHECK(std::fabs(nf / double(n) - ref) < 2e-4);  // rotated / smoothed / padded float model
    CHECK(rep.residual_exp >= 16);
    CHECK(rep.residual_exp <= 30);
  }
}

TEST_CASE("integer graphs run by the engine agree with the quantizer's simulation",
          "[llama_quant]") {
  // Small calibration; the point is that the integer encodings (mult, gmult/gshift, w_exp, E,
  // eps, RoPE table, frames, Hadamard folds) mean what the float simulation assumes.
  const auto calib = sample_sequences(stories(), 4, 96, 1000, 1.0f, true);
  const auto eval = sample_sequences(stories(), 3, 96, 3000, 1.0f, true);
#if defined(FQ_TEST_SLICE)   // the int8 and the int4 encodings (CMakeLists.txt)
  for (const char* cfg : {"llm-w8a8.yaml", "llm-w4a4.yaml"}) {
#else
  for (const char* cfg : {"llm-w8a8.yaml", "llm-w4a8.yaml", "llm-w4a4.yaml"}) {
#endif
    INFO(cfg);
    const LlmRecipe r = load_llm_recipe(kConfigs + cfg);
    QuantReport rep;
    const TModel m = quantize_model(stories(), r, &rep, &calib);
    fq::Graph g = build_int_graph(m, r, rep, "t");
    SimConfig sc;
    sc.act_qmax = r.act_qmax();
    sc.kv_int8 = true;
    sc.clip = r.attention_clip;
    double sim = 0;
    int64_t n = 0;
    for (const auto& s : eval) sim += simulate(m, true, sc, s.data(), int(s.size()));
    const double engine = graph_nll(g, eval, &n);
    sim /= double(n);
    INFO("engine nll " << engine << " simulated " << sim);
    // A4 rounding noise is large: the engine's exact integer rounding and the float simulation
    // give different noise realizations; an encoding bug shows up as a far larger gap.
    CHECK(std::fabs(engine - sim) < (r.activation_bits == 4 ? 0.08 : 0.02));
  }
}

TEST_CASE("fqquant-llama graphs: load, validate and carry their meta", "[llama_quant]") {
  for (const char* q : {"w8a8", "w4a8", "w4a4"}) {
    const std::string path = kModels + "stories260K-" + q + ".yaml";
    if (!fs::exists(path)) {
      WARN("not built (run the models target): " << path);
      continue;
    }
    INFO(path);
    const fq::Graph g = fq::load_graph(path);
    CHECK(g.meta.at("tokenizer") == "tok512.bin");
    CHECK(g.meta.at("quant_recipe") == std::string("llm-") + q + ".yaml");
    CHECK(g.meta.at("activation_bits") == (std::string(q).back() == '4' ? "4" : "8"));
    CHECK(g.inputs == std::vector<std::string>{"tokens", "pos"});
    CHECK(g.outputs == std::vector<std::string>{"logits", "logits_scale"});
    CHECK(g.tensor("logits").dtype == fq::DType::i16);
    CHECK(g.tensor("layer0.wq").dtype == (q[1] == '4' ? fq::DType::i4 : fq::DType::i8));
    for (const fq::TensorDef& t : g.tensors) CHECK(t.dtype != fq::DType::f32);  // integer only
  }
}

TEST_CASE("fqquant-llama graphs: integer perplexity relative to float", "[llama_quant]") {
  // Gates on the committed evaluation sequences (16 x 160 tokens sampled from the float model with
  // seeds below 1000; calibration uses seeds >= 1000). Measured values: docs/llm_int.md.
  const std::vector<std::pair<std::string, double>> gates = {
      {"w8a8", 1.01}, {"w4a8", 1.03}, {"w4a4", 1.15}};
  if (!fs::exists(kEvalTokens)) {
    WARN("no evaluation tokens: " << kEvalTokens);
    return;
  }
  const auto seqs = read_token_file(kEvalTokens);
  const double ref = reference_nll(seqs);
  for (const auto& [q, gate] : gates) {
    const std::string path = kModels + "stories260K-" + q + ".yaml";
    if (!fs::exists(path)) {
      WARN("not built (run the models target): " << path);
      continue;
    }
    int64_t n = 0;
    const double nll = graph_nll(fq::load_graph(path), seqs, &n);
    const double ratio = std::exp(nll - ref);
    INFO(q << ": ppl " << std::exp(nll) << " float " << std::exp(ref) << " ratio " << ratio);
    CHECK(n == 16 * 159);
    CHECK(ratio <= gate);
  }
}
