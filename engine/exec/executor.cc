#include "executor.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#define FQ_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FQ_PAUSE() __asm__ volatile("yield")
#else
#define FQ_PAUSE() (void)0
#endif

namespace fq::exec {
namespace {
constexpr int kSpinIterations = 1 << 14;  // ~tens of microseconds before a worker sleeps

inline int64_t split_point(int64_t units, int w, int threads) { return units * w / threads; }
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  workers_.reserve(threads_ - 1);
  for (int w = 1; w < threads_; ++w) workers_.emplace_back([this, w] { worker(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::run_chunks(uint32_t seq, const Step* step, int chunks, uint8_t* scratch) {
  int ran = 0;
  uint64_t v = next_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t idx = static_cast<uint32_t>(v);
    if (static_cast<uint32_t>(v >> 32) != seq || idx >= static_cast<uint32_t>(chunks)) return ran;
    if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    const int64_t b = split_point(step->units, static_cast<int>(idx), chunks);
    const int64_t e = split_point(step->units, static_cast<int>(idx) + 1, chunks);
    if (b < e) step->fn(step->params, b, e, scratch);
    ++ran;
    v = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(const Step& step, uint8_t* scratch, size_t scratch_stride) {
  const int64_t active = std::min<int64_t>({threads_, step.units, step.work / kMinWorkPerThread});
  if (active <= 1) {
    if (step.units > 0) step.fn(step.params, 0, step.units, scratch);
    return;
  }
  // A few chunks per thread balance uneven progress; each still repays its claim many times.
  const int chunks = static_cast<int>(std::min<int64_t>(step.units, 4 * active));
  constexpr auto relaxed = std::memory_order_relaxed;
  step_.store(&step, relaxed);
  chunks_.store(chunks, relaxed);
  active_.store(static_cast<int>(active), relaxed);
  scratch_.store(scratch, relaxed);
  stride_.store(scratch_stride, relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint32_t seq = static_cast<uint32_t>(generation_.load(std::memory_order_relaxed)) + 1;
  next_.store(uint64_t{seq} << 32, std::memory_order_release);
  // seq_cst on both sides (generation_/sleepers_) so a worker going to sleep either sees the new
  // generation or is seen as a sleeper and notified.
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);  // pairs with the sleeper's predicate check
    cv_.notify_all();
  }
  done_.fetch_add(run_chunks(seq, &step, chunks, scratch), std::memory_order_acq_rel);
  while (done_.load(std::memory_order_acquire) != chunks) FQ_PAUSE();
}

void ThreadPool::worker(int w) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      FQ_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    // The job fields below belong to step `g` as long as chunks of `g` remain unclaimed (the
    // caller cannot publish a newer step before they are all done); run_chunks checks that.
    constexpr auto relaxed = std::memory_order_relaxed;
    if (w >= active_.load(relaxed)) continue;
    uint8_t* scratch = scratch_.load(relaxed) + size_t(w) * stride_.load(relaxed);
    const int ran = run_chunks(static_cast<uint32_t>(g), step_.load(relaxed), chunks_.load(relaxed),
                               scratch);
    if (ran) done_.fetch_add(ran, std::memory_order_acq_rel);
  }
}

Executor::Executor(std::vector<Step> steps, int threads)
    : steps_(std::move(steps)), pool_(threads) {}

size_t Executor::max_scratch() const {
  size_t m = 0;
  for (const Step& s : steps_) m = s.scratch_bytes > m ? s.scratch_bytes : m;
  return m;
}

void Executor::run() {
  for (const Step& s : steps_) pool_.run(s, scratch_, stride_);
}

void Executor::run_step(size_t i) { pool_.run(steps_[i], scratch_, stride_); }

}  // namespace fq::exec
