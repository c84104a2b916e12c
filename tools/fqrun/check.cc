// fqrun check: validate a graph completely.
#include <cstdio>

#include "common.h"

namespace fqrun {

namespace {

const char kCheckUsage[] =
    "usage: fqrun check GRAPH\n"
    "\n"
    "Loads and validates GRAPH and its weight blob completely (format, checksums, op arity,\n"
    "dtypes and shapes; docs/format.md) without preparing a session. Prints one line,\n"
    "'ok: <summary>', and exits 0; on the first problem prints one line naming the file and the\n"
    "tensor or node and exits 2.\n";

}  // namespace

std::string graph_summary(const fq::Graph& g) {
  int consts = 0;
  uint64_t weight_bytes = 0;
  for (const auto& t : g.tensors)
    if (t.is_const) ++consts, weight_bytes += t.nbytes();
  auto list = [&](const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) {
      const fq::TensorDef& t = g.tensor(n);
      s += (s.empty() ? "" : ", ") + n + " " + type_str(t.dtype, t.shape, t.quant);
    }
    return s;
  };
  return g.name + ": inputs " + list(g.inputs) + "; outputs " + list(g.outputs) + "; " +
         std::to_string(g.tensors.size()) + " tensors (" + std::to_string(consts) + " constant, " +
         with_commas(weight_bytes) + " weight bytes), " + std::to_string(g.nodes.size()) + " nodes";
}

int cmd_check(const std::vector<std::string>& argv, const Global&) {
  const Args a(argv, {}, 1);
  if (a.help) {
    std::fputs(kCheckUsage, stdout);
    return 0;
  }
  const fq::Graph g = fq::load_graph(a.graph());
  std::printf("ok: %s\n", graph_summary(g).c_str());
  return 0;
}

}  // namespace fqrun
