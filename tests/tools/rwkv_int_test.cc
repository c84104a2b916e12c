// Integer RWKV graphs (tools/rwkv/quant.h, docs/rwkv.md "Integer graphs"; the graphs of the
// `models` target): bits per byte of the W8A8 and rwkvquant graphs against the float reference on
// held-out text (tests/data/rwkv/heldout.txt, written for this test: the models never saw it and
// calibration uses sequences the models sample themselves), their size, sequence mode == token by
// token bit for bit with a state hand-off, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "forward.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "fq/kernels/cpu.h"
#include "model.h"
#include "quant.h"

using namespace fq::rwkv;

namespace {

std::string model_file(const std::string& name) {
  if (const char* d = std::getenv("FQ_RWKV_DIR")) return std::string(d) + "/" + name;
  return std::string(FQ_SHARED_DIR) + "/models/rwkv/" + name;
}

// The held-out text as the model's bytes: UTF-8 for v5, UTF-16LE for 6v0 (its training format).
std::vector<int> heldout(bool utf16) {
  const std::string t = fq::test::slurp(std::string(FQ_SOURCE_DIR) + "/tests/data/rwkv/heldout.txt");
  REQUIRE(t.size() > 1000);
  std::vector<int> b;
  for (unsigned char c : t) {
    b.push_back(c);
    if (utf16) b.push_back(0);
  }
  return b;
}

RwkvRecipe w8a8() { return load_rwkv_recipe(std::string(FQ_SOURCE_DIR) + "/configs/rwkv-w8a8.yaml"); }

// log-softmax cross-entropy (bits) of `next` and whether it is the argmax.
double bits_of(const float* l, int n, int next, bool* top1, double scale = 1.0) {
  int best = 0;
  for (int j = 1; j < n; ++j)
    if (l[j] > l[best]) best = j;
  double z = 0;
  for (int j = 0; j < n; ++j) z += std::exp((double(l[j]) - double(l[best])) * scale);
  *top1 = best == next;
  return ((double(l[best]) - double(l[next])) * scale + std::log(z)) / std::log(2.0);
}

struct Score {
  double bpb = 0, top1 = 0;
};

Score float_score(const Model& m, const std::vector<int>& bytes) {
  State s(m);
  Score r;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    const std::vector<float> l = forward(m, s, bytes[i]);
    bool t = false;
    r.bpb += bits_of(l.data(), int(l.size()), bytes[i + 1], &t);
    r.top1 += t;
  }
  r.bpb /= double(bytes.size() - 1), r.top1 /= double(bytes.size() - 1);
  return r;
}

// Real logits of row m of an integer graph's output (values * mant * 2^-exp).
std::vector<double> real_logits(fq::Session& s, int row) {
  const fq::TensorView lv = s.output("logits"), sv = s.output("logits_scale");
  const int64_t n = lv.shape[1];
  const int16_t* v = static_cast<const int16_t*>(lv.data) + row * n;
  const int32_t* sc = static_cast<const int32_t*>(sv.data) + 2 * row;
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) out[size_t(j)] = double(v[j]) * double(sc[0]) * std::ldexp(1.0, -sc[1]);
  return out;
}

// The graphs of the `models` target (fqquant-rwkv with configs/rwkv-*.yaml).
fq::Graph model_graph(const std::string& name) {
  return fq::load_graph(std::string(FQ_MODELS_DIR) + "/rwkv-" + name + ".yaml");
}

// Teacher-forced score of an integer graph g1 through its sequence-mode graph g64: T bytes per
// run, the last (n - 1) mod T bytes token by token from its state. The logits are those of token
// by token all the way ("sequence mode equals token by token" below), in fewer, batched runs.
Score int_score(const fq::Graph& g1, const fq::Graph& g64, const std::vector<int>& bytes) {
  fq::Session s64(g64);
  const size_t T = size_t(s64.input("tokens").shape[0]), n = bytes.size() - 1;
  Score r;
  auto add = [&](fq::Session& s, int row, size_t i) {
    const std::vector<double> l = real_logits(s, row);
    std::vector<float> lf(l.begin(), l.end());
    bool t = false;
    r.bpb += bits_of(lf.data(), int(lf.size()), bytes[i + 1], &t);
    r.top1 += t;
  };
  size_t i = 0;
  for (; i + T <= n; i += T) {
    for (size_t t = 0; t < T; ++t) static_cast<int32_t*>(s64.input("tokens").data)[t] = bytes[i + t];
    s64.run();
    for (size_t t = 0; t < T; ++t) add(s64, int(t), i + t);
  }
  fq::Session s1(g1);
  s1.load_state(s64.save_state());
  for (; i < n; ++i) {
    *static_cast<int32_t*>(s1.input("tokens").data) = bytes[i];
    *static_cast<int32_t*>(s1.input("pos").data) = int32_t(i);
    s1.run();
    add(s1, 0, i);
  }
  r.bpb /= double(n), r.top1 /= double(n);
  return r;
}

