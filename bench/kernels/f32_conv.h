// Float32 direct convolution used as the benchmark baseline (not part of FQ).
#pragma once

namespace fq::bench {

struct F32Conv {
  int n, h, w, c, o, k, stride, pad, oh, ow;
};

// x NHWC, w HWIO [k][k][c][o], bias [o], y NHWC; ReLU.
void conv_f32(const F32Conv& p, const float* x, const float* w, const float* bias, float* y);

}  // namespace fq::bench
