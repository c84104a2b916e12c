// fqrun info: graph summary and the kernel bound to each node.
#include <algorithm>
#include <cstdio>
#include <map>

#include "common.h"

namespace fqrun {

namespace {

const char kInfoUsage[] =
    "usage: fqrun info GRAPH [options]\n"
    "\n"
    "Prints the graph's name, format version, inputs and outputs (dtype, shape, quant), tensor,\n"
    "node and constant counts, weight and arena bytes, its meta entries, the ISA in force, and a\n"
    "table of every node in execution order with its op, the kernel it was bound to at prepare,\n"
    "and its output.\n"
    "\n"
    "options:\n"
    "  --threads T   worker threads of the prepared session (default 1)\n"
    "  --isa ISA     highest kernel ISA (default: $FQ_ISA, else the best)\n";

std::string clip(std::string s, size_t n) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

}  // namespace

int cmd_info(const std::vector<std::string>& argv, const Global& global) {
  const Args a(argv, {{"threads", 't', true}}, 1);
  if (a.help) {
    std::fputs(kInfoUsage, stdout);
    return 0;
  }
  const std::string& path = a.graph();
  const int threads = int(a.integer("threads", 1, 1, 1024));
  const fq::Options opt = session_options(global, a, threads);
  const fq::Graph g = fq::load_graph(path);
  fq::Session s(g, opt);

  int consts = 0;
  uint64_t weight_bytes = 0;
  for (const auto& t : g.tensors)
    if (t.is_const) ++consts, weight_bytes += t.nbytes();
  std::printf("graph      %s\n", g.name.c_str());
  std::printf("file       %s (fq-graph version 1)\n", path.c_str());
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const fq::TensorDef& t = g.tensor(g.inputs[i]);
    std::printf("%s %s %s\n", i ? "          " : "inputs    ", t.name.c_str(),
                type_str(t.dtype, t.shape, t.quant).c_str());
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const fq::TensorDef& t = g.tensor(g.outputs[i]);
    std::printf("%s %s %s\n", i ? "          " : "outputs   ", t.name.c_str(),
                type_str(t.dtype, t.shape, t.quant).c_str());
  }
  std::printf("tensors    %zu (%d constant)\n", g.tensors.size(), consts);
  std::printf("nodes      %zu\n", g.nodes.size());
  std::printf("weights    %s bytes (%s)\n", with_commas(weight_bytes).c_str(), human_bytes(weight_bytes).c_str());
  std::printf("arena      %s bytes (%s)\n", with_commas(s.arena_bytes()).c_str(),
              human_bytes(s.arena_bytes()).c_str());
  if (s.state_bytes())
    std::printf("state      %s bytes (%s)\n", with_commas(s.state_bytes()).c_str(),
                human_bytes(s.state_bytes()).c_str());
  std::printf("isa        %s (%d thread%s; cpu %s)\n", s.isa().c_str(), s.threads(),
              s.threads() == 1 ? "" : "s", cpu_name().c_str());
  for (const auto& [k, v] : g.meta) std::printf("meta       %s: %s\n", k.c_str(), clip(v, 100).c_str());

  // Node table, execution order. The session reports nodes in the graph's (validated) order.
  const auto& nodes = s.nodes();
  std::map<std::string, const fq::NodeDef*> by_name;
  for (const auto& n : g.nodes) by_name[n.name] = &n;
  std::vector<std::string> out_col(nodes.size());
  size_t wn = 4, wo = 2, wk = 6;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto it = by_name.find(nodes[i].name);
    if (it != by_name.end()) {
      for (const auto& o : it->second->outputs) {
        const fq::TensorDef& t = g.tensor(o);
        out_col[i] += (out_col[i].empty() ? "" : ", ") + o + " " + type_str(t.dtype, t.shape, {});
      }
    }
    wn = std::max(wn, nodes[i].name.size());
    wo = std::max(wo, nodes[i].op.size());
    wk = std::max(wk, nodes[i].kernel.size());
  }
  std::printf("\n%4s  %-*s  %-*s  %-*s  %s\n", "#", int(wn), "node", int(wo), "op", int(wk), "kernel", "output");
  for (size_t i = 0; i < nodes.size(); ++i)
    std::printf("%4zu  %-*s  %-*s  %-*s  %s\n", i, int(wn), nodes[i].name.c_str(), int(wo),
                nodes[i].op.c_str(), int(wk), nodes[i].kernel.c_str(), out_col[i].c_str());
  return 0;
}

}  // namespace fqrun
