// Builds FQ graphs (docs/format.md) of llama2.c models from imported weights (docs/llama.md).
#pragma once
#include <string>

#include "checkpoint.h"
#include "fq/graph.h"

namespace fq::llama {

// The float32 decode graph: one token per Session::run().
//   inputs:  tokens i32 [1] (the token id), pos i32 [1] (its position, 0 <= pos < seq_len)
//   output:  logits f32 [1, vocab_size]
//   state:   layer{l}.k_cache, layer{l}.v_cache f32 [seq_len, kv_dim] (the KV cache; zeroed by
//            Session::reset_state() to start a new sequence)
// Per layer: rmsnorm -> fully_connected q/k/v -> rope q, k -> attention (writes the caches) ->
// fully_connected wo -> add; rmsnorm -> fully_connected w1, w3 -> swiglu -> fully_connected w2 ->
// add. Then rmsnorm and the classifier (the token embedding when shared). Its results equal
// forward() bit for bit. `meta` gets model: llama2.c and the config; the caller adds tokenizer.
Graph build_float_graph(const LlamaWeights& w, const std::string& name);

}  // namespace fq::llama
