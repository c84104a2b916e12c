// Session: prepare (bind nodes to kernels, pack weights, plan one arena) and run.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "bind.h"
#include "blob.h"
#include "executor.h"
#include "fq/fq.h"

namespace fq {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

constexpr size_t kAlign = 64;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Offsets of the activation tensors in one arena: a tensor lives from the node that writes it
// (graph inputs: from the start) to the last node that reads it (graph outputs: to the end).
// Greedy by decreasing size, each placed at the lowest offset that does not overlap a placed
// tensor whose lifetime intersects its own.
struct Interval {
  int tensor, first, last;
  size_t bytes, offset = 0;
};

size_t plan_arena(const Graph& g, std::vector<size_t>* offsets) {
  const int n_nodes = static_cast<int>(g.nodes.size());
  std::vector<int> first(g.tensors.size(), -2), last(g.tensors.size(), -2);
  for (const std::string& name : g.inputs) first[g.find_tensor(name)] = -1;
  for (int i = 0; i < n_nodes; ++i) {
    for (const std::string& name : g.nodes[i].inputs) last[g.find_tensor(name)] = i;
    for (const std::string& name : g.nodes[i].outputs) first[g.find_tensor(name)] = i;
  }
  for (const std::string& name : g.outputs) last[g.find_tensor(name)] = n_nodes;
  std::vector<Interval> items;
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    // Constants live in the blob, state tensors in their own block (they persist across runs).
    if (g.tensors[t].is_const || g.tensors[t].is_state || first[t] == -2) continue;
    items.push_back({int(t), first[t], std::max(last[t], first[t]), align_up(g.tensors[t].nbytes())});
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Interval& a, const Interval& b) { return a.bytes > b.bytes; });
  size_t total = 0;
  std::vector<const Interval*> placed;
  for (Interval& it : items) {
    // Candidate offsets: 0 and the end of every conflicting placed tensor, lowest first.
    std::vector<size_t> candidates{0};
    for (const Interval* p : placed)
      if (p->first <= it.last && it.first <= p->last) candidates.push_back(p->offset + p->bytes);
    std::sort(candidates.begin(), candidates.end());
    for (size_t off : candidates) {
      bool fits = true;
      for (const Interval* p : placed)
        if (p->first <= it.last && it.first <= p->last && off < p->offset + p->bytes &&
            p->offset < off + it.bytes) {
          fits = false;
          break;
        }
      if (fits) {
        it.offset = off;
        break;
      }
    }
    placed.push_back(&it);
    total = std::max(total, it.offset + it.bytes);
  }
  offsets->assign(g.tensors.size(), 0);
  for (const Interval& it : items) (*offsets)[it.tensor] = it.offset;
  return total;
}

k::Isa choose_isa(const std::string& requested) {
  if (requested.empty()) {
    try {
      return k::isa_from_env();
    } catch (const std::runtime_error& e) {
      throw Error(e.what());
    }
  }
  k::Isa isa;
  if (!k::parse_isa(requested, &isa))
    throw Error("isa '" + requested + "': unknown (use scalar, avx2, avx512, amx, neon, neondot)");
  if (!k::isa_supported(isa))
    throw Error("isa '" + requested + "': not supported by this CPU/OS (best: " +
                k::isa_name(k::best_isa()) + ")");
  return isa;
}

}  // namespace

struct Session::Impl {
  Graph g;
  detail::BindCtx ctx;
  std::unique_ptr<uint8_t, FreeDeleter> arena, scratch, state;
  size_t arena_bytes = 0, scratch_bytes = 0, state_bytes = 0;
  std::unique_ptr<exec::Executor> exec;
  std::vector<NodeReport> reports;
  std::vector<int> inputs, outputs;
  bool profile;

