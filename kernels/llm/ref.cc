// Scalar reference of the llm family: the executable specification (see fq/kernels/llm.h). Every
// other variant must produce the same bytes. Written for clarity, not speed.
#include "fq/kernels/llm.h"

#include "llm_internal.h"

namespace fq::k {

// kExp2HiQ30[a] = round(2^30 * 2^(-a/16)), kExp2LoQ30[b] = round(2^30 * 2^(-b/256)), a, b = 0..15,
// kExp2ChordQ32 = round(2^32 * (1 - 2^(-1/256))) (python3, decimal arithmetic at 60 digits, half up).
extern const uint32_t kExp2HiQ30[16] = {
    1073741824u, 1028218693u, 984625594u, 942880699u, 902905651u, 864625413u, 827968132u, 792865000u,
    759250125u, 727060411u, 696235434u, 666717336u, 638450708u, 611382493u, 585461881u, 560640218u,
};
extern const uint32_t kExp2LoQ30[16] = {
    1073741824u, 1070838486u, 1067942999u, 1065055341u, 1062175491u, 1059303428u, 1056439131u, 1053582579u,
    1050733751u, 1047892626u, 1045059183u, 1042233401u, 1039415261u, 1036604740u, 1033801819u, 1031006477u,
};

int64_t shift_s(int64_t x, int s) { return llm::shs(x, s); }
RowScale normalize_scale(uint64_t v, int e) { return llm::normalize(v, e); }
int64_t exp_q(int64_t x, int frac_bits) { return llm::expq(x, frac_bits); }
int64_t ln_q16(uint64_t z) { return llm::lnq16(z); }
int64_t exp_shift(int64_t x, int frac_bits) { return llm::expshift(x, frac_bits); }

int64_t quantize_row(const int64_t* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* d) {
  uint64_t A0 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t m = llm::mag64(v[i]);
    if (m > A0) A0 = m;
  }
  if (A0 == 0) {
    for (int64_t i = 0; i < n; ++i) {
      if (qmax <= 127) q8[i] = 0; else q16[i] = 0;
    }
    *d = 0;
    return 0;
  }
  const llm::QParams p = llm::qparams(A0, qmax);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t q = llm::qelem(v[i], p, qmax);
    if (qmax <= 127) q8[i] = int8_t(q); else q16[i] = int16_t(q);
  }
  *d = p.d;
  return p.A;
}

RowScale scale_of(int64_t A, int qmax, int d, int32_t mant_in, int e_in) {
  return llm::scale_of_i(A, qmax, d, mant_in, e_in);
}

bool hadamard_size_ok(int64_t n) { return llm::hadamard_block(n) != 0; }

size_t rmsnorm_scratch(int64_t d) { return size_t(64 + 8 * (llm::pad16(d) + 16)); }
size_t swiglu_scratch(int64_t n) { return size_t(64 + 8 * (llm::pad16(n) + 16)); }
size_t hadamard_scratch(int64_t n) { return size_t(64 + 12 * (llm::pad16(n) + 16)); }
// softmax: e (int64 [n']), tables (int16 4 x [4][64] + int32/int64 [256 + 16]); layernorm: w (int64 [n']).
size_t softmax_scratch(int64_t n) { return size_t(64 + 8 * (llm::pad16(n) + 16) + 8192); }
size_t layernorm_scratch(int64_t d) { return size_t(64 + 8 * (llm::pad16(d) + 16)); }
size_t attention_scratch(const AttentionArgs& a) {
  return llm::attn_scratch_bytes(a);
}

namespace llm {

void ref_rmsnorm(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* xs = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d;
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t* x = a.x + m * D;
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * D : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * D;
    uint64_t A0 = 0;
    for (int64_t i = 0; i < D; ++i) {
      const uint64_t v = mag64(x[i]);
      if (v > A0) A0 = v;
    }
    if (A0 == 0) {
      for (int64_t i = 0; i < D; ++i) {
        if (y8) y8[i] = 0; else y16[i] = 0;
      }
      a.ys[m] = RowScale{};
      continue;
    }
    const int c = bitlen64(A0) - 24;
    int64_t ss = 0;
    for (int64_t i = 0; i < D; ++i) {
      xs[i] = shs(x[i], c);
      ss += xs[i] * xs[i];
    }
    int d = 0;
    const int64_t A = quantize_row(xs, D, a.qmax, y8, y16, &d);
    a.ys[m] = rms_row_scale(a, c, ss, A, d);
  }
}

