// NEON variant of the llm family (aarch64): the same bytes as ref.cc for every input the contract
// allows. Vectorized: rmsnorm (row max, sum of squares, and the row quantizer for int8 outputs:
// |x'| <= 2^24 and F < 2^26 make every product an exact vmull_s32), rope, residual_add and
// embedding (64-bit lanes, vrshl = rshift_round, saturating narrow). The other operators forward
// to the scalar reference; neondot has nothing more to offer them, so one variant serves both.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "llm_internal.h"

namespace fq::k {
namespace llm {
namespace {

// ---- rmsnorm ------------------------------------------------------------------------------------

// shift_s(x, c) for |x| < 2^31 and any c with |result| <= 2^24 (the rmsnorm normalization).
inline int32x4_t shift_c(int32x4_t x, int c) {
  return c > 0 ? vrshlq_s32(x, vdupq_n_s32(-c)) : vshlq_s32(x, vdupq_n_s32(-c));
}

void x_rmsnorm(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  if (a.qmax > 127) return ref_rmsnorm(a, m0, m1, scratch);
  const int64_t D = a.d;
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t* x = a.x + m * D;
    int8_t* y = static_cast<int8_t*>(a.y) + m * D;
    uint32x4_t mx = vdupq_n_u32(0);
    int64_t i = 0;
    for (; i + 4 <= D; i += 4) mx = vmaxq_u32(mx, vreinterpretq_u32_s32(vabsq_s32(vld1q_s32(x + i))));
    uint64_t A0 = vmaxvq_u32(mx);
    for (; i < D; ++i) A0 = mag64(x[i]) > A0 ? mag64(x[i]) : A0;
    if (A0 == 0 || A0 > (uint64_t{1} << 31) - 1) {  // zero rows and INT32_MIN: the reference
      ref_rmsnorm(a, m, m + 1, scratch);
      continue;
    }
    const int c = bitlen64(A0) - 24;
    // x' = shift_s(x, c) (|x'| <= 2^24), its max and sum of squares.
    int64x2_t ss = vdupq_n_s64(0);
    uint32x4_t mx2 = vdupq_n_u32(0);
    int64_t sum = 0;
    uint64_t A1 = 0;
    for (i = 0; i + 4 <= D; i += 4) {
      const int32x4_t v = shift_c(vld1q_s32(x + i), c);
      ss = vmlal_s32(ss, vget_low_s32(v), vget_low_s32(v));
      ss = vmlal_high_s32(ss, v, v);
      mx2 = vmaxq_u32(mx2, vreinterpretq_u32_s32(vabsq_s32(v)));
    }
    sum = vaddvq_s64(ss);
    A1 = vmaxvq_u32(mx2);
    for (; i < D; ++i) {
      const int64_t v = shs(x[i], c);
      sum += v * v;
      A1 = mag64(v) > A1 ? mag64(v) : A1;
    }
    const int32_t eps_m = a.eps_m < 0 ? 0 : a.eps_m;
    const int64_t k = rms_k(eps_m, a.eps_e, c);
    const int64_t ms = shs(sum / D, 2 * k) + shs(eps_m, int64_t{a.eps_e} + 2 * c + 2 * k);
    // quantize_row of x' (A1 > 0): v'' = shift_s(x', d), q = clamp(rshift_round(v'' * F, 40)).
    const QParams p = qparams(A1, a.qmax);
    const int32x4_t hi = vdupq_n_s32(a.qmax), lo = vdupq_n_s32(-a.qmax);
    const int32x2_t F = vdup_n_s32(int32_t(p.F));
    for (i = 0; i + 4 <= D; i += 4) {
      const int32x4_t v = shift_c(shift_c(vld1q_s32(x + i), c), p.d);
      const int64x2_t l = vrshrq_n_s64(vmull_s32(vget_low_s32(v), F), 40);
      const int64x2_t h = vrshrq_n_s64(vmull_high_s32(v, vdupq_n_s32(int32_t(p.F))), 40);
      int32x4_t q = vcombine_s32(vmovn_s64(l), vmovn_s64(h));  // |q| <= qmax + 1
      q = vmaxq_s32(vminq_s32(q, hi), lo);
      const int16x4_t q16 = vmovn_s32(q);
      const int8x8_t q8 = vmovn_s16(vcombine_s16(q16, q16));
      vst1_lane_s32(reinterpret_cast<int32_t*>(y + i), vreinterpret_s32_s8(q8), 0);
    }
    for (; i < D; ++i) y[i] = int8_t(qelem(shs(x[i], c), p, a.qmax));
    a.ys[m] = rms_scale(p.A, a.qmax, p.d, k, ms);
  }
}

// ---- rope ---------------------------------------------------------------------------------------

void x_rope(const RopeArgs& a, int64_t m0, int64_t m1) {
  const int hd = a.head_dim;
  if (hd <= 0 || (hd & 3)) return ref_rope(a, m0, m1);
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t p = int64_t{a.pos} + m;
    if (p < 0 || p >= a.table_rows) {
      ref_rope(a, m, m + 1);
      continue;
    }
    const int16_t* x = a.x + m * a.width;
    int16_t* y = a.y + m * a.width;
    const int16_t* t = a.table + p * hd;
    for (int64_t h0 = 0; h0 + hd <= a.width; h0 += hd)
      for (int i = 0; i < hd; i += 4) {  // two pairs: (a0, b0, a1, b1) with (c0, s0, c1, s1)
        const int16x4_t xr = vld1_s16(x + h0 + i), tr = vld1_s16(t + i);
        const int16x4_t xs = vrev32_s16(xr);                              // (b0, a0, b1, a1)
        const int32x4_t ac = vmull_s16(xr, tr);                           // a0c0 b0s0 a1c1 b1s1
        const int32x4_t as = vmull_s16(xs, tr);                           // b0c0 a0s0 b1c1 a1s1
        // a c - b s and a s + b c in int64 (two products can reach 2^31 for any int16 table)
        const int64x2_t e = vsubl_s32(vget_low_s32(vuzp1q_s32(ac, ac)), vget_low_s32(vuzp2q_s32(ac, ac)));
        const int64x2_t o = vaddl_s32(vget_low_s32(vuzp1q_s32(as, as)), vget_low_s32(vuzp2q_s32(as, as)));
        const int32x2_t r0 = vqmovn_s64(vrshrq_n_s64(vzip1q_s64(e, o), 15));  // y0, y1
        const int32x2_t r1 = vqmovn_s64(vrshrq_n_s64(vzip2q_s64(e, o), 15));  // y2, y3
        vst1_s16(y + h0 + i, vqmovn_s32(vcombine_s32(r0, r1)));
      }
    const RowScale in = a.xs[m];
    a.ys[m] = in.mant == 0 ? RowScale{} : RowScale{in.mant, clamp_exp(int64_t{in.exp} - 1)};
  }
}

// ---- residual_add / embedding -------------------------------------------------------------------

// out[0..4) = sat32(h + shift_s(x, s)) for |x| <= 2^30 (h may be null: 0).
inline void add_shift_store(int32x4_t x, int64_t s, const int32_t* h, int32_t* out) {
  int64x2_t lo = vmovl_s32(vget_low_s32(x)), hi = vmovl_high_s32(x);
  if (s >= 32) {  // |x| < 2^(s-1): rounds to 0
    lo = hi = vdupq_n_s64(0);
  } else if (s != 0) {  // right: rounding shift; left: at most 32 (larger saturates the same way)
    const int64x2_t c = vdupq_n_s64(s > 0 ? -s : (-s > 32 ? 32 : -s));
    lo = s > 0 ? vrshlq_s64(lo, c) : vshlq_s64(lo, c);
    hi = s > 0 ? vrshlq_s64(hi, c) : vshlq_s64(hi, c);
  }
  if (h) {
    const int32x4_t hv = vld1q_s32(h);
    lo = vaddq_s64(lo, vmovl_s32(vget_low_s32(hv)));
    hi = vaddq_s64(hi, vmovl_high_s32(hv));
  }
  vst1q_s32(out, vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi)));
}

