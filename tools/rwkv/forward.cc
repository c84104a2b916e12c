// Float32 reference forward pass (forward.h). Every step names the rwkv.cpp expression it
// reproduces; the arithmetic of each step equals the FQ reference op the graph uses for it.
#include "forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fq/graph.h"

namespace fq::rwkv {

namespace {

using Vec = std::vector<float>;

// LayerNorm / GroupNorm (ggml_norm then * w + b), sums in double.
Vec norm(const Vec& x, const Vec& w, const Vec& b, int groups, float eps) {
  const int d = int(x.size()), g = d / groups;
  Vec y(x.size());
  for (int q = 0; q < groups; ++q) {
    const int o = q * g;
    double sum = 0.0;
    for (int i = 0; i < g; ++i) sum += double(x[o + i]);
    const float mean = float(sum / g);
    double sum2 = 0.0;
    for (int i = 0; i < g; ++i) {
      const float v = x[o + i] - mean;
      y[o + i] = v;
      sum2 += double(v * v);
    }
    const float variance = float(sum2 / g);
    const float scale = 1.0f / sqrtf(variance + eps);
    for (int i = 0; i < g; ++i) {
      const float n = y[o + i] * scale;
      y[o + i] = n * w[o + i] + b[o + i];
    }
  }
  return y;
}

// y = W x (+ b): W row-major [out, in]; the sum starts at the bias.
Vec matvec(const Vec& w, const Vec& x, const Vec* b = nullptr) {
  const size_t k = x.size(), o = w.size() / k;
  Vec y(o);
  for (size_t j = 0; j < o; ++j) {
    float acc = b ? (*b)[j] : 0.f;
    for (size_t i = 0; i < k; ++i) acc += x[i] * w[j * k + i];
    y[j] = acc;
  }
  return y;
}
// Rows [row0, row0 + rows) of W times x.
Vec matvec_rows(const Vec& w, const Vec& x, size_t row0, size_t rows) {
  const size_t k = x.size();
  Vec y(rows);
  for (size_t j = 0; j < rows; ++j) {
    float acc = 0.f;
    for (size_t i = 0; i < k; ++i) acc += x[i] * w[(row0 + j) * k + i];
    y[j] = acc;
  }
  return y;
}

Vec mul(const Vec& a, const Vec& b) {
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) y[i] = a[i] * b[i % b.size()];
  return y;
}
Vec sub(const Vec& a, const Vec& b) {
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) y[i] = a[i] - b[i % b.size()];
  return y;
}
Vec add(const Vec& a, const Vec& b) {
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    float acc = 0.f;  // the `add` op's accumulation
    acc += a[i];
    acc += b[i];
    y[i] = acc;
  }
  return y;
}
Vec sigmoid(Vec x) {
  for (float& v : x) v = 1.0f / (1.0f + expf(-v));
  return x;
}
Vec tanh_(Vec x) {
  for (float& v : x) v = tanhf(v);
  return x;
}
Vec silu(Vec x) {
  for (float& v : x) v = v / (1.0f + expf(-v));
  return x;
}
Vec exp_(Vec x) {
  for (float& v : x) v = expf(v);
  return x;
}
Vec scale(Vec x, float s) {
  for (float& v : x) v = v * s;
  return x;
}
Vec relu_squared(Vec x) {
  for (float& v : x) {
    const float r = std::max(v, 0.0f);
    v = r * r;
  }
  return x;
}
// Token shift: returns the carried vector and stores x.
Vec shift(Vec& carry, const Vec& x) {
  Vec prev = carry;
  carry = x;
  return prev;
}
// v4/v5 mixing: x * mu + (x_prev - x_prev * mu) (rwkv_att_rkv_v4, rwkv_att_v5, rwkv_ffn_v4_v5).
Vec mix_v4(const Vec& x, const Vec& xp, const Vec& mu) { return add(mul(x, mu), sub(xp, mul(xp, mu))); }
// v6/v7 mixing: sx * mu + x with sx = x_prev - x.
Vec mix_v6(const Vec& x, const Vec& sx, const Vec& mu) { return add(mul(sx, mu), x); }
// Per-channel copy of a per-head vector (v5.1 time_first / time_decay, ggml_repeat).
Vec per_head(const Vec& v, int heads, int n) {
  Vec y(size_t(heads) * n);
  for (int h = 0; h < heads; ++h)
    for (int j = 0; j < n; ++j) y[size_t(h) * n + j] = v[size_t(h)];
  return y;
}