void ref_rope(const RopeArgs& a, int64_t m0, int64_t m1) {
  const int hd = a.head_dim, half = hd / 2;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t p = int64_t{a.pos} + m;
    const int16_t* x = a.x + m * a.width;
    int16_t* y = a.y + m * a.width;
    if (p < 0 || p >= a.table_rows) {  // outside the table (a precondition): zeros
      for (int64_t i = 0; i < a.width; ++i) y[i] = 0;
      a.ys[m] = RowScale{};
      continue;
    }
    const int16_t* t = a.table + p * hd;
    for (int64_t h0 = 0; h0 + hd <= a.width; h0 += hd)
      for (int i = 0; i < half; ++i) {
        const int64_t xa = x[h0 + 2 * i], xb = x[h0 + 2 * i + 1];
        const int64_t c = t[2 * i], s = t[2 * i + 1];
        y[h0 + 2 * i] = saturate<int16_t>(rshift_round(xa * c - xb * s, 15));
        y[h0 + 2 * i + 1] = saturate<int16_t>(rshift_round(xa * s + xb * c, 15));
      }
    const RowScale in = a.xs[m];
    a.ys[m] = in.mant == 0 ? RowScale{} : RowScale{in.mant, clamp_exp(int64_t{in.exp} - 1)};
  }
}

void ref_attention_cache(const AttentionArgs& a, void* scratch) {
  if (!attn_valid(a)) return;
  const AttnScratch s = attn_scratch(scratch, a);
  cache_write(a, [&s](const int16_t* src, int hd, const RowScale& sc, int8_t* dst) {
    for (int j = 0; j < hd; ++j) s.V[j] = src[j];
    int d = 0;
    const int64_t A = quantize_row(s.V, hd, 127, dst, nullptr, &d);
    return scale_of_i(A, 127, d, sc.mant, sc.exp);
  });
}

void ref_attention_heads(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch) {
  const int H = a.heads, G = a.kv_heads, hd = a.head_dim;
  const bool ok = attn_valid(a);
  const AttnScratch s = attn_scratch(scratch, a);
  const int64_t clip = attn_clip(a);
  for (int64_t t = u0; t < u1; ++t) {
    const int64_t m = t / H;
    const int h = int(t % H);
    int64_t* o = a.work + m * H * hd + int64_t{h} * hd;
    for (int j = 0; j < hd; ++j) o[j] = 0;
    a.work_exp[t] = INT32_MAX;
    if (!ok) continue;
    const int g = h / (H / G);
    const int64_t p = a.pos + m, rw = int64_t{G} * hd;
    const int16_t* q = a.q + m * H * hd + int64_t{h} * hd;
    const RowScale qs = a.qs[m];
    int64_t Lmax = INT64_MIN;
    for (int64_t u = 0; u <= p; ++u) {
      const int8_t* kr = a.kc + u * rw + int64_t{g} * hd;
      int32_t su = 0;
      for (int j = 0; j < hd; ++j) su += int32_t{q[j]} * kr[j];
      const RowScale ks = a.kcs[u * G + g];
      const int64_t w = int64_t{su} * ks.mant;
      const int64_t L = clamp64(shs(w * qs.mant, int64_t{qs.exp} + ks.exp - 16), -kL40, kL40);
      s.L[u] = L;
      if (L > Lmax) Lmax = L;
    }
    int64_t Z = 0;
    for (int64_t u = 0; u <= p; ++u) {
      int64_t x = s.L[u] - Lmax;
      if (x < -clip) x = -clip;
      s.E[u] = expq(x, 16);
      Z += s.E[u];
    }
    const int64_t F = kSat62 / Z;  // (2^62 - 1) / Z
    int64_t Emin = INT64_MAX;
    for (int64_t u = 0; u <= p; ++u) {
      const RowScale vs = a.vcs[u * G + g];
      if (vs.mant != 0 && vs.exp < Emin) Emin = vs.exp;
    }
    if (Emin == INT64_MAX) continue;
    for (int64_t u = 0; u <= p; ++u) {
      const RowScale vs = a.vcs[u * G + g];
      const int64_t pu = rshift_round(s.E[u] * F, 46);
      const int64_t c = shs(pu * vs.mant, int64_t{vs.exp} - Emin);
      if (c == 0) continue;
      const int8_t* vr = a.vc + u * rw + int64_t{g} * hd;
      for (int j = 0; j < hd; ++j) o[j] += c * vr[j];
    }
    a.work_exp[t] = clamp_exp(Emin + 16);
  }
}

