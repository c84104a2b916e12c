// The integer Mamba graph (quant.h, docs/mamba.md "Integer graphs").
#include <cmath>

#include "graph_builder.h"
#include "quant.h"

namespace fq::mamba {

Graph build_int_graph(const QModel& q, const std::string& name, int rows, const std::string& tokenizer) {
  const Config& c = q.c;
  const int64_t D = c.d_model, Di = c.d_inner(), N = c.d_state, K = c.d_conv, R = c.dt_rank,
                V = c.padded_vocab(), M = rows;
  const int E = q.residual_exp, qa = q.r.act_qmax();
  if (rows < 1) throw Error(name + ": rows must be >= 1");
  if (E < 0 || E > 62) throw Error(name + ": residual exponent " + std::to_string(E) + " out of range");
  tools::GraphBuilder b;
  Graph& g = b.g;
  g.name = name;
  g.meta["model"] = "mamba";
  g.meta["d_model"] = std::to_string(D);
  g.meta["n_layer"] = std::to_string(c.n_layer);
  g.meta["vocab_size"] = std::to_string(c.vocab_size);
  g.meta["d_state"] = std::to_string(N);
  g.meta["d_conv"] = std::to_string(K);
  g.meta["expand"] = std::to_string(c.expand);
  g.meta["dt_rank"] = std::to_string(R);
  g.meta["rows"] = std::to_string(M);
  g.meta["weight_bits"] = std::to_string(q.r.weight_bits);
  g.meta["activation_bits"] = std::to_string(q.r.activation_bits);
  g.meta["residual_exp"] = std::to_string(E);
  if (!q.r.path.empty()) g.meta["quant_recipe"] = q.r.path.substr(q.r.path.find_last_of('/') + 1);
  if (!tokenizer.empty()) g.meta["tokenizer"] = tokenizer;
  g.inputs = {"tokens", "pos"};
  g.outputs = {"logits", "logits_scale", "hidden"};
  b.tensor("tokens", DType::i32, {M});
  b.tensor("pos", DType::i32, {1});

  // eps = 1e-5 in squared residual units: eps 2^(2E) = eps_m 2^-eps_e, eps_m in [2^30, 2^31)
  const double eps_units = c.norm_eps * std::ldexp(1.0, 2 * E);
  const int eps_e = 30 - int(std::floor(std::log2(eps_units)));
  const int64_t eps_m = std::llround(std::min(std::ldexp(eps_units, eps_e), 2147483647.0));
  const std::map<std::string, Attr> norm{{"eps_m", eps_m}, {"eps_e", int64_t(eps_e)}, {"qmax", int64_t(qa)}};

  b.constant("embedding", DType::i8, {V, D}, q.emb_q.data());
  b.row_scale_table("embedding.scale", q.emb_scale);
  std::string x = b.tensor("embed", DType::i32, {M, D});
  b.op("embed", "embedding", {"tokens", "embedding", "embedding.scale"}, {x}, {{"exp", int64_t(E)}});

  for (int l = 0; l < c.n_layer; ++l) {
    const QLayer& L = q.layers[size_t(l)];
    const std::string p = "layer" + std::to_string(l) + ".";
    auto mm = [&](const std::string& out, const QLinear& w, const std::pair<std::string, std::string>& in,
                  int64_t width) {
      const auto y = b.dyn(p + out, DType::i16, M, width);
      llama::add_dimatmul(b, p + out, p + out + ".w", w, in, y);
      return y;
    };
    const std::string conv_state = b.tensor(p + "conv_state", DType::i32, {K - 1, Di}, true);
    const std::string ssm_state = b.tensor(p + "ssm_state", DType::i32, {Di, N}, true);
    const auto h = b.dyn(p + "norm", DType::i8, M, D);
    b.op(p + "norm", "rmsnorm", {x}, {h.first, h.second}, norm);
    const auto xi = mm("in_proj.x", L.qx, h, Di);
    const auto z = mm("in_proj.z", L.qz, h, Di);
    // causal conv1d + SiLU: u (int8, for x_proj) and uf (int32 Q(u_exp), for the scan)
    b.constant(p + "conv.w", DType::i16, {Di, K}, L.conv_wq.data());
    b.constant(p + "conv.b", DType::i32, {Di}, L.conv_bq.data());
    const auto u = b.dyn(p + "conv", DType::i8, M, Di);
    const std::string uf = b.tensor(p + "conv.uf", DType::i32, {M, Di});
    b.op(p + "conv", "causal_conv1d", {xi.first, xi.second, p + "conv.w", p + "conv.b", conv_state},
         {u.first, u.second, uf},
         {{"x_exp", int64_t(L.x_exp)}, {"w_exp", int64_t(L.w_exp)}, {"u_exp", int64_t(L.u_exp)},
          {"qmax", int64_t(qa)}});
    const auto dtl = mm("x_proj.dt", L.qdt_low, u, R);
    const auto B = mm("x_proj.B", L.qb, u, N);
    const auto C = mm("x_proj.C", L.qc, u, N);
    const auto dtl8 = b.dyn(p + "x_proj.dt.q", DType::i8, M, R);
    b.op(p + "x_proj.dt.q", "requantize", {dtl.first, dtl.second}, {dtl8.first, dtl8.second},
         {{"qmax", int64_t(qa)}});
    const auto dt = mm("dt_proj", L.qdt, dtl8, Di);
    b.constant(p + "scan.A", DType::i32, {Di, N}, L.aq.data());
    b.constant(p + "scan.D", DType::i32, {Di}, L.dq.data());
    b.constant(p + "scan.h_exp", DType::i8, {Di}, L.h_exp.data());
    b.constant(p + "scan.dt_bias", DType::i32, {Di}, L.dt_bq.data());
    const auto y = b.dyn(p + "scan", DType::i16, M, Di);
    b.op(p + "scan", "selective_scan",
         {uf, dt.first, dt.second, B.first, B.second, C.first, C.second, p + "scan.A", p + "scan.D",
          p + "scan.h_exp", p + "scan.dt_bias", ssm_state},
         {y.first, y.second},
         {{"u_exp", int64_t(L.u_exp)}, {"a_frac", int64_t(L.a_frac)}, {"y_exp", int64_t(L.y_exp)}});
    // gate: y * SiLU(z) = swiglu(gate = z, up = y); then the online Hadamard (R2) if any
    // (int16 before the Hadamard: an int8 gate output would be quantized twice)
    auto gated = b.dyn(p + "gate", q.r.online_hadamard ? DType::i16 : DType::i8, M, Di);
    b.op(p + "gate", "swiglu", {z.first, z.second, y.first, y.second}, {gated.first, gated.second},
         {{"qmax", int64_t(q.r.online_hadamard ? 32767 : qa)}});
    if (q.r.online_hadamard) {
      const auto hg = b.dyn(p + "hadamard", DType::i8, M, Di);
      b.op(p + "hadamard", "hadamard", {gated.first, gated.second}, {hg.first, hg.second},
           {{"qmax", int64_t(qa)}});
      gated = hg;
    }
    const auto o = mm("out_proj", L.qout, gated, D);
    const bool last = l + 1 == c.n_layer;
    const std::string xr = b.tensor(last ? "hidden" : p + "residual", DType::i32, {M, D});
    b.op(p + "residual", "residual_add", {x, o.first, o.second}, {xr}, {{"exp", int64_t(E)}});
    x = xr;
  }
  // the final hidden state ("hidden") is the last residual tensor itself (i32, unit 2^-E)
  const auto xf = b.dyn("final_norm", DType::i8, M, D);
  b.op("final_norm", "rmsnorm", {x}, {xf.first, xf.second}, norm);
  b.dyn("logits", DType::i16, M, V);
  llama::add_dimatmul(b, "logits", "head.w", q.qhead, xf, {"logits", "logits_scale"});
  validate_graph(g);
  return std::move(g);
}

}  // namespace fq::mamba
