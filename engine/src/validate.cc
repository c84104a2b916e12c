// Loading, validating and saving graphs (docs/format.md), the per-tensor format rules, and the
// one error formatter every input error goes through.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <queue>

#include "blob.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "ops.h"

namespace fq {
namespace detail {

// ---- errors -------------------------------------------------------------------------------------

std::string error_line(const std::string& file, int line, const std::string& msg) {
  std::string s = file;
  if (line > 0) s += (s.empty() ? "line " : ":") + std::to_string(line);
  if (!s.empty()) s += ": ";
  s += msg;
  std::string out;  // names and paths may hold any byte: keep the message on one line
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else {
      out += char(c);
    }
  }
  return out;
}

void fail_at(const std::string& file, int line, const std::string& msg) {
  throw Error(error_line(file, line, msg));
}

void fail(const Graph& g, int line, const std::string& msg) { fail_at(g.path, line, msg); }

// ---- format rules -------------------------------------------------------------------------------

std::string name_problem(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxName) return "is " + std::to_string(name.size()) + " bytes, at most 255";
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return "contains a control character";
  return "";
}

std::string shape_problem(DType t, const std::vector<int64_t>& shape) {
  if (shape.size() > kMaxRank) return std::to_string(shape.size()) + " dimensions, at most 8";
  const uint64_t limit = 4 * kMaxTensorBytes;  // elements; i4 packs two per byte
  uint64_t n = 1;  // <= limit throughout: each product is checked before it is formed
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 1 || shape[i] > kMaxDim)
      return "dimension " + std::to_string(i) + " is " + std::to_string(shape[i]) +
             ", must be 1..2147483647";
    if (n > limit / uint64_t(shape[i])) return "more than 2^40 bytes";
    n *= uint64_t(shape[i]);
  }
  if (dtype_bytes(t, int64_t(n)) > kMaxTensorBytes) return "more than 2^40 bytes";
  return "";
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string quote(const std::string& s) {
  return "'" + (s.size() <= 80 ? s : s.substr(0, 77) + "...") + "'";
}

void check_tensor(const Graph& g, const TensorDef& t) {
  auto bad = [&](const std::string& msg) {
    fail(g, t.line, "tensor " + quote(t.name) + ": " + msg);
  };
  if (std::string p = name_problem(t.name); !p.empty()) bad("name " + p);
  if (dtype_bits(t.dtype) == 0) bad("invalid dtype code " + std::to_string(int(t.dtype)));
  if (std::string p = shape_problem(t.dtype, t.shape); !p.empty())
    bad("shape " + shape_str(t.shape) + ": " + p);

  const Quant& q = t.quant;
  if (!q.scale.empty() || !q.zero_point.empty() || q.axis != -1) {
    size_t channels = 1;
    if (q.axis != -1) {
      if (q.axis < 0 || size_t(q.axis) >= t.shape.size())
        bad("quant axis " + std::to_string(q.axis) + " is not a dimension of shape " +
            shape_str(t.shape));
      channels = size_t(t.shape[size_t(q.axis)]);
    }
    if (q.scale.size() != channels)
      bad(std::to_string(q.scale.size()) + " quant scales, expected " + std::to_string(channels) +
          (q.axis == -1 ? " (per-tensor)" : " (shape[" + std::to_string(q.axis) + "])"));
    for (double s : q.scale) {
      if (std::isfinite(s) && s > 0) continue;
      char text[32];
      std::snprintf(text, sizeof text, "%g", s);
      bad(std::string("quant scale ") + text + " is not finite and > 0");
    }
    if (!q.zero_point.empty() && q.zero_point.size() != channels)
      bad(std::to_string(q.zero_point.size()) + " zero points, expected " +
          std::to_string(channels));
    // The zero point is a stored value: it must be representable in the dtype.
    int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
    switch (t.dtype) {
      case DType::u8: lo = 0, hi = 255; break;
      case DType::i8: lo = -128, hi = 127; break;
      case DType::u16: lo = 0, hi = 65535; break;
      case DType::i16: lo = -32768, hi = 32767; break;
      case DType::i4: lo = -8, hi = 7; break;
      default: break;
    }
    for (int32_t z : q.zero_point)
      if (z < lo || z > hi)
        bad("zero point " + std::to_string(z) + " is outside " + dtype_name(t.dtype) + " range");
  }

  if (t.is_state && t.is_const) bad("is both constant and state");
  if (!t.data_ref.empty()) {
    if (!t.is_const) bad("names a blob entry (data:) but is not constant");
    if (std::string p = name_problem(t.data_ref); !p.empty()) bad("blob entry name " + p);
  }
  if (t.data.ptr ? t.data.size != t.nbytes() : t.data.size != 0)
    bad("data is " + std::to_string(t.data.size) + " bytes, expected " +
        std::to_string(t.nbytes()));
}

}  // namespace detail

