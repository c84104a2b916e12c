// AVX2 variant of the matmul family: vpmaddwd on sign-extended 16-bit operands.
//
// Why not vpmaddubsw: it adds two u8*s8 products into a *saturating* i16, and with A offset to u8
// two products reach 2*255*128 = 65280 > 32767, so it is not bit-exact for arbitrary int8 data.
// vpmaddwd (i16*i16, pairs summed into i32) is exact for every input: each step loads one 16-byte
// slice of int8 weights (8 columns x 2 k), sign-extends it (vpmovsxbw) and multiplies it with each
// row's 2 activations (pre-widened to i16 in scratch, broadcast as one 32-bit element): the 8
// products land in column order, one accumulator per row and panel, tiles of 4 rows x 2 panels
// (A widened into a k-pair interleaved layout, widen_interleaved).
// Where the CPU has AVX-VNNI (cpu_features().avxvnni), the int8 weights (packed 4 k per column
// there) feed vpdpbusd on ymm instead: A offset to a+128 (u8) and the offset removed with pack-time column sums, exactly
// as in the AVX-512 variant (cbias = bias - 128*sum_k w; int4: b16v = 16*(bias - 128*sum_g gm*
// sum q)). Both paths give the reference's bytes; avxvnni_evex.cc builds the VNNI path with the
// EVEX encoding of the same instruction so the tests run it on AVX-512 machines too.
//
// Packed layout: [params: P8 panels][weights]; panel = 8 output columns.
//   int8 panel: [kp/2 steps][8 columns][2 k] int8 (vpmaddwd), or [kp/4 steps][8 columns][4 k]
//     where the CPU has AVX-VNNI (vpdpbusd); kp = round_up(K, 4), zero padded. pack() and run()
//     read the same CPU feature, so a buffer is always read in the layout it was written in.
//   int4 panel: per group: [G/8 step pairs][8 columns][4 bytes], low nibbles = k-step 2j, high
//     nibbles = 2j+1 (unpacked as 16q: exact s8), then gm int16[8].
//   params int8: bias i32[8], mw i32[8], cbias i32[8]; int4: b16 = 16*bias i64[8], gs i64[8],
//   b16v i64[8].
// Units: (block of rows) x (chunk of panels). Dynamic requantization: when a unit has whole rows
// (one chunk of panels) it requantizes them itself (one pass); else pass 0 writes its values and
// per-chunk row magnitudes (the OR of |v|: the shift needs only bitlen(max |v|)) to the workspace
// and pass 1 requantizes whole rows. The values are a = acc + bias (i32) for int8 weights (v =
// a * mw is formed again when the row is rounded: finalize_row8) and v (i64) for int4.
#include <immintrin.h>

#include <cstring>

#include "fq/kernels/cpu.h"
#include "fq/kernels/matmul.h"

#ifndef FQ_AVX2_DPBUSD  // AVX-VNNI (VEX) unless avxvnni_evex.cc says otherwise
#define FQ_AVX2_DPBUSD(acc, a, b) _mm256_dpbusd_avx_epi32(acc, a, b)
#define FQ_AVX2_VNNI_TARGET __attribute__((target("avxvnni")))
#define FQ_AVX2_SYMBOL kMatmulAvx2
#define FQ_AVX2_NAME "avx2"
#define FQ_AVX2_USE_VNNI() (cpu_features().avxvnni)
#endif

