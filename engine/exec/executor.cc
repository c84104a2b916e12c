#include "executor.h"

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

void ThreadPool::run_share(int w) {
  const int64_t b = split_point(step_->units, w, threads_);
  const int64_t e = split_point(step_->units, w + 1, threads_);
  if (b < e) step_->fn(step_->params, b, e, scratch_ + size_t(w) * stride_);
}

void ThreadPool::run(const Step& step, uint8_t* scratch, size_t scratch_stride) {
  if (threads_ == 1 || step.units == 1) {
    if (step.units > 0) step.fn(step.params, 0, step.units, scratch);
    return;
  }
  step_ = &step;
  scratch_ = scratch;
  stride_ = scratch_stride;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  // seq_cst on both sides (generation_/sleepers_) so a worker going to sleep either sees the new
  // generation or is seen as a sleeper and notified.
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);  // pairs with the sleeper's predicate check
    cv_.notify_all();
  }
  run_share(0);
  while (pending_.load(std::memory_order_acquire) != 0) FQ_PAUSE();
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
    run_share(w);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
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
