// AVX-512 VNNI variant of the depthwise conv family: vectorized across channels, 64 channels per
// group, four taps per vpdpbusd.
//
// For one output pixel and a group of 64 channels, the four u8 activation vectors of taps t..t+3
// (64 channels each) are interleaved with vpunpck{l,h}bw then vpunpck{l,h}wd, so that every dword
// holds (x[t][c], x[t+1][c], x[t+2][c], x[t+3][c]) of one channel; vpdpbusd against the weights
// packed in the same order adds the four u8 x s8 products of that channel to its i32 lane (exact:
// |acc| < 2^31 by the preconditions in dwconv.h; vpdpbusd wraps, it never saturates).
// The unpacks work inside 128-bit lanes, so accumulator j (0..3), dword (L, i) holds channel
// 16L + 4j + i of the group; the epilogue's vpackssdw / vpack{s,u}swb, also lane-wise, put the 64
// results back in channel order.
//
// Packed layout: [ceil(C/64) groups][ceil(KH*KW/4) quads][4 accumulators j][4 lanes L][4 i][4 t]
// int8, zero for channels >= C and taps >= KH*KW. Padding taps (outside the image) and padded taps
// read a zero row in the worker's scratch (ceil(C/64)*64 bytes, zeroed on each run call).
// Epilogue per 16 lanes: vpmuldq on even and odd lanes (exact i64 products), rounding add +
// vpsravq (= rshift_round), 64-bit clamp, then narrowing packs and a (masked, for the channel
// tail) 64-byte store.
// Task = one output row (n, oy) x a chunk of up to 4 channel groups (256 channels).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "fq/kernels/dwconv.h"

namespace fq::k {
namespace {

constexpr int kG = 64;     // channels per group
constexpr int kChunk = 4;  // groups per task

int groups(const DwConvShape& s) { return (s.c + kG - 1) / kG; }
int quads(const DwConvShape& s) { return (s.kh * s.kw + 3) / 4; }
int chunks(const DwConvShape& s) { return (groups(s) + kChunk - 1) / kChunk; }

size_t avx512_packed_size(const DwConvShape& s) { return size_t(groups(s)) * quads(s) * 256; }

void avx512_pack(const DwConvShape& s, const int8_t* w, void* packed) {
  int8_t* dst = static_cast<int8_t*>(packed);
  const int taps = s.kh * s.kw;
  for (int g = 0; g < groups(s); ++g)
    for (int q = 0; q < quads(s); ++q)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 4; ++l)
          for (int i = 0; i < 4; ++i)
            for (int t = 0; t < 4; ++t) {
              const int c = g * kG + 16 * l + 4 * j + i, tap = 4 * q + t;
              *dst++ = c < s.c && tap < taps ? w[int64_t{tap} * s.c + c] : 0;
            }
}

size_t avx512_scratch_size(const DwConvShape& s) { return size_t(groups(s)) * kG; }

int64_t avx512_num_tasks(const DwConvShape& s) { return int64_t{s.n} * s.oh * chunks(s); }

// Epilogue parameters of one group in accumulator order: dword (L, i) of accumulator j is channel
// g*64 + 16L + 4j + i; the i64 vectors hold the even (e) and odd (o) dwords.
struct GroupEpi {
  __m512i bias[4], mult[4], rnd_e[4], rnd_o[4], sh_e[4], sh_o[4];
};

void load_epi(const DwConvShape& s, const DwConvEpilogue& e, int g, GroupEpi* p) {
  alignas(64) int32_t bias[16], mult[16];
  alignas(64) int64_t rnd[16], sh[16];
  for (int j = 0; j < 4; ++j) {
    for (int d = 0; d < 16; ++d) {
      const int c = g * kG + 16 * (d / 4) + 4 * j + d % 4;
      const bool ok = c < s.c;
      bias[d] = ok ? e.bias[c] : 0;
      mult[d] = ok ? e.mult[c] : 0;
      sh[d] = ok ? e.shift[c] : 1;
      rnd[d] = int64_t{1} << (sh[d] - 1);
    }
    alignas(64) int64_t re[8], ro[8], se[8], so[8];
    for (int m = 0; m < 8; ++m)
      re[m] = rnd[2 * m], ro[m] = rnd[2 * m + 1], se[m] = sh[2 * m], so[m] = sh[2 * m + 1];
    p->bias[j] = _mm512_load_si512(bias);
    p->mult[j] = _mm512_load_si512(mult);
    p->rnd_e[j] = _mm512_load_si512(re);
    p->rnd_o[j] = _mm512_load_si512(ro);
    p->sh_e[j] = _mm512_load_si512(se);
    p->sh_o[j] = _mm512_load_si512(so);
  }
}

inline __m512i requant(__m512i acc, const GroupEpi& p, int j, __m512i lo, __m512i hi) {
  __m512i ev = _mm512_mul_epi32(acc, p.mult[j]);
  __m512i od = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(p.mult[j], 32));
  ev = _mm512_srav_epi64(_mm512_add_epi64(ev, p.rnd_e[j]), p.sh_e[j]);
  od = _mm512_srav_epi64(_mm512_add_epi64(od, p.rnd_o[j]), p.sh_o[j]);
  ev = _mm512_min_epi64(_mm512_max_epi64(ev, lo), hi);
  od = _mm512_min_epi64(_mm512_max_epi64(od, lo), hi);
  return _mm512_mask_blend_epi32(0xAAAA, ev, _mm512_slli_epi64(od, 32));
}

template <bool kTail>
inline __m512i load_x(const uint8_t* p, __mmask64 m) {
  if (kTail) return _mm512_maskz_loadu_epi8(m, p);
  return _mm512_loadu_si512(p);
}

