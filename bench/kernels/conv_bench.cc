// Kernel benchmarks. One row per (variant, shape), for every compiled variant this CPU supports
// (from conv_kernels() / pool_kernels()), plus the float32 baseline (f32_conv.cc) on the same
// shapes. GOPS = 2 * MACs per second / 1e9 (padding taps included, as usual).
//   fq_bench_kernels --benchmark_filter='conv/' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "f32_conv.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/pool.h"

namespace {

using namespace fq::k;

struct Shape {
  int n, h, w, c, o, k, s;
  ConvShape conv() const {
    ConvShape cs;
    cs.n = n, cs.h = h, cs.w = w, cs.c = c, cs.o = o, cs.kh = cs.kw = k, cs.stride = s;
    cs.pad_t = cs.pad_l = k / 2;
    cs.oh = (h + 2 * (k / 2) - k) / s + 1;
    cs.ow = (w + 2 * (k / 2) - k) / s + 1;
    return cs;
  }
  double ops() const {
    const ConvShape cs = conv();
    return 2.0 * cs.n * cs.oh * cs.ow * cs.o * cs.kh * cs.kw * cs.c;
  }
  std::string name() const {
    char b[96];
    std::snprintf(b, sizeof b, "%dx%dx%dx%d->%dk%ds%d", n, h, w, c, o, k, s);
    return b;
  }
};

const Shape kShapes[] = {
    {1, 28, 28, 1, 16, 3, 1},   {1, 28, 28, 16, 32, 3, 2}, {1, 14, 14, 32, 32, 3, 1},  // digits
    {1, 14, 14, 32, 64, 3, 2},  {1, 7, 7, 64, 64, 3, 1},                               // model
    {1, 56, 56, 64, 64, 3, 1},  {1, 56, 56, 64, 64, 1, 1},                             // larger
    {1, 56, 56, 576, 64, 1, 1},  // GEMM 3136 x 64 x 576 as a 1x1 conv
};

template <class T>
std::vector<T> random_vec(size_t n, int lo, int hi, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(d(r));
  return v;
}

void bench_conv(benchmark::State& state, const ConvKernel* kern, Shape sh) {
  const ConvShape s = sh.conv();
  const int64_t k = int64_t{s.kh} * s.kw * s.c;
  const auto x = random_vec<uint8_t>(size_t(s.n) * s.h * s.w * s.c, 0, 255, 1);
  const auto w = random_vec<int8_t>(size_t(s.o) * k, -128, 127, 2);
  const auto bias = random_vec<int32_t>(size_t(s.o), -1000, 1000, 3);
  const std::vector<int32_t> mult(size_t(s.o), 1 << 20);
  const std::vector<int8_t> shift(size_t(s.o), 40);
  std::vector<uint8_t> packed(kern->packed_size(s)), scratch(kern->scratch_size(s) + 64);
  std::vector<uint8_t> y(size_t(s.n) * s.oh * s.ow * s.o);
  kern->pack(s, w.data(), nullptr, packed.data());
  ConvEpilogue e;
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

void bench_f32(benchmark::State& state, Shape sh) {
  const ConvShape s = sh.conv();
  fq::bench::F32Conv p{s.n, s.h, s.w, s.c, s.o, s.kh, s.stride, s.pad_t, s.oh, s.ow};
  std::mt19937 r(1);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x(size_t(s.n) * s.h * s.w * s.c), w(size_t(s.o) * s.kh * s.kw * s.c),
      b(size_t(s.o));
  for (auto* v : {&x, &w, &b})
    for (float& f : *v) f = d(r);
  std::vector<float> y(size_t(s.n) * s.oh * s.ow * s.o);
  for (auto _ : state) {
    fq::bench::conv_f32(p, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GOPS"] =
      benchmark::Counter(sh.ops() * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void bench_gap(benchmark::State& state, const PoolKernel* kern, int hw, int c) {
  const auto x = random_vec<uint8_t>(size_t(hw) * c, 0, 255, 4);
  std::vector<uint8_t> y(static_cast<size_t>(c));
  for (auto _ : state) {
    kern->gap_u8(x.data(), 1, hw, c, 1 << 20, 26, 0, 255, OutType::u8, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * hw * c);
}

int register_all() {
  size_t nconv = 0, npool = 0;
  const ConvKernel* const* convs = conv_kernels(&nconv);
  const PoolKernel* const* pools = pool_kernels(&npool);
  for (const Shape& sh : kShapes) {
    for (size_t i = 0; i < nconv; ++i)
      if (isa_supported(convs[i]->isa))
        benchmark::RegisterBenchmark(
            ("conv/" + std::string(isa_name(convs[i]->isa)) + "/" + sh.name()).c_str(),
            [k = convs[i], sh](benchmark::State& st) { bench_conv(st, k, sh); })
            ->Threads(1)
            ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("conv/f32/" + sh.name()).c_str(),
                                 [sh](benchmark::State& st) { bench_f32(st, sh); })
        ->Threads(1)
        ->Unit(benchmark::kMicrosecond);
  }
  for (size_t i = 0; i < npool; ++i)
    if (isa_supported(pools[i]->isa))
      for (auto hwc : {std::pair<int, int>{49, 64}, {3136, 256}})
        benchmark::RegisterBenchmark(
            ("gap/" + std::string(isa_name(pools[i]->isa)) + "/1x" + std::to_string(hwc.first) +
             "x" + std::to_string(hwc.second))
                .c_str(),
            [k = pools[i], hwc](benchmark::State& st) { bench_gap(st, k, hwc.first, hwc.second); })
            ->Threads(1);
  // (The classifier head's softmax is the llm family's: softmax/<dtype>/<isa>/<n> rows of
  // llm_bench.cc.)
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("CPU: %s\n", cpu_features().brand.c_str());
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
