// Depthwise conv benchmarks: one row per (variant this CPU supports, shape), plus the float32
// baseline (f32_dwconv.cc) on the same shapes. GOPS = 2 * MACs per second / 1e9 (padding taps
// included). Rows: dwconv/<isa>/<N>x<H>x<W>x<C>k<K>s<S>/threads:1.
//   fq_bench_kernels --benchmark_filter='dwconv/' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "f32_dwconv.h"
#include "fq/kernels/dwconv.h"

namespace {

using namespace fq::k;

struct DwShape {
  int n, h, w, c, k, s;
  DwConvShape shape() const {
    DwConvShape d;
    d.n = n, d.h = h, d.w = w, d.c = c, d.kh = d.kw = k, d.stride = s;
    d.pad_t = d.pad_l = k / 2;
    d.oh = (h + 2 * (k / 2) - k) / s + 1;
    d.ow = (w + 2 * (k / 2) - k) / s + 1;
    return d;
  }
  double ops() const {
    const DwConvShape d = shape();
    return 2.0 * d.n * d.oh * d.ow * d.c * d.kh * d.kw;
  }
  std::string name() const {
    char b[96];
    std::snprintf(b, sizeof b, "%dx%dx%dx%dk%ds%d", n, h, w, c, k, s);
    return b;
  }
};

const DwShape kDwShapes[] = {
    {1, 56, 56, 64, 3, 1},  {1, 112, 112, 32, 3, 2}, {1, 28, 28, 128, 5, 1},
    {1, 14, 14, 576, 3, 1}, {1, 7, 7, 960, 7, 1},
};

template <class T>
std::vector<T> random_vec(size_t n, int lo, int hi, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(d(r));
  return v;
}

void bench_dw(benchmark::State& state, const DwConvKernel* kern, DwShape sh) {
  const DwConvShape s = sh.shape();
  const auto x = random_vec<uint8_t>(size_t(s.n) * s.h * s.w * s.c, 0, 255, 1);
  const auto w = random_vec<int8_t>(size_t(s.kh) * s.kw * s.c, -128, 127, 2);
  const auto bias = random_vec<int32_t>(size_t(s.c), -1000, 1000, 3);
  const std::vector<int32_t> mult(size_t(s.c), 1 << 20);
  const std::vector<int8_t> shift(size_t(s.c), 32);
  std::vector<uint8_t> packed(kern->packed_size(s)), scratch(kern->scratch_size(s) + 64);
  std::vector<uint8_t> y(size_t(s.n) * s.oh * s.ow * s.c);
  kern->pack(s, w.data(), packed.data());
  DwConvEpilogue e;
  e.bias = bias.data(), e.mult = mult.data(), e.shift = shift.data(), e.lo = 0, e.hi = 255;
  const int64_t tasks = kern->num_tasks(s);
  for (auto _ : state) {
    kern->run(s, x.data(), packed.data(), e, y.data(), 0, tasks, scratch.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GOPS"] =
      benchmark::Counter(sh.ops() * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["tasks"] = double(tasks);
}

void bench_dw_f32(benchmark::State& state, DwShape sh) {
  const DwConvShape s = sh.shape();
  const fq::bench::F32DwConv p{s.n, s.h, s.w, s.c, s.kh, s.stride, s.pad_t, s.oh, s.ow};
  std::mt19937 r(1);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x(size_t(s.n) * s.h * s.w * s.c), w(size_t(s.kh) * s.kw * s.c),
      b(size_t(s.c));
  for (auto* v : {&x, &w, &b})
    for (float& f : *v) f = d(r);
  std::vector<float> y(size_t(s.n) * s.oh * s.ow * s.c);
  for (auto _ : state) {
    fq::bench::dwconv_f32(p, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GOPS"] =
      benchmark::Counter(sh.ops() * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

int register_dwconv() {
  size_t n = 0;
  const DwConvKernel* const* all = dwconv_kernels(&n);
  for (const DwShape& sh : kDwShapes) {
    for (size_t i = 0; i < n; ++i)
      if (isa_supported(all[i]->isa))
        benchmark::RegisterBenchmark(
            ("dwconv/" + std::string(isa_name(all[i]->isa)) + "/" + sh.name()).c_str(),
            [k = all[i], sh](benchmark::State& st) { bench_dw(st, k, sh); })
            ->Threads(1)
            ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("dwconv/f32/" + sh.name()).c_str(),
                                 [sh](benchmark::State& st) { bench_dw_f32(st, sh); })
        ->Threads(1)
        ->Unit(benchmark::kMicrosecond);
  }
  return 0;
}

// Registered before main() runs (static initialization), like any BENCHMARK() macro.
const int kRegistered = register_dwconv();

}  // namespace
