// DULUT activation benchmarks (rows of fq_bench_kernels), one row of 4096 elements per iteration,
// items_per_second = elements per second:
//   <fn>/<i8|i16>/<isa>/4096     fn in gelu, silu, sigmoid, exp; int8 -> int8 or int16 -> int16
//                                through every compiled LUT variant this CPU supports (the tables
//                                are fitted at start-up by tools/fqquant/dulut.cc)
//   gelu/f32/avx512/4096         float baseline: x * 0.5 * (1 + erf(x / sqrt 2)), AVX-512 FMA,
//                                erf by a rational minimax approximation (odd degree-13 / even
//                                degree-8, |x| clamped to 4; max abs error ~1e-7 vs std::erf, printed
//                                at start-up), the division by rcp14 + one Newton step
//   fq_bench_kernels --benchmark_filter='^(gelu|silu|sigmoid|exp)/'
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "dulut.h"
#include "fq/kernels/lut.h"

namespace {

using namespace fq::k;
constexpr int kN = 4096;

void bench_lut(benchmark::State& st, const LutKernel* k, LutTable t) {
  std::mt19937 rng(7);
  std::vector<int16_t> x16(kN), y16(kN);
  std::vector<int8_t> x8(kN), y8(kN);
  for (int i = 0; i < kN; ++i) {
    x16[size_t(i)] = int16_t(std::uniform_int_distribution<int>(-32768, 32767)(rng));
    x8[size_t(i)] = int8_t(x16[size_t(i)] >> 8);
  }
  const void* x = t.in_bits == 8 ? static_cast<const void*>(x8.data()) : x16.data();
  void* y = t.out_bits == 8 ? static_cast<void*>(y8.data()) : y16.data();
  for (auto _ : st) {
    k->run(t, x, kN, y);
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kN);
}

#if defined(__x86_64__)
// (GCC 12's AVX-512 intrinsics trip -Wuninitialized on their internal undefined operands when
// used through target attributes; the operands are masked off.)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// erf(x) ~ x P(x^2) / Q(x^2) on |x| <= 4 (rational minimax, float coefficients).
__attribute__((target("avx512f,fma"))) inline __m512 erf_avx512(__m512 a) {
  const __m512 x = _mm512_max_ps(_mm512_min_ps(a, _mm512_set1_ps(4.f)), _mm512_set1_ps(-4.f));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.72614225801306e-10f), _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-1.60960333262415e-02f));
  p = _mm512_mul_ps(x, p);
  __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(-1.45660718464996e-05f), _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.42647390514189e-02f));
  __m512 r = _mm512_rcp14_ps(q);  // 1/q: rcp14 + one Newton step (~2^-28 relative)
  r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.f)));
  return _mm512_mul_ps(p, r);
}

__attribute__((target("avx512f,fma"))) void gelu_f32_avx512(const float* x, float* y, int n) {
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.f), rs2 = _mm512_set1_ps(0.70710678118654752f);
  for (int i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 e = erf_avx512(_mm512_mul_ps(v, rs2));
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, e)));
  }
}

void bench_gelu_f32(benchmark::State& st) {
  std::mt19937 rng(7);
  std::vector<float> x(kN), y(kN);
  for (float& v : x) v = std::uniform_real_distribution<float>(-8.f, 8.f)(rng);
  for (auto _ : st) {
    gelu_f32_avx512(x.data(), y.data(), kN);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kN);
}

__attribute__((target("avx512f,fma"))) double erf_max_error() {
  alignas(64) float in[16], out[16];
  double worst = 0;
  for (int i = 0; i < 1 << 16; i += 16) {
    for (int l = 0; l < 16; ++l) in[l] = -6.f + 12.f * float(i + l) / 65536.f;
    _mm512_store_ps(out, erf_avx512(_mm512_load_ps(in)));
    for (int l = 0; l < 16; ++l) worst = std::max(worst, std::fabs(double(out[l]) - std::erf(double(in[l]))));
  }
  return worst;
}
#endif

int register_lut() {
  using fq::quant::ActFn;
  const std::pair<const char*, ActFn> fns[] = {
      {"gelu", ActFn::gelu_erf}, {"silu", ActFn::silu}, {"sigmoid", ActFn::sigmoid}, {"exp", ActFn::exp}};
  size_t count = 0;
  const LutKernel* const* ks = lut_kernels(&count);
  for (const auto& [name, fn] : fns)
    for (int bits : {8, 16}) {
      fq::quant::DulutSpec s = fq::quant::dulut_default_spec(fn, bits, bits == 8 ? 4 : 6, bits == 8 ? 4 : 6);
      s.refine_passes = 0;  // the speed does not depend on the values
      LutTable t;
      if (!fq::quant::to_kernel_table(fq::quant::fit_dulut(s), &t)) continue;
      for (size_t v = 0; v < count; ++v) {
        if (!isa_supported(ks[v]->isa)) continue;
        const std::string row = std::string(name) + "/i" + std::to_string(bits) + "/" + ks[v]->name + "/" + std::to_string(kN);
        benchmark::RegisterBenchmark(row.c_str(), [k = ks[v], t](benchmark::State& st) { bench_lut(st, k, t); });
      }
    }
#if defined(__x86_64__)
  if (isa_supported(Isa::avx512)) {
    std::printf("gelu/f32/avx512 erf approximation: max |err| vs std::erf on [-6, 6] = %.2e\n", erf_max_error());
    benchmark::RegisterBenchmark(("gelu/f32/avx512/" + std::to_string(kN)).c_str(), bench_gelu_f32);
  }
#endif
  return 0;
}

const int registered = register_lut();

}  // namespace