namespace fq::k {
namespace {

constexpr int kC = 8;  // columns per panel
constexpr int kMr = 8;  // rows: the planning granule (units have >= kMr rows where M allows)
constexpr int kTr = 4;  // rows per micro-tile (every tile kind)

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
template <class T>
T* align64(void* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

struct Plan {
  bool i4 = false, dyn = false;
  int n = 0, k = 0, g = 0, ng = 0, panels = 0;
  int64_t m = 0, kp = 0, par_bytes = 0, panel_bytes = 0;
  int64_t mb = 0, mblocks = 0;
  int ppc = 0, nchunks = 0;  // panels per chunk, chunks
  int64_t np = 0;            // panels * 8
  int64_t params() const { return round_up(panels * par_bytes, 64); }
  int64_t group_bytes() const { return int64_t{g} / 8 * 32 + 16; }
};

Plan make_plan(const MatmulShape& s, const MatmulEpilogue* e) {
  Plan p;
  p.i4 = s.format == WeightFormat::i4;
  p.dyn = e && e->op == MatmulOp::dynamic;
  p.n = s.n, p.k = s.k, p.m = s.m;
  p.panels = int(ceil_div(s.n, kC));
  p.np = int64_t{p.panels} * kC;
  if (p.i4) {
    p.g = s.group, p.ng = int(ceil_div(s.k, s.group)), p.kp = int64_t{p.ng} * p.g;
    p.par_bytes = 3 * kC * 8, p.panel_bytes = p.ng * p.group_bytes();
  } else {
    p.kp = round_up(s.k, 4);
    p.par_bytes = 3 * kC * 4, p.panel_bytes = p.kp / 4 * 32;
  }
  // Rows per unit: the widened A block stays in L2 while the unit's panels stream through once;
  // split N first, then M, until there are kUnits units (GEMV: finer, it is bandwidth-bound, but
  // >= 64 KB of weights per unit, as in the AVX-512 plan: a small GEMV is one unit, not 8-32 units
  // each paying the unit's fixed cost).
  const int64_t wbytes = int64_t{p.panels} * p.panel_bytes;
  const int64_t wunits = wbytes / (64 * 1024);
  if (s.m == 1 && wunits <= 1) {  // a small GEMV: one unit (and no run-time divisions: decode calls this per token)
    p.mb = p.mblocks = 1;
    p.ppc = p.panels, p.nchunks = 1;
    return p;
  }
  // GEMM: up to 8 units of >= 2^17 MACs (a 64x64x64 product is 2 units, not 8 that each widen
  // all of A again).
  const int64_t gunits = s.m * p.np * p.kp >> 17;
  const int64_t kUnits = s.m > 1 ? (gunits < 1 ? 1 : gunits > 8 ? 8 : gunits) : wunits < 1 ? 1 : wunits > 32 ? 32 : wunits;
  int64_t mb = (256 * 1024) / (2 * p.kp);
  mb = mb < kMr ? kMr : mb > 128 ? 128 : mb;
  int64_t mblocks = ceil_div(s.m, mb);
  // Dynamic requantization with weights that stay in L2 and enough rows: split M only, so each
  // unit has whole rows and requantizes them itself (one pass, v still in L1).
  const bool rows_only = p.dyn && wbytes <= 256 * 1024 && s.m >= kUnits * kMr;
  if (rows_only && mblocks < kUnits) mblocks = kUnits;
  const int64_t need = rows_only ? 1 : ceil_div(kUnits, mblocks > 0 ? mblocks : 1);
  const int64_t chunks = need < p.panels ? need : p.panels;
  if (mblocks * chunks < kUnits) {
    const int64_t more = ceil_div(kUnits, chunks), cap = ceil_div(s.m, kMr);
    const int64_t want = more < cap ? more : cap;
    mblocks = want > mblocks ? want : mblocks;
  }
  p.mblocks = s.m > 0 ? (mblocks < 1 ? 1 : mblocks) : 0;
  p.mb = p.mblocks ? ceil_div(s.m, p.mblocks) : 1;
  p.mblocks = p.mblocks ? ceil_div(s.m, p.mb) : 0;
  p.ppc = int(ceil_div(p.panels, chunks));
  p.nchunks = int(ceil_div(p.panels, p.ppc));
  return p;
}

size_t avx2_packed_size(const MatmulShape& s) {
  const Plan p = make_plan(s, nullptr);
  return size_t(p.params() + p.panels * p.panel_bytes);
}

void avx2_pack(const MatmulShape& s, const MatmulWeights& w_in, void* packed) {
  DecodedWeights decoded;  // codebook weights: the int8 matrix they stand for
  const MatmulWeights w = matmul_as_i8(s, w_in, &decoded);
  const Plan p = make_plan(s, nullptr);
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, avx2_packed_size(s));
  const int64_t wrow = p.i4 ? (s.k + 1) / 2 : s.k;
  auto q4 = [&](int n, int k) -> int {
    if (n >= s.n || k >= s.k) return 0;
    const int nib = (static_cast<const uint8_t*>(w.w)[n * wrow + k / 2] >> ((k & 1) * 4)) & 15;
    return nib >= 8 ? nib - 16 : nib;
  };
  for (int pn = 0; pn < p.panels; ++pn) {
    uint8_t* par = base + pn * p.par_bytes;
    int8_t* dst = reinterpret_cast<int8_t*>(base + p.params() + pn * p.panel_bytes);
    for (int c = 0; c < kC; ++c) {
      const int n = pn * kC + c;
      const int32_t bias = n < s.n && w.bias ? w.bias[n] : 0;
      if (!p.i4) {
        uint32_t sum = 0;
        for (int k = 0; k < s.k && n < s.n; ++k) sum += uint32_t(static_cast<const int8_t*>(w.w)[n * wrow + k]);
        reinterpret_cast<int32_t*>(par)[c] = bias;
        reinterpret_cast<int32_t*>(par)[kC + c] = n < s.n ? w.mult[n] : 0;
        reinterpret_cast<int32_t*>(par)[2 * kC + c] = int32_t(uint32_t(bias) - 128u * sum);
      } else {
        int64_t c128 = 0;
        for (int g = 0; g < p.ng && n < s.n; ++g) {
          int64_t sq = 0;
          for (int k = g * p.g; k < (g + 1) * p.g; ++k) sq += q4(n, k);
          c128 += sq * w.gmult[int64_t{n} * p.ng + g];
        }
        reinterpret_cast<int64_t*>(par)[c] = 16 * int64_t{bias};
        reinterpret_cast<int64_t*>(par)[kC + c] = n < s.n ? w.gshift[n] : 0;
        reinterpret_cast<int64_t*>(par)[2 * kC + c] = 16 * (int64_t{bias} - 128 * c128);
      }
    }
    if (!p.i4) {
      const int kw = FQ_AVX2_USE_VNNI() ? 4 : 2;  // k per column in one step
      for (int64_t ks = 0; ks < p.kp / kw; ++ks)
        for (int c = 0; c < kC; ++c)
          for (int j = 0; j < kw; ++j) {
            const int n = pn * kC + c;
            const int64_t k = ks * kw + j;
            *dst++ = n < s.n && k < s.k ? static_cast<const int8_t*>(w.w)[n * wrow + k] : 0;
          }
      continue;
    }
    for (int g = 0; g < p.ng; ++g) {
      for (int pair = 0; pair < p.g / 8; ++pair)
        for (int c = 0; c < kC; ++c)
          for (int j = 0; j < 4; ++j) {
            const int n = pn * kC + c, k0 = g * p.g + pair * 8 + j;
            *dst++ = int8_t((q4(n, k0) & 15) | ((q4(n, k0 + 4) & 15) << 4));
          }
      int16_t* gm = reinterpret_cast<int16_t*>(dst);
      for (int c = 0; c < kC; ++c) {
        const int n = pn * kC + c;
        gm[c] = n < s.n ? w.gmult[int64_t{n} * p.ng + g] : 0;
      }
      dst += 16;
    }
  }
}

// ---- compute ----------------------------------------------------------------------------------

// Pair sums (c0 c0 c1 c1 c2 c2 c3 c3 | c4 ...) -> columns 0..7 (i32, wrapping).
inline __m256i fold(__m256i lo, __m256i hi) {
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xd8);
}

// int8: acc[j * 4 + i] (8 columns, i32) for 4 rows of widened A, interleaved by k pair ([k2][4
// rows][2 k]: one pointer serves every row, and the 4 row strides need no registers), and NP
// consecutive panels (stride pb bytes) in the pair layout ([k2 steps][8 columns][2 k]): per step
// NP weight loads and 4 broadcasts for 4 NP vpmaddwd (8 rows x 1 panel: 8 broadcasts for 8).
// (The accumulators are GCC vector-extension values updated with +=: written with
// _mm256_add_epi32, GCC 12 adds into the product's register and copies it back.)
template <int NP>
__attribute__((always_inline)) inline void tile8(const int16_t* a, const int8_t* b, int64_t pb, int64_t k2, __m256i* out) {
  __v8si acc[NP][kTr];
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j)
#pragma GCC unroll 4
    for (int i = 0; i < kTr; ++i) acc[j][i] = __v8si{};
  for (int64_t k = 0; k < k2; ++k, b += 16, a += 2 * kTr) {
    __m256i w[NP];
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) w[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j * pb)));
#pragma GCC unroll 4
    for (int i = 0; i < kTr; ++i) {
      int32_t v;
      std::memcpy(&v, a + 2 * i, 4);
      const __m256i x = _mm256_set1_epi32(v);
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) acc[j][i] += reinterpret_cast<__v8si>(_mm256_madd_epi16(x, w[j]));
    }
  }
  for (int j = 0; j < NP; ++j)
    for (int i = 0; i < kTr; ++i) out[j * kTr + i] = reinterpret_cast<__m256i>(acc[j][i]);
}

