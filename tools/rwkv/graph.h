// Builds FQ graphs (docs/format.md) of rwkv.cpp models (docs/rwkv.md).
#pragma once
#include <string>

#include "fq/graph.h"
#include "model.h"

namespace fq::rwkv {

// The float32 decode graph: one byte (token) per Session::run().
//   inputs:  tokens i32 [1] (the token id), pos i32 [1] (unused by RWKV; keeps fqrun's interface)
//   output:  logits f32 [1, n_vocab]
//   state:   blocks.{l}.att_shift, blocks.{l}.ffn_shift f32 [1, E] (token-shift carries) and
//            blocks.{l}.wkv (v4: [3, E] = aa, bb, pp; v5+: [H, N, N]); zeroed by
//            Session::reset_state() to start a new sequence
// The ops and their order follow rwkv.cpp's serial graph for the model's version; the logits
// equal forward() bit for bit. `meta`: model rwkv, version, dimensions, tokenizer bytes.
Graph build_float_graph(const Model& m, const std::string& name);

}  // namespace fq::rwkv
