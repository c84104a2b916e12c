// tools/mamba: Mamba (v1) checkpoints (safetensors + config.json, mamba_ssm's layout), the float64
// reference forward pass (decode == sequence form), the FQ float graph against it, the
// causal_conv1d / selective_scan ops (T rows == T single-row runs), and bad files (one-line
// fq::Error naming the file; fqimport-mamba exits 2).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
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
#include "init.h"
#include "model.h"

using namespace fq::mamba;
namespace fs = std::filesystem;

namespace {

using fq::test::slurp;

// Writes a file and checks it was written.
void write(const std::string& path, const std::string& bytes) {
  fq::test::spit(path, bytes);
  REQUIRE(fq::test::exists(path));
}

using fq::test::TempDir;

// The issue's model: d_model 256, 4 layers, d_state 16, expand 2, vocabulary 512.
Config tiny_config() {
  Config c;
  c.d_model = 256, c.n_layer = 4, c.vocab_size = 512, c.dt_rank = 16;
  return c;
}
// A small model for the file tests.
Config small_config() {
  Config c;
  c.d_model = 32, c.n_layer = 2, c.vocab_size = 61, c.d_state = 4, c.dt_rank = 2;  // padded 64
  return c;
}

// Token sequence: a deterministic walk over the vocabulary.
std::vector<int> tokens(int n, int vocab, uint64_t seed) {
  Rng r(seed);
  std::vector<int> t(static_cast<size_t>(n));
  for (int& v : t) v = int(r.next() % uint64_t(vocab));
  t[0] = 1;
  return t;
}

const float* step(fq::Session& s, int token, int pos) {
  static_cast<int32_t*>(s.input("tokens").data)[0] = token;
  static_cast<int32_t*>(s.input("pos").data)[0] = pos;
  s.run();
  return static_cast<const float*>(s.output("logits").data);
}

int run(const std::string& cmd, std::string* out, std::string* err) {
  TempDir t;
  const std::string of = t.file("stdout"), ef = t.file("stderr");
  const int rc = std::system((cmd + " >" + of + " 2>" + ef).c_str());
  *out = slurp(of);
  *err = slurp(ef);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string load_error(const std::string& dir) {
  try {
    load_model(dir);
  } catch (const fq::Error& e) {
    return e.what();
  }
  FAIL("loaded without error: " << dir);
  return "";
}

// A safetensors file from a header text and a data buffer.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace

TEST_CASE("mamba: initialization follows mamba_ssm", "[mamba]") {
  const Model m = init_model(tiny_config());
  const Config& c = m.config;
  CHECK(c.d_inner() == 512);
  CHECK(c.dt_rank == 16);
  CHECK(m.tensors.size() == 2 + 10 * 4);
  CHECK(m.t("backbone.layers.0.mixer.in_proj.weight").shape == std::vector<int64_t>{1024, 256});
  CHECK(m.t("backbone.layers.0.mixer.x_proj.weight").shape == std::vector<int64_t>{48, 512});
  CHECK(m.t("backbone.layers.0.mixer.conv1d.weight").shape == std::vector<int64_t>{512, 1, 4});
  // S4D-real: A = -(n + 1), so A_log = log(n + 1) on every channel.
  const std::vector<float>& A_log = m.mixer(3, "A_log");
  for (int d = 0; d < 512; d += 97)
    for (int n = 0; n < 16; ++n) CHECK(A_log[size_t(d * 16 + n)] == float(std::log(double(n + 1))));
  // dt = softplus(dt bias) lies in [dt_min, dt_max] (log-uniform).
  double lo = 1, hi = 0, mean_log = 0;
  for (float b : m.mixer(1, "dt_proj.bias")) {
    const double dt = softplus(double(b));
    lo = std::min(lo, dt), hi = std::max(hi, dt), mean_log += std::log(dt);
  }
  mean_log /= 512;
  CHECK(lo >= 0.001 * 0.999);
  CHECK(hi <= 0.1 * 1.001);
  CHECK(std::fabs(mean_log - 0.5 * (std::log(0.001) + std::log(0.1))) < 0.25);
  for (float d : m.mixer(2, "D")) CHECK(d == 1.0f);
  // Deterministic for a seed, different for another.
  CHECK(init_model(tiny_config()).v("backbone.embeddings.weight") == m.v("backbone.embeddings.weight"));
  InitOptions o;
  o.seed = 2;
  CHECK(init_model(tiny_config(), o).v("backbone.embeddings.weight") != m.v("backbone.embeddings.weight"));
}

TEST_CASE("mamba: checkpoint round trip (F32, F16, BF16) and config.json", "[mamba]") {
  TempDir t;
  const Model m = init_model(small_config());
  save_model(m, t.file("f32"));
  const Model r = load_model(t.file("f32"));
  CHECK(r.config.d_model == 32);
  CHECK(r.config.vocab_size == 61);
  CHECK(r.config.padded_vocab() == 64);
  CHECK(r.config.d_state == 4);
  CHECK(r.config.dt_rank == 2);
  REQUIRE(r.tensors.size() == m.tensors.size());
  for (const auto& [name, tensor] : m.tensors) {
    INFO(name);
    CHECK(r.t(name).shape == tensor.shape);
    CHECK(r.t(name).data == tensor.data);
    CHECK(r.t(name).dtype == "F32");
  }
  for (const char* dt : {"F16", "BF16"}) {
    INFO(dt);
    save_model(m, t.file(dt), dt);
    const Model h = load_model(t.file(dt));
    for (const auto& [name, tensor] : m.tensors) {
      const std::vector<float>& v = h.t(name).data;
      CHECK(h.t(name).dtype == dt);
      for (size_t i = 0; i < v.size(); ++i) {
        const float want = std::string(dt) == "F16" ? half_to_float(float_to_half(tensor.data[i]))
                                                    : bf16_to_float(float_to_bf16(tensor.data[i]));
        if (v[i] != want) FAIL(name << " element " << i);
        if (std::fabs(v[i] - tensor.data[i]) > std::fabs(tensor.data[i]) * (std::string(dt) == "F16" ? 1e-3 : 8e-3) + 1e-7)
          FAIL(name << " element " << i << " rounds too far");
      }
    }
  }
  // Conversions: exact cases.
  CHECK(half_to_float(0x3c00) == 1.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie to even
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  // The published mamba-130m config (empty ssm_cfg: the defaults) parses.
  const Config p = parse_config(
      R"({"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {}, "rms_norm": true,
          "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8})",
      "config.json");
  CHECK(p.d_state == 16);
  CHECK(p.d_conv == 4);
  CHECK(p.expand == 2);
  CHECK(p.dt_rank == 48);
  CHECK(p.padded_vocab() == 50280);
  CHECK(p.tie_embeddings);
  // A tied head saved twice (torch.save of the whole state dict) is accepted.
  Model twice = m;
  twice.tensors["lm_head.weight"] = m.t("backbone.embeddings.weight");
  write_safetensors(t.file("f32/model.safetensors"), twice.tensors);
  CHECK(load_model(t.file("f32")).tensors.count("lm_head.weight") == 0);
  // An untied model keeps its head.
  Config u = small_config();
  u.tie_embeddings = false;
  const Model um = init_model(u);
  save_model(um, t.file("untied"));
  const Model ur = load_model(t.file("untied"));
  CHECK(&ur.head() == &ur.v("lm_head.weight"));
}

TEST_CASE("mamba: float64 reference, decode form == sequence form", "[mamba]") {
  const Model m = init_model(tiny_config());
  const std::vector<int> toks = tokens(40, 512, 7);
  std::vector<std::vector<double>> hid_seq;
  State ss(m.config);
  const auto seq = forward_sequence(m, toks, &ss, &hid_seq);
  State s(m.config);
  for (size_t t = 0; t < toks.size(); ++t) {
    std::vector<double> hid;
    const std::vector<double> l = forward(m, s, toks[t], &hid);
    if (l != seq[t] || hid != hid_seq[t]) FAIL("token " << t << " differs");
  }
  CHECK(s.conv == ss.conv);
  CHECK(s.ssm == ss.ssm);
  // Split sequence: prefill of 17 then 23 more from the carried state equals the whole.
  State sp(m.config);
  const auto a = forward_sequence(m, std::vector<int>(toks.begin(), toks.begin() + 17), &sp);
  const auto b = forward_sequence(m, std::vector<int>(toks.begin() + 17, toks.end()), &sp);
  CHECK(a.back() == seq[16]);
  CHECK(b.back() == seq.back());
  // The state matters: the same token after different histories gives different logits.
  State z(m.config);
  CHECK(forward(m, z, toks.back()) != seq.back());
}

TEST_CASE("mamba: the float graph matches the float64 reference", "[mamba]") {
  const Model m = init_model(tiny_config());
  const fq::Graph g = build_float_graph(m, "mamba-test");
  const std::vector<int> toks = tokens(64, 512, 11);
  const auto ref = forward_sequence(m, toks);
  for (int threads : {1, 2}) {
    fq::Options opt;
    opt.threads = threads;
    fq::Session s(g, opt);
    for (int pass = 0; pass < 2; ++pass) {
      s.reset_state();
      double max_err = 0, max_ref = 0;
      for (size_t t = 0; t < toks.size(); ++t) {
        const float* l = step(s, toks[t], int(t));
        for (int i = 0; i < 512; ++i) {
          max_err = std::fmax(max_err, std::fabs(double(l[i]) - ref[t][size_t(i)]));
          max_ref = std::fmax(max_ref, std::fabs(ref[t][size_t(i)]));
        }
      }
      INFO("threads " << threads << " pass " << pass << ": max |logit - float64| = " << max_err
                      << ", max |logit| = " << max_ref);
      CHECK(max_err <= 1e-5 * std::max(1.0, max_ref));
      if (threads == 1 && pass == 0) WARN("graph vs float64: max |logit err| " << max_err << " (max |logit| " << max_ref << ")");
    }
  }
  // A saved and reloaded graph gives the same logits.
  TempDir t;
  fq::save_graph(g, t.file("m.yaml"));
  const fq::Graph g2 = fq::load_graph(t.file("m.yaml"));
  fq::Session s1(g), s2(g2);
  for (int i = 0; i < 5; ++i) {
    const float* a = step(s1, toks[size_t(i)], i);
    std::vector<float> av(a, a + 512);
    const float* b = step(s2, toks[size_t(i)], i);
    CHECK(std::memcmp(av.data(), b, 512 * 4) == 0);
  }
}

TEST_CASE("mamba: causal_conv1d and selective_scan, T rows == T single-row runs", "[mamba]") {
  const int C = 6, K = 4, N = 3, T = 5;
  Rng r(5);
  auto vec = [&](size_t n, double scale, double offset = 0) {
    std::vector<float> v(n);
    for (float& x : v) x = float((2 * r.uniform() - 1) * scale + offset);
    return v;
  };
  const std::vector<float> w = vec(C * K, 0.5), bias = vec(C, 0.5), A = vec(C * N, 1.0, -1.5),
                           Dv = vec(C, 1.0), x = vec(T * C, 1.0), dt = vec(T * C, 0.05, 0.06),
                           B = vec(T * N, 1.0), Cm = vec(T * N, 1.0);
  auto build = [&](int rows) {
    fq::Graph g;
    g.name = "ops";
    auto tensor = [&](const std::string& n, std::vector<int64_t> shape, const float* data = nullptr,
                      bool state = false) {
      fq::TensorDef d;
      d.name = n;
      d.dtype = fq::DType::f32;
      d.shape = std::move(shape);
      d.is_state = state;
      if (data) {
        d.is_const = true;
        d.data = fq::ConstData::copy_of(data, size_t(d.numel()) * 4);
      }
      g.add_tensor(std::move(d));
    };
    tensor("x", {rows, C}), tensor("dt", {rows, C}), tensor("B", {rows, N}), tensor("C", {rows, N});
    tensor("w", {C, K}, w.data()), tensor("b", {C}, bias.data()), tensor("A", {C, N}, A.data());
    tensor("D", {C}, Dv.data());
    tensor("conv_state", {K - 1, C}, nullptr, true), tensor("ssm_state", {C, N}, nullptr, true);
    tensor("u", {rows, C}), tensor("y", {rows, C});
    g.inputs = {"x", "dt", "B", "C"};
    g.outputs = {"u", "y"};
    fq::NodeDef conv;
    conv.name = "conv", conv.op = "causal_conv1d", conv.inputs = {"x", "w", "b", "conv_state"}, conv.outputs = {"u"};
    fq::NodeDef scan;
    scan.name = "scan", scan.op = "selective_scan", scan.inputs = {"u", "dt", "A", "B", "C", "D", "ssm_state"};
    scan.outputs = {"y"};
    g.nodes = {conv, scan};
    fq::validate_graph(g);
    return g;
  };
  auto feed = [&](fq::Session& s, int t0, int rows) {
    std::memcpy(s.input("x").data, x.data() + t0 * C, size_t(rows * C) * 4);
    std::memcpy(s.input("dt").data, dt.data() + t0 * C, size_t(rows * C) * 4);
    std::memcpy(s.input("B").data, B.data() + t0 * N, size_t(rows * N) * 4);
    std::memcpy(s.input("C").data, Cm.data() + t0 * N, size_t(rows * N) * 4);
    s.run();
  };
  const fq::Graph gt = build(T), g1 = build(1), g2 = build(2);
  fq::Session st(gt), s1(g1), s2(g2);
  feed(st, 0, T);
  const float* yt = static_cast<const float*>(st.output("y").data);
  const float* ut = static_cast<const float*>(st.output("u").data);
  // Float64 expectations for the conv (zero initial state).
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < C; ++c) {
      double acc = bias[size_t(c)];
      for (int j = 0; j < K; ++j) {
        const int src = t - (K - 1) + j;
        if (src >= 0) acc += double(w[size_t(c * K + j)]) * x[size_t(src * C + c)];
      }
      CHECK(std::fabs(double(ut[t * C + c]) - acc) < 1e-5);
    }
  for (int t = 0; t < T; ++t) {
    feed(s1, t, 1);
    CHECK(std::memcmp(static_cast<const float*>(s1.output("y").data), yt + t * C, C * 4) == 0);
    CHECK(std::memcmp(static_cast<const float*>(s1.output("u").data), ut + t * C, C * 4) == 0);
  }
  // Rows 2 + 2 + (1 single) with a state shorter than K - 1 rows consumed per call.
  feed(s2, 0, 2);
  CHECK(std::memcmp(static_cast<const float*>(s2.output("y").data), yt, 2 * C * 4) == 0);
  feed(s2, 2, 2);
  CHECK(std::memcmp(static_cast<const float*>(s2.output("y").data), yt + 2 * C, 2 * C * 4) == 0);
  CHECK(std::memcmp(static_cast<const float*>(s2.output("u").data), ut + 2 * C, 2 * C * 4) == 0);

  // Checks: a conv state that is not a state tensor; a scan A of the wrong width.
  fq::Graph bad = build(1);
  for (auto& t : bad.tensors)
    if (t.name == "conv_state") t.is_state = false;
  bad.inputs.push_back("conv_state");
  try {
    fq::validate_graph(bad);
    FAIL("accepted");
  } catch (const fq::Error& e) {
    CHECK(std::string(e.what()).find("must be a state tensor") != std::string::npos);
  }
}

TEST_CASE("mamba: bad checkpoints give one-line errors naming the file", "[mamba]") {
  TempDir t;
  const Model m = init_model(small_config());
  const std::string good = t.file("good");
  save_model(m, good);
  const std::string st_good = slurp(good + "/model.safetensors");
  const std::string cfg_good = slurp(good + "/config.json");
  int n = 0;
  // Writes a checkpoint folder with `cfg` and `st`, expects an error containing all `want`.
  auto expect = [&](const std::string& cfg, const std::string& st, std::vector<std::string> want,
                    bool check_tool = false) {
    const std::string dir = t.file("bad" + std::to_string(n++));
    fs::create_directories(dir);
    if (!cfg.empty()) write(dir + "/config.json", cfg);
    if (st != "-") write(dir + "/model.safetensors", st);
    const std::string e = load_error(dir);
    INFO(e);
    CHECK(e.find('\n') == std::string::npos);
    for (const std::string& w : want) CHECK(e.find(w) != std::string::npos);
    if (check_tool) {
      std::string out, err;
      const std::string yaml = dir + "/out.yaml";
      CHECK(run(std::string(FQIMPORT_MAMBA_PATH) + " " + dir + " -o " + yaml, &out, &err) == 2);
      CHECK(std::count(err.begin(), err.end(), '\n') == 1);
      CHECK(err.find(want[0]) != std::string::npos);
      CHECK(!fs::exists(yaml));
    }
  };
  const std::string stp = "model.safetensors";
  // Folder and config.json.
  CHECK(load_error(t.file("nope")).find("nope") != std::string::npos);
  expect("", st_good, {"config.json"});
  expect("{\"d_model\": 32,", st_good, {"config.json", "JSON"}, true);
  expect("[1, 2]", st_good, {"config.json", "not an object"});
  expect("{\"d_model\": 32, \"d_model\": 32}", st_good, {"config.json", "duplicate key 'd_model'"});
  std::string c2 = cfg_good;
  c2.replace(c2.find("\"rms_norm\": true"), 16, "\"rms_norm\": false");
  expect(c2, st_good, {"config.json", "LayerNorm"});
  c2 = cfg_good;
  c2.replace(c2.find("\"n_layer\""), 9, "\"n_layers\"");
  expect(c2, st_good, {"config.json", "unknown key 'n_layers'"}, true);
  c2 = cfg_good;
  c2.replace(c2.find("\"d_model\": 32"), 13, "\"d_model\": \"32\"");
  expect(c2, st_good, {"config.json", "'d_model' must be an integer"});
  c2 = cfg_good;
  c2.replace(c2.find("\"d_state\": 4"), 12, "\"d_state\": 8");
  expect(c2, st_good, {stp, "'backbone.layers.0.mixer.x_proj.weight' has shape [10, 64], expected [18, 64]"}, true);
  // The safetensors file.
  expect(cfg_good, "-", {stp});
  expect(cfg_good, "", {stp, "truncated"});
  expect(cfg_good, st_good.substr(0, 100), {stp, "truncated header"}, true);
  expect(cfg_good, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", {stp, "exceeds 100 MB"});
  expect(cfg_good, safetensors("not json", ""), {stp, "not a JSON object"});
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", "12345678"),
         {stp, "JSON", "at byte"});
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [0, 2]}}", "12"),
         {stp, "tensor 'a'", "dtype I8 is not supported"}, true);
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", "12345678"),
         {stp, "tensor 'a'", "needs 12"});
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": 1}}", "12345678"),
         {stp, "tensor 'a'", "unknown key 'x'"});
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                               "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", "123456781234"),
         {stp, "overlaps"});
  // sizes whose product overflows int64 before the element cap is checked (as the rwkv reader had)
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [65536, 131072, 2147483648], \"data_offsets\": [0, 4]}}", "1234"),
         {stp, "tensor 'a'", "is too large"});
  const float nan = std::nanf("");
  std::string nan_bytes(4, '\0');
  std::memcpy(nan_bytes.data(), &nan, 4);
  expect(cfg_good, safetensors("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", nan_bytes),
         {stp, "tensor 'a'", "element 0 is not finite"});
  // Truncated data: the last tensor's bytes cut short.
  expect(cfg_good, st_good.substr(0, st_good.size() - 10), {stp, "truncated", "ends at byte"}, true);
  // Trailing bytes after the last tensor.
  expect(cfg_good, st_good + "xxxx", {stp, "4 bytes after the last tensor"});
  // Missing, wrong-shape and unexpected tensors.
  auto with = [&](const std::function<void(std::map<std::string, Tensor>&)>& edit) {
    std::map<std::string, Tensor> ts = m.tensors;
    edit(ts);
    const std::string f = t.file("tmp.safetensors");
    write_safetensors(f, ts);
    return slurp(f);
  };
  expect(cfg_good, with([](auto& ts) { ts.erase("backbone.layers.1.mixer.D"); }),
         {stp, "tensor 'backbone.layers.1.mixer.D' is missing"}, true);
  expect(cfg_good, with([](auto& ts) { ts["backbone.layers.0.mixer.conv1d.weight"].shape = {64, 4, 1}; }),
         {stp, "'backbone.layers.0.mixer.conv1d.weight' has shape [64, 4, 1], expected [64, 1, 4]"});
  expect(cfg_good, with([](auto& ts) { ts["backbone.layers.2.norm.weight"] = ts["backbone.norm_f.weight"]; }),
         {stp, "unexpected tensor 'backbone.layers.2.norm.weight'"}, true);
  expect(cfg_good, with([](auto& ts) {
           Tensor h = ts["backbone.embeddings.weight"];
           h.data[3] += 1.0f;
           ts["lm_head.weight"] = h;
         }),
         {stp, "lm_head.weight' differs from the embedding"});
  // The good folder still loads, and fqimport-mamba writes it.
  std::string out, err;
  CHECK(run(std::string(FQIMPORT_MAMBA_PATH) + " " + good + " -o " + t.file("g.yaml"), &out, &err) == 0);
  CHECK(fs::exists(t.file("g.fqw")));
  CHECK(run(std::string(FQIMPORT_MAMBA_PATH) + " " + good, &out, &err) == 2);  // no -o: usage
}

