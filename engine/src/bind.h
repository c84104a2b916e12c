// Prepare-time binding: what an op needs from the session to turn a node into executor steps.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "executor.h"
#include "fq/graph.h"
#include "fq/kernels/cpu.h"

namespace fq::detail {

struct BindCtx {
  const Graph& g;
  k::Isa isa;
  std::vector<void*> ptr;            // tensor index -> address (arena, or constant data)
  std::vector<exec::Step> steps;
  std::vector<int> step_node;        // node index of each step
  std::vector<std::string> kernel;   // per node: the kernel variant it was bound to
  int node = -1;                     // node being bound

  BindCtx(const Graph& graph, k::Isa level) : g(graph), isa(level) {}
  void* tensor(const std::string& name) { return ptr[g.find_tensor(name)]; }
  // Session-lifetime memory, 64-byte aligned and zeroed (packed weights, step parameters).
  void* alloc(size_t bytes);
  template <class T>
  T* make(const T& v) {
    static_assert(std::is_trivially_destructible_v<T>, "params are never destroyed");
    return new (alloc(sizeof(T))) T(v);
  }
  void step(exec::StepFn fn, const void* params, int64_t units, size_t scratch_bytes = 0,
            int64_t work = 0) {
    steps.push_back({fn, params, units, scratch_bytes, work});
    step_node.push_back(node);
  }

 private:
  struct Free { void operator()(void* p) const { std::free(p); } };
  std::vector<std::unique_ptr<void, Free>> owned_;
};

// Binds node `index` of ctx.g (validated) to kernels: appends its steps, sets ctx.kernel[index].
void bind_node(BindCtx& ctx, int index);

}  // namespace fq::detail
