#include "fq/reference/quant.h"

#include <algorithm>
#include <cmath>

namespace fq::ref {

double Dyadic::value() const { return std::ldexp(static_cast<double>(m), -s); }

Dyadic to_dyadic(double r, int mant_bits) {
  int32_t m;
  int s;
  to_dyadic_shared(&r, 1, mant_bits, &m, &s);
  return {m, s};
}

void to_dyadic_shared(const double* r, int count, int mant_bits, int32_t* m, int* s) {
  double rmax = 0;
  for (int i = 0; i < count; ++i) rmax = std::max(rmax, r[i]);
  int e = 0;
  std::frexp(rmax > 0 ? rmax : 1.0, &e);            // rmax = f * 2^e, f in [0.5, 1)
  int shift = std::clamp(mant_bits - e, 1, 62);      // rmax * 2^shift < 2^mant_bits
  const double limit = std::ldexp(1.0, mant_bits) - 1;
  for (;;) {
    bool fits = true;
    for (int i = 0; i < count; ++i)
      if (std::floor(std::ldexp(r[i], shift) + 0.5) > limit) fits = false;
    if (fits || shift == 1) break;
    --shift;  // rounding pushed the largest mantissa to 2^mant_bits
  }
  for (int i = 0; i < count; ++i)
    m[i] = static_cast<int32_t>(std::min(limit, std::floor(std::ldexp(r[i], shift) + 0.5)));
  *s = shift;
}

}  // namespace fq::ref
