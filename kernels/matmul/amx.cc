// AMX-INT8 variant of the matmul family: int8-weight GEMM (M >= kAmxMinRows, K > 64) on tiles
// with tdpbssd (s8 x s8 -> i32, no offset needed), everything else (int4 weights, GEMV, small M,
// K <= 64, the epilogues) through the AVX-512 VNNI implementation it shares the packed layout with
// (avx512_impl.h): an AMX B tile is 16 consecutive 64-byte k-steps of one panel, stride pb*64.
//
// Tiles (palette 1, configured once per run() call): tmm0-3 = C, 2x2 blocks of 16 rows x 16 i32;
// tmm4-5 = A, 16 rows x 64 bytes (K = 64); tmm6-7 = B, 16 k-steps x 64 bytes. Per K step of 64:
// 2 A loads + 2 B loads feed 4 tdpbssd. C is stored to the stack and goes through the same
// epilogue as VNNI (acc + bias instead of acc + cbias: tdpbssd multiplies signed A directly).
// tdpbssd adds the 4 products of each dword to the i32 lane with wrap-around, so C is exactly the
// reference's wrapping i32 sum. A tiles are loaded from the caller's rows in place when K is a
// multiple of 64 (otherwise from the unit's zero-padded copy); the last rows of a unit that do not
// fill a 16/32-row tile are copied, zero padded, so no tile load reads past A.
//
// Not measured: the machine this was written on has no AMX. The tile code runs in the tests on
// emulated tiles only; its speed (2x2 C blocking, no K blocking: one A and one B tile load per
// tdpbssd from L1/L2) is unknown.
//
// The OS permission (arch_prctl ARCH_REQ_XCOMP_PERM) is requested by cpu_features(); isa_supported
// (Isa::amx) is true only when it was granted. The tile instructions go through the FQ_TILE_*
// macros so that amx_emulated.cc can compile this file on software tiles for the tests.
#include "avx512_impl.h"

#ifndef FQ_TILE_LOADCONFIG
#define FQ_TILE_LOADCONFIG(cfg) _tile_loadconfig(cfg)
#define FQ_TILE_RELEASE() _tile_release()
#define FQ_TILE_ZERO(t) _tile_zero(t)
#define FQ_TILE_LOADD(t, p, stride) _tile_loadd(t, p, stride)
#define FQ_TILE_STORED(t, p, stride) _tile_stored(t, p, stride)
#define FQ_TILE_DPBSSD(c, a, b) _tile_dpbssd(c, a, b)
#endif
#ifndef FQ_MATMUL_AMX_SYMBOL
#define FQ_MATMUL_AMX_SYMBOL kMatmulAmx
#define FQ_MATMUL_AMX_ISA Isa::amx
#define FQ_MATMUL_AMX_NAME "amx"
#endif

namespace fq::k {
namespace {

constexpr int64_t kAmxMinRows = 16;
// One 64-byte k-step per tile pass does not pay for the tiles: with K = 64 each 32x32 block is
// 4 tdpbssd between 4 tile zeroings and 4 tile stores that the epilogue reads back. Sapphire
// Rapids, 12 interleaved repetitions, AMX / VNNI time: 64x64x64 4.44 / 2.93 us, 64x256x64
// 10.8 / 10.4 us, 64x64x256 3.26 / 6.70 us (docs/benchmarks.md). Below this depth: VNNI.
constexpr int64_t kAmxMinDepth = 128;

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

struct Amx {
  static constexpr int kRows = 32;  // A row granularity: two 16-row tiles
  static size_t scratch(const Plan& p) { return size_t(kRows * p.L.kp) + 64; }
  static bool use(const Plan& p) { return !p.L.i4 && p.m >= kAmxMinRows && p.L.kp >= kAmxMinDepth; }
  static void begin() {
    alignas(64) TileConfig cfg;
    for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    FQ_TILE_LOADCONFIG(&cfg);
  }
  static void end() { FQ_TILE_RELEASE(); }