// One output pixel, one channel group: accumulate all quads, requantize, store.
template <bool kTail>
inline void pixel_group(const uint8_t* const* ptrs, int nq, int64_t off, const int8_t* wq,
                        const GroupEpi& p, __m512i lo, __m512i hi, bool u8, __mmask64 m,
                        uint8_t* y) {
  __m512i a0 = p.bias[0], a1 = p.bias[1], a2 = p.bias[2], a3 = p.bias[3];
  for (int q = 0; q < nq; ++q, wq += 256, ptrs += 4) {
    const __m512i x0 = load_x<kTail>(ptrs[0] + off, m), x1 = load_x<kTail>(ptrs[1] + off, m);
    const __m512i x2 = load_x<kTail>(ptrs[2] + off, m), x3 = load_x<kTail>(ptrs[3] + off, m);
    const __m512i l01 = _mm512_unpacklo_epi8(x0, x1), h01 = _mm512_unpackhi_epi8(x0, x1);
    const __m512i l23 = _mm512_unpacklo_epi8(x2, x3), h23 = _mm512_unpackhi_epi8(x2, x3);
    a0 = _mm512_dpbusd_epi32(a0, _mm512_unpacklo_epi16(l01, l23), _mm512_loadu_si512(wq));
    a1 = _mm512_dpbusd_epi32(a1, _mm512_unpackhi_epi16(l01, l23), _mm512_loadu_si512(wq + 64));
    a2 = _mm512_dpbusd_epi32(a2, _mm512_unpacklo_epi16(h01, h23), _mm512_loadu_si512(wq + 128));
    a3 = _mm512_dpbusd_epi32(a3, _mm512_unpackhi_epi16(h01, h23), _mm512_loadu_si512(wq + 192));
  }
  const __m512i p01 = _mm512_packs_epi32(requant(a0, p, 0, lo, hi), requant(a1, p, 1, lo, hi));
  const __m512i p23 = _mm512_packs_epi32(requant(a2, p, 2, lo, hi), requant(a3, p, 3, lo, hi));
  const __m512i out = u8 ? _mm512_packus_epi16(p01, p23) : _mm512_packs_epi16(p01, p23);
  if (kTail)
    _mm512_mask_storeu_epi8(y, m, out);
  else
    _mm512_storeu_si512(y, out);
}

void avx512_run(const DwConvShape& s, const uint8_t* x, const void* packed,
                const DwConvEpilogue& e, void* y, int64_t begin, int64_t end, void* scratch) {
  const int ng = groups(s), nq = quads(s), nch = chunks(s), taps = s.kh * s.kw;
  const int8_t* wp = static_cast<const int8_t*>(packed);
  uint8_t* zero = static_cast<uint8_t*>(scratch);
  std::memset(zero, 0, size_t(ng) * kG);
  const __m512i lo = _mm512_set1_epi64(e.lo), hi = _mm512_set1_epi64(e.hi);
  const bool u8 = e.out_type == OutType::u8;
  const int tail = s.c % kG;
  const __mmask64 tail_mask = _bzhi_u64(~uint64_t{0}, unsigned(tail));
  GroupEpi epi[kChunk];
  const uint8_t* ptrs[4 * ((kDwMaxKernel * kDwMaxKernel + 3) / 4)];
  for (int i = 0; i < 4 * nq; ++i) ptrs[i] = zero;  // padded taps stay on the zero row
  const int64_t row_bytes = int64_t{s.w} * s.c;
  for (int64_t t = begin; t < end; ++t) {
    const int chunk = int(t % nch);
    const int64_t row = t / nch;  // n * oh + oy
    const int oy = int(row % s.oh), n = int(row / s.oh);
    const int g0 = chunk * kChunk, g1 = g0 + kChunk < ng ? g0 + kChunk : ng;
    for (int g = g0; g < g1; ++g) load_epi(s, e, g, &epi[g - g0]);
    const uint8_t* rows[kDwMaxKernel];
    for (int ky = 0; ky < s.kh; ++ky) {
      const int iy = oy * s.stride - s.pad_t + ky;
      rows[ky] = iy >= 0 && iy < s.h ? x + (int64_t{n} * s.h + iy) * row_bytes : nullptr;
    }
    uint8_t* yrow = static_cast<uint8_t*>(y) + row * s.ow * s.c;
    for (int ox = 0; ox < s.ow; ++ox) {
      const int ix0 = ox * s.stride - s.pad_l;
      for (int ky = 0, i = 0; ky < s.kh; ++ky)
        for (int kx = 0; kx < s.kw; ++kx, ++i) {
          const int ix = ix0 + kx;
          ptrs[i] = rows[ky] && ix >= 0 && ix < s.w ? rows[ky] + int64_t{ix} * s.c : zero;
        }
      (void)taps;
      uint8_t* yp = yrow + int64_t{ox} * s.c;
      for (int g = g0; g < g1; ++g) {
        const int8_t* wq = wp + int64_t{g} * nq * 256;
        const int64_t off = int64_t{g} * kG;
        if (tail && g == ng - 1)
          pixel_group<true>(ptrs, nq, off, wq, epi[g - g0], lo, hi, u8, tail_mask, yp + off);
        else
          pixel_group<false>(ptrs, nq, off, wq, epi[g - g0], lo, hi, u8, ~__mmask64{0}, yp + off);
      }
    }
  }
}

}  // namespace

extern const DwConvKernel kDwConvAvx512 = {
    Isa::avx512, "avx512", avx512_packed_size, avx512_pack, avx512_scratch_size,
    avx512_num_tasks, avx512_run,
};

}  // namespace fq::k
