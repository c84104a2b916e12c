// tools/llama/graph.h: the FQ float graph of stories260K, run by the engine token by token, against
// the float reference forward() (bit for bit) and llama2.c's own greedy output (byte for byte);
// state tensors (the KV caches) and their validation rules.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "checkpoint.h"
#include "forward.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "graph.h"
#include "llama_test_util.h"
#include "tokenizer.h"

using namespace fq::llama;
using namespace fq::llama::test;
namespace fs = std::filesystem;

namespace {



const LlamaWeights& stories() {
  static const LlamaWeights w = load_checkpoint(model_file("stories260K.bin"));
  return w;
}
const Tokenizer& tok512() {
  static const Tokenizer t = Tokenizer::load(model_file("tok512.bin"), 512);
  return t;
}


// One decode step through the session; returns the logits.
const float* step(fq::Session& s, int token, int pos) {
  static_cast<int32_t*>(s.input("tokens").data)[0] = token;
  static_cast<int32_t*>(s.input("pos").data)[0] = pos;
  s.run();
  return static_cast<const float*>(s.output("logits").data);
}

// run.c's greedy generate() from BOS through the session: the printed text.
std::string greedy(fq::Session& s, int steps) {
  s.reset_state();
  std::string text;
  int token = kBos;
  const int vocab = int(s.output("logits").shape.back());
  for (int pos = 0; pos < steps; ++pos) {
    const int next = sample_argmax(step(s, token, pos), vocab);
    if (next == kBos) break;
    const std::string piece = tok512().decode(token, next);
    if (piece_printable(piece)) text += piece;
    token = next;
  }
  return text;
}

}  // namespace

TEST_CASE("llama graph: engine logits equal forward() bit for bit", "[llama][graph]") {
  const LlamaWeights& w = stories();
  const fq::Graph g = build_float_graph(w, "stories260K-f32");
  for (int threads : {1, 2}) {
    INFO("threads " << threads);
    fq::Options opt;
    opt.threads = threads;
    fq::Session s(g, opt);
    RunState ref(w.config);
    int token = kBos;
    for (int pos = 0; pos < 50; ++pos) {
      INFO("position " << pos);
      const float* want = forward(w, ref, token, pos);
      const float* got = step(s, token, pos);
      REQUIRE(std::memcmp(want, got, sizeof(float) * size_t(w.config.vocab_size)) == 0);
      token = sample_argmax(want, w.config.vocab_size);
    }
  }
}

TEST_CASE("llama graph: greedy decoding through the engine reproduces llama2.c", "[llama][graph]") {
  const std::string expected = expected_greedy_text();
  REQUIRE(expected.size() > 100);
  // Through the file format: save, load (state: true read back), run.
  TempDir dir;
  const std::string yaml = dir.file("stories.yaml");
  fq::Graph built = build_float_graph(stories(), "stories");
  built.meta["tokenizer"] = "tok512.bin";
  fq::save_graph(built, yaml);
  const fq::Graph g = fq::load_graph(yaml);
  CHECK(g.tensor("layer0.k_cache").is_state);
  CHECK(g.meta.at("tokenizer") == "tok512.bin");
  fq::Session s(g);
  CHECK(s.state_bytes() >= size_t(2 * stories().config.n_layers) * stories().config.seq_len *
                               stories().config.kv_dim() * sizeof(float));
  const std::string first = greedy(s, 200);
  CHECK(first == expected);
  // The second generation starts from a reset state and gives the same text.
  CHECK(greedy(s, 200) == first);
}

