// Global average pooling and the classifier head (softmax), integer only.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/conv.h"

namespace fq::k {

// y[n, c] = clamp(rshift_round(sum_{hw} x[n, hw, c] * mult, shift), lo, hi); x u8 NHWC.
struct PoolKernel {
  Isa isa;
  const char* name;
  void (*gap_u8)(const uint8_t* x, int n, int hw, int c, int32_t mult, int shift, int32_t lo,
                 int32_t hi, OutType out, void* y);
};
const PoolKernel* pool_kernel(Isa want);
const PoolKernel* const* pool_kernels(size_t* count);

// Row softmax on int8/int16 logits. mult / 2^shift converts one input LSB into units of 2^-16 of
// log2 (mult/2^shift ~ scale * log2(e) * 2^16). Output: u16 probabilities in units of 2^-16,
// saturated at 65535. Error bound vs float64: see docs/accuracy.md (enforced by tests).
void softmax_i16_u16(const int16_t* x, int rows, int cols, int32_t mult, int shift, uint16_t* y);
void softmax_i8_u16(const int8_t* x, int rows, int cols, int32_t mult, int shift, uint16_t* y);

}  // namespace fq::k
