// Integer LLM ops in the engine (docs/llm_int.md): graphs of each op and a 2-layer toy decode model
// built in memory, run through Session on every supported ISA with 1, 2 and 3 threads, and compared
// byte for byte with direct calls of the scalar kernels (llm and matmul families). Also: state
// persistence and reset, save/load round trip, no allocation in run().
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <new>
#include <random>
#include <tuple>

#include "fq/fq.h"
#include "fq/kernels/cpu.h"
#include "fq/kernels/llm.h"
#include "fq/kernels/matmul.h"

#include "counting_new.h"

namespace {

namespace k = fq::k;
using fq::DType;
using Bytes = std::vector<uint8_t>;
using Tensors = std::map<std::string, Bytes>;  // tensor name -> bytes
using Attrs = std::map<std::string, int64_t>;

// ---- graph building
// ------------------------------------------------------------------------------

struct Builder {
  fq::Graph g;
  std::mt19937 rng{12345};

  void tensor(const std::string& name, DType dt, std::vector<int64_t> shape, bool state = false) {
    fq::TensorDef t;
    t.name = name, t.dtype = dt, t.shape = std::move(shape), t.is_state = state;
    g.add_tensor(t);
  }
  void input(const std::string& name, DType dt, std::vector<int64_t> shape) {
    tensor(name, dt, std::move(shape));
    g.inputs.push_back(name);
  }
  // A dynamic activation input: values and NAME_scale.
  void dyn_input(const std::string& name, DType dt, std::vector<int64_t> shape) {
    input(name + "_scale", DType::i32, {shape[0], 2});
    input(name, dt, std::move(shape));
  }
  void dyn(const std::string& name, DType dt, std::vector<int64_t> shape) {
    tensor(name + "_scale", DType::i32, {shape[0], 2});
    tensor(name, dt, std::move(shape));
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
            std::vector<std::string> out, const Attrs& attrs = {}) {
    fq::NodeDef n;
    n.name = name, n.op = op, n.inputs = std::move(in), n.outputs = std::move(out);
    for (const auto& [key, v] : attrs) n.attrs[key] = v;
    g.nodes.push_back(n);
  }

  int rand(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  template <class T>
  std::vector<T> randoms(size_t n, int lo, int hi) {
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(rand(lo, hi));
    return v;
  }
  // Row scales (mant in [2^14, 2^15), exp in [lo, hi]) as i32 pairs.
  std::vector<int32_t> scales(int64_t rows, int lo, int hi) {
    std::vector<int32_t> v(size_t(rows) * 2);
    for (int64_t r = 0; r < rows; ++r)
      v[2 * r] = rand(1 << 14, (1 << 15) - 1), v[2 * r + 1] = rand(lo, hi);
    return v;
  }

  // A dimatmul node NAME: x (i8, with x_scale) -> y (i16, with y_scale), random weights.
  // x_col >= 0: the node reads x's columns [x_col, x_col + kdim) (attribute x_cols).
  void dimatmul(const std::string& name, const std::string& x, const std::string& y, int64_t m,
                int64_t n, int64_t kdim, bool int4, bool bias, int group = 32, int64_t x_col = -1) {
    std::vector<std::string> in = {x, x + "_scale", name + ".w"};
    Attrs attrs = {{"w_exp", 40}};
    if (int4) {
      constant(name + ".w", DType::i4, {n, kdim}, randoms<uint8_t>(size_t(n * kdim / 2), 0, 255));
      const int64_t ng = (kdim + group - 1) / group;
      constant(name + ".gm", DType::i16, {n, ng},
               randoms<int16_t>(size_t(n * ng), 1 << 12, 1 << 14));
      constant(name + ".gs", DType::i8, {n}, randoms<int8_t>(size_t(n), 0, 8));
      in.insert(in.end(), {name + ".gm", name + ".gs"});
      attrs["group"] = group;
    } else {
      constant(name + ".w", DType::i8, {n, kdim}, randoms<int8_t>(size_t(n * kdim), -127, 127));
      constant(name + ".m", DType::i32, {n}, randoms<int32_t>(size_t(n), 1 << 29, 1 << 30));
      in.push_back(name + ".m");
    }
    if (bias) {
      constant(name + ".b", DType::i32, {n}, randoms<int32_t>(size_t(n), -(1 << 12), 1 << 12));
      in.push_back(name + ".b");
    }
    dyn(y, DType::i16, {m, n});
    node(name, "dimatmul", in, {y, y + "_scale"}, attrs);
    if (x_col >= 0) g.nodes.back().attrs["x_cols"] = std::vector<int64_t>{x_col, x_col + kdim};
  }

  fq::Graph done(std::vector<std::string> outputs) {
    g.outputs = std::move(outputs);
    fq::validate_graph(g);
    return g;
  }
};

// Rope table [S, hd/2, 2] (Q14 cos, sin) of llama2.c's angles.
std::vector<int16_t> rope_table(int s, int hd) {
  std::vector<int16_t> t;
  for (int p = 0; p < s; ++p)
    for (int i = 0; i < hd; i += 2) {
      const double a = p * std::pow(10000.0, -double(i) / hd);
      t.push_back(int16_t(std::lround(std::cos(a) * 16384)));
      t.push_back(int16_t(std::lround(std::sin(a) * 16384)));
    }
  return t;
}

// ---- the scalar-kernel reference: runs a graph node by node with direct kernel calls
// -------------

class Reference {
 public:
  explicit Reference(const fq::Graph& g) : g_(g) {}

