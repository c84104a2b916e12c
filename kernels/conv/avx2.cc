// AVX2 variant of the conv family (no VNNI): im2col + register-blocked GEMM on exact i16 products.
//
// vpmaddubsw would add two u8*s8 products into a *saturating* i16 (255*127*2 = 64770 > 32767), so
// it is not used. Instead activations are widened to i16 while im2col'ing (u8 -> 0..255) and the
// weights are stored widened (s8 -> -128..127): vpmaddwd then adds two products of at most
// 255*128 = 32640 each into an i32 lane - exact - and vpaddd accumulates with the same modulo-2^32
// wrap as the reference (see ref.cc for the no-overflow budget).
//
// Layouts: A = im2col block [mb][kp] i16, kp = round_up(K, 2); B = panels of 8 output channels,
// [panel][kp/2][8 lanes][2] i16 (zeros beyond O and K), one 32-byte load per K pair; CFWS coarse
// panels follow with depth cp = round_up(C, 2). Micro-tile: mr pixels x nr panels of ymm
// accumulators (4x2 or 8x1). Work units as in avx512.cc (pixel blocks x panel groups). Epilogue
// as in avx512.cc, with the 64-bit shift and clamp emulated (AVX2 has no vpsravq / vpmaxsq).
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "fq/kernels/conv.h"

