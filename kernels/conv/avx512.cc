// AVX-512 VNNI variant of the conv family: im2col + register-blocked GEMM with vpdpbusd.
//
// GEMM view: rows = output pixels (M = N*OH*OW), depth K = KH*KW*C, columns = output channels.
//  * A (activations): a block of `mb` pixels is im2col'ed into the worker's scratch, one row of
//    kp = round_up(K, 4) bytes per pixel, padding taps and the K tail written as 0. For a 1x1,
//    stride-1, unpadded conv with C % 4 == 0 the rows are x itself and no copy is made.
//  * B (weights): packed once into panels of 16 output channels, [panel][kp/4][16 lanes][4 bytes]
//    (zeros beyond O and K), so one 64-byte load feeds one vpdpbusd; the CFWS coarse weights follow
//    in the same layout with depth cp = round_up(C, 4).
//  * Micro-kernel: mr pixels x nr panels of zmm accumulators (mr*nr <= 24): per 4-byte K step,
//    nr weight loads + mr broadcasts feed mr*nr vpdpbusd.
//  * Epilogue, fused per 16 channels: + bias (i32), x mult with vpmuldq (exact i64 products of the
//    even and odd lanes), + acc_c x mult_coarse, rounding add + vpsravq (= rshift_round), 64-bit
//    clamp, narrow and masked store (O tail).
//  * Work units: a block of mb <= 128 pixels x a group of panels (all panels when there are >= 8
//    pixel blocks, else 4 panels = 64 channels, so FC layers split over channels). Units write
//    disjoint outputs and use only the worker's scratch: any thread count gives the same bytes.
//
// Exactness: vpdpbusd (not the saturating vpdpbusds) adds four u8*s8 products (|p| <= 32640) to
// the i32 lane with wrap-around, i.e. exactly the reference's i32 sum modulo 2^32 (see ref.cc for
// the no-overflow budget). Products with mult are exact in i64; |v| < 2^62 is the caller's
// precondition, as for rshift_round.

// GCC 12 false positive inside its own AVX-512 intrinsics headers (GCC PR 105593, fixed in 13).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "fq/kernels/conv.h"

