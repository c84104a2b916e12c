// int8 convolution / fully-connected family: u8 activations (zero point 0) x i8 weights, i32
// accumulation, fused requantization (bias, per-channel dyadic multiplier, optional CFWS coarse
// accumulator, ReLU via the clamp bounds), NHWC activations, [O, KH, KW, I] weights.
// A fully-connected layer is the 1x1 case with H = W = 1.
//
// Semantics (the scalar variant is the specification), for output (n, oy, ox, o):
//   acc   = bias[o] + sum_{ky,kx,i} x[n, oy*s-pad_t+ky, ox*s-pad_l+kx, i] * w[o,ky,kx,i]   (i32;
//           taps outside the image read 0)
//   acc_c = sum_i x[n, oy*s-pad_t+ckh, ox*s-pad_l+ckw, i] * w_coarse[o,i]  (CFWS only; ckh = kh/2)
//   v     = acc * mult[o] + acc_c * mult_coarse[o]                              (i64)
//   y     = clamp(rshift_round(v, shift[o]), lo, hi)  stored as out_type
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/cpu.h"

namespace fq::k {

enum class OutType : uint8_t { u8, i8, i16, i32 };

struct ConvShape {
  int n = 1, h = 1, w = 1, c = 1;         // input
  int o = 1, kh = 1, kw = 1;              // output channels, kernel
  int stride = 1, pad_t = 0, pad_l = 0;   // bottom/right padding is implied by oh/ow
  int oh = 1, ow = 1;                     // output spatial size
  bool coarse = false;                    // CFWS: a second (1x1 centre-tap) weight set
};

struct ConvEpilogue {
  const int32_t* bias = nullptr;          // [o], accumulator units
  const int32_t* mult = nullptr;          // [o]
  const int32_t* mult_coarse = nullptr;   // [o], CFWS only
  const int8_t* shift = nullptr;          // [o], 1..62
  int32_t lo = 0, hi = 255;               // clamp bounds, inside out_type's range
  OutType out_type = OutType::u8;
};

// One variant of the family. Weights are packed once at prepare time into the variant's layout.
// Work is split into independent units (tasks) whose results do not depend on how many threads
// run them: run() computes units [begin, end).
struct ConvKernel {
  Isa isa;
  const char* name;
  size_t (*packed_size)(const ConvShape& s);
  void (*pack)(const ConvShape& s, const int8_t* w, const int8_t* w_coarse, void* packed);
  size_t (*scratch_size)(const ConvShape& s);   // bytes per worker, may be 0
  int64_t (*num_tasks)(const ConvShape& s);
  void (*run)(const ConvShape& s, const uint8_t* x, const void* packed, const ConvEpilogue& e,
              void* y, int64_t begin, int64_t end, void* scratch);
};

// Best variant whose ISA fits `want` (see isa_fits); never null (scalar always exists).
const ConvKernel* conv_kernel(Isa want);
// All variants compiled into this build, scalar first (tests and benchmarks iterate over these).
const ConvKernel* const* conv_kernels(size_t* count);

}  // namespace fq::k