using detail::fail;
using detail::quote;

// ---- validate_graph -----------------------------------------------------------------------------

namespace {

// Stable Kahn: among the nodes whose inputs are ready, always run the one listed first. Returns
// the order; when it covers fewer nodes than the graph has, the rest lie on or behind a cycle.
std::vector<size_t> topological_order(const std::vector<std::vector<size_t>>& preds) {
  const size_t n = preds.size();
  std::vector<std::vector<size_t>> succs(n);
  std::vector<size_t> waiting(n);
  for (size_t i = 0; i < n; ++i) {
    waiting[i] = preds[i].size();
    for (size_t p : preds[i]) succs[p].push_back(i);
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i)
    if (!waiting[i]) ready.push(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (size_t s : succs[i])
      if (--waiting[s] == 0) ready.push(s);
  }
  return order;
}

// Called when `order` misses some nodes: walks back from an unscheduled node through unscheduled
// producers (each has one, or it would have been scheduled) until a node repeats.
[[noreturn]] void report_cycle(const Graph& g, const std::vector<std::vector<size_t>>& preds,
                               const std::vector<size_t>& order) {
  std::vector<char> done(preds.size(), 0);
  for (size_t i : order) done[i] = 1;
  std::vector<size_t> seen_at(preds.size(), SIZE_MAX), path;
  size_t cur = size_t(std::find(done.begin(), done.end(), 0) - done.begin());
  while (seen_at[cur] == SIZE_MAX) {
    seen_at[cur] = path.size();
    path.push_back(cur);
    cur = *std::find_if(preds[cur].begin(), preds[cur].end(), [&](size_t p) { return !done[p]; });
  }
  // path[seen_at[cur]..] walks the cycle against the data flow; print it along the flow.
  std::vector<size_t> cycle(path.begin() + long(seen_at[cur]), path.end());
  std::reverse(cycle.begin(), cycle.end());
  std::string text;
  for (size_t k = 0; k < cycle.size() && k < 8; ++k) text += g.nodes[cycle[k]].name + " -> ";
  text += cycle.size() > 8 ? "..." : g.nodes[cycle[0]].name;
  const NodeDef& n = g.nodes[cycle[0]];
  fail(g, n.line, "node " + quote(n.name) + " is on a cycle (" + text + ")");
}

}  // namespace