  // Runs the graph on `inputs`; state tensors persist across calls until reset().
  void run(const Tensors& inputs) {
    for (const auto& [name, bytes] : inputs) val_[name] = bytes;
    for (const fq::NodeDef& n : g_.nodes) run_node(n);
  }
  void reset() {
    for (auto& [name, bytes] : val_)
      if (g_.tensor(name).is_state) std::fill(bytes.begin(), bytes.end(), 0);
  }
  Bytes outputs() {
    Bytes r;
    for (const std::string& name : g_.outputs)
      r.insert(r.end(), buf(name).begin(), buf(name).end());
    return r;
  }

 private:
  Bytes& buf(const std::string& name) {
    Bytes& b = val_[name];
    b.resize(g_.tensor(name).nbytes());
    return b;
  }
  template <class T>
  T* p(const std::string& name) {
    const fq::TensorDef& t = g_.tensor(name);
    if (t.is_const) return reinterpret_cast<T*>(const_cast<uint8_t*>(t.data.ptr));
    return reinterpret_cast<T*>(buf(name).data());
  }
  k::RowScale* rs(const std::string& name) { return p<k::RowScale>(name); }
  int64_t dim(const std::string& name, int i) { return g_.tensor(name).shape[size_t(i)]; }

  void run_node(const fq::NodeDef& n) {
    const k::LlmKernel& kern = *k::llm_kernels(&count_)[0];
    const auto& in = n.inputs;
    const auto& out = n.outputs;
    auto attr = [&](const char* key) { return int(n.attr_int(key, 0)); };
    const int64_t m = dim(in[0], 0);
    if (n.op == "embedding") {
      k::EmbeddingArgs a{p<int32_t>(in[0]), p<int8_t>(in[1]), rs(in[2]),         dim(in[1], 0),
                         dim(in[1], 1),     attr("exp"),      p<int32_t>(out[0])};
      kern.embedding(a, 0, m);
    } else if (n.op == "rmsnorm") {
      k::RmsnormArgs a{p<int32_t>(in[0]), dim(in[0], 1),   attr("eps_m"), attr("eps_e"),
                       attr("qmax"),      p<void>(out[0]), rs(out[1])};
      Bytes scratch(k::rmsnorm_scratch(a.d));
      kern.rmsnorm(a, 0, m, scratch.data());
    } else if (n.op == "dimatmul") {
      dimatmul(n);
    } else if (n.op == "rope") {
      k::RopeArgs a{p<int16_t>(in[0]), dim(in[0], 1),      attr("head_dim"),
                    p<int16_t>(in[3]), dim(in[3], 0),      p<int32_t>(in[2])[0],
                    rs(in[1]),         p<int16_t>(out[0]), rs(out[1])};
      kern.rope(a, 0, m);
    } else if (n.op == "attention") {
      k::AttentionArgs a{};
      a.q = p<int16_t>(in[0]), a.k = p<int16_t>(in[2]), a.v = p<int16_t>(in[4]);
      a.qs = rs(in[1]), a.ks = rs(in[3]), a.vs = rs(in[5]);
      a.kc = p<int8_t>(in[6]), a.kcs = rs(in[7]), a.vc = p<int8_t>(in[8]), a.vcs = rs(in[9]);
      a.rows = m, a.heads = attr("n_heads"), a.kv_heads = attr("n_kv_heads");
      a.head_dim = int(dim(in[0], 1) / a.heads);
      a.cache_rows = dim(in[6], 0);
      a.pos = p<int32_t>(in[10])[0];
      a.clip_q16 = n.attr_int("clip_q16", 0), a.qmax = attr("qmax");
      a.y = p<int8_t>(out[0]), a.ys = rs(out[1]);
      std::vector<int64_t> work(size_t(m * dim(in[0], 1)));
      std::vector<int32_t> work_exp(size_t(m * a.heads));
      a.work = work.data(), a.work_exp = work_exp.data();
      Bytes scratch(k::attention_scratch(a));
      kern.attention_cache(a, scratch.data());
      kern.attention_heads(a, 0, m * a.heads, scratch.data());
      kern.attention_out(a, 0, m, scratch.data());
    } else if (n.op == "swiglu") {
      k::SwigluArgs a{p<int16_t>(in[0]), p<int16_t>(in[2]), dim(in[0], 1),   rs(in[1]),
                      rs(in[3]),         attr("qmax"),      p<void>(out[0]), rs(out[1])};
      Bytes scratch(k::swiglu_scratch(a.n));
      kern.swiglu(a, 0, m, scratch.data());
    } else if (n.op == "hadamard") {
      k::HadamardArgs a{p<int8_t>(in[0]), rs(in[1]),         dim(in[0], 1),
                        attr("qmax"),     p<int8_t>(out[0]), rs(out[1])};
      Bytes scratch(k::hadamard_scratch(a.n));
      kern.hadamard(a, 0, m, scratch.data());
    } else if (n.op == "residual_add") {
      k::ResidualArgs a{p<int32_t>(in[0]), p<int16_t>(in[1]), rs(in[2]),
                        dim(in[0], 1),     attr("exp"),       p<int32_t>(out[0])};
      kern.residual_add(a, 0, m);
    } else {
      FAIL("no reference for op " << n.op);
    }
  }