Vec wkv5(const Vec& r, const Vec& k, const Vec& v, const Vec& w, const Vec& u, int heads, int n,
         Vec& st) {
  Vec y(r.size(), 0.0f);
  for (int h = 0; h < heads; ++h) {
    float* s = st.data() + size_t(h) * n * n;
    for (int i = 0; i < n; ++i) {
      const size_t hi = size_t(h) * n + i;
      const float k_i = k[hi], r_i = r[hi], u_i = u[hi], w_i = w[hi];
      for (int j = 0; j < n; ++j) {
        const size_t hj = size_t(h) * n + j;
        const float kv = v[hj] * k_i;
        const float prev = s[i * n + j];
        const float tmp = kv * u_i + prev;
        y[hj] += tmp * r_i;
        s[i * n + j] = prev * w_i + kv;
      }
    }
  }
  return y;
}

Vec wkv7(const Vec& r, const Vec& w, const Vec& k, const Vec& v, const Vec& a, const Vec& b,
         int heads, int n, Vec& st) {
  Vec y(r.size());
  for (int h = 0; h < heads; ++h) {
    const size_t ho = size_t(h) * n;
    for (int i = 0; i < n; ++i) {
      float* si = st.data() + (ho + i) * n;
      float sa = 0.0f;
      for (int j = 0; j < n; ++j) sa += a[ho + j] * si[j];
      float sum = 0.0f;
      for (int j = 0; j < n; ++j) {
        const float kv = v[ho + i] * k[ho + j];
        const float s = (si[j] * w[ho + j] + kv) + sa * b[ho + j];
        si[j] = s;
        sum += s * r[ho + j];
      }
      y[ho + i] = sum;
    }
  }
  return y;
}

}  // namespace

State::State(const Model& m) {
  att_shift.assign(size_t(m.n_layer), Vec(size_t(m.n_embed), 0.f));
  ffn_shift = att_shift;
  const size_t ws = m.version.major == 4 ? size_t(3) * m.n_embed
                                         : size_t(m.head_count) * m.head_size * m.head_size;
  wkv.assign(size_t(m.n_layer), Vec(ws, 0.f));
}

void State::reset() {
  for (auto* group : {&att_shift, &ffn_shift, &wkv})
    for (Vec& v : *group) std::fill(v.begin(), v.end(), 0.f);
}

