// DI-MatMul benchmarks (rows of fq_bench_kernels), all with the dynamic per-token requantization
// epilogue (i8 out + row shifts), weights prepacked once:
//   dimatmul/<w8|w4|cb3>/<M>x<N>x<K>/<isa>/threads:<t>   every compiled variant this CPU supports
//                                                     (scalar only on the small LLM shapes);
//                                                     w4 = int4 weights, groups of 32
//   dimatmul/<w8|w4>/1x4096x4096/<isa>/streamed/threads:<t>  the GEMV with its weights streamed from
//                                                     memory: each call reads the next of enough
//                                                     packed copies to fill kStreamBytes (256 MiB)
//   peer/onednn/<M>x<N>x<K>/threads:<t>               oneDNN u8s8->s8 matmul, its default ISA
//                                                     (only when built with libdnnl-dev)
//   peer/onednn/1x4096x4096/streamed/threads:<t>      the same, weights streamed as above
//   peak/vpdpbusd_zmm/threads:<t>                     the vpdpbusd zmm throughput of this machine
//   peak/read_<16|256>MiB/threads:<t>                 read bandwidth (GBps): the GEMV ceiling is
//                                                     2 int8 ops per weight byte
// Counter GOPS = 2*M*N*K per wall-clock second / 1e9 (measured here, so multi-threaded rows are
// rated on elapsed time). Threads: a fixed pool, units [w*U/T, (w+1)*U/T) per worker, one barrier
// per pass, as the engine's executor does.
//   fq_bench_kernels --benchmark_filter='dimatmul|peer|peak' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "fq/kernels/matmul.h"

#if FQ_BENCH_ONEDNN
#include <dlfcn.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using namespace fq::k;
using Clock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// CPU seconds used by the whole process (all threads): the machine is shared, so besides wall-clock
// GOPS every row also reports GOPS_cpu = ops / (process CPU seconds / threads), the rate per core
// while the row's threads actually ran (spin waits at barriers count as used).
double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct MShape {
  int64_t m;
  int n, k;
  std::string name() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
  }
  double ops() const { return 2.0 * double(m) * n * k; }
};

const MShape kShapes[] = {
    {1, 4096, 4096}, {1, 11008, 4096}, {128, 4096, 4096}, {512, 1024, 1024}, {3136, 64, 576},
    {1, 64, 64},     {1, 172, 64},     {1, 64, 172},      {1, 512, 64},  // stories260K
    {64, 64, 64},    {64, 256, 64},    {64, 64, 256},  // RWKV 5v2, 64 tokens per run
};
constexpr int kGroup = 32;
constexpr size_t kStreamBytes = size_t{256} << 20;  // streamed rows: copies of the weights filling this
const MShape kStreamShape = {1, 4096, 4096};

// A fixed pool: worker 0 is the calling thread; the others spin on a generation counter while
// the benchmark runs (the pool lives only as long as one benchmark row).
class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int w = 1; w < threads_; ++w) workers_.emplace_back([this, w] { loop(w); });
  }
  ~Pool() {
    stop_.store(true);
    for (auto& t : workers_) t.join();
  }
  int threads() const { return threads_; }
  // Runs job(w) for every worker w; units <= 1 run on the caller alone (as the executor does).
  void run(const std::function<void(int)>& job, int64_t units = 2) {
    if (threads_ == 1 || units <= 1) {
      for (int w = 0; w < threads_; ++w) job(w);
      return;
    }
    job_ = &job;
    done_.store(0, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_release);
    job(0);
    while (done_.load(std::memory_order_acquire) != threads_ - 1) cpu_relax();
  }

 private:
  void loop(int w) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t g;
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        if (stop_.load(std::memory_order_relaxed)) return;
        cpu_relax();
      }
      seen = g;
      (*job_)(w);
      done_.fetch_add(1, std::memory_order_release);
    }
  }
  const int threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
};

template <class T>
std::vector<T> random_vec(size_t n, int lo, int hi, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(d(r));
  return v;
}

struct Aligned {  // 64-byte aligned byte buffer
  std::vector<uint8_t> v;
  explicit Aligned(size_t n) : v(n + 64) {}
  uint8_t* data() {
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
  }
};

