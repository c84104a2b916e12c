// linattn family (fq/kernels/linattn.h):
//  (1) the scalar reference against a double-precision model of the real recurrence (linear, gated
//      per head / per key, delta, gated delta, GQA, pre-decay retrieval), with the error bounds of
//      docs/accuracy.md ("Integer linear attention (linattn family)") enforced here;
//  (2) every compiled variant this machine may run (test::runnable) writes the same bytes as the
//      scalar reference (state, work, y, ys) over random shapes, head splits and extreme values;
//  (3) T tokens in one call == T calls of one token (the prefill / decode identity);
//  (4) invalid arguments leave the state untouched and give y = 0, ys = {0, 0};
//  (5) the RWKV extensions (decay_const, output_first + bonus, the second write key b): (2), (3) and
//      (4) for each, hand-computed cases, and the scalar reference against double-precision RWKV v5,
//      v6 and v7 WKV models over 256 tokens (relative L2 bounds kRwkvOutRel, kRwkvStateRel).
#include "fq/kernels/linattn.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
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

const LinattnKernel& scalar() { return test::scalar_variant(linattn_kernels); }

struct Problem {
  int64_t T = 1;
  int Hq = 1, Hk = 1, dk = 1, dv = 1;
  bool gate = false, per_key = false, delta = false, sep_a = false, pre = false;
  bool dconst = false, ofirst = false, use_bonus = false, v7 = false;   // RWKV extensions
  int F = 16, Es = 20;
  RowScale scale{16384, 14};
  std::vector<int16_t> q, k, v, a;
  std::vector<RowScale> qs, ks, vs, as;
  std::vector<int32_t> decay, beta, state0, bonus;
  std::vector<int16_t> b;
  std::vector<RowScale> bs;

