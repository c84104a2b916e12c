#include "util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "fqquant.h"

namespace fq::quant {

std::vector<float> const_f32(const Graph& g, const std::string& name) {
  const TensorDef& t = g.tensor(name);
  if (!t.is_const || t.dtype != DType::f32 || t.data.ptr == nullptr ||
      t.data.size != size_t(t.numel()) * sizeof(float))
    throw Error("tensor '" + name + "': expected an f32 constant with data");
  std::vector<float> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data.ptr, v.size() * sizeof(float));
  return v;
}

double max_rel_diff(const float* a, const float* b, size_t n) {
  double d = 0, m = 0;
  for (size_t k = 0; k < n; ++k) {
    d = std::max(d, std::fabs(double(a[k]) - double(b[k])));
    m = std::max(m, std::max(std::fabs(double(a[k])), std::fabs(double(b[k]))));
  }
  return d / std::max(m, 1e-30);
}

namespace detail {

ConvGeom conv_geom(const Graph& g, const NodeDef& n) {
  if (n.inputs.size() < 2) throw Error("node '" + n.name + "': conv2d needs x and w");
  const TensorDef& w = g.tensor(n.inputs[1]);
  if (w.shape.size() != 4)
    throw Error("node '" + n.name + "': weights '" + w.name + "' must be [O, KH, KW, I]");
  ConvGeom c;
  c.o = int(w.shape[0]);
  c.kh = int(w.shape[1]);
  c.kw = int(w.shape[2]);
  c.i = int(w.shape[3]);
  c.stride = int(n.attr_int("stride", 1));
  const std::vector<int64_t> pads = n.attr_ints("pads");
  if (pads.size() == 4) {
    for (int k = 0; k < 4; ++k) c.pads[k] = int(pads[k]);
  } else {
    const int p = int(n.attr_int("pad", 0));
    c.pads = {p, p, p, p};
  }
  return c;
}

void set_pads(NodeDef& n, const std::array<int, 4>& p) {
  n.attrs.erase("pad");
  n.attrs.erase("pads");
  if (p[0] == p[1] && p[0] == p[2] && p[0] == p[3])
    n.attrs["pad"] = int64_t(p[0]);
  else
    n.attrs["pads"] = std::vector<int64_t>{p[0], p[1], p[2], p[3]};
}

int producer(const Graph& g, const std::string& tensor) {
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& o : g.nodes[k].outputs)
      if (o == tensor) return int(k);
  return -1;
}

int reader_count(const Graph& g, const std::string& tensor) {
  int c = 0;
  for (const auto& n : g.nodes)
    for (const auto& i : n.inputs) c += i == tensor;
  for (const auto& o : g.outputs) c += o == tensor;
  return c;
}

void prune_tensors(Graph& g) {
  std::set<std::string> used(g.inputs.begin(), g.inputs.end());
  used.insert(g.outputs.begin(), g.outputs.end());
  for (const auto& n : g.nodes) {
    used.insert(n.inputs.begin(), n.inputs.end());
    used.insert(n.outputs.begin(), n.outputs.end());
  }
  g.tensors.erase(std::remove_if(g.tensors.begin(), g.tensors.end(),
                                 [&](const TensorDef& t) { return !used.count(t.name); }),
                  g.tensors.end());
}

std::string fresh_tensor_name(const Graph& g, const std::string& base) {
  if (g.find_tensor(base) < 0) return base;
  for (int k = 2;; ++k) {
    const std::string s = base + "_" + std::to_string(k);
    if (g.find_tensor(s) < 0) return s;
  }
}

bool node_name_free(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes)
    if (n.name == name) return false;
  return true;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t k = 0; k < s.size(); ++k) r += (k ? "," : "") + std::to_string(s[k]);
  return r + "]";
}

}  // namespace detail
}  // namespace fq::quant
