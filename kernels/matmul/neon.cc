// NEON variants of the matmul family (aarch64): `neon` multiplies with vmull_s8 and adds pairs into
// i32 with vpadalq_s16 (exact: each product fits i16, each pair sum is formed in i32); `neondot`
// (this file compiled again by neondot.cc with FQ_NEON_DOT and +dotprod) uses sdot. Both accumulate
// in i32 lanes that wrap like the reference's i32 accumulator, so the bytes equal the scalar ones.
//
// Packed layout: params as in ref.cc (bias i32 [N]; i8: mw i32 [N]; i4: gs i32 [N], gm i32
// [N][ng]), then panels of 4 output columns (N padded with zero columns):
//   i8: [ceil(K/16) steps][4 columns][16 k] int8, zero padded along k.
//   i4: per group [G/32 steps][4 columns][16 bytes]: byte j holds k = 32s + j (low nibble) and
//       k = 32s + 16 + j (high nibble); the partial last group is zero padded.
// A row is copied to the worker's scratch, zero padded to the packed depth, so the kernel never
// reads past K. Units: dynamic = one whole row (v kept in scratch for the row maximum); otherwise
// (row, block of 16 columns). One pass.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../core/neon_dot.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/matmul.h"
#include "epilogue_scalar.h"

namespace fq::k {
namespace {

constexpr int kP = 4;       // columns per panel
constexpr int kBlock = 16;  // columns per unit (non-dynamic)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Plan {
  bool i4;
  int n, k, g, ng, panels;
  int64_t kp;            // packed depth (A is padded to it)
  int64_t par_bytes;     // parameter block
  int64_t panel_bytes;
};

Plan plan(const MatmulShape& s) {
  Plan p{};
  p.i4 = s.format == WeightFormat::i4;
  p.n = s.n, p.k = s.k;
  p.panels = int(ceil_div(s.n, kP));
  if (p.i4) {
    p.g = s.group, p.ng = int(ceil_div(s.k, s.group)), p.kp = int64_t{p.ng} * p.g;
    p.par_bytes = 4 * int64_t{s.n} * (2 + p.ng);
    p.panel_bytes = p.kp / 32 * kP * 16;
  } else {
    p.kp = ceil_div(s.k, 16) * 16;
    p.par_bytes = 4 * int64_t{s.n} * 2;
    p.panel_bytes = p.kp / 16 * kP * 16;
  }
  p.par_bytes = ceil_div(p.par_bytes, 64) * 64;
  return p;
}

size_t neon_packed_size(const MatmulShape& s) {
  const Plan p = plan(s);
  return size_t(p.par_bytes + p.panels * p.panel_bytes);
}

int q4(const uint8_t* row, int k) {
  const int nib = (row[k >> 1] >> ((k & 1) * 4)) & 15;
  return nib >= 8 ? nib - 16 : nib;
}

void neon_pack(const MatmulShape& s, const MatmulWeights& w_in, void* packed) {
  DecodedWeights decoded;  // codebook weights: the int8 matrix they stand for
  const MatmulWeights w = matmul_as_i8(s, w_in, &decoded);
  const Plan p = plan(s);
  std::memset(packed, 0, neon_packed_size(s));
  int32_t* par = static_cast<int32_t*>(packed);
  for (int n = 0; n < s.n; ++n) par[n] = w.bias ? w.bias[n] : 0;
  if (p.i4) {
    for (int n = 0; n < s.n; ++n) par[s.n + n] = w.gshift[n];
    for (int64_t i = 0; i < int64_t{s.n} * p.ng; ++i) par[2 * s.n + i] = w.gmult[i];
  } else {
    for (int n = 0; n < s.n; ++n) par[s.n + n] = w.mult[n];
  }
  int8_t* out = reinterpret_cast<int8_t*>(static_cast<uint8_t*>(packed) + p.par_bytes);
  for (int pn = 0; pn < p.panels; ++pn) {
    int8_t* panel = out + pn * p.panel_bytes;
    for (int c = 0; c < kP; ++c) {
      const int n = pn * kP + c;
      if (n >= s.n) continue;
      if (!p.i4) {
        const int8_t* row = static_cast<const int8_t*>(w.w) + int64_t{n} * s.k;
        for (int k = 0; k < s.k; ++k) panel[(k / 16 * kP + c) * 16 + k % 16] = row[k];
        continue;
      }
      const uint8_t* row = static_cast<const uint8_t*>(w.w) + int64_t{n} * ((s.k + 1) / 2);
      uint8_t* pu = reinterpret_cast<uint8_t*>(panel);
      for (int k = 0; k < s.k; ++k) {
        const int step = k / 32, j = k % 32;
        uint8_t& b = pu[(step * kP + c) * 16 + (j % 16)];
        b |= uint8_t((q4(row, k) & 15) << (j < 16 ? 0 : 4));
      }
    }
  }
}

using neon::dot16;

// v[n] for the 4 columns of panel `pn` (columns past N are not written).
void panel_values(const Plan& p, const uint8_t* packed, const int8_t* a, int pn, int64_t* v) {
  const int32_t* bias = reinterpret_cast<const int32_t*>(packed);
  const int32_t* par = bias + p.n;
  const int8_t* panel =
      reinterpret_cast<const int8_t*>(packed + p.par_bytes) + int64_t{pn} * p.panel_bytes;
  const int ncols = p.n - pn * kP < kP ? p.n - pn * kP : kP;
  if (!p.i4) {
    int32x4_t acc[kP] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int64_t s = 0; s < p.kp / 16; ++s) {
      const int8x16_t av = vld1q_s8(a + s * 16);
      const int8_t* ws = panel + s * kP * 16;
      for (int c = 0; c < kP; ++c) acc[c] = dot16(acc[c], vld1q_s8(ws + c * 16), av);
    }
    for (int c = 0; c < ncols; ++c) {
      const int n = pn * kP + c;
      const uint32_t sum = uint32_t(bias[n]) + uint32_t(vaddvq_s32(acc[c]));  // wraps like ref
      v[c] = int64_t{int32_t(sum)} * par[n];
    }
    return;
  }
  int64_t s64[kP] = {0, 0, 0, 0};
  const int32_t* gm = par + p.n;
  const int steps = p.g / 32;
  for (int g = 0; g < p.ng; ++g) {
    int32x4_t acc[kP] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int st = 0; st < steps; ++st) {
      const int64_t k0 = int64_t{g} * p.g + st * 32;
      const int8x16_t a0 = vld1q_s8(a + k0), a1 = vld1q_s8(a + k0 + 16);
      const int8_t* ws = panel + (k0 / 32) * kP * 16;
      for (int c = 0; c < kP; ++c) {
        const int8x16_t b = vld1q_s8(ws + c * 16);
        acc[c] = dot16(acc[c], vshrq_n_s8(vshlq_n_s8(b, 4), 4), a0);  // low nibbles: k0 .. k0+15
        acc[c] = dot16(acc[c], vshrq_n_s8(b, 4), a1);                 // high: k0+16 .. k0+31
      }
    }
    for (int c = 0; c < ncols; ++c)
      s64[c] += int64_t{vaddvq_s32(acc[c])} * gm[int64_t{pn * kP + c} * p.ng + g];
  }
  for (int c = 0; c < ncols; ++c) {
    const int n = pn * kP + c;
    v[c] = (bias[n] + s64[c]) * (int64_t{1} << par[n]);
  }
}

