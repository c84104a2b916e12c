// libFuzzer: the YAML reader and validate_graph on arbitrary text. Properties: no crash, hang, leak
// or UB; every error is a one-line fq::Error; a graph that reads is written back (graph_yaml) to
// text that reads as the same graph.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "blob.h"
#include "fq/graph.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool same_number(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

bool same_attr(const fq::Attr& a, const fq::Attr& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<double>(&a)) return same_number(*x, std::get<double>(b));
  if (auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    if (x->size() != y.size()) return false;
    for (size_t i = 0; i < x->size(); ++i)
      if (!same_number((*x)[i], y[i])) return false;
    return true;
  }
  return a == b;
}

void check_same(const fq::Graph& a, const fq::Graph& b) {
  check(a.name == b.name && a.meta == b.meta && a.inputs == b.inputs && a.outputs == b.outputs);
  check(a.tensors.size() == b.tensors.size() && a.nodes.size() == b.nodes.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const fq::TensorDef& x = a.tensors[i];
    const fq::TensorDef& y = b.tensors[i];
    check(x.name == y.name && x.dtype == y.dtype && x.shape == y.shape &&
          x.is_const == y.is_const && x.data_ref == y.data_ref && x.quant.axis == y.quant.axis &&
          x.quant.scale == y.quant.scale && x.quant.zero_point == y.quant.zero_point);
  }
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const fq::NodeDef& x = a.nodes[i];
    const fq::NodeDef& y = b.nodes[i];
    check(x.name == y.name && x.op == y.op && x.version == y.version && x.inputs == y.inputs &&
          x.outputs == y.outputs && x.attrs.size() == y.attrs.size());
    for (auto it = x.attrs.begin(), jt = y.attrs.begin(); it != x.attrs.end(); ++it, ++jt)
      check(it->first == jt->first && same_attr(it->second, jt->second));
  }
}

void check_one_line(const fq::Error& e) { check(std::strchr(e.what(), '\n') == nullptr); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fq::Graph g;
  try {
    g = fq::parse_graph_yaml(text, "fuzz.yaml");
  } catch (const fq::Error& e) {
    check_one_line(e);
    return 0;
  }
  // The writer's output reads back as the same graph.
  fq::Graph back = fq::parse_graph_yaml(fq::detail::graph_yaml(g, ""), "back.yaml");
  check_same(g, back);

  // Small constants get data, so the per-op checks also see values (shifts, multipliers).
  for (auto& t : g.tensors)
    if (t.is_const && t.nbytes() <= 4096) {
      std::string bytes(t.nbytes(), '\x01');
      t.data = fq::ConstData::copy_of(bytes.data(), bytes.size());
    }
  try {
    fq::validate_graph(g);
  } catch (const fq::Error& e) {
    check_one_line(e);
  }
  return 0;
}