// streamed: the packed weights are copied until they fill kStreamBytes and each call reads the next
// copy (none of it is in cache); otherwise one copy, cache-resident when it fits.
void bench_fq(benchmark::State& state, const MatmulKernel* kern, MShape sh, WeightFormat f, int threads,
              bool streamed = false) {
  MatmulShape s;
  s.m = sh.m, s.n = sh.n, s.k = sh.k, s.format = f;
  s.group = f == WeightFormat::i4 ? kGroup : is_codebook(f) ? 64 : 0;  // codebooks: groups of 64
  const int ng = matmul_groups(s);
  const auto a = random_vec<int8_t>(size_t(sh.m) * sh.k, -128, 127, 1);
  const size_t wbytes = f == WeightFormat::i8 ? size_t(sh.n) * sh.k
                        : f == WeightFormat::i4 ? size_t(sh.n) * ((sh.k + 1) / 2)
                                                : size_t(sh.n) * size_t(codebook_row_bytes(s));
  const auto w = random_vec<uint8_t>(wbytes, 0, 255, 2);
  const auto cb = random_vec<int8_t>(size_t(sh.n) * (ng ? ng : 1) * 16, -128, 127, 5);
  const auto mult = random_vec<int32_t>(size_t(sh.n), 1 << 14, 1 << 15, 3);
  const auto gm = random_vec<int16_t>(size_t(sh.n) * (ng ? ng : 1), 1 << 12, 1 << 14, 4);
  const std::vector<int8_t> gs(size_t(sh.n), 0);
  MatmulWeights mw;
  mw.w = w.data(), mw.mult = mult.data(), mw.gmult = gm.data(), mw.gshift = gs.data();
  mw.codebook = cb.data();
  const size_t psize = (kern->packed_size(s) + 63) / 64 * 64;
  const size_t copies = streamed ? (kStreamBytes + psize - 1) / psize : 1;
  Aligned packed(psize * copies);
  kern->pack(s, mw, packed.data());
  for (size_t c = 1; c < copies; ++c) std::memcpy(packed.data() + c * psize, packed.data(), psize);
  std::vector<int8_t> y(size_t(sh.m) * sh.n), row_shift(size_t(sh.m));
  MatmulArgs x;
  x.a = a.data(), x.lda = sh.k, x.packed = packed.data(), x.y = y.data(), x.ldy = sh.n;
  x.e.op = MatmulOp::dynamic, x.e.out_type = OutType::i8, x.e.row_shift = row_shift.data();
  Aligned ws(kern->workspace_size(s, x.e));
  x.workspace = ws.data();
  const size_t sstride = (kern->scratch_size(s, x.e) + 127) / 64 * 64;
  Aligned scratch(sstride * size_t(threads));
  const int passes = kern->num_passes(s, x.e);
  int64_t units[2] = {kern->num_tasks(s, x.e, 0), passes > 1 ? kern->num_tasks(s, x.e, 1) : 0};
  Pool pool(threads);
  int pass = 0;
  const std::function<void(int)> job = [&](int wk) {
    const int64_t u = units[pass], b = u * wk / threads, e = u * (wk + 1) / threads;
    if (b < e) kern->run(s, x, pass, b, e, scratch.data() + sstride * size_t(wk));
  };
  double seconds = 0;
  size_t call = 0;
  const double c0 = process_cpu_seconds();
  for (auto _ : state) {
    x.packed = packed.data() + psize * (call++ % copies);
    const auto t0 = Clock::now();
    for (pass = 0; pass < passes; ++pass) pool.run(job, units[pass]);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double cpu = process_cpu_seconds() - c0;
  state.counters["GOPS"] = sh.ops() * double(state.iterations()) / seconds / 1e9;
  state.counters["GOPS_cpu"] = sh.ops() * double(state.iterations()) / (cpu / threads) / 1e9;
  state.counters["units"] = double(units[0]);
  state.counters["passes"] = passes;
}

#if defined(__x86_64__)
// The vpdpbusd zmm peak: 14 independent accumulators, no memory operands.
__attribute__((target("avx512f,avx512vnni"))) void vnni_loop(int64_t iters) {
  for (int64_t i = 0; i < iters; ++i)
    __asm__ volatile(
        "vpdpbusd %%zmm0, %%zmm1, %%zmm2\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm3\n\t"
        "vpdpbusd %%zmm0, %%zmm1, %%zmm4\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm5\n\t"
        "vpdpbusd %%zmm0, %%zmm1, %%zmm6\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm7\n\t"
        "vpdpbusd %%zmm0, %%zmm1, %%zmm8\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm9\n\t"
        "vpdpbusd %%zmm0, %%zmm1, %%zmm10\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm11\n\t"
        "vpdpbusd %%zmm0, %%zmm1, %%zmm12\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm13\n\t"
        "vpdpbusd %%zmm0, %%zmm1, %%zmm14\n\tvpdpbusd %%zmm0, %%zmm1, %%zmm15\n\t" ::
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
              "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

void bench_peak(benchmark::State& state, int threads) {
  constexpr int64_t kIters = 1 << 20;
  Pool pool(threads);
  const std::function<void(int)> job = [](int) { vnni_loop(kIters); };
  double seconds = 0;
  const double c0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto t0 = Clock::now();
    pool.run(job);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double ops = 14.0 * 128 * kIters * threads * double(state.iterations());
  state.counters["GOPS"] = ops / seconds / 1e9;
  state.counters["GOPS_cpu"] = ops / ((process_cpu_seconds() - c0) / threads) / 1e9;
}

// Read bandwidth of this machine (the GEMV ceiling: an int8 GEMV does 2 ops per weight byte):
// every worker sums its share of a buffer of `mib` MiB with 64-byte loads.
__attribute__((target("avx512f"))) int64_t read_sum(const uint8_t* p, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 64));
    c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 128));
    d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 192));
  }
  alignas(64) int64_t lanes[8];  // (not _mm512_reduce_add_epi64: GCC 12 PR 105593 warning)
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  int64_t sum = 0;
  for (int64_t v : lanes) sum += v;
  return sum;
}

