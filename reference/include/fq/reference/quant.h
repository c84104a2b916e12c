// Offline helpers that turn real-valued scales into FQ's integer parameters (float code: tools,
// tests and the loader only).
#pragma once
#include <cstdint>

namespace fq::ref {

// r > 0 as m / 2^s with m < 2^mant_bits, s in [1, 62], m rounded half up. m is as large as the
// shift range allows (m >= 2^(mant_bits-1) unless r is too large or too small for [1, 62]).
struct Dyadic {
  int32_t m;
  int s;
  double value() const;
};
Dyadic to_dyadic(double r, int mant_bits = 31);

// Same, for several factors that must share one shift (CFWS): the largest gets a full mantissa.
void to_dyadic_shared(const double* r, int count, int mant_bits, int32_t* m, int* s);

}  // namespace fq::ref