// Widens rows [0, rows) of A (int8, stride lda, K = k) to the interleaved i16 layout of tile8,
// blocks of 4 rows of kp (even) each; missing rows and k >= K are zeros. Per 4 rows and 16 k: 4
// sign extensions and a 4 x 8 transpose of k pairs (dwords).
void widen_interleaved(const int8_t* a, int64_t lda, int64_t rows, int64_t k, int64_t kp, int16_t* dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += kTr, dst += kTr * kp) {
    int64_t kk = 0;
    if (r0 + kTr <= rows) {
      for (; kk + 16 <= k; kk += 16) {
        __m256i r[kTr];
        for (int i = 0; i < kTr; ++i)
          r[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + (r0 + i) * lda + kk)));
        const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);  // pairs 0 1 | 4 5
        const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);  // pairs 2 3 | 6 7
        __m256i* o = reinterpret_cast<__m256i*>(dst + kk * kTr);
        _mm256_storeu_si256(o, _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
        _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
        _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
      }
    }
    for (; kk < kp; ++kk)
      for (int i = 0; i < kTr; ++i)
        dst[(kk >> 1) * 2 * kTr + 2 * i + (kk & 1)] = r0 + i < rows && kk < k ? a[(r0 + i) * lda + kk] : 0;
  }
}

// int8, one row: acc[j] (8 columns, i32) for NP consecutive panels (stride pb bytes) in the pair
// layout; one broadcast of the row's k pair serves all of them.
template <int NP>
void gemv_tile(const int16_t* a, const int8_t* b, int64_t pb, int64_t k2, __m256i* out) {
  __v8si acc[NP];
#pragma GCC unroll 4
  for (int j = 0; j < NP; ++j) acc[j] = __v8si{};
  for (int64_t k = 0; k < k2; ++k, b += 16) {
    int32_t v;
    std::memcpy(&v, a + 2 * k, 4);
    const __m256i x = _mm256_set1_epi32(v);
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j)
      acc[j] += reinterpret_cast<__v8si>(
          _mm256_madd_epi16(x, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j * pb)))));
  }
  for (int j = 0; j < NP; ++j) out[j] = reinterpret_cast<__m256i>(acc[j]);
}

