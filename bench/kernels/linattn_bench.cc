// linattn family rows (fq/kernels/linattn.h), every compiled + supported variant: the RWKV WKV
// recurrence (output_first = 1 with the bonus u, per-key decay, Hq = Hkv = H, dk = dv = N) as the
// engine's rwkv_wkv5 runs it, heads then out over one call of T tokens; items = tokens:
//   linattn_rwkv/<isa>/H8xN8/rows:<T>    RWKV 5v2-730K (8 heads of 8, static decay: decay_const = 1)
//   linattn_rwkv/<isa>/H2xN64/rows:<T>   64-wide heads with per-token decay rows (RWKV v6's form at
//                                        larger sizes; 6v0-3m itself has 16 heads of 8)
// T = 1 (decode) and T = 64 (prefill). The state carries over between iterations (the decays keep
// it bounded, as in the models).
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "fq/kernels/linattn.h"

namespace fq::k {
namespace {

struct Rows {
  int H, N;
  int64_t T;
  bool dconst;
  std::vector<int16_t> q, k, v, y;
  std::vector<RowScale> qs, ks, vs, ys;
  std::vector<int32_t> decay, bonus, state;
  std::vector<int64_t> work;

  Rows(int h, int n, int64_t t, bool dc) : H(h), N(n), T(t), dconst(dc) {
    std::mt19937_64 r(uint64_t(h * 1000 + n));
    std::normal_distribution<double> nd(0, 1);
    std::uniform_real_distribution<double> ud(0, 1);
    const size_t W = size_t(H) * N;
    auto row = [&](std::vector<int16_t>* x, std::vector<RowScale>* s) {
      x->resize(size_t(T) * W), s->assign(size_t(T), RowScale{16384, 27});   // values ~ N(0, 1) * 2^13 / 2^13
      for (auto& e : *x) e = int16_t(std::lround(std::max(-4.0, std::min(4.0, nd(r))) * 8000));
    };
    row(&q, &qs), row(&k, &ks), row(&v, &vs);
    decay.resize((dconst ? 1 : size_t(T)) * W);
    for (auto& d : decay) d = int32_t(std::lround(std::log(0.5 + 0.499 * ud(r)) * 65536));
    bonus.resize(W);
    for (auto& u : bonus) u = int32_t(std::lround((3 * ud(r) - 1) * 65536));
    state.assign(W * size_t(N), 0);
    y.assign(size_t(T) * W, 0), ys.assign(size_t(T), RowScale{}), work.assign(size_t(T) * W, 0);
  }
  LinattnArgs args() {
    LinattnArgs a{};
    a.q = q.data(), a.qs = qs.data(), a.k = k.data(), a.ks = ks.data(), a.v = v.data(), a.vs = vs.data();
    a.decay = decay.data(), a.decay_per_key = 1, a.decay_frac = 16;
    a.rows = T, a.q_heads = a.kv_heads = H, a.dk = a.dv = N, a.state_exp = 20, a.scale = RowScale{16384, 14};
    a.state = state.data(), a.y = y.data(), a.ys = ys.data(), a.work = work.data();
    a.decay_const = dconst, a.output_first = 1, a.bonus = bonus.data();
    return a;
  }
};

void bench_rwkv(benchmark::State& st, const LinattnKernel* k, int H, int N, int64_t T, bool dconst) {
  Rows R(H, N, T, dconst);
  const LinattnArgs a = R.args();
  for (auto _ : st) {
    k->heads(a, 0, H);
    k->out(a, 0, T);
    benchmark::DoNotOptimize(R.y.data());
    benchmark::DoNotOptimize(R.state.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * T);
}

int register_linattn() {
  size_t count = 0;
  const LinattnKernel* const* all = linattn_kernels(&count);
  struct Shape { int H, N; bool dconst; };
  for (const Shape s : {Shape{8, 8, true}, Shape{2, 64, false}})
    for (int64_t T : {int64_t{1}, int64_t{64}})
      for (size_t i = 0; i < count; ++i) {
        const LinattnKernel* k = all[i];
        if (!isa_supported(k->isa)) continue;
        const std::string name = std::string("linattn_rwkv/") + isa_name(k->isa) + "/H" + std::to_string(s.H) + "xN" +
                                 std::to_string(s.N) + "/rows:" + std::to_string(T);
        benchmark::RegisterBenchmark(name.c_str(), [k, s, T](benchmark::State& st) { bench_rwkv(st, k, s.H, s.N, T, s.dconst); });
      }
  return 0;
}

const int registered = register_linattn();

}  // namespace
}  // namespace fq::k
