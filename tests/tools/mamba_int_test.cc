// Integer Mamba graphs (tools/mamba/quant.h, docs/mamba.md "Integer graphs") on the model
// (d_model 256, 4 layers, d_state 16, expand 2, vocabulary 512, mamba_ssm init, seed 1):
//   - W8A8 against the float64 reference: cosine of the final hidden states >= 0.999 on every token
//     of held-out 512-token text, and no error growth with length (4096 tokens);
//   - prefill (64 rows per run) == decode (one row per run), bit for bit, including the state, and
//     a prefill -> decode hand-off through Session::save_state / load_state;
//   - at W4A8 the MambaQuant recipe beats round-to-nearest and Hadamard-only (QuaRot) rotation;
//   - fqquant-mamba: bad recipes exit 2 with one line naming the file and line.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "cli_test_util.h"
#include "forward.h"
#include "fq/fq.h"
#include "fq/kernels/cpu.h"
#include "init.h"
#include "quant.h"

using namespace fq::mamba;
namespace fs = std::filesystem;

namespace {

const Model& tiny_model() {
  static const Model m = [] {
    Config c;
    c.d_model = 256, c.n_layer = 4, c.vocab_size = 512, c.dt_rank = 16;
    return init_model(c);
  }();
  return m;
}

MambaRecipe recipe(const std::string& name, const std::vector<std::string>& sets = {}) {
  return read_recipe(std::string(FQ_SOURCE_DIR) + "/configs/mamba-" + name + ".yaml", sets);
}

// Under the sanitizers (CMakeLists.txt) W8A8 calibrates on 2 sequences (its float forward passes
// are most of this binary's time there) and W4A8 skips the clipping search (a quarter of its
// quantization's time there; the same search, fq::llama's, runs under them in llama_quant_test).
#if defined(FQ_TEST_SLICE)
const std::vector<std::string> kW8a8Slice = {"calib_sequences=2"}, kW4a8Slice = {"clip_search=false"};
#else
const std::vector<std::string> kW8a8Slice, kW4a8Slice;
#endif

const QModel& w8a8() {
  static const QModel q = quantize(tiny_model(), recipe("w8a8", kW8a8Slice));
  return q;
}

// The W4A8 recipe on a short calibration (the [accuracy] case runs it at full calibration).
const QModel& w4a8_short() {
  static const QModel q = [] {
    std::vector<std::string> sets = {"calib_sequences=2", "calib_tokens=32"};
    sets.insert(sets.end(), kW4a8Slice.begin(), kW4a8Slice.end());
    return quantize(tiny_model(), recipe("w4a8", sets));
  }();
  return q;
}

std::vector<int> random_tokens(int n, int vocab, uint64_t seed) {
  Rng r(seed);
  std::vector<int> t(static_cast<size_t>(n));
  for (int& v : t) v = int(r.next() % uint64_t(vocab));
  return t;
}

// Runs `toks` through a session on graph g (rows M: tokens.size() a multiple of M); returns every
// row's logits and logits_scale bytes.
std::vector<uint8_t> run_rows(fq::Session& s, const std::vector<int>& toks) {
  fq::TensorView in = s.input("tokens");
  const size_t M = size_t(in.shape[0]);
  REQUIRE(toks.size() % M == 0);
  std::vector<uint8_t> out;
  for (size_t t = 0; t < toks.size(); t += M) {
    for (size_t i = 0; i < M; ++i) static_cast<int32_t*>(in.data)[i] = toks[t + i];
    static_cast<int32_t*>(s.input("pos").data)[0] = int32_t(t);
    s.run();
    const fq::TensorView l = s.output("logits"), ls = s.output("logits_scale");
    const size_t lb = l.bytes / M, sb = ls.bytes / M;
    for (size_t i = 0; i < M; ++i) {
      const uint8_t* lp = static_cast<const uint8_t*>(l.data) + i * lb;
      const uint8_t* sp = static_cast<const uint8_t*>(ls.data) + i * sb;
      out.insert(out.end(), lp, lp + lb);
      out.insert(out.end(), sp, sp + sb);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("mamba int: W8A8 hidden states track the float64 reference", "[mamba][int]") {
  const Model& m = tiny_model();
  const QModel& q = w8a8();
  const fq::Graph g = build_int_graph(q, "w8a8", 1);
  // Held-out text: the model's own samples, seed 7 (calibration uses seeds >= 1000); 128 tokens
  // under the sanitizers (the float64 reference dominates there; CMakeLists.txt).
#if defined(FQ_TEST_SLICE)
  const std::vector<int> seq = sample_sequences(m, 1, 128, 7).front();
#else
  const std::vector<int> seq = sample_sequences(m, 1, 512, 7).front();
#endif
  const Fidelity f = fidelity(m, q, g, seq);
  double min_cos = 1;
  for (double c : f.cos) min_cos = std::min(min_cos, c);
  INFO("mean cos " << f.mean(f.cos) << ", min cos " << min_cos << ", rel err " << f.mean(f.rel_err)
                   << ", KL " << f.mean(f.kl) << ", nll " << f.mean(f.nll_ref) << " -> " << f.mean(f.nll_q));
  CHECK(min_cos >= 0.999);
  CHECK(f.mean(f.kl) < 1e-3);
}

TEST_CASE("mamba int: W8A8 error does not grow with length", "[mamba][int][accuracy]") {
  const Model& m = tiny_model();
  const QModel& q = w8a8();
  const fq::Graph g = build_int_graph(q, "w8a8", 1);
  const std::vector<int> seq = random_tokens(4096, m.config.vocab_size, 99);
  const Fidelity f = fidelity(m, q, g, seq);
  // windows of 64 tokens ending at token 64 and at token 4096
  const double e64 = f.mean(f.rel_err, 0, 64), e4096 = f.mean(f.rel_err, 4096 - 64, 4096);
  double min_cos = 1;
  for (double c : f.cos) min_cos = std::min(min_cos, c);
  INFO("relative error, tokens 1-64: " << e64 << ", tokens 4033-4096: " << e4096 << ", min cos " << min_cos);
  CHECK(e4096 <= 1.5 * e64);
  CHECK(min_cos >= 0.999);
}

TEST_CASE("mamba int: prefill equals decode bit for bit, and hands its state over", "[mamba][int]") {
  const QModel& q = w8a8();
  const fq::Graph g1 = build_int_graph(q, "decode", 1), g64 = build_int_graph(q, "prefill", 64);
  const std::vector<int> toks = random_tokens(256, q.c.vocab_size, 5);
  fq::Session dec(g1), pre(g64);
  const std::vector<uint8_t> a = run_rows(dec, toks), b = run_rows(pre, toks);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
  CHECK(dec.save_state() == pre.save_state());
  // prefill 128 tokens, continue with the decode graph: the same as decoding all 256
  fq::Session pre2(g64), dec2(g1);
  const std::vector<int> first(toks.begin(), toks.begin() + 128), rest(toks.begin() + 128, toks.end());
  run_rows(pre2, first);
  dec2.load_state(pre2.save_state());
  const std::vector<uint8_t> tail = run_rows(dec2, rest);
  CHECK(std::memcmp(tail.data(), a.data() + a.size() / 2, tail.size()) == 0);
  // a blob from another graph is refused with a message naming the graph
  fq::Session other(build_int_graph(q, "other", 1));
  std::vector<uint8_t> blob = dec.save_state();
  blob.resize(blob.size() - 1);
  CHECK_THROWS_WITH(other.load_state(blob), Catch::Contains("graph 'other'"));
  // different thread counts give the same bytes
  fq::Options two;
  two.threads = 2;
  fq::Session pre3(g64, two);
  CHECK(run_rows(pre3, toks) == b);
}

// The whole W4A8 pipeline (rotation search, online Hadamard, clipping search, GPTQ) on a short
// calibration: its int4 graph decodes and prefills to the same bytes. The [accuracy] case below
// runs the same pipeline at full calibration; this one also runs under the sanitizers.
TEST_CASE("mamba int: W4A8 prefill equals decode bit for bit", "[mamba][int]") {
  const QModel& q = w4a8_short();
  const std::vector<int> toks = random_tokens(128, q.c.vocab_size, 6);
  fq::Session dec(build_int_graph(q, "decode", 1)), pre(build_int_graph(q, "prefill", 64));
  const std::vector<uint8_t> a = run_rows(dec, toks), b = run_rows(pre, toks);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
  CHECK(dec.save_state() == pre.save_state());
}

// Every kernel path this CPU runs gives the scalar path's bytes, decode and prefill, W8A8 and W4A8
// (the int4 GEMMs and the online Hadamard): so the [accuracy] cases, run once on the default path,
// hold for every path (.ci/run's forced-ISA stages rely on this instead of repeating them).
TEST_CASE("mamba int: every ISA gives the scalar logits bit for bit", "[mamba][int]") {
  const QModel& q4 = w4a8_short();
  const std::vector<int> toks = random_tokens(128, q4.c.vocab_size, 7);
  std::vector<std::string> isas;
  for (const char* name : {"avx2", "avx512", "amx", "neon", "neondot"}) {
    fq::k::Isa isa;
    if (fq::k::parse_isa(name, &isa) && fq::k::isa_supported(isa)) isas.push_back(name);
  }
  for (const QModel* q : {&w8a8(), &q4})
    for (int rows : {1, 64}) {
      const fq::Graph g = build_int_graph(*q, rows == 1 ? "decode" : "prefill", rows);
      const std::vector<int> part(toks.begin(), toks.begin() + (rows == 1 ? 16 : 128));
      auto run = [&](const std::string& isa) {
        fq::Options o;
        o.isa = isa;
        fq::Session s(g, o);
        return run_rows(s, part);
      };
      const std::vector<uint8_t> want = run("scalar");
      for (const std::string& isa : isas) {
        INFO((q == &q4 ? "W4A8 " : "W8A8 ") << rows << " rows on " << isa);
        CHECK(run(isa) == want);
      }
    }
}

TEST_CASE("mamba int: MambaQuant beats round-to-nearest and Hadamard-only at W4A8", "[mamba][int][accuracy]") {
  const Model& m = tiny_model();
  const std::vector<int> seq = sample_sequences(m, 1, 256, 11).front();
  auto kl = [&](const std::vector<std::string>& sets) {
    MambaRecipe r = recipe("w4a8", sets);
    const QModel q = quantize(m, r);
    const Fidelity f = fidelity(m, q, build_int_graph(q, "w4a8", 1), seq);
    return f.mean(f.kl);
  };
  const std::vector<std::string> rtn = {"rotate=none", "online_hadamard=false", "clip_search=false",
                                        "gptq=false"};
  const std::vector<std::string> had = {"rotate=hadamard", "online_hadamard=true", "clip_search=false",
                                        "gptq=false"};
  const double k_rtn = kl(rtn), k_had = kl(had), k_mq = kl({});
  INFO("KL(float || int) per token: RTN " << k_rtn << ", Hadamard-only " << k_had << ", MambaQuant " << k_mq);
  CHECK(k_mq < k_rtn);
  CHECK(k_mq < k_had);
}

TEST_CASE("mamba int: fqquant-mamba rejects bad recipes with one line", "[mamba][int]") {
  const std::string dir = (fs::temp_directory_path() / "fq-mamba-int-recipe").string();
  fs::create_directories(dir);
  const std::string bad = dir + "/bad.yaml";
  fq::test::spit(bad, "name: x\nweight_bits: 5\n");
  CHECK_THROWS_WITH(read_recipe(bad), Catch::StartsWith(bad + ":2: weight_bits must be 4 or 8"));
  fq::test::spit(bad, "rotate: sideways\n");
  CHECK_THROWS_WITH(read_recipe(bad), Catch::Contains("rotate must be none, hadamard, klt or auto"));
  fq::test::spit(bad, "typo_key: 1\n");
  CHECK_THROWS_WITH(read_recipe(bad), Catch::Contains("unknown recipe key 'typo_key'"));
  CHECK_THROWS_WITH(read_recipe(recipe("w8a8").path, {"gptq"}), Catch::Contains("expected KEY=VALUE"));
  fs::remove_all(dir);
}

TEST_CASE("mamba int: the integer ops reject bad graphs with one line naming the node", "[mamba][int]") {
  const QModel& q = w8a8();
  auto error_of = [&](const std::function<void(fq::Graph&)>& mutate) -> std::string {
    fq::Graph g = build_int_graph(q, "bad", 1);
    mutate(g);
    try {
      fq::validate_graph(g);
      fq::Session s(g);
    } catch (const fq::Error& e) {
      return e.what();
    }
    return "no error";
  };
  auto tensor = [](fq::Graph& g, const std::string& name) -> fq::TensorDef& {
    return g.tensors[size_t(g.find_tensor(name))];
  };
  // a conv state of the wrong dtype
  std::string e = error_of([&](fq::Graph& g) { tensor(g, "layer0.conv_state").dtype = fq::DType::i16; });
  CHECK_THAT(e, Catch::Contains("layer0.conv") && Catch::Contains("layer0.conv_state"));
  // |A| beyond the kernel's range
  e = error_of([&](fq::Graph& g) {
    fq::TensorDef& a = tensor(g, "layer1.scan.A");
    std::vector<int32_t> v(a.as<int32_t>(), a.as<int32_t>() + a.numel());
    v[5] = 1 << 25;
    a.data = fq::ConstData::copy_of(v.data(), v.size() * sizeof(int32_t));
  });
  CHECK_THAT(e, Catch::Contains("layer1.scan") && Catch::Contains("element 5"));
  // B with the wrong number of states
  e = error_of([&](fq::Graph& g) { tensor(g, "layer2.x_proj.C").shape = {1, 8}; });
  CHECK_THAT(e, Catch::Contains("layer2."));
  // an attribute out of range
  e = error_of([&](fq::Graph& g) {
    for (fq::NodeDef& n : g.nodes)
      if (n.name == "layer3.scan") n.attrs["a_frac"] = int64_t(99);
  });
  CHECK_THAT(e, Catch::Contains("layer3.scan") && Catch::Contains("a_frac"));
}