// int4: sums[i] = sum_g acc16_g * gm as i64 (columns 0-3 in [2i], 4-7 in [2i+1]).
template <int MR>
void tile4(const int16_t* a, int64_t lda, const uint8_t* b, int G, int ng, int64_t gbytes, __m256i* out) {
  __m256i s0[MR], s1[MR];
  for (int i = 0; i < MR; ++i) s0[i] = s1[i] = _mm256_setzero_si256();
  const __m256i f0 = _mm256_set1_epi8(char(0xF0));
  for (int g = 0; g < ng; ++g, b += gbytes, a += G) {
    __m256i lo[MR], hi[MR];
    for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
    const uint8_t* bp = b;
    const int16_t* ap = a;
    for (int j = 0; j < G / 8; ++j, bp += 32, ap += 8) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
      const __m256i wl = _mm256_and_si256(_mm256_slli_epi16(w, 4), f0), wh = _mm256_and_si256(w, f0);
      const __m256i l0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(wl));
      const __m256i l1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(wl, 1));
      const __m256i h0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(wh));
      const __m256i h1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(wh, 1));
      for (int i = 0; i < MR; ++i) {
        int64_t v0, v1;
        std::memcpy(&v0, ap + i * lda, 8);
        std::memcpy(&v1, ap + i * lda + 4, 8);
        const __m256i x0 = _mm256_set1_epi64x(v0), x1 = _mm256_set1_epi64x(v1);
        lo[i] = _mm256_add_epi32(lo[i], _mm256_add_epi32(_mm256_madd_epi16(x0, l0), _mm256_madd_epi16(x1, h0)));
        hi[i] = _mm256_add_epi32(hi[i], _mm256_add_epi32(_mm256_madd_epi16(x0, l1), _mm256_madd_epi16(x1, h1)));
      }
    }
    const __m128i gm = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bp));  // int16[8]
    const __m256i gm0 = _mm256_cvtepi16_epi64(gm), gm1 = _mm256_cvtepi16_epi64(_mm_srli_si128(gm, 8));
    for (int i = 0; i < MR; ++i) {
      const __m256i acc = fold(lo[i], hi[i]);
      s0[i] = _mm256_add_epi64(s0[i], _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)), gm0));
      s1[i] = _mm256_add_epi64(s1[i], _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1)), gm1));
    }
  }
  for (int i = 0; i < MR; ++i) out[2 * i] = s0[i], out[2 * i + 1] = s1[i];
}

// AVX-VNNI: acc[i] (8 columns, i32) for MR rows of offset A (u8, stride lda) and one panel.
template <int MR>
FQ_AVX2_VNNI_TARGET void tile8v(const uint8_t* a, int64_t lda, const int8_t* b, int64_t k4, __m256i* out) {
  __m256i acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_si256();
  for (int64_t k = 0; k < k4; ++k, b += 32, a += 4) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      std::memcpy(&v, a + i * lda, 4);
      acc[i] = FQ_AVX2_DPBUSD(acc[i], _mm256_set1_epi32(v), w);
    }
  }
  for (int i = 0; i < MR; ++i) out[i] = acc[i];
}

template <int MR>
FQ_AVX2_VNNI_TARGET void tile4v(const uint8_t* a, int64_t lda, const uint8_t* b, int G, int ng, int64_t gbytes,
                                __m256i* out) {
  __m256i s0[MR], s1[MR];
  for (int i = 0; i < MR; ++i) s0[i] = s1[i] = _mm256_setzero_si256();
  const __m256i f0 = _mm256_set1_epi8(char(0xF0));
  for (int g = 0; g < ng; ++g, b += gbytes, a += G) {
    __m256i acc[MR];
    for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_si256();
    const uint8_t* bp = b;
    const uint8_t* ap = a;
    for (int j = 0; j < G / 8; ++j, bp += 32, ap += 8) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
      const __m256i lo = _mm256_and_si256(_mm256_slli_epi16(w, 4), f0), hi = _mm256_and_si256(w, f0);
      for (int i = 0; i < MR; ++i) {
        int32_t v0, v1;
        std::memcpy(&v0, ap + i * lda, 4);
        std::memcpy(&v1, ap + i * lda + 4, 4);
        acc[i] = FQ_AVX2_DPBUSD(acc[i], _mm256_set1_epi32(v0), lo);
        acc[i] = FQ_AVX2_DPBUSD(acc[i], _mm256_set1_epi32(v1), hi);
      }
    }
    const __m128i gm = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bp));
    const __m256i gm0 = _mm256_cvtepi16_epi64(gm), gm1 = _mm256_cvtepi16_epi64(_mm_srli_si128(gm, 8));
    for (int i = 0; i < MR; ++i) {
      s0[i] = _mm256_add_epi64(s0[i], _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc[i])), gm0));
      s1[i] = _mm256_add_epi64(s1[i], _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc[i], 1)), gm1));
    }
  }
  for (int i = 0; i < MR; ++i) out[2 * i] = s0[i], out[2 * i + 1] = s1[i];
}

// ---- epilogue (i64 lanes, 4 per ymm) ---------------------------------------------------------

inline __m256i sra64(__m256i x, __m256i s) {  // arithmetic >> by per-lane counts (AVX2 has none)
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(x, sign), s), sign);
}
inline __m256i rshift_round4(__m256i v, __m256i s) {
  const __m256i one = _mm256_set1_epi64x(1);  // 2^(s-1); s = 0 gives count 2^64-1 -> 0
  return sra64(_mm256_add_epi64(v, _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one))), s);
}
inline __m256i clamp64(__m256i v, int64_t lo, int64_t hi) {
  const __m256i l = _mm256_set1_epi64x(lo), h = _mm256_set1_epi64x(hi);
  v = _mm256_blendv_epi8(v, l, _mm256_cmpgt_epi64(l, v));
  return _mm256_blendv_epi8(v, h, _mm256_cmpgt_epi64(v, h));
}
inline __m256i abs64(__m256i v) {
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
  return _mm256_sub_epi64(_mm256_xor_si256(v, sign), sign);
}
inline uint64_t or_lanes(__m256i v) {
  const __m128i o = _mm_or_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return uint64_t(_mm_cvtsi128_si64(_mm_or_si128(o, _mm_unpackhi_epi64(o, o))));
}