// Size of a file of the models directory.
uintmax_t file_bytes(const std::string& name) {
  return std::filesystem::file_size(std::string(FQ_MODELS_DIR) + "/rwkv-" + name);
}

// Bytes of a graph's constants (its weights, without the YAML).
size_t const_bytes(const fq::Graph& g) {
  size_t n = 0;
  for (const fq::TensorDef& t : g.tensors)
    if (t.is_const) n += t.nbytes();
  return n;
}

}  // namespace

// Bits per byte of a model's W8A8 and rwkvquant graphs against float on the held-out text, and
// their sizes. rq_tol: rwkvquant's relative bpb bound (the 3 % for 5v2, 6v0 and 7v0; 5v1
// is measured at +3.54 %, docs/rwkv.md).
void check_bpb(const char* file, const std::string& name, bool utf16, double rq_tol) {
  INFO(file);
  const Model m = load_model(model_file(file));
  const std::vector<int> bytes = heldout(utf16);
  const Score f = float_score(m, bytes);
  const fq::Graph w8 = model_graph(name + "-w8a8"), rq = model_graph(name + "-rwkvquant");
  const Score a = int_score(w8, model_graph(name + "-w8a8-seq64"), bytes);
  const Score b = int_score(rq, model_graph(name + "-rwkvquant-seq64"), bytes);
  const double ra = (a.bpb - f.bpb) / f.bpb, rb = (b.bpb - f.bpb) / f.bpb;
  const double ratio = double(const_bytes(w8)) / double(const_bytes(rq));
  WARN(file << ": float bpb " << f.bpb << " top1 " << f.top1 << " | W8A8 " << a.bpb << " (" << 100 * ra
            << " %) | rwkvquant " << b.bpb << " (" << 100 * rb << " %), W8A8 / rwkvquant bytes " << ratio);
  CHECK(std::fabs(ra) <= 0.005);  // the bound for W8A8
  CHECK(std::fabs(rb) <= rq_tol);
  CHECK(ratio >= 2.0);  // the "at least 2x smaller than W8A8", on the weights and on the files
  CHECK(file_bytes(name + "-w8a8.fqw") >= 2 * file_bytes(name + "-rwkvquant.fqw"));
}

// One test case per model, tagged [accuracy]: ctest runs them as their own entries (in parallel,
// and not under the sanitizers, whose run reads the same graphs in the cases below).
TEST_CASE("rwkv int accuracy: 5v2-730K", "[rwkv][int][accuracy]") {
  check_bpb("tiny-rwkv-5v2-730K-FP32.bin", "5v2-730K", false, 0.03);
}
TEST_CASE("rwkv int accuracy: 6v0-3m", "[rwkv][int][accuracy]") {
  check_bpb("tiny-rwkv-6v0-3m-Q5_1.bin", "6v0-3m", true, 0.03);
}
TEST_CASE("rwkv int accuracy: 5v1-730K", "[rwkv][int][accuracy]") {
  check_bpb("tiny-rwkv-5v1-730K-FP32.bin", "5v1-730K", false, 0.04);
}
TEST_CASE("rwkv int accuracy: 7v0-834K", "[rwkv][int][accuracy]") {
  check_bpb("tiny-rwkv-7v0-834K-FP32.bin", "7v0-834K", false, 0.01);
}