void bench_read(benchmark::State& state, int mib, int threads) {
  const size_t bytes = size_t(mib) << 20, share = bytes / size_t(threads) / 256 * 256;
  Aligned buf(bytes);
  std::memset(buf.data(), 1, bytes);
  Pool pool(threads);
  std::vector<int64_t> sums(size_t(threads) * 8);
  const std::function<void(int)> job = [&](int w) { sums[size_t(w) * 8] += read_sum(buf.data() + share * size_t(w), share); };
  double seconds = 0;
  const double c0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto t0 = Clock::now();
    pool.run(job);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  benchmark::DoNotOptimize(sums.data());
  const double total = double(share) * threads * double(state.iterations());
  state.counters["GBps"] = total / seconds / 1e9;
  state.counters["GBps_cpu"] = total / ((process_cpu_seconds() - c0) / threads) / 1e9;
}

#endif  // __x86_64__

#if FQ_BENCH_ONEDNN
// oneDNN u8 x s8 -> s8 matmul with a common output scale, weights reordered once into the layout
// it prefers (format_tag::any), its default ISA and OpenMP threads.
void bench_onednn(benchmark::State& state, MShape sh, int threads, bool streamed = false) {
  using namespace dnnl;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  if (auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) set(threads);
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dim M = sh.m, N = sh.n, K = sh.k;
  const memory::desc a_md({M, K}, dt::u8, tag::ab), w_any({K, N}, dt::s8, tag::any),
      w_md({K, N}, dt::s8, tag::ba), c_md({M, N}, dt::s8, tag::ab);
  primitive_attr attr;
  attr.set_output_scales(0, {1.0f / 4096});
  const matmul::primitive_desc pd(matmul::desc(a_md, w_any, c_md), attr, eng);
  memory a(a_md, eng), w(w_md, eng), c(c_md, eng);
  const auto av = random_vec<uint8_t>(size_t(M * K), 0, 255, 1);
  const auto wv = random_vec<int8_t>(size_t(N * K), -128, 127, 2);
  std::memcpy(a.get_data_handle(), av.data(), av.size());
  std::memcpy(w.get_data_handle(), wv.data(), wv.size());
  const size_t copies = streamed ? (kStreamBytes + size_t(N * K) - 1) / size_t(N * K) : 1;
  std::vector<std::unordered_map<int, memory>> args;
  for (size_t i = 0; i < copies; ++i) {
    memory wp(pd.weights_desc(), eng);
    reorder(w, wp).execute(strm, w, wp);
    args.push_back({{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, wp}, {DNNL_ARG_DST, c}});
  }
  strm.wait();
  const matmul prim(pd);
  double seconds = 0;
  size_t call = 0;
  const double c0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto& arg = args[call++ % copies];
    const auto t0 = Clock::now();
    prim.execute(strm, arg);
    strm.wait();
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double cpu = process_cpu_seconds() - c0;
  state.counters["GOPS"] = sh.ops() * double(state.iterations()) / seconds / 1e9;
  state.counters["GOPS_cpu"] = sh.ops() * double(state.iterations()) / (cpu / threads) / 1e9;
  state.SetLabel(pd.impl_info_str());
}
#endif