void validate_graph(Graph& g) {
  std::map<std::string, size_t> index;  // tensor name -> position in g.tensors
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const TensorDef& t = g.tensors[i];
    detail::check_tensor(g, t);
    if (!index.emplace(t.name, i).second)
      fail(g, t.line, "tensor " + quote(t.name) + " is declared twice");
  }
  auto lookup = [&](const std::string& name, int line, const std::string& who) -> size_t {
    auto it = index.find(name);
    if (it == index.end()) fail(g, line, who + " " + quote(name) + " is not a declared tensor");
    return it->second;
  };

  std::vector<char> is_input(g.tensors.size(), 0);
  for (const auto& name : g.inputs) {
    size_t t = lookup(name, 0, "graph input");
    if (is_input[t]) fail(g, g.tensors[t].line, "graph input " + quote(name) + " is listed twice");
    if (g.tensors[t].is_const)
      fail(g, g.tensors[t].line, "graph input " + quote(name) + " is a constant");
    if (g.tensors[t].is_state)
      fail(g, g.tensors[t].line, "graph input " + quote(name) + " is a state tensor");
    is_input[t] = 1;
  }

  // Single writer per tensor; graph inputs and constants are never written.
  const size_t none = SIZE_MAX;
  std::vector<size_t> writer(g.tensors.size(), none);
  std::map<std::string, size_t> node_index;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const NodeDef& n = g.nodes[i];
    std::string who = "node " + quote(n.name);
    if (std::string p = detail::name_problem(n.name); !p.empty())
      fail(g, n.line, who + ": name " + p);
    if (!node_index.emplace(n.name, i).second) fail(g, n.line, who + " is declared twice");
    if (n.op.empty()) fail(g, n.line, who + ": no op");
    if (n.version < 1)
      fail(g, n.line, who + ": op version " + std::to_string(n.version) + ", must be >= 1");
    for (const auto& name : n.inputs) lookup(name, n.line, who + ": input");
    for (const auto& name : n.outputs) {
      size_t t = lookup(name, n.line, who + ": output");
      if (g.tensors[t].is_const) fail(g, n.line, who + " writes constant tensor " + quote(name));
      if (is_input[t]) fail(g, n.line, who + " writes graph input " + quote(name));
      if (g.tensors[t].is_state)
        fail(g, n.line, who + " lists state tensor " + quote(name) +
                            " as an output (ops update state tensors they take as inputs)");
      if (writer[t] != none)
        fail(g, n.line,
             "tensor " + quote(name) + " is written by node " + quote(g.nodes[writer[t]].name) +
                 " and by node " + quote(n.name));
      writer[t] = i;
    }
  }

  if (g.outputs.empty()) fail(g, 0, "the graph has no outputs");
  std::vector<char> is_output(g.tensors.size(), 0);
  for (const auto& name : g.outputs) {
    size_t t = lookup(name, 0, "graph output");
    if (is_output[t])
      fail(g, g.tensors[t].line, "graph output " + quote(name) + " is listed twice");
    if (g.tensors[t].is_state)
      fail(g, g.tensors[t].line, "graph output " + quote(name) + " is a state tensor");
    if (writer[t] == none)
      fail(g, g.tensors[t].line, "graph output " + quote(name) + " is not written by any node");
    is_output[t] = 1;
  }
  for (size_t t = 0; t < g.tensors.size(); ++t)
    if (!g.tensors[t].is_const && !g.tensors[t].is_state && !is_input[t] && writer[t] == none)
      fail(g, g.tensors[t].line,
           "tensor " + quote(g.tensors[t].name) +
               " is not a graph input or constant, and no node writes it");

  // Execution order.
  std::vector<std::vector<size_t>> preds(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& name : g.nodes[i].inputs)
      if (size_t w = writer[index[name]]; w != none) preds[i].push_back(w);
  std::vector<size_t> order = topological_order(preds);
  if (order.size() != g.nodes.size()) report_cycle(g, preds, order);
  std::vector<NodeDef> sorted;
  sorted.reserve(g.nodes.size());
  for (size_t i : order) sorted.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(sorted);

  // Per-op checks. Ops report through fail() with the node's line; errors raised without a
  // location (attribute accessors, numel) get the node's.
  for (const NodeDef& n : g.nodes) {
    try {
      detail::check_node(g, n);
    } catch (const Error& e) {
      std::string msg = e.what();
      bool located = g.path.empty() ? (n.line <= 0 || msg.rfind("line ", 0) == 0)
                                    : msg.rfind(g.path + ":", 0) == 0;
      if (located) throw;
      fail(g, n.line, msg);
    }
  }
}

// ---- load / save --------------------------------------------------------------------------------