TEST_CASE("rwkv int: sequence mode equals token by token, state save / restore", "[rwkv][int]") {
  for (const char* name : {"5v2-730K-rwkvquant", "6v0-3m-w8a8", "7v0-834K-w8a8"}) {
    INFO(name);
    const fq::Graph g1 = model_graph(name), g64 = model_graph(std::string(name) + "-seq64");
    const std::vector<int> bytes = heldout(false);
    const int T = 64, runs = 2;
    fq::Session s1(g1);
    std::vector<int16_t> want;
    std::vector<int32_t> want_s;
    for (int t = 0; t < T * runs + 4; ++t) {
      *static_cast<int32_t*>(s1.input("tokens").data) = bytes[size_t(t)];
      s1.run();
      const fq::TensorView l = s1.output("logits");
      const int16_t* v = static_cast<const int16_t*>(l.data);
      want.insert(want.end(), v, v + l.shape[1]);
      const int32_t* sc = static_cast<const int32_t*>(s1.output("logits_scale").data);
      want_s.insert(want_s.end(), sc, sc + 2);
    }
    for (int threads : {1, 2}) {
      fq::Options o;
      o.threads = threads;
      fq::Session s64(g64, o);
      std::vector<uint8_t> mid;
      for (int run = 0; run < runs; ++run) {
        for (int t = 0; t < T; ++t) static_cast<int32_t*>(s64.input("tokens").data)[t] = bytes[size_t(run * T + t)];
        s64.run();
        const fq::TensorView l = s64.output("logits");
        REQUIRE(std::memcmp(l.data, want.data() + size_t(run) * T * size_t(l.shape[1]), l.bytes) == 0);
        REQUIRE(std::memcmp(s64.output("logits_scale").data, want_s.data() + size_t(run) * 2 * T, 8 * T) == 0);
        mid = s64.save_state();
      }
      // the state after the sequence-mode runs, handed to a token-by-token session, continues identically
      fq::Session s(g1);
      s.load_state(mid);
      for (int t = T * runs; t < T * runs + 4; ++t) {
        *static_cast<int32_t*>(s.input("tokens").data) = bytes[size_t(t)];
        s.run();
        const fq::TensorView l = s.output("logits");
        REQUIRE(std::memcmp(l.data, want.data() + size_t(t) * size_t(l.shape[1]), l.bytes) == 0);
      }
    }
  }
}

// Every kernel path this CPU runs gives the scalar path's bytes on every integer graph: so the
// accuracy cases above, run once on the default path, hold for every path (.ci/run's forced-ISA
// stages rely on this instead of repeating them).
TEST_CASE("rwkv int: every ISA gives the scalar logits bit for bit", "[rwkv][int]") {
  const std::vector<int> bytes = heldout(false);
  std::vector<std::string> isas;
  for (const char* name : {"avx2", "avx512", "amx", "neon", "neondot"}) {
    fq::k::Isa isa;
    if (fq::k::parse_isa(name, &isa) && fq::k::isa_supported(isa)) isas.push_back(name);
  }
  // decode with codebook GEMVs, sequence mode with int8 GEMMs, and once codebook GEMMs (the
  // scalar path decodes codebook weights per row: slow on the larger models)
  std::vector<std::string> names = {"5v2-730K-rwkvquant-seq64"};
  for (const char* model : {"5v1-730K", "5v2-730K", "6v0-3m", "7v0-834K"})
    for (const char* recipe : {"-rwkvquant", "-w8a8-seq64"}) names.push_back(std::string(model) + recipe);
  for (const std::string& name : names) {
    const fq::Graph g = model_graph(name);
    // logits and their scales: token by token 3 tokens (the state carried), seq64 one run
    auto run = [&](const std::string& isa) {
      fq::Options o;
      o.isa = isa;
      fq::Session s(g, o);
      const size_t T = size_t(s.input("tokens").shape[0]);
      std::vector<uint8_t> out;
      for (size_t run = 0; run < (T == 1 ? 3 : 1); ++run) {
        for (size_t t = 0; t < T; ++t) static_cast<int32_t*>(s.input("tokens").data)[t] = bytes[run * T + t];
        s.run();
        for (const char* o_name : {"logits", "logits_scale"}) {
          const fq::TensorView v = s.output(o_name);
          out.insert(out.end(), static_cast<const uint8_t*>(v.data), static_cast<const uint8_t*>(v.data) + v.bytes);
        }
      }
      return out;
    };
    const std::vector<uint8_t> want = run("scalar");
    for (const std::string& isa : isas) {
      INFO(name << " on " << isa);
      CHECK(run(isa) == want);
    }
  }
}