int register_matmul() {
  size_t n = 0;
  const MatmulKernel* const* all = matmul_kernels(&n);
  // Per shape: FQ's rows, then the peer's, so that the rows compared ran close in time.
  for (const MShape& sh : kShapes) {
    for (WeightFormat f : {WeightFormat::i8, WeightFormat::i4, WeightFormat::cb3}) {
      for (size_t i = 0; i < n; ++i) {
        const MatmulKernel* k = all[i];
        if (!isa_supported(k->isa) || (k->isa == Isa::scalar && sh.ops() > 1e8)) continue;
        for (int t : {1, 2}) {
          const char* fname = f == WeightFormat::i8 ? "w8/" : f == WeightFormat::i4 ? "w4/" : "cb3/";
          const std::string name = std::string("dimatmul/") + fname +
                                   sh.name() + "/" + isa_name(k->isa) + "/threads:" + std::to_string(t);
          benchmark::RegisterBenchmark(name.c_str(), [k, sh, f, t](benchmark::State& st) { bench_fq(st, k, sh, f, t); })
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
#if FQ_BENCH_ONEDNN
    for (int t : {1, 2})
      benchmark::RegisterBenchmark(("peer/onednn/" + sh.name() + "/threads:" + std::to_string(t)).c_str(),
                                   [sh, t](benchmark::State& st) { bench_onednn(st, sh, t); })
          ->Unit(benchmark::kMicrosecond);
#endif
  }
  // The GEMV with its weights streamed from memory (beside peak/read_256MiB).
  const MShape ss = kStreamShape;
  for (WeightFormat f : {WeightFormat::i8, WeightFormat::i4})
    for (size_t i = 0; i < n; ++i) {
      const MatmulKernel* k = all[i];
      if (!isa_supported(k->isa) || k->isa == Isa::scalar) continue;
      for (int t : {1, 2})
        benchmark::RegisterBenchmark((std::string("dimatmul/") + (f == WeightFormat::i8 ? "w8/" : "w4/") + ss.name() +
                                      "/" + isa_name(k->isa) + "/streamed/threads:" + std::to_string(t)).c_str(),
                                     [k, ss, f, t](benchmark::State& st) { bench_fq(st, k, ss, f, t, true); })
            ->Unit(benchmark::kMicrosecond);
    }
#if FQ_BENCH_ONEDNN
  for (int t : {1, 2})
    benchmark::RegisterBenchmark(("peer/onednn/" + ss.name() + "/streamed/threads:" + std::to_string(t)).c_str(),
                                 [ss, t](benchmark::State& st) { bench_onednn(st, ss, t, true); })
        ->Unit(benchmark::kMicrosecond);
#endif
#if defined(__x86_64__)
  if (isa_supported(Isa::avx512))
    for (int t : {1, 2}) {
      benchmark::RegisterBenchmark(("peak/vpdpbusd_zmm/threads:" + std::to_string(t)).c_str(),
                                   [t](benchmark::State& st) { bench_peak(st, t); })
          ->Unit(benchmark::kMicrosecond);
      for (int mib : {16, 256})
        benchmark::RegisterBenchmark(("peak/read_" + std::to_string(mib) + "MiB/threads:" + std::to_string(t)).c_str(),
                                     [mib, t](benchmark::State& st) { bench_read(st, mib, t); })
            ->Unit(benchmark::kMicrosecond);
    }
#endif
  return 0;
}

const int registered = register_matmul();

}  // namespace
