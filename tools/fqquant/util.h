// Small graph-IR helpers shared by the fqquant passes (internal).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "fq/graph.h"

namespace fq::quant::detail {

// Geometry of a conv2d node (weights [O, KH, KW, I]); pads are [top, left, bottom, right].
struct ConvGeom {
  int o = 0, kh = 0, kw = 0, i = 0, stride = 1;
  std::array<int, 4> pads{};
};
ConvGeom conv_geom(const Graph& g, const NodeDef& n);
// Sets `pad` when all four pads are equal, else `pads`.
void set_pads(NodeDef& n, const std::array<int, 4>& pads);

// Index of the node writing `tensor`, or -1.
int producer(const Graph& g, const std::string& tensor);
// Number of node input slots reading `tensor`, plus one when it is a graph output.
int reader_count(const Graph& g, const std::string& tensor);
// Drops tensors that no node reads or writes and that are not graph inputs or outputs.
void prune_tensors(Graph& g);
// A unique tensor/node name: `base` if free, else base + "_2", "_3", ...
std::string fresh_tensor_name(const Graph& g, const std::string& base);
bool node_name_free(const Graph& g, const std::string& name);

// A constant tensor owning a copy of `data`.
template <class T>
TensorDef make_const(const std::string& name, DType dt, std::vector<int64_t> shape,
                     const std::vector<T>& data, Quant q = {}) {
  TensorDef t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.is_const = true;
  t.quant = std::move(q);
  t.data = ConstData::copy_of(data.data(), data.size() * sizeof(T));
  return t;
}

std::string shape_str(const std::vector<int64_t>& s);

}  // namespace fq::quant::detail