  LinattnArgs args(int32_t* state, int16_t* y, RowScale* ys, int64_t* work, int64_t t0 = 0, int64_t rows = -1) const {
    LinattnArgs A{};
    const int64_t R = rows < 0 ? T : rows;
    A.q = q.data() + t0 * Hq * dk, A.qs = qs.data() + t0;
    A.k = k.data() + t0 * Hk * dk, A.ks = ks.data() + t0;
    A.v = v.data() + t0 * Hk * dv, A.vs = vs.data() + t0;
    A.a = sep_a ? a.data() + t0 * Hk * dk : nullptr, A.as = sep_a ? as.data() + t0 : nullptr;
    A.decay = gate ? decay.data() + (dconst ? 0 : t0 * Hk * (per_key ? dk : 1)) : nullptr;
    A.decay_per_key = per_key, A.decay_frac = F;
    A.beta = delta ? beta.data() + t0 * Hk : nullptr;
    A.retrieve_pre_decay = pre;
    A.rows = R, A.q_heads = Hq, A.kv_heads = Hk, A.dk = dk, A.dv = dv, A.state_exp = Es, A.scale = scale;
    A.state = state, A.y = y, A.ys = ys, A.work = work;
    A.decay_const = dconst, A.output_first = ofirst;
    A.bonus = ofirst && use_bonus ? bonus.data() : nullptr;
    A.b = v7 ? b.data() + t0 * Hk * dk : nullptr, A.bs = v7 ? bs.data() + t0 : nullptr;
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

// tmax, dmax: the ranges of T and dk, dv; fdk, fdv > 0 force dk, dv (the defaults keep the draws
// of the plain tests).
Problem random_problem(Rng& r, bool extreme, int64_t tmax = 6, int dmax = 40, int fdk = 0, int fdv = 0) {
  Problem P;
  P.T = uniform(r, 1, tmax);
  P.Hk = int(uniform(r, 1, 3));
  P.Hq = P.Hk * int(uniform(r, 1, 3));
  P.dk = int(uniform(r, 1, dmax));
  P.dv = int(uniform(r, 1, dmax));
  if (fdk > 0) P.dk = fdk;
  if (fdv > 0) P.dv = fdv;
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

TEST_CASE("linattn scalar reference vs double", "[linattn][accuracy]") {
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

// ---- RWKV extensions (decay_const, output_first + bonus, the second write key b) ----------------

enum Ext { kDecayConst, kOutputFirst, kV7, kExtCount };
const char* const kExtName[] = {"decay_const", "output_first", "v7 (b)"};

// A random problem with extension `ext` on: dk, dv in 1..72 (8 and 64 half of the time), T up to
// 40, GQA where the extension allows it (all of them), extreme values when asked.
Problem random_rwkv(Rng& r, bool extreme, int ext) {
  const auto dim = [&] { const int m = int(uniform(r, 0, 3)); return m == 0 ? 8 : m == 1 ? 64 : 0; };
  const int fdk = dim(), fdv = dim();
  Problem P = random_problem(r, extreme, 40, 72, fdk, fdv);
  switch (ext) {
    case kDecayConst: P.gate = true, P.dconst = true; break;   // with any rule
    case kOutputFirst:
      P.ofirst = true, P.delta = false, P.dconst = P.gate && uniform(r, 0, 1);
      P.use_bonus = uniform(r, 0, 3) != 0;
      break;
    default:
      P.v7 = true, P.delta = false, P.sep_a = true, P.pre = true, P.dconst = P.gate && uniform(r, 0, 3) == 0;
      break;
  }
  P.bonus.resize(size_t(P.Hk * P.dk));
  for (auto& u : P.bonus)
    u = int32_t(extreme ? (uniform(r, 0, 3) == 0 ? uniform(r, INT32_MIN, INT32_MAX) : uniform(r, -(1 << 21), 1 << 21))
                        : uniform(r, -(1 << 17), 1 << 17));
  const int64_t lim = extreme ? 32768 : 2000;
  P.b.resize(size_t(P.T * P.Hk * P.dk));
  for (auto& e : P.b) e = int16_t(uniform(r, -lim, lim - 1));
  P.bs.resize(size_t(P.T));
  for (auto& e : P.bs) {
    e = extreme ? rscale(r, -30, 70) : rscale(r, 25, 32);
    if (extreme && uniform(r, 0, 6) == 0) e = uniform(r, 0, 1) ? RowScale{} : RowScale{32768, int32_t(uniform(r, -30, 70))};
  }
  return P;
}

bool valid(const Problem& P) {
  std::vector<int32_t> st(P.state0);
  return linattn_valid(P.args(st.data(), nullptr, nullptr, nullptr));
}

bool differ(const Result& a, const Result& b) { return a.state != b.state || a.work != b.work; }

TEST_CASE("linattn RWKV extensions: variants bit-exact to scalar", "[linattn][rwkv]") {
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  Rng r(20260501);
  for (int ext = 0; ext < kExtCount; ++ext) {
    int changed = 0, iters = 240;
    for (int iter = 0; iter < iters; ++iter) {
      const Problem P = random_rwkv(r, iter % 2 == 1, ext);
      REQUIRE(valid(P));
      const Result want = run(scalar(), P);
      // the extension is not ignored: off, the bytes differ (for most problems)
      Problem off = P;
      if (ext == kDecayConst) off.dconst = false;
      if (ext == kOutputFirst) off.ofirst = false;
      if (ext == kV7) off.v7 = false;
      changed += differ(run(scalar(), off), want);
      const int split = int(uniform(r, 0, P.Hk));
      for (size_t v = 0; v < n; ++v) {
        if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
        INFO("ext " << kExtName[ext] << " variant " << ks[v]->name << " iter " << iter << " T " << P.T << " Hq " << P.Hq
             << " Hk " << P.Hk << " dk " << P.dk << " dv " << P.dv << " gate " << P.gate << " bonus " << P.use_bonus);
        same(run(*ks[v], P, split), want);
      }
    }
    INFO("ext " << kExtName[ext]);
    CHECK(changed > iters / 2);
  }
}

TEST_CASE("linattn RWKV extensions: T tokens in one call == T one-token calls", "[linattn][rwkv]") {
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  Rng r(4242);
  for (int ext = 0; ext < kExtCount; ++ext)
    for (int iter = 0; iter < 60; ++iter) {
      const Problem P = random_rwkv(r, iter % 2 == 1, ext);
      for (size_t v = 0; v < n; ++v) {
        if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
        INFO("ext " << kExtName[ext] << " variant " << ks[v]->name << " iter " << iter << " T " << P.T);
        const Result all = run(*ks[v], P);
        same(run(*ks[v], P, 0, 1), all);
        same(run(*ks[v], P, 0, 3), all);
      }
    }
}

TEST_CASE("linattn RWKV extensions: special cases", "[linattn][rwkv]") {
  Rng r(99);
  for (int iter = 0; iter < 100; ++iter) {
    const bool extreme = iter % 2 == 1;
    {  // decay_const: every token uses row 0 == the rows all equal to row 0
      Problem P = random_rwkv(r, extreme, kDecayConst), Q = P;
      const size_t w = size_t(P.Hk * (P.per_key ? P.dk : 1));
      Q.dconst = false;
      for (size_t i = w; i < Q.decay.size(); ++i) Q.decay[i] = Q.decay[i % w];
      same(run(scalar(), Q), run(scalar(), P));
    }
    {  // output_first: a zero bonus == no bonus
      Problem P = random_rwkv(r, extreme, kOutputFirst);
      P.use_bonus = true;
      std::fill(P.bonus.begin(), P.bonus.end(), 0);
      Problem Q = P;
      Q.use_bonus = false;
      same(run(scalar(), Q), run(scalar(), P));
    }
    if (!extreme) {  // b = 0: the plain rule (the write term never reaches the 2^40 clamp here)
      Problem P = random_rwkv(r, false, kV7);
      std::fill(P.b.begin(), P.b.end(), 0);
      Problem Q = P;
      Q.v7 = false;
      same(run(scalar(), Q), run(scalar(), P));
    }
  }
  // output_first, dk = dv = 1, by hand: S = 1000, k v write X = 2^(Es) * 0.5 * 0.25, bonus 2 (Q16),
  // q = 1: o = S + 2 X (the state before the token plus the bonus), then S = 1000 + X.
  Problem P;
  P.T = 1, P.Hq = P.Hk = 1, P.dk = P.dv = 1, P.Es = 20, P.ofirst = true, P.use_bonus = true;
  P.q = {16384}, P.k = {16384}, P.v = {16384}, P.a = {0};
  P.qs = {RowScale{16384, 28}}, P.ks = {RowScale{16384, 29}}, P.vs = {RowScale{16384, 30}}, P.as = {RowScale{}};
  P.state0 = {1000}, P.bonus = {2 << 16};
  const Result R = run(scalar(), P);
  const int64_t X = int64_t{1} << 17;   // 0.5 * 0.25 * 2^20
  CHECK(R.state[0] == 1000 + X);
  CHECK(R.work[0] == 16384 * (1000 + 2 * X));

  // v7 by hand (dk = 1, dv = 16 so the SIMD bodies run, Es = 0, no gate), every variant:
  //  (1) S = 1000, a = 0.5, b = 0.5, k = 0: the retrieval 500 written back along b: S = 1250;
  //  (2) S = 2^30, a = 1, b = -2^11, k v = 3 2^40: X = 3 2^40, Y = -2^41 clamp to +-2^40 and cancel,
  //      S stays 2^30 (unclamped, 2^30 + 2^40 would saturate to INT32_MAX).
  size_t nk = 0;
  const LinattnKernel* const* ks = linattn_kernels(&nk);
  for (int c = 0; c < 2; ++c) {
    Problem V;
    V.T = 1, V.Hq = V.Hk = 1, V.dk = 1, V.dv = 16, V.Es = 0, V.v7 = true, V.sep_a = true, V.pre = true;
    V.q = {16384}, V.qs = {RowScale{16384, 28}};
    V.a = {16384}, V.b = {int16_t(c == 0 ? 16384 : -16384)}, V.bs = {RowScale{16384, c == 0 ? 29 : 17}};
    V.as = {RowScale{16384, c == 0 ? 29 : 28}};
    V.k = {int16_t(c == 0 ? 0 : 24576)}, V.ks = {RowScale{16384, -1}};
    V.v.assign(16, 16384), V.vs = {RowScale{16384, 16}};
    V.state0.assign(16, c == 0 ? 1000 : 1 << 30);
    REQUIRE(valid(V));
    for (size_t v = 0; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO("case " << c << " variant " << ks[v]->name);
      const Result H = run(*ks[v], V);
      for (int j = 0; j < 16; ++j) {
        CHECK(H.state[size_t(j)] == (c == 0 ? 1250 : 1 << 30));
        CHECK(H.work[size_t(j)] == int64_t{16384} * H.state[size_t(j)]);
      }
    }
  }
}

// ---- the RWKV fast paths (output_first, one query head per state) ---------------------------------
// SIMD variants take a fused path for output_first with Hq == Hkv (registers for small heads:
// dv in {1, 2, 4, 8} with dk * dv <= 64; rows otherwise), falling back to the generic step for a
// token whose write shift is outside [1, 62]. Every variant == scalar over the dims that select
// them, H up to 16, T up to 70, bonus on / off, each decay form (none, per head, per key, constant
// or per token), extreme scales and saturated states; then the same problems with each query head
// duplicated (Hq = 2 Hkv, which the fast paths do not take) give the same state and work rows.
Problem rwkv_fast_problem(Rng& r, int n, bool extreme) {
  const int dk = n > 0 ? n : int(uniform(r, 1, 24));
  const int dv = n > 0 ? n : int(uniform(r, 1, 24));
  Problem P = random_problem(r, extreme, 70, 72, dk, dv);
  P.Hk = P.Hq = int(uniform(r, 1, n >= 64 ? 3 : 16));
  P.T = uniform(r, 1, n >= 64 ? 12 : 70);
  P.ofirst = true, P.delta = false, P.sep_a = false, P.pre = false;
  const int dmode = int(uniform(r, 0, 4));   // none, per head, per key per token, per key constant (x2)
  P.gate = dmode != 0, P.per_key = dmode >= 2, P.dconst = dmode >= 3;
  P.use_bonus = uniform(r, 0, 2) != 0;
  if (!extreme) {   // RWKV-like scales: the fused path for every token
    for (auto* sc : {&P.qs, &P.ks, &P.vs}) for (auto& e : *sc) e.exp = int32_t(uniform(r, 24, 30));
    P.Es = int(uniform(r, 14, 24));
  }
  auto i16 = [&](std::vector<int16_t>* v, size_t m) { v->resize(m); for (auto& e : *v) e = int16_t(uniform(r, extreme ? -32768 : -20000, extreme ? 32767 : 20000)); };
  i16(&P.q, size_t(P.T * P.Hq * P.dk)), i16(&P.k, size_t(P.T * P.Hk * P.dk)), i16(&P.v, size_t(P.T * P.Hk * P.dv));
  for (auto* sc : {&P.qs, &P.ks, &P.vs, &P.as}) {
    const size_t old = sc->size();
    sc->resize(size_t(P.T));
    for (size_t i = old; i < sc->size(); ++i) (*sc)[i] = (*sc)[i % std::max<size_t>(old, 1)];
  }
  P.decay.resize(size_t(P.T * P.Hk * P.dk));
  for (auto& d : P.decay)
    d = extreme ? int32_t(uniform(r, 0, 3) == 0 ? uniform(r, INT32_MIN, INT32_MAX) : uniform(r, -(int64_t{1} << 26), 100))
                : int32_t(uniform(r, -(int64_t{1} << (P.F - 1)), 0));
  P.state0.resize(size_t(P.Hk * P.dk * P.dv));
  for (auto& x : P.state0)
    x = int32_t(extreme ? (uniform(r, 0, 4) == 0 ? (uniform(r, 0, 1) ? INT32_MAX : INT32_MIN) : uniform(r, INT32_MIN, INT32_MAX))
                        : uniform(r, -(1 << 24), 1 << 24));
  P.bonus.resize(size_t(P.Hk * P.dk));
  for (auto& u : P.bonus)
    u = int32_t(extreme ? (uniform(r, 0, 3) == 0 ? uniform(r, INT32_MIN, INT32_MAX) : uniform(r, -(1 << 21), 1 << 21))
                        : uniform(r, -(1 << 17), 1 << 17));
  return P;
}

TEST_CASE("linattn RWKV fast paths: variants bit-exact to scalar", "[linattn][rwkv]") {
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  Rng r(777);
  for (int dim : {1, 2, 4, 8, 16, 64, 0, 3, 5, 12, 24}) {
    const int iters = dim >= 64 ? 24 : 80;
    for (int iter = 0; iter < iters; ++iter) {
      const bool extreme = iter % 3 == 2;
      const Problem P = rwkv_fast_problem(r, dim, extreme);
      REQUIRE(valid(P));
      const Result want = run(scalar(), P);
      // the same problem with every query head duplicated (Hq = 2 Hkv): the generic path
      Problem D = P;
      D.Hq = 2 * P.Hk;
      D.q.resize(size_t(D.T * D.Hq * D.dk));
      for (int64_t t = 0; t < P.T; ++t)
        for (int h = 0; h < D.Hq; ++h)
          for (int i = 0; i < P.dk; ++i)
            D.q[size_t((t * D.Hq + h) * D.dk + i)] = P.q[size_t((t * P.Hq + h / 2) * P.dk + i)];
      const int split = int(uniform(r, 0, P.Hk));
      const int64_t chunk = uniform(r, 0, 3) == 0 ? uniform(r, 1, 5) : 0;
      for (size_t v = 0; v < n; ++v) {
        if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
        INFO("variant " << ks[v]->name << " dim " << dim << " iter " << iter << " T " << P.T << " H " << P.Hk << " dk "
             << P.dk << " dv " << P.dv << " gate " << P.gate << " per_key " << P.per_key << " const " << P.dconst
             << " bonus " << P.use_bonus << " extreme " << extreme << " chunk " << chunk);
        same(run(*ks[v], P, split, chunk), want);
        const Result dup = run(*ks[v], D, split);
        REQUIRE(dup.state == want.state);
        std::vector<int64_t> w2(dup.work.size());
        for (int64_t t = 0; t < P.T; ++t)
          for (int h = 0; h < D.Hq; ++h)
            for (int j = 0; j < P.dv; ++j)
              w2[size_t((t * D.Hq + h) * D.dv + j)] = want.work[size_t((t * P.Hq + h / 2) * P.dv + j)];
        REQUIRE(dup.work == w2);
      }
    }
  }
}

// ---- RWKV accuracy against double ------------------------------------------------------------------
// Realistic RWKV magnitudes: r, k, v ~ N(0, 1) (one int16 row scale per token), per-key decays
// w in [0.5, 0.999] (log w in Q16), 2 heads of 64, 256 tokens, the state unit Es calibrated so that
// max |S| 2^Es is in [2^26, 2^27). The double models are written in RWKV's own form and layout and
// consume the same (dequantized) inputs, so the error measured is the kernel's alone: the state and
// gate roundings and exp_q (relative ~1e-6 per token, accumulated over the ~1 / (1 - w) tokens a
// state entry remembers), then the int16 output. Documented bounds (relative L2 over every token's
// output / the final state):
constexpr double kRwkvOutRel = 1e-3;
constexpr double kRwkvStateRel = 1e-3;

RowScale quant_row(const double* x, size_t n, int16_t* q) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  if (m == 0) {
    std::fill(q, q + n, int16_t{0});
    return RowScale{};
  }
  int e = 0;
  const double fr = std::frexp(m / 32767, &e);   // step = fr 2^e, fr in [0.5, 1)
  RowScale s{int32_t(std::lround(fr * 32768)), 15 - e};
  if (s.mant == 32768) s.mant = 16384, s.exp -= 1;
  const double step = real(1, s);
  for (size_t i = 0; i < n; ++i) q[i] = int16_t(std::max<long>(-32767, std::min<long>(32767, std::lround(x[i] / step))));
  return s;
}

struct RwkvCase {
  Problem P;
  std::vector<double> y;       // [T][H*N] the double model's outputs
  std::vector<double> S;       // the final state in linattn's [H][key][value] layout
  double smax = 0;
};

// version 5 (static decay: decay_const), 6 (per-token decay) or 7.
RwkvCase rwkv_case(int version, uint64_t seed) {
  const int H = 2, N = 64, T = 256, F = 16;
  Rng r(seed);
  std::normal_distribution<double> nd(0, 1);
  std::uniform_real_distribution<double> ud(0, 1);
  RwkvCase C;
  Problem& P = C.P;
  P.T = T, P.Hq = P.Hk = H, P.dk = P.dv = N, P.F = F, P.scale = RowScale{16384, 14};
  P.gate = true, P.per_key = true, P.dconst = version == 5;
  const size_t W = size_t(H * N);
  auto rows = [&](std::vector<int16_t>* q, std::vector<RowScale>* s, const std::vector<double>& x) {
    q->resize(x.size()), s->resize(size_t(T));
    for (int t = 0; t < T; ++t) (*s)[size_t(t)] = quant_row(&x[size_t(t) * W], W, q->data() + size_t(t) * W);
  };
  auto normal = [&] { std::vector<double> x(size_t(T) * W); for (auto& e : x) e = nd(r); return x; };
  rows(&P.q, &P.qs, normal()), rows(&P.k, &P.ks, normal()), rows(&P.v, &P.vs, normal());
  P.decay.resize(size_t(version == 5 ? 1 : T) * W);
  for (auto& d : P.decay) d = int32_t(std::lround(std::log(0.5 + 0.499 * ud(r)) * 65536));
  if (version == 7) {
    std::vector<double> a(size_t(T) * W), b(size_t(T) * W);
    for (size_t t = 0; t < size_t(T); ++t)
      for (size_t h = 0; h < size_t(H); ++h) {
        double* kk = &a[t * W + h * N];
        double nrm = 0;
        for (int i = 0; i < N; ++i) kk[i] = nd(r), nrm += kk[i] * kk[i];
        for (int i = 0; i < N; ++i) {
          kk[i] /= std::sqrt(nrm);
          b[t * W + h * N + size_t(i)] = kk[i] * ud(r);   // b = kk * a_gate, a_gate in (0, 1)
          kk[i] = -kk[i];                                 // a = -kk
        }
      }
    rows(&P.a, &P.as, a), rows(&P.b, &P.bs, b);
    P.v7 = true, P.sep_a = true, P.pre = true;
  } else {
    P.ofirst = true, P.use_bonus = true;
    P.bonus.resize(W);
    for (auto& u : P.bonus) u = int32_t(std::lround((3 * ud(r) - 1) * 65536));   // u in [-1, 2]
  }
  P.state0.assign(size_t(H) * N * N, 0);
  // the models, on the dequantized inputs
  auto at = [&](const std::vector<int16_t>& q, const std::vector<RowScale>& s, int t, int h, int i) {
    return real(q[size_t(t) * W + size_t(h * N + i)], s[size_t(t)]);
  };
  auto w_of = [&](int t, int h, int i) {
    return std::exp(std::ldexp(double(P.decay[size_t(version == 5 ? 0 : t) * W + size_t(h * N + i)]), -F));
  };
  C.y.assign(size_t(T) * W, 0);
  C.S.assign(size_t(H) * N * N, 0);
  for (int h = 0; h < H; ++h) {
    std::vector<double> S(size_t(N) * N, 0);   // v5/v6: [key i][value j]; v7: RWKV's [value j][key i]
    for (int t = 0; t < T; ++t) {
      double* y = &C.y[size_t(t) * W + size_t(h * N)];
      if (version != 7) {
        // y = r . (S + u k v^T);  S = diag(w) S + k v^T
        for (int j = 0; j < N; ++j) {
          double s = 0;
          for (int i = 0; i < N; ++i)
            s += at(P.q, P.qs, t, h, i) *
                 (S[size_t(i * N + j)] + std::ldexp(double(P.bonus[size_t(h * N + i)]), -16) * at(P.k, P.ks, t, h, i) * at(P.v, P.vs, t, h, j));
          y[j] = s;
        }
        for (int i = 0; i < N; ++i)
          for (int j = 0; j < N; ++j)
            S[size_t(i * N + j)] = w_of(t, h, i) * S[size_t(i * N + j)] + at(P.k, P.ks, t, h, i) * at(P.v, P.vs, t, h, j);
      } else {
        // S = S diag(w) + (S a) b^T + v k^T;  y = S r   (S [value][key])
        std::vector<double> sa(size_t(N), 0);
        for (int j = 0; j < N; ++j)
          for (int i = 0; i < N; ++i) sa[size_t(j)] += S[size_t(j * N + i)] * at(P.a, P.as, t, h, i);
        for (int j = 0; j < N; ++j)
          for (int i = 0; i < N; ++i)
            S[size_t(j * N + i)] = S[size_t(j * N + i)] * w_of(t, h, i) + sa[size_t(j)] * at(P.b, P.bs, t, h, i) +
                                   at(P.v, P.vs, t, h, j) * at(P.k, P.ks, t, h, i);
        for (int j = 0; j < N; ++j) {
          double s = 0;
          for (int i = 0; i < N; ++i) s += S[size_t(j * N + i)] * at(P.q, P.qs, t, h, i);
          y[j] = s;
        }
      }
      for (double e : S) C.smax = std::max(C.smax, std::fabs(e));
    }
    for (int i = 0; i < N; ++i)   // to linattn's [key][value]
      for (int j = 0; j < N; ++j)
        C.S[size_t(h * N * N + i * N + j)] = version == 7 ? S[size_t(j * N + i)] : S[size_t(i * N + j)];
  }
  int e = 0;
  std::frexp(C.smax, &e);
  P.Es = 27 - e;   // max |S| 2^Es in [2^26, 2^27)
  return C;
}

TEST_CASE("linattn RWKV v5 / v6 / v7 vs double", "[linattn][rwkv][accuracy]") {
  for (int version : {5, 6, 7}) {
    double worst_out = 0, worst_state = 0, worst_tok = 0;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const RwkvCase C = rwkv_case(version, seed * 1000 + uint64_t(version));
      const Problem& P = C.P;
      REQUIRE(valid(P));
      const Result R = run(scalar(), P);
      const int64_t n = int64_t(P.Hq) * P.dv;
      double num = 0, den = 0;
      for (int64_t t = 0; t < P.T; ++t) {
        double tn = 0, td = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double d = real(R.y[size_t(t * n + j)], R.ys[size_t(t)]) - C.y[size_t(t * n + j)];
          tn += d * d, td += C.y[size_t(t * n + j)] * C.y[size_t(t * n + j)];
        }
        num += tn, den += td;
        worst_tok = std::max(worst_tok, std::sqrt(tn / td));
      }
      double sn = 0, sd = 0;
      for (size_t i = 0; i < C.S.size(); ++i) {
        const double d = std::ldexp(double(R.state[i]), -P.Es) - C.S[i];
        sn += d * d, sd += C.S[i] * C.S[i];
      }
      const double out_rel = std::sqrt(num / den), state_rel = std::sqrt(sn / sd);
      INFO("RWKV v" << version << " seed " << seed << " Es " << P.Es << " max|S| " << C.smax << " output rel L2 "
                    << out_rel << " state rel L2 " << state_rel);
      CHECK(out_rel <= kRwkvOutRel);
      CHECK(state_rel <= kRwkvStateRel);
      worst_out = std::max(worst_out, out_rel), worst_state = std::max(worst_state, state_rel);
    }
    WARN("linattn RWKV v" << version << " vs double (256 tokens, 2 x 64): output rel L2 " << worst_out
                          << " (worst token " << worst_tok << "), final state rel L2 " << worst_state);
  }
}

TEST_CASE("linattn RWKV extensions: invalid combinations", "[linattn][rwkv]") {
  Rng r(5);
  Problem P = random_rwkv(r, false, kV7);
  REQUIRE(valid(P));
  {
    Problem Q = P; Q.delta = true; CHECK_FALSE(valid(Q));          // b with beta
  }
  {
    Problem Q = P; Q.sep_a = false; CHECK_FALSE(valid(Q));         // b without a
  }
  {
    Problem Q = P; Q.pre = false; CHECK_FALSE(valid(Q));           // b with the ONNX order
  }
  {
    Problem Q = P; Q.ofirst = true; CHECK_FALSE(valid(Q));         // b with output_first
  }
  {
    std::vector<int32_t> st(P.state0);
    LinattnArgs A = P.args(st.data(), nullptr, nullptr, nullptr);
    A.bs = nullptr;
    CHECK_FALSE(linattn_valid(A));                                 // b without its scales
  }
  Problem O = random_rwkv(r, false, kOutputFirst);
  O.use_bonus = true;
  REQUIRE(valid(O));
  {
    Problem Q = O; Q.delta = true; CHECK_FALSE(valid(Q));          // output_first with beta
  }
  {
    Problem Q = O; Q.delta = true; Q.pre = true; Q.ofirst = false; CHECK(valid(Q));   // the bonus alone is ignored
  }
  // an invalid call leaves the state untouched and gives y = 0, ys = {0, 0}, in every variant
  Problem Q = O;
  Q.delta = true;
  size_t n = 0;
  const LinattnKernel* const* ks = linattn_kernels(&n);
  for (size_t v = 0; v < n; ++v) {
    if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
    const Result R = run(*ks[v], Q);
    CHECK(R.state == Q.state0);
    for (int16_t y : R.y) CHECK(y == 0);
    for (RowScale s : R.ys) CHECK((s.mant == 0 && s.exp == 0));
  }
}

TEST_CASE("linattn: dispatch honours FQ_ISA", "[linattn]") { test::check_dispatch(linattn_kernels, linattn_kernel, "linattn"); }

}  // namespace
}  // namespace fq::k
