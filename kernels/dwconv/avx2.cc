// AVX2 variant of the depthwise conv family: vectorized across channels, 16 channels per block,
// two taps per vpmaddwd.
//
// For one output pixel and 16 channels, the activations of taps t and t+1 are widened to i16
// (vpmovzxbw) and interleaved with vpunpck{l,h}wd, so that every dword holds (x[t][c], x[t+1][c])
// of one channel; vpmaddwd against the weights packed in the same order (as i16 pairs) gives the
// exact i32 sum x[t][c]*w[t][c] + x[t+1][c]*w[t+1][c] (|.| <= 65280: no saturation), added to the
// channel's i32 lane (|acc| < 2^31 by the preconditions in dwconv.h). The unpacks work inside
// 128-bit lanes: accumulator r (0..1), dword (l, i) is channel 8l + 4r + i of the block; the
// epilogue's vpackssdw / vpack{s,u}swb + vpermq put the results back in channel order.
//
// Packed layout: [ceil(C/16) blocks][ceil(KH*KW/2) pairs][2 accumulators r][2 lanes l][4 i]
// [2 taps] int16, zero for channels >= C and taps >= KH*KW. Padding taps read a zero row in the
// worker's scratch (zeroed on each run call); the channel tail (C % 16) is copied to a stack
// buffer so no load passes the end of a pixel.
// Epilogue per 8 lanes: vpmuldq on even and odd lanes (exact i64 products), rounding add, an
// arithmetic 64-bit shift built from vpsrlvq (~(~v >> s) for v < 0), a 64-bit clamp, then packs.
// Task = one output row (n, oy) x a chunk of up to 16 channel blocks (256 channels).
#include <immintrin.h>

#include <cstring>

#include "fq/kernels/dwconv.h"

namespace fq::k {
namespace {

constexpr int kB = 16;      // channels per block
constexpr int kChunk = 16;  // blocks per task
constexpr int kMaxPairs = (kDwMaxKernel * kDwMaxKernel + 1) / 2;

int blocks(const DwConvShape& s) { return (s.c + kB - 1) / kB; }
int pairs(const DwConvShape& s) { return (s.kh * s.kw + 1) / 2; }
int chunks(const DwConvShape& s) { return (blocks(s) + kChunk - 1) / kChunk; }

size_t avx2_packed_size(const DwConvShape& s) {
  return size_t(blocks(s)) * pairs(s) * 32 * sizeof(int16_t);
}

void avx2_pack(const DwConvShape& s, const int8_t* w, void* packed) {
  int16_t* dst = static_cast<int16_t*>(packed);  // packed buffers may be unaligned: memcpy
  const int taps = s.kh * s.kw;
  int64_t at = 0;
  for (int b = 0; b < blocks(s); ++b)
    for (int p = 0; p < pairs(s); ++p)
      for (int r = 0; r < 2; ++r)
        for (int l = 0; l < 2; ++l)
          for (int i = 0; i < 4; ++i)
            for (int t = 0; t < 2; ++t) {
              const int c = b * kB + 8 * l + 4 * r + i, tap = 2 * p + t;
              const int16_t v = c < s.c && tap < taps ? w[int64_t{tap} * s.c + c] : 0;
              std::memcpy(dst + at++, &v, sizeof v);
            }
}

size_t avx2_scratch_size(const DwConvShape& s) { return size_t(blocks(s)) * kB; }

int64_t avx2_num_tasks(const DwConvShape& s) { return int64_t{s.n} * s.oh * chunks(s); }

struct BlockEpi {
  __m256i bias[2], mult[2], rnd_e[2], rnd_o[2], sh_e[2], sh_o[2];
};

void load_epi(const DwConvShape& s, const DwConvEpilogue& e, int b, BlockEpi* p) {
  for (int r = 0; r < 2; ++r) {
    alignas(32) int32_t bias[8], mult[8];
    alignas(32) int64_t re[4], ro[4], se[4], so[4];
    for (int d = 0; d < 8; ++d) {
      const int c = b * kB + 8 * (d / 4) + 4 * r + d % 4;
      const bool ok = c < s.c;
      bias[d] = ok ? e.bias[c] : 0;
      mult[d] = ok ? e.mult[c] : 0;
      const int sh = ok ? e.shift[c] : 1;
      int64_t* shifts = d % 2 ? so : se;  // odd / even i32 lanes of the block
      int64_t* rounds = d % 2 ? ro : re;
      shifts[d / 2] = sh;
      rounds[d / 2] = int64_t{1} << (sh - 1);
    }
    p->bias[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias));
    p->mult[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(mult));
    p->rnd_e[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(re));
    p->rnd_o[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(ro));
    p->sh_e[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(se));
    p->sh_o[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(so));
  }
}

// rshift_round + clamp of i64 lanes.
inline __m256i round_clamp(__m256i v, __m256i rnd, __m256i sh, __m256i lo, __m256i hi) {
  v = _mm256_add_epi64(v, rnd);
  const __m256i neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
  v = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, neg), sh), neg);  // arithmetic
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

