// NEON variants of the conv family (aarch64): `neon` (vmull_s8 + vpadalq_s16) and `neondot` (sdot;
// neondot.cc compiles this file again with FQ_NEON_DOT and +dotprod).
//
// The activations are u8 and the multiply is signed x signed, so each patch is gathered as
// x - 128 (int8) and the offset is given back exactly with pack-time sums:
//   sum_k x*w = sum_k (x-128)*w + 128 * sum_k w.
// Padding taps read x = 0, i.e. -128 in the gathered patch, so they cancel against 128*w as well.
// All sums are i32 lanes that wrap like the reference's accumulator: the bytes equal scalar's.
//
// Packed layout: per panel of 4 output channels (O padded with zero channels):
//   [ceil(K/16) steps][4 channels][16 taps] int8 (K = KH*KW*C in [ky][kx][c] order, zero padded),
//   then with CFWS [ceil(C/16) steps][4][16] int8 of w_coarse; after all panels the offsets
//   off[o] = 128 * sum_k w[o, k] and off_c[o] = 128 * sum_c w_coarse[o, c] (i32, wrapping).
// Task = one output pixel x a block of 64 channels (the patch is gathered into the worker's
// scratch once per task).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../core/neon_dot.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/store.h"

namespace fq::k {
namespace {

constexpr int kP = 4;
constexpr int kBlock = 64;  // output channels per task

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Plan {
  int64_t k, kp, cp, panels, panel_bytes;
};

Plan plan(const ConvShape& s) {
  Plan p{};
  p.k = int64_t{s.kh} * s.kw * s.c;
  p.kp = ceil_div(p.k, 16) * 16;
  p.cp = s.coarse ? ceil_div(s.c, 16) * 16 : 0;
  p.panels = ceil_div(s.o, kP);
  p.panel_bytes = (p.kp + p.cp) * kP;
  return p;
}

size_t neon_packed_size(const ConvShape& s) {
  const Plan p = plan(s);
  return size_t(p.panels * p.panel_bytes + 8 * p.panels * kP);
}

void neon_pack(const ConvShape& s, const int8_t* w, const int8_t* w_coarse, void* packed) {
  const Plan p = plan(s);
  std::memset(packed, 0, neon_packed_size(s));
  int8_t* out = static_cast<int8_t*>(packed);
  int32_t* off = reinterpret_cast<int32_t*>(out + p.panels * p.panel_bytes);
  int32_t* off_c = off + p.panels * kP;
  for (int o = 0; o < s.o; ++o) {
    int8_t* panel = out + o / kP * p.panel_bytes;
    const int c = o % kP;
    uint32_t sum = 0;
    for (int64_t k = 0; k < p.k; ++k) {
      const int8_t v = w[o * p.k + k];
      panel[(k / 16 * kP + c) * 16 + k % 16] = v;
      sum += uint32_t(int32_t{v});
    }
    off[o] = int32_t(sum * 128u);
    if (!s.coarse) continue;
    int8_t* cpanel = panel + p.kp * kP;
    uint32_t sum_c = 0;
    for (int i = 0; i < s.c; ++i) {
      const int8_t v = w_coarse[int64_t{o} * s.c + i];
      cpanel[(i / 16 * kP + c) * 16 + i % 16] = v;
      sum_c += uint32_t(int32_t{v});
    }
    off_c[o] = int32_t(sum_c * 128u);
  }
}

size_t neon_scratch_size(const ConvShape& s) {
  const Plan p = plan(s);
  return size_t(p.kp + p.cp);
}

int64_t blocks(const ConvShape& s) { return ceil_div(s.o, kBlock); }
int64_t neon_num_tasks(const ConvShape& s) { return int64_t{s.n} * s.oh * s.ow * blocks(s); }

using neon::dot16;

// Gathers c values of pixel (n, iy, ix) as x - 128 (padding: -128) into dst.
void gather(const ConvShape& s, const uint8_t* x, int n, int iy, int ix, int8_t* dst) {
  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) {
    std::memset(dst, -128, size_t(s.c));
    return;
  }
  const uint8_t* src = x + ((int64_t{n} * s.h + iy) * s.w + ix) * s.c;
  int i = 0;
  const uint8x16_t bias = vdupq_n_u8(128);
  for (; i + 16 <= s.c; i += 16)
    vst1q_s8(dst + i, vreinterpretq_s8_u8(veorq_u8(vld1q_u8(src + i), bias)));
  for (; i < s.c; ++i) dst[i] = int8_t(src[i] ^ 128);
}

// Sums of the 4 channels of a panel over `steps` 16-byte steps of the patch a.
inline void panel_dot(const int8_t* panel, const int8_t* a, int64_t steps, uint32_t out[kP]) {
  int32x4_t acc[kP] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
  for (int64_t st = 0; st < steps; ++st) {
    const int8x16_t av = vld1q_s8(a + st * 16);
    for (int c = 0; c < kP; ++c) acc[c] = dot16(acc[c], vld1q_s8(panel + (st * kP + c) * 16), av);
  }
  for (int c = 0; c < kP; ++c) out[c] = uint32_t(vaddvq_s32(acc[c]));
}

void neon_run(const ConvShape& s, const uint8_t* x, const void* packed, const ConvEpilogue& e,
              void* y, int64_t begin, int64_t end, void* scratch) {
  const Plan p = plan(s);
  const int8_t* wp = static_cast<const int8_t*>(packed);
  const int32_t* off = reinterpret_cast<const int32_t*>(wp + p.panels * p.panel_bytes);
  const int32_t* off_c = off + p.panels * kP;
  int8_t* patch = static_cast<int8_t*>(scratch);
  int8_t* cpatch = patch + p.kp;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t m = t / blocks(s), pn0 = t % blocks(s) * (kBlock / kP);
    const int64_t pn1 = pn0 + kBlock / kP < p.panels ? pn0 + kBlock / kP : p.panels;
    const int ox = int(m % s.ow), oy = int(m / s.ow % s.oh), n = int(m / (int64_t{s.ow} * s.oh));
    const int iy0 = oy * s.stride - s.pad_t, ix0 = ox * s.stride - s.pad_l;
    for (int ky = 0; ky < s.kh; ++ky)
      for (int kx = 0; kx < s.kw; ++kx)
        gather(s, x, n, iy0 + ky, ix0 + kx, patch + (int64_t{ky} * s.kw + kx) * s.c);
    std::memset(patch + p.k, 0, size_t(p.kp - p.k));
    if (s.coarse) {
      gather(s, x, n, iy0 + s.kh / 2, ix0 + s.kw / 2, cpatch);
      std::memset(cpatch + s.c, 0, size_t(p.cp - s.c));
    }
    for (int64_t pn = pn0; pn < pn1; ++pn) {
      const int8_t* panel = wp + pn * p.panel_bytes;
      uint32_t acc[kP], acc_c[kP] = {0, 0, 0, 0};
      panel_dot(panel, patch, p.kp / 16, acc);
      if (s.coarse) panel_dot(panel + p.kp * kP, cpatch, p.cp / 16, acc_c);
      for (int c = 0; c < kP; ++c) {
        const int o = int(pn * kP + c);
        if (o >= s.o) break;
        const uint32_t a = uint32_t(e.bias[o]) + acc[c] + uint32_t(off[o]);  // wraps like ref
        int64_t v = int64_t{int32_t(a)} * e.mult[o];
        if (s.coarse) v += int64_t{int32_t(acc_c[c] + uint32_t(off_c[o]))} * e.mult_coarse[o];
        store(e.out_type, y, m * s.o + o, clamp64(rshift_round(v, e.shift[o]), e.lo, e.hi));
      }
    }
  }
}

}  // namespace

#if FQ_NEON_DOT
extern const ConvKernel kConvNeonDot = {
    Isa::neondot, "neondot", neon_packed_size, neon_pack, neon_scratch_size, neon_num_tasks,
    neon_run,
};
#else
extern const ConvKernel kConvNeon = {
    Isa::neon, "neon", neon_packed_size, neon_pack, neon_scratch_size, neon_num_tasks, neon_run,
};
#endif

}  // namespace fq::k
#endif  // __aarch64__
