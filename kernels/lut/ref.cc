// Scalar reference of the DULUT family: the executable specification (see lut.h). Every other
// variant must produce the same bytes. Written for clarity, not speed.
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/lut.h"

namespace fq::k {

bool lut_valid(const LutTable& t) {
  if ((t.in_bits != 8 && t.in_bits != 16) || (t.out_bits != 8 && t.out_bits != 16)) return false;
  if (t.k1 < 1 || t.k1 > kLutMaxLog2 || t.k2 < 1 || t.k2 > kLutMaxLog2 || t.g > 14) return false;
  if (t.k1 > t.in_bits - 2) return false;  // s1 >= 2 (int8: k1 <= 6 always holds)
  for (int i = 0; i < (1 << t.k1); ++i) {
    if (int32_t{t.b1[i]} + t.d1[i] > 65536) return false;
  }
  for (int j = 0; j < (1 << t.k2); ++j) {
    const int32_t e = int32_t{t.b2[j]} + t.d2[j];
    if (e < -32768 || e > 32767) return false;
  }
  return true;
}

int32_t lut_eval_one(const LutTable& t, int32_t x) {
  const int b = t.in_bits, s1 = b - t.k1, F = 16 - t.k2;
  const int64_t u = int64_t{x} + (int64_t{1} << (b - 1));
  const int64_t i = u >> s1, f = u & ((int64_t{1} << s1) - 1);
  const int64_t P = int64_t{t.b1[i]} * 65536 + int64_t{t.d1[i]} * (f << (16 - s1));
  const int64_t j = (P >> 16) >> F, q = (P >> (F + 1)) & 32767;
  const int64_t v = t.b2[j] + rshift_round(int64_t{t.d2[j]} * q, 15);
  const int64_t y = rshift_round(v, t.g);
  return t.out_bits == 8 ? saturate<int8_t>(y) : saturate<int16_t>(y);
}

namespace {

template <class TI, class TO>
void run_typed(const LutTable& t, const TI* x, int64_t n, TO* y) {
  for (int64_t k = 0; k < n; ++k) y[k] = static_cast<TO>(lut_eval_one(t, x[k]));
}

void ref_run(const LutTable& t, const void* x, int64_t n, void* y) {
  if (t.in_bits == 8) {
    if (t.out_bits == 8) run_typed(t, static_cast<const int8_t*>(x), n, static_cast<int8_t*>(y));
    else run_typed(t, static_cast<const int8_t*>(x), n, static_cast<int16_t*>(y));
  } else {
    if (t.out_bits == 8) run_typed(t, static_cast<const int16_t*>(x), n, static_cast<int8_t*>(y));
    else run_typed(t, static_cast<const int16_t*>(x), n, static_cast<int16_t*>(y));
  }
}

}  // namespace

extern const LutKernel kLutScalar = {Isa::scalar, "scalar", ref_run};

}  // namespace fq::k
