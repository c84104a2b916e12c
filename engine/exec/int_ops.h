// Step functions of the integer ops: each unpacks a params struct prepared at bind time (raw
// pointers into the arena and the weights) and calls a kernel. Integer only, like the kernels.
#pragma once
#include <cstdint>

#include "executor.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/pool.h"

namespace fq::exec {

struct ConvParams {
  const k::ConvKernel* kernel;
  k::ConvShape shape;
  k::ConvEpilogue epilogue;
  const uint8_t* x;
  const void* packed;
  void* y;
};
void conv_step(const void* params, int64_t begin, int64_t end, void* scratch);

struct GapParams {
  const k::PoolKernel* kernel;
  const uint8_t* x;
  int n, hw, c;
  int32_t mult;
  int shift;
  int32_t lo, hi;
  k::OutType out;
  void* y;
};
void gap_step(const void* params, int64_t begin, int64_t end, void* scratch);

// Units are rows.
struct SoftmaxParams {
  const void* x;
  bool x_is_i8;  // else i16
  int cols;
  int32_t mult;
  int shift;
  uint16_t* y;
};
void softmax_step(const void* params, int64_t begin, int64_t end, void* scratch);

}  // namespace fq::exec