void x_residual_add(const ResidualArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale ys = a.ys[m];
    const int64_t sh = int64_t{ys.exp} - a.e, base = m * a.d;
    int64_t i = 0;
    for (; i + 4 <= a.d; i += 4) {
      const int32x4_t yv = vmulq_n_s32(vmovl_s16(vld1_s16(a.y + base + i)), ys.mant);
      add_shift_store(yv, sh, a.h + base + i, a.out + base + i);
    }
    for (; i < a.d; ++i)
      a.out[base + i] = saturate<int32_t>(a.h[base + i] + shs(int64_t{a.y[base + i]} * ys.mant, sh));
  }
}

void x_embedding(const EmbeddingArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t id = a.ids[m];
    if (id < 0 || id >= a.vocab) {
      ref_embedding(a, m, m + 1);
      continue;
    }
    int32_t* out = a.out + m * a.d;
    const int8_t* t = a.table + id * a.d;
    const RowScale ts = a.ts[id];
    const int64_t sh = int64_t{ts.exp} - a.e;
    int64_t i = 0;
    for (; i + 8 <= a.d; i += 8) {
      const int16x8_t tv = vmovl_s8(vld1_s8(t + i));
      add_shift_store(vmulq_n_s32(vmovl_s16(vget_low_s16(tv)), ts.mant), sh, nullptr, out + i);
      add_shift_store(vmulq_n_s32(vmovl_high_s16(tv), ts.mant), sh, nullptr, out + i + 4);
    }
    for (; i < a.d; ++i) out[i] = saturate<int32_t>(shs(int64_t{t[i]} * ts.mant, sh));
  }
}

}  // namespace
}  // namespace llm

extern const LlmKernel kLlmNeon = {
    Isa::neon,                "neon",
    llm::x_rmsnorm,
    llm::x_rope,              llm::ref_attention_cache,
    llm::ref_attention_heads, llm::ref_attention_out,
    llm::ref_swiglu,          llm::x_residual_add,
    llm::x_embedding,         llm::ref_hadamard,
    llm::ref_softmax,         llm::ref_layernorm,
    llm::ref_exp};

}  // namespace fq::k
#endif  // __aarch64__