  // C tiles for rows [r, r + 16*TR) x panels [j, j + TC) over the whole (padded) depth.
  template <bool TR, bool TC>
  static void tiles(const int8_t* a, int64_t lda, const uint8_t* b, int64_t bstride, int64_t kb,
                    int32_t* c) {
    FQ_TILE_ZERO(0);
    if (TC) FQ_TILE_ZERO(1);
    if (TR) FQ_TILE_ZERO(2);
    if (TR && TC) FQ_TILE_ZERO(3);
    for (int64_t i = 0; i < kb; ++i, a += 64, b += 16 * bstride) {
      FQ_TILE_LOADD(4, a, lda);
      FQ_TILE_LOADD(6, b, bstride);
      if (TC) FQ_TILE_LOADD(7, b + 64, bstride);
      FQ_TILE_DPBSSD(0, 4, 6);
      if (TC) FQ_TILE_DPBSSD(1, 4, 7);
      if (TR) {
        FQ_TILE_LOADD(5, a + 16 * lda, lda);
        FQ_TILE_DPBSSD(2, 5, 6);
        if (TC) FQ_TILE_DPBSSD(3, 5, 7);
      }
    }
    FQ_TILE_STORED(0, c, 128);
    if (TC) FQ_TILE_STORED(1, c + 16, 128);
    if (TR) FQ_TILE_STORED(2, c + 16 * 32, 128);
    if (TR && TC) FQ_TILE_STORED(3, c + 16 * 32 + 16, 128);
  }

  template <class Epi>
  static void block(const Plan& p, const int8_t* a, int64_t lda, int64_t readable, int64_t rows,
                    const uint8_t* wb, int pb, uint8_t* tmp, Epi&& epi) {
    alignas(64) int32_t c[32 * 32];
    const int64_t bstride = int64_t{pb} * 64, kb = p.L.kp / 64;
    for (int64_t r = 0; r < rows; r += kRows) {
      const bool two_rows = rows - r > 16;
      const int8_t* ar = a + r * lda;
      int64_t ld = lda;
      if (r + (two_rows ? 32 : 16) > readable) {  // tail rows: a zero-padded copy
        copy_a(ar, lda, rows - r, p.L.k, p.L.kp, kRows, align64<uint8_t>(tmp));
        ar = align64<int8_t>(tmp), ld = p.L.kp;
      }
      for (int j = 0; j < pb; j += 2) {
        const bool two_cols = j + 1 < pb;
        const uint8_t* bj = wb + j * 64;
        if (two_rows && two_cols) tiles<true, true>(ar, ld, bj, bstride, kb, c);
        else if (two_rows) tiles<true, false>(ar, ld, bj, bstride, kb, c);
        else if (two_cols) tiles<false, true>(ar, ld, bj, bstride, kb, c);
        else tiles<false, false>(ar, ld, bj, bstride, kb, c);
        const int64_t nr = rows - r < 32 ? rows - r : 32;
        for (int64_t i = 0; i < nr; ++i) {
          epi(r + i, j, _mm512_load_si512(c + i * 32));
          if (two_cols) epi(r + i, j + 1, _mm512_load_si512(c + i * 32 + 16));
        }
      }
    }
  }
};

int amx_num_passes(const MatmulShape& s, const MatmulEpilogue& e) { return x86_passes(make_plan(s, e, Amx::kRows)); }
size_t amx_workspace_size(const MatmulShape& s, const MatmulEpilogue& e) { return x86_workspace(make_plan(s, e, Amx::kRows)); }
size_t amx_scratch_size(const MatmulShape& s, const MatmulEpilogue& e) {
  const Plan p = make_plan(s, e, Amx::kRows);
  return x86_scratch(p, Amx::scratch(p));
}
int64_t amx_num_tasks(const MatmulShape& s, const MatmulEpilogue& e, int pass) { return x86_tasks(make_plan(s, e, Amx::kRows), pass); }

}  // namespace

extern const MatmulKernel FQ_MATMUL_AMX_SYMBOL = {
    FQ_MATMUL_AMX_ISA,  FQ_MATMUL_AMX_NAME,  x86_packed_size,  x86_pack,
    amx_num_passes,     amx_workspace_size,  amx_scratch_size, amx_num_tasks,
    x86_run<Amx>};

}  // namespace fq::k