void ref_attention_out(const AttentionArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  attn_out_rows(
      a, m0, m1,
      [](int64_t* oh, int hd, int64_t sh) {
        uint64_t mx = 0;
        for (int j = 0; j < hd; ++j) {
          oh[j] = shs(oh[j], sh);
          mx = mag64(oh[j]) > mx ? mag64(oh[j]) : mx;
        }
        return mx;
      },
      [&a](const int64_t* o, int64_t W, int8_t* y, int64_t Er, uint64_t /*A0*/) {
        int d = 0;
        const int64_t A = quantize_row(o, W, a.qmax, y, nullptr, &d);
        return scale_of_i(A, a.qmax, d, 1, Er);
      });
}

const uint16_t* sig_table() {
  struct Table {
    uint16_t t[kSigLast + 2] = {};
    Table() {
      for (int64_t z = 0; z <= kSigLast; ++z) {
        const int64_t E = expq(-z, 12) >> 14;
        t[z] = uint16_t((int64_t{1} << 32) / ((int64_t{1} << 16) + E) - (int64_t{1} << 15));
      }
    }
  };
  static const Table table;  // thread-safe initialization on first use
  return table.t;
}

void ref_swiglu(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t N = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* g = a.gate + m * N;
    const int16_t* u = a.up + m * N;
    const RowScale gs = a.gs[m], us = a.us[m];
    const int64_t gsh = int64_t{gs.exp} - 12;
    for (int64_t i = 0; i < N; ++i) v[i] = swiglu_v(g[i], u[i], gs.mant, gsh);
    const RowScale mu = normalize(uint64_t(int64_t{gs.mant} * us.mant),
                                  int64_t{gs.exp} + us.exp + 16);
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * N : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * N;
    int d = 0;
    const int64_t A = quantize_row(v, N, a.qmax, y8, y16, &d);
    a.ys[m] = scale_of_i(A, a.qmax, d, mu.mant, mu.exp);
  }
}

void ref_residual_add(const ResidualArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale ys = a.ys[m];
    const int64_t sh = int64_t{ys.exp} - a.e;
    for (int64_t i = 0; i < a.d; ++i) {
      const int64_t k = m * a.d + i;
      a.out[k] = saturate<int32_t>(a.h[k] + shs(int64_t{a.y[k]} * ys.mant, sh));
    }
  }
}

void ref_embedding(const EmbeddingArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    int32_t* out = a.out + m * a.d;
    const int64_t id = a.ids[m];
    if (id < 0 || id >= a.vocab) {
      for (int64_t i = 0; i < a.d; ++i) out[i] = 0;
      continue;
    }
    const int8_t* t = a.table + id * a.d;
    const RowScale ts = a.ts[id];
    const int64_t sh = int64_t{ts.exp} - a.e;
    for (int64_t i = 0; i < a.d; ++i) out[i] = saturate<int32_t>(shs(int64_t{t[i]} * ts.mant, sh));
  }
}

void ref_hadamard(const HadamardArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* t = reinterpret_cast<int64_t*>(align64(scratch));
  const int b = hadamard_block(a.n);
  for (int64_t m = m0; m < m1; ++m) {
    int8_t* y = a.y + m * a.n;
    if (b == 0) {
      for (int64_t i = 0; i < a.n; ++i) y[i] = 0;
      a.ys[m] = RowScale{};
      continue;
    }
    if (a.x16) hadamard_row(a.x16 + m * a.n, a.n, b, t);
    else hadamard_row(a.x + m * a.n, a.n, b, t);
    int d = 0;
    const int64_t A = quantize_row(t, a.n, a.qmax, y, nullptr, &d);
    a.ys[m] = scale_of_i(A, a.qmax, d, a.xs[m].mant, a.xs[m].exp);
  }
}

