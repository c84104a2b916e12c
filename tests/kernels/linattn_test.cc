// linattn family (fq/kernels/linattn.h):
//  (1) the scalar reference against a double-precision model of the real recurrence (linear, gated
//      per head / per key, delta, gated delta, GQA, pre-decay retrieval), with the error bounds of
//      docs/accuracy.md ("Integer linear attention (linattn family)") enforced here;
//  (2) every compiled variant this machine may run (test::runnable) writes the same bytes as the
//      scalar reference (state, work, y, ys) over random shapes, head splits and extreme values;
//  (3) T tokens in one call == T calls of one token (the prefill / decode identity);
//  (4) invalid arguments leave the state untouched and give y = 0, ys = {0, 0}.
#include "fq/kernels/linattn.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"

namespace fq::k {
namespace {

using test::Rng;
using test::uniform;

// ---- documented accuracy bounds (docs/accuracy.md, "Integer linear attention") ------------------
// State: |S_int 2^-Es - S_double| <= kStateErrRel * max|S_double| (Es calibrated so that
// max|S| 2^Es is in [2^28, 2^29)); output: |real(y) - o_double| <= kOutErrRel * max|o| of the row
// plus the state error propagated through q (kOutStateGain * sum|q| * state error).
constexpr double kStateErrRel = 2e-7;     // rounding of the state updates (int32 state, 2^-28 of max)
// Gated rules add exp_q's error per token: its log2(e) constant (94548 / 2^16, relative 4.9e-6 of
// the exponent), its chord (1e-6) and the rounding of t to Q(F) (0.35 * 2^-F):
// relative kGatePerUnit * |x| + kGatePerStep + 0.35 * 2^-F per token, summed over tokens.
constexpr double kGatePerUnit = 5e-6;
constexpr double kGatePerStep = 1.1e-6;
constexpr double kOutErrRel = 8.0e-5;     // int16 rounding (0.5 / 32767) + two 15-bit mantissas (q scale x scale, row scale)
constexpr double kOutStateGain = 1.5;

double real(int64_t q, RowScale s) { return double(q) * s.mant * std::ldexp(1.0, -s.exp); }

RowScale rscale(Rng& r, int emin, int emax) {
  return RowScale{int32_t(uniform(r, 1 << 14, (1 << 15) - 1)), int32_t(uniform(r, emin, emax))};
}

const LinattnKernel& scalar() {
  size_t n = 0;
  return *linattn_kernels(&n)[0];
}

struct Problem {
  int64_t T = 1;
  int Hq = 1, Hk = 1, dk = 1, dv = 1;
  bool gate = false, per_key = false, delta = false, sep_a = false, pre = false;
  int F = 16, Es = 20;
  RowScale scale{16384, 14};
  std::vector<int16_t> q, k, v, a;
  std::vector<RowScale> qs, ks, vs, as;
  std::vector<int32_t> decay, beta, state0;