  void dimatmul(const fq::NodeDef& n) {
    const k::MatmulKernel& kern = *k::matmul_kernels(&count_)[0];
    const auto& in = n.inputs;
    const fq::TensorDef& w = g_.tensor(in[2]);
    const bool i4 = w.dtype == DType::i4;
    k::MatmulShape s;
    s.m = dim(in[0], 0), s.n = int(w.shape[0]), s.k = int(w.shape[1]);
    s.format = i4 ? k::WeightFormat::i4 : k::WeightFormat::i8;
    s.group = i4 ? int(n.attr_int("group", 0)) : 0;
    k::MatmulWeights mw;
    mw.w = w.data.ptr;
    if (i4)
      mw.gmult = p<int16_t>(in[3]), mw.gshift = p<int8_t>(in[4]);
    else
      mw.mult = p<int32_t>(in[3]);
    if (in.size() == (i4 ? 6u : 5u)) mw.bias = p<int32_t>(in.back());
    Bytes packed(kern.packed_size(s));
    kern.pack(s, mw, packed.data());
    std::vector<int8_t> row_shift(size_t(s.m));
    k::MatmulArgs a;
    const std::vector<int64_t> cols = n.attr_ints("x_cols");  // [begin, end) or all of x
    a.a = p<int8_t>(in[0]) + (cols.empty() ? 0 : cols[0]), a.lda = dim(in[0], 1), a.packed = packed.data();
    a.e.op = k::MatmulOp::dynamic, a.e.out_type = k::OutType::i16, a.e.row_shift = row_shift.data();
    a.y = p<int16_t>(n.outputs[0]), a.ldy = s.n;
    Bytes workspace(kern.workspace_size(s, a.e) + 1), scratch(kern.scratch_size(s, a.e) + 1);
    a.workspace = workspace.data();
    k::matmul_run_all(kern, s, a, scratch.data());
    const k::RowScale* xs = rs(in[1]);
    k::RowScale* ys = rs(n.outputs[1]);
    const int w_exp = int(n.attr_int("w_exp", 0));
    for (int64_t r = 0; r < s.m; ++r)
      ys[r] = xs[r].mant == 0 ? k::RowScale{}
                              : k::RowScale{xs[r].mant, xs[r].exp + w_exp - row_shift[r]};
  }