TEST_CASE("rwkv int: bad input", "[rwkv][int]") {
  const Model m4 = load_model(model_file("tiny-rwkv-4v0-660K-FP32.bin"));
  try {
    quantize_model(m4, w8a8());
    FAIL("v4 accepted");
  } catch (const fq::Error& e) {
    CHECK(std::string(e.what()).find("v4") != std::string::npos);
  }
  CHECK_THROWS_WITH(parse_rwkv_recipe("weight_bits: 8\nfoo: 1\n", "r.yaml"), Catch::Contains("r.yaml:2") &&
                                                                             Catch::Contains("foo"));
  CHECK_THROWS_WITH(parse_rwkv_recipe("weight_bits: 5\n", "r.yaml"), Catch::Contains("4 or 8"));
  // a graph whose DULUT table is corrupted is rejected by validation (as at load), naming the node
  const Model m = load_model(model_file("tiny-rwkv-5v2-730K-FP32.bin"));
  RwkvRecipe r = w8a8();
  r.calib_sequences = 1;
  fq::Graph g = build_int_graph(quantize_model(m, r), "bad", 1);
  fq::TensorDef& t = g.tensors[size_t(g.find_tensor("dulut.sigmoid"))];
  std::vector<int16_t> v(t.as<int16_t>(), t.as<int16_t>() + t.numel());
  v[0] = int16_t(-1);  // b1[0] = 65535, d1[0] = 100: b1 + d1 > 65536
  v[64] = 100;
  t.data = fq::ConstData::copy_of(v.data(), t.nbytes());
  try {
    fq::validate_graph(g);
    FAIL("corrupt table accepted");
  } catch (const fq::Error& e) {
    CHECK(std::string(e.what()).find("blocks.0.ffn.r") != std::string::npos);
    CHECK(std::string(e.what()).find("DULUT") != std::string::npos);
  }
  // a codebook matrix whose index width does not match its bytes per row
  fq::Graph rq = model_graph("5v2-730K-rwkvquant");
  for (fq::NodeDef& n : rq.nodes)
    if (n.name == "blocks.0.att.r") n.attrs["bits"] = int64_t(4);
  try {
    fq::validate_graph(rq);
    FAIL("mismatched codebook accepted");
  } catch (const fq::Error& e) {
    CHECK(std::string(e.what()).find("blocks.0.att.r") != std::string::npos);
    CHECK(std::string(e.what()).find("bytes per row") != std::string::npos);
  }
  // codebooks shared by a number of rows that does not match their count
  fq::Graph rq3 = model_graph("5v2-730K-rwkvquant");
  for (fq::NodeDef& n : rq3.nodes)
    if (n.name == "blocks.0.att.r") n.attrs["codebook_rows"] = int64_t(8);
  CHECK_THROWS_WITH(fq::validate_graph(rq3), Catch::Contains("blocks.0.att.r") &&
                                                 Catch::Contains("receptance.weight.codebook"));
  // a codebook mu with too few codes (blocks.1.att.xk: a codebook; blocks.0.att.xk: scalar int8,
  // the proxy's choice for that vector)
  fq::Graph rq2 = model_graph("5v2-730K-rwkvquant");
  for (fq::NodeDef& n : rq2.nodes)
    if (n.name == "blocks.1.att.xk") n.attrs["mu_bits"] = int64_t(4);
  CHECK_THROWS_WITH(fq::validate_graph(rq2), Catch::Contains("blocks.1.att.xk") && Catch::Contains("mu.codes"));
  // a scalar int8 mu without its scale, or with one out of range
  for (const int64_t mant : {int64_t{-1}, int64_t{40000}}) {
    fq::Graph rq4 = model_graph("5v2-730K-rwkvquant");
    bool scalar = false;
    for (const fq::TensorDef& t : rq4.tensors) scalar |= t.name == "blocks.0.att.xk.mu" && t.dtype == fq::DType::i8;
    REQUIRE(scalar);
    for (fq::NodeDef& n : rq4.nodes)
      if (n.name == "blocks.0.att.xk") n.attrs["mu_mant"] = mant;
    CHECK_THROWS_WITH(fq::validate_graph(rq4), Catch::Contains("blocks.0.att.xk") && Catch::Contains("mu_mant"));
  }
  fq::Graph rq5 = model_graph("5v2-730K-rwkvquant");
  for (fq::NodeDef& n : rq5.nodes)
    if (n.name == "blocks.0.att.xk") n.attrs.erase("mu_exp");
  CHECK_THROWS_WITH(fq::validate_graph(rq5), Catch::Contains("blocks.0.att.xk") && Catch::Contains("mu_exp"));
}

namespace {

// (w - w_hat)^T H (w - w_hat) summed over rows: the output error GPTQ minimizes.
double h_error(const fq::llama::Mat& w, const fq::llama::Mat& d, const std::vector<double>& h) {
  const int K = w.cols;
  double e = 0;
  for (int n = 0; n < w.rows; ++n)
    for (int a = 0; a < K; ++a)
      for (int b = 0; b < K; ++b)
        e += (w.at(n, a) - d.at(n, a)) * h[size_t(a) * size_t(K) + size_t(b)] * (w.at(n, b) - d.at(n, b));
  return e;
}

}  // namespace

