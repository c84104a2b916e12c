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
  int64_t work = 0;          // rough cost (multiply-adds): steps too small to repay waking a
                             // worker run on the caller alone (results do not change)
};

// Below this much work per thread (~1-2 us of int8 multiply-adds) a second thread costs more
// than it saves.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 18;

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1, including the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Runs `step` on up to threads() threads (fewer for small steps, see Step::work); the caller
  // takes part. Scratch for worker w (0 = the caller) starts at scratch + w * scratch_stride.
  void run(const Step& step, uint8_t* scratch, size_t scratch_stride);

 private:
  void worker(int w);
  // Claims and runs chunks of step `seq` until none is left; returns the number run.
  int run_chunks(uint32_t seq, const Step* step, int chunks, uint8_t* scratch);

  const int threads_;
  std::vector<std::thread> workers_;
  // The current job, published by bumping generation_ (its low 32 bits are the step's sequence
  // number). next_ holds (sequence << 32 | next chunk): claiming with a compare-and-swap on both
  // halves means a late worker can never take a chunk of a newer step by mistake.
  // Relaxed atomics: a late worker may read them while the next step is being published; it then
  // fails its claim and never uses what it read.
  std::atomic<const Step*> step_{nullptr};
  std::atomic<int> chunks_{1};
  std::atomic<int> active_{1};  // threads taking part in the current step
  std::atomic<uint8_t*> scratch_{nullptr};
  std::atomic<size_t> stride_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_{0};
  std::atomic<int> done_{0};
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
