// The executor: runs a prepared list of steps on a fixed-size thread pool. It knows nothing of
// graphs, ops or ISAs: a step is a function over independent work units [begin, end).
//
// Determinism: each step's units are split into one contiguous range per thread. Units never
// share outputs or reductions, so the bytes produced do not depend on the thread count.
// run() allocates nothing and takes no locks on the fast path (workers spin briefly, then sleep).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace fq::exec {

// Computes work units [begin, end) of a step; `scratch` is this worker's private scratch memory.
using StepFn = void (*)(const void* params, int64_t begin, int64_t end, void* scratch);

struct Step {
  StepFn fn = nullptr;
  const void* params = nullptr;
  int64_t units = 1;         // independent work units
  size_t scratch_bytes = 0;  // per worker
};

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1, including the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Runs `step` with worker w (0 = the caller) on units [w*U/T, (w+1)*U/T); scratch for worker w
  // starts at scratch + w * scratch_stride.
  void run(const Step& step, uint8_t* scratch, size_t scratch_stride);

 private:
  void worker(int w);
  void run_share(int w);

  const int threads_;
  std::vector<std::thread> workers_;
  // The current job, published by bumping generation_.
  const Step* step_ = nullptr;
  uint8_t* scratch_ = nullptr;
  size_t stride_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

// A prepared program: steps in execution order and the scratch memory they share.
class Executor {
 public:
  Executor(std::vector<Step> steps, int threads);
  void set_scratch(uint8_t* base, size_t stride) { scratch_ = base, stride_ = stride; }
  size_t max_scratch() const;  // largest per-worker scratch of any step
  size_t size() const { return steps_.size(); }
  int threads() const { return pool_.threads(); }
  void run();                   // all steps
  void run_step(size_t i);      // one step (profiling, observation)

 private:
  std::vector<Step> steps_;
  ThreadPool pool_;
  uint8_t* scratch_ = nullptr;
  size_t stride_ = 0;
};

}  // namespace fq::exec