  const fq::Graph& g_;
  Tensors val_;
  size_t count_ = 0;
};

// ---- running and comparing
// ------------------------------------------------------------------------

// Random graph inputs: row scales (tensors named *_scale) valid, one row in 5 all-zero with a zero
// scale; `fixed` gives the values of the named inputs (ids, pos).
Tensors random_inputs(const fq::Graph& g, std::mt19937& rng,
                      const std::map<std::string, std::vector<int32_t>>& fixed) {
  Tensors r;
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (const std::string& name : g.inputs) {
    const fq::TensorDef& t = g.tensor(name);
    Bytes b(t.nbytes());
    if (auto it = fixed.find(name); it != fixed.end()) {
      REQUIRE(it->second.size() * 4 == b.size());
      std::memcpy(b.data(), it->second.data(), b.size());
    } else if (name.size() > 6 && name.compare(name.size() - 6, 6, "_scale") == 0) {
      auto* v = reinterpret_cast<int32_t*>(b.data());
      for (int64_t i = 0; i < t.shape[0]; ++i)
        if (uni(0, 4) != 0) v[2 * i] = uni(1 << 14, (1 << 15) - 1), v[2 * i + 1] = uni(8, 30);
    } else {
      for (int64_t i = 0; i < t.numel(); ++i) {
        switch (t.dtype) {
          case DType::i8:
            b[size_t(i)] = uint8_t(uni(0, 255));
            break;
          case DType::i16:
            reinterpret_cast<int16_t*>(b.data())[i] = int16_t(uni(-32768, 32767));
            break;
          case DType::i32:
            reinterpret_cast<int32_t*>(b.data())[i] = uni(-(1 << 22), 1 << 22);
            break;
          default:
            FAIL("no random input of dtype " << fq::dtype_name(t.dtype));
        }
      }
    }
    r[name] = b;
  }
  // All-zero rows of dynamic inputs go with their zero scales.
  for (const std::string& name : g.inputs) {
    const fq::TensorDef& t = g.tensor(name);
    auto it = r.find(name + "_scale");
    if (it == r.end()) continue;
    const auto* s = reinterpret_cast<const int32_t*>(it->second.data());
    const size_t row = t.nbytes() / size_t(t.shape[0]);
    for (int64_t i = 0; i < t.shape[0]; ++i)
      if (s[2 * i] == 0) std::memset(r[name].data() + size_t(i) * row, 0, row);
  }
  return r;
}

Bytes run_session(fq::Session& s, const Tensors& inputs) {
  for (const auto& [name, bytes] : inputs) {
    fq::TensorView v = s.input(name);
    REQUIRE(v.bytes == bytes.size());
    std::memcpy(v.data, bytes.data(), bytes.size());
  }
  s.run();
  Bytes out;
  for (size_t i = 0; i < s.num_outputs(); ++i) {
    const fq::TensorView v = s.output(i);
    out.insert(out.end(), static_cast<uint8_t*>(v.data), static_cast<uint8_t*>(v.data) + v.bytes);
  }
  return out;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> r;
  for (auto i :
       {k::Isa::scalar, k::Isa::avx2, k::Isa::avx512, k::Isa::amx, k::Isa::neon, k::Isa::neondot})
    if (k::isa_supported(i)) r.push_back(k::isa_name(i));
  return r;
}

// The scalar-kernel reference's outputs for each run in order (state carried over).
std::vector<Bytes> reference(const fq::Graph& g, const std::vector<Tensors>& runs) {
  Reference ref(g);
  std::vector<Bytes> r;
  for (const Tensors& in : runs) {
    ref.run(in);
    r.push_back(ref.outputs());
  }
  return r;
}

// Runs `runs` in order (state carried over) on every ISA and 1, 2, 3 threads; every output byte
// must equal the scalar-kernel reference. Returns the reference outputs.
std::vector<Bytes> check_graph(const fq::Graph& g, const std::vector<Tensors>& runs) {
  const std::vector<Bytes> want = reference(g, runs);
  size_t nonzero = 0, total = 0;
  for (const Bytes& b : want)
    for (uint8_t v : b) nonzero += v != 0, ++total;
  REQUIRE(nonzero > total / 4);  // real work, not all zeros
  for (const std::string& isa : supported_isas())
    for (int t : {1, 2, 3}) {
      fq::Options o;
      o.isa = isa, o.threads = t;
      fq::Session s(g, o);
      for (size_t r = 0; r < runs.size(); ++r) {
        INFO("isa " << isa << ", threads " << t << ", run " << r);
        REQUIRE(run_session(s, runs[r]) == want[r]);
      }
    }
  return want;
}

// Several runs of random inputs with `fixed` values per run.
std::vector<Tensors> runs_of(
    const fq::Graph& g, const std::vector<std::map<std::string, std::vector<int32_t>>>& fixed) {
  std::mt19937 rng(99);
  std::vector<Tensors> r;
  for (const auto& f : fixed) r.push_back(random_inputs(g, rng, f));
  return r;
}

// ---- the toy decode model
// -------------------------------------------------------------------------

constexpr int kDim = 16, kHeads = 4, kKvHeads = 2, kHidden = 24, kVocab = 32, kSeq = 8, kE = 16;

// Layer 0 uses int8 weights, layer 1 int4 FFN weights and an online Hadamard before w2; the
// classifier is int4.
fq::Graph make_model() {
  Builder b;
  b.input("tokens", DType::i32, {1});
  b.input("pos", DType::i32, {1});
  b.constant("tok_emb", DType::i8, {kVocab, kDim}, b.randoms<int8_t>(kVocab * kDim, -127, 127));
  b.constant("tok_emb_scale", DType::i32, {kVocab, 2}, b.scales(kVocab, 20, 24));
  b.constant("rope_table", DType::i16, {kSeq, 2, 2}, rope_table(kSeq, kDim / kHeads));
  b.tensor("x0", DType::i32, {1, kDim});
  b.node("embed", "embedding", {"tokens", "tok_emb", "tok_emb_scale"}, {"x0"}, {{"exp", kE}});
  const Attrs norm = {{"eps_m", 42950}, {"eps_e", 0}, {"qmax", 127}};
  const int kv = kDim / kHeads * kKvHeads;
  std::string x = "x0";
  for (int l = 0; l < 2; ++l) {
    const std::string p = "layer" + std::to_string(l) + ".";
    const bool i4 = l == 1;
    b.dyn(p + "xb", DType::i8, {1, kDim});
    b.node(p + "att_norm", "rmsnorm", {x}, {p + "xb", p + "xb_scale"}, norm);
    b.dimatmul(p + "wq", p + "xb", p + "q", 1, kDim, kDim, false, false);
    b.dimatmul(p + "wk", p + "xb", p + "k", 1, kv, kDim, false, true);
    b.dimatmul(p + "wv", p + "xb", p + "v", 1, kv, kDim, false, false);
    b.dyn(p + "qr", DType::i16, {1, kDim});
    b.dyn(p + "kr", DType::i16, {1, kv});
    b.node(p + "rope_q", "rope", {p + "q", p + "q_scale", "pos", "rope_table"},
           {p + "qr", p + "qr_scale"}, {{"head_dim", kDim / kHeads}});
    b.node(p + "rope_k", "rope", {p + "k", p + "k_scale", "pos", "rope_table"},
           {p + "kr", p + "kr_scale"}, {{"head_dim", kDim / kHeads}});
    b.tensor(p + "k_cache", DType::i8, {kSeq, kv}, true);
    b.tensor(p + "k_cache_scale", DType::i32, {kSeq, kKvHeads, 2}, true);
    b.tensor(p + "v_cache", DType::i8, {kSeq, kv}, true);
    b.tensor(p + "v_cache_scale", DType::i32, {kSeq, kKvHeads, 2}, true);
    b.dyn(p + "a", DType::i8, {1, kDim});
    b.node(p + "attention", "attention",
           {p + "qr", p + "qr_scale", p + "kr", p + "kr_scale", p + "v", p + "v_scale",
            p + "k_cache", p + "k_cache_scale", p + "v_cache", p + "v_cache_scale", "pos"},
           {p + "a", p + "a_scale"},
           {{"n_heads", kHeads}, {"n_kv_heads", kKvHeads}, {"clip_q16", 12 << 16}, {"qmax", 127}});
    b.dimatmul(p + "wo", p + "a", p + "o", 1, kDim, kDim, false, false);
    b.tensor(p + "h", DType::i32, {1, kDim});
    b.node(p + "att_res", "residual_add", {x, p + "o", p + "o_scale"}, {p + "h"}, {{"exp", kE}});
    b.dyn(p + "hb", DType::i8, {1, kDim});
    b.node(p + "ffn_norm", "rmsnorm", {p + "h"}, {p + "hb", p + "hb_scale"}, norm);
    b.dimatmul(p + "w1", p + "hb", p + "g", 1, kHidden, kDim, i4, i4);
    b.dimatmul(p + "w3", p + "hb", p + "u", 1, kHidden, kDim, i4, false);
    b.dyn(p + "s", DType::i8, {1, kHidden});
    b.node(p + "swiglu", "swiglu", {p + "g", p + "g_scale", p + "u", p + "u_scale"},
           {p + "s", p + "s_scale"}, {{"qmax", 127}});
    std::string s = p + "s";
    if (i4) {
      b.dyn(p + "sh", DType::i8, {1, kHidden});
      b.node(p + "hadamard", "hadamard", {s, s + "_scale"}, {p + "sh", p + "sh_scale"},
             {{"qmax", 127}});
      s = p + "sh";
    }
    b.dimatmul(p + "w2", s, p + "f", 1, kDim, kHidden, i4, false);
    b.tensor(p + "x", DType::i32, {1, kDim});
    b.node(p + "ffn_res", "residual_add", {p + "h", p + "f", p + "f_scale"}, {p + "x"},
           {{"exp", kE}});
    x = p + "x";
  }
  b.dyn("xf", DType::i8, {1, kDim});
  b.node("final_norm", "rmsnorm", {x}, {"xf", "xf_scale"}, norm);
  b.dimatmul("wcls", "xf", "logits", 1, kVocab, kDim, true, false);
  return b.done({"logits", "logits_scale"});
}

// Decode runs: tokens at positions 0..S-1, then an out-of-range position and token.
std::vector<Tensors> decode_runs(const fq::Graph& g) {
  std::vector<std::map<std::string, std::vector<int32_t>>> fixed;
  const int tokens[kSeq] = {3, 17, 5, 31, 0, 9, 22, 14};
  for (int p = 0; p < kSeq; ++p) fixed.push_back({{"tokens", {tokens[p]}}, {"pos", {p}}});
  fixed.push_back({{"tokens", {4}}, {"pos", {kSeq}}});
  fixed.push_back({{"tokens", {kVocab + 3}}, {"pos", {-1}}});
  return runs_of(g, fixed);
}

}  // namespace

// ---- single ops
// ------------------------------------------------------------------------------------

TEST_CASE("integer embedding matches the scalar kernel (ids out of range give zeros)") {
  Builder b;
  b.input("ids", DType::i32, {6});
  b.constant("table", DType::i8, {50, 64}, b.randoms<int8_t>(50 * 64, -128, 127));
  std::vector<int32_t> ts = b.scales(50, 14, 30);
  ts[2 * 7] = ts[2 * 7 + 1] = 0;  // an all-zero scale row
  b.constant("table_scale", DType::i32, {50, 2}, ts);
  b.tensor("x", DType::i32, {6, 64});
  b.node("embed", "embedding", {"ids", "table", "table_scale"}, {"x"}, {{"exp", 20}});
  const fq::Graph g = b.done({"x"});
  check_graph(
      g, runs_of(g, {{{"ids", {0, 49, 7, -1, 50, 12}}}, {{"ids", {3, 3, 1 << 30, 8, 9, 10}}}}));
}

TEST_CASE("integer rmsnorm matches the scalar kernel (i8 and i16 outputs)") {
  for (const auto& [rows, d, dt, qmax] :
       {std::tuple<int64_t, int64_t, DType, int64_t>{16, 16384, DType::i8, 127},
        {3, 40, DType::i16, 1000}}) {
    Builder b;
    b.input("x", DType::i32, {rows, d});
    b.dyn("y", dt, {rows, d});
    b.node("norm", "rmsnorm", {"x"}, {"y", "y_scale"},
           {{"eps_m", 5}, {"eps_e", -3}, {"qmax", qmax}});
    const fq::Graph g = b.done({"y", "y_scale"});
    check_graph(g, runs_of(g, {{}, {}}));
  }
}

TEST_CASE("dimatmul matches the scalar matmul kernel (int8 and int4, with and without bias)") {
  struct Case {
    int64_t m, n, k;
    bool int4, bias;
    int group;
  };
  for (const Case& c : {Case{4, 300, 512, false, true, 0}, Case{4, 300, 512, true, true, 64},
                        Case{3, 40, 100, true, false, 32}, Case{1, 33, 256, true, true, 128},
                        Case{2, 17, 30, false, false, 0}}) {
    INFO("m " << c.m << " n " << c.n << " k " << c.k << " int4 " << c.int4);
    Builder b;
    b.dyn_input("x", DType::i8, {c.m, c.k});
    b.dimatmul("mm", "x", "y", c.m, c.n, c.k, c.int4, c.bias, c.group);
    const fq::Graph g = b.done({"y", "y_scale"});
    check_graph(g, runs_of(g, {{}, {}}));
  }
}

TEST_CASE("dimatmul with x_cols reads a column range of x in place (RWKV v6's LoRA fc2)") {
  // Three nodes on one x [rows, 160]: the first, a middle and the last 32 or 64 columns; int8 and
  // int4, one and several rows. The reference reads the range through a strided A.
  for (const int64_t m : {1, 5})
    for (const bool int4 : {false, true}) {
      INFO("m " << m << " int4 " << int4);
      Builder b;
      b.dyn_input("x", DType::i8, {m, 160});
      b.dimatmul("lo", "x", "y0", m, 40, 32, int4, true, 32, 0);
      b.dimatmul("mid", "x", "y1", m, 17, 64, int4, false, 32, 32);
      b.dimatmul("hi", "x", "y2", m, 128, 32, int4, true, 32, 128);
      const fq::Graph g = b.done({"y0", "y0_scale", "y1", "y1_scale", "y2", "y2_scale"});
      check_graph(g, runs_of(g, {{}, {}}));
    }
  // A range past x's columns, or empty, or not two integers: one clear error naming the node.
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{130, 162}, {32, 32}, {-1, 31}, {0}}) {
    Builder b;
    b.dyn_input("x", DType::i8, {1, 160});
    b.dimatmul("mm", "x", "y", 1, 8, 32, false, false);
    b.g.nodes.back().attrs["x_cols"] = bad;
    REQUIRE_THROWS_WITH(b.done({"y", "y_scale"}), Catch::Contains("'mm'") && Catch::Contains("x_cols"));
  }
}

