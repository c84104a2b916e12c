// ssm family rows (fq/kernels/ssm.h), every compiled + supported variant:
//   ssm_scan/i32/<isa>/<C>x<N>/rows:<M>  the selective scan (scan over all channels, then
//                                        scan_out: int16 y + row scales); items = M * C * N state
//                                        updates;
//   ssm_conv/i16/<isa>/<C>k<K>/rows:<M>  the causal conv1d + SiLU (conv, then conv_out: int8 u);
//                                        items = M * C channel outputs;
//   ssm_scan/f32/avx512/<C>x<N>/rows:<M> a float32 AVX-512 baseline of the scan (ssm_f32.cc).
// Mamba-130M-like shapes: C = 512 channels (one thread's share of d_inner = 1536 is smaller),
// N = 16, K = 4; rows 1 (decode) and 64 (a prefill chunk).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "fq/kernels/ssm.h"

namespace fq::bench {
void ssm_scan_f32(const float* u, const float* dt, const float* b, const float* c, const float* A,
                  const float* D, int64_t M, int64_t C, int64_t N, float* h, float* y);
}

namespace fq::k {
namespace {

constexpr int64_t kC = 512, kN = 16;
constexpr int kK = 4;

template <class T>
std::vector<T> rnd(std::mt19937_64& r, int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> d(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = T(d(r));
  return v;
}

void bench_scan_i32(benchmark::State& st, const SsmKernel* k, int64_t M) {
  std::mt19937_64 r(1);
  const auto u = rnd<int32_t>(r, M * kC, -(1 << 21), 1 << 21);
  const auto dt = rnd<int16_t>(r, M * kC, -24000, 4000);   // dt_proj output in [-6, 1] (Q12)
  const auto b = rnd<int16_t>(r, M * kN, -20000, 20000), c = rnd<int16_t>(r, M * kN, -20000, 20000);
  std::vector<int32_t> a(static_cast<size_t>(kC * kN)), d(static_cast<size_t>(kC), 1 << 16), h(a.size(), 0);
  for (int64_t i = 0; i < kC * kN; ++i) a[size_t(i)] = int32_t(((i % kN) + 1) << 16);  // |A| = n + 1
  const std::vector<int8_t> he(static_cast<size_t>(kC), 20);
  const std::vector<RowScale> dts(static_cast<size_t>(M), RowScale{16384, 26}), bs(dts.size(), RowScale{20000, 29});
  std::vector<int16_t> y(static_cast<size_t>(M * kC));
  std::vector<RowScale> ys(static_cast<size_t>(M));
  std::vector<int64_t> work(y.size());
  SsmScanArgs s{};
  s.u = u.data(), s.dt = dt.data(), s.dts = dts.data(), s.b = b.data(), s.bs = bs.data(), s.c = c.data();
  s.cs = bs.data(), s.a = a.data(), s.d = d.data(), s.h_exp = he.data(), s.rows = M, s.channels = kC;
  s.states = kN, s.u_exp = 20, s.a_frac = 16, s.y_exp = 20, s.h = h.data(), s.y = y.data(), s.ys = ys.data();
  s.work = work.data();
  for (auto _ : st) {
    k->scan(s, 0, kC);
    k->scan_out(s, 0, M);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * M * kC * kN);
}

void bench_conv_i16(benchmark::State& st, const SsmKernel* k, int64_t M) {
  std::mt19937_64 r(2);
  const auto x = rnd<int16_t>(r, M * kC, -30000, 30000), w = rnd<int16_t>(r, kC * kK, -8000, 8000);
  const auto bias = rnd<int32_t>(r, kC, -(1 << 20), 1 << 20);
  std::vector<int32_t> state(static_cast<size_t>((kK - 1) * kC), 0), uf(static_cast<size_t>(M * kC));
  const std::vector<RowScale> xs(static_cast<size_t>(M), RowScale{20000, 27});
  std::vector<int8_t> u(uf.size());
  std::vector<RowScale> us(static_cast<size_t>(M));
  std::vector<int64_t> work(uf.size());
  SsmConvArgs a{};
  a.x = x.data(), a.xs = xs.data(), a.rows = M, a.channels = kC, a.taps = kK, a.w = w.data();
  a.bias = bias.data(), a.x_exp = 12, a.w_exp = 14, a.u_exp = 16, a.qmax = 127, a.state = state.data();
  a.u = u.data(), a.us = us.data(), a.uf = uf.data(), a.work = work.data();
  for (auto _ : st) {
    k->conv(a, 0, kC);
    k->conv_out(a, 0, M);
    benchmark::DoNotOptimize(u.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * M * kC);
}

void bench_scan_f32(benchmark::State& st, int64_t M) {
  std::mt19937_64 r(3);
  std::normal_distribution<float> nd(0, 1);
  auto randf = [&](int64_t n, float mean, float sd) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& e : v) e = mean + sd * nd(r);
    return v;
  };
  const auto u = randf(M * kC, 0, 1), dt = randf(M * kC, -2.5f, 1.5f), b = randf(M * kN, 0, 1),
             c = randf(M * kN, 0, 1), D = randf(kC, 1, 0);
  std::vector<float> A(static_cast<size_t>(kC * kN)), h(A.size(), 0), y(static_cast<size_t>(M * kC));
  for (int64_t i = 0; i < kC * kN; ++i) A[size_t(i)] = -float((i % kN) + 1);
  for (auto _ : st) {
    bench::ssm_scan_f32(u.data(), dt.data(), b.data(), c.data(), A.data(), D.data(), M, kC, kN, h.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * M * kC * kN);
}

int register_ssm() {
  size_t count = 0;
  const SsmKernel* const* all = ssm_kernels(&count);
  for (int64_t M : {int64_t{1}, int64_t{64}}) {
    const std::string rows = "/rows:" + std::to_string(M);
    const std::string shape = "/" + std::to_string(kC) + "x" + std::to_string(kN) + rows;
    for (size_t i = 0; i < count; ++i) {
      const SsmKernel* k = all[i];
      if (!isa_supported(k->isa)) continue;
      const std::string isa = isa_name(k->isa);
      benchmark::RegisterBenchmark(("ssm_scan/i32/" + isa + shape).c_str(),
                                   [k, M](benchmark::State& st) { bench_scan_i32(st, k, M); });
      benchmark::RegisterBenchmark(("ssm_conv/i16/" + isa + "/" + std::to_string(kC) + "k" + std::to_string(kK) + rows).c_str(),
                                   [k, M](benchmark::State& st) { bench_conv_i16(st, k, M); });
    }
    if (isa_supported(Isa::avx512))
      benchmark::RegisterBenchmark(("ssm_scan/f32/avx512" + shape).c_str(),
                                   [M](benchmark::State& st) { bench_scan_f32(st, M); });
  }
  return 0;
}

const int registered = register_ssm();

}  // namespace
}  // namespace fq::k
