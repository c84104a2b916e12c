// Float64 reference forward pass of Mamba (v1) language models (docs/mamba.md): the ground truth
// the FQ float graph (and later the integer graph) is measured against. Two forms with the same
// arithmetic in the same order, so they agree bit for bit:
//   forward():          token by token (decode), conv and SSM states carried in State;
//   forward_sequence(): layer by layer over a whole sequence (each layer's in_proj, conv, scan
//                       and out_proj over all tokens before the next layer).
#pragma once
#include <vector>

#include "model.h"

namespace fq::mamba {

struct State {
  // Per layer: conv state [d_conv - 1, d_inner] (the previous conv inputs, oldest first) and SSM
  // state [d_inner, d_state]. Zero at the start of a sequence.
  std::vector<std::vector<double>> conv, ssm;
  explicit State(const Config& c);
  void reset();
};

// Runs token `token` (0 <= token < padded vocab) and returns the logits [padded vocab]. With
// `hidden`, also stores the final normalized hidden state [d_model] (the head's input).
std::vector<double> forward(const Model& m, State& s, int token, std::vector<double>* hidden = nullptr);

// Runs a whole sequence from `state` (zero state if null; updated when given) and returns the
// logits of every token [T][padded vocab]; `hidden` gets the final normalized hidden states.
std::vector<std::vector<double>> forward_sequence(const Model& m, const std::vector<int>& tokens,
                                                  State* state = nullptr,
                                                  std::vector<std::vector<double>>* hidden = nullptr);

double softplus(double x);  // log1p(exp(x)), x itself above 20 (mamba's kernels)
double silu(double x);      // x / (1 + exp(-x))

}  // namespace fq::mamba