std::vector<float> forward(const Model& m, State& s, int token, Observer* obs) {
  auto see = [&](int l, const char* what, const Vec& v) {
    if (obs) obs->see(l, what, v);
  };
  if (token < 0 || token >= m.n_vocab)
    throw Error(m.path + ": token " + std::to_string(token) + " outside the vocabulary [0, " +
                std::to_string(m.n_vocab) + ")");
  const int E = m.n_embed, H = m.head_count, N = m.head_size;
  const int major = m.version.major;
  const Vec& emb = m.v("emb.weight");
  Vec x(emb.begin() + int64_t(token) * E, emb.begin() + int64_t(token + 1) * E);
  x = norm(x, m.v("blocks.0.ln0.weight"), m.v("blocks.0.ln0.bias"), 1, 1e-5f);
  Vec v_first;
  for (int l = 0; l < m.n_layer; ++l) {
    auto w = [&](const char* name) -> const Vec& { return m.lv(l, name); };
    see(l, "x", x);
    // ---- time mix ----
    const Vec xa = norm(x, w("ln1.weight"), w("ln1.bias"), 1, 1e-5f);
    const Vec xp = shift(s.att_shift[size_t(l)], xa);
    if (obs) see(l, "att.sx", sub(xp, xa));
    Vec att;
    if (major == 4) {
      const Vec xk = mix_v4(xa, xp, w("att.time_mix_k"));
      const Vec xv = mix_v4(xa, xp, w("att.time_mix_v"));
      const Vec xr = mix_v4(xa, xp, w("att.time_mix_r"));
      const Vec r = sigmoid(matvec(w("att.receptance.weight"), xr));
      const Vec k = matvec(w("att.key.weight"), xk);
      const Vec v = matvec(w("att.value.weight"), xv);
      const Vec& u = w("att.time_first");
      const Vec& td = w("att.time_decay");
      Vec& st = s.wkv[size_t(l)];
      float *aa = st.data(), *bb = st.data() + E, *pp = st.data() + 2 * E;
      Vec y(static_cast<size_t>(E));
      for (int i = 0; i < E; ++i) {
        const float p = bb[i] == 0.0f ? -1e30f : pp[i];
        float ww = u[i] + k[i];
        float qq = std::fmax(p, ww);
        float e1 = expf(p - qq);
        float e2 = expf(ww - qq);
        const float a = e1 * aa[i] + e2 * v[i];
        const float b = e1 * bb[i] + e2;
        ww = p + td[i];
        qq = std::fmax(ww, k[i]);
        e1 = expf(ww - qq);
        e2 = expf(k[i] - qq);
        aa[i] = e1 * aa[i] + e2 * v[i];
        bb[i] = e1 * bb[i] + e2;
        pp[i] = qq;
        y[i] = a / b;
      }
      att = matvec(w("att.output.weight"), mul(r, y));
    } else if (major == 5) {
      const Vec xk = mix_v4(xa, xp, w("att.time_mix_k"));
      const Vec xv = mix_v4(xa, xp, w("att.time_mix_v"));
      const Vec xr = mix_v4(xa, xp, w("att.time_mix_r"));
      see(l, "att.receptance.weight", xr);
      see(l, "att.key.weight", xk);
      see(l, "att.value.weight", xv);
      const Vec r = matvec(w("att.receptance.weight"), xr);
      const Vec k = matvec(w("att.key.weight"), xk);
      const Vec v = matvec(w("att.value.weight"), xv);
      const bool v52 = m.version.minor >= 2;
      const Vec u = v52 ? w("att.time_faaaa") : per_head(w("att.time_first"), H, N);
      const Vec td = v52 ? w("att.time_decay") : per_head(w("att.time_decay"), H, N);
      Vec y = wkv5(r, k, v, td, u, H, N, s.wkv[size_t(l)]);
      see(l, "wkv", s.wkv[size_t(l)]);
      y = norm(y, w("att.ln_x.weight"), w("att.ln_x.bias"), H, 1e-5f);
      if (v52) {
        const Vec xg = mix_v4(xa, xp, w("att.time_mix_g"));
        see(l, "att.gate.weight", xg);
        y = mul(y, silu(matvec(w("att.gate.weight"), xg)));
      }
      see(l, "att.output.weight", y);
      att = matvec(w("att.output.weight"), y);
    } else if (major == 6) {
      const Vec sx = sub(xp, xa);
      const Vec xxx = mix_v6(xa, sx, w("att.time_maa_x"));
      const Vec& w1 = w("att.time_maa_w1");
      const Vec& w2 = w("att.time_maa_w2");
      const size_t D = w1.size() / size_t(E) / 5;
      const char* maa[5] = {"att.time_maa_w", "att.time_maa_k", "att.time_maa_v", "att.time_maa_r",
                            "att.time_maa_g"};
      Vec xs[5];  // xw, xk, xv, xr, xg
      see(l, "att.time_maa_w1", xxx);
      static const char* const w2n[5] = {"att.time_maa_w2.w", "att.time_maa_w2.k", "att.time_maa_w2.v",
                                         "att.time_maa_w2.r", "att.time_maa_w2.g"};
      for (size_t g = 0; g < 5; ++g) {
        const Vec h = tanh_(matvec_rows(w1, xxx, g * D, D));
        see(l, w2n[g], h);
        const Vec w2g(w2.begin() + int64_t(g * E * D), w2.begin() + int64_t((g + 1) * E * D));
        const Vec mg = matvec(w2g, h, &w(maa[g]));  // time_maa_c + LoRA_c
        xs[g] = mix_v6(xa, sx, mg);
      }
      see(l, "att.receptance.weight", xs[3]);
      see(l, "att.key.weight", xs[1]);
      see(l, "att.value.weight", xs[2]);
      see(l, "att.gate.weight", xs[4]);
      see(l, "att.time_decay_w1", xs[0]);
      const Vec r = matvec(w("att.receptance.weight"), xs[3]);
      const Vec k = matvec(w("att.key.weight"), xs[1]);
      const Vec v = matvec(w("att.value.weight"), xs[2]);
      const Vec g = silu(matvec(w("att.gate.weight"), xs[4]));
      const Vec dh = tanh_(matvec(w("att.time_decay_w1"), xs[0]));
      see(l, "att.time_decay_w2", dh);
      Vec dw = matvec(w("att.time_decay_w2"), dh, &w("att.time_decay"));
      dw = exp_(scale(exp_(dw), -1.0f));  // exp(-exp(w))
      Vec y = wkv5(r, k, v, dw, w("att.time_faaaa"), H, N, s.wkv[size_t(l)]);
      see(l, "wkv", s.wkv[size_t(l)]);
      y = norm(y, w("att.ln_x.weight"), w("att.ln_x.bias"), H, 64e-5f);
      const Vec yg = mul(y, g);
      see(l, "att.output.weight", yg);
      att = matvec(w("att.output.weight"), yg);
    } else {  // 7
      const Vec sx = sub(xp, xa);
      const Vec& mu = w("att.x_rwkvag");  // r, w, k, v, a, g
      Vec xs[6];
      for (int c = 0; c < 6; ++c)
        xs[c] = mix_v6(xa, sx, Vec(mu.begin() + int64_t(c) * E, mu.begin() + int64_t(c + 1) * E));
      see(l, "att.receptance.weight", xs[0]);
      see(l, "att.g1", xs[5]);
      see(l, "att.a1", xs[4]);
      see(l, "att.w1", xs[1]);
      see(l, "att.key.weight", xs[2]);
      see(l, "att.value.weight", xs[3]);
      const Vec r = matvec(w("att.receptance.weight"), xs[0]);
      const Vec gh = sigmoid(matvec(w("att.g1"), xs[5]));
      see(l, "att.g2", gh);
      const Vec g = matvec(w("att.g2"), gh);
      const Vec ah = matvec(w("att.a1"), xs[4]);
      see(l, "att.a2", ah);
      const Vec a = sigmoid(matvec(w("att.a2"), ah, &w("att.a0")));
      const Vec wh = tanh_(matvec(w("att.w1"), xs[1]));
      see(l, "att.w2", wh);
      Vec dw = matvec(w("att.w2"), wh, &w("att.w0"));
      dw = exp_(scale(sigmoid(dw), -0.606531f));
      Vec k = matvec(w("att.key.weight"), xs[2]);
      Vec kk = mul(k, w("att.k_k"));
      {  // l2 normalize per head
        Vec y(kk.size());
        for (int h = 0; h < H; ++h) {
          double sum = 0.0;
          for (int j = 0; j < N; ++j) sum += double(kk[size_t(h) * N + j] * kk[size_t(h) * N + j]);
          const float sc = 1.0f / std::max(sqrtf(float(sum)), 1e-12f);
          for (int j = 0; j < N; ++j) y[size_t(h) * N + j] = kk[size_t(h) * N + j] * sc;
        }
        kk = y;
      }
      const Vec ka = mul(k, w("att.k_a"));
      k = add(k, sub(mul(a, ka), ka));
      Vec v = matvec(w("att.value.weight"), xs[3]);
      if (l == 0) {
        v_first = v;
      } else {
        see(l, "att.v1", xs[3]);
        const Vec vh = matvec(w("att.v1"), xs[3]);
        see(l, "att.v2", vh);
        const Vec gate = sigmoid(matvec(w("att.v2"), vh, &w("att.v0")));
        v = add(v, mul(sub(v_first, v), gate));
      }
      Vec y = wkv7(r, dw, k, v, scale(kk, -1.0f), mul(kk, a), H, N, s.wkv[size_t(l)]);
      see(l, "wkv", s.wkv[size_t(l)]);
      y = norm(y, w("att.ln_x.weight"), w("att.ln_x.bias"), H, 64e-5f);
      Vec bonus(static_cast<size_t>(E));
      const Vec& rk = w("att.r_k");
      for (int h = 0; h < H; ++h) {
        double sum = 0.0;
        for (int j = 0; j < N; ++j) {
          const size_t i = size_t(h) * N + j;
          const float kr = k[i] * r[i];
          sum += double(kr * rk[i]);
        }
        const float sc = float(sum);
        for (int j = 0; j < N; ++j) bonus[size_t(h) * N + j] = v[size_t(h) * N + j] * sc;
      }
      y = add(y, bonus);
      const Vec yg = mul(y, g);
      see(l, "att.output.weight", yg);
      att = matvec(w("att.output.weight"), yg);
    }
    x = add(x, att);
    // ---- channel mix ----
    const Vec xf = norm(x, w("ln2.weight"), w("ln2.bias"), 1, 1e-5f);
    const Vec fp = shift(s.ffn_shift[size_t(l)], xf);
    if (obs) see(l, "ffn.sx", sub(fp, xf));
    Vec ffn;
    if (major <= 5 || major == 6) {
      Vec xk, xr;
      if (major <= 5) {
        xk = mix_v4(xf, fp, w("ffn.time_mix_k"));
        xr = mix_v4(xf, fp, w("ffn.time_mix_r"));
      } else {
        const Vec sx = sub(fp, xf);
        xk = mix_v6(xf, sx, w("ffn.time_maa_k"));
        xr = mix_v6(xf, sx, w("ffn.time_maa_r"));
      }
      see(l, "ffn.receptance.weight", xr);
      see(l, "ffn.key.weight", xk);
      const Vec r = sigmoid(matvec(w("ffn.receptance.weight"), xr));
      const Vec k = relu_squared(matvec(w("ffn.key.weight"), xk));
      see(l, "ffn.value.weight", k);
      ffn = mul(r, matvec(w("ffn.value.weight"), k));
    } else {
      const Vec xk = mix_v6(xf, sub(fp, xf), w("ffn.x_k"));
      see(l, "ffn.key.weight", xk);
      const Vec kr = relu_squared(matvec(w("ffn.key.weight"), xk));
      see(l, "ffn.value.weight", kr);
      ffn = matvec(w("ffn.value.weight"), kr);
    }
    x = add(x, ffn);
  }
  see(m.n_layer, "x", x);
  x = norm(x, m.v("ln_out.weight"), m.v("ln_out.bias"), 1, 1e-5f);
  see(-1, "head.weight", x);
  return matvec(m.v("head.weight"), x);
}

}  // namespace fq::rwkv