TEST_CASE("integer rope matches the scalar kernel (rows past the table give zeros)") {
  Builder b;
  b.dyn_input("x", DType::i16, {3, 64});
  b.input("pos", DType::i32, {1});
  b.constant("table", DType::i16, {10, 8, 2}, rope_table(10, 16));
  b.dyn("y", DType::i16, {3, 64});
  b.node("rope", "rope", {"x", "x_scale", "pos", "table"}, {"y", "y_scale"}, {{"head_dim", 16}});
  const fq::Graph g = b.done({"y", "y_scale"});
  check_graph(g, runs_of(g, {{{"pos", {0}}}, {{"pos", {7}}}, {{"pos", {5}}}, {{"pos", {9}}}}));
  // Out-of-range positions: zeros, never a crash.
  Reference ref(g);
  fq::Session s(g);
  for (int pos : {-5, 10, 1 << 30, -(1 << 30)}) {
    const Tensors in = runs_of(g, {{{"pos", {pos}}}})[0];
    const Bytes out = run_session(s, in);
    ref.run(in);
    REQUIRE(out == ref.outputs());
    REQUIRE(std::count(out.begin(), out.end(), 0) == int64_t(out.size()));
  }
}

TEST_CASE("integer attention matches the scalar kernel; the caches persist and reset") {
  // 8 heads, 2 kv heads, head_dim 64, 128 cache rows, 4 rows per call: the heads step is large
  // enough to be split over threads.
  Builder b;
  b.dyn_input("q", DType::i16, {4, 512});
  b.dyn_input("k", DType::i16, {4, 128});
  b.dyn_input("v", DType::i16, {4, 128});
  b.input("pos", DType::i32, {1});
  b.tensor("kc", DType::i8, {128, 128}, true);
  b.tensor("kcs", DType::i32, {128, 2, 2}, true);
  b.tensor("vc", DType::i8, {128, 128}, true);
  b.tensor("vcs", DType::i32, {128, 2, 2}, true);
  b.dyn("y", DType::i8, {4, 512});
  b.node("att", "attention",
         {"q", "q_scale", "k", "k_scale", "v", "v_scale", "kc", "kcs", "vc", "vcs", "pos"},
         {"y", "y_scale"},
         {{"n_heads", 8}, {"n_kv_heads", 2}, {"clip_q16", 15 << 16}, {"qmax", 100}});
  const fq::Graph g = b.done({"y", "y_scale"});
  // Positions 0, 4, ..., then out of range (zeros, caches untouched), then 124 (the last rows).
  std::vector<std::map<std::string, std::vector<int32_t>>> fixed;
  for (int p : {0, 4, 8, 12, 125, -1, 16, 124}) fixed.push_back({{"pos", {p}}});
  const std::vector<Tensors> runs = runs_of(g, fixed);
  const std::vector<Bytes> want = check_graph(g, runs);
  for (size_t r : {4, 5})
    REQUIRE(std::count(want[r].begin(), want[r].end(), 0) == int64_t(want[r].size()));

  fq::Session s(g);
  REQUIRE(s.state_bytes() >= 2 * (128 * 128 + 128 * 2 * 8));
  for (size_t r = 0; r < 3; ++r) REQUIRE(run_session(s, runs[r]) == want[r]);
  // State persists: position 4 after position 0 differs from position 4 on fresh caches.
  fq::Session fresh(g);
  REQUIRE(run_session(fresh, runs[1]) != want[1]);
  // reset_state() zeroes the caches: the session then behaves as new.
  s.reset_state();
  for (size_t r = 0; r < 3; ++r) REQUIRE(run_session(s, runs[r]) == want[r]);
}

