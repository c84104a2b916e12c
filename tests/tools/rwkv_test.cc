// tools/rwkv: the rwkv.cpp importer, the float reference forward pass and the FQ float graphs of
// the tiny RWKV models (../shared/models/rwkv): expected logits of rwkv.cpp for every file, graph
// == forward() bit for bit, and bad files (one-line fq::Error; fqimport-rwkv exits 2).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "../temp_dir.h"
#include "cli_test_util.h"
#include "forward.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "graph.h"
#include "model.h"

using namespace fq::rwkv;
namespace fs = std::filesystem;

namespace {

std::string model_dir() {
  if (const char* d = std::getenv("FQ_RWKV_DIR")) return d;
  return std::string(FQ_SHARED_DIR) + "/models/rwkv";
}
std::string model_file(const std::string& name) { return model_dir() + "/" + name; }

using fq::test::slurp;

// Writes a file and checks it was written.
void write(const std::string& path, const std::string& bytes) {
  fq::test::spit(path, bytes);
  REQUIRE(fq::test::exists(path));
}

using fq::test::TempDir;

std::vector<float> expected_logits(const std::string& model) {
  const std::string e = slurp(model_file("expected-logits-" + model + ".bin"));
  REQUIRE(e.size() == 256 * 4);
  std::vector<float> v(256);
  std::memcpy(v.data(), e.data(), e.size());
  return v;
}

const char kPrompt[] = "\"in";  // 0x22 0x69 0x6E, rwkv.cpp's test input

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

std::vector<float> run_forward(const Model& m, const std::string& text) {
  State s(m);
  std::vector<float> logits;
  for (unsigned char c : text) logits = forward(m, s, c);
  return logits;
}

const float* step(fq::Session& s, int token, int pos) {
  static_cast<int32_t*>(s.input("tokens").data)[0] = token;
  static_cast<int32_t*>(s.input("pos").data)[0] = pos;
  s.run();
  return static_cast<const float*>(s.output("logits").data);
}

struct Case {
  const char* model;   // expected-logits-<model>.bin
  const char* format;  // FP32, FP16, Q5_0, Q5_1
  const char* version;
  double tol;          // max |logit - expected|
};

// FP32: the 1e-4. FP16 / Q5: the weights themselves differ from the FP32 weights the
// expected logits were computed with; the bounds are the measured errors (docs/rwkv.md) rounded
// up, so a regression in dequantization shows.
const Case kCases[] = {
    {"4v0-660K", "FP32", "4", 1e-4},    {"4v0-660K", "FP16", "4", 0.005},
    {"4v0-660K", "Q5_0", "4", 0.25},    {"4v0-660K", "Q5_1", "4", 0.2},
    {"5v1-730K", "FP32", "5.1", 1e-4},  {"5v1-730K", "FP16", "5.1", 0.01},
    {"5v1-730K", "Q5_0", "5.1", 2.5},   {"5v1-730K", "Q5_1", "5.1", 0.5},
    {"5v2-730K", "FP32", "5.2", 1e-4},  {"5v2-730K", "FP16", "5.2", 0.005},
    {"5v2-730K", "Q5_0", "5.2", 1.0},   {"5v2-730K", "Q5_1", "5.2", 0.75},
    {"6v0-3m", "Q5_0", "6", 0.3},       {"6v0-3m", "Q5_1", "6", 0.15},
    {"7v0-834K", "FP32", "7", 1e-4},    {"7v0-834K", "FP16", "7", 1e-4},
    {"7v0-834K", "Q5_0", "7", 0.01},    {"7v0-834K", "Q5_1", "7", 0.01},
};

std::string file_of(const Case& c) {
  return model_file(std::string("tiny-rwkv-") + c.model + "-" + c.format + ".bin");
}

// Runs `cmd` through the shell; returns the exit status and captures stderr.
int run(const std::string& cmd, std::string* err) {
  TempDir t;
  const std::string ef = t.file("stderr");
  const int rc = std::system((cmd + " 2>" + ef).c_str());
  *err = slurp(ef);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The fq::Error of loading `path` (with `expect`); fails if it loads.
std::string load_error(const std::string& path, Version expect = {}) {
  try {
    load_model(path, expect);
  } catch (const fq::Error& e) {
    return e.what();
  }
  FAIL("loaded without error: " << path);
  return "";
}

}  // namespace

TEST_CASE("rwkv: every model file reproduces rwkv.cpp's expected logits", "[rwkv]") {
  for (const Case& c : kCases) {
    INFO(c.model << " " << c.format);
    const Model m = load_model(file_of(c));
    CHECK(m.version.str() == c.version);
    CHECK(m.n_vocab == 256);
    const double err = max_diff(run_forward(m, kPrompt), expected_logits(c.model));
    INFO("max |logit - expected| = " << err);
    CHECK(err <= c.tol);
  }
}

TEST_CASE("rwkv: header, version and dimensions", "[rwkv]") {
  const Model m5 = load_model(model_file("tiny-rwkv-5v2-730K-FP32.bin"));
  CHECK(m5.version == Version{5, 2});
  CHECK(m5.n_embed == 64);
  CHECK(m5.n_layer == 12);
  CHECK(m5.head_count == 8);
  CHECK(m5.head_size == 8);
  CHECK(m5.ffn_size == 256);
  const Model m6 = load_model(model_file("tiny-rwkv-6v0-3m-Q5_1.bin"), Version{6, 0});
  CHECK(m6.head_count == 16);
  CHECK(m6.head_size == 8);
  CHECK(m6.t("blocks.0.att.time_maa_w1").type == 8);
  const Model m7 = load_model(model_file("tiny-rwkv-7v0-834K-FP32.bin"));
  CHECK(m7.head_count == 1);
  CHECK(m7.head_size == 64);
  const Model m4 = load_model(model_file("tiny-rwkv-4v0-660K-FP32.bin"));
  CHECK(m4.version == Version{4, 0});
  CHECK(m4.file_version == 100);
  Version v;
  CHECK(parse_version("5.1", &v));
  CHECK(v == Version{5, 1});
  CHECK(parse_version("v7", &v));
  CHECK(!parse_version("5", &v));
  CHECK(!parse_version("8", &v));
}

TEST_CASE("rwkv: block formats dequantize like ggml", "[rwkv]") {
  CHECK(fp16_to_float(0x3c00) == 1.0f);
  CHECK(fp16_to_float(0xc000) == -2.0f);
  CHECK(fp16_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(fp16_to_float(0x7bff) == 65504.0f);
  // One block per format: d = 0.5 (0x3800), m = -1 (0xbc00); nibbles j: low = j % 16, high = 15 - j.
  uint8_t q[34] = {};
  auto setup = [&](int32_t type) {
    std::memset(q, 0, sizeof q);
    q[0] = 0x00, q[1] = 0x38;
    int at = 2;
    if (type == 3 || type == 8) q[2] = 0x00, q[3] = 0xbc, at = 4;
    if (type == 7 || type == 8) {
      const uint32_t qh = 0x80000001u;  // element 0 and element 31 get the 5th bit
      std::memcpy(q + at, &qh, 4);
      at += 4;
    }
    if (type == 9) {
      for (int j = 0; j < 32; ++j) q[2 + j] = uint8_t(int8_t(j - 16));
      return;
    }
    for (int j = 0; j < 16; ++j) q[at + j] = uint8_t(j | (15 - j) << 4);
  };
  float y[32];
  setup(2);  // Q4_0: (q - 8) d
  dequantize(2, q, 32, y);
  CHECK(y[0] == -4.0f);
  CHECK(y[15] == 3.5f);
  CHECK(y[16] == 3.5f);
  setup(3);  // Q4_1: q d + m
  dequantize(3, q, 32, y);
  CHECK(y[1] == -0.5f);
  CHECK(y[16] == 6.5f);
  setup(7);  // Q5_0: (q - 16) d
  dequantize(7, q, 32, y);
  CHECK(y[0] == 0.0f);      // 16 - 16
  CHECK(y[1] == -7.5f);     // 1 - 16
  CHECK(y[31] == 0.0f);     // high nibble 0 + 16
  setup(8);  // Q5_1: q d + m
  dequantize(8, q, 32, y);
  CHECK(y[0] == 7.0f);      // 16 * 0.5 - 1
  CHECK(y[31] == 7.0f);
  CHECK(y[17] == 6.0f);     // 14 * 0.5 - 1
  setup(9);  // Q8_0: q d
  dequantize(9, q, 32, y);
  CHECK(y[0] == -8.0f);
  CHECK(y[31] == 7.5f);
  CHECK(type_bytes(8, 64) == 48);
  CHECK(type_bytes(7, 33) == -1);
}

TEST_CASE("rwkv graph: engine logits equal forward() bit for bit", "[rwkv][graph]") {
  const std::string text = "\"in the beginning\n";
  for (const char* f : {"tiny-rwkv-4v0-660K-FP32.bin", "tiny-rwkv-5v1-730K-FP32.bin",
                        "tiny-rwkv-5v2-730K-FP32.bin", "tiny-rwkv-6v0-3m-Q5_1.bin",
                        "tiny-rwkv-7v0-834K-FP32.bin"}) {
    INFO(f);
    const Model m = load_model(model_file(f));
    const fq::Graph g = build_float_graph(m, "rwkv");
    for (int threads : {1, 2}) {
      INFO("threads " << threads);
      fq::Options opt;
      opt.threads = threads;
      fq::Session s(g, opt);
      for (int round = 0; round < 2; ++round) {  // reset_state() restarts the sequence
        s.reset_state();
        State ref(m);
        for (size_t t = 0; t < text.size(); ++t) {
          INFO("byte " << t);
          const std::vector<float> want = forward(m, ref, static_cast<unsigned char>(text[t]));
          const float* got = step(s, static_cast<unsigned char>(text[t]), int(t));
          REQUIRE(std::memcmp(want.data(), got, sizeof(float) * want.size()) == 0);
        }
      }
    }
  }
}

TEST_CASE("rwkv graph: saved graphs reproduce the expected logits", "[rwkv][graph]") {
  TempDir t;
  for (const char* name : {"5v1-730K-FP32", "5v2-730K-FP32", "6v0-3m-Q5_1", "7v0-834K-FP32", "4v0-660K-FP32"}) {
    INFO(name);
    const std::string model(name, std::string(name).rfind('-'));
    const std::string out = t.file(std::string("rwkv-") + name + ".yaml");
    std::string err;
    REQUIRE(run(std::string(FQIMPORT_RWKV_PATH) + " " + model_file(std::string("tiny-rwkv-") + name + ".bin") +
                    " -o " + out,
                &err) == 0);
    const fq::Graph g = fq::load_graph(out);
    CHECK(g.meta.at("model") == "rwkv");
    CHECK(g.meta.at("tokenizer") == "bytes");
    int states = 0;
    for (const fq::TensorDef& td : g.tensors) states += td.is_state;
    CHECK(states == 3 * 12 - (model == "4v0-660K" ? 24 : 0));
    fq::Session s(g);
    const float* got = nullptr;
    for (int i = 0; i < 3; ++i) got = step(s, static_cast<unsigned char>(kPrompt[i]), i);
    const std::vector<float> logits(got, got + 256);
    const double err_max = max_diff(logits, expected_logits(model));
    INFO("max |logit - expected| = " << err_max);
    CHECK(err_max <= (std::string(name).find("Q5") != std::string::npos ? 0.15 : 1e-4));
  }
}

TEST_CASE("rwkv: bad files are one-line errors naming the file; fqimport-rwkv exits 2", "[rwkv]") {
  TempDir t;
  const std::string good = slurp(model_file("tiny-rwkv-5v2-730K-FP32.bin"));
  auto expect_error = [&](const std::string& bytes, const std::string& what, Version v = {}) {
    const std::string f = t.file("bad.bin");
    write(f, bytes);
    const std::string e = load_error(f, v);
    INFO(e);
    CHECK(e.find('\n') == std::string::npos);
    CHECK(e.rfind(f, 0) == 0);
    CHECK(e.find(what) != std::string::npos);
    std::string err;
    CHECK(run(std::string(FQIMPORT_RWKV_PATH) + " " + f + " -o " + t.file("out.yaml") +
                  (v.major ? " --version " + v.str() : ""),
              &err) == 2);
    CHECK(err.find(what) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK(!fs::exists(t.file("out.yaml")));
  };
  auto patch32 = [](std::string s, size_t at, uint32_t v) {
    s.replace(at, 4, reinterpret_cast<const char*>(&v), 4);
    return s;
  };
  expect_error("", "truncated header");
  expect_error(good.substr(0, 20), "truncated header");
  expect_error(patch32(good, 0, 0x12345678), "bad magic 0x12345678");
  expect_error("{\"format\": 1, \"this is json\": true}", "bad magic");
  expect_error(patch32(good, 4, 102), "unsupported file version 102");
  expect_error(patch32(good, 20, 4), "Q4_1_O");
  expect_error(patch32(good, 20, 42), "header data type 42");
  expect_error(patch32(good, 12, 0), "n_embed 0");
  // The first record: n_dims at 24, name length at 28, type at 32, shape from 36.
  expect_error(patch32(good, 24, 4), "dimension count 4");
  expect_error(patch32(good, 28, 100000), "name length 100000");
  expect_error(patch32(good, 32, 5), "tensor 'emb.weight': type 5 (Q4_2)");
  expect_error(patch32(patch32(good, 36, 32), 40, 512),
               "tensor 'emb.weight' has shape (32, 512), RWKV v5.2 with n_embed 64 expects (64, 256)");
  {  // three dimensions whose product overflows int64 (found by fuzz_import): name "x" at 48
    std::string s = patch32(patch32(patch32(patch32(patch32(good, 24, 3), 28, 1), 36, 65536), 40, 131072), 44, 0x7fffffff);
    s[48] = 'x';
    expect_error(s, "tensor 'x': shape (65536, 131072, 2147483647) is too large");
  }
  expect_error(good.substr(0, good.size() - 10), "tensor 'head.weight': truncated data");
  expect_error(good.substr(0, 54 + 65536 + 6), "truncated record header");
  {  // a NaN weight
    std::string s = good;
    const uint32_t nan = 0x7fc00000u;
    std::memcpy(&s[54 + 400], &nan, 4);
    expect_error(s, "tensor 'emb.weight': element 100 is not finite");
  }
  // Another version than claimed, and files whose tensor tables do not fit their version.
  expect_error(good, "an RWKV v5.2 model (detected from its tensor names), not v6", Version{6, 0});
  expect_error(slurp(model_file("tiny-rwkv-7v0-834K-Q5_1.bin")), "RWKV v7 model", Version{5, 2});
  {
    std::string s = good;  // rename the gate: a v5.1 file with a stray gate tensor
    const size_t at = s.find("blocks.0.att.gate.weight");
    REQUIRE(at != std::string::npos);
    s[at + 13] = 'G';
    expect_error(s, "tensor 'blocks.0.att.time_first' is missing (required by RWKV v5.1)");
  }
  {
    std::string s = good;  // a tensor of a later block renamed to an unknown name
    const size_t at = s.find("blocks.3.ffn.key.weight");
    REQUIRE(at != std::string::npos);
    s[at + 9] = 'X';
    expect_error(s, "is missing");
  }
  {
    std::string s = good;  // duplicate name: ln2.bias renamed to ln1.bias
    const size_t at = s.find("blocks.0.ln2.bias");
    REQUIRE(at != std::string::npos);
    s[at + 11] = '1';
    expect_error(s, "tensor 'blocks.0.ln1.bias': duplicate tensor name");
  }
  {  // a shape mismatch in the table: ln1.weight of 64 -> 32 (and the data shifts)
    std::string s = slurp(model_file("tiny-rwkv-7v0-834K-FP32.bin"));
    const size_t at = s.find("blocks.0.att.r_k");
    REQUIRE(at != std::string::npos);
    // r_k: n_dims 2, shape (64, 1) right before the name; claim (32, 2): same bytes, wrong shape.
    s = patch32(patch32(s, at - 8, 32), at - 4, 2);
    expect_error(s, "tensor 'blocks.1.att.r_k' has shape (64, 1), RWKV v7 with n_embed 64 expects (32, 2)");
  }
  {
    std::string s = slurp(model_file("tiny-rwkv-6v0-3m-Q5_1.bin"));
    const size_t at = s.find("blocks.0.att.time_maa_w2");
    REQUIRE(at != std::string::npos);  // (32, 128, 5) -> (32, 5, 128): same size, wrong shape
    s = patch32(patch32(s, at - 8, 5), at - 4, 128);
    expect_error(s, "tensor 'blocks.0.att.time_maa_w2' has shape (32, 5, 128), RWKV v6 with n_embed 128 expects (32, 128, 5)");
  }
  std::string err;
  CHECK(run(std::string(FQIMPORT_RWKV_PATH) + " " + t.file("missing.bin") + " -o " + t.file("o.yaml"), &err) == 2);
  CHECK(err.find("missing.bin") != std::string::npos);
  CHECK(run(std::string(FQIMPORT_RWKV_PATH) + " " + model_file("tiny-rwkv-5v2-730K-FP32.bin") + " -o " +
                t.file("o.yaml") + " --version 9",
            &err) == 2);
  CHECK(run(std::string(FQIMPORT_RWKV_PATH), &err) == 2);
  CHECK(err.find("usage") != std::string::npos);
}

TEST_CASE("rwkv ops: checks give clear errors", "[rwkv][graph]") {
  const Model m = load_model(model_file("tiny-rwkv-5v2-730K-FP32.bin"));
  fq::Graph g = build_float_graph(m, "rwkv");
  auto error_of = [](fq::Graph g2) -> std::string {
    try {
      fq::validate_graph(g2);
    } catch (const fq::Error& e) {
      return e.what();
    }
    return "";
  };
  {
    fq::Graph g2 = g;  // a WKV state that is not a state tensor
    for (fq::TensorDef& td : g2.tensors)
      if (td.name == "blocks.0.wkv") td.is_state = false;
    INFO(error_of(g2));
    CHECK(error_of(g2).find("tensor 'blocks.0.wkv' is not a graph input or constant, and no node writes it") != std::string::npos);
  }
  {
    fq::Graph g2 = g;  // a state of the wrong head layout
    for (fq::TensorDef& td : g2.tensors)
      if (td.name == "blocks.0.wkv") td.shape = {2, 8, 8};
    INFO(error_of(g2));
    CHECK(error_of(g2).find("expected [heads, head_size, head_size] with heads * head_size = 64") != std::string::npos);
  }
  {
    fq::Graph g2 = g;
    for (fq::NodeDef& n : g2.nodes)
      if (n.name == "blocks.0.att.ln_x") n.attrs["groups"] = int64_t(7);
    CHECK(error_of(g2).find("attribute 'groups' = 7 does not divide the width 64") != std::string::npos);
  }
  {
    fq::Graph g2 = g;
    for (fq::NodeDef& n : g2.nodes)
      if (n.name == "blocks.0.att.shift") n.inputs[1] = "blocks.0.ln1.weight";
    CHECK(error_of(g2).find("must be a state tensor") != std::string::npos);
  }
}

#ifdef FQRUN_PATH
TEST_CASE("rwkv fqrun: eval --text (bits per byte) and generate on a byte-level graph", "[rwkv][fqrun]") {
  TempDir t;
  const std::string graph = t.file("rwkv-5v2.yaml");
  std::string err;
  REQUIRE(run(std::string(FQIMPORT_RWKV_PATH) + " " + model_file("tiny-rwkv-5v2-730K-FP32.bin") +
                  " --version 5.2 -o " + graph,
              &err) == 0);
  const std::string text = "Once upon a time, there was a little cat.\nIt liked milk.\n";
  write(t.file("text.txt"), text);
  // The reference: teacher-forced from the zero state, the first byte as context only.
  const Model m = load_model(model_file("tiny-rwkv-5v2-730K-FP32.bin"));
  State s(m);
  double nll = 0;
  int top1 = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    const std::vector<float> l = forward(m, s, static_cast<unsigned char>(text[i]));
    size_t best = 0;
    for (size_t j = 1; j < l.size(); ++j)
      if (l[j] > l[best]) best = j;
    double sum = 0;
    for (float v : l) sum += std::exp(double(v) - double(l[best]));
    const size_t next = static_cast<unsigned char>(text[i + 1]);
    nll += double(l[best]) + std::log(sum) - double(l[next]);
    top1 += best == next;
  }
  const size_t n = text.size() - 1;
  char want[128];
  std::snprintf(want, sizeof want, "bpb=%.6f top1=%.4f bytes=%zu\n", nll / double(n) / std::log(2.0),
                double(top1) / double(n), n);
  const std::string out = t.file("out.txt");
  REQUIRE(std::system((std::string(FQRUN_PATH) + " eval " + graph + " --text " + t.file("text.txt") +
                       " > " + out).c_str()) == 0);
  const std::string got = slurp(out);
  INFO(got);
  REQUIRE(got.size() > std::strlen(want));
  CHECK(got.substr(got.size() - std::strlen(want)) == want);
  // Too short a text is an error.
  write(t.file("one.txt"), "x");
  CHECK(run(std::string(FQRUN_PATH) + " eval " + graph + " --text " + t.file("one.txt"), &err) == 2);
  CHECK(err.find("at least 2") != std::string::npos);

  // Greedy generation equals the reference's argmax loop: prompt, then the sampled bytes.
  s.reset();
  std::string expect = "The";
  std::vector<float> l;
  for (unsigned char c : expect) l = forward(m, s, c);
  for (int pos = 2; pos < 40; ++pos) {  // positions 2 .. 39 each sample one byte
    const int next = int(std::max_element(l.begin(), l.end()) - l.begin());
    expect += char(next);
    if (pos + 1 < 40) l = forward(m, s, next);
  }
  REQUIRE(std::system((std::string(FQRUN_PATH) + " generate " + graph +
                       " --prompt The --temp 0 -n 40 > " + out + " 2>/dev/null").c_str()) == 0);
  CHECK(slurp(out) == expect + "\n");
}
#endif