#ifdef FQRUN_PATH
TEST_CASE("mamba: fqrun eval --tokens equals the float64 reference, generate runs", "[mamba]") {
  TempDir t;
  const Model m = init_model(tiny_config());
  save_model(m, t.file("ck"));
  std::string out, err;
  REQUIRE(run(std::string(FQIMPORT_MAMBA_PATH) + " " + t.file("ck") + " -o " + t.file("m.yaml") +
                  " --tokenizer tok512.bin", &out, &err) == 0);
  fs::copy_file(std::string(FQ_SHARED_DIR) + "/models/llama/tok512.bin", t.file("tok512.bin"));
  // Two sequences, BOS first.
  std::vector<std::vector<int>> seqs = {tokens(30, 512, 3), tokens(20, 512, 4)};
  std::string text;
  double nll = 0;
  int64_t count = 0;
  for (const auto& s : seqs) {
    for (size_t i = 0; i < s.size(); ++i) text += (i ? " " : "") + std::to_string(s[i]);
    text += "\n";
    const auto logits = forward_sequence(m, s);
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const std::vector<double>& l = logits[i];
      const double mx = *std::max_element(l.begin(), l.end());
      double sum = 0;
      for (double v : l) sum += std::exp(v - mx);
      nll += mx + std::log(sum) - l[size_t(s[i + 1])];
      ++count;
    }
  }
  write(t.file("tokens.txt"), text);
  REQUIRE(run(std::string(FQRUN_PATH) + " eval " + t.file("m.yaml") + " --tokens " + t.file("tokens.txt"), &out, &err) == 0);
  const size_t at = out.rfind("nll=");
  REQUIRE(at != std::string::npos);
  const double got = std::atof(out.c_str() + at + 4);
  INFO(out);
  CHECK(std::fabs(got - nll / double(count)) < 1e-5);
  CHECK(out.find("tokens=" + std::to_string(count)) != std::string::npos);
  REQUIRE(run(std::string(FQRUN_PATH) + " generate " + t.file("m.yaml") + " -n 24 --seed 5 --prompt Once",
              &out, &err) == 0);
  CHECK(out.rfind("Once", 0) == 0);
  CHECK(err.find("tok/s") != std::string::npos);
}
#endif

