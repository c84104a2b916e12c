// GraphBuilder: the few calls the model importers use to build an FQ graph in memory (a tensor, a
// constant, a node writing a new tensor named like itself). Call validate_graph() when done.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fq/graph.h"

namespace fq::tools {

// n indices of `bits` bits (the low bits of each value) as a little-endian bitstream: index i at
// bits i * bits .. i * bits + bits - 1 (matmul.h codebook rows, rwkv.h decode_mu); appended to out.
inline void pack_bits(const uint8_t* idx, size_t n, int bits, std::vector<uint8_t>* out) {
  const size_t base = out->size();
  out->resize(base + (n * size_t(bits) + 7) / 8, 0);
  uint8_t* o = out->data() + base;
  for (size_t i = 0; i < n; ++i) {
    const unsigned v = idx[i] & ((1u << bits) - 1);
    const size_t bit = i * size_t(bits);
    o[bit / 8] = uint8_t(o[bit / 8] | (v << (bit % 8)));
    if (bit % 8 + size_t(bits) > 8) o[bit / 8 + 1] = uint8_t(o[bit / 8 + 1] | (v >> (8 - bit % 8)));
  }
}

struct GraphBuilder {
  Graph g;

  // A non-constant tensor (state: persists across Session::run(); see docs/format.md).
  std::string tensor(const std::string& name, DType t, std::vector<int64_t> shape,
                     bool state = false) {
    TensorDef d;
    d.name = name;
    d.dtype = t;
    d.shape = std::move(shape);
    d.is_state = state;
    g.add_tensor(std::move(d));
    return name;
  }
  // A constant of dtype `t` whose bytes are copied from `data` (numel * element size).
  std::string constant(const std::string& name, DType t, std::vector<int64_t> shape,
                       const void* data) {
    TensorDef d;
    d.name = name;
    d.dtype = t;
    d.shape = std::move(shape);
    d.is_const = true;
    d.data = ConstData::copy_of(data, d.nbytes());
    g.add_tensor(std::move(d));
    return name;
  }
  std::string constant(const std::string& name, const float* v, std::vector<int64_t> shape) {
    return constant(name, DType::f32, std::move(shape), v);
  }
  std::string constant(const std::string& name, const std::vector<float>& v,
                       std::vector<int64_t> shape) {
    return constant(name, DType::f32, std::move(shape), v.data());
  }
  // Node `name` (op `op`) writing a new tensor of `shape` and dtype `t` named like the node.
  std::string node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                   std::vector<int64_t> shape, std::map<std::string, Attr> attrs = {},
                   DType t = DType::f32) {
    tensor(name, t, std::move(shape));
    NodeDef n;
    n.name = name;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = {name};
    n.attrs = std::move(attrs);
    g.nodes.push_back(std::move(n));
    return name;
  }
  // Node `name` (op `op`) writing already declared tensors `outputs`.
  void op(const std::string& name, const std::string& op, std::vector<std::string> inputs,
          std::vector<std::string> outputs, std::map<std::string, Attr> attrs = {}) {
    NodeDef n;
    n.name = name;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    n.attrs = std::move(attrs);
    g.nodes.push_back(std::move(n));
  }
  // A constant row-scale table i32 [rows, 2] (docs/llm_int.md: mant in [2^14, 2^15), real = mant *
  // 2^-exp) of positive reals, e.g. an int8 embedding's per-row scales; (0, 0) where s <= 0.
  template <class Real>
  std::string row_scale_table(const std::string& name, const std::vector<Real>& scales) {
    std::vector<int32_t> t(scales.size() * 2, 0);
    for (size_t v = 0; v < scales.size(); ++v) {
      const double s = double(scales[v]);
      if (!(s > 0)) continue;
      int e = 14 - int(std::floor(std::log2(s)));
      double mant = std::nearbyint(std::ldexp(s, e));
      if (mant >= 32768) mant = 16384, --e;  // s just below a power of two rounded up to it
      t[v * 2] = int32_t(mant), t[v * 2 + 1] = e;
    }
    return constant(name, DType::i32, {int64_t(scales.size()), 2}, t.data());
  }
  // A dynamic activation (docs/llm_int.md): values `name` of dtype t [rows, width] and its row
  // scales `name_scale` i32 [rows, 2]; returns both names.
  std::pair<std::string, std::string> dyn(const std::string& name, DType t, int64_t rows,
                                          int64_t width) {
    tensor(name, t, {rows, width});
    tensor(name + "_scale", DType::i32, {rows, 2});
    return {name, name + "_scale"};
  }
};

}  // namespace fq::tools