Graph parse_graph_yaml(const std::string& text, const std::string& path_for_messages) {
  return detail::parse_yaml(text, path_for_messages).graph;
}

Graph load_graph(const std::string& yaml_path) {
  // Checked before reading: a device or FIFO could feed the reader forever.
  std::error_code ec;
  auto status = std::filesystem::status(yaml_path, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    detail::fail_at(yaml_path, 0, "not a regular file");
  if (auto size = std::filesystem::file_size(yaml_path, ec); !ec && size > detail::kMaxGraphBytes)
    detail::fail_at(yaml_path, 0,
                    std::to_string(size) + " bytes, more than the 256 MiB a graph may have");
  detail::ParsedYaml parsed = detail::parse_yaml(read_file(yaml_path), yaml_path);
  Graph& g = parsed.graph;
  if (parsed.weights.empty()) {
    for (const auto& t : g.tensors)
      if (t.is_const)
        fail(g, t.line,
             "tensor " + quote(t.name) + " is constant but the graph names no blob (weights:)");
  } else {
    namespace fs = std::filesystem;
    const std::string blob_path = (fs::path(yaml_path).parent_path() / parsed.weights).string();
    // Blob errors name the blob and entry; the prefix adds the graph file and its weights line.
    detail::Blob blob = [&] {
      try {
        return detail::Blob::open(blob_path);
      } catch (const Error& e) {
        fail(g, parsed.weights_line, std::string("weights: ") + e.what());
      }
    }();
    for (auto& t : g.tensors) {
      if (!t.is_const) continue;
      const std::string& ref = t.data_ref.empty() ? t.name : t.data_ref;
      std::string who = "tensor " + quote(t.name) + ": ";
      const detail::BlobEntry* e = blob.find(ref);
      if (!e) fail(g, t.line, who + "no entry " + quote(ref) + " in " + blob_path);
      if (e->dtype != t.dtype)
        fail(g, t.line,
             who + "dtype " + dtype_name(t.dtype) + " but blob entry " + quote(ref) + " in " +
                 blob_path + " is " + dtype_name(e->dtype));
      if (e->dims != t.shape)
        fail(g, t.line,
             who + "shape " + detail::shape_str(t.shape) + " but blob entry " + quote(ref) +
                 " in " + blob_path + " has " + detail::shape_str(e->dims));
      t.data = blob.data(*e);  // same dtype and shape, so the same byte size
    }
  }
  validate_graph(g);
  return g;
}

void save_graph(const Graph& g, const std::string& yaml_path) {
  // One blob entry per distinct entry name; tensors sharing one must agree on it.
  std::vector<detail::BlobItem> items;
  std::map<std::string, size_t> item_of;
  for (const auto& t : g.tensors) {
    detail::check_tensor(g, t);
    if (!t.is_const) continue;
    if (!t.data.ptr) fail(g, t.line, "tensor " + quote(t.name) + " is constant but has no data");
    const std::string& ref = t.data_ref.empty() ? t.name : t.data_ref;
    auto [it, added] = item_of.emplace(ref, items.size());
    if (added) {
      items.push_back({ref, t.dtype, t.shape, t.data.ptr});
    } else {
      const detail::BlobItem& o = items[it->second];
      if (o.dtype != t.dtype || o.dims != t.shape || std::memcmp(o.data, t.data.ptr, t.data.size))
        fail(g, t.line,
             "tensor " + quote(t.name) + " shares blob entry " + quote(ref) +
                 " with another tensor but has different dtype, shape or data");
    }
  }
  std::string weights;
  if (!items.empty()) {
    std::filesystem::path blob_path(yaml_path);
    blob_path.replace_extension(".fqw");
    weights = blob_path.filename().string();
    if (blob_path == std::filesystem::path(yaml_path))
      detail::fail_at(yaml_path, 0,
                      "the graph file cannot be named .fqw: the blob takes that name");
    detail::write_blob(blob_path.string(), items);
  }
  std::string text = detail::graph_yaml(g, weights);
  detail::AtomicFile f(yaml_path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace fq