TEST_CASE("llama graph: reset_state zeroes the KV cache", "[llama][graph]") {
  const fq::Graph g = build_float_graph(stories(), "stories");
  fq::Session s(g);
  std::vector<float> fresh(512), after(512);
  std::memcpy(fresh.data(), step(s, kBos, 0), sizeof(float) * 512);
  // Position 1 after a different token at position 0 sees other keys than after BOS.
  std::vector<float> a(512), b(512);
  std::memcpy(a.data(), step(s, 42, 1), sizeof(float) * 512);
  s.reset_state();
  step(s, 7, 0);
  std::memcpy(b.data(), step(s, 42, 1), sizeof(float) * 512);
  CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * 512) != 0);
  s.reset_state();
  std::memcpy(after.data(), step(s, kBos, 0), sizeof(float) * 512);
  CHECK(std::memcmp(fresh.data(), after.data(), sizeof(float) * 512) == 0);
}

namespace {

const char kTinyGraph[] = R"(format: fq-graph
version: 1
inputs: [q, pos]
outputs: [y]
tensors:
  - {name: q, dtype: f32, shape: [1, 4]}
  - {name: pos, dtype: i32, shape: [1]}
  - {name: kc, dtype: f32, shape: [3, 4], state: true}
  - {name: vc, dtype: f32, shape: [3, 4], state: true}
  - {name: y, dtype: f32, shape: [1, 4]}
nodes:
  - {name: att, op: attention, inputs: [q, q, q, kc, vc, pos], outputs: [y], attrs: {n_heads: 2, n_kv_heads: 2}}
)";

std::string validate_error(std::string text) {
  try {
    fq::Graph g = fq::parse_graph_yaml(text, "t.yaml");
    fq::validate_graph(g);
  } catch (const fq::Error& e) {
    return e.what();
  }
  return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("state tensors: format rules and an attention run", "[llama][graph]") {
  CHECK(validate_error(kTinyGraph).empty());
  CHECK_THAT(validate_error(replace(kTinyGraph, "shape: [3, 4], state: true}",
                                    "shape: [3, 4], state: true, const: true}")),
             Catch::Contains("both constant and state"));
  CHECK_THAT(validate_error(replace(kTinyGraph, "outputs: [y]\n", "outputs: [y, kc]\n")),
             Catch::Contains("is a state tensor"));
  CHECK_THAT(validate_error(replace(kTinyGraph, "inputs: [q, pos]", "inputs: [q, pos, kc]")),
             Catch::Contains("is a state tensor"));
  // A cache that is not a state tensor (here a graph input) is rejected by attention's check.
  CHECK_THAT(validate_error(replace(replace(kTinyGraph, "shape: [3, 4], state: true}", "shape: [3, 4]}"),
                                    "inputs: [q, pos]", "inputs: [q, pos, kc]")),
             Catch::Contains("must be a state tensor"));
  CHECK_THAT(validate_error(replace(kTinyGraph, "state: true", "state: 1")),
             Catch::Contains("state"));

  // q = k = v, two heads of 2: with one position the output is v itself.
  fq::Graph g = fq::parse_graph_yaml(kTinyGraph, "t.yaml");
  fq::validate_graph(g);
  fq::Session s(g);
  CHECK(s.state_bytes() == 128);
  float* q = static_cast<float*>(s.input("q").data);
  int32_t* pos = static_cast<int32_t*>(s.input("pos").data);
  const float* y = static_cast<const float*>(s.output("y").data);
  const float v0[4] = {1, 2, 3, 4};
  std::memcpy(q, v0, sizeof v0);
  pos[0] = 0;
  s.run();
  for (int i = 0; i < 4; ++i) CHECK(y[i] == v0[i]);
  // Position 1 attends over both rows: a convex combination, so between the two values.
  const float v1[4] = {-1, -2, -3, -4};
  std::memcpy(q, v1, sizeof v1);
  pos[0] = 1;
  s.run();
  for (int i = 0; i < 4; ++i) CHECK((y[i] >= v1[i] && y[i] <= v0[i]));
  CHECK(y[0] > v1[0]);  // head 0's weights are not one-hot
  // Out of the cache (pos + T > S): documented contract, output zeroed, caches untouched.
  pos[0] = 3;
  s.run();
  for (int i = 0; i < 4; ++i) CHECK(y[i] == 0.0f);
}
