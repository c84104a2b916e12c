// Float32 depthwise convolution baseline for the dwconv benchmarks (f32_dwconv.cc).
#pragma once

namespace fq::bench {

struct F32DwConv {
  int n, h, w, c, k, stride, pad, oh, ow;
};

// y = relu(depthwise(x, w) + bias); x [N,H,W,C], w [K,K,C], y [N,OH,OW,C].
void dwconv_f32(const F32DwConv& p, const float* x, const float* w, const float* bias, float* y);

}  // namespace fq::bench
