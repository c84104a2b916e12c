// Straightforward float32 depthwise convolution, the baseline of the dwconv benchmarks: NHWC,
// weights [KH, KW, C], the innermost loop over contiguous channels (vectorized by the compiler,
// built with AVX-512 flags), accumulating into the output pixel's row, which stays in L1.
#include "f32_dwconv.h"

namespace fq::bench {

void dwconv_f32(const F32DwConv& p, const float* x, const float* w, const float* bias, float* y) {
  const int c = p.c;
  for (int n = 0; n < p.n; ++n)
    for (int oy = 0; oy < p.oh; ++oy)
      for (int ox = 0; ox < p.ow; ++ox) {
        float* __restrict yp = y + ((long(n) * p.oh + oy) * p.ow + ox) * c;
        for (int i = 0; i < c; ++i) yp[i] = bias[i];
        for (int ky = 0; ky < p.k; ++ky) {
          const int iy = oy * p.stride - p.pad + ky;
          if (iy < 0 || iy >= p.h) continue;
          for (int kx = 0; kx < p.k; ++kx) {
            const int ix = ox * p.stride - p.pad + kx;
            if (ix < 0 || ix >= p.w) continue;
            const float* __restrict xp = x + ((long(n) * p.h + iy) * p.w + ix) * c;
            const float* __restrict wp = w + (long(ky) * p.k + kx) * c;
            for (int i = 0; i < c; ++i) yp[i] += xp[i] * wp[i];
          }
        }
        for (int i = 0; i < c; ++i) yp[i] = yp[i] > 0 ? yp[i] : 0;
      }
}

}  // namespace fq::bench
