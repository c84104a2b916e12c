// Depthwise int8 convolution family: u8 activations (zero point 0) NHWC x i8 weights, one KHxKW
// filter per channel (channel multiplier 1), i32 accumulation, fused requantization (bias,
// per-channel dyadic multiplier, clamp bounds: ReLU via lo = 0), u8 or i8 output.
//
// Semantics (the scalar variant is the specification), for output (n, oy, ox, c):
//   acc = bias[c] + sum_{ky,kx} x[n, oy*s-pad_t+ky, ox*s-pad_l+kx, c] * w[ky, kx, c]  (i32; taps
//         outside the image read 0)
//   v   = acc * mult[c]                                                                (i64)
//   y   = clamp(rshift_round(v, shift[c]), lo, hi)  stored as out_type
// i.e. conv.h's rule with O = C and one input channel per output channel.
//
// Shape: x [N, H, W, C], w [KH, KW, C] (the caller's layout; pack() reorders it for the variant),
// y [N, OH, OW, C]. Preconditions (checked by the engine, assumed by every variant):
//   1 <= KH, KW <= 7; stride 1 or 2; 0 <= pad_t, pad_l; OH, OW >= 1 (bottom/right padding is
//   implied by OH, OW: taps past the edge read 0); C >= 1; N >= 0 (N = 0 gives no tasks);
//   |bias| <= 2^30, so |acc| <= 2^30 + 49*255*128 < 2^31 (exact, no wrap) and |acc * mult| < 2^62;
//   shift in 1..62; out_type u8 or i8 with lo <= hi inside its range.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/conv.h"  // OutType
#include "fq/kernels/cpu.h"

namespace fq::k {

struct DwConvShape {
  int n = 1, h = 1, w = 1, c = 1;        // input (and output channels)
  int kh = 3, kw = 3;                    // kernel, 1..7 each
  int stride = 1, pad_t = 0, pad_l = 0;  // stride 1 or 2
  int oh = 1, ow = 1;                    // output spatial size
};

struct DwConvEpilogue {
  const int32_t* bias = nullptr;  // [c], accumulator units
  const int32_t* mult = nullptr;  // [c]
  const int8_t* shift = nullptr;  // [c], 1..62
  int32_t lo = 0, hi = 255;       // clamp bounds, inside out_type's range
  OutType out_type = OutType::u8; // u8 or i8
};

constexpr int kDwMaxKernel = 7;

// One variant of the family (same pattern as ConvKernel): weights packed once at prepare time;
// work split into independent units whose bytes do not depend on how they are grouped.
struct DwConvKernel {
  Isa isa;
  const char* name;
  size_t (*packed_size)(const DwConvShape& s);
  void (*pack)(const DwConvShape& s, const int8_t* w, void* packed);  // w [KH, KW, C]
  size_t (*scratch_size)(const DwConvShape& s);                       // bytes per worker, may be 0
  int64_t (*num_tasks)(const DwConvShape& s);
  void (*run)(const DwConvShape& s, const uint8_t* x, const void* packed, const DwConvEpilogue& e,
              void* y, int64_t begin, int64_t end, void* scratch);
};

// Best variant whose ISA fits `want` (see isa_fits); never null (scalar always exists).
const DwConvKernel* dwconv_kernel(Isa want);
// All variants compiled into this build, scalar first.
const DwConvKernel* const* dwconv_kernels(size_t* count);

}  // namespace fq::k