// Saturate 8 i64 to `t` and store the first `live` elements at y.
inline void store8(OutType t, void* y, __m256i v0, __m256i v1, int live) {
  const int b = t == OutType::i8 ? 8 : t == OutType::i16 ? 16 : 32;
  const int64_t hi = (int64_t{1} << (b - 1)) - 1;
  v0 = clamp64(v0, -hi - 1, hi), v1 = clamp64(v1, -hi - 1, hi);
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  const __m256i d = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(v0, idx),
                                              _mm256_permutevar8x32_epi32(v1, idx), 0x20);  // 8 x i32
  alignas(32) int32_t buf[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(buf), d);
  if (t == OutType::i32) {
    std::memcpy(y, buf, size_t(live) * 4);
  } else if (t == OutType::i16) {
    int16_t o[8];
    for (int i = 0; i < 8; ++i) o[i] = int16_t(buf[i]);
    std::memcpy(y, o, size_t(live) * 2);
  } else {
    int8_t o[8];
    for (int i = 0; i < 8; ++i) o[i] = int8_t(buf[i]);
    std::memcpy(y, o, size_t(live));
  }
}

inline size_t osize(OutType t) { return t == OutType::i32 ? 4 : t == OutType::i16 ? 2 : 1; }

int bits(OutType t) { return t == OutType::i16 ? 16 : 8; }

// ---- driver -----------------------------------------------------------------------------------

// Dynamic requantization, int8 weights: units keep a = acc + bias (i32, the wrapping accumulator)
// instead of v = a * mw (i64): half the bytes, and the row magnitude needs no 64-bit abs. |v| =
// |a| * |mw| exactly (vpabsd gives 0x80000000 for INT32_MIN, which vpmuludq reads as 2^31), on the
// even lanes and, shifted down 32, on the odd lanes; the OR of those has the bitlen of max |v|.
// mwa = |mw| of the panel, mwo = mwa >> 32 (its odd lanes).
inline __m256i mag8(__m256i a, __m256i mwa, __m256i mwo) {
  const __m256i ab = _mm256_abs_epi32(a);
  return _mm256_or_si256(_mm256_mul_epu32(ab, mwa), _mm256_mul_epu32(_mm256_srli_epi64(ab, 32), mwo));
}

// Dynamic requantization, int8 weights, vpmaddwd: tile8 of NP panels from panel pn and its
// epilogue with the accumulators still in registers: a of the first mr rows to raw (row stride ld),
// |v| ORed into rmax[i].
template <int NP>
void dyn_tile8(const Plan& p, const int16_t* a, const uint8_t* packed, int pn, int mr, int32_t* raw, int64_t ld,
               __m256i* rmax) {
  __m256i acc[NP * kTr];
  tile8<NP>(a, reinterpret_cast<const int8_t*>(packed + p.params() + pn * p.panel_bytes), p.panel_bytes, p.kp / 2, acc);
  for (int j = 0; j < NP; ++j) {
    const uint8_t* par = packed + (pn + j) * p.par_bytes;
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(par));
    const __m256i mwa = _mm256_abs_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(par + 32)));
    const __m256i mwo = _mm256_srli_epi64(mwa, 32);
    for (int i = 0; i < kTr; ++i) {
      if (i >= mr) break;
      const __m256i a32 = _mm256_add_epi32(acc[j * kTr + i], bias);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw + i * ld + int64_t{pn + j} * kC), a32);
      rmax[i] = _mm256_or_si256(rmax[i], mag8(a32, mwa, mwo));
    }
  }
}

// GEMV, int8 weights, dynamic requantization, vpmaddwd: pass 0 of one row over panels [p0, p1)
// with the tile, the scale and the row magnitude kept in registers (the general loop below keeps
// them in arrays indexed by the tile's row count, which spill). Writes a to raw; returns the OR
// of |v| (same bitlen as max |v|).
uint64_t gemv8_dynamic(const Plan& p, const int16_t* a, const uint8_t* packed, int p0, int p1, int32_t* raw) {
  __m256i vmax = _mm256_setzero_si256();
  __m256i accs[4];
  for (int pn = p0; pn < p1; ++pn) {
    const uint8_t* par = packed + pn * p.par_bytes;
    const int8_t* wp = reinterpret_cast<const int8_t*>(packed + p.params() + pn * p.panel_bytes);
    const int j = (pn - p0) % 4;
    if (j == 0) {  // the next (up to) 4 panels at once: one broadcast per k pair for all of them
      switch (p1 - pn < 4 ? p1 - pn : 4) {
        case 1: gemv_tile<1>(a, wp, p.panel_bytes, p.kp / 2, accs); break;
        case 2: gemv_tile<2>(a, wp, p.panel_bytes, p.kp / 2, accs); break;
        case 3: gemv_tile<3>(a, wp, p.panel_bytes, p.kp / 2, accs); break;
        default: gemv_tile<4>(a, wp, p.panel_bytes, p.kp / 2, accs); break;
      }
    }
    const __m256i a32 = _mm256_add_epi32(accs[j], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(par)));
    const __m256i mwa = _mm256_abs_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(par + 32)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw + int64_t{pn} * kC), a32);
    vmax = _mm256_or_si256(vmax, mag8(a32, mwa, _mm256_srli_epi64(mwa, 32)));  // padded columns: a = 0
  }
  return or_lanes(vmax);
}

