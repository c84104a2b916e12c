// llm family rows: <op>/i8/<isa>/<n> for every compiled + supported variant, next to float32
// AVX-512 baselines of the same operators (<op>/f32/avx512/<n>, llm_f32.cc). items = positions
// (attention_head: one attention head, hd = 8, over n cached positions: QK^T, softmax, P.V;
// attention_gqa: the 8 query heads / 4 kv heads of stories260K over n positions) or elements
// (softmax: one row of n int8 / int16 logits -> u8 / u16 probabilities, vs an AVX-512 float
// softmax with a polynomial exp; layernorm: one int8 row with per-channel affine -> int8, vs a
// float layernorm with affine; rmsnorm, swiglu; exp_q / exp_shift: n int32 Q16 inputs in [-16, 0]
// -> Q30, the table exp and the bit-shift DI-Exp, rows exp_q/i32/<isa>/<n>, exp_shift/i32/<isa>/<n>;
// layernorm/groupnorm/<isa>/<d>x<segments>: RWKV's GroupNorm, 32 int16 rows of d with statistics per
// run of d / segments -> int8, items = elements).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fq/kernels/llm.h"
#include "llm_f32.h"

namespace fq::k {
namespace {

constexpr int kHd = 8;

void bench_attention_head_i8(benchmark::State& st, const LlmKernel* k, int64_t n) {
  std::mt19937_64 r(1);
  std::uniform_int_distribution<int> d8(-127, 127), d16(-20000, 20000);
  std::vector<int8_t> kc(static_cast<size_t>(n * kHd)), vc(static_cast<size_t>(n * kHd));
  for (auto& x : kc) x = int8_t(d8(r));
  for (auto& x : vc) x = int8_t(d8(r));
  std::vector<RowScale> kcs(static_cast<size_t>(n), RowScale{20000, 29}), vcs(static_cast<size_t>(n), RowScale{20000, 14});
  for (int64_t u = 0; u < n; ++u) kcs[size_t(u)].mant = 16384 + int32_t(r() % 16384);
  std::vector<int16_t> q(kHd);
  for (auto& x : q) x = int16_t(d16(r));
  RowScale qs{20000, 30};
  std::vector<int64_t> work(kHd);
  int32_t wexp = 0;
  AttentionArgs a{};
  a.q = q.data(), a.qs = &qs, a.kc = kc.data(), a.vc = vc.data(), a.kcs = kcs.data(), a.vcs = vcs.data();
  a.rows = 1, a.heads = 1, a.kv_heads = 1, a.head_dim = kHd, a.cache_rows = n, a.pos = int32_t(n - 1);
  a.clip_q16 = int64_t{20} << 16, a.qmax = 127, a.work = work.data(), a.work_exp = &wexp;
  std::vector<uint8_t> scratch(attention_scratch(a));
  for (auto _ : st) {
    k->attention_heads(a, 0, 1, scratch.data());
    benchmark::DoNotOptimize(work.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

// One decode step of stories260K's attention (H = 8 query heads, G = 4 kv heads, hd = 8, the query
// at position n - 1 over n cached positions): attention_heads over all 8 (row, head) units, as the
// engine runs it with one thread. items = positions.
void bench_attention_gqa_i8(benchmark::State& st, const LlmKernel* k, int64_t n) {
  constexpr int H = 8, G = 4;
  std::mt19937_64 r(11);
  std::uniform_int_distribution<int> d8(-127, 127), d16(-20000, 20000);
  std::vector<int8_t> kc(static_cast<size_t>(n * G * kHd)), vc(static_cast<size_t>(n * G * kHd));
  for (auto& x : kc) x = int8_t(d8(r));
  for (auto& x : vc) x = int8_t(d8(r));
  std::vector<RowScale> kcs(static_cast<size_t>(n * G), RowScale{20000, 29}), vcs(static_cast<size_t>(n * G), RowScale{20000, 14});
  for (auto& s : kcs) s.mant = 16384 + int32_t(r() % 16384);
  for (auto& s : vcs) s.exp = 14 + int32_t(r() % 3);
  std::vector<int16_t> q(H * kHd);
  for (auto& x : q) x = int16_t(d16(r));
  RowScale qs{20000, 30};
  std::vector<int64_t> work(H * kHd);
  std::vector<int32_t> wexp(H);
  AttentionArgs a{};
  a.q = q.data(), a.qs = &qs, a.kc = kc.data(), a.vc = vc.data(), a.kcs = kcs.data(), a.vcs = vcs.data();
  a.rows = 1, a.heads = H, a.kv_heads = G, a.head_dim = kHd, a.cache_rows = n, a.pos = int32_t(n - 1);
  a.clip_q16 = int64_t{20} << 16, a.qmax = 127, a.work = work.data(), a.work_exp = wexp.data();
  std::vector<uint8_t> scratch(attention_scratch(a));
  for (auto _ : st) {
    k->attention_heads(a, 0, H, scratch.data());
    benchmark::DoNotOptimize(work.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

// hadamard of one row of n int8 values (n = 176 = 16 * 11: stories260K's hidden size padded).
void bench_hadamard_i8(benchmark::State& st, const LlmKernel* k, int64_t n) {
  std::mt19937_64 r(12);
  std::vector<int8_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (auto& v : x) v = int8_t(int64_t(r() % 255) - 127);
  RowScale xs{20000, 20}, ys;
  HadamardArgs a{x.data(), &xs, n, 127, y.data(), &ys};
  std::vector<uint8_t> scratch(hadamard_scratch(n));
  for (auto _ : st) {
    k->hadamard(a, 0, 1, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_rmsnorm_i8(benchmark::State& st, const LlmKernel* k, int64_t n) {
  std::mt19937_64 r(2);
  std::vector<int32_t> x(static_cast<size_t>(n));
  for (auto& v : x) v = int32_t(int64_t(r() % 2000001) - 1000000);
  std::vector<int8_t> y(static_cast<size_t>(n));
  RowScale ys;
  RmsnormArgs a{x.data(), n, 1 << 20, 10, 127, y.data(), &ys};
  std::vector<uint8_t> scratch(rmsnorm_scratch(n));
  for (auto _ : st) {
    k->rmsnorm(a, 0, 1, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_swiglu_i8(benchmark::State& st, const LlmKernel* k, int64_t n) {
  std::mt19937_64 r(3);
  std::vector<int16_t> g(static_cast<size_t>(n)), u(static_cast<size_t>(n));
  for (auto& v : g) v = int16_t(int64_t(r() % 65536) - 32768);
  for (auto& v : u) v = int16_t(int64_t(r() % 65536) - 32768);
  RowScale gs{20000, 26}, us{20000, 20}, ys;
  std::vector<int8_t> y(static_cast<size_t>(n));
  SwigluArgs a{g.data(), u.data(), n, &gs, &us, 127, y.data(), &ys};
  std::vector<uint8_t> scratch(swiglu_scratch(n));
  for (auto _ : st) {
    k->swiglu(a, 0, 1, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

// One row of n logits: int8 in [-127, 127] with a row scale of 1/16 (real logits in [-8, 8], the
// whole 255-entry exp range in use) or int16 with the same real range; u8 (int8 input) or u16
// (int16 input) probabilities; clip 20.
void bench_softmax_int(benchmark::State& st, const LlmKernel* k, int64_t n, int bits) {
  std::mt19937_64 r(13);
  std::vector<int8_t> x8(static_cast<size_t>(n));
  std::vector<int16_t> x16(static_cast<size_t>(n));
  for (auto& v : x8) v = int8_t(int64_t(r() % 255) - 127);
  for (auto& v : x16) v = int16_t(int64_t(r() % 65535) - 32767);
  RowScale xs = bits == 8 ? RowScale{16384, 18} : RowScale{16384, 26};
  std::vector<uint16_t> y(static_cast<size_t>(n));
  SoftmaxArgs a{};
  a.x = bits == 8 ? static_cast<const void*>(x8.data()) : static_cast<const void*>(x16.data());
  a.in_bits = bits, a.n = n, a.xs = &xs, a.xs_stride = 0, a.valid = nullptr;
  a.clip_q16 = int64_t{20} << 16, a.out = bits == 8 ? kSoftmaxU8 : kSoftmaxU16, a.y = y.data();
  std::vector<uint8_t> scratch(softmax_scratch(n));
  for (auto _ : st) {
    k->softmax(a, 0, 1, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_exp(benchmark::State& st, const LlmKernel* k, int64_t n, int kind) {
  std::mt19937_64 r(19);
  std::vector<int32_t> x(static_cast<size_t>(n));
  for (auto& v : x) v = -int32_t(r() % (uint64_t{16} << 16));
  std::vector<uint32_t> y(static_cast<size_t>(n));
  const ExpArgs a{x.data(), 16, kind, y.data()};
  for (auto _ : st) {
    k->exp(a, 0, n);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_layernorm_i8(benchmark::State& st, const LlmKernel* k, int64_t n) {
  std::mt19937_64 r(14);
  std::vector<int8_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (auto& v : x) v = int8_t(int64_t(r() % 255) - 127);
  std::vector<int32_t> gm(static_cast<size_t>(n)), bo(static_cast<size_t>(n));
  for (auto& v : gm) v = int32_t(r() % 32768);
  for (auto& v : bo) v = int32_t(int64_t(r() % 8192) - 4096);
  RowScale xs{20000, 20}, ys;
  LayernormArgs a{};
  a.x = x.data(), a.in_bits = 8, a.d = n, a.xs = &xs, a.xs_stride = 0, a.eps_m = 1 << 30, a.eps_e = 47;
  a.gm = gm.data(), a.bo = bo.data(), a.ae = 14, a.groups = 1, a.inner = 1, a.qmax = 127;
  a.y = y.data(), a.ys = &ys;
  std::vector<uint8_t> scratch(layernorm_scratch(n));
  for (auto _ : st) {
    k->layernorm(a, 0, 1, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

// RWKV's GroupNorm over the heads of a token: rows of d int16 values (the wkv output), statistics per
// run of d / segments (segments 1: a plain LayerNorm), per-channel affine, int8 out; kGnRows rows
// per call, items = elements.
constexpr int64_t kGnRows = 32;
void bench_groupnorm_i16(benchmark::State& st, const LlmKernel* k, int64_t d, int64_t segments) {
  std::mt19937_64 r(19);
  const int64_t n = kGnRows * d;
  std::vector<int16_t> x(static_cast<size_t>(n));
  std::vector<int8_t> y(static_cast<size_t>(n));
  for (auto& v : x) v = int16_t(int64_t(r() % 20001) - 10000);
  std::vector<int32_t> gm(static_cast<size_t>(d)), bo(static_cast<size_t>(d));
  for (auto& v : gm) v = int32_t(r() % 32768);
  for (auto& v : bo) v = int32_t(int64_t(r() % 8192) - 4096);
  std::vector<RowScale> xs(static_cast<size_t>(kGnRows), RowScale{20000, 24}), ys(static_cast<size_t>(kGnRows));
  LayernormArgs a{};
  a.x = x.data(), a.in_bits = 16, a.d = d, a.xs = xs.data(), a.xs_stride = 1, a.eps_m = 1 << 30, a.eps_e = 47;
  a.gm = gm.data(), a.bo = bo.data(), a.ae = 14, a.groups = 1, a.inner = 1, a.qmax = 127;
  a.segments = segments, a.y = y.data(), a.ys = ys.data();
  std::vector<uint8_t> scratch(layernorm_scratch(d));
  for (auto _ : st) {
    k->layernorm(a, 0, kGnRows, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

std::vector<float> randf(int64_t n, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = float(int64_t(r() % 2001) - 1000) / 1000.0f;
  return v;
}

void bench_attention_head_f32(benchmark::State& st, int64_t n) {
  const auto k = randf(n * kHd, 4), v = randf(n * kHd, 5), q = randf(kHd, 6);
  std::vector<float> p(static_cast<size_t>(n)), o(kHd);
  for (auto _ : st) {
    bench::attention_head_f32(q.data(), k.data(), v.data(), n, kHd, p.data(), o.data());
    benchmark::DoNotOptimize(o.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_softmax_f32(benchmark::State& st, int64_t n) {
  auto x = randf(n, 15);
  for (auto& v : x) v *= 8.0f;
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : st) {
    bench::softmax_f32(x.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_layernorm_f32(benchmark::State& st, int64_t n) {
  const auto x = randf(n, 16), g = randf(n, 17), b = randf(n, 18);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : st) {
    bench::layernorm_f32(x.data(), n, g.data(), b.data(), 1e-5f, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_rmsnorm_f32(benchmark::State& st, int64_t n) {
  const auto x = randf(n, 7);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : st) {
    bench::rmsnorm_f32(x.data(), n, 1e-5f, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

void bench_swiglu_f32(benchmark::State& st, int64_t n) {
  const auto g = randf(n, 8), u = randf(n, 9);
  std::vector<float> y(static_cast<size_t>(n));
  for (auto _ : st) {
    bench::swiglu_f32(g.data(), u.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * n);
}

int register_llm() {
  size_t count = 0;
  const LlmKernel* const* all = llm_kernels(&count);
  for (int64_t n : {int64_t{64}, int64_t{512}, int64_t{4096}}) {
    const std::string ns = "/" + std::to_string(n);
    for (size_t i = 0; i < count; ++i) {
      const LlmKernel* k = all[i];
      if (!isa_supported(k->isa)) continue;
      const std::string isa = isa_name(k->isa);
      benchmark::RegisterBenchmark(("attention_head/i8/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_attention_head_i8(st, k, n); });
      benchmark::RegisterBenchmark(("softmax/i8/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_softmax_int(st, k, n, 8); });
      benchmark::RegisterBenchmark(("softmax/i16/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_softmax_int(st, k, n, 16); });
      benchmark::RegisterBenchmark(("layernorm/i8/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_layernorm_i8(st, k, n); });
      benchmark::RegisterBenchmark(("attention_gqa/i8/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_attention_gqa_i8(st, k, n); });
      benchmark::RegisterBenchmark(("rmsnorm/i8/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_rmsnorm_i8(st, k, n); });
      benchmark::RegisterBenchmark(("swiglu/i8/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_swiglu_i8(st, k, n); });
      benchmark::RegisterBenchmark(("exp_q/i32/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_exp(st, k, n, kExpQ); });
      benchmark::RegisterBenchmark(("exp_shift/i32/" + isa + ns).c_str(),
                                   [k, n](benchmark::State& st) { bench_exp(st, k, n, kExpShift); });
    }
    if (isa_supported(Isa::avx512)) {
      benchmark::RegisterBenchmark(("attention_head/f32/avx512" + ns).c_str(),
                                   [n](benchmark::State& st) { bench_attention_head_f32(st, n); });
      benchmark::RegisterBenchmark(("softmax/f32/avx512" + ns).c_str(),
                                   [n](benchmark::State& st) { bench_softmax_f32(st, n); });
      benchmark::RegisterBenchmark(("layernorm/f32/avx512" + ns).c_str(),
                                   [n](benchmark::State& st) { bench_layernorm_f32(st, n); });
      benchmark::RegisterBenchmark(("rmsnorm/f32/avx512" + ns).c_str(),
                                   [n](benchmark::State& st) { bench_rmsnorm_f32(st, n); });
      benchmark::RegisterBenchmark(("swiglu/f32/avx512" + ns).c_str(),
                                   [n](benchmark::State& st) { bench_swiglu_f32(st, n); });
    }
  }
  for (const auto& ds : {std::pair<int64_t, int64_t>{64, 8}, {128, 2}, {768, 12}})
    for (size_t i = 0; i < count; ++i)
      if (isa_supported(all[i]->isa))
        benchmark::RegisterBenchmark((std::string("layernorm/groupnorm/") + isa_name(all[i]->isa) + "/" +
                                      std::to_string(ds.first) + "x" + std::to_string(ds.second)).c_str(),
                                     [k = all[i], ds](benchmark::State& st) { bench_groupnorm_i16(st, k, ds.first, ds.second); });
  // plain LayerNorm over kGnRows rows of 64 (RWKV's ln1 / ln2 shape)
  for (size_t i = 0; i < count; ++i)
    if (isa_supported(all[i]->isa))
      benchmark::RegisterBenchmark((std::string("layernorm/rows/") + isa_name(all[i]->isa) + "/64").c_str(),
                                   [k = all[i]](benchmark::State& st) { bench_groupnorm_i16(st, k, 64, 1); });
  for (size_t i = 0; i < count; ++i)
    if (isa_supported(all[i]->isa))
      benchmark::RegisterBenchmark((std::string("hadamard/i8/") + isa_name(all[i]->isa) + "/176").c_str(),
                                   [k = all[i]](benchmark::State& st) { bench_hadamard_i8(st, k, 176); });
  return 0;
}

const int registered = register_llm();

}  // namespace
}  // namespace fq::k