  Impl(const Graph& graph, const Options& opt)
      : g(graph), ctx(g, choose_isa(opt.isa)), profile(opt.profile) {
    const int threads = std::clamp(opt.threads, 1, 256);
    std::vector<size_t> offsets;
    const size_t act_bytes = plan_arena(g, &offsets);
    arena.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, align_up(act_bytes + 1))));
    if (!arena) throw Error("out of memory for a " + std::to_string(act_bytes) + "-byte arena");
    // State tensors: one block, each tensor at its own 64-byte aligned offset, never reused.
    std::vector<size_t> state_offsets(g.tensors.size(), 0);
    for (size_t t = 0; t < g.tensors.size(); ++t)
      if (g.tensors[t].is_state) {
        state_offsets[t] = state_bytes;
        state_bytes += align_up(g.tensors[t].nbytes());
      }
    if (state_bytes) {
      state.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, state_bytes)));
      if (!state)
        throw Error("out of memory for " + std::to_string(state_bytes) + " bytes of state");
      std::memset(state.get(), 0, state_bytes);
    }
    ctx.ptr.resize(g.tensors.size(), nullptr);
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      const TensorDef& td = g.tensors[t];
      if (td.is_state) {
        ctx.ptr[t] = state.get() + state_offsets[t];
      } else if (td.is_const) {
        if (!td.data.ptr) throw Error("tensor '" + td.name + "': constant without data");
        ctx.ptr[t] = const_cast<uint8_t*>(td.data.ptr);
      } else {
        ctx.ptr[t] = arena.get() + offsets[t];
      }
    }
    ctx.kernel.resize(g.nodes.size());
    for (size_t i = 0; i < g.nodes.size(); ++i) detail::bind_node(ctx, int(i));
    exec = std::make_unique<exec::Executor>(ctx.steps, threads);
    // Scratch is known only once nodes are bound: a second block, one slice per worker.
    const size_t stride = align_up(exec->max_scratch());
    if (stride) {
      scratch.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, stride * threads)));
      if (!scratch) throw Error("out of memory for " + std::to_string(threads) + " x " +
                                std::to_string(stride) + " bytes of scratch");
      std::memset(scratch.get(), 0, stride * threads);
      exec->set_scratch(scratch.get(), stride);
    }
    std::memset(arena.get(), 0, act_bytes);
    arena_bytes = act_bytes;
    scratch_bytes = stride * threads;
    for (size_t i = 0; i < g.nodes.size(); ++i)
      reports.push_back({g.nodes[i].name, g.nodes[i].op, ctx.kernel[i], 0});
    for (const std::string& name : g.inputs) inputs.push_back(g.find_tensor(name));
    for (const std::string& name : g.outputs) outputs.push_back(g.find_tensor(name));
  }

  TensorView view(int t) {
    const TensorDef& td = g.tensors[t];
    return {td.name, td.dtype, td.shape, td.quant, ctx.ptr[t], td.nbytes()};
  }
};

Session::Session(const Graph& g, const Options& opt) : impl_(std::make_unique<Impl>(g, opt)) {}
Session::~Session() = default;

size_t Session::num_inputs() const { return impl_->inputs.size(); }
size_t Session::num_outputs() const { return impl_->outputs.size(); }

TensorView Session::input(size_t i) {
  if (i >= impl_->inputs.size()) throw Error("input index " + std::to_string(i) + " out of range");
  return impl_->view(impl_->inputs[i]);
}
TensorView Session::output(size_t i) {
  if (i >= impl_->outputs.size())
    throw Error("output index " + std::to_string(i) + " out of range");
  return impl_->view(impl_->outputs[i]);
}
TensorView Session::input(const std::string& name) {
  for (int t : impl_->inputs)
    if (impl_->g.tensors[t].name == name) return impl_->view(t);
  throw Error("'" + name + "' is not an input of graph '" + impl_->g.name + "'");
}
TensorView Session::output(const std::string& name) {
  for (int t : impl_->outputs)
    if (impl_->g.tensors[t].name == name) return impl_->view(t);
  throw Error("'" + name + "' is not an output of graph '" + impl_->g.name + "'");
}