TEST_CASE("integer swiglu matches the scalar kernel (i8 and i16 outputs)") {
  for (const auto& [dt, qmax] : {std::pair<DType, int64_t>{DType::i8, 127}, {DType::i16, 32767}}) {
    Builder b;
    b.dyn_input("gate", DType::i16, {4, 1000});
    b.dyn_input("up", DType::i16, {4, 1000});
    b.dyn("y", dt, {4, 1000});
    b.node("swiglu", "swiglu", {"gate", "gate_scale", "up", "up_scale"}, {"y", "y_scale"},
           {{"qmax", qmax}});
    const fq::Graph g = b.done({"y", "y_scale"});
    check_graph(g, runs_of(g, {{}, {}}));
  }
}

TEST_CASE("hadamard matches the scalar kernel") {
  for (int64_t n : {1, 64, 96, 160, 224, 352}) {
    INFO("n " << n);
    Builder b;
    b.dyn_input("x", DType::i8, {3, n});
    b.dyn("y", DType::i8, {3, n});
    b.node("had", "hadamard", {"x", "x_scale"}, {"y", "y_scale"}, {{"qmax", 120}});
    const fq::Graph g = b.done({"y", "y_scale"});
    check_graph(g, runs_of(g, {{}, {}}));
  }
}

TEST_CASE("residual_add matches the scalar kernel") {
  Builder b;
  b.input("h", DType::i32, {4, 100});
  b.dyn_input("y", DType::i16, {4, 100});
  b.tensor("out", DType::i32, {4, 100});
  b.node("res", "residual_add", {"h", "y", "y_scale"}, {"out"}, {{"exp", 16}});
  const fq::Graph g = b.done({"out"});
  check_graph(g, runs_of(g, {{}, {}}));
}