inline __m256i requant(__m256i acc, const BlockEpi& p, int r, __m256i lo, __m256i hi) {
  __m256i ev = _mm256_mul_epi32(acc, p.mult[r]);
  __m256i od = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(p.mult[r], 32));
  ev = round_clamp(ev, p.rnd_e[r], p.sh_e[r], lo, hi);
  od = round_clamp(od, p.rnd_o[r], p.sh_o[r], lo, hi);
  return _mm256_blend_epi32(ev, _mm256_slli_epi64(od, 32), 0xAA);
}

// One output pixel, one block of 16 channels (16 readable bytes at ptrs[t] + off).
inline __m128i pixel_block(const uint8_t* const* ptrs, int np, int64_t off, const int16_t* wq,
                           const BlockEpi& p, __m256i lo, __m256i hi, bool u8) {
  __m256i a0 = p.bias[0], a1 = p.bias[1];
  for (int q = 0; q < np; ++q, wq += 32, ptrs += 2) {
    const __m256i x0 = _mm256_cvtepu8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(ptrs[0] + off)));
    const __m256i x1 = _mm256_cvtepu8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(ptrs[1] + off)));
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + 16));
    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w0));
    a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w1));
  }
  const __m256i p16 = _mm256_packs_epi32(requant(a0, p, 0, lo, hi), requant(a1, p, 1, lo, hi));
  const __m256i p8 = u8 ? _mm256_packus_epi16(p16, p16) : _mm256_packs_epi16(p16, p16);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(p8, 0x08));
}

void avx2_run(const DwConvShape& s, const uint8_t* x, const void* packed, const DwConvEpilogue& e,
              void* y, int64_t begin, int64_t end, void* scratch) {
  const int nb = blocks(s), np = pairs(s), nch = chunks(s);
  const int16_t* wp = static_cast<const int16_t*>(packed);
  uint8_t* zero = static_cast<uint8_t*>(scratch);
  std::memset(zero, 0, size_t(nb) * kB);
  const __m256i lo = _mm256_set1_epi64x(e.lo), hi = _mm256_set1_epi64x(e.hi);
  const bool u8 = e.out_type == OutType::u8;
  const int tail = s.c % kB;
  BlockEpi epi[kChunk];
  const uint8_t* ptrs[2 * kMaxPairs];
  const uint8_t* tail_ptrs[2 * kMaxPairs];
  alignas(16) uint8_t tail_buf[2 * kMaxPairs][kB];
  for (int i = 0; i < 2 * np; ++i) ptrs[i] = zero;  // the padded tap stays on the zero row
  const int64_t row_bytes = int64_t{s.w} * s.c;
  for (int64_t t = begin; t < end; ++t) {
    const int chunk = int(t % nch);
    const int64_t row = t / nch;  // n * oh + oy
    const int oy = int(row % s.oh), n = int(row / s.oh);
    const int b0 = chunk * kChunk, b1 = b0 + kChunk < nb ? b0 + kChunk : nb;
    for (int b = b0; b < b1; ++b) load_epi(s, e, b, &epi[b - b0]);
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
      uint8_t* yp = yrow + int64_t{ox} * s.c;
      for (int b = b0; b < b1; ++b) {
        const int16_t* wq = wp + int64_t{b} * np * 32;
        const int64_t off = int64_t{b} * kB;
        if (tail && b == nb - 1) {  // channel tail: copy the last `tail` channels of each tap
          for (int i = 0; i < 2 * np; ++i) {
            std::memset(tail_buf[i], 0, kB);
            std::memcpy(tail_buf[i], ptrs[i] + off, size_t(tail));
            tail_ptrs[i] = tail_buf[i];
          }
          alignas(16) uint8_t out[kB];
          _mm_store_si128(reinterpret_cast<__m128i*>(out),
                          pixel_block(tail_ptrs, np, 0, wq, epi[b - b0], lo, hi, u8));
          std::memcpy(yp + off, out, size_t(tail));
        } else {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(yp + off),
                           pixel_block(ptrs, np, off, wq, epi[b - b0], lo, hi, u8));
        }
      }
    }
  }
}

}  // namespace

extern const DwConvKernel kDwConvAvx2 = {
    Isa::avx2, "avx2", avx2_packed_size, avx2_pack, avx2_scratch_size, avx2_num_tasks, avx2_run,
};

}  // namespace fq::k
