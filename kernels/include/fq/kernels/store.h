// Scalar store of an already clamped value as an OutType element (reference kernels).
#pragma once
#include <cstdint>

#include "fq/kernels/conv.h"

namespace fq::k {

inline void store(OutType t, void* y, int64_t i, int64_t v) {
  switch (t) {
    case OutType::u8: static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(v); break;
    case OutType::i8: static_cast<int8_t*>(y)[i] = static_cast<int8_t>(v); break;
    case OutType::i16: static_cast<int16_t*>(y)[i] = static_cast<int16_t>(v); break;
    case OutType::i32: static_cast<int32_t*>(y)[i] = static_cast<int32_t>(v); break;
  }
}

}  // namespace fq::k
