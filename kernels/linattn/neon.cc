// NEON variant of the linattn family: the state-row primitives on int64x2 lanes (smull / smlal,
// srshl rounding shifts, sqxtn saturating narrow); the driver and the O(dv) value side are the
// shared ones (linattn_internal.h). Bit-exact to ref.cc: the same integer formulas, exact int64 sums.
#include <arm_neon.h>

#include "fq/kernels/linattn.h"
#include "linattn_internal.h"

namespace fq::k {
namespace linattn {
namespace {

struct NeonOps {
  static void gate(int32_t* s, int64_t n, int64_t G) {
    const int32x2_t g = vdup_n_s32(int32_t(G));
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const int32x4_t x = vld1q_s32(s + j);
      // vrshrq_n_s64: (p + 2^29) >> 30, = rshift_round; the result fits int32.
      const int64x2_t p0 = vrshrq_n_s64(vmull_s32(vget_low_s32(x), g), 30);
      const int64x2_t p1 = vrshrq_n_s64(vmull_s32(vget_high_s32(x), g), 30);
      vst1q_s32(s + j, vcombine_s32(vmovn_s64(p0), vmovn_s64(p1)));
    }
    ScalarOps::gate(s + j, n - j, G);
  }
  static void acc(const int32_t* S, int64_t dk, int64_t dv, const int16_t* x, int64_t* acc) {
    int64_t j = 0;
    for (; j + 4 <= dv; j += 4) {
      int64x2_t a0 = vdupq_n_s64(0), a1 = vdupq_n_s64(0);
      for (int64_t i = 0; i < dk; ++i) {
        const int32x4_t sv = vld1q_s32(S + i * dv + j);
        const int32x2_t xv = vdup_n_s32(x[i]);
        a0 = vmlal_s32(a0, vget_low_s32(sv), xv);
        a1 = vmlal_s32(a1, vget_high_s32(sv), xv);
      }
      vst1q_s64(acc + j, a0);
      vst1q_s64(acc + j + 2, a1);
    }
    ScalarOps::acc_cols(S, dk, dv, x, acc, j);
  }
  // 1 <= sh <= 62: srshl by -sh is (p + 2^(sh-1)) >> sh = shift_s; sqxtn saturates to int32.
  static void write(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh) {
    const int32x2_t k = vdup_n_s32(int32_t(kk));
    const int64x2_t ns = vdupq_n_s64(-sh);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const int32x4_t uv = vld1q_s32(u + j), sv = vld1q_s32(s + j);
      const int64x2_t d0 = vrshlq_s64(vmull_s32(vget_low_s32(uv), k), ns);
      const int64x2_t d1 = vrshlq_s64(vmull_s32(vget_high_s32(uv), k), ns);
      const int64x2_t r0 = vaddq_s64(vmovl_s32(vget_low_s32(sv)), d0);
      const int64x2_t r1 = vaddq_s64(vmovl_s32(vget_high_s32(sv)), d1);
      vst1q_s32(s + j, vcombine_s32(vqmovn_s64(r0), vqmovn_s64(r1)));
    }
    ScalarOps::write(s + j, n - j, kk, u + j, sh);
  }
  // 1 <= sh <= 62. X = shift_s(kk * u, sh) (srshl); s = sat32(s + X) (sqxtn); bt = rshift_round(U * sat32(X), 16)
  // (sqxtn, smull, srshr #16).
  static void write_bonus(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t U, int64_t* bt) {
    const int32x2_t k = vdup_n_s32(int32_t(kk)), uu = vdup_n_s32(int32_t(U));
    const int64x2_t ns = vdupq_n_s64(-sh);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const int32x4_t uv = vld1q_s32(u + j), sv = vld1q_s32(s + j);
      const int64x2_t x0 = vrshlq_s64(vmull_s32(vget_low_s32(uv), k), ns);
      const int64x2_t x1 = vrshlq_s64(vmull_s32(vget_high_s32(uv), k), ns);
      const int64x2_t r0 = vaddq_s64(vmovl_s32(vget_low_s32(sv)), x0);
      const int64x2_t r1 = vaddq_s64(vmovl_s32(vget_high_s32(sv)), x1);
      vst1q_s32(s + j, vcombine_s32(vqmovn_s64(r0), vqmovn_s64(r1)));
      vst1q_s64(bt + j, vrshrq_n_s64(vmull_s32(vqmovn_s64(x0), uu), 16));
      vst1q_s64(bt + j + 2, vrshrq_n_s64(vmull_s32(vqmovn_s64(x1), uu), 16));
    }
    ScalarOps::write_bonus(s + j, n - j, kk, u + j, sh, U, bt + j);
  }
  // o += q * bt: |bt| <= 2^35 + 1, bt = h 2^16 + l (h = bt >> 16, 0 <= l < 2^16), q bt = (q h) 2^16 + q l.
  static void axpy(int64_t* o, int64_t n, int64_t q, const int64_t* bt) {
    const int32x2_t qv = vdup_n_s32(int32_t(q));
    const int64x2_t m16 = vdupq_n_s64(0xFFFF);
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const int64x2_t b = vld1q_s64(bt + j);
      const int64x2_t ph = vshlq_n_s64(vmull_s32(vmovn_s64(vshrq_n_s64(b, 16)), qv), 16);
      vst1q_s64(o + j, vmlal_s32(vaddq_s64(vld1q_s64(o + j), ph), vmovn_s64(vandq_s64(b, m16)), qv));
    }
    ScalarOps::axpy(o + j, n - j, q, bt + j);
  }
  // 1 <= sh <= 62. The output_first fused row (ScalarOps::fused_row): srshl / srshr rounding shifts,
  // sqxtn saturations; q bt (|bt| <= 2^35 + 1) as axpy, split at bit 16.
  static void fused_row(int32_t* s, int64_t n, int64_t kk, int64_t q, int64_t G, int64_t U, const int32_t* u, int sh,
                        int64_t* o) {
    const int32x2_t k = vdup_n_s32(int32_t(kk)), qv = vdup_n_s32(int32_t(q)), g = vdup_n_s32(int32_t(G));
    const int32x2_t uu = vdup_n_s32(int32_t(U));
    const int64x2_t ns = vdupq_n_s64(-sh), m16 = vdupq_n_s64(0xFFFF);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const int32x4_t uv = vld1q_s32(u + j), sv = vld1q_s32(s + j);
      const int64x2_t x0 = vrshlq_s64(vmull_s32(vget_low_s32(uv), k), ns);
      const int64x2_t x1 = vrshlq_s64(vmull_s32(vget_high_s32(uv), k), ns);
      int64x2_t o0 = vmlal_s32(vld1q_s64(o + j), vget_low_s32(sv), qv);
      int64x2_t o1 = vmlal_s32(vld1q_s64(o + j + 2), vget_high_s32(sv), qv);
      if (U) {
        const int64x2_t b0 = vrshrq_n_s64(vmull_s32(vqmovn_s64(x0), uu), 16);
        const int64x2_t b1 = vrshrq_n_s64(vmull_s32(vqmovn_s64(x1), uu), 16);
        o0 = vaddq_s64(o0, vshlq_n_s64(vmull_s32(vmovn_s64(vshrq_n_s64(b0, 16)), qv), 16));
        o1 = vaddq_s64(o1, vshlq_n_s64(vmull_s32(vmovn_s64(vshrq_n_s64(b1, 16)), qv), 16));
        o0 = vmlal_s32(o0, vmovn_s64(vandq_s64(b0, m16)), qv);
        o1 = vmlal_s32(o1, vmovn_s64(vandq_s64(b1, m16)), qv);
      }
      vst1q_s64(o + j, o0);
      vst1q_s64(o + j + 2, o1);
      const int64x2_t g0 = vrshrq_n_s64(vmull_s32(vget_low_s32(sv), g), 30);
      const int64x2_t g1 = vrshrq_n_s64(vmull_s32(vget_high_s32(sv), g), 30);
      vst1q_s32(s + j, vcombine_s32(vqmovn_s64(vaddq_s64(g0, x0)), vqmovn_s64(vaddq_s64(g1, x1))));
    }
    ScalarOps::fused_row(s + j, n - j, kk, q, G, U, u + j, sh, o + j);
  }
  static int64x2_t clamp40(int64x2_t x) {
    const int64x2_t hi = vdupq_n_s64(kL40), lo = vdupq_n_s64(-kL40);
    x = vbslq_s64(vcgtq_s64(x, hi), hi, x);
    return vbslq_s64(vcltq_s64(x, lo), lo, x);
  }
  // 1 <= sh, shb <= 62. s = sat32(s + clamp(shift_s(kk * u, sh), +-2^40) + clamp(shift_s(bb * w, shb), +-2^40)).
  static void write2(int32_t* s, int64_t n, int64_t kk, const int32_t* u, int sh, int64_t bb, const int32_t* w, int shb) {
    const int32x2_t k = vdup_n_s32(int32_t(kk)), b = vdup_n_s32(int32_t(bb));
    const int64x2_t ns = vdupq_n_s64(-sh), nb = vdupq_n_s64(-shb);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const int32x4_t uv = vld1q_s32(u + j), wv = vld1q_s32(w + j), sv = vld1q_s32(s + j);
      const int64x2_t x0 = clamp40(vrshlq_s64(vmull_s32(vget_low_s32(uv), k), ns));
      const int64x2_t x1 = clamp40(vrshlq_s64(vmull_s32(vget_high_s32(uv), k), ns));
      const int64x2_t y0 = clamp40(vrshlq_s64(vmull_s32(vget_low_s32(wv), b), nb));
      const int64x2_t y1 = clamp40(vrshlq_s64(vmull_s32(vget_high_s32(wv), b), nb));
      const int64x2_t r0 = vaddq_s64(vaddq_s64(vmovl_s32(vget_low_s32(sv)), x0), y0);
      const int64x2_t r1 = vaddq_s64(vaddq_s64(vmovl_s32(vget_high_s32(sv)), x1), y1);
      vst1q_s32(s + j, vcombine_s32(vqmovn_s64(r0), vqmovn_s64(r1)));
    }
    ScalarOps::write2(s + j, n - j, kk, u + j, sh, bb, w + j, shb);
  }
};

}  // namespace
}  // namespace linattn

extern const LinattnKernel kLinattnNeon = {Isa::neon, "neon", linattn::heads_fused<linattn::NeonOps>, linattn::out_impl};

}  // namespace fq::k