void ref_softmax(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* e = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t n = a.n, clip = sm_clip(a);
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t V = sm_valid(a, m), base = m * n;
    const RowScale s = a.xs[m * a.xs_stride];
    auto xv = [&](int64_t i) -> int64_t {
      return a.in_bits == 8 ? static_cast<const int8_t*>(a.x)[base + i] : static_cast<const int16_t*>(a.x)[base + i];
    };
    for (int64_t i = V; i < n; ++i) sm_store(a, base + i, sm_masked(a.out));
    if (V == 0) continue;
    int64_t qx = INT64_MIN;
    for (int64_t i = 0; i < V; ++i) qx = xv(i) > qx ? xv(i) : qx;
    int64_t Z = 0;
    for (int64_t i = 0; i < V; ++i) {
      e[i] = expq(sm_t(xv(i) - qx, s, clip), 16);
      Z += e[i];
    }
    const int64_t F = kSat62 / Z;
    const int64_t lnZ = a.out == kLogSoftmaxI16 ? lnq16(uint64_t(Z)) : 0;
    for (int64_t i = 0; i < V; ++i) {
      const int64_t t = a.out == kLogSoftmaxI16 ? sm_t(xv(i) - qx, s, clip) : 0;
      sm_store(a, base + i, sm_out(a.out, e[i], t, F, lnZ));
    }
  }
}

void ref_exp(const ExpArgs& a, int64_t i0, int64_t i1) {
  const int F = exp_bits(a);
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t x = a.x[i] < 0 ? a.x[i] : 0;
    a.y[i] = uint32_t(a.kind == kExpShift ? expshift(x, F) : expq(x, F));
  }
}

void ref_layernorm(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d, runs = a.segments < 1 ? 1 : a.segments, L = D / runs;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const RowScale xs = a.xs[m * a.xs_stride];
    for (int64_t s0 = 0; s0 < D; s0 += L) {  // one run of statistics (the whole row unless segments)
      const int64_t b = base + s0;
      const int64_t x0 = ln_x(a, b);
      uint64_t A0 = 0;
      for (int64_t i = 0; i < L; ++i) {
        const uint64_t v = mag64(ln_x(a, b + i) - x0);
        if (v > A0) A0 = v;
      }
      const int c = bitlen64(A0) - ln_P(L);
      int64_t S = 0;
      for (int64_t i = 0; i < L; ++i) S += shs(ln_x(a, b + i) - x0, c);
      const int64_t mu = ln_mu(S, L);
      int64_t ms = 0;
      for (int64_t i = 0; i < L; ++i) {
        const int64_t dd = shs(ln_x(a, b + i) - x0, c) - mu;
        ms += dd * dd;
      }
      const LnRow r = ln_row(a, xs, c, mu, ms, L);
      if (runs == 1) ln_stats(a, m, x0, c, r);
      for (int64_t i = 0; i < L; ++i)
        w[s0 + i] = ln_w(a, shs(ln_x(a, b + i) - x0, c), r, ln_ch(a, m, s0 + i));
    }
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + base : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + base;
    int d = 0;
    const int64_t A = quantize_row(w, D, a.qmax, y8, y16, &d);
    a.ys[m] = scale_of_i(A, a.qmax, d, 1, int64_t{a.ae} + 16);
  }
}

}  // namespace llm

extern const LlmKernel kLlmScalar = {
    Isa::scalar,           "scalar",
    llm::ref_rmsnorm,      llm::ref_rope,
    llm::ref_attention_cache, llm::ref_attention_heads, llm::ref_attention_out,
    llm::ref_swiglu,       llm::ref_residual_add,
    llm::ref_embedding,    llm::ref_hadamard,
    llm::ref_softmax,      llm::ref_layernorm,
    llm::ref_exp};

}  // namespace fq::k
