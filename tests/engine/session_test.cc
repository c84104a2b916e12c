// Session: thread-count determinism, ISA bit-exactness at graph level, no allocation in run(),
// memory planning, observation and the C API, on an integer graph built in memory.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

#include <catch2/catch.hpp>

#include "fq/fq.h"
#include "fq/fq_c.h"
#include "fq/kernels/cpu.h"
#include "fq/reference/quant.h"

#include "counting_new.h"

namespace {

using fq::DType;

template <class T>
fq::TensorDef constant(const std::string& name, DType dt, std::vector<int64_t> shape,
                       const std::vector<T>& v) {
  fq::TensorDef t;
  t.name = name, t.dtype = dt, t.shape = std::move(shape), t.is_const = true;
  t.data = fq::ConstData::copy_of(v.data(), v.size() * sizeof(T));
  return t;
}

fq::TensorDef act(const std::string& name, DType dt, std::vector<int64_t> shape) {
  fq::TensorDef t;
  t.name = name, t.dtype = dt, t.shape = std::move(shape);
  return t;
}

// A conv layer with random weights and a requantization that keeps outputs in range.
void add_conv(fq::Graph& g, std::mt19937& rng, const std::string& name, const std::string& x,
              const std::string& y, int c, int o, int k, int stride, bool cfws, int h, int w,
              int n) {
  std::uniform_int_distribution<int> wd(-127, 127), bd(-2000, 2000);
  std::vector<int8_t> wt(size_t(o) * k * k * c);
  for (auto& v : wt) v = static_cast<int8_t>(wd(rng));
  std::vector<int32_t> b(o), m(o);
  std::vector<int8_t> s(o);
  for (int i = 0; i < o; ++i) {
    b[i] = bd(rng);
    const auto d = fq::ref::to_dyadic(1.0 / (k * k * c * 127.0 * 8) * (1 + i % 5), cfws ? 30 : 31);
    m[i] = d.m, s[i] = static_cast<int8_t>(d.s);
  }
  g.add_tensor(constant(name + ".w", DType::i8, {o, k, k, c}, wt));
  g.add_tensor(constant(name + ".b", DType::i32, {o}, b));
  g.add_tensor(constant(name + ".m", DType::i32, {o}, m));
  g.add_tensor(constant(name + ".s", DType::i8, {o}, s));
  fq::NodeDef nd;
  nd.name = name, nd.op = "conv2d";
  nd.inputs = {x, name + ".w", name + ".b", name + ".m", name + ".s"};
  if (cfws) {
    std::vector<int8_t> wc(size_t(o) * c);
    for (auto& v : wc) v = static_cast<int8_t>(wd(rng));
    std::vector<int32_t> mc(m);
    for (auto& v : mc) v /= 3;
    g.add_tensor(constant(name + ".wc", DType::i8, {o, 1, 1, c}, wc));
    g.add_tensor(constant(name + ".mc", DType::i32, {o}, mc));
    nd.inputs.push_back(name + ".wc");
    nd.inputs.push_back(name + ".mc");
  }
  nd.outputs = {y};
  nd.attrs["stride"] = int64_t{stride};
  nd.attrs["pad"] = int64_t{k / 2};
  nd.attrs["relu"] = int64_t{1};
  const int oh = (h + 2 * (k / 2) - k) / stride + 1, ow = (w + 2 * (k / 2) - k) / stride + 1;
  g.add_tensor(act(y, DType::u8, {n, oh, ow, o}));
  g.nodes.push_back(nd);
}

fq::Graph make_graph(int n = 2) {
  std::mt19937 rng(7);
  fq::Graph g;
  g.name = "session-test";
  g.add_tensor(act("image", DType::u8, {n, 41, 37, 3}));
  g.inputs = {"image"};
  add_conv(g, rng, "c0", "image", "a0", 3, 20, 3, 1, false, 41, 37, n);
  add_conv(g, rng, "c1", "a0", "a1", 20, 33, 3, 2, true, 41, 37, n);
  add_conv(g, rng, "c2", "a1", "a2", 33, 17, 1, 1, false, 21, 19, n);
  g.add_tensor(constant("gap.m", DType::i32, {1}, std::vector<int32_t>{1 << 30}));
  g.add_tensor(constant("gap.s", DType::i8, {1}, std::vector<int8_t>{39}));  // ~ 1 / (H*W)
  g.add_tensor(act("pooled", DType::u8, {n, 17}));
  fq::NodeDef gap;
  gap.name = "gap", gap.op = "global_avg_pool", gap.inputs = {"a2", "gap.m", "gap.s"};
  gap.outputs = {"pooled"};
  g.nodes.push_back(gap);
  std::vector<int8_t> fw(10 * 17);
  for (size_t i = 0; i < fw.size(); ++i) fw[i] = static_cast<int8_t>(int(i * 37 % 255) - 127);
  g.add_tensor(constant("fc.w", DType::i8, {10, 17}, fw));
  g.add_tensor(constant("fc.b", DType::i32, {10}, std::vector<int32_t>(10, 100)));
  g.add_tensor(constant("fc.m", DType::i32, {10}, std::vector<int32_t>(10, 1 << 30)));
  g.add_tensor(constant("fc.s", DType::i8, {10}, std::vector<int8_t>(10, 33)));
  g.add_tensor(act("logits", DType::i16, {n, 10}));
  fq::NodeDef fc;
  fc.name = "fc", fc.op = "fully_connected";
  fc.inputs = {"pooled", "fc.w", "fc.b", "fc.m", "fc.s"};
  fc.outputs = {"logits"};
  g.nodes.push_back(fc);
  g.add_tensor(constant("sm.m", DType::i32, {1}, std::vector<int32_t>{1 << 28}));
  g.add_tensor(constant("sm.s", DType::i8, {1}, std::vector<int8_t>{20}));
  g.add_tensor(act("probs", DType::u16, {n, 10}));
  fq::NodeDef sm;
  sm.name = "softmax", sm.op = "softmax", sm.inputs = {"logits", "sm.m", "sm.s"};
  sm.outputs = {"probs"};
  g.nodes.push_back(sm);
  g.outputs = {"probs", "logits"};
  fq::validate_graph(g);
  return g;
}

void fill_input(fq::Session& s) {
  fq::TensorView in = s.input(0);
  auto* p = static_cast<uint8_t*>(in.data);
  for (size_t i = 0; i < in.bytes; ++i) p[i] = static_cast<uint8_t>((i * 131 + 17) % 256);
}

std::vector<uint8_t> run_bytes(const fq::Graph& g, int threads, const std::string& isa) {
  fq::Options o;
  o.threads = threads, o.isa = isa;
  fq::Session s(g, o);
  fill_input(s);
  s.run();
  std::vector<uint8_t> out;
  for (size_t i = 0; i < s.num_outputs(); ++i) {
    const fq::TensorView v = s.output(i);
    out.insert(out.end(), static_cast<uint8_t*>(v.data), static_cast<uint8_t*>(v.data) + v.bytes);
  }
  return out;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> r;
  for (auto i : {fq::k::Isa::scalar, fq::k::Isa::avx2, fq::k::Isa::avx512, fq::k::Isa::amx,
                 fq::k::Isa::neon, fq::k::Isa::neondot})
    if (fq::k::isa_supported(i)) r.push_back(fq::k::isa_name(i));
  return r;
}

}  // namespace