namespace fq::k {
namespace {

constexpr int kLanes = 16;    // i32 lanes per zmm = output channels per weight panel
constexpr int kMaxTile = 24;  // accumulators per micro-tile (+ weights + broadcast <= 32 zmm)
constexpr int kMr[5] = {0, 16, 12, 8, 6};  // micro-tile rows for nr = 1..4 panels

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

// Everything derived from the shape alone, so num_tasks, scratch_size and run agree.
struct Plan {
  int64_t m = 0;        // output pixels
  int k = 0, kp = 0;    // K and K padded to 4
  int cp = 0;           // coarse depth: C padded to 4
  int centre = 0;       // offset of the centre tap (CFWS) inside an im2col row
  int panels = 0;       // ceil(O / 16)
  int nr = 0, mr = 0;   // micro-tile
  int mb = 0;           // pixels per task
  int64_t mblocks = 0;  // pixel blocks
  int task_panels = 0;  // panels per task
  int64_t pgroups = 0;  // panel groups
  bool direct = false;  // A rows are x itself
};

Plan make_plan(const ConvShape& s) {
  Plan p;
  p.m = int64_t{s.n} * s.oh * s.ow;
  p.k = s.kh * s.kw * s.c;
  p.kp = int(round_up(p.k, 4));
  p.cp = int(round_up(s.c, 4));
  p.centre = ((s.kh / 2) * s.kw + s.kw / 2) * s.c;
  p.panels = (s.o + kLanes - 1) / kLanes;
  p.nr = p.panels < 1 ? 1 : p.panels < 4 ? p.panels : 4;  // O = 0 gives no tasks below
  p.mr = kMr[p.nr];
  p.direct = s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad_t == 0 && s.pad_l == 0 &&
             s.oh == s.h && s.ow == s.w && s.c % 4 == 0;
  // A pixel block's im2col rows (mb * kp bytes) stay in L1/L2 while the weight panels stream;
  // at most 128 pixels so mid-sized layers still give several tasks. Then even out the blocks.
  int64_t mb = (24 * 1024 / p.kp) / p.mr * p.mr;
  mb = mb < p.mr ? p.mr : mb > 128 ? 128 / p.mr * p.mr : mb;
  p.mblocks = (p.m + mb - 1) / mb;
  p.mb = p.mblocks ? int(round_up((p.m + p.mblocks - 1) / p.mblocks, p.mr)) : p.mr;
  // Enough pixel blocks: a task covers all channels (im2col once). Otherwise (FC, small maps)
  // split the channels too, nr panels per task.
  p.task_panels = p.mblocks >= 8 ? p.panels : p.nr;
  p.pgroups = (p.panels + p.task_panels - 1) / p.task_panels;
  return p;
}

// ---- weights -------------------------------------------------------------------------------

// w [rows, k] -> panels [ceil(rows/16)][kp/4][16][4], zero beyond rows and k.
int8_t* pack_panels(const int8_t* w, int rows, int k, int kp, int8_t* dst) {
  for (int p = 0; p < rows; p += kLanes)
    for (int g = 0; g < kp; g += 4)
      for (int l = 0; l < kLanes; ++l)
        for (int j = 0; j < 4; ++j) {
          const int o = p + l, kk = g + j;
          *dst++ = o < rows && kk < k ? w[int64_t{o} * k + kk] : 0;
        }
  return dst;
}

size_t avx512_packed_size(const ConvShape& s) {
  const Plan p = make_plan(s);
  return size_t(p.panels) * kLanes * (p.kp + (s.coarse ? p.cp : 0));
}

void avx512_pack(const ConvShape& s, const int8_t* w, const int8_t* w_coarse, void* packed) {
  const Plan p = make_plan(s);
  int8_t* dst = pack_panels(w, s.o, p.k, p.kp, static_cast<int8_t*>(packed));
  if (s.coarse) pack_panels(w_coarse, s.o, s.c, p.cp, dst);
}

// ---- activations ---------------------------------------------------------------------------

void copy_bytes(uint8_t* d, const uint8_t* src, int n) {
  for (; n >= 64; n -= 64, d += 64, src += 64) _mm512_storeu_si512(d, _mm512_loadu_si512(src));
  const __mmask64 m = _bzhi_u64(~uint64_t{0}, unsigned(n));  // masked lanes never fault
  _mm512_mask_storeu_epi8(d, m, _mm512_maskz_loadu_epi8(m, src));
}

void zero_bytes(uint8_t* d, int n) {
  for (; n >= 64; n -= 64, d += 64) _mm512_storeu_si512(d, _mm512_setzero_si512());
  _mm512_mask_storeu_epi8(d, _bzhi_u64(~uint64_t{0}, unsigned(n)), _mm512_setzero_si512());
}

// im2col of pixels [m0, m0 + rows) into a[rows][kp]: taps outside the image and the K tail are 0.
void im2col(const ConvShape& s, const Plan& p, const uint8_t* x, int64_t m0, int rows, uint8_t* a) {
  int ox = int(m0 % s.ow), oy = int(m0 / s.ow % s.oh);
  int64_t n = m0 / (int64_t{s.ow} * s.oh);
  const int span = s.kw * s.c;  // one kernel row of taps, contiguous in x when fully inside
  for (int r = 0; r < rows; ++r, a += p.kp) {
    const int iy0 = oy * s.stride - s.pad_t, ix0 = ox * s.stride - s.pad_l;
    for (int ky = 0; ky < s.kh; ++ky) {
      uint8_t* dst = a + ky * span;
      const int iy = iy0 + ky;
      if (iy < 0 || iy >= s.h) {
        zero_bytes(dst, span);
        continue;
      }
      const uint8_t* row = x + (n * s.h + iy) * s.w * s.c;  // x[n, iy, 0, 0]
      if (ix0 >= 0 && ix0 + s.kw <= s.w) {
        copy_bytes(dst, row + ix0 * s.c, span);
      } else {
        for (int kx = 0; kx < s.kw; ++kx) {
          const int ix = ix0 + kx;
          if (ix < 0 || ix >= s.w)
            zero_bytes(dst + kx * s.c, s.c);
          else
            copy_bytes(dst + kx * s.c, row + ix * s.c, s.c);
        }
      }
    }
    zero_bytes(a + p.k, p.kp - p.k);
    if (++ox == s.ow) {
      ox = 0;
      if (++oy == s.oh) oy = 0, ++n;
    }
  }
}

// ---- micro-kernel --------------------------------------------------------------------------

// out[i][n][16] = sum over k4 steps of a[i][4k..4k+3] . b[n][k][lane][0..3]  (i32, wrapping).
// a: MR rows of stride lda; b: NR panels of stride bstride, 64 bytes per step.
template <int MR, int NR>
void tile(const uint8_t* a, int64_t lda, const int8_t* b, int64_t bstride, int k4, int32_t* out) {
  __m512i acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) acc[i][n] = _mm512_setzero_si512();
  for (int k = 0; k < k4; ++k, b += 64, a += 4) {
    __m512i w[NR];
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) w[n] = _mm512_loadu_si512(b + n * bstride);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      std::memcpy(&v, a + i * lda, 4);
      const __m512i xa = _mm512_set1_epi32(v);  // 4 u8 of pixel i, broadcast to all lanes
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) acc[i][n] = _mm512_dpbusd_epi32(acc[i][n], xa, w[n]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) _mm512_store_si512(out + (i * NR + n) * kLanes, acc[i][n]);
}

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int, int32_t*);