// ---- the toy decode model
// --------------------------------------------------------------------------

TEST_CASE("a 2-layer integer decode model matches the scalar kernels over a sequence") {
  const fq::Graph g = make_model();
  const std::vector<Tensors> runs = decode_runs(g);
  const std::vector<Bytes> want = check_graph(g, runs);
  // Every in-range step gives logits; kernels are named after their family and variant.
  for (int p = 0; p < kSeq; ++p) REQUIRE(std::count(want[p].begin(), want[p].begin() + 64, 0) < 64);
  fq::Session s(g);
  for (const fq::NodeReport& r : s.nodes()) {
    INFO(r.name);
    REQUIRE(r.kernel.find('/') != std::string::npos);
  }
  // State persists across runs and reset_state() starts the sequence over.
  for (size_t r = 0; r < 4; ++r) REQUIRE(run_session(s, runs[r]) == want[r]);
  s.reset_state();
  for (size_t r = 0; r < 4; ++r) REQUIRE(run_session(s, runs[r]) == want[r]);
}

TEST_CASE("a saved and reloaded integer model (int8 and int4 weights) runs identically") {
  const fq::Graph g = make_model();
  const std::string dir = std::string(FQ_BINARY_DIR) + "/llm-int-test";
  std::filesystem::create_directories(dir);
  fq::save_graph(g, dir + "/toy.yaml");
  const fq::Graph loaded = fq::load_graph(dir + "/toy.yaml");
  const std::vector<Tensors> runs = decode_runs(g);
  const std::vector<Bytes> want = reference(g, runs);
  fq::Session s(loaded);
  for (size_t r = 0; r < runs.size(); ++r) REQUIRE(run_session(s, runs[r]) == want[r]);
  std::filesystem::remove_all(dir);
}

TEST_CASE("run() of the integer model allocates nothing") {
  const fq::Graph g = make_model();
  const std::vector<Tensors> runs = decode_runs(g);
  for (int t : {1, 2}) {
    fq::Options o;
    o.threads = t;
    fq::Session s(g, o);
    std::vector<fq::TensorView> inputs;
    for (size_t i = 0; i < s.num_inputs(); ++i) inputs.push_back(s.input(i));
    run_session(s, runs[0]);  // warm
    g_news = 0;
    g_counting = true;
    for (const Tensors& in : runs) {
      for (const fq::TensorView& v : inputs) std::memcpy(v.data, in.at(v.name).data(), v.bytes);
      s.run();
    }
    g_counting = false;
    INFO("threads " << t);
    REQUIRE(g_news.load() == 0);
  }
}

// ---- checks that need constant values or large shapes (the YAML corpus covers the rest)
// -----------

