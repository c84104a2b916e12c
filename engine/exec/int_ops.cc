#include "int_ops.h"

namespace fq::exec {

void conv_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const ConvParams*>(params);
  p.kernel->run(p.shape, p.x, p.packed, p.epilogue, p.y, begin, end, scratch);
}

void gap_step(const void* params, int64_t, int64_t, void*) {
  const auto& p = *static_cast<const GapParams*>(params);
  p.kernel->gap_u8(p.x, p.n, p.hw, p.c, p.mult, p.shift, p.lo, p.hi, p.out, p.y);
}

void softmax_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = *static_cast<const SoftmaxParams*>(params);
  const int rows = static_cast<int>(end - begin);
  uint16_t* y = p.y + begin * p.cols;
  if (p.x_is_i8)
    k::softmax_i8_u16(static_cast<const int8_t*>(p.x) + begin * p.cols, rows, p.cols, p.mult,
                      p.shift, y);
  else
    k::softmax_i16_u16(static_cast<const int16_t*>(p.x) + begin * p.cols, rows, p.cols, p.mult,
                       p.shift, y);
}

}  // namespace fq::exec
