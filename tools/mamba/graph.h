// Builds the FQ float decode graph (docs/format.md) of a Mamba (v1) model (docs/mamba.md).
#pragma once
#include <string>

#include "fq/graph.h"
#include "model.h"

namespace fq::mamba {

// The float32 decode graph: one token per Session::run().
//   inputs:  tokens i32 [1], pos i32 [1] (unused by Mamba; keeps fqrun's decode interface)
//   output:  logits f32 [1, padded vocab]
//   state:   backbone.layers.{l}.mixer.conv_state [d_conv - 1, d_inner] and
//            backbone.layers.{l}.mixer.ssm_state [d_inner, d_state], zeroed by
//            Session::reset_state() to start a new sequence
// in_proj and x_proj are split by rows into their parts (in_proj.x / in_proj.z, x_proj.dt /
// x_proj.B / x_proj.C), A = -exp(A_log) is precomputed. `tokenizer` (a file name beside the
// graph, or "") goes into meta.
Graph build_float_graph(const Model& m, const std::string& name, const std::string& tokenizer = "");

}  // namespace fq::mamba