// Measurement for docs/mamba.md (hidden: `mamba_test "[mamba-long]"`): the float graph against the
// float64 reference over 512 tokens, error per position range.
TEST_CASE("mamba: float graph vs float64 over 512 tokens", "[.][mamba-long]") {
  const Model m = init_model(tiny_config());
  const fq::Graph g = build_float_graph(m, "mamba-test");
  const std::vector<int> toks = tokens(512, 512, 13);
  const auto ref = forward_sequence(m, toks);
  fq::Session s(g);
  double err64 = 0, err_all = 0, max_ref = 0;
  for (size_t t = 0; t < toks.size(); ++t) {
    const float* l = step(s, toks[t], int(t));
    double e = 0;
    for (int i = 0; i < 512; ++i) {
      e = std::fmax(e, std::fabs(double(l[i]) - ref[t][size_t(i)]));
      max_ref = std::fmax(max_ref, std::fabs(ref[t][size_t(i)]));
    }
    if (t < 64) err64 = std::fmax(err64, e);
    err_all = std::fmax(err_all, e);
  }
  WARN("max |logit err| tokens 0-63: " << err64 << ", 0-511: " << err_all << ", max |logit| " << max_ref);
  CHECK(err_all <= 1e-5 * std::max(1.0, max_ref));
}
