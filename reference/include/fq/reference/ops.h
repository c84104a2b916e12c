// Float reference operators (NHWC activations, [O,KH,KW,I] weights). They define what the float
// graphs mean, feed calibration, and measure the integer kernels' accuracy. Never linked into the
// integer inference library.
#pragma once
#include <cstdint>

namespace fq::ref {

struct Conv2dShape {
  int n, h, w, c, o, kh, kw, stride, pad_t, pad_l, oh, ow;
};

void conv2d(const Conv2dShape& s, const float* x, const float* w, const float* b, bool relu,
            float* y);
void add(const float* const* xs, int count, int64_t n, bool relu, float* y);
void relu(const float* x, int64_t n, float* y);
void global_avg_pool(const float* x, int n, int hw, int c, float* y);
void fully_connected(const float* x, int n, int k, const float* w, const float* b, int o,
                     bool relu, float* y);
void softmax(const float* x, int rows, int cols, float* y);

}  // namespace fq::ref
