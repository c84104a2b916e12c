// Float32 reference forward pass of rwkv.cpp models (docs/rwkv.md): one token per call, the
// recurrent state carried in State. Plain loops in the order and with the expressions of
// rwkv.cpp's serial graph (rwkv_graph.inc), built without floating-point contraction; the FQ float
// graphs (graph.h) reproduce it bit for bit.
#pragma once
#include <vector>

#include "model.h"

namespace fq::rwkv {

struct State {
  // Per layer: token-shift carries (the LayerNorm outputs of the previous token) and the WKV
  // state: v4 [3, E] (aa, bb, pp; bb == 0 marks a channel without history), v5+ [H, N, N].
  std::vector<std::vector<float>> att_shift, ffn_shift, wkv;
  explicit State(const Model& m);
  void reset();
};

// Runs token `token` (0 <= token < n_vocab) and returns the logits [n_vocab].
std::vector<float> forward(const Model& m, State& s, int token);

}  // namespace fq::rwkv
