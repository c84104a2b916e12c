// Weight quantization: int8 symmetric scales and the CFWS coarse/fine split.
#include <algorithm>
#include <cmath>

#include "fqquant.h"

namespace fq::quant {

QuantizedWeights quantize_weights(const float* w, int rows, int64_t per_row, Granularity g) {
  QuantizedWeights r;
  std::vector<double> amax(size_t(rows), 0.0);
  for (int o = 0; o < rows; ++o)
    for (int64_t k = 0; k < per_row; ++k)
      amax[o] = std::max(amax[o], std::fabs(double(w[o * per_row + k])));
  if (g == Granularity::per_tensor) {
    const double m = rows ? *std::max_element(amax.begin(), amax.end()) : 0.0;
    r.scale = {m > 0 ? m / 127 : 1.0};
  } else {
    r.scale.resize(size_t(rows));
    for (int o = 0; o < rows; ++o) r.scale[o] = amax[o] > 0 ? amax[o] / 127 : 1.0;
  }
  r.q.resize(size_t(rows) * per_row);
  for (int o = 0; o < rows; ++o) {
    const double s = r.scale_of(o);
    for (int64_t k = 0; k < per_row; ++k) {
      const double v = std::round(double(w[o * per_row + k]) / s);  // half away from zero
      r.q[o * per_row + k] = int8_t(std::clamp(v, -127.0, 127.0));
    }
  }
  return r;
}

CfwsSplit cfws_split(const float* w, int o, int kh, int kw, int in, Granularity g) {
  if (kh % 2 == 0 || kw % 2 == 0) throw Error("cfws_split: kernel size must be odd");
  const int cy = kh / 2, cx = kw / 2;
  auto at = [&](int oc, int y, int x, int ic) {
    return ((size_t(oc) * kh + y) * kw + x) * in + ic;
  };
  // Step g per output channel (or one for the tensor) from the centre taps.
  std::vector<double> step(size_t(o), 0.0);
  for (int oc = 0; oc < o; ++oc)
    for (int ic = 0; ic < in; ++ic)
      step[oc] = std::max(step[oc], std::fabs(double(w[at(oc, cy, cx, ic)])) / 127);
  if (g == Granularity::per_tensor) {
    const double m = o ? *std::max_element(step.begin(), step.end()) : 0.0;
    std::fill(step.begin(), step.end(), m);
  }
  CfwsSplit s;
  s.coarse.assign(size_t(o) * in, 0.f);
  s.fine.assign(w, w + size_t(o) * kh * kw * in);
  for (int oc = 0; oc < o; ++oc) {
    if (step[oc] <= 0) continue;  // all-zero centre: everything stays in the fine kernel
    for (int ic = 0; ic < in; ++ic) {
      const size_t k = at(oc, cy, cx, ic);
      const float c = float(std::floor(double(w[k]) / step[oc] + 0.5) * step[oc]);  // half up
      s.coarse[size_t(oc) * in + ic] = c;
      s.fine[k] = w[k] - c;  // exact in f32 (c is 0 or within a factor 2 of w[k])
    }
  }
  return s;
}

}  // namespace fq::quant