namespace fq::k {
namespace {

constexpr int kLanes = 8;          // i32 lanes per ymm = output channels per panel
constexpr int kMaxTile = 8;        // accumulators per micro-tile (16 ymm registers in all)
constexpr int kMr[3] = {0, 8, 4};  // micro-tile rows for nr = 1, 2 panels

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

struct Plan {
  int64_t m = 0;
  int k = 0, kp = 0, cp = 0, centre = 0;  // depths in elements (i16)
  int panels = 0, nr = 0, mr = 0, mb = 0, task_panels = 0;
  int64_t mblocks = 0, pgroups = 0;
};

Plan make_plan(const ConvShape& s) {
  Plan p;
  p.m = int64_t{s.n} * s.oh * s.ow;
  p.k = s.kh * s.kw * s.c;
  p.kp = int(round_up(p.k, 2));
  p.cp = int(round_up(s.c, 2));
  p.centre = ((s.kh / 2) * s.kw + s.kw / 2) * s.c;
  p.panels = (s.o + kLanes - 1) / kLanes;
  p.nr = p.panels < 2 ? 1 : 2;  // O = 0 gives no tasks below
  p.mr = kMr[p.nr];
  int64_t mb = (24 * 1024 / (2 * p.kp)) / p.mr * p.mr;  // i16 rows: 2 bytes per element
  mb = mb < p.mr ? p.mr : mb > 128 ? 128 / p.mr * p.mr : mb;
  p.mblocks = (p.m + mb - 1) / mb;
  p.mb = p.mblocks ? int(round_up((p.m + p.mblocks - 1) / p.mblocks, p.mr)) : p.mr;
  p.task_panels = p.mblocks >= 8 ? p.panels : 2 * p.nr;
  p.pgroups = (p.panels + p.task_panels - 1) / p.task_panels;
  return p;
}

// ---- weights -------------------------------------------------------------------------------

// w [rows, k] -> panels [ceil(rows/8)][kp/2][8][2] of i16, zero beyond rows and k. The packed
// buffer need not be 2-byte aligned (the kernel reads it with unaligned loads): bytewise stores.
uint8_t* pack_panels(const int8_t* w, int rows, int k, int kp, uint8_t* dst) {
  for (int p = 0; p < rows; p += kLanes)
    for (int g = 0; g < kp; g += 2)
      for (int l = 0; l < kLanes; ++l)
        for (int j = 0; j < 2; ++j, dst += sizeof(int16_t)) {
          const int o = p + l, kk = g + j;
          const int16_t v = o < rows && kk < k ? w[int64_t{o} * k + kk] : 0;
          std::memcpy(dst, &v, sizeof v);
        }
  return dst;
}

size_t avx2_packed_size(const ConvShape& s) {
  const Plan p = make_plan(s);
  return size_t(p.panels) * kLanes * (p.kp + (s.coarse ? p.cp : 0)) * sizeof(int16_t);
}

void avx2_pack(const ConvShape& s, const int8_t* w, const int8_t* w_coarse, void* packed) {
  const Plan p = make_plan(s);
  uint8_t* dst = pack_panels(w, s.o, p.k, p.kp, static_cast<uint8_t*>(packed));
  if (s.coarse) pack_panels(w_coarse, s.o, s.c, p.cp, dst);
}

// ---- activations ---------------------------------------------------------------------------

void widen_bytes(int16_t* d, const uint8_t* src, int n) {
  for (; n >= 16; n -= 16, d += 16, src += 16)
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(d),
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
  for (int i = 0; i < n; ++i) d[i] = src[i];
}

void zero_elems(int16_t* d, int n) { std::memset(d, 0, size_t(n) * sizeof(int16_t)); }

// im2col of pixels [m0, m0 + rows) into a[rows][kp] (i16): padding taps and the K tail are 0.
void im2col(const ConvShape& s, const Plan& p, const uint8_t* x, int64_t m0, int rows, int16_t* a) {
  int ox = int(m0 % s.ow), oy = int(m0 / s.ow % s.oh);
  int64_t n = m0 / (int64_t{s.ow} * s.oh);
  const int span = s.kw * s.c;
  for (int r = 0; r < rows; ++r, a += p.kp) {
    const int iy0 = oy * s.stride - s.pad_t, ix0 = ox * s.stride - s.pad_l;
    for (int ky = 0; ky < s.kh; ++ky) {
      int16_t* dst = a + ky * span;
      const int iy = iy0 + ky;
      if (iy < 0 || iy >= s.h) {
        zero_elems(dst, span);
        continue;
      }
      const uint8_t* row = x + (n * s.h + iy) * s.w * s.c;  // x[n, iy, 0, 0]
      if (ix0 >= 0 && ix0 + s.kw <= s.w) {
        widen_bytes(dst, row + ix0 * s.c, span);
      } else {
        for (int kx = 0; kx < s.kw; ++kx) {
          const int ix = ix0 + kx;
          if (ix < 0 || ix >= s.w)
            zero_elems(dst + kx * s.c, s.c);
          else
            widen_bytes(dst + kx * s.c, row + ix * s.c, s.c);
        }
      }
    }
    zero_elems(a + p.k, p.kp - p.k);
    if (++ox == s.ow) {
      ox = 0;
      if (++oy == s.oh) oy = 0, ++n;
    }
  }
}

// ---- micro-kernel --------------------------------------------------------------------------

// out[i][n][8] = sum over k2 pairs of a[i][2k..2k+1] . b[n][k][lane][0..1]  (exact i32, wrapping)
template <int MR, int NR>
void tile(const int16_t* a, int64_t lda, const int16_t* b, int64_t bstride, int k2, int32_t* out) {
  __m256i acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int n = 0; n < NR; ++n) acc[i][n] = _mm256_setzero_si256();
  for (int k = 0; k < k2; ++k, b += 2 * kLanes, a += 2) {
    __m256i w[NR];
#pragma GCC unroll 2
    for (int n = 0; n < NR; ++n)
      w[n] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + n * bstride));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      std::memcpy(&v, a + i * lda, 4);
      const __m256i xa = _mm256_set1_epi32(v);  // one K pair of pixel i in every lane
#pragma GCC unroll 2
      for (int n = 0; n < NR; ++n)
        acc[i][n] = _mm256_add_epi32(acc[i][n], _mm256_madd_epi16(xa, w[n]));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int n = 0; n < NR; ++n)
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + (i * NR + n) * kLanes), acc[i][n]);
}

using TileFn = void (*)(const int16_t*, int64_t, const int16_t*, int64_t, int, int32_t*);

