// The integer decode graph of docs/llm_int.md from a quantized TModel (quantize.h).
#include <algorithm>
#include <cmath>
#include <utility>

#include "graph_builder.h"
#include "quantize.h"

namespace fq::llama {


// Packs int4 codes [N][K] (K even) two per byte, low nibble = even k.
std::vector<uint8_t> pack_i4(const std::vector<int8_t>& q, int n, int k) {
  std::vector<uint8_t> p(size_t(n) * ((k + 1) / 2), 0);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < k; ++c) {
      const uint8_t nib = uint8_t(q[size_t(r) * k + c]) & 0xF;
      uint8_t& b = p[size_t(r) * ((k + 1) / 2) + c / 2];
      b |= (c % 2 == 0) ? nib : uint8_t(nib << 4);
    }
  return p;
}

void add_dimatmul(tools::GraphBuilder& b, const std::string& name, const std::string& wname,
                  const QLinear& q, const std::pair<std::string, std::string>& x,
                  const std::pair<std::string, std::string>& y, int64_t x_col) {
  const int n = q.deq.rows, k = q.deq.cols;
  if (q.w_exp < 0 || q.w_exp > 124)
    throw Error(wname + ": weight exponent " + std::to_string(q.w_exp) +
                " outside [0, 124] (weights too large or too small for the integer encoding)");
  std::map<std::string, Attr> attrs{{"w_exp", int64_t(q.w_exp)}};
  if (x_col >= 0) attrs["x_cols"] = std::vector<int64_t>{x_col, x_col + k};
  std::vector<std::string> in{x.first, x.second, wname};
  if (!q.codebook.empty()) {  // indices as little-endian bitstreams per row (matmul.h)
    const int64_t rb = (int64_t{k} * q.bits + 7) / 8, ng = (k + q.group - 1) / q.group;
    std::vector<uint8_t> bits;
    for (int r = 0; r < n; ++r)  // each row starts on a byte
      tools::pack_bits(reinterpret_cast<const uint8_t*>(q.q.data()) + size_t(r) * size_t(k), size_t(k), q.bits, &bits);
    b.constant(wname, DType::u8, {n, rb}, bits.data());
    const int64_t R = q.codebook_rows, nb = (n + R - 1) / R;
    if (q.codebook.size() != size_t(nb * ng) << q.bits) throw Error(wname + ": internal: codebook size");
    in.push_back(b.constant(wname + ".codebook", DType::i8, {nb, ng, int64_t{1} << q.bits}, q.codebook.data()));
    // row scales in 16 bits when they fit (the engine widens them at load)
    if (*std::max_element(q.mult.begin(), q.mult.end()) <= 32767) {
      const std::vector<int16_t> m16(q.mult.begin(), q.mult.end());
      in.push_back(b.constant(wname + ".mult", DType::i16, {n}, m16.data()));
    } else {
      in.push_back(b.constant(wname + ".mult", DType::i32, {n}, q.mult.data()));
    }
    attrs["bits"] = int64_t(q.bits);
    attrs["group"] = int64_t(q.group);
    if (R > 1) attrs["codebook_rows"] = R;
  } else if (q.bits == 8) {
    b.constant(wname, DType::i8, {n, k}, q.q.data());
    in.push_back(b.constant(wname + ".mult", DType::i32, {n}, q.mult.data()));
  } else {
    if (k % 2) throw Error(wname + ": int4 weights need an even K");
    const int ng = (k + q.group - 1) / q.group;
    b.constant(wname, DType::i4, {n, k}, pack_i4(q.q, n, k).data());
    in.push_back(b.constant(wname + ".gmult", DType::i16, {n, ng}, q.gmult.data()));
    in.push_back(b.constant(wname + ".gshift", DType::i8, {n}, q.gshift.data()));
    attrs["group"] = int64_t(q.group);
  }
  b.op(name, "dimatmul", std::move(in), {y.first, y.second}, std::move(attrs));
}


