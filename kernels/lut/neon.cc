// NEON variant of the DULUT family: 16 elements per iteration in two int16x8 registers. Each int16
// table is split into a low-byte and a high-byte plane of 64 bytes (uint8x16x4), so a lookup is
// two tbl (vqtbl4q_u8) on the byte indices plus a zip; the warp position is a widening
// multiply-accumulate (vmlal_s16, exact 32-bit) and the value interpolation one sqrdmulh
// (vqrdmulhq_s16 = rshift_round(a * b, 15), as pmulhrsw; never saturates here because the Q15
// fraction is >= 0). The tail goes through the scalar reference. Bit-exact to ref.cc.
#include <arm_neon.h>

#include "fq/kernels/lut.h"

namespace fq::k {
namespace {

struct Planes {
  uint8x16x4_t lo, hi;
};

Planes planes(const void* table) {
  alignas(16) uint8_t lo[kLutMaxEntries], hi[kLutMaxEntries];
  const uint16_t* e = static_cast<const uint16_t*>(table);
  for (int i = 0; i < kLutMaxEntries; ++i) {
    lo[i] = static_cast<uint8_t>(e[i] & 0xFF);
    hi[i] = static_cast<uint8_t>(e[i] >> 8);
  }
  return {vld1q_u8_x4(lo), vld1q_u8_x4(hi)};
}

// 16 int16 entries for the 16 byte indices idx (< 64): elements 0-7 in .val[0], 8-15 in .val[1].
inline int16x8x2_t lookup(const Planes& t, uint8x16_t idx) {
  const uint8x16_t lo = vqtbl4q_u8(t.lo, idx), hi = vqtbl4q_u8(t.hi, idx);
  return {{vreinterpretq_s16_u8(vzip1q_u8(lo, hi)), vreinterpretq_s16_u8(vzip2q_u8(lo, hi))}};
}

// P = b1 * 2^16 + d1 * f (uint32, exact): p = P >> 16, e = P & 0xffff (8 lanes).
inline void position(int16x8_t b1, int16x8_t d1, uint16x8_t f, uint16x8_t* p, uint16x8_t* e) {
  const uint16x8_t b = vreinterpretq_u16_s16(b1), d = vreinterpretq_u16_s16(d1);
  const uint32x4_t lo = vmlal_u16(vshll_n_u16(vget_low_u16(b), 16), vget_low_u16(d), vget_low_u16(f));
  const uint32x4_t hi = vmlal_u16(vshll_n_u16(vget_high_u16(b), 16), vget_high_u16(d), vget_high_u16(f));
  *p = vcombine_u16(vshrn_n_u32(lo, 16), vshrn_n_u32(hi, 16));
  *e = vcombine_u16(vmovn_u32(lo), vmovn_u32(hi));
}

template <bool kIn8, bool kOut8>
void run_impl(const LutTable& t, const void* xv, int64_t n, void* yv) {
  const Planes B1 = planes(t.b1), D1 = planes(t.d1), B2 = planes(t.b2), D2 = planes(t.d2);
  const int s1 = t.in_bits - t.k1, F = 16 - t.k2;
  const int16x8_t sh_i = vdupq_n_s16(static_cast<int16_t>(-s1)), sh_f1 = vdupq_n_s16(static_cast<int16_t>(16 - s1));
  const int16x8_t sh_e = vdupq_n_s16(static_cast<int16_t>(-(F + 1)));
  const int16x8_t sh_j = vdupq_n_s16(static_cast<int16_t>(-F)), sh_f2 = vdupq_n_s16(static_cast<int16_t>(t.k2));
  const int16x8_t round_mul = vdupq_n_s16(static_cast<int16_t>(1 << (15 - (t.g > 0 ? t.g : 1))));
  const bool do_round = t.g > 0;
  const uint16x8_t offset = vdupq_n_u16(kIn8 ? 128 : 0x8000);

  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    uint16x8_t u0, u1;
    if (kIn8) {
      const int8x16_t x8 = vld1q_s8(static_cast<const int8_t*>(xv) + k);
      u0 = vaddq_u16(vreinterpretq_u16_s16(vmovl_s8(vget_low_s8(x8))), offset);
      u1 = vaddq_u16(vreinterpretq_u16_s16(vmovl_s8(vget_high_s8(x8))), offset);
    } else {
      const int16_t* xp = static_cast<const int16_t*>(xv) + k;
      u0 = veorq_u16(vreinterpretq_u16_s16(vld1q_s16(xp)), offset);
      u1 = veorq_u16(vreinterpretq_u16_s16(vld1q_s16(xp + 8)), offset);
    }
    // Stage 1: i = u >> s1, Q16 fraction u << (16 - s1).
    const uint8x16_t i = vcombine_u8(vmovn_u16(vshlq_u16(u0, sh_i)), vmovn_u16(vshlq_u16(u1, sh_i)));
    const uint16x8_t f0 = vshlq_u16(u0, sh_f1), f1 = vshlq_u16(u1, sh_f1);
    const int16x8x2_t b1 = lookup(B1, i), d1 = lookup(D1, i);
    uint16x8_t p0, p1, e0, e1;
    position(b1.val[0], d1.val[0], f0, &p0, &e0);
    position(b1.val[1], d1.val[1], f1, &p1, &e1);
    // Stage 2: j = p >> F, Q15 fraction ((p << k2) >> 1) | (e >> (F + 1)).
    const uint8x16_t j = vcombine_u8(vmovn_u16(vshlq_u16(p0, sh_j)), vmovn_u16(vshlq_u16(p1, sh_j)));
    const int16x8_t g0 = vreinterpretq_s16_u16(vorrq_u16(vshrq_n_u16(vshlq_u16(p0, sh_f2), 1), vshlq_u16(e0, sh_e)));
    const int16x8_t g1 = vreinterpretq_s16_u16(vorrq_u16(vshrq_n_u16(vshlq_u16(p1, sh_f2), 1), vshlq_u16(e1, sh_e)));
    const int16x8x2_t b2 = lookup(B2, j), d2 = lookup(D2, j);
    int16x8_t v0 = vaddq_s16(b2.val[0], vqrdmulhq_s16(d2.val[0], g0));
    int16x8_t v1 = vaddq_s16(b2.val[1], vqrdmulhq_s16(d2.val[1], g1));
    if (do_round) {
      v0 = vqrdmulhq_s16(v0, round_mul);
      v1 = vqrdmulhq_s16(v1, round_mul);
    }
    if (kOut8) {
      vst1q_s8(static_cast<int8_t*>(yv) + k, vcombine_s8(vqmovn_s16(v0), vqmovn_s16(v1)));
    } else {
      int16_t* yp = static_cast<int16_t*>(yv) + k;
      vst1q_s16(yp, v0);
      vst1q_s16(yp + 8, v1);
    }
  }
  for (; k < n; ++k) {
    const int32_t xk = kIn8 ? static_cast<const int8_t*>(xv)[k] : static_cast<const int16_t*>(xv)[k];
    const int32_t yk = lut_eval_one(t, xk);
    if (kOut8) static_cast<int8_t*>(yv)[k] = static_cast<int8_t>(yk);
    else static_cast<int16_t*>(yv)[k] = static_cast<int16_t>(yk);
  }
}

void neon_run(const LutTable& t, const void* x, int64_t n, void* y) {
  if (t.in_bits == 8) {
    if (t.out_bits == 8) run_impl<true, true>(t, x, n, y);
    else run_impl<true, false>(t, x, n, y);
  } else {
    if (t.out_bits == 8) run_impl<false, true>(t, x, n, y);
    else run_impl<false, false>(t, x, n, y);
  }
}

}  // namespace

extern const LutKernel kLutNeon = {Isa::neon, "neon", neon_run};

}  // namespace fq::k
