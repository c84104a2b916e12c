// The one NEON primitive of the neon / neondot variants: acc (4 x i32) += the dot products of
// four groups of 4 int8 lanes. `neon` (FQ_NEON_DOT 0) multiplies with vmull_s8 and adds the
// pairs into i32 with vpadalq_s16 (exact: every product fits i16 and each pair sum is formed in
// i32); `neondot` (FQ_NEON_DOT 1, compiled with +dotprod) uses sdot. The lanes hold the same sums
// either way, so a variant's bytes do not depend on which one is built.
#pragma once
#include <arm_neon.h>

#ifndef FQ_NEON_DOT
#define FQ_NEON_DOT 0
#endif

namespace fq::k::neon {

inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a) {
#if FQ_NEON_DOT
  return vdotq_s32(acc, w, a);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
  return vpadalq_s16(acc, vmull_high_s8(w, a));
#endif
}

}  // namespace fq::k::neon