int neon_num_passes(const MatmulShape&, const MatmulEpilogue&) { return 1; }
size_t neon_workspace_size(const MatmulShape&, const MatmulEpilogue&) { return 0; }
size_t neon_scratch_size(const MatmulShape& s, const MatmulEpilogue& e) {
  const Plan p = plan(s);
  const int64_t vn = int64_t{p.panels} * kP;
  return size_t(ceil_div(p.kp, 64) * 64 + (e.op == MatmulOp::dynamic ? 8 * vn : 8 * kBlock));
}
int64_t neon_num_tasks(const MatmulShape& s, const MatmulEpilogue& e, int) {
  return e.op == MatmulOp::dynamic ? s.m : s.m * ceil_div(s.n, kBlock);
}

void neon_run(const MatmulShape& s, const MatmulArgs& x, int, int64_t begin, int64_t end,
              void* scratch) {
  const Plan p = plan(s);
  const uint8_t* packed = static_cast<const uint8_t*>(x.packed);
  int8_t* a = static_cast<int8_t*>(scratch);
  int64_t* v = reinterpret_cast<int64_t*>(static_cast<uint8_t*>(scratch) + ceil_div(p.kp, 64) * 64);
  const int64_t nblocks = ceil_div(s.n, kBlock);
  int64_t row = -1;
  for (int64_t t = begin; t < end; ++t) {
    const bool dyn = x.e.op == MatmulOp::dynamic;
    const int64_t m = dyn ? t : t / nblocks;
    if (m != row) {  // the padded copy of A's row
      std::memcpy(a, x.a + m * x.lda, size_t(s.k));
      std::memset(a + s.k, 0, size_t(p.kp - s.k));
      row = m;
    }
    if (dyn) {
      for (int pn = 0; pn < p.panels; ++pn) panel_values(p, packed, a, pn, v + pn * kP);
      epi::dynamic_row(x, m, v, s.n);
      continue;
    }
    const int n0 = int(t % nblocks) * kBlock, n1 = n0 + kBlock < s.n ? n0 + kBlock : s.n;
    for (int pn = n0 / kP; pn * kP < n1; ++pn) panel_values(p, packed, a, pn, v + (pn * kP - n0));
    epi::columns(x, m, n0, n1, v);
  }
}

}  // namespace

#if FQ_NEON_DOT
extern const MatmulKernel kMatmulNeonDot = {
    Isa::neondot,        "neondot",           neon_packed_size,  neon_pack,
    neon_num_passes,     neon_workspace_size, neon_scratch_size, neon_num_tasks,
    neon_run};
#else
extern const MatmulKernel kMatmulNeon = {
    Isa::neon,           "neon",              neon_packed_size,  neon_pack,
    neon_num_passes,     neon_workspace_size, neon_scratch_size, neon_num_tasks,
    neon_run};
#endif

}  // namespace fq::k
#endif  // __aarch64__