namespace {
// Builds a one-node graph with `make` and expects validation to fail naming `node` and `what`.
void expect_invalid(const std::function<void(Builder&)>& make, const std::string& node,
                    const std::string& what) {
  Builder b;
  make(b);
  std::string msg;
  try {
    b.done({b.g.nodes.back().outputs[0]});
  } catch (const fq::Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  REQUIRE(msg.find("node '" + node + "'") != std::string::npos);
  REQUIRE(msg.find(what) != std::string::npos);
  REQUIRE(msg.find('\n') == std::string::npos);
}

void int4_matmul(Builder& b, int64_t k, int8_t gshift, int16_t gmult) {
  b.dyn_input("x", DType::i8, {1, k});
  b.constant("w", DType::i4, {2, k}, std::vector<uint8_t>(size_t(k), 0x77));
  const int64_t ng = (k + 31) / 32;
  b.constant("gm", DType::i16, {2, ng}, std::vector<int16_t>(size_t(2 * ng), gmult));
  b.constant("gs", DType::i8, {2}, std::vector<int8_t>{0, gshift});
  b.dyn("y", DType::i16, {1, 2});
  b.node("mm", "dimatmul", {"x", "x_scale", "w", "gm", "gs"}, {"y", "y_scale"},
         {{"w_exp", 40}, {"group", 32}});
}

void int8_matmul(Builder& b, int64_t k, int32_t mult, int32_t bias) {
  b.dyn_input("x", DType::i8, {1, k});
  b.constant("w", DType::i8, {1, k}, std::vector<int8_t>(size_t(k), 1));
  b.constant("m", DType::i32, {1}, std::vector<int32_t>{mult});
  b.constant("b", DType::i32, {1}, std::vector<int32_t>{bias});
  b.dyn("y", DType::i16, {1, 1});
  b.node("mm", "dimatmul", {"x", "x_scale", "w", "m", "b"}, {"y", "y_scale"}, {{"w_exp", 40}});
}
}  // namespace

TEST_CASE("integer LLM ops reject bad constants and shapes with one-line errors") {
  expect_invalid([](Builder& b) { int4_matmul(b, 64, 31, 100); }, "mm",
                 "tensor 'gs' element 1 = 31 is outside [0, 30]");
  expect_invalid([](Builder& b) { int4_matmul(b, 256, 30, 32767); }, "mm",
                 "row 1 of weight 'w' can overflow");
  expect_invalid([](Builder& b) { int4_matmul(b, 63, 0, 1); }, "mm", "needs an even K, has 63");
  expect_invalid([](Builder& b) { int8_matmul(b, 64, -1, 0); }, "mm",
                 "tensor 'm' element 0 = -1 is outside [0, 2147483647]");
  expect_invalid([](Builder& b) { int8_matmul(b, 64, 1, 2147000000); }, "mm",
                 "tensor 'b' element 0 = 2147000000 is outside");
  expect_invalid([](Builder& b) { int8_matmul(b, 131072, 1, 0); }, "mm",
                 "K = 131072 exceeds the i32 accumulator budget (131071)");
  expect_invalid(
      [](Builder& b) {
        b.input("ids", DType::i32, {1});
        b.constant("t", DType::i8, {2, 4}, std::vector<int8_t>(8, 1));
        b.constant("ts", DType::i32, {2, 2}, std::vector<int32_t>{1 << 14, 3, 100, 3});
        b.tensor("x", DType::i32, {1, 4});
        b.node("embed", "embedding", {"ids", "t", "ts"}, {"x"}, {{"exp", 16}});
      },
      "embed", "tensor 'ts' row 1 = (100, 3): a row scale is");
  expect_invalid(
      [](Builder& b) {
        b.dyn_input("x", DType::i16, {1, 4});
        b.input("pos", DType::i32, {1});
        b.constant("t", DType::i16, {2, 2, 2},
                   std::vector<int16_t>{16384, 0, 0, 20000, 1, 2, 3, 4});
        b.dyn("y", DType::i16, {1, 4});
        b.node("rope", "rope", {"x", "x_scale", "pos", "t"}, {"y", "y_scale"}, {{"head_dim", 4}});
      },
      "rope", "tensor 't' element 3 = 20000 is outside [-16384, 16384]");
  expect_invalid(
      [](Builder& b) {
        b.input("x", DType::i32, {1, 16385});
        b.dyn("y", DType::i8, {1, 16385});
        b.node("norm", "rmsnorm", {"x"}, {"y", "y_scale"},
               {{"eps_m", 0}, {"eps_e", 0}, {"qmax", 127}});
      },
      "norm", "tensor 'x' has 16385 columns, at most 16384");
  expect_invalid(
      [](Builder& b) {
        b.dyn_input("x", DType::i8, {1, 24 * 3});
        b.dyn("y", DType::i8, {1, 72});
        b.node("had", "hadamard", {"x", "x_scale"}, {"y", "y_scale"}, {{"qmax", 127}});
      },
      "had", "width 72 is not 2^k times 1, 12, 20, 28 or 44");
  expect_invalid(
      [](Builder& b) {
        b.dyn_input("q", DType::i16, {1, 512});
        b.dyn_input("k", DType::i16, {1, 512});
        b.dyn_input("v", DType::i16, {1, 512});
        b.input("pos", DType::i32, {1});
        for (const char* c : {"kc", "vc"}) {
          b.tensor(c, DType::i8, {4, 512}, true);
          b.tensor(std::string(c) + "s", DType::i32, {4, 1, 2}, true);
        }
        b.dyn("y", DType::i8, {1, 512});
        b.node("att", "attention",
               {"q", "q_scale", "k", "k_scale", "v", "v_scale", "kc", "kcs", "vc", "vcs", "pos"},
               {"y", "y_scale"},
               {{"n_heads", 1}, {"n_kv_heads", 1}, {"clip_q16", 1}, {"qmax", 127}});
      },
      "att", "head_dim 512 exceeds 256");
}
