// Float32 reference forward pass of rwkv.cpp models (docs/rwkv.md): one token per call, the
// recurrent state carried in State. Plain loops in the order and with the expressions of
// rwkv.cpp's serial graph (rwkv_graph.inc), built without floating-point contraction; the FQ float
// graphs (graph.h) reproduce it bit for bit.
#pragma once
#include <string>
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

// Calibration hook (quant.h): forward() reports named vectors of each layer: the input of every
// matrix under the matrix's graph name (rwkv.cpp's name; v6: "att.time_maa_w1" whole, its five
// second LoRA matrices "att.time_maa_w2.<c>" for c in w, k, v, r, g), "x" (the residual entering
// the layer; layer n_layer: the one entering ln_out), "att.sx" / "ffn.sx" (previous minus current
// normed input: what the mixing vectors multiply), "wkv" (v5+: the state after the update) and,
// with layer -1, "head.weight".
struct Observer {
  virtual ~Observer() = default;
  virtual void see(int layer, const std::string& what, const std::vector<float>& v) = 0;
};

// Runs token `token` (0 <= token < n_vocab) and returns the logits [n_vocab].
std::vector<float> forward(const Model& m, State& s, int token, Observer* obs = nullptr);

}  // namespace fq::rwkv