TEST_CASE("outputs are bit-identical for every thread count and ISA") {
  // The first two convolutions are large enough (Step::work) to be split over up to 5 threads.
  const fq::Graph g = make_graph();
  const std::vector<uint8_t> ref = run_bytes(g, 1, "scalar");
  // The graph must do real work: outputs are not all zero and not all saturated.
  size_t nonzero = 0;
  for (uint8_t b : ref) nonzero += b != 0;
  REQUIRE(nonzero > ref.size() / 4);
  for (const std::string& isa : supported_isas())
    for (int t : {1, 2, 3, 5}) {
      INFO("isa " << isa << ", threads " << t);
      REQUIRE(run_bytes(g, t, isa) == ref);
    }
}

TEST_CASE("run() allocates nothing") {
  const fq::Graph g = make_graph();
  for (int t : {1, 2}) {
    fq::Options o;
    o.threads = t;
    fq::Session s(g, o);
    fill_input(s);
    s.run();  // warm
    g_news = 0;
    g_counting = true;
    for (int i = 0; i < 20; ++i) s.run();
    g_counting = false;
    INFO("threads " << t);
    REQUIRE(g_news.load() == 0);
  }
}

TEST_CASE("the arena reuses memory of dead tensors") {
  const fq::Graph g = make_graph(4);
  size_t sum = 0;
  for (const auto& t : g.tensors)
    if (!t.is_const) sum += (t.nbytes() + 63) / 64 * 64;
  fq::Session s(g);
  REQUIRE(s.arena_bytes() > 0);
  REQUIRE(s.arena_bytes() < sum);
}