size_t avx2_workspace_size(const MatmulShape& s, const MatmulEpilogue& e) {
  const Plan p = make_plan(s, &e);
  return p.dyn ? size_t(round_up(p.m * p.np * 8, 64) + p.m * p.nchunks * 8) : 0;
}
size_t avx2_scratch_size(const MatmulShape& s, const MatmulEpilogue& e) {
  const Plan p = make_plan(s, &e);
  return size_t(round_up(p.mb, kTr) * p.kp * 2 + 64);
}
int avx2_num_passes(const MatmulShape& s, const MatmulEpilogue& e) {
  return e.op == MatmulOp::dynamic && make_plan(s, &e).nchunks > 1 ? 2 : 1;
}
int64_t avx2_num_tasks(const MatmulShape& s, const MatmulEpilogue& e, int pass) {
  const Plan p = make_plan(s, &e);
  return pass == 0 ? p.mblocks * p.nchunks : p.m;
}

// The dynamic row shift of row m from mag (written to row_shift) and the constants of
// rshift_round(v, sh) = ((v + add) >>> sh) - sub.
struct RowRound {
  __m256i add, sub;
  __m256i cnt;   // (a per-lane count: vpsrlvq is one uop on Intel, the xmm-count form two)
};
inline RowRound row_round(const MatmulArgs& x, int64_t m, uint64_t mag) {
  const int bitlen = mag ? 64 - __builtin_clzll(mag) : 0;
  const int sh = bitlen - (bits(x.e.out_type) - 1) > 0 ? bitlen - (bits(x.e.out_type) - 1) : 0;
  x.e.row_shift[m] = int8_t(sh);
  return {_mm256_set1_epi64x(sh ? int64_t((uint64_t{1} << 62) + (uint64_t{1} << (sh - 1))) : 0),
          _mm256_set1_epi64x(sh ? int64_t{1} << (62 - sh) : 0), _mm256_set1_epi64x(sh)};
}
inline __m256i round4(__m256i v, const RowRound& rr) {
  return _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(v, rr.add), rr.cnt), rr.sub);
}
// Stores the first `live` of 8 i16 values (in order) at y (i8: narrowed by a saturating pack).
inline void store_cols8(bool i8, uint8_t* y, __m128i h, int live) {
  if (i8) {
    const __m128i b = _mm_packs_epi16(h, h);
    if (live == kC) _mm_storel_epi64(reinterpret_cast<__m128i*>(y), b);
    else std::memcpy(y, &b, size_t(live));
  } else if (live == kC) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y), h);
  } else {
    std::memcpy(y, &h, size_t(live) * 2);
  }
}

// Dynamic requantization of row m from v (raw, i64, |v| < 2^62) and mag (the OR of |v|, or max
// |v|). rshift_round in the offset form (no overflow: v + 2^62 is in (0, 2^63)); sh = 0 leaves v.
// The result is within +-2^(bits-1), so the saturating packs give sat_T.
void finalize_row(const Plan& p, const MatmulArgs& x, int64_t m, const int64_t* raw, uint64_t mag) {
  const RowRound rr = row_round(x, m, mag);
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  const auto lo4 = [&](const int64_t* r) {  // 4 rounded values, as i32
    const __m256i q = round4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r)), rr);
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(q, idx));
  };
  const bool i8 = x.e.out_type == OutType::i8;
  uint8_t* y = static_cast<uint8_t*>(x.y) + m * x.ldy * int64_t(osize(x.e.out_type));
  for (int64_t n0 = 0; n0 < p.n; n0 += kC)
    store_cols8(i8, y + n0 * (i8 ? 1 : 2), _mm_packs_epi32(lo4(raw + n0), lo4(raw + n0 + 4)),
                p.n - n0 < kC ? int(p.n - n0) : kC);
}

// finalize_row for int8 weights from a (i32, raw row of a = acc + bias) and the panels' mw:
// v = a * mw on the even lanes and on the odd lanes (shifted down 32), each rounded as above and
// merged back into column order (the odd results' low dwords into the high dwords).
void finalize_row8(const Plan& p, const MatmulArgs& x, int64_t m, const int32_t* a, const uint8_t* packed, uint64_t mag) {
  const RowRound rr = row_round(x, m, mag);
  const auto cols8 = [&](int pn) {  // panel pn's 8 rounded values, i32, in column order
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + pn * kC));
    const __m256i mw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + pn * p.par_bytes + 32));
    const __m256i qe = round4(_mm256_mul_epi32(av, mw), rr);
    const __m256i qo = round4(_mm256_mul_epi32(_mm256_srli_epi64(av, 32), _mm256_srli_epi64(mw, 32)), rr);
    return _mm256_blend_epi32(qe, _mm256_slli_epi64(qo, 32), 0xAA);
  };
  const bool i8 = x.e.out_type == OutType::i8;
  uint8_t* y = static_cast<uint8_t*>(x.y) + m * x.ldy * int64_t(osize(x.e.out_type));
  int pn = 0;
  if (i8) {
    for (; (pn + 4) * kC <= p.n; pn += 4) {  // 32 columns: two packs, then dwords back in order
      const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(cols8(pn), cols8(pn + 1)),
                                           _mm256_packs_epi32(cols8(pn + 2), cols8(pn + 3)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + pn * kC),
                          _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
  } else {
    for (; (pn + 2) * kC <= p.n; pn += 2)  // 16 columns
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + pn * kC * 2),
                          _mm256_permute4x64_epi64(_mm256_packs_epi32(cols8(pn), cols8(pn + 1)), 0xD8));
  }
  for (; pn < p.panels; ++pn) {
    const int64_t n0 = int64_t{pn} * kC;
    const __m256i c = cols8(pn);
    store_cols8(i8, y + n0 * (i8 ? 1 : 2), _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1)),
                p.n - n0 < kC ? int(p.n - n0) : kC);
  }
}

