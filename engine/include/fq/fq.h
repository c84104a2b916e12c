// FQ public C++ API: load a model, prepare a session, set inputs, run, read outputs.
//
//   fq::Graph g = fq::load_graph("digits-int8.yaml");
//   fq::Session s(g, {.threads = 2});
//   std::memcpy(s.input(0).data, pixels, s.input(0).bytes);
//   s.run();
//   const uint16_t* probs = static_cast<const uint16_t*>(s.output(0).data);
//
// prepare (the constructor) binds every node to a kernel for the chosen ISA, packs weights and
// plans one memory arena; run() allocates nothing and gives bit-identical results for any thread
// count.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fq/graph.h"

namespace fq {

struct Options {
  int threads = 1;       // worker threads including the caller
  std::string isa;       // "" = FQ_ISA if set, else the best this CPU allows
  bool profile = false;  // record per-node wall time in run()
};

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  Quant quant;
  void* data;            // inside the session's arena; valid for the session's lifetime
  size_t bytes;
};

struct NodeReport {
  std::string name, op, kernel;  // kernel: the variant bound at prepare, e.g. "conv_u8i8/avx512"
  uint64_t last_ns = 0;          // wall time of the last run() when profiling
};

class Session {
 public:
  explicit Session(const Graph& g, const Options& opt = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  size_t num_inputs() const;
  size_t num_outputs() const;
  TensorView input(size_t i);
  TensorView output(size_t i);
  TensorView input(const std::string& name);
  TensorView output(const std::string& name);

  void run();
  // Runs and calls `observe` after each node with each of its outputs (for calibration and
  // debugging; slower than run()).
  void run_observed(const std::function<void(const NodeDef&, const TensorView&)>& observe);

  // Zeroes every state tensor (graph tensors declared `state: true`, e.g. KV caches): the session
  // then behaves as if newly created. State is zero at creation and persists across run() calls.
  void reset_state();
  // State save / restore: a blob with every state tensor's bytes (graph order) and a signature of
  // their names, dtypes and shapes. load_state accepts the blob of any session whose graph declares
  // the same state tensors in the same order, e.g. a prefill graph (M tokens per run) and the decode
  // graph (one token) of the same model, so a sequence can be prefilled by one and continued by the
  // other; any other blob is an fq::Error naming both graphs.
  std::vector<uint8_t> save_state() const;
  void load_state(const std::vector<uint8_t>& blob);

  const std::vector<NodeReport>& nodes() const;
  std::string isa() const;          // ISA level in force
  size_t arena_bytes() const;       // activations, planned from tensor lifetimes
  size_t scratch_bytes() const;     // per-worker kernel scratch, all workers
  size_t state_bytes() const;       // state tensors (persistent, outside the arena)
  int threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads the whole file; throws fq::Error naming it.
std::string read_file(const std::string& path);

}  // namespace fq