TEST_CASE("run_observed reports every node output, matching run()") {
  const fq::Graph g = make_graph();
  fq::Session s(g);
  fill_input(s);
  std::vector<std::string> seen;
  std::vector<uint8_t> probs_observed;
  s.run_observed([&](const fq::NodeDef& n, const fq::TensorView& v) {
    seen.push_back(n.name + ":" + v.name);
    if (v.name == "probs")
      probs_observed.assign(static_cast<uint8_t*>(v.data), static_cast<uint8_t*>(v.data) + v.bytes);
  });
  REQUIRE(seen == std::vector<std::string>{"c0:a0", "c1:a1", "c2:a2", "gap:pooled", "fc:logits",
                                           "softmax:probs"});
  const std::vector<uint8_t> all = run_bytes(g, 1, "");
  REQUIRE(std::equal(probs_observed.begin(), probs_observed.end(), all.begin()));
}

TEST_CASE("an unsupported or unknown ISA is a clear error") {
  const fq::Graph g = make_graph();
  fq::Options o;
  o.isa = "sse9";
  REQUIRE_THROWS_WITH(fq::Session(g, o), Catch::Contains("unknown"));
}

TEST_CASE("C API round trip and errors") {
  const fq::Graph g = make_graph(1);
  const std::string path = std::string(FQ_BINARY_DIR) + "/session-test.yaml";
  fq::save_graph(g, path);
  fq_model* m = nullptr;
  REQUIRE(fq_model_load(path.c_str(), &m) == 0);
  fq_session* s = nullptr;
  REQUIRE(fq_session_create(m, 2, &s) == 0);
  REQUIRE(fq_num_inputs(s) == 1);
  std::vector<uint8_t> in(41 * 37 * 3);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>((i * 131 + 17) % 256);
  REQUIRE(fq_set_input(s, 0, in.data(), in.size() - 1) == -1);
  REQUIRE(std::string(fq_last_error()).find("bytes") != std::string::npos);
  REQUIRE(fq_set_input(s, 0, in.data(), in.size()) == 0);
  REQUIRE(fq_run(s) == 0);
  const void* out = nullptr;
  size_t bytes = 0;
  REQUIRE(fq_get_output(s, 0, &out, &bytes) == 0);
  REQUIRE(bytes == 20);
  const std::vector<uint8_t> expect = run_bytes(g, 1, "scalar");
  REQUIRE(std::memcmp(out, expect.data(), bytes) == 0);
  REQUIRE(fq_get_output(s, 7, &out, &bytes) == -1);
  REQUIRE(fq_reset_state(s) == 0);  // a graph without state: a no-op
  REQUIRE(fq_reset_state(nullptr) == -1);
  fq_session_free(s);
  fq_model_free(m);
  REQUIRE(fq_model_load("/nonexistent/model.yaml", &m) == -1);
  REQUIRE(std::string(fq_last_error()).find("/nonexistent/model.yaml") != std::string::npos);
}