template <int NR, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> tile_row(std::index_sequence<I...>) {
  return {&tile<int(I) + 1, NR>...};
}
constexpr auto kTile1 = tile_row<1>(std::make_index_sequence<kMr[1]>{});
constexpr auto kTile2 = tile_row<2>(std::make_index_sequence<kMr[2]>{});
constexpr auto kTile3 = tile_row<3>(std::make_index_sequence<kMr[3]>{});
constexpr auto kTile4 = tile_row<4>(std::make_index_sequence<kMr[4]>{});

// 1 <= mr <= kMr[nr].
TileFn tile_fn(int mr, int nr) {
  switch (nr) {
    case 1:
      return kTile1[mr - 1];
    case 2:
      return kTile2[mr - 1];
    case 3:
      return kTile3[mr - 1];
    default:
      return kTile4[mr - 1];
  }
}

// ---- epilogue ------------------------------------------------------------------------------

// Per-panel requantization constants, as even/odd i64 lanes for vpmuldq / vpsravq.
struct PanelQ {
  __m512i bias, mult_e, mult_o, multc_e, multc_o, round_e, round_o, shift_e, shift_o;
  __mmask16 mask;  // channels of this panel that exist (O tail)
};

PanelQ panel_q(const ConvEpilogue& e, int o0, int o, bool coarse) {
  PanelQ q;
  const int live = o - o0 < kLanes ? o - o0 : kLanes;
  q.mask = __mmask16((1u << live) - 1);
  q.bias = _mm512_maskz_loadu_epi32(q.mask, e.bias + o0);
  q.mult_e = _mm512_maskz_loadu_epi32(q.mask, e.mult + o0);
  q.mult_o = _mm512_srli_epi64(q.mult_e, 32);
  q.multc_e =
      coarse ? _mm512_maskz_loadu_epi32(q.mask, e.mult_coarse + o0) : _mm512_setzero_si512();
  q.multc_o = _mm512_srli_epi64(q.multc_e, 32);
  const __m512i sh = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(q.mask, e.shift + o0));
  q.shift_e = _mm512_and_si512(sh, _mm512_set1_epi64(0xffffffff));
  q.shift_o = _mm512_srli_epi64(sh, 32);
  // 2^(s-1); s = 0 (dead lanes) gives a count of 2^64-1, which vpsllvq turns into 0.
  const __m512i one = _mm512_set1_epi64(1);
  q.round_e = _mm512_sllv_epi64(one, _mm512_sub_epi64(q.shift_e, one));
  q.round_o = _mm512_sllv_epi64(one, _mm512_sub_epi64(q.shift_o, one));
  return q;
}

// clamp(rshift_round((acc + bias) * mult + acc_c * mult_c, shift), lo, hi) for 16 channels.
__m512i requant(const PanelQ& q, const int32_t* acc, const int32_t* acc_c, __m512i lo, __m512i hi) {
  const __m512i v = _mm512_add_epi32(_mm512_load_si512(acc), q.bias);  // i32, wraps like ref
  __m512i ve = _mm512_mul_epi32(v, q.mult_e);  // even lanes: i32 x i32 -> exact i64
  __m512i vo = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), q.mult_o);
  if (acc_c) {
    const __m512i c = _mm512_load_si512(acc_c);
    ve = _mm512_add_epi64(ve, _mm512_mul_epi32(c, q.multc_e));
    vo = _mm512_add_epi64(vo, _mm512_mul_epi32(_mm512_srli_epi64(c, 32), q.multc_o));
  }
  ve = _mm512_srav_epi64(_mm512_add_epi64(ve, q.round_e), q.shift_e);
  vo = _mm512_srav_epi64(_mm512_add_epi64(vo, q.round_o), q.shift_o);
  ve = _mm512_min_epi64(_mm512_max_epi64(ve, lo), hi);  // now inside out_type: fits 32 bits
  vo = _mm512_min_epi64(_mm512_max_epi64(vo, lo), hi);
  return _mm512_mask_blend_epi32(0xaaaa, ve, _mm512_slli_epi64(vo, 32));
}