Graph build_int_graph(const TModel& m, const LlmRecipe& r, const QuantReport& rep,
                      const std::string& name) {
  const LlamaConfig& c = m.c;
  if (!m.quantized) throw Error(name + ": model is not quantized");
  const int64_t D = c.dim, HD = m.hidden, kvd = c.kv_dim(), V = c.vocab_size, S = c.seq_len;
  const int64_t R = m.res > 0 ? m.res : D;  // residual stream width
  const int hs = c.head_size();
  const int E = rep.residual_exp;
  if (E < 0 || E > 62) throw Error(name + ": residual exponent " + std::to_string(E) + " out of range");
  const int qa = r.act_qmax();
  tools::GraphBuilder b;
  b.g.name = name;
  auto& meta = b.g.meta;
  meta["model"] = "llama2.c";
  meta["dim"] = std::to_string(c.dim);
  meta["n_layers"] = std::to_string(c.n_layers);
  meta["n_heads"] = std::to_string(c.n_heads);
  meta["n_kv_heads"] = std::to_string(c.n_kv_heads);
  meta["vocab_size"] = std::to_string(c.vocab_size);
  meta["seq_len"] = std::to_string(c.seq_len);
  meta["activation_bits"] = std::to_string(r.activation_bits);
  meta["weight_bits"] = std::to_string(r.weight_bits);
  if (R != D) meta["residual_dim"] = std::to_string(R);
  b.g.inputs = {"tokens", "pos"};
  b.g.outputs = {"logits", "logits_scale"};
  b.tensor("tokens", DType::i32, {1});
  b.tensor("pos", DType::i32, {1});

  // eps = 1e-5 in squared residual units: eps * 2^(2E) = eps_m * 2^-eps_e, eps_m in [2^30, 2^31)
  const double eps_units = m.norm_eps * std::ldexp(1.0, 2 * E);
  const int eps_e = 30 - int(std::floor(std::log2(eps_units)));
  const double eps_m = std::min(std::nearbyint(std::ldexp(eps_units, eps_e)), 2147483647.0);
  const std::map<std::string, Attr> norm_attrs{
      {"eps_m", int64_t(eps_m)}, {"eps_e", int64_t(eps_e)}, {"qmax", int64_t(qa)}};

  // embedding table + row scales (mant in [2^14, 2^15), exp)
  b.constant("token_embedding", DType::i8, {V, R}, m.emb_q.data());
  b.row_scale_table("token_embedding.scale", m.emb_scale);
  // RoPE table Q14 [S][hd/2][2]
  std::vector<int16_t> rope(size_t(S) * (hs / 2) * 2);
  for (int p = 0; p < S; ++p)
    for (int i = 0; i < hs / 2; ++i) {
      const double freq = 1.0 / std::pow(10000.0, double(2 * i) / hs);
      const double a = p * freq;
      rope[(size_t(p) * (hs / 2) + i) * 2] = int16_t(std::nearbyint(std::cos(a) * 16384));
      rope[(size_t(p) * (hs / 2) + i) * 2 + 1] = int16_t(std::nearbyint(std::sin(a) * 16384));
    }
  b.constant("rope_table", DType::i16, {S, hs / 2, 2}, rope.data());

  b.tensor("embed", DType::i32, {1, R});
  b.op("embed", "embedding", {"tokens", "token_embedding", "token_embedding.scale"}, {"embed"},
         {{"exp", int64_t(E)}});
  std::string x = "embed";
  const int64_t clip = int64_t(std::llround(r.attention_clip * 65536));
  for (int l = 0; l < c.n_layers; ++l) {
    const TLayer& L = m.layers[l];
    const std::string p = "layer" + std::to_string(l) + ".";
    b.tensor(p + "k_cache", DType::i8, {S, kvd}, true);
    b.tensor(p + "k_cache_scale", DType::i32, {S, c.n_kv_heads, 2}, true);
    b.tensor(p + "v_cache", DType::i8, {S, kvd}, true);
    b.tensor(p + "v_cache_scale", DType::i32, {S, c.n_kv_heads, 2}, true);

    const auto xb = b.dyn(p + "att_norm", DType::i8, 1, R);
    b.op(p + "att_norm", "rmsnorm", {x}, {xb.first, xb.second}, norm_attrs);
    const auto q = b.dyn(p + "q", DType::i16, 1, D);
    const auto k = b.dyn(p + "k", DType::i16, 1, kvd);
    const auto v = b.dyn(p + "v", DType::i16, 1, kvd);
    add_dimatmul(b, p + "q", p + "wq", L.qq, xb, q);
    add_dimatmul(b, p + "k", p + "wk", L.qk, xb, k);
    add_dimatmul(b, p + "v", p + "wv", L.qv, xb, v);
    const auto qr = b.dyn(p + "q_rope", DType::i16, 1, D);
    const auto kr = b.dyn(p + "k_rope", DType::i16, 1, kvd);
    b.op(p + "q_rope", "rope", {q.first, q.second, "pos", "rope_table"}, {qr.first, qr.second},
           {{"head_dim", int64_t(hs)}});
    b.op(p + "k_rope", "rope", {k.first, k.second, "pos", "rope_table"}, {kr.first, kr.second},
           {{"head_dim", int64_t(hs)}});
    const auto att = b.dyn(p + "attention", DType::i8, 1, D);
    b.op(p + "attention", "attention",
           {qr.first, qr.second, kr.first, kr.second, v.first, v.second, p + "k_cache",
            p + "k_cache_scale", p + "v_cache", p + "v_cache_scale", "pos"},
           {att.first, att.second},
           {{"n_heads", int64_t(c.n_heads)}, {"n_kv_heads", int64_t(c.n_kv_heads)},
            {"clip_q16", clip}, {"qmax", int64_t(m.online_had_o ? 127 : qa)}});
    auto ain = att;
    if (m.online_had_o) {
      ain = b.dyn(p + "att_hadamard", DType::i8, 1, D);
      b.op(p + "att_hadamard", "hadamard", {att.first, att.second}, {ain.first, ain.second},
             {{"qmax", int64_t(qa)}});
    }
    const auto o = b.dyn(p + "o", DType::i16, 1, R);
    add_dimatmul(b, p + "o", p + "wo", L.qo, ain, o);
    b.tensor(p + "att_res", DType::i32, {1, R});
    b.op(p + "att_res", "residual_add", {x, o.first, o.second}, {p + "att_res"},
           {{"exp", int64_t(E)}});
    x = p + "att_res";

    const auto xb2 = b.dyn(p + "ffn_norm", DType::i8, 1, R);
    b.op(p + "ffn_norm", "rmsnorm", {x}, {xb2.first, xb2.second}, norm_attrs);
    const auto g1 = b.dyn(p + "ffn_gate", DType::i16, 1, HD);
    const auto g3 = b.dyn(p + "ffn_up", DType::i16, 1, HD);
    add_dimatmul(b, p + "ffn_gate", p + "w1", L.q1, xb2, g1);
    add_dimatmul(b, p + "ffn_up", p + "w3", L.q3, xb2, g3);
    auto h = b.dyn(p + "swiglu", DType::i8, 1, HD);
    b.op(p + "swiglu", "swiglu", {g1.first, g1.second, g3.first, g3.second}, {h.first, h.second},
           {{"qmax", int64_t(m.online_had ? 127 : qa)}});
    if (m.online_had) {
      const auto hh = b.dyn(p + "hadamard", DType::i8, 1, HD);
      b.op(p + "hadamard", "hadamard", {h.first, h.second}, {hh.first, hh.second},
             {{"qmax", int64_t(qa)}});
      h = hh;
    }
    const auto f = b.dyn(p + "ffn_down", DType::i16, 1, R);
    add_dimatmul(b, p + "ffn_down", p + "w2", L.q2, h, f);
    b.tensor(p + "ffn_res", DType::i32, {1, R});
    b.op(p + "ffn_res", "residual_add", {x, f.first, f.second}, {p + "ffn_res"},
           {{"exp", int64_t(E)}});
    x = p + "ffn_res";
  }
  const auto xf = b.dyn("final_norm", DType::i8, 1, R);
  b.op("final_norm", "rmsnorm", {x}, {xf.first, xf.second}, norm_attrs);
  b.tensor("logits", DType::i16, {1, V});
  b.tensor("logits_scale", DType::i32, {1, 2});
  add_dimatmul(b, "logits", "wcls", m.qcls, xf, {"logits", "logits_scale"});
  validate_graph(b.g);
  return std::move(b.g);
}

}  // namespace fq::llama
