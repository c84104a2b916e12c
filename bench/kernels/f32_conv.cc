// Straightforward float32 direct convolution, the baseline of the conv benchmarks: HWIO weights so
// the innermost loop runs over contiguous output channels and vectorizes, with the accumulator row
// kept in registers for the common channel counts (O a template constant).
#include "f32_conv.h"

namespace fq::bench {
namespace {

template <int O>
void conv_fixed_o(const F32Conv& p, const float* x, const float* w, const float* bias, float* y) {
  for (int n = 0; n < p.n; ++n)
    for (int oy = 0; oy < p.oh; ++oy)
      for (int ox = 0; ox < p.ow; ++ox) {
        float acc[O];
        for (int o = 0; o < O; ++o) acc[o] = bias[o];
        for (int ky = 0; ky < p.k; ++ky) {
          const int iy = oy * p.stride - p.pad + ky;
          if (iy < 0 || iy >= p.h) continue;
          for (int kx = 0; kx < p.k; ++kx) {
            const int ix = ox * p.stride - p.pad + kx;
            if (ix < 0 || ix >= p.w) continue;
            const float* xp = x + ((long(n) * p.h + iy) * p.w + ix) * p.c;
            const float* wp = w + (long(ky) * p.k + kx) * p.c * O;
            for (int c = 0; c < p.c; ++c)
              for (int o = 0; o < O; ++o) acc[o] += xp[c] * wp[c * O + o];
          }
        }
        float* yp = y + ((long(n) * p.oh + oy) * p.ow + ox) * O;
        for (int o = 0; o < O; ++o) yp[o] = acc[o] > 0 ? acc[o] : 0;
      }
}

}  // namespace

void conv_f32(const F32Conv& p, const float* x, const float* w, const float* bias, float* y) {
  switch (p.o) {
    case 16:
      return conv_fixed_o<16>(p, x, w, bias, y);
    case 32:
      return conv_fixed_o<32>(p, x, w, bias, y);
    case 64:
      return conv_fixed_o<64>(p, x, w, bias, y);
    default:
      break;
  }
  for (int n = 0; n < p.n; ++n)  // generic O: accumulate in y
    for (int oy = 0; oy < p.oh; ++oy)
      for (int ox = 0; ox < p.ow; ++ox) {
        float* yp = y + ((long(n) * p.oh + oy) * p.ow + ox) * p.o;
        for (int o = 0; o < p.o; ++o) yp[o] = bias[o];
        for (int ky = 0; ky < p.k; ++ky)
          for (int kx = 0; kx < p.k; ++kx) {
            const int iy = oy * p.stride - p.pad + ky, ix = ox * p.stride - p.pad + kx;
            if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
            const float* xp = x + ((long(n) * p.h + iy) * p.w + ix) * p.c;
            const float* wp = w + (long(ky) * p.k + kx) * p.c * p.o;
            for (int c = 0; c < p.c; ++c)
              for (int o = 0; o < p.o; ++o) yp[o] += xp[c] * wp[c * p.o + o];
          }
        for (int o = 0; o < p.o; ++o) yp[o] = yp[o] > 0 ? yp[o] : 0;
      }
}

}  // namespace fq::bench