TEST_CASE("rwkv int: codebook quantization (shared codebooks, GPTVQ order, refits) and the proxy", "[rwkv][int]") {
  // 40 rows (the last block of 16 is partial), 96 columns (groups of 64: the last is partial);
  // correlated inputs give a non-diagonal Hessian
  const int N = 40, K = 96, R = 16, G = 64, T = 400;
  uint64_t st = 7;
  auto gauss = [&] {  // Box-Muller on a splitmix64 stream
    auto u = [&] {
      uint64_t z = (st += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      return (double((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
    };
    return std::sqrt(-2 * std::log(u())) * std::cos(6.283185307179586 * u());
  };
  fq::llama::Mat w(N, K);
  for (float& v : w.a) v = float(gauss() * 0.1);
  std::vector<double> h(size_t(K) * K, 0.0), x(static_cast<size_t>(K));
  for (int t = 0; t < T; ++t) {
    const double common = gauss();
    for (int k = 0; k < K; ++k) x[size_t(k)] = gauss() * (1 + k % 5) + common;
    for (int a = 0; a < K; ++a)
      for (int b = 0; b < K; ++b) h[size_t(a) * K + b] += x[size_t(a)] * x[size_t(b)];
  }
  const fq::llama::QLinear q = quantize_codebook(w, h, 3, G, false, 30, true, R);
  const int ng = (K + G - 1) / G;
  REQUIRE(q.codebook_rows == R);
  REQUIRE(q.codebook.size() == size_t((N + R - 1) / R * ng * 8));
  REQUIRE(q.mult.size() == size_t(N));
  for (int n = 0; n < N; ++n) {  // deq is exactly what the format encodes
    CHECK(q.mult[size_t(n)] >= 1);
    CHECK(q.mult[size_t(n)] <= 32767);
    for (int k = 0; k < K; ++k) {
      const int idx = q.q[size_t(n) * K + size_t(k)];
      REQUIRE(idx >= 0);
      REQUIRE(idx < 8);
      const double cb = q.codebook[(size_t(n / R) * size_t(ng) + size_t(k / G)) * 8 + size_t(idx)];
      CHECK(double(q.deq.at(n, k)) == double(float(cb * std::ldexp(double(q.mult[size_t(n)]), -q.w_exp))));
    }
  }
  CHECK(codebook_bits_per_weight(q) == Approx(3.0 + (3.0 * ng * 8 * 8) / (N * K) + 16.0 / K));
  // GPTQ order and the refits lower the output error against plain k-means of the same format
  const double e_gptq = h_error(w, q.deq, h);
  const double e_plain = h_error(w, quantize_codebook(w, h, 3, G, false, 30, false, R).deq, h);
  INFO("output error: GPTQ order and refits " << e_gptq << ", plain k-means " << e_plain);
  CHECK(e_gptq < 0.9 * e_plain);  // measured 0.77
  // the proxy: evenly spaced values are coherent (uniform quantization); two tight clusters with
  // scattered values between them are not
  std::vector<float> even, clustered;
  for (int i = 0; i < 256; ++i) even.push_back(float(i) * 0.01f - 1.0f);
  for (int i = 0; i < 256; ++i) clustered.push_back(float((i % 2 ? 1 : -1) * (1.0 + 1e-4 * i)));
  for (int i = 0; i < 8; ++i) clustered.push_back(float(-0.9 + 0.25 * i));
  const Proxy pe = rwkvquant_proxy(even, 8, 8), pc = rwkvquant_proxy(clustered, 8, 8);
  CHECK(pe.coherent);
  CHECK(pe.hce == Approx(0).margin(1e-6));
  CHECK_FALSE(pc.coherent);
  // activation-weighted k-means of a vector with 8 distinct values per group reproduces it
  std::vector<double> v, mask;
  for (int i = 0; i < 128; ++i) v.push_back(0.1 * (i % 8) - 0.3 + (i >= 64 ? 0.05 : 0.0)), mask.push_back(1 + i % 3);
  const std::vector<double> c = kmeans_mul(v, mask, 3, 64);
  for (size_t i = 0; i < v.size(); ++i) CHECK(c[i] == Approx(v[i]).margin(1e-12));
}
