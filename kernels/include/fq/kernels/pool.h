// Global average pooling, integer only. (The classifier head's softmax is the llm family's
// `softmax`, fq/kernels/llm.h.)
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

}  // namespace fq::k
