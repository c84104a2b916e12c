// rwkv.cpp float32 decode graphs (graph.h).
#include "graph.h"

#include <utility>

#include "graph_builder.h"

namespace fq::rwkv {

namespace {

using Vec = std::vector<float>;
using Attrs = std::map<std::string, Attr>;

// The shared builder, with rwkv's default activation shape [1, E].
struct Builder : tools::GraphBuilder {
  int64_t E = 0;
  std::string node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                   Attrs attrs = {}, std::vector<int64_t> shape = {}) {
    return GraphBuilder::node(name, op, std::move(inputs),
                              shape.empty() ? std::vector<int64_t>{1, E} : std::move(shape),
                              std::move(attrs));
  }
};

}  // namespace

Graph build_float_graph(const Model& m, const std::string& name) {
  const int64_t E = m.n_embed, V = m.n_vocab, H = m.head_count, N = m.head_size, F = m.ffn_size;
  const int major = m.version.major;
  Builder b;
  b.E = E;
  b.g.name = name;
  b.g.meta["model"] = "rwkv";
  b.g.meta["version"] = m.version.str();
  b.g.meta["n_embed"] = std::to_string(m.n_embed);
  b.g.meta["n_layer"] = std::to_string(m.n_layer);
  b.g.meta["n_vocab"] = std::to_string(m.n_vocab);
  b.g.meta["ffn_size"] = std::to_string(m.ffn_size);
  if (major >= 5) {
    b.g.meta["head_count"] = std::to_string(H);
    b.g.meta["head_size"] = std::to_string(N);
  }
  b.g.meta["weights_type"] = type_name(m.data_type);
  if (V == 256) b.g.meta["tokenizer"] = "bytes";
  b.g.inputs = {"tokens", "pos"};
  b.g.outputs = {"logits"};
  b.tensor("tokens", DType::i32, {1});
  b.tensor("pos", DType::i32, {1});

  // Constants keep their rwkv.cpp names (matrices [out, in], vectors [E]); split or expanded ones
  // get a suffix.
  auto vec = [&](const std::string& n) { return b.constant(n, m.v(n), {E}); };
  auto mat = [&](const std::string& n) {
    const Tensor& t = m.t(n);
    return b.constant(n, t.data, {t.ne[1], t.ne[0]});
  };
  b.constant("emb.weight", m.v("emb.weight"), {V, E});
  std::string x = b.node("embed", "embedding", {"tokens", "emb.weight"});
  x = b.node("ln0", "layernorm", {x, vec("blocks.0.ln0.weight"), vec("blocks.0.ln0.bias")});
  std::string v_first;
  for (int l = 0; l < m.n_layer; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    auto nm = [&](const std::string& s) { return p + s; };
    auto fc = [&](const std::string& out, const std::string& in, const std::string& w,
                  const std::string& bias = "") {
      const std::vector<std::string> ins = bias.empty() ? std::vector<std::string>{in, w}
                                                        : std::vector<std::string>{in, w, bias};
      return b.node(nm(out), "fully_connected", ins, {},
                    {1, b.g.tensor(w).shape[0]});
    };
    // v4/v5 mixing: x * mu + (x_prev - x_prev * mu).
    auto mix4 = [&](const std::string& tag, const std::string& xa, const std::string& xp,
                    const std::string& mu) {
      const std::string t1 = b.node(nm(tag + ".xmu"), "mul", {xa, mu});
      const std::string t2 = b.node(nm(tag + ".pmu"), "mul", {xp, mu});
      const std::string t3 = b.node(nm(tag + ".pd"), "sub", {xp, t2});
      return b.node(nm(tag), "add", {t1, t3});
    };
    // v6/v7 mixing: sx * mu + x (sx = x_prev - x).
    auto mix6 = [&](const std::string& tag, const std::string& xa, const std::string& sx,
                    const std::string& mu) {
      return b.node(nm(tag), "add", {b.node(nm(tag + ".smu"), "mul", {sx, mu}), xa});
    };
    const std::string att_shift = nm("att_shift"), ffn_shift = nm("ffn_shift"), wkv_state = nm("wkv");
    b.tensor(att_shift, DType::f32, {1, E}, true);
    b.tensor(ffn_shift, DType::f32, {1, E}, true);
    b.tensor(wkv_state, DType::f32, major == 4 ? std::vector<int64_t>{3, E} : std::vector<int64_t>{H, N, N},
             true);

    // ---- time mix ----
    const std::string xa = b.node(nm("ln1"), "layernorm", {x, vec(nm("ln1.weight")), vec(nm("ln1.bias"))});
    const std::string xp = b.node(nm("att.shift"), "token_shift", {xa, att_shift});
    std::string att;
    if (major == 4 || major == 5) {
      const std::string xk = mix4("att.xk", xa, xp, vec(nm("att.time_mix_k")));
      const std::string xv = mix4("att.xv", xa, xp, vec(nm("att.time_mix_v")));
      const std::string xr = mix4("att.xr", xa, xp, vec(nm("att.time_mix_r")));
      std::string r = fc("att.r", xr, mat(nm("att.receptance.weight")));
      const std::string k = fc("att.k", xk, mat(nm("att.key.weight")));
      const std::string v = fc("att.v", xv, mat(nm("att.value.weight")));
      std::string y;
      if (major == 4) {
        r = b.node(nm("att.r_sig"), "sigmoid", {r});
        const std::string wkv = b.node(nm("att.wkv"), "rwkv_wkv4",
                                       {k, v, vec(nm("att.time_first")), vec(nm("att.time_decay")), wkv_state});
        y = b.node(nm("att.rwkv"), "mul", {r, wkv});
      } else {
        const bool v52 = m.version.minor >= 2;
        std::string u, w;
        if (v52) {
          u = b.constant(nm("att.time_faaaa"), m.lv(l, "att.time_faaaa"), {E});
          w = b.constant(nm("att.time_decay"), m.lv(l, "att.time_decay"), {E});
        } else {  // per-head values repeated over the head (ggml_repeat)
          Vec uu(static_cast<size_t>(E)), ww(static_cast<size_t>(E));
          for (int64_t i = 0; i < E; ++i) {
            uu[size_t(i)] = m.lv(l, "att.time_first")[size_t(i / N)];
            ww[size_t(i)] = m.lv(l, "att.time_decay")[size_t(i / N)];
          }
          u = b.constant(nm("att.time_first.per_channel"), uu, {E});
          w = b.constant(nm("att.time_decay.per_channel"), ww, {E});
        }
        y = b.node(nm("att.wkv"), "rwkv_wkv5", {r, k, v, w, u, wkv_state});
        y = b.node(nm("att.ln_x"), "layernorm",
                   {y, vec(nm("att.ln_x.weight")), vec(nm("att.ln_x.bias"))},
                   {{"groups", H}, {"eps", 1e-5}});
        if (v52) {
          const std::string xg = mix4("att.xg", xa, xp, vec(nm("att.time_mix_g")));
          const std::string g = b.node(nm("att.g"), "silu", {fc("att.g_fc", xg, mat(nm("att.gate.weight")))});
          y = b.node(nm("att.gated"), "mul", {y, g});
        }
      }
      att = fc("att.out", y, mat(nm("att.output.weight")));
    } else if (major == 6) {
      const std::string sx = b.node(nm("att.sx"), "sub", {xp, xa});
      const std::string xxx = mix6("att.xxx", xa, sx, vec(nm("att.time_maa_x")));
      const Tensor& w1 = m.t(nm("att.time_maa_w1"));
      const Tensor& w2 = m.t(nm("att.time_maa_w2"));
      const int64_t D = w1.ne[1] / 5;
      const char* tags[5] = {"w", "k", "v", "r", "g"};
      std::string xs[5];
      for (int64_t g = 0; g < 5; ++g) {
        const std::string t = tags[g];
        const std::string w1g = b.constant(nm("att.time_maa_w1." + t), w1.data.data() + g * D * E, {D, E});
        const std::string w2g = b.constant(nm("att.time_maa_w2." + t), w2.data.data() + g * E * D, {E, D});
        const std::string h = b.node(nm("att.lora_" + t + ".h"), "tanh", {fc("att.lora_" + t + ".fc1", xxx, w1g)}, {}, {1, D});
        const std::string mg = fc("att.lora_" + t, h, w2g, vec(nm("att.time_maa_" + t)));
        xs[g] = mix6("att.x" + t, xa, sx, mg);
      }
      const std::string r = fc("att.r", xs[3], mat(nm("att.receptance.weight")));
      const std::string k = fc("att.k", xs[1], mat(nm("att.key.weight")));
      const std::string v = fc("att.v", xs[2], mat(nm("att.value.weight")));
      const std::string g = b.node(nm("att.g"), "silu", {fc("att.g_fc", xs[4], mat(nm("att.gate.weight")))});
      const std::string d1 = fc("att.decay.fc1", xs[0], mat(nm("att.time_decay_w1")));
      const std::string dh = b.node(nm("att.decay.h"), "tanh", {d1}, {}, {1, m.t(nm("att.time_decay_w1")).ne[1]});
      const std::string td = b.constant(nm("att.time_decay"), m.lv(l, "att.time_decay"), {E});
      std::string w = fc("att.decay", dh, mat(nm("att.time_decay_w2")), td);
      w = b.node(nm("att.decay.exp"), "exp", {w});
      w = b.node(nm("att.decay.neg"), "scale", {w}, {{"scale", -1.0}});
      w = b.node(nm("att.decay.factor"), "exp", {w});
      const std::string u = b.constant(nm("att.time_faaaa"), m.lv(l, "att.time_faaaa"), {E});
      std::string y = b.node(nm("att.wkv"), "rwkv_wkv5", {r, k, v, w, u, wkv_state});
      y = b.node(nm("att.ln_x"), "layernorm", {y, vec(nm("att.ln_x.weight")), vec(nm("att.ln_x.bias"))},
                 {{"groups", H}, {"eps", double(64e-5f)}});
      y = b.node(nm("att.gated"), "mul", {y, g});
      att = fc("att.out", y, mat(nm("att.output.weight")));
    } else {  // 7
      const std::string sx = b.node(nm("att.sx"), "sub", {xp, xa});
      const Vec& mu = m.lv(l, "att.x_rwkvag");
      const char* tags[6] = {"r", "w", "k", "v", "a", "g"};
      std::string xs[6];
      for (int c = 0; c < 6; ++c)
        xs[c] = mix6(std::string("att.x") + tags[c], xa, sx,
                     b.constant(nm(std::string("att.x_") + tags[c]), mu.data() + c * E, {E}));
      auto lora_dim = [&](const std::string& n) { return m.t(nm(n)).ne[1]; };
      const std::string r = fc("att.r", xs[0], mat(nm("att.receptance.weight")));
      std::string g = b.node(nm("att.g.h"), "sigmoid", {fc("att.g.fc1", xs[5], mat(nm("att.g1")))}, {},
                             {1, lora_dim("att.g1")});
      g = fc("att.g", g, mat(nm("att.g2")));
      std::string a = fc("att.a.fc1", xs[4], mat(nm("att.a1")));
      a = b.node(nm("att.a"), "sigmoid", {fc("att.a.fc2", a, mat(nm("att.a2")), vec(nm("att.a0")))});
      std::string w = b.node(nm("att.w.h"), "tanh", {fc("att.w.fc1", xs[1], mat(nm("att.w1")))}, {},
                             {1, lora_dim("att.w1")});
      w = fc("att.w.fc2", w, mat(nm("att.w2")), vec(nm("att.w0")));
      w = b.node(nm("att.w.sig"), "sigmoid", {w});
      w = b.node(nm("att.w.scaled"), "scale", {w}, {{"scale", double(-0.606531f)}});
      w = b.node(nm("att.w"), "exp", {w});
      const std::string k0 = fc("att.k0", xs[2], mat(nm("att.key.weight")));
      std::string kk = b.node(nm("att.kk0"), "mul", {k0, vec(nm("att.k_k"))});
      kk = b.node(nm("att.kk"), "l2norm", {kk}, {{"groups", H}, {"eps", double(1e-12f)}});
      const std::string ka = b.node(nm("att.ka"), "mul", {k0, vec(nm("att.k_a"))});
      const std::string aka = b.node(nm("att.aka"), "mul", {a, ka});
      const std::string k = b.node(nm("att.k"), "add", {k0, b.node(nm("att.aka_ka"), "sub", {aka, ka})});
      std::string v = fc("att.v_fc", xs[3], mat(nm("att.value.weight")));
      if (l == 0) {
        v_first = v;
      } else {
        std::string gate = fc("att.vg.fc1", xs[3], mat(nm("att.v1")));
        gate = b.node(nm("att.vg"), "sigmoid", {fc("att.vg.fc2", gate, mat(nm("att.v2")), vec(nm("att.v0")))});
        const std::string dv = b.node(nm("att.dv"), "mul", {b.node(nm("att.vf_v"), "sub", {v_first, v}), gate});
        v = b.node(nm("att.v"), "add", {v, dv});
      }
      const std::string na = b.node(nm("att.neg_kk"), "scale", {kk}, {{"scale", -1.0}});
      const std::string kb = b.node(nm("att.kk_a"), "mul", {kk, a});
      std::string y = b.node(nm("att.wkv"), "rwkv_wkv7", {r, w, k, v, na, kb, wkv_state});
      y = b.node(nm("att.ln_x"), "layernorm", {y, vec(nm("att.ln_x.weight")), vec(nm("att.ln_x.bias"))},
                 {{"groups", H}, {"eps", double(64e-5f)}});
      const std::string rk = b.constant(nm("att.r_k"), m.lv(l, "att.r_k"), {E});
      y = b.node(nm("att.bonused"), "add", {y, b.node(nm("att.bonus"), "rwkv7_bonus", {r, k, v, rk}, {{"heads", H}})});
      y = b.node(nm("att.gated"), "mul", {y, g});
      att = fc("att.out", y, mat(nm("att.output.weight")));
    }
    x = b.node(nm("att_res"), "add", {x, att});

    // ---- channel mix ----
    const std::string xf = b.node(nm("ln2"), "layernorm", {x, vec(nm("ln2.weight")), vec(nm("ln2.bias"))});
    const std::string fp = b.node(nm("ffn.shift"), "token_shift", {xf, ffn_shift});
    std::string ffn;
    if (major != 7) {
      std::string xk, xr;
      if (major <= 5) {
        xk = mix4("ffn.xk", xf, fp, vec(nm("ffn.time_mix_k")));
        xr = mix4("ffn.xr", xf, fp, vec(nm("ffn.time_mix_r")));
      } else {
        const std::string sx = b.node(nm("ffn.sx"), "sub", {fp, xf});
        xk = mix6("ffn.xk", xf, sx, vec(nm("ffn.time_maa_k")));
        xr = mix6("ffn.xr", xf, sx, vec(nm("ffn.time_maa_r")));
      }
      const std::string r = b.node(nm("ffn.r"), "sigmoid", {fc("ffn.r_fc", xr, mat(nm("ffn.receptance.weight")))});
      const std::string k = b.node(nm("ffn.k"), "relu_squared", {fc("ffn.k_fc", xk, mat(nm("ffn.key.weight")))}, {}, {1, F});
      ffn = b.node(nm("ffn.out"), "mul", {r, fc("ffn.v", k, mat(nm("ffn.value.weight")))});
    } else {
      const std::string sx = b.node(nm("ffn.sx"), "sub", {fp, xf});
      const std::string xk = mix6("ffn.xk", xf, sx, vec(nm("ffn.x_k")));
      const std::string k = b.node(nm("ffn.k"), "relu_squared", {fc("ffn.k_fc", xk, mat(nm("ffn.key.weight")))}, {}, {1, F});
      ffn = fc("ffn.out", k, mat(nm("ffn.value.weight")));
    }
    x = b.node(nm("ffn_res"), "add", {x, ffn});
  }
  x = b.node("ln_out", "layernorm", {x, vec("ln_out.weight"), vec("ln_out.bias")});
  b.node("logits", "fully_connected", {x, mat("head.weight")}, {}, {1, V});
  validate_graph(b.g);
  return std::move(b.g);
}

}  // namespace fq::rwkv
