// NEON variant of the depthwise conv family (aarch64): vectorized across channels, 16 channels
// per block. Per tap, the 16 u8 activations are widened to i16 (vmovl_u8; <= 255 so the signed
// view is the same number) and multiplied-accumulated into four i32x4 accumulators with
// vmlal_s16 against the weights, widened to i16 once at pack time: every product and sum is
// formed exactly in i32 (|acc| < 2^31 by the preconditions in dwconv.h), the same numbers as the
// reference. The epilogue (i64 product with mult, rshift_round, clamp) is the reference's own
// scalar code on the 16 accumulators.
//
// Packed layout: [ceil(C/16) blocks][KH*KW taps][16 channels] int16, zero beyond C. Padding taps
// read a zero row in the worker's scratch (zeroed on each run call); the channel tail (C % 16) is
// copied to a stack buffer so no load passes the end of a pixel.
// Task = one output row (n, oy) x a chunk of up to 16 channel blocks (256 channels).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "fq/kernels/dwconv.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/store.h"

namespace fq::k {
namespace {

constexpr int kB = 16;
constexpr int kChunk = 16;
constexpr int kMaxTaps = kDwMaxKernel * kDwMaxKernel;

int blocks(const DwConvShape& s) { return (s.c + kB - 1) / kB; }
int chunks(const DwConvShape& s) { return (blocks(s) + kChunk - 1) / kChunk; }

size_t neon_packed_size(const DwConvShape& s) {
  return size_t(blocks(s)) * s.kh * s.kw * kB * sizeof(int16_t);
}

void neon_pack(const DwConvShape& s, const int8_t* w, void* packed) {
  int16_t* dst = static_cast<int16_t*>(packed);
  const int taps = s.kh * s.kw;
  int64_t at = 0;
  for (int b = 0; b < blocks(s); ++b)
    for (int t = 0; t < taps; ++t)
      for (int i = 0; i < kB; ++i) {
        const int c = b * kB + i;
        const int16_t v = c < s.c ? w[int64_t{t} * s.c + c] : 0;
        std::memcpy(dst + at++, &v, sizeof v);
      }
}

size_t neon_scratch_size(const DwConvShape& s) { return size_t(blocks(s)) * kB; }

int64_t neon_num_tasks(const DwConvShape& s) { return int64_t{s.n} * s.oh * chunks(s); }

inline void block_acc(const uint8_t* const* ptrs, int taps, int64_t off, const uint8_t* wq,
                      int32_t acc[kB]) {
  int32x4_t a0 = vld1q_s32(acc), a1 = vld1q_s32(acc + 4), a2 = vld1q_s32(acc + 8),
            a3 = vld1q_s32(acc + 12);
  for (int t = 0; t < taps; ++t, wq += 2 * kB) {
    const uint8x16_t xv = vld1q_u8(ptrs[t] + off);
    const int16x8_t xl = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(xv)));
    const int16x8_t xh = vreinterpretq_s16_u16(vmovl_high_u8(xv));
    const int16x8_t wl = vreinterpretq_s16_u8(vld1q_u8(wq));
    const int16x8_t wh = vreinterpretq_s16_u8(vld1q_u8(wq + 16));
    a0 = vmlal_s16(a0, vget_low_s16(xl), vget_low_s16(wl));
    a1 = vmlal_high_s16(a1, xl, wl);
    a2 = vmlal_s16(a2, vget_low_s16(xh), vget_low_s16(wh));
    a3 = vmlal_high_s16(a3, xh, wh);
  }
  vst1q_s32(acc, a0), vst1q_s32(acc + 4, a1), vst1q_s32(acc + 8, a2), vst1q_s32(acc + 12, a3);
}

void neon_run(const DwConvShape& s, const uint8_t* x, const void* packed, const DwConvEpilogue& e,
              void* y, int64_t begin, int64_t end, void* scratch) {
  const int nb = blocks(s), nch = chunks(s), taps = s.kh * s.kw;
  const uint8_t* wp = static_cast<const uint8_t*>(packed);  // int16 lanes, possibly unaligned
  uint8_t* zero = static_cast<uint8_t*>(scratch);
  std::memset(zero, 0, size_t(nb) * kB);
  const int tail = s.c % kB;
  const uint8_t* ptrs[kMaxTaps];
  const uint8_t* tail_ptrs[kMaxTaps];
  uint8_t tail_buf[kMaxTaps][kB];
  const int64_t row_bytes = int64_t{s.w} * s.c;
  for (int64_t t = begin; t < end; ++t) {
    const int chunk = int(t % nch);
    const int64_t row = t / nch;
    const int oy = int(row % s.oh), n = int(row / s.oh);
    const int b0 = chunk * kChunk, b1 = b0 + kChunk < nb ? b0 + kChunk : nb;
    const uint8_t* rows[kDwMaxKernel];
    for (int ky = 0; ky < s.kh; ++ky) {
      const int iy = oy * s.stride - s.pad_t + ky;
      rows[ky] = iy >= 0 && iy < s.h ? x + (int64_t{n} * s.h + iy) * row_bytes : nullptr;
    }
    for (int ox = 0; ox < s.ow; ++ox) {
      const int ix0 = ox * s.stride - s.pad_l;
      for (int ky = 0, i = 0; ky < s.kh; ++ky)
        for (int kx = 0; kx < s.kw; ++kx, ++i) {
          const int ix = ix0 + kx;
          ptrs[i] = rows[ky] && ix >= 0 && ix < s.w ? rows[ky] + int64_t{ix} * s.c : zero;
        }
      const int64_t ybase = (row * s.ow + ox) * s.c;
      for (int b = b0; b < b1; ++b) {
        const int64_t off = int64_t{b} * kB;
        const int cn = b == nb - 1 && tail ? tail : kB;
        int32_t acc[kB];
        for (int i = 0; i < kB; ++i) acc[i] = i < cn ? e.bias[off + i] : 0;
        const uint8_t* wq = wp + int64_t{b} * taps * kB * 2;
        if (cn < kB) {
          for (int i = 0; i < taps; ++i) {
            std::memset(tail_buf[i], 0, kB);
            std::memcpy(tail_buf[i], ptrs[i] + off, size_t(cn));
            tail_ptrs[i] = tail_buf[i];
          }
          block_acc(tail_ptrs, taps, 0, wq, acc);
        } else {
          block_acc(ptrs, taps, off, wq, acc);
        }
        for (int i = 0; i < cn; ++i) {
          const int64_t c = off + i;
          const int64_t v = int64_t{acc[i]} * e.mult[c];
          store(e.out_type, y, ybase + c, clamp64(rshift_round(v, e.shift[c]), e.lo, e.hi));
        }
      }
    }
  }
}

}  // namespace

extern const DwConvKernel kDwConvNeon = {
    Isa::neon, "neon", neon_packed_size, neon_pack, neon_scratch_size, neon_num_tasks, neon_run,
};

}  // namespace fq::k
#endif  // __aarch64__