template <int NR, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> tile_row(std::index_sequence<I...>) {
  return {&tile<int(I) + 1, NR>...};
}
constexpr auto kTile1 = tile_row<1>(std::make_index_sequence<kMr[1]>{});
constexpr auto kTile2 = tile_row<2>(std::make_index_sequence<kMr[2]>{});

TileFn tile_fn(int mr, int nr) { return nr == 1 ? kTile1[mr - 1] : kTile2[mr - 1]; }

// ---- epilogue ------------------------------------------------------------------------------

struct PanelQ {
  __m256i bias, mult_e, mult_o, multc_e, multc_o, round_e, round_o, shift_e, shift_o;
  int live;  // channels of this panel that exist (O tail)
};

__m256i load_padded(const int32_t* p, int live) {
  alignas(32) int32_t t[kLanes] = {};
  for (int i = 0; i < live; ++i) t[i] = p[i];
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
}

PanelQ panel_q(const ConvEpilogue& e, int o0, int o, bool coarse) {
  PanelQ q;
  q.live = o - o0 < kLanes ? o - o0 : kLanes;
  alignas(32) int32_t sh[kLanes] = {};
  for (int i = 0; i < q.live; ++i) sh[i] = e.shift[o0 + i];
  q.bias = load_padded(e.bias + o0, q.live);
  q.mult_e = load_padded(e.mult + o0, q.live);
  q.mult_o = _mm256_srli_epi64(q.mult_e, 32);
  q.multc_e = coarse ? load_padded(e.mult_coarse + o0, q.live) : _mm256_setzero_si256();
  q.multc_o = _mm256_srli_epi64(q.multc_e, 32);
  const __m256i s = _mm256_load_si256(reinterpret_cast<const __m256i*>(sh));
  q.shift_e = _mm256_and_si256(s, _mm256_set1_epi64x(0xffffffff));
  q.shift_o = _mm256_srli_epi64(s, 32);
  const __m256i one = _mm256_set1_epi64x(1);  // 2^(s-1); s = 0 gives a huge count -> 0
  q.round_e = _mm256_sllv_epi64(one, _mm256_sub_epi64(q.shift_e, one));
  q.round_o = _mm256_sllv_epi64(one, _mm256_sub_epi64(q.shift_o, one));
  return q;
}

// Arithmetic i64 shift right by per-lane counts 0..63: sra(x) = ~srl(~x) for negative x.
__m256i sra64(__m256i x, __m256i s) {
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(x, sign), s), sign);
}

__m256i clamp64(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

__m256i requant(const PanelQ& q, const int32_t* acc, const int32_t* acc_c, __m256i lo, __m256i hi) {
  const __m256i v =
      _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc)), q.bias);
  __m256i ve = _mm256_mul_epi32(v, q.mult_e);  // exact i64 products of the even lanes
  __m256i vo = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), q.mult_o);
  if (acc_c) {
    const __m256i c = _mm256_load_si256(reinterpret_cast<const __m256i*>(acc_c));
    ve = _mm256_add_epi64(ve, _mm256_mul_epi32(c, q.multc_e));
    vo = _mm256_add_epi64(vo, _mm256_mul_epi32(_mm256_srli_epi64(c, 32), q.multc_o));
  }
  ve = clamp64(sra64(_mm256_add_epi64(ve, q.round_e), q.shift_e), lo, hi);
  vo = clamp64(sra64(_mm256_add_epi64(vo, q.round_o), q.shift_o), lo, hi);
  return _mm256_blend_epi32(ve, _mm256_slli_epi64(vo, 32), 0xaa);
}

