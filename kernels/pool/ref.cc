// Scalar global average pool: the specification (see pool.h).
//   y[n, c] = clamp(rshift_round(sum_hw x[n, hw, c] * mult, shift), lo, hi)
// The sum is an i32 (exact while hw * 255 < 2^31, i.e. hw < 8.4M pixels; beyond, every variant
// wraps modulo 2^32 alike); sum * mult is exact in i64 (< 2^62 as rshift_round requires).
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/store.h"
#include "fq/kernels/pool.h"

namespace fq::k {
namespace {

void gap_ref(const uint8_t* x, int n, int hw, int c, int32_t mult, int shift, int32_t lo,
             int32_t hi, OutType out, void* y) {
  for (int b = 0; b < n; ++b)
    for (int ch = 0; ch < c; ++ch) {
      uint32_t sum = 0;  // i32, wrapping (see above)
      for (int p = 0; p < hw; ++p) sum += x[(int64_t{b} * hw + p) * c + ch];
      const int64_t v = rshift_round(int64_t{int32_t(sum)} * mult, shift);
      store(out, y, int64_t{b} * c + ch, clamp64(v, lo, hi));
    }
}

}  // namespace

extern const PoolKernel kPoolScalar = {Isa::scalar, "scalar", gap_ref};

}  // namespace fq::k
