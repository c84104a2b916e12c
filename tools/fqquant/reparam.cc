// Graph rewrites on the float graph: relu folding and RepVGG branch re-parameterization.
#include <algorithm>
#include <set>

#include "fqquant.h"
#include "util.h"

namespace fq::quant {

using detail::ConvGeom;

int fold_relu(Graph& g) {
  int folded = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    NodeDef& r = g.nodes[k];
    if (r.op != "relu" || r.inputs.size() != 1 || r.outputs.size() != 1) continue;
    const int p = detail::producer(g, r.inputs[0]);
    if (p < 0 || detail::reader_count(g, r.inputs[0]) != 1) continue;
    NodeDef& prod = g.nodes[p];
    if (prod.op != "conv2d" && prod.op != "fully_connected" && prod.op != "add") continue;
    prod.attrs["relu"] = int64_t(1);
    prod.outputs[0] = r.outputs[0];   // the producer now writes the relu's output
    g.nodes.erase(g.nodes.begin() + long(k));
    --k;
    ++folded;
  }
  if (folded) {
    detail::prune_tensors(g);
    validate_graph(g);
  }
  return folded;
}

namespace {

// Common prefix of node names up to (not including) their last '.', e.g. b1.c3, b1.c1 -> b1.
std::string branch_prefix(const std::vector<std::string>& names) {
  std::string p;
  for (size_t k = 0; k < names.size(); ++k) {
    const size_t dot = names[k].rfind('.');
    if (dot == std::string::npos || dot == 0) return "";
    const std::string s = names[k].substr(0, dot);
    if (k == 0) p = s;
    else if (s != p) return "";
  }
  return p;
}

// Branches of `add` that can be merged, or empty.
std::vector<int> mergeable_branches(const Graph& g, const NodeDef& add) {
  if (add.inputs.size() < 2 || add.outputs.size() != 1) return {};
  std::vector<int> convs;
  const NodeDef* first = nullptr;
  ConvGeom g0;
  for (const auto& in : add.inputs) {
    const int p = detail::producer(g, in);
    if (p < 0) return {};
    const NodeDef& c = g.nodes[p];
    if (c.op != "conv2d" || c.outputs.size() != 1 || c.inputs.size() < 2 || c.inputs.size() > 3)
      return {};
    if (detail::reader_count(g, in) != 1 || c.attr_int("relu", 0) != 0) return {};
    if (std::find(convs.begin(), convs.end(), p) != convs.end()) return {};
    for (size_t k = 1; k < c.inputs.size(); ++k) {
      const TensorDef& t = g.tensor(c.inputs[k]);
      if (!t.is_const || t.dtype != DType::f32 || !t.data.ptr) return {};
    }
    const ConvGeom cg = detail::conv_geom(g, c);
    if (cg.kh % 2 == 0 || cg.kw % 2 == 0) return {};
    if (!first) {
      first = &c;
      g0 = cg;
    } else {
      if (c.inputs[0] != first->inputs[0] || cg.stride != g0.stride || cg.o != g0.o ||
          cg.i != g0.i || g.tensor(in).shape != g.tensor(first->outputs[0]).shape)
        return {};
      // Same centre alignment: pad - (k - 1) / 2 on every side.
      const int dh = (cg.kh - g0.kh) / 2, dw = (cg.kw - g0.kw) / 2;
      if (cg.pads[0] - g0.pads[0] != dh || cg.pads[2] - g0.pads[2] != dh ||
          cg.pads[1] - g0.pads[1] != dw || cg.pads[3] - g0.pads[3] != dw)
        return {};
    }
    convs.push_back(p);
  }
  return convs;
}

}  // namespace

int reparameterize(Graph& g) {
  int merged = 0;
  for (;;) {
    // The first mergeable add (rescanned after each rewrite: indices move, graphs are small).
    size_t a = 0;
    std::vector<int> br;
    for (; a < g.nodes.size(); ++a)
      if (g.nodes[a].op == "add" && !(br = mergeable_branches(g, g.nodes[a])).empty()) break;
    if (a == g.nodes.size()) break;
    const NodeDef add = g.nodes[a];

    // Merged geometry: the largest kernel, pads keeping every branch's centre alignment.
    int kh = 0, kw = 0;
    for (int p : br) {
      const ConvGeom c = detail::conv_geom(g, g.nodes[p]);
      kh = std::max(kh, c.kh);
      kw = std::max(kw, c.kw);
    }
    const ConvGeom c0 = detail::conv_geom(g, g.nodes[br[0]]);
    const int o = c0.o, in = c0.i;
    std::array<int, 4> pads = c0.pads;
    pads[0] += (kh - c0.kh) / 2;
    pads[2] += (kh - c0.kh) / 2;
    pads[1] += (kw - c0.kw) / 2;
    pads[3] += (kw - c0.kw) / 2;

    // Sum of zero-padded kernels and biases, in double.
    std::vector<double> w(size_t(o) * kh * kw * in, 0.0), b(size_t(o), 0.0);
    std::vector<std::string> names;
    for (int p : br) {
      const NodeDef& n = g.nodes[p];
      names.push_back(n.name);
      const ConvGeom c = detail::conv_geom(g, n);
      const std::vector<float> wk = const_f32(g, n.inputs[1]);
      const int oy = (kh - c.kh) / 2, ox = (kw - c.kw) / 2;
      for (int oc = 0; oc < o; ++oc)
        for (int y = 0; y < c.kh; ++y)
          for (int x = 0; x < c.kw; ++x)
            for (int ic = 0; ic < in; ++ic)
              w[((size_t(oc) * kh + y + oy) * kw + x + ox) * in + ic] +=
                  wk[((size_t(oc) * c.kh + y) * c.kw + x) * in + ic];
      if (n.inputs.size() == 3) {
        const std::vector<float> bk = const_f32(g, n.inputs[2]);
        for (int oc = 0; oc < o; ++oc) b[oc] += bk[oc];
      }
    }

    std::string name = branch_prefix(names);
    if (name.empty() || !detail::node_name_free(g, name)) name = add.name;
    NodeDef m;
    m.name = name;
    m.op = "conv2d";
    m.outputs = add.outputs;
    m.attrs["stride"] = int64_t(c0.stride);
    detail::set_pads(m, pads);
    m.attrs["relu"] = int64_t(add.attr_int("relu", 0) != 0);
    m.line = add.line;
    const std::string x = g.nodes[br[0]].inputs[0];
    const std::string wn = detail::fresh_tensor_name(g, name + ".w");
    g.add_tensor(detail::make_const(wn, DType::f32, {o, kh, kw, in},
                                    std::vector<float>(w.begin(), w.end())));
    const std::string bn = detail::fresh_tensor_name(g, name + ".b");
    g.add_tensor(detail::make_const(bn, DType::f32, {o}, std::vector<float>(b.begin(), b.end())));
    m.inputs = {x, wn, bn};

    // The merged conv takes the add's place; the branches go (everything else keeps its order).
    g.nodes[a] = m;
    const std::set<std::string> drop(names.begin(), names.end());
    g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(),
                                 [&](const NodeDef& n) { return drop.count(n.name) > 0; }),
                  g.nodes.end());
    ++merged;
  }
  if (merged) {
    detail::prune_tensors(g);
    validate_graph(g);
  }
  return merged;
}

}  // namespace fq::quant