void store8(OutType t, void* y, int64_t i, __m256i v, int live) {
  // Values are clamped into the type, so the saturating packs below are exact narrows.
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  alignas(32) uint8_t buf[32];
  size_t bytes = 0;
  uint8_t* dst = nullptr;
  switch (t) {
    case OutType::u8:
      _mm_storel_epi64(reinterpret_cast<__m128i*>(buf), _mm_packus_epi16(w16, w16));
      bytes = 1, dst = static_cast<uint8_t*>(y) + i;
      break;
    case OutType::i8:
      _mm_storel_epi64(reinterpret_cast<__m128i*>(buf), _mm_packs_epi16(w16, w16));
      bytes = 1, dst = static_cast<uint8_t*>(y) + i;
      break;
    case OutType::i16:
      _mm_store_si128(reinterpret_cast<__m128i*>(buf), w16);
      bytes = 2, dst = static_cast<uint8_t*>(y) + 2 * i;
      break;
    case OutType::i32:
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), v);
      bytes = 4, dst = static_cast<uint8_t*>(y) + 4 * i;
      break;
  }
  std::memcpy(dst, buf, bytes * size_t(live));
}

// ---- driver --------------------------------------------------------------------------------

size_t avx2_scratch_size(const ConvShape& s) {
  const Plan p = make_plan(s);
  // + 64: CFWS rows read 1 element past a row (times zero weights); + 32: alignment.
  return size_t(p.mb) * p.kp * sizeof(int16_t) + 96;
}

int64_t avx2_num_tasks(const ConvShape& s) {
  const Plan p = make_plan(s);
  return p.mblocks * p.pgroups;
}

void avx2_run(const ConvShape& s, const uint8_t* x, const void* packed, const ConvEpilogue& e,
              void* y, int64_t begin, int64_t end, void* scratch) {
  const Plan p = make_plan(s);
  const int16_t* wmain = static_cast<const int16_t*>(packed);
  const int16_t* wcoarse = wmain + int64_t{p.panels} * kLanes * p.kp;
  int16_t* a =
      reinterpret_cast<int16_t*>((reinterpret_cast<uintptr_t>(scratch) + 31) & ~uintptr_t{31});
  const __m256i lo = _mm256_set1_epi64x(e.lo), hi = _mm256_set1_epi64x(e.hi);
  alignas(32) int32_t acc[kMaxTile * kLanes], acc_c[kMaxTile * kLanes];

  for (int64_t t = begin; t < end; ++t) {
    const int64_t m0 = t / p.pgroups * p.mb;
    const int rows = int(p.m - m0 < p.mb ? p.m - m0 : p.mb);
    const int pbeg = int(t % p.pgroups) * p.task_panels;
    const int pend = pbeg + p.task_panels < p.panels ? pbeg + p.task_panels : p.panels;
    im2col(s, p, x, m0, rows, a);
    for (int p0 = pbeg; p0 < pend; p0 += p.nr) {
      const int nr = pend - p0 < p.nr ? pend - p0 : p.nr;
      PanelQ q[2];
      for (int n = 0; n < nr; ++n) q[n] = panel_q(e, (p0 + n) * kLanes, s.o, s.coarse);
      for (int r = 0; r < rows; r += p.mr) {
        const int mr = rows - r < p.mr ? rows - r : p.mr;
        const int16_t* ar = a + int64_t{r} * p.kp;
        tile_fn(mr, nr)(ar, p.kp, wmain + int64_t{p0} * kLanes * p.kp, int64_t{kLanes} * p.kp,
                        p.kp / 2, acc);
        if (s.coarse)
          tile_fn(mr, nr)(ar + p.centre, p.kp, wcoarse + int64_t{p0} * kLanes * p.cp,
                          int64_t{kLanes} * p.cp, p.cp / 2, acc_c);
        for (int i = 0; i < mr; ++i)
          for (int n = 0; n < nr; ++n) {
            const int j = (i * nr + n) * kLanes;
            const __m256i v = requant(q[n], acc + j, s.coarse ? acc_c + j : nullptr, lo, hi);
            store8(e.out_type, y, (m0 + r + i) * s.o + (p0 + n) * kLanes, v, q[n].live);
          }
      }
    }
  }
}

}  // namespace

extern const ConvKernel kConvAvx2 = {
    Isa::avx2, "avx2", avx2_packed_size, avx2_pack, avx2_scratch_size, avx2_num_tasks, avx2_run,
};

}  // namespace fq::k
