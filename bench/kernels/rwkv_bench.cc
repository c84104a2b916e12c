// rwkv family rows (fq/kernels/rwkv.h), every compiled + supported variant, one row (a decode
// step) of n channels, n in {64, 128, 512, 2048}; items = n elements:
//   rwkv_mix/<isa>/<n>      token-shift mix with a per-channel mu and a data-dependent part (v6),
//                           int8 output;
//   rwkv_mix_static/<isa>/<n>x64  the v5 mix (per-channel mu only) of 64 token rows (the sequence
//                           graphs' block), items = elements;
//   rwkv_neg_exp/<isa>/<n>  the v6 log-decay -exp(w) in Q24, with a per-channel bias;
//   rwkv_mul/<isa>/<n>      the product of two dynamic int16 activations, int16 output;
// and the RWKV 7 per-head rows, n x H heads in {64 x H1 (7v0-834K), 128 x H2, 768 x H12}:
//   rwkv_l2norm/<isa>/<n>xH<h>      kk = per-head l2-normalized x * k_k, int16 Q15 output;
//   rwkv_head_bonus/<isa>/<n>xH<h>  y + v * per-head sum(r k * r_k), int16 output.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "fq/kernels/rwkv.h"

namespace fq::k {
namespace {

template <class T>
std::vector<T> rnd(std::mt19937_64& r, int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> d(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = T(d(r));
  return v;
}

void bench_mix(benchmark::State& st, const RwkvKernel* k, int64_t n, int64_t rows = 1) {
  std::mt19937_64 r(1);
  const auto a = rnd<int16_t>(r, n * rows, -30000, 30000), p = rnd<int16_t>(r, n * rows, -30000, 30000);
  const auto md = rnd<int16_t>(r, n, -20000, 20000);
  const auto mu = rnd<int32_t>(r, n, 0, 1 << 16);   // mu in [0, 1]
  const std::vector<RowScale> as(static_cast<size_t>(rows), RowScale{20000, 27}), ps(static_cast<size_t>(rows), RowScale{18000, 27});
  const RowScale mds{16384, 31};
  std::vector<int8_t> y(static_cast<size_t>(n * rows));
  std::vector<RowScale> ys(static_cast<size_t>(rows));
  std::vector<uint8_t> scratch(rwkv_scratch(n));
  RwkvMixArgs s{};
  s.a = a.data(), s.as = as.data(), s.p = p.data(), s.ps = ps.data(), s.mu_c = mu.data();
  if (rows == 1) s.md = md.data(), s.mds = &mds;
  s.n = n, s.qmax = 127, s.y = y.data(), s.ys = ys.data();
  for (auto _ : st) {
    k->mix(s, 0, rows, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n * rows);
}

void bench_neg_exp(benchmark::State& st, const RwkvKernel* k, int64_t n) {
  std::mt19937_64 r(2);
  const auto x = rnd<int16_t>(r, n, -30000, 30000);
  const auto bias = rnd<int32_t>(r, n, -(int64_t{6} << 24), int64_t{1} << 24);   // w in about [-8, 3]
  const RowScale xs{16384, 27};
  std::vector<int32_t> y(static_cast<size_t>(n));
  RwkvNegExpArgs s{};
  s.x = x.data(), s.xs = &xs, s.bias = bias.data(), s.n = n, s.y = y.data();
  for (auto _ : st) {
    k->neg_exp(s, 0, 1);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_mul(benchmark::State& st, const RwkvKernel* k, int64_t n) {
  std::mt19937_64 r(3);
  const auto a = rnd<int16_t>(r, n, -30000, 30000), b = rnd<int16_t>(r, n, -30000, 30000);
  const RowScale as{20000, 27}, bs{18000, 25};
  std::vector<int16_t> y(static_cast<size_t>(n));
  RowScale ys;
  std::vector<uint8_t> scratch(rwkv_scratch(n));
  RwkvMulArgs s{};
  s.a = a.data(), s.as = &as, s.b = b.data(), s.bs = &bs, s.n = n, s.qmax = 32767, s.y = y.data(), s.ys = &ys;
  for (auto _ : st) {
    k->mul(s, 0, 1, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_l2norm(benchmark::State& st, const RwkvKernel* k, int64_t n, int heads) {
  std::mt19937_64 r(4);
  const auto x = rnd<int16_t>(r, n, -30000, 30000);
  const auto c = rnd<int32_t>(r, n, -(1 << 17), 1 << 17);   // k_k in about [-2, 2]
  const RowScale xs{20000, 27};
  std::vector<int16_t> y(static_cast<size_t>(n));
  RwkvL2normArgs s{};
  s.x = x.data(), s.xs = &xs, s.c = c.data(), s.n = n, s.heads = heads, s.y = y.data();
  for (auto _ : st) {
    k->l2norm(s, 0, 1);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_head_bonus(benchmark::State& st, const RwkvKernel* k, int64_t n, int heads) {
  std::mt19937_64 r(5);
  const auto y = rnd<int16_t>(r, n, -30000, 30000), v = rnd<int16_t>(r, n, -30000, 30000);
  const auto p = rnd<int16_t>(r, n, -30000, 30000);
  const auto c = rnd<int32_t>(r, n, -(1 << 17), 1 << 17);   // r_k in about [-2, 2]
  const RowScale ys{20000, 27}, vs{18000, 25}, ps{17000, 30};
  std::vector<int16_t> out(static_cast<size_t>(n));
  RowScale os;
  std::vector<uint8_t> scratch(rwkv_scratch(n));
  RwkvBonusArgs s{};
  s.y = y.data(), s.ys = &ys, s.v = v.data(), s.vs = &vs, s.p = p.data(), s.ps = &ps, s.c = c.data();
  s.n = n, s.heads = heads, s.qmax = 32767, s.out = out.data(), s.os = &os;
  for (auto _ : st) {
    k->head_bonus(s, 0, 1, scratch.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

int register_rwkv() {
  size_t count = 0;
  const RwkvKernel* const* all = rwkv_kernels(&count);
  for (int64_t n : {int64_t{64}, int64_t{128}, int64_t{512}, int64_t{2048}}) {
    for (size_t i = 0; i < count; ++i) {
      const RwkvKernel* k = all[i];
      if (!isa_supported(k->isa)) continue;
      const std::string tail = std::string("/") + isa_name(k->isa) + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(("rwkv_mix" + tail).c_str(), [k, n](benchmark::State& st) { bench_mix(st, k, n); });
      if (n == 64)
        benchmark::RegisterBenchmark(("rwkv_mix_static" + tail + "x64").c_str(), [k, n](benchmark::State& st) { bench_mix(st, k, n, 64); });
      benchmark::RegisterBenchmark(("rwkv_neg_exp" + tail).c_str(), [k, n](benchmark::State& st) { bench_neg_exp(st, k, n); });
      benchmark::RegisterBenchmark(("rwkv_mul" + tail).c_str(), [k, n](benchmark::State& st) { bench_mul(st, k, n); });
    }
  }
  const struct { int64_t n; int heads; } shapes[] = {{64, 1}, {128, 2}, {768, 12}};
  for (const auto& sh : shapes) {
    for (size_t i = 0; i < count; ++i) {
      const RwkvKernel* k = all[i];
      if (!isa_supported(k->isa)) continue;
      const int64_t n = sh.n;
      const int h = sh.heads;
      const std::string tail = std::string("/") + isa_name(k->isa) + "/" + std::to_string(n) + "xH" + std::to_string(h);
      benchmark::RegisterBenchmark(("rwkv_l2norm" + tail).c_str(), [k, n, h](benchmark::State& st) { bench_l2norm(st, k, n, h); });
      benchmark::RegisterBenchmark(("rwkv_head_bonus" + tail).c_str(),
                                   [k, n, h](benchmark::State& st) { bench_head_bonus(st, k, n, h); });
    }
  }
  return 0;
}

const int registered = register_rwkv();

}  // namespace
}  // namespace fq::k
