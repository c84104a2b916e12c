// The integer RWKV graph (quant.h, docs/rwkv.md "Integer graphs").
#include <cmath>

#include "graph_builder.h"
#include "quant.h"
#include "quantize.h"

namespace fq::rwkv {

namespace {

using Dyn = std::pair<std::string, std::string>;
using Attrs = std::map<std::string, Attr>;

}  // namespace

Graph build_int_graph(const QModel& q, const std::string& name, int rows) {
  const Model& m = *q.m;
  const int64_t E = m.n_embed, V = m.n_vocab, H = m.head_count, N = m.head_size, F = m.ffn_size, M = rows;
  const int major = m.version.major;
  const bool v52 = major == 5 && m.version.minor >= 2;
  const int RE = q.residual_exp;
  if (rows < 1) throw Error(name + ": rows must be >= 1");
  tools::GraphBuilder b;
  Graph& g = b.g;
  g.name = name;
  g.meta["model"] = "rwkv";
  g.meta["version"] = m.version.str();
  g.meta["n_embed"] = std::to_string(E);
  g.meta["n_layer"] = std::to_string(m.n_layer);
  g.meta["n_vocab"] = std::to_string(V);
  g.meta["ffn_size"] = std::to_string(F);
  g.meta["head_count"] = std::to_string(H);
  g.meta["head_size"] = std::to_string(N);
  g.meta["rows"] = std::to_string(M);
  g.meta["weight_bits"] = std::to_string(q.r.weight_bits);
  g.meta["activation_bits"] = "8";
  g.meta["residual_exp"] = std::to_string(RE);
  g.meta["source"] = m.path.substr(m.path.find_last_of('/') + 1);
  if (!q.r.path.empty()) g.meta["quant_recipe"] = q.r.path.substr(q.r.path.find_last_of('/') + 1);
  if (V == 256) g.meta["tokenizer"] = "bytes";
  g.inputs = {"tokens", "pos"};
  g.outputs = {"logits", "logits_scale"};
  b.tensor("tokens", DType::i32, {M});
  b.tensor("pos", DType::i32, {1});

  // constants
  auto vec32 = [&](const std::string& n, const std::vector<int32_t>& v) {
    return b.constant(n, DType::i32, {int64_t(v.size())}, v.data());
  };
  auto lut = [&](const std::string& n, const k::LutTable& t) {
    std::vector<int16_t> v(4 * size_t(k::kLutMaxEntries));
    for (int i = 0; i < k::kLutMaxEntries; ++i) {
      v[size_t(i)] = int16_t(t.b1[i]);
      v[size_t(64 + i)] = int16_t(t.d1[i]);
      v[size_t(128 + i)] = t.b2[i];
      v[size_t(192 + i)] = t.d2[i];
    }
    return b.constant(n, DType::i16, {4, k::kLutMaxEntries}, v.data());
  };
  const std::string sig_t = lut("dulut.sigmoid", q.sigmoid), tanh_t = lut("dulut.tanh", q.tanh);

  // embedding (LN0 folded): int8 rows with their scales -> the residual (unit 2^-RE)
  b.constant("embedding", DType::i8, {V, E}, q.emb_q.data());
  b.row_scale_table("embedding.scale", q.emb_scale);
  std::string x = b.tensor("embed", DType::i32, {M, E});
  b.op("embed", "embedding", {"tokens", "embedding", "embedding.scale"}, {x}, {{"exp", int64_t(RE)}});

  Dyn v_first;  // v7: the first layer's v
  for (int l = 0; l < m.n_layer; ++l) {
    const QLayer& L = q.layers[size_t(l)];
    const std::string p = "blocks." + std::to_string(l) + ".";
    auto norm = [&](const std::string& n, const std::string& in, const std::string& in_scale, const QNorm& qn,
                    int64_t groups, int qmax) {
      const auto y = b.dyn(p + n, qmax <= 127 ? DType::i8 : DType::i16, M, E);
      const std::string gm = vec32(p + n + ".gamma", qn.gm), bo = vec32(p + n + ".beta", qn.bo);
      Attrs a{{"ae", int64_t(qn.ae)}, {"eps_m", int64_t(qn.eps_m)}, {"eps_e", int64_t(qn.eps_e)},
              {"qmax", int64_t(qmax)}};
      if (groups > 1) a["groups"] = groups;
      if (in_scale.empty()) {
        a["exp"] = int64_t(RE);
        b.op(p + n, "layernorm", {in, gm, bo}, {y.first, y.second}, a);
      } else {
        b.op(p + n, "layernorm", {in, in_scale, gm, bo}, {y.first, y.second}, a);
      }
      return y;
    };
    // y = W x; x_col >= 0: W reads x's columns [x_col, x_col + K)
    auto mm = [&](const std::string& out, const std::string& w, const Dyn& in, int64_t x_col = -1) {
      const llama::QLinear& ql = L.w.at(w);
      const auto y = b.dyn(p + out, DType::i16, M, ql.deq.rows);
      llama::add_dimatmul(b, p + out, p + w, ql, in, y, x_col);
      return y;
    };
    auto shift = [&](const std::string& n, const Dyn& a) {
      const std::string st = b.tensor(p + n + "_state", DType::i16, {1, E}, true);
      const std::string ss = b.tensor(p + n + "_state_scale", DType::i32, {1, 2}, true);
      const auto y = b.dyn(p + n, DType::i16, M, E);
      b.op(p + n, "token_shift", {a.first, a.second, st, ss}, {y.first, y.second});
      return y;
    };
    auto mix = [&](const std::string& n, const Dyn& a, const Dyn& prev, const std::string& mu, const Dyn* md = nullptr,
                   int qmax = 127) {
      const auto y = b.dyn(p + n, qmax <= 127 ? DType::i8 : DType::i16, M, E);
      std::vector<std::string> ins{a.first, a.second, prev.first, prev.second};
      Attrs at{{"qmax", int64_t(qmax)}};
      auto cb = L.mu_cb.find(mu);
      if (cb == L.mu_cb.end()) {
        ins.push_back(vec32(p + n + ".mu", L.q16.at(mu)));
      } else if (cb->second.bits == 8) {  // scalar int8, one scale
        const QMuCodebook& c = cb->second;
        ins.push_back(b.constant(p + n + ".mu", DType::i8, {int64_t(c.idx.size())}, c.idx.data()));
        at["mu_mant"] = int64_t(c.mant), at["mu_exp"] = int64_t(c.exp);
      } else {  // codebook: indices packed LSB first, entries, one scale
        const QMuCodebook& c = cb->second;
        std::vector<uint8_t> packed;
        tools::pack_bits(c.idx.data(), c.idx.size(), c.bits, &packed);
        ins.push_back(b.constant(p + n + ".mu.codes", DType::u8, {int64_t(packed.size())}, packed.data()));
        ins.push_back(b.constant(p + n + ".mu.codebook", DType::i8,
                                 {int64_t(c.cb.size()) >> c.bits, int64_t{1} << c.bits}, c.cb.data()));
        at["mu_bits"] = int64_t(c.bits), at["mu_group"] = int64_t(c.group);
        at["mu_mant"] = int64_t(c.mant), at["mu_exp"] = int64_t(c.exp);
      }
      if (md) ins.insert(ins.end(), {md->first, md->second});
      b.op(p + n, "rwkv_mix", ins, {y.first, y.second}, at);
      return y;
    };
    // a DULUT activation (Q15 output); bias: a per-channel constant added to the input first
    auto act = [&](const std::string& n, const Dyn& in, bool sigmoid, int64_t width, const std::string& bias = "") {
      const auto y = b.dyn(p + n, DType::i16, M, width);
      const k::LutTable& t = sigmoid ? q.sigmoid : q.tanh;
      std::vector<std::string> ins{in.first, in.second, sigmoid ? sig_t : tanh_t};
      if (!bias.empty()) ins.push_back(vec32(p + n + ".bias", L.q16.at(bias)));
      b.op(p + n, "dulut", ins, {y.first, y.second},
           {{"k1", int64_t(t.k1)}, {"k2", int64_t(t.k2)}, {"g", int64_t(t.g)},
            {"frac", int64_t(sigmoid ? kSigmoidFrac : kTanhFrac)}, {"out_exp", int64_t(15)}});
      return y;
    };
    auto product = [&](const std::string& n, const Dyn& a, const Dyn& c, int qmax) {
      const auto y = b.dyn(p + n, qmax <= 127 ? DType::i8 : DType::i16, M, E);
      b.op(p + n, "mul", {a.first, a.second, c.first, c.second}, {y.first, y.second}, {{"qmax", int64_t(qmax)}});
      return y;
    };
    auto requant = [&](const std::string& n, const Dyn& in, int64_t width) {
      const auto y = b.dyn(p + n, DType::i8, M, width);
      b.op(p + n, "requantize", {in.first, in.second}, {y.first, y.second}, {{"qmax", int64_t(127)}});
      return y;
    };
    auto residual = [&](const std::string& n, const Dyn& o) {
      const std::string xr = b.tensor(p + n, DType::i32, {M, E});
      b.op(p + n, "residual_add", {x, o.first, o.second}, {xr}, {{"exp", int64_t(RE)}});
      x = xr;
    };

    // ---- time mix ----
    const auto xa = norm("ln1", x, "", L.ln1, 1, 32767);
    const auto xp = shift("att.shift", xa);
    Dyn xr, xk, xv, xg;
    std::string decay;
    if (major == 7) {
      const auto mx = [&](const char* c) { return mix(std::string("att.x") + c, xa, xp, std::string("att.mu_") + c); };
      const Dyn x7r = mx("r"), x7w = mx("w"), x7k = mx("k"), x7v = mx("v"), x7a = mx("a"), x7g = mx("g");
      auto lora = [&](const std::string& n, const std::string& w, const Dyn& in) {  // width of w's rows
        const int64_t D = int64_t(L.w.at(w).q.size()) / g.tensor(in.first).shape[1];
        return std::make_pair(mm(n, w, in), D);
      };
      const auto r7 = mm("att.r", "att.receptance.weight", x7r);
      const auto g1 = lora("att.g.fc1", "att.g1", x7g);
      const auto g7 = mm("att.g", "att.g2", requant("att.g.h", act("att.g.sig", g1.first, true, g1.second), g1.second));
      const auto a1 = lora("att.a.fc1", "att.a1", x7a);
      const auto a7 = act("att.a", mm("att.a.fc2", "att.a2", requant("att.a.h", a1.first, a1.second)), true, E, "att.a0");
      const auto w1 = lora("att.w.fc1", "att.w1", x7w);
      const auto w2 = mm("att.w.fc2", "att.w2", requant("att.w.h", act("att.w.tanh", w1.first, false, w1.second), w1.second));
      // log-decay -0.606531 sigmoid(w2 + w0) in Q24: the sigmoid table's Q15 code times
      // -round(0.606531 2^31) >> 22
      decay = b.tensor(p + "att.decay", DType::i32, {M, E});
      b.op(p + "att.decay", "dulut", {w2.first, w2.second, sig_t, vec32(p + "att.decay.bias", L.q16.at("att.w0"))},
           {decay},
           {{"k1", int64_t(q.sigmoid.k1)}, {"k2", int64_t(q.sigmoid.k2)}, {"g", int64_t(q.sigmoid.g)},
            {"frac", int64_t(kSigmoidFrac)}, {"out_mul", int64_t(-std::llround(0.606531 * 2147483648.0))},
            {"out_shift", int64_t(22)}});
      const auto k0 = mm("att.k0", "att.key.weight", x7k);
      auto l2 = [&](const std::string& n, const std::string& c) {
        const auto y = b.dyn(p + n, DType::i16, M, E);
        b.op(p + n, "l2norm", {k0.first, k0.second, vec32(p + n + ".c", L.q16.at(c))}, {y.first, y.second},
             {{"groups", int64_t(H)}});
        return y;
      };
      const auto kk = l2("att.kk", "att.k_k"), na = l2("att.neg_kk", "att.neg_k_k");
      const auto k7 = mix("att.k", k0, product("att.k0a", k0, a7, 32767), "att.k_a", nullptr, 32767);
      auto v7 = mm("att.v_fc", "att.value.weight", x7v);
      if (l == 0) {
        v_first = v7;
      } else {
        const auto v1 = lora("att.vg.fc1", "att.v1", x7v);
        const auto gate = act("att.vg", mm("att.vg.fc2", "att.v2", requant("att.vg.h", v1.first, v1.second)), true, E,
                              "att.v0");
        v7 = mix("att.v", v7, v_first, "att.mu_zero", &gate, 32767);
      }
      const auto kb = product("att.kk_a", kk, a7, 32767);
      const std::string wkv_state = b.tensor(p + "wkv", DType::i32, {H, N, N}, true);
      const auto y = b.dyn(p + "att.wkv", DType::i16, M, E);
      b.op(p + "att.wkv", "rwkv_wkv7",
           {r7.first, r7.second, decay, k7.first, k7.second, v7.first, v7.second, na.first, na.second, kb.first,
            kb.second, wkv_state},
           {y.first, y.second}, {{"state_exp", int64_t(L.state_exp)}, {"decay_frac", int64_t(kDecayFrac)}});
      const auto yn = norm("att.ln_x", y.first, y.second, L.ln_x, H, 32767);
      const auto rkp = product("att.rk", r7, k7, 32767);
      const auto yb = b.dyn(p + "att.bonused", DType::i16, M, E);
      b.op(p + "att.bonused", "rwkv7_bonus",
           {yn.first, yn.second, v7.first, v7.second, rkp.first, rkp.second, vec32(p + "att.r_k", L.q16.at("att.r_k"))},
           {yb.first, yb.second}, {{"heads", int64_t(H)}, {"qmax", int64_t(32767)}});
      residual("att_res", mm("att.out", "att.output.weight", product("att.gated", yb, g7, 127)));
      // channel mix: Wv relu²(Wk x_k)
      const auto xf = norm("ln2", x, "", L.ln2, 1, 32767);
      const auto fp = shift("ffn.shift", xf);
      const auto kpre = mm("ffn.k_fc", "ffn.key.weight", mix("ffn.xk", xf, fp, "ffn.mu_k"));
      const auto ksq = b.dyn(p + "ffn.k", DType::i8, M, F);
      b.op(p + "ffn.k", "relu_squared", {kpre.first, kpre.second}, {ksq.first, ksq.second}, {{"qmax", int64_t(127)}});
      residual("ffn_res", mm("ffn.v", "ffn.value.weight", ksq));
      continue;
    }
    if (major == 5) {
      xr = mix("att.xr", xa, xp, "att.mu_r");
      xk = mix("att.xk", xa, xp, "att.mu_k");
      xv = mix("att.xv", xa, xp, "att.mu_v");
      if (v52) xg = mix("att.xg", xa, xp, "att.mu_g");
      decay = vec32(p + "att.decay", L.decay_q24);
    } else {  // 6: data-dependent mixing through the LoRA
      const auto xxx = mix("att.xxx", xa, xp, "att.mu_x");
      // one fc1 for the five LoRAs (one per-token scale over its 5D outputs); fc2 of part c reads
      // the columns [cD, (c + 1) D) of the shared tanh
      const int64_t D5 = L.w.at("att.time_maa_w1").deq.rows, D = D5 / 5;
      const auto h = requant("att.lora.h", act("att.lora.tanh", mm("att.lora.fc1", "att.time_maa_w1", xxx), false, D5),
                             D5);
      Dyn xs[5];
      const char* tags[5] = {"w", "k", "v", "r", "g"};
      for (int c = 0; c < 5; ++c) {
        const std::string t = tags[c];
        const auto md = mm("att.lora_" + t, "att.time_maa_w2." + t, h, c * D);
        xs[c] = mix("att.x" + t, xa, xp, "att.mu_" + t, &md);
      }
      xk = xs[1], xv = xs[2], xr = xs[3], xg = xs[4];
      const int64_t Dd = int64_t(L.w.at("att.time_decay_w1").q.size()) / E;
      const auto d1 = mm("att.decay.fc1", "att.time_decay_w1", xs[0]);
      const auto dh = requant("att.decay.h", act("att.decay.tanh", d1, false, Dd), Dd);
      const auto d2 = mm("att.decay.fc2", "att.time_decay_w2", dh);
      decay = b.tensor(p + "att.decay", DType::i32, {M, E});
      b.op(p + "att.decay", "rwkv_decay", {d2.first, d2.second, vec32(p + "att.time_decay", L.decay_q24)}, {decay});
    }
    const auto r = mm("att.r", "att.receptance.weight", xr);
    const auto k = mm("att.k", "att.key.weight", xk);
    const auto v = mm("att.v", "att.value.weight", xv);
    const std::string wkv_state = b.tensor(p + "wkv", DType::i32, {H, N, N}, true);
    const auto y = b.dyn(p + "att.wkv", DType::i16, M, E);
    b.op(p + "att.wkv", "rwkv_wkv5",
         {r.first, r.second, k.first, k.second, v.first, v.second, decay, vec32(p + "att.u", L.q16.at("att.u")),
          wkv_state},
         {y.first, y.second}, {{"state_exp", int64_t(L.state_exp)}, {"decay_frac", int64_t(kDecayFrac)}});
    Dyn att_in;
    if (major == 5 && !v52) {
      att_in = norm("att.ln_x", y.first, y.second, L.ln_x, H, 127);
    } else {
      const auto yn = norm("att.ln_x", y.first, y.second, L.ln_x, H, 32767);
      const auto gpre = mm("att.g", "att.gate.weight", xg);
      att_in = b.dyn(p + "att.gated", DType::i8, M, E);
      b.op(p + "att.gated", "swiglu", {gpre.first, gpre.second, yn.first, yn.second}, {att_in.first, att_in.second},
           {{"qmax", int64_t(127)}});
    }
    residual("att_res", mm("att.out", "att.output.weight", att_in));

    // ---- channel mix ----
    const auto xf = norm("ln2", x, "", L.ln2, 1, 32767);
    const auto fp = shift("ffn.shift", xf);
    const auto fk = mix("ffn.xk", xf, fp, "ffn.mu_k");
    const auto fr = mix("ffn.xr", xf, fp, "ffn.mu_r");
    const auto kpre = mm("ffn.k_fc", "ffn.key.weight", fk);
    const auto ksq = b.dyn(p + "ffn.k", DType::i8, M, F);
    b.op(p + "ffn.k", "relu_squared", {kpre.first, kpre.second}, {ksq.first, ksq.second}, {{"qmax", int64_t(127)}});
    const auto fv = mm("ffn.v", "ffn.value.weight", ksq);
    const auto rs = act("ffn.r", mm("ffn.r_fc", "ffn.receptance.weight", fr), true, E);
    const auto fo = b.dyn(p + "ffn.out", DType::i16, M, E);
    b.op(p + "ffn.out", "mul", {rs.first, rs.second, fv.first, fv.second}, {fo.first, fo.second},
         {{"qmax", int64_t(32767)}});
    residual("ffn_res", fo);
  }
  const auto xo = b.dyn("ln_out", DType::i8, M, E);
  b.op("ln_out", "layernorm", {x, vec32("ln_out.gamma", q.ln_out.gm), vec32("ln_out.beta", q.ln_out.bo)},
       {xo.first, xo.second},
       {{"exp", int64_t(RE)}, {"ae", int64_t(q.ln_out.ae)}, {"eps_m", int64_t(q.ln_out.eps_m)},
        {"eps_e", int64_t(q.ln_out.eps_e)}, {"qmax", int64_t(127)}});
  b.dyn("logits", DType::i16, M, V);
  llama::add_dimatmul(b, "logits", "head.weight", q.head, xo, {"logits", "logits_scale"});
  validate_graph(g);
  return std::move(g);
}

}  // namespace fq::rwkv