// Narrow in registers, then a plain store (full panel) or a masked vmovdqu (O tail): the
// memory forms of vpmovdb/vpmovdw are slow on some cores (Zen 4).
void store16(OutType t, void* y, int64_t i, __m512i v, __mmask16 m) {
  const bool full = m == 0xffff;
  switch (t) {  // values are already clamped into the type: truncating narrows are exact
    case OutType::u8:
    case OutType::i8: {
      const __m128i b = _mm512_cvtepi32_epi8(v);
      int8_t* p = static_cast<int8_t*>(y) + i;
      if (full)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), b);
      else
        _mm_mask_storeu_epi8(p, m, b);
      break;
    }
    case OutType::i16: {
      const __m256i h = _mm512_cvtepi32_epi16(v);
      int16_t* p = static_cast<int16_t*>(y) + i;
      if (full)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), h);
      else
        _mm256_mask_storeu_epi16(p, m, h);
      break;
    }
    case OutType::i32:
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(y) + i, m, v);
      break;
  }
}

// ---- driver --------------------------------------------------------------------------------

size_t avx512_scratch_size(const ConvShape& s) {
  const Plan p = make_plan(s);
  // + 64: CFWS rows read up to 3 bytes past a row (times zero weights); + 64: alignment.
  return p.direct ? 0 : size_t(p.mb) * p.kp + 128;
}

int64_t avx512_num_tasks(const ConvShape& s) {
  const Plan p = make_plan(s);
  return p.mblocks * p.pgroups;
}

void avx512_run(const ConvShape& s, const uint8_t* x, const void* packed, const ConvEpilogue& e,
                void* y, int64_t begin, int64_t end, void* scratch) {
  const Plan p = make_plan(s);
  const int8_t* wmain = static_cast<const int8_t*>(packed);
  const int8_t* wcoarse = wmain + int64_t{p.panels} * kLanes * p.kp;
  uint8_t* abuf =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  const __m512i lo = _mm512_set1_epi64(e.lo), hi = _mm512_set1_epi64(e.hi);
  alignas(64) int32_t acc[kMaxTile * kLanes], acc_c[kMaxTile * kLanes];

  for (int64_t t = begin; t < end; ++t) {
    const int64_t m0 = t / p.pgroups * p.mb;
    const int rows = int(p.m - m0 < p.mb ? p.m - m0 : p.mb);
    const int pbeg = int(t % p.pgroups) * p.task_panels;
    const int pend = pbeg + p.task_panels < p.panels ? pbeg + p.task_panels : p.panels;
    const uint8_t* a = abuf;
    int64_t lda = p.kp;
    if (p.direct)
      a = x + m0 * s.c, lda = s.c;
    else
      im2col(s, p, x, m0, rows, abuf);

    for (int p0 = pbeg; p0 < pend; p0 += p.nr) {
      const int nr = pend - p0 < p.nr ? pend - p0 : p.nr;
      PanelQ q[4];
      for (int n = 0; n < nr; ++n) q[n] = panel_q(e, (p0 + n) * kLanes, s.o, s.coarse);
      for (int r = 0; r < rows; r += p.mr) {
        const int mr = rows - r < p.mr ? rows - r : p.mr;
        const uint8_t* ar = a + r * lda;
        tile_fn(mr, nr)(ar, lda, wmain + int64_t{p0} * kLanes * p.kp, int64_t{kLanes} * p.kp,
                        p.kp / 4, acc);
        if (s.coarse)
          tile_fn(mr, nr)(ar + p.centre, lda, wcoarse + int64_t{p0} * kLanes * p.cp,
                          int64_t{kLanes} * p.cp, p.cp / 4, acc_c);
        for (int i = 0; i < mr; ++i)
          for (int n = 0; n < nr; ++n) {
            const int j = (i * nr + n) * kLanes;
            const __m512i v = requant(q[n], acc + j, s.coarse ? acc_c + j : nullptr, lo, hi);
            store16(e.out_type, y, (m0 + r + i) * s.o + (p0 + n) * kLanes, v, q[n].mask);
          }
      }
    }
  }
}

}  // namespace

extern const ConvKernel kConvAvx512 = {
    Isa::avx512,         "avx512_vnni",    avx512_packed_size, avx512_pack,
    avx512_scratch_size, avx512_num_tasks, avx512_run,
};

}  // namespace fq::k