void Session::run() {
  if (!impl_->profile) return impl_->exec->run();
  using clock = std::chrono::steady_clock;
  for (NodeReport& r : impl_->reports) r.last_ns = 0;
  for (size_t s = 0; s < impl_->exec->size(); ++s) {
    const auto t0 = clock::now();
    impl_->exec->run_step(s);
    impl_->reports[impl_->ctx.step_node[s]].last_ns += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
  }
}

void Session::run_observed(const std::function<void(const NodeDef&, const TensorView&)>& observe) {
  const auto& step_node = impl_->ctx.step_node;
  for (size_t s = 0; s < impl_->exec->size(); ++s) {
    impl_->exec->run_step(s);
    if (s + 1 < step_node.size() && step_node[s + 1] == step_node[s]) continue;
    const NodeDef& n = impl_->g.nodes[step_node[s]];
    for (const std::string& out : n.outputs) observe(n, impl_->view(impl_->g.find_tensor(out)));
  }
}

void Session::reset_state() {
  if (impl_->state_bytes) std::memset(impl_->state.get(), 0, impl_->state_bytes);
}
size_t Session::state_bytes() const { return impl_->state_bytes; }

namespace {
// The state signature: FNV-1a over (name, dtype, shape) of every state tensor, in graph order.
uint64_t state_signature(const Graph& g) {
  uint64_t h = detail::kFnvBasis;
  for (const TensorDef& t : g.tensors) {
    if (!t.is_state) continue;
    h = detail::fnv1a64(t.name.data(), t.name.size() + 1, h);  // with the terminating NUL
    const int32_t d = int32_t(t.dtype);
    h = detail::fnv1a64(&d, sizeof d, h);
    h = detail::fnv1a64(t.shape.data(), t.shape.size() * sizeof(int64_t), h);
  }
  return h;
}
constexpr char kStateMagic[8] = {'F', 'Q', 'S', 'T', 'A', 'T', 'E', '1'};
constexpr size_t kStateHeader = 8 + 2 * sizeof(uint64_t);  // magic, signature, payload bytes
}  // namespace

std::vector<uint8_t> Session::save_state() const {
  std::vector<uint8_t> blob(kStateHeader + impl_->state_bytes);
  const uint64_t sig = state_signature(impl_->g), bytes = impl_->state_bytes;
  std::memcpy(blob.data(), kStateMagic, 8);
  std::memcpy(blob.data() + 8, &sig, 8);
  std::memcpy(blob.data() + 16, &bytes, 8);
  if (bytes) std::memcpy(blob.data() + kStateHeader, impl_->state.get(), bytes);
  return blob;
}

void Session::load_state(const std::vector<uint8_t>& blob) {
  uint64_t sig = 0, bytes = 0;
  if (blob.size() >= kStateHeader) {
    std::memcpy(&sig, blob.data() + 8, 8);
    std::memcpy(&bytes, blob.data() + 16, 8);
  }
  if (blob.size() < kStateHeader || std::memcmp(blob.data(), kStateMagic, 8) != 0 ||
      bytes != blob.size() - kStateHeader)
    throw Error("graph '" + impl_->g.name + "': not a state blob (" + std::to_string(blob.size()) +
                " bytes)");
  if (sig != state_signature(impl_->g) || bytes != impl_->state_bytes)
    throw Error("graph '" + impl_->g.name + "': the state blob (" + std::to_string(bytes) +
                " bytes) was saved from a graph with other state tensors");
  if (bytes) std::memcpy(impl_->state.get(), blob.data() + kStateHeader, bytes);
}

const std::vector<NodeReport>& Session::nodes() const { return impl_->reports; }
std::string Session::isa() const { return k::isa_name(impl_->ctx.isa); }
size_t Session::arena_bytes() const { return impl_->arena_bytes; }
size_t Session::scratch_bytes() const { return impl_->scratch_bytes; }
int Session::threads() const { return impl_->exec->threads(); }

}  // namespace fq