  LinattnArgs args(int32_t* state, int16_t* y, RowScale* ys, int64_t* work, int64_t t0 = 0, int64_t rows = -1) const {
    LinattnArgs A{};
    const int64_t R = rows < 0 ? T : rows;
    A.q = q.data() + t0 * Hq * dk, A.qs = qs.data() + t0;
    A.k = k.data() + t0 * Hk * dk, A.ks = ks.data() + t0;
    A.v = v.data() + t0 * Hk * dv, A.vs = vs.data() + t0;
    A.a = sep_a ? a.data() + t0 * Hk * dk : nullptr, A.as = sep_a ? as.data() + t0 : nullptr;
    A.decay = gate ? decay.data() + t0 * Hk * (per_key ? dk : 1) : nullptr;
    A.decay_per_key = per_key, A.decay_frac = F;
    A.beta = delta ? beta.data() + t0 * Hk : nullptr;
    A.retrieve_pre_decay = pre;
    A.rows = R, A.q_heads = Hq, A.kv_heads = Hk, A.dk = dk, A.dv = dv, A.state_exp = Es, A.scale = scale;
    A.state = state, A.y = y, A.ys = ys, A.work = work;
    return A;
  }
};

struct Result {
  std::vector<int32_t> state;
  std::vector<int16_t> y;
  std::vector<RowScale> ys;
  std::vector<int64_t> work;
};

// Runs with head units [0, split) [split, Hk) (split in [0, Hk]), token chunks of `chunk` rows.
Result run(const LinattnKernel& K, const Problem& P, int split = 0, int64_t chunk = 0) {
  Result r;
  r.state = P.state0;
  r.y.assign(size_t(P.T * P.Hq * P.dv), 0x5555);
  r.ys.assign(size_t(P.T), RowScale{77, 77});
  r.work.assign(size_t(P.T * P.Hq * P.dv), 0);
  const int64_t step = chunk > 0 ? chunk : std::max<int64_t>(P.T, 1);
  for (int64_t t0 = 0; t0 < P.T || (P.T == 0 && t0 == 0); t0 += step) {
    const int64_t rows = std::min(step, P.T - t0);
    const int64_t off = t0 * P.Hq * P.dv;
    LinattnArgs A = P.args(r.state.data(), r.y.data() + off, r.ys.data() + t0, r.work.data() + off, t0, rows);
    if (split > 0) K.heads(A, 0, split);
    K.heads(A, split, P.Hk);
    K.out(A, 0, rows);
    if (P.T == 0) break;
  }
  return r;
}

Problem random_problem(Rng& r, bool extreme) {
  Problem P;
  P.T = uniform(r, 1, 6);
  P.Hk = int(uniform(r, 1, 3));
  P.Hq = P.Hk * int(uniform(r, 1, 3));
  P.dk = int(uniform(r, 1, 40));
  P.dv = int(uniform(r, 1, 40));
  P.gate = uniform(r, 0, 1), P.per_key = uniform(r, 0, 1), P.delta = uniform(r, 0, 1);
  P.sep_a = P.delta && uniform(r, 0, 3) == 0, P.pre = uniform(r, 0, 3) == 0;
  P.F = int(uniform(r, 4, 28));
  P.Es = int(extreme ? uniform(r, -40, 60) : uniform(r, 10, 30));
  P.scale = uniform(r, 0, 9) == 0 ? RowScale{} : rscale(r, 0, 20);
  const int64_t lim = extreme ? 32767 : 2000;
  auto i16 = [&](size_t n, std::vector<int16_t>* v) {
    v->resize(n);
    const int mode = int(uniform(r, 0, 5));
    for (auto& e : *v) e = int16_t(mode == 0 && extreme ? (uniform(r, 0, 1) ? 32767 : -32767) : uniform(r, -lim, lim));
  };
  auto scales = [&](std::vector<RowScale>* s) {
    s->resize(size_t(P.T));
    for (auto& e : *s) {
      e = extreme ? rscale(r, -30, 70) : rscale(r, 25, 32);
      if (extreme && uniform(r, 0, 6) == 0) e = uniform(r, 0, 1) ? RowScale{} : RowScale{32768, int32_t(uniform(r, -30, 70))};
    }
  };
  i16(size_t(P.T * P.Hq * P.dk), &P.q), i16(size_t(P.T * P.Hk * P.dk), &P.k), i16(size_t(P.T * P.Hk * P.dv), &P.v);
  i16(size_t(P.T * P.Hk * P.dk), &P.a);
  scales(&P.qs), scales(&P.ks), scales(&P.vs), scales(&P.as);
  P.decay.resize(size_t(P.T * P.Hk * P.dk));
  for (auto& d : P.decay)
    d = extreme ? int32_t(uniform(r, 0, 3) == 0 ? uniform(r, INT32_MIN, INT32_MAX) : uniform(r, -(int64_t{1} << 26), 100))
                : int32_t(uniform(r, -(int64_t{1} << (P.F - 1)), 0));
  P.beta.resize(size_t(P.T * P.Hk));
  for (auto& b : P.beta) b = int32_t(extreme ? uniform(r, -(1 << 18), 1 << 18) : uniform(r, 0, 1 << 15));
  P.state0.resize(size_t(P.Hk * P.dk * P.dv));
  for (auto& s : P.state0)
    s = int32_t(extreme ? (uniform(r, 0, 4) == 0 ? (uniform(r, 0, 1) ? INT32_MAX : INT32_MIN) : uniform(r, INT32_MIN, INT32_MAX))
                        : uniform(r, -(1 << 20), 1 << 20));
  return P;
}

// ---- (1) accuracy against double ------------------------------------------------------------------

struct Model {
  std::vector<double> S, o;   // final state [Hk][dk][dv], outputs [T][Hq*dv]
  double smax = 0;             // max |S| over every step
};

Model model(const Problem& P) {
  Model M;
  const int dk = P.dk, dv = P.dv, grp = P.Hq / P.Hk;
  M.S.resize(P.state0.size());
  for (size_t i = 0; i < M.S.size(); ++i) M.S[i] = std::ldexp(double(P.state0[i]), -P.Es);
  M.o.assign(size_t(P.T * P.Hq * dv), 0);
  const double sc = real(1, P.scale);
  for (int64_t t = 0; t < P.T; ++t) {
    for (int g = 0; g < P.Hk; ++g) {
      double* S = &M.S[size_t(g * dk * dv)];
      std::vector<double> r(size_t(dv), 0);
      auto retrieve = [&] {
        for (int j = 0; j < dv; ++j) {
          double s = 0;
          for (int i = 0; i < dk; ++i) {
            const size_t ai = size_t((t * P.Hk + g) * dk + i);
            s += (P.sep_a ? real(P.a[ai], P.as[size_t(t)]) : real(P.k[ai], P.ks[size_t(t)])) * S[i * dv + j];
          }
          r[size_t(j)] = s;
        }
      };
      if (P.delta && P.pre) retrieve();
      if (P.gate)
        for (int i = 0; i < dk; ++i) {
          const int F = std::min(24, std::max(8, P.F));   // the kernel clamps F into [8, 24]
          const double x = std::ldexp(double(P.per_key ? P.decay[size_t((t * P.Hk + g) * dk + i)] : P.decay[size_t(t * P.Hk + g)]), -F);
          for (int j = 0; j < dv; ++j) S[i * dv + j] *= std::exp(std::min(x, 0.0));
        }
      if (P.delta && !P.pre) retrieve();
      const double b = P.delta ? std::ldexp(double(P.beta[size_t(t * P.Hk + g)]), -15) : 1;
      for (int j = 0; j < dv; ++j) {
        const double vv = real(P.v[size_t((t * P.Hk + g) * dv + j)], P.vs[size_t(t)]);
        const double u = P.delta ? b * (vv - r[size_t(j)]) : vv;
        for (int i = 0; i < dk; ++i) {
          S[i * dv + j] += real(P.k[size_t((t * P.Hk + g) * dk + i)], P.ks[size_t(t)]) * u;
          M.smax = std::max(M.smax, std::fabs(S[i * dv + j]));
        }
      }
      for (int h = g * grp; h < (g + 1) * grp; ++h)
        for (int j = 0; j < dv; ++j) {
          double s = 0;
          for (int i = 0; i < dk; ++i) s += real(P.q[size_t((t * P.Hq + h) * dk + i)], P.qs[size_t(t)]) * S[i * dv + j];
          M.o[size_t((t * P.Hq + h) * dv + j)] = sc * s;
        }
    }
  }
  return M;
}

TEST_CASE("linattn scalar reference vs double", "[linattn]") {
  Rng r(20261127);
  double worst_state = 0, worst_out = 0, worst_state_ungated = 0, ratio_state = 0, ratio_out = 0;
  for (int iter = 0; iter < 400; ++iter) {
    Rng r2(uint64_t(iter) * 7 + 1);
    Problem P = random_problem(r2, false);   // shape, rule and F; the data is redrawn below
    P.T = uniform(r, 1, 24);
    {
      Rng r3(uint64_t(iter) + 99);
      auto fill = [&](std::vector<int16_t>* v, size_t n) { v->resize(n); for (auto& e : *v) e = int16_t(uniform(r3, -32767, 32767)); };
      fill(&P.q, size_t(P.T * P.Hq * P.dk)), fill(&P.k, size_t(P.T * P.Hk * P.dk)), fill(&P.v, size_t(P.T * P.Hk * P.dv));
      fill(&P.a, size_t(P.T * P.Hk * P.dk));
      for (auto* s : {&P.qs, &P.ks, &P.vs, &P.as}) { s->resize(size_t(P.T)); for (auto& e : *s) e = rscale(r3, 22, 24); }
      // keys of moderate norm so that the delta rule is contractive (as in Gated DeltaNet)
      for (auto& e : P.ks) e.exp = 30 + int(std::ceil(std::log2(std::sqrt(double(P.dk)))));
      P.decay.resize(size_t(P.T * P.Hk * P.dk));
      for (auto& d : P.decay) d = int32_t(uniform(r3, -(int64_t{1} << (P.F - 1)), 0));
      P.beta.resize(size_t(P.T * P.Hk));
      for (auto& b : P.beta) b = int32_t(uniform(r3, 0, 1 << 15));
      P.a = P.k, P.as = P.ks;   // a separate retrieval key path, with a stable (a = k) recurrence
    }
    P.scale = rscale(r, 14, 16);
    // calibrate Es: max|S| over the run (double model, state0 = 0 first), then the real start state
    P.Es = 0;
    std::fill(P.state0.begin(), P.state0.end(), 0);
    Model M0 = model(P);
    const double smax = M0.smax;
    int e = 0;
    std::frexp(smax > 0 ? smax : 1, &e);
    P.Es = 28 - e;   // max|S| 2^Es in [2^27, 2^28): 2x headroom for the intermediate states
    for (auto& s : P.state0) s = int32_t(uniform(r, -(1 << 26), 1 << 26));
    const Model M = model(P);
    const Result R = run(scalar(), P);
    double sm = 0, se = 0;
    for (size_t i = 0; i < M.S.size(); ++i) {
      sm = std::max(sm, std::fabs(M.S[i]));
      se = std::max(se, std::fabs(std::ldexp(double(R.state[i]), -P.Es) - M.S[i]));
    }
    double gate_rel = 0;
    if (P.gate)
      for (int64_t t = 0; t < P.T; ++t) {
        const int F = std::min(24, std::max(8, P.F));
        double xm = 0;
        for (int64_t i = 0; i < P.Hk * (P.per_key ? P.dk : 1); ++i)
          xm = std::max(xm, std::fabs(std::ldexp(double(P.decay[size_t(t * P.Hk * (P.per_key ? P.dk : 1) + i)]), -F)));
        gate_rel += kGatePerUnit * xm + kGatePerStep + 0.35 * std::ldexp(1.0, -F);
      }
    const double state_bound = (kStateErrRel + gate_rel) * M.smax;
    const double rel_s = M.smax > 0 ? se / M.smax : se;
    INFO("iter " << iter << " T " << P.T << " Hq " << P.Hq << " Hk " << P.Hk << " dk " << P.dk << " dv " << P.dv
         << " gate " << P.gate << " per_key " << P.per_key << " delta " << P.delta << " sep_a " << P.sep_a
         << " pre " << P.pre << " F " << P.F << " Es " << P.Es << " smax " << M.smax << " err " << se);
    worst_state = std::max(worst_state, rel_s);
    if (!P.gate) worst_state_ungated = std::max(worst_state_ungated, rel_s);
    ratio_state = std::max(ratio_state, se / state_bound);
    CHECK(se <= state_bound);
    const int64_t n = int64_t(P.Hq) * P.dv;
    for (int64_t t = 0; t < P.T; ++t) {
      double om = 0, sq = 0;
      for (int64_t j = 0; j < n; ++j) om = std::max(om, std::fabs(M.o[size_t(t * n + j)]));
      for (int64_t i = 0; i < int64_t(P.Hq) * P.dk; ++i) sq = std::max(sq, std::fabs(real(P.q[size_t(t * P.Hq * P.dk + i)], P.qs[size_t(t)])));
      sq *= P.dk * real(1, P.scale);
      for (int64_t j = 0; j < n; ++j) {
        const double err = std::fabs(real(R.y[size_t(t * n + j)], R.ys[size_t(t)]) - M.o[size_t(t * n + j)]);
        const double bound = kOutErrRel * om + kOutStateGain * sq * state_bound;
        worst_out = std::max(worst_out, om > 0 ? err / om : err);
        ratio_out = std::max(ratio_out, err / bound);
        CHECK(err <= bound);
      }
    }
  }
  WARN("linattn vs double: worst state error / max|S| = " << worst_state << " (ungated " << worst_state_ungated
       << "), worst output error / max|o| = " << worst_out << "; worst error / bound: state " << ratio_state
       << ", output " << ratio_out);
}

// ---- (2) variants bit-exact, (3) prefill == decode ----------------------------------------------

void same(const Result& a, const Result& b) {
  REQUIRE(a.state == b.state);
  REQUIRE(a.work == b.work);
  REQUIRE(a.y == b.y);
  for (size_t i = 0; i < a.ys.size(); ++i) {
    REQUIRE(a.ys[i].mant == b.ys[i].mant);
    REQUIRE(a.ys[i].exp == b.ys[i].exp);
  }
}

TEST_CASE("linattn variants bit-exact to scalar", "[linattn]") {
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  Rng r(7);
  for (int iter = 0; iter < 1500; ++iter) {
    const Problem P = random_problem(r, iter % 2 == 1);
    const Result want = run(scalar(), P);
    const int split = int(uniform(r, 0, P.Hk));
    for (size_t v = 0; v < n; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO("variant " << ks[v]->name << " iter " << iter << " dk " << P.dk << " dv " << P.dv);
      same(run(*ks[v], P, split), want);
    }
  }
}

TEST_CASE("linattn T tokens in one call == T one-token calls", "[linattn]") {
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  Rng r(11);
  for (int iter = 0; iter < 300; ++iter) {
    Problem P = random_problem(r, iter % 2 == 1);
    for (size_t v = 0; v < n; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      const Result all = run(*ks[v], P);
      same(run(*ks[v], P, 0, 1), all);
      same(run(*ks[v], P, 0, 2), all);
    }
  }
}

TEST_CASE("linattn invalid arguments", "[linattn]") {
  Rng r(3);
  Problem P = random_problem(r, false);
  P.Hq = P.Hk + 1;   // not a multiple... unless Hk == 1
  if (P.Hk == 1) P.Hq = 1, P.dk = 2000;
  P.q.assign(size_t(P.T * P.Hq * std::max(P.dk, 1)), 5);
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  for (size_t v = 0; v < n; ++v) {
    if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
    Result R;
    R.state = P.state0;
    R.y.assign(size_t(P.T * P.Hq * P.dv), 9);
    R.ys.assign(size_t(P.T), RowScale{5, 5});
    R.work.assign(size_t(P.T * P.Hq * P.dv), 0);
    LinattnArgs A = P.args(R.state.data(), R.y.data(), R.ys.data(), R.work.data());
    CHECK_FALSE(linattn_valid(A));
    ks[v]->heads(A, 0, P.Hk);
    ks[v]->out(A, 0, P.T);
    CHECK(R.state == P.state0);
    for (int16_t y : R.y) CHECK(y == 0);
    for (RowScale s : R.ys) CHECK((s.mant == 0 && s.exp == 0));
  }
}

}  // namespace
}  // namespace fq::k
