// The operator table: one entry per op, holding its checks (arity, dtypes, attributes, shape
// inference) and how it binds to a kernel at prepare time. docs/format.md section 3 is its spec.
#pragma once
#include <string>

#include "fq/graph.h"

namespace fq::detail {

// Throws fq::Error "PATH:LINE: MSG" (PATH:LINE omitted when unknown).
[[noreturn]] void fail(const Graph& g, int line, const std::string& msg);

// Checks one node against its op: known op and version, input/output counts, dtypes, attributes,
// constant-ness of parameters, and that each declared output shape equals the inferred one.
// Assumes the structural checks of validate_graph passed (all names resolve).
void check_node(const Graph& g, const NodeDef& n);

}  // namespace fq::detail
