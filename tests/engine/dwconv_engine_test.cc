// Depthwise conv2d in the engine: conv2d with groups = C binds to the dwconv kernel family.
// Graphs built in memory (a depthwise layer alone, and dense -> depthwise -> depthwise chains) are
// run through Session on every supported ISA with 1, 2 and 3 threads and compared byte for byte
// with direct calls of the scalar depthwise (and conv) kernels. Also: the check errors for
// unsupported group counts and malformed depthwise weights, and a save/load round trip.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "fq/fq.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/cpu.h"
#include "fq/kernels/dwconv.h"

namespace {

namespace k = fq::k;
using fq::DType;
using Bytes = std::vector<uint8_t>;

struct Builder {
  fq::Graph g;
  std::mt19937 rng{2024};
  int rand(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  template <class T>
  std::vector<T> randoms(size_t n, int lo, int hi) {
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(rand(lo, hi));
    return v;
  }
  void tensor(const std::string& name, DType dt, std::vector<int64_t> shape) {
    fq::TensorDef t;
    t.name = name, t.dtype = dt, t.shape = std::move(shape);
    g.add_tensor(t);
  }
  template <class T>
  void constant(const std::string& name, DType dt, std::vector<int64_t> shape,
                const std::vector<T>& v) {
    fq::TensorDef t;
    t.name = name, t.dtype = dt, t.shape = std::move(shape), t.is_const = true;
    t.data = fq::ConstData::copy_of(v.data(), v.size() * sizeof(T));
    g.add_tensor(t);
  }
  void node(const std::string& name, const std::string& op, std::vector<std::string> in,
            std::vector<std::string> out, const std::map<std::string, int64_t>& attrs) {
    fq::NodeDef n;
    n.name = name, n.op = op, n.inputs = std::move(in), n.outputs = std::move(out);
    for (const auto& [key, v] : attrs) n.attrs[key] = v;
    g.nodes.push_back(n);
  }
};

// One integer conv2d layer's parameters, kept for the direct kernel calls.
struct Layer {
  std::string name, in, out;
  bool depthwise;
  int c, o, k, stride, pad, relu;
  DType out_dt;
  std::vector<int8_t> w, shift;  // w in the graph's layout [O, KH, KW, I]
  std::vector<int32_t> b, m;
};

// Adds a conv2d node (groups = C when depthwise) reading `in` [1, h, w, c]; returns its output h/w.
std::pair<int, int> add_layer(Builder& bd, Layer& L, int h, int w) {
  const int ci = L.depthwise ? 1 : L.c;
  const int taps = L.k * L.k * ci;
  L.w = bd.randoms<int8_t>(size_t(L.o) * taps, -128, 127);
  L.b = bd.randoms<int32_t>(size_t(L.o), -4000, 4000);
  L.m = bd.randoms<int32_t>(size_t(L.o), 1 << 14, 1 << 16);
  L.shift = std::vector<int8_t>(size_t(L.o), int8_t(L.depthwise ? 22 : 25));
  const int oh = (h + 2 * L.pad - L.k) / L.stride + 1, ow = (w + 2 * L.pad - L.k) / L.stride + 1;
  bd.constant(L.name + ".w", DType::i8, {L.o, L.k, L.k, ci}, L.w);
  bd.constant(L.name + ".b", DType::i32, {L.o}, L.b);
  bd.constant(L.name + ".m", DType::i32, {L.o}, L.m);
  bd.constant(L.name + ".s", DType::i8, {L.o}, L.shift);
  bd.tensor(L.out, L.out_dt, {1, oh, ow, L.o});
  std::map<std::string, int64_t> attrs{{"stride", L.stride}, {"pad", L.pad}, {"relu", L.relu}};
  if (L.depthwise) attrs["groups"] = L.c;
  bd.node(L.name, "conv2d", {L.in, L.name + ".w", L.name + ".b", L.name + ".m", L.name + ".s"},
          {L.out}, attrs);
  return {oh, ow};
}

// The layer through the scalar kernel, directly.
Bytes direct(const Layer& L, const Bytes& x, int h, int w, int oh, int ow) {
  const bool u8 = L.out_dt == DType::u8;
  const int32_t lo = u8 || L.relu ? 0 : -128, hi = u8 ? 255 : 127;
  const k::OutType ot = u8 ? k::OutType::u8 : k::OutType::i8;
  Bytes y(size_t(oh) * ow * L.o);
  size_t n = 0;
  if (L.depthwise) {
    const k::DwConvKernel& kern = *k::dwconv_kernels(&n)[0];
    k::DwConvShape s;
    s.h = h, s.w = w, s.c = L.c, s.kh = s.kw = L.k, s.stride = L.stride;
    s.pad_t = s.pad_l = L.pad, s.oh = oh, s.ow = ow;
    std::vector<int8_t> hwc(L.w.size());  // [C, KH, KW, 1] -> [KH, KW, C]
    for (int c = 0; c < L.c; ++c)
      for (int t = 0; t < L.k * L.k; ++t) hwc[size_t(t) * L.c + c] = L.w[size_t(c) * L.k * L.k + t];
    Bytes packed(kern.packed_size(s)), scratch(kern.scratch_size(s));
    kern.pack(s, hwc.data(), packed.data());
    k::DwConvEpilogue e;
    e.bias = L.b.data(), e.mult = L.m.data(), e.shift = L.shift.data();
    e.lo = lo, e.hi = hi, e.out_type = ot;
    kern.run(s, x.data(), packed.data(), e, y.data(), 0, kern.num_tasks(s), scratch.data());
  } else {
    const k::ConvKernel& kern = *k::conv_kernels(&n)[0];
    k::ConvShape s;
    s.h = h, s.w = w, s.c = L.c, s.o = L.o, s.kh = s.kw = L.k, s.stride = L.stride;
    s.pad_t = s.pad_l = L.pad, s.oh = oh, s.ow = ow;
    Bytes packed(kern.packed_size(s)), scratch(kern.scratch_size(s));
    kern.pack(s, L.w.data(), nullptr, packed.data());
    k::ConvEpilogue e;
    e.bias = L.b.data(), e.mult = L.m.data(), e.shift = L.shift.data();
    e.lo = lo, e.hi = hi, e.out_type = ot;
    kern.run(s, x.data(), packed.data(), e, y.data(), 0, kern.num_tasks(s), scratch.data());
  }
  return y;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> r;
  for (auto i :
       {k::Isa::scalar, k::Isa::avx2, k::Isa::avx512, k::Isa::amx, k::Isa::neon, k::Isa::neondot})
    if (k::isa_supported(i)) r.push_back(k::isa_name(i));
  return r;
}

struct Net {
  fq::Graph g;
  Bytes x, want;  // input and the expected output bytes
};

// image [1, h, w, c] -> layers (the first may be dense) ; the last layer's output is the graph's.
Net make_net(int h, int w, int c, const std::vector<Layer>& spec, uint32_t seed) {
  Builder bd;
  bd.rng.seed(seed);
  bd.tensor("image", DType::u8, {1, h, w, c});
  bd.g.inputs = {"image"};
  Net net;
  net.x = bd.randoms<uint8_t>(size_t(h) * w * c, 0, 255);
  Bytes cur = net.x;
  std::string prev = "image";
  int ch = h, cw = w, cc = c;
  int i = 0;
  for (Layer L : spec) {
    L.name = "l" + std::to_string(i), L.in = prev, L.out = "a" + std::to_string(i);
    L.c = cc;
    if (L.depthwise) L.o = cc;
    if (i + 1 < int(spec.size())) L.out_dt = DType::u8;  // activations in the chain are u8
    const auto [oh, ow] = add_layer(bd, L, ch, cw);
    cur = direct(L, cur, ch, cw, oh, ow);
    ch = oh, cw = ow, cc = L.o, prev = L.out, ++i;
  }
  bd.g.outputs = {prev};
  fq::validate_graph(bd.g);
  net.g = std::move(bd.g);
  net.want = std::move(cur);
  return net;
}

Bytes run(fq::Session& s, const Bytes& x) {
  fq::TensorView in = s.input("image");
  REQUIRE(in.bytes == x.size());
  std::memcpy(in.data, x.data(), x.size());
  s.run();
  const fq::TensorView out = s.output(0);
  return Bytes(static_cast<uint8_t*>(out.data), static_cast<uint8_t*>(out.data) + out.bytes);
}

void check_net(const Net& net) {
  for (const std::string& isa : supported_isas())
    for (int t : {1, 2, 3}) {
      fq::Options o;
      o.isa = isa, o.threads = t;
      fq::Session s(net.g, o);
      INFO("isa " << isa << ", threads " << t);
      bool bound = false;
      for (const fq::NodeReport& r : s.nodes())
        bound = bound || r.kernel.rfind("dwconv/", 0) == 0;
      CHECK(bound);
      for (int rep = 0; rep < 2; ++rep) REQUIRE(run(s, net.x) == net.want);
    }
}

Layer dw(int k, int stride, int pad, int relu, DType out = DType::u8) {
  Layer L{};
  L.depthwise = true, L.k = k, L.stride = stride, L.pad = pad, L.relu = relu, L.out_dt = out;
  return L;
}
Layer dense(int o, int k, int stride, int pad) {
  Layer L{};
  L.depthwise = false, L.o = o, L.k = k, L.stride = stride, L.pad = pad, L.relu = 1;
  L.out_dt = DType::u8;
  return L;
}

TEST_CASE("dwconv engine: conv2d groups = C equals the scalar depthwise kernel", "[dwconv]") {
  struct Case {
    int h, w, c;
    std::vector<Layer> layers;
  };
  const Case cases[] = {
      {9, 7, 16, {dw(3, 1, 1, 1)}},
      {13, 11, 17, {dw(3, 2, 1, 0, DType::i8)}},
      {12, 12, 64, {dw(5, 1, 2, 1)}},
      {15, 10, 100, {dw(7, 2, 3, 0, DType::i8)}},
      {5, 5, 3, {dw(3, 1, 0, 1)}},
      {28, 28, 1, {dense(32, 3, 2, 1), dw(3, 1, 1, 1), dw(5, 2, 2, 1)}},  // dense -> dw -> dw
      {56, 56, 8, {dense(64, 1, 1, 0), dw(3, 1, 1, 1), dense(24, 1, 1, 0)}},  // enough MACs to split
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    INFO("case " << seed);
    check_net(make_net(c.h, c.w, c.c, c.layers, seed++));
  }
}

TEST_CASE("dwconv engine: save / load round trip keeps the depthwise node", "[dwconv]") {
  const Net net = make_net(10, 9, 24, {dw(3, 2, 1, 1)}, 77);
  const auto dir = std::filesystem::temp_directory_path() / "fq_dwconv_engine_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "dw.yaml").string();
  fq::save_graph(net.g, path);
  const fq::Graph g2 = fq::load_graph(path);
  fq::Session s(g2);
  REQUIRE(run(s, net.x) == net.want);
  std::filesystem::remove_all(dir);
}

// A graph whose conv2d node has `groups` = G and weights of shape w_shape; returns the error text
// of validate_graph ("" when it validates).
std::string check_error(int c, int64_t groups, std::vector<int64_t> w_shape, DType x_dt = DType::u8,
                        int stride = 1) {
  Builder bd;
  bd.tensor("image", x_dt, {1, 12, 12, c});
  bd.g.inputs = {"image"};
  int64_t numel = 1;
  for (int64_t d : w_shape) numel *= d;
  const int64_t o = w_shape[0];
  const bool f = x_dt == DType::f32;
  if (f) {
    bd.constant("w", DType::f32, w_shape, std::vector<float>(size_t(numel), 0.f));
    bd.constant("b", DType::f32, {o}, std::vector<float>(size_t(o), 0.f));
  } else {
    bd.constant("w", DType::i8, w_shape, std::vector<int8_t>(size_t(numel), 1));
    bd.constant("b", DType::i32, {o}, std::vector<int32_t>(size_t(o), 0));
    bd.constant("m", DType::i32, {o}, std::vector<int32_t>(size_t(o), 1 << 10));
    bd.constant("s", DType::i8, {o}, std::vector<int8_t>(size_t(o), 12));
  }
  const int oh = (12 + 2 - int(w_shape[1])) / stride + 1;
  bd.tensor("y", f ? DType::f32 : DType::u8, {1, oh, oh, o});
  bd.g.outputs = {"y"};
  std::vector<std::string> in{"image", "w", "b"};
  if (!f) in.insert(in.end(), {"m", "s"});
  bd.node("dw", "conv2d", in, {"y"}, {{"groups", groups}, {"pad", 1}, {"stride", stride}});
  try {
    fq::validate_graph(bd.g);
  } catch (const fq::Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("dwconv engine: groups other than 1 and C, and malformed depthwise nodes, are rejected",
          "[dwconv]") {
  CHECK(check_error(8, 8, {8, 3, 3, 1}).empty());  // the valid depthwise node
  CHECK(check_error(8, 1, {8, 3, 3, 8}).empty());  // the dense one
  const std::string g4 = check_error(8, 4, {8, 3, 3, 2});
  CHECK_THAT(g4, Catch::Contains("node 'dw' (conv2d)") &&
                     Catch::Contains("attribute 'groups' = 4: only 1 and the input channel count "
                                     "(8, depthwise) are supported"));
  CHECK_THAT(check_error(8, 8, {8, 3, 3, 8}),
             Catch::Contains("depthwise weight 'w' has shape [8,3,3,8], expected [8,KH,KW,1]"));
  CHECK_THAT(check_error(8, 8, {8, 9, 9, 1}),
             Catch::Contains("depthwise kernel 9x9 is outside 1x1..7x7"));
  CHECK_THAT(check_error(8, 8, {8, 3, 3, 1}, DType::u8, 3),
             Catch::Contains("depthwise conv2d needs stride 1 or 2"));
  CHECK_THAT(check_error(8, 8, {8, 3, 3, 1}, DType::f32),
             Catch::Contains("depthwise conv2d (groups > 1) has an integer form only"));
}

}  // namespace