void avx2_run(const MatmulShape& s, const MatmulArgs& x, int pass, int64_t begin, int64_t end,
              void* scratch) {
  const Plan p = make_plan(s, &x.e);
  const MatmulEpilogue& e = x.e;
  const uint8_t* packed = static_cast<const uint8_t*>(x.packed);
  int64_t* raw = static_cast<int64_t*>(x.workspace);  // dynamic, int4: v [m][np]
  int32_t* raw32 = static_cast<int32_t*>(x.workspace);  // dynamic, int8: a [m][np]
  uint64_t* ws_max = p.dyn ? reinterpret_cast<uint64_t*>(static_cast<uint8_t*>(x.workspace) + round_up(p.m * p.np * 8, 64)) : nullptr;
  if (pass == 1) {
    for (int64_t m = begin; m < end; ++m) {
      uint64_t mag = 0;
      for (int c = 0; c < p.nchunks; ++c) mag |= ws_max[m * p.nchunks + c];
      if (p.i4) finalize_row(p, x, m, raw + m * p.np, mag);
      else finalize_row8(p, x, m, raw32 + m * p.np, packed, mag);
    }
    return;
  }
  int16_t* abuf = align64<int16_t>(scratch);
  uint8_t* abuf8 = align64<uint8_t>(scratch);  // VNNI: a + 128 as u8, same rows
  const bool vnni = FQ_AVX2_USE_VNNI();
  for (int64_t t = begin; t < end; ++t) {
    const int64_t m0 = t / p.nchunks * p.mb;
    const int64_t rows = p.m - m0 < p.mb ? p.m - m0 : p.mb;
    const int chunk = int(t % p.nchunks);
    const int p0 = chunk * p.ppc, p1 = p0 + p.ppc < p.panels ? p0 + p.ppc : p.panels;
    for (int64_t r = 0; r < rows && vnni; ++r) {  // a + 128 (u8), padded with a = 0
      const int8_t* src = x.a + (m0 + r) * x.lda;
      uint8_t* dst = abuf8 + r * p.kp;
      int64_t k = 0;
      for (; k + 32 <= s.k; k += 32)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k),
                            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k)),
                                             _mm256_set1_epi8(char(0x80))));
      for (; k < s.k; ++k) dst[k] = uint8_t(src[k] ^ 0x80);
      for (; k < p.kp; ++k) dst[k] = 0x80;
    }
    const bool gemv = rows == 1 && p.dyn && !p.i4 && !vnni;
    if (!vnni && !p.i4 && !gemv) widen_interleaved(x.a + m0 * x.lda, x.lda, rows, s.k, p.kp, abuf);
    for (int64_t r = 0; r < rows && !vnni && (p.i4 || gemv); ++r) {  // widen A rows to i16, zero padded to kp
      const int8_t* src = x.a + (m0 + r) * x.lda;
      int16_t* dst = abuf + r * p.kp;
      int64_t k = 0;
      for (; k + 16 <= s.k; k += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k),
                            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
      for (; k < s.k; ++k) dst[k] = src[k];
      for (; k < p.kp; ++k) dst[k] = 0;
    }
    const bool whole = p.dyn && p.nchunks == 1;  // this unit requantizes its rows (one pass)
    if (gemv) {
      const uint64_t mag = gemv8_dynamic(p, abuf, packed, p0, p1, raw32 + m0 * p.np);
      if (whole) finalize_row8(p, x, m0, raw32 + m0 * p.np, packed, mag);
      else ws_max[m0 * p.nchunks + chunk] = mag;
      continue;
    }
    __m256i rmax[kTr], pair[2 * kTr];  // pair: tile8's accumulators of two panels
    for (int64_t r0 = 0; r0 < rows; r0 += kTr) {
      const int mr = int(rows - r0 < kTr ? rows - r0 : kTr);
      for (int i = 0; i < kTr; ++i) rmax[i] = _mm256_setzero_si256();
      if (p.dyn && !p.i4 && !vnni) {  // the tiles with their epilogue, two panels at a time
        int32_t* rr = raw32 + (m0 + r0) * p.np;
        int pn = p0;
        for (; pn + 2 <= p1; pn += 2) dyn_tile8<2>(p, abuf + r0 * p.kp, packed, pn, mr, rr, p.np, rmax);
        if (pn < p1) dyn_tile8<1>(p, abuf + r0 * p.kp, packed, pn, mr, rr, p.np, rmax);
      }
      for (int pn = p0; pn < p1 && !(p.dyn && !p.i4 && !vnni); ++pn) {
        const uint8_t* par = packed + pn * p.par_bytes;
        const uint8_t* wp = packed + p.params() + pn * p.panel_bytes;
        __m256i v[2 * kTr];
        if (!p.i4) {
          __m256i acc[kTr];
          const int8_t* b = reinterpret_cast<const int8_t*>(wp);
          if (!vnni) {
            if ((pn - p0) % 2 == 0) {  // this panel and the next (if any) at once
              if (pn + 1 < p1) tile8<2>(abuf + r0 * p.kp, b, p.panel_bytes, p.kp / 2, pair);
              else tile8<1>(abuf + r0 * p.kp, b, p.panel_bytes, p.kp / 2, pair);
            }
            for (int i = 0; i < kTr; ++i) acc[i] = pair[((pn - p0) % 2) * kTr + i];
          } else {
            const uint8_t* a8 = abuf8 + r0 * p.kp;
            switch (mr) {
              case 1: tile8v<1>(a8, p.kp, b, p.kp / 4, acc); break;
              case 2: tile8v<2>(a8, p.kp, b, p.kp / 4, acc); break;
              case 3: tile8v<3>(a8, p.kp, b, p.kp / 4, acc); break;
              default: tile8v<4>(a8, p.kp, b, p.kp / 4, acc); break;
            }
          }
          const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(par + (vnni ? 64 : 0)));
          const __m256i mw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(par + 32));
          if (p.dyn) {  // a to raw32, |v| into the row magnitude
            const __m256i mwa = _mm256_abs_epi32(mw), mwo = _mm256_srli_epi64(mwa, 32);
            for (int i = 0; i < mr; ++i) {
              const __m256i a32 = _mm256_add_epi32(acc[i], bias);
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw32 + (m0 + r0 + i) * p.np + int64_t{pn} * kC), a32);
              rmax[i] = _mm256_or_si256(rmax[i], mag8(a32, mwa, mwo));
            }
            continue;
          }
          const __m256i mw0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(mw));
          const __m256i mw1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(mw, 1));
          for (int i = 0; i < mr; ++i) {
            const __m256i a32 = _mm256_add_epi32(acc[i], bias);  // i32, wrapping
            v[2 * i] = _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a32)), mw0);
            v[2 * i + 1] = _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(a32, 1)), mw1);
          }
        } else {
          const int16_t* a = abuf + r0 * p.kp;
          const uint8_t* a8 = abuf8 + r0 * p.kp;
          switch (mr * 2 + vnni) {
            case 2: tile4<1>(a, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            case 4: tile4<2>(a, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            case 6: tile4<3>(a, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            case 8: tile4<4>(a, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            case 3: tile4v<1>(a8, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            case 5: tile4v<2>(a8, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            case 7: tile4v<3>(a8, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
            default: tile4v<4>(a8, p.kp, wp, p.g, p.ng, p.group_bytes(), v); break;
          }
          const int64_t* pi = reinterpret_cast<const int64_t*>(par);
          for (int h = 0; h < 2; ++h) {
            const __m256i b16 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pi + 4 * h + (vnni ? 2 * kC : 0)));
            const __m256i gs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pi + kC + 4 * h));
            const __m256i four = _mm256_set1_epi64x(4);
            for (int i = 0; i < mr; ++i)  // exact multiple of 16: >> 4 then << gs
              v[2 * i + h] = _mm256_sllv_epi64(sra64(_mm256_add_epi64(v[2 * i + h], b16), four), gs);
          }
        }
        const int64_t n0 = int64_t{pn} * kC;
        const int live = p.n - n0 < kC ? int(p.n - n0) : kC;
        __m256i sh0 = _mm256_setzero_si256(), sh1 = sh0;
        if (e.op == MatmulOp::requant || e.op == MatmulOp::residual) {
          int64_t sh[kC] = {};
          for (int c = 0; c < live; ++c) sh[c] = e.shift[n0 + c];
          sh0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sh));
          sh1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sh + 4));
        }
        for (int i = 0; i < mr; ++i) {
          const int64_t m = m0 + r0 + i;
          const __m256i v0 = v[2 * i], v1 = v[2 * i + 1];
          uint8_t* y = static_cast<uint8_t*>(x.y) + (m * x.ldy + n0) * int64_t(osize(e.out_type));
          switch (e.op) {
            case MatmulOp::acc:
              store8(OutType::i32, static_cast<int32_t*>(x.y) + m * x.ldy + n0, v0, v1, live);
              break;
            case MatmulOp::requant:
              store8(e.out_type, y, rshift_round4(v0, sh0), rshift_round4(v1, sh1), live);
              break;
            case MatmulOp::residual: {
              int64_t r[kC] = {};
              for (int c = 0; c < live; ++c)
                r[c] = e.out_type == OutType::i16
                           ? static_cast<const int16_t*>(e.residual)[m * e.ldr + n0 + c]
                           : static_cast<const int32_t*>(e.residual)[m * e.ldr + n0 + c];
              store8(e.out_type, y,
                     _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r)), rshift_round4(v0, sh0)),
                     _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 4)), rshift_round4(v1, sh1)),
                     live);
              break;
            }
            case MatmulOp::dynamic:
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw + m * p.np + n0), v0);
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw + m * p.np + n0 + 4), v1);
              rmax[i] = _mm256_or_si256(rmax[i], _mm256_or_si256(abs64(v0), abs64(v1)));  // padded columns: v = 0
              break;
          }
        }
      }
      for (int i = 0; i < mr && p.dyn; ++i) {
        const int64_t m = m0 + r0 + i;
        if (whole && p.i4) finalize_row(p, x, m, raw + m * p.np, or_lanes(rmax[i]));
        else if (whole) finalize_row8(p, x, m, raw32 + m * p.np, packed, or_lanes(rmax[i]));
        else ws_max[m * p.nchunks + chunk] = or_lanes(rmax[i]);
      }
    }
  }
}

}  // namespace

extern const MatmulKernel FQ_AVX2_SYMBOL = {
    Isa::avx2,         FQ_AVX2_NAME,        avx2_packed_size,  avx2_pack,
    avx2_num_passes,   avx2_workspace_size, avx2_scratch_size, avx2_num_tasks,
    avx2_run};

}  // namespace fq::k
