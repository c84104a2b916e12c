// AVX-512 VNNI implementation of the matmul family, shared by the avx512 and amx variants (each
// includes it into its own translation unit; everything here has internal linkage, so the two
// copies compiled with different ISA flags never meet under the One Definition Rule).
//
// Packed layout (one format for avx512 and amx, built by pack() below):
//   [params: P panels x par_bytes (int8: then the AMX biases i32 [P][16])] [weights: B blocks]
//   panel = 16 output columns, block = up to 4 panels (64 columns), P = ceil(N/16), B = ceil(P/4).
//   int8 block b with pb panels: [kp/4 k-steps][pb panels][16 columns][4 k] int8 (kp = K rounded up
//     to 64, zero padded): one 64-byte row feeds one vpdpbusd, and 16 consecutive k-steps of one
//     panel (stride pb*64) are exactly an AMX B tile.
//   int4 block b: per group g: [G/8 step pairs][pb][64 bytes], each byte holding column c's k-step
//     2j in its low nibble and 2j+1 in its high nibble (4 k each, two's complement); then
//     [pb][16] int16 group mantissas gm. Groups are zero padded to G. One stream per block.
//   params, int8: cbias i32[16] = bias - 128*sum_k w (VNNI), mw i32[16]: the two cache lines every
//     VNNI pass reads (the AMX bias lives apart, so no third line comes in beside them).
//   params, int4: b16 i64[16] = 16*(bias - 128*sum_g gm*sum_{k in g} q), gs i64[16].
// Zero weights and zero multipliers pad the last panel, so padded columns give v = 0.
//   cb3 with R % 16 == 0 and K % 4 == 0 (RWKVQuant's codebook weights) also keeps its indices, after
//     the int8 blocks: per block [kp/8 k-step pairs][one record of pb panels], then the codebooks
//     [P panels][ng][8] int8 (a panel lies in one block of R rows). A record holds the indices of
//     k-steps 2s (even) and 2s + 1 (odd) of its panels, element e = 4 c + j of a step in byte e
//     (the int8 k-step row's order) of 64-byte vectors: V0 for panel 0, V1 for panel 1 and V3 for
//     panel 3 hold the even step's index in bits 0-2 and the odd one's in bits 3-5; panel 2's two
//     steps put their low 2 bits in bits 6-7 of V0 (even) and V1 (odd) and their third bits in two
//     64-bit masks M0, M1 (bit e). Record: V0 [V1] [V3] [M0 M1]: 64, 128, 144 (pb 3) or 208 bytes
//     (pb 4: 3.25 bits per weight). A GEMV on a CPU with AVX512_VBMI reads these instead of the int8
//     copy (tile8cb: its weights looked up in registers), so RWKV-6 3M's matrices stay closer to a
//     2 MB L2; the int8 blocks serve GEMMs, AMX and CPUs without VBMI, and are not stored for a
//     one-row shape (M = 1) on a VBMI CPU (L.i8b), whose only pass reads the indices. Both decode to
//     the same int8 weights (same bytes out).
//
// Exactness. vpdpbusd multiplies u8 by s8: A is offset to a+128 (a vpxord of each broadcast in
// the micro-kernel) and the offset is removed with the pack-time column sums:
//   int8: sum (a+128)*w + cbias = bias + sum a*w (mod 2^32, the reference's wrapping i32).
//   int4: the nibbles are unpacked as 16q (and 0xF0 / shift-left 4 + and 0xF0, exact s8), so
//     acc_u[g] = sum (a+128)*16q = 16*acc_g + 16*128*sum q; sum_g acc_u[g]*gm + b16 = 16*(bias +
//     sum_g acc_g*gm) exactly in i64 (|acc_u| < 2^23, |gm| < 2^15), then >> 4 (exact) << gs.
// The epilogue works on exact i64 v (vpmuldq of sign-extended lanes), rounds with vpsravq after
// adding 2^(s-1) and narrows with the saturating vpmovsq{b,w,d}: the reference's arithmetic.
//
// Units (make_plan, a function of the shape only): a unit = a block of rows x a chunk of panel
// blocks. Rows per unit are capped so the unit's A rows (rows x kp) stay in L2 while each
// weight block streams through once (so big weights are read from memory once per row block); N
// is split first, then M, until there are 8 units (GEMV: one per >= 64 KB of weights, up to 32).
// Inside a unit: per panel block, K in chunks of 1 KB (partial sums in scratch), 6x4-panel micro
// tiles (24 zmm accumulators). Dynamic requantization: when the weights are L2-sized and M >= 64
// (or N fits one chunk) a unit takes whole rows and requantizes them from a strip in scratch (one
// pass); otherwise pass 0 writes acc + bias (int8) or v (int4) and per-chunk row maxima to the
// workspace and pass 1 (one unit per row) requantizes.
#pragma once
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 PR 105593 in AVX-512 headers
#pragma GCC diagnostic ignored "-Wuninitialized"        // (the same, once _mm512_reduce_* is inlined)
#endif
#include <immintrin.h>

#include <cstring>

#include "fq/kernels/matmul.h"

namespace fq::k {
namespace {

constexpr int kL = 16;   // columns per panel (i32 lanes per zmm)
constexpr int kPB = 4;   // panels per block
constexpr int64_t kAlign = 64;

inline int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
template <class T>
inline T* align64(void* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

// ---- layout ------------------------------------------------------------------------------------

// cb3 index records (see the top): index vectors of a record of pb panels, and their panels.
constexpr int cbx_vectors(int pb) { return pb == 4 ? 3 : pb == 3 ? 2 : pb; }
constexpr int kCbxVp[3] = {0, 1, 3};

struct Layout {
  bool i4 = false;
  int n = 0, k = 0, g = 0, ng = 0;
  int64_t kp = 0;          // padded depth: int8 round_up(K, 64), int4 ng * G
  int64_t k4 = 0;          // k-steps that hold data: ceil(K/4) (int8)
  int panels = 0, blocks = 0;
  int64_t par_bytes = 0;   // per panel (int8: ParI8, then the AMX biases after all panels)
  bool cbx = false;        // cb3 with R % 16 == 0, K % 4 == 0: the index copy below the int8 blocks
  bool i8b = true;         // the int8 blocks are stored: not for a one-row cbx GEMV on a VBMI CPU,
                           // which reads only the index copy (x86_run's cbx path)
  int cg = 0, cng = 0;     // its group and number of groups
  int64_t group_bytes(int pb) const { return int64_t{g} / 8 * pb * 64 + int64_t{pb} * kL * 2; }
  int64_t block_bytes(int pb) const {
    return i4 ? ng * group_bytes(pb) : kp / 4 * pb * 64;
  }
  int pb(int b) const { return panels - b * kPB < kPB ? panels - b * kPB : kPB; }
  int64_t amx_bias_offset() const { return int64_t{panels} * par_bytes; }  // int8: i32 [panels][16]
  int64_t params_size() const { return round_up(int64_t{panels} * (par_bytes + (i4 ? 0 : kL * 4)), kAlign); }
  int64_t block_offset(int b) const { return params_size() + int64_t{b} * block_bytes(kPB); }
  int64_t i8_size() const {
    return params_size() + (i8b ? int64_t{blocks - 1} * block_bytes(kPB) + block_bytes(pb(blocks - 1)) : 0);
  }
  // the index copy (cbx): index blocks, then codebooks
  static constexpr int64_t cbx_record_bytes(int pb) { return 64 * cbx_vectors(pb) + (pb >= 3 ? 16 : 0); }
  int64_t cbx_block_bytes(int pb) const { return kp / 8 * cbx_record_bytes(pb); }
  int64_t cbx_offset(int b) const { return round_up(i8_size(), kAlign) + int64_t{b} * cbx_block_bytes(kPB); }
  int64_t cbt_offset(int panel) const {  // panel's codebooks [ng][8]
    return round_up(cbx_offset(blocks - 1) + cbx_block_bytes(pb(blocks - 1)), kAlign) + int64_t{panel} * cng * 8;
  }
  int64_t size() const { return cbx ? cbt_offset(panels) : i8_size(); }
};

// Fills every field of L in place (make_plan's Plan holds it: a returned copy, or one of Layout{},
// cost a store-forwarding stall on the bool fields in every run() call).
inline void make_layout(const MatmulShape& s, Layout& L) {
  L.i4 = s.format == WeightFormat::i4;
  L.n = s.n, L.k = s.k;
  L.g = L.ng = 0;
  L.cbx = false, L.i8b = true;  // (field by field: a Layout{} temporary is copied in wide moves)
  L.cg = L.cng = 0;
  if (L.i4) {
    L.g = s.group, L.ng = int(ceil_div(s.k, s.group));
    L.kp = int64_t{L.ng} * L.g;
    L.par_bytes = 2 * kL * 8;
  } else {
    L.kp = round_up(s.k, 64);
    L.par_bytes = 2 * kL * 4;
  }
  L.k4 = ceil_div(s.k, 4);
  if (s.format == WeightFormat::cb3 && s.codebook_rows % kL == 0 && s.k % 4 == 0 && s.group % 4 == 0) {
    L.cbx = true;
    L.cg = s.group, L.cng = int(ceil_div(s.k, s.group));
    L.i8b = !(s.m == 1 && cpu_features().vbmi);
  }
  L.panels = int(ceil_div(s.n, kL));
  L.blocks = int(ceil_div(L.panels, kPB));
}

// int8 panel record: the VNNI bias (bias - 128 sum w) and the multipliers, two cache lines that every
// VNNI pass reads; the plain bias (AMX's tdpbssd needs no correction) sits apart, after all records.
struct ParI8 { int32_t cbias[kL], mw[kL]; };
struct ParI4 { int64_t b16[kL], gs[kL]; };

size_t x86_packed_size(const MatmulShape& s) {
  Layout L;
  make_layout(s, L);
  return size_t(L.size());
}

void x86_pack(const MatmulShape& s, const MatmulWeights& w_in, void* packed) {
  DecodedWeights decoded;  // codebook weights: the int8 matrix they stand for
  const MatmulWeights w = matmul_as_i8(s, w_in, &decoded);
  Layout L;
  make_layout(s, L);
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, size_t(L.size()));
  const int64_t wrow = L.i4 ? (s.k + 1) / 2 : s.k;
  auto q4 = [&](int n, int k) -> int {  // int4 element, 0 outside the matrix
    if (n >= s.n || k >= s.k) return 0;
    const int nib = (static_cast<const uint8_t*>(w.w)[n * wrow + k / 2] >> ((k & 1) * 4)) & 15;
    return nib >= 8 ? nib - 16 : nib;
  };
  auto w8 = [&](int n, int k) -> int {
    return n < s.n && k < s.k ? static_cast<const int8_t*>(w.w)[n * wrow + k] : 0;
  };
  for (int p = 0; p < L.panels; ++p)
    for (int c = 0; c < kL; ++c) {
      const int n = p * kL + c;
      const int32_t bias = n < s.n && w.bias ? w.bias[n] : 0;
      if (!L.i4) {
        ParI8* par = reinterpret_cast<ParI8*>(base + p * L.par_bytes);
        uint32_t sum = 0;
        for (int k = 0; k < s.k; ++k) sum += uint32_t(w8(n, k));
        par->cbias[c] = int32_t(uint32_t(bias) - 128u * sum);
        reinterpret_cast<int32_t*>(base + L.amx_bias_offset())[p * kL + c] = bias;
        par->mw[c] = n < s.n ? w.mult[n] : 0;
      } else {
        ParI4* par = reinterpret_cast<ParI4*>(base + p * L.par_bytes);
        int64_t c128 = 0;
        for (int g = 0; g < L.ng; ++g) {
          int64_t sq = 0;
          for (int k = g * L.g; k < (g + 1) * L.g; ++k) sq += q4(n, k);
          c128 += sq * (n < s.n ? w.gmult[int64_t{n} * L.ng + g] : 0);
        }
        par->b16[c] = 16 * (int64_t{bias} - 128 * c128);
        par->gs[c] = n < s.n ? w.gshift[n] : 0;
      }
    }
  for (int b = 0; b < L.blocks && L.i8b; ++b) {
    const int pb = L.pb(b);
    int8_t* dst = reinterpret_cast<int8_t*>(base + L.block_offset(b));
    if (!L.i4) {
      for (int64_t ks = 0; ks < L.kp / 4; ++ks)
        for (int p = 0; p < pb; ++p)
          for (int c = 0; c < kL; ++c)
            for (int j = 0; j < 4; ++j) *dst++ = int8_t(w8((b * kPB + p) * kL + c, int(ks * 4 + j)));
      continue;
    }
    for (int g = 0; g < L.ng; ++g) {
      for (int pair = 0; pair < L.g / 8; ++pair)
        for (int p = 0; p < pb; ++p)
          for (int c = 0; c < kL; ++c)
            for (int j = 0; j < 4; ++j) {
              const int n = (b * kPB + p) * kL + c, k0 = g * L.g + pair * 8 + j;
              *dst++ = int8_t((q4(n, k0) & 15) | ((q4(n, k0 + 4) & 15) << 4));
            }
      int16_t* gm = reinterpret_cast<int16_t*>(dst);
      for (int p = 0; p < pb; ++p)
        for (int c = 0; c < kL; ++c) {
          const int n = (b * kPB + p) * kL + c;
          *gm++ = n < s.n ? w.gmult[int64_t{n} * L.ng + g] : 0;
        }
      dst = reinterpret_cast<int8_t*>(gm);
    }
  }
  if (!L.cbx) return;
  const uint8_t* bits = static_cast<const uint8_t*>(w_in.w);
  const int64_t rb = codebook_row_bytes(s);
  auto idx = [&](int n, int k) -> uint32_t {  // 3-bit index, 0 outside the matrix
    if (n >= s.n || k >= s.k) return 0;
    const int64_t bit = int64_t{k} * 3, byte = bit / 8;
    uint32_t v = bits[n * rb + byte];
    if (byte + 1 < rb) v |= uint32_t(bits[n * rb + byte + 1]) << 8;
    return (v >> (bit % 8)) & 7;
  };
  for (int b = 0; b < L.blocks; ++b) {
    const int pb = L.pb(b);
    uint8_t* dst = base + L.cbx_offset(b);
    auto at = [&](int p, int64_t step, int e) {  // index of element e of k-step `step`, panel p
      return idx((b * kPB + p) * kL + e / 4, int(step * 4 + e % 4));
    };
    for (int64_t ks = 0; ks < L.kp / 4; ks += 2, dst += Layout::cbx_record_bytes(pb)) {
      for (int v = 0; v < cbx_vectors(pb); ++v)
        for (int e = 0; e < 64; ++e) {
          uint32_t x = at(kCbxVp[v], ks, e) | at(kCbxVp[v], ks + 1, e) << 3;
          if (pb >= 3 && v < 2) x |= (at(2, ks + v, e) & 3) << 6;
          dst[64 * v + e] = uint8_t(x);
        }
      if (pb < 3) continue;
      uint8_t* masks = dst + 64 * cbx_vectors(pb);
      for (int v = 0; v < 2; ++v)
        for (int e = 0; e < 64; ++e) masks[8 * v + e / 8] |= uint8_t((at(2, ks + v, e) >> 2) << (e % 8));
    }
  }
  int8_t* cbt = reinterpret_cast<int8_t*>(base + L.cbt_offset(0));
  for (int p = 0; p < L.panels; ++p)
    for (int g = 0; g < L.cng; ++g)
      for (int j = 0; j < 8; ++j)
        *cbt++ = p * kL < s.n ? w_in.codebook[(int64_t{p} * kL / s.codebook_rows * L.cng + g) * 8 + j] : 0;
}

// ---- plan: the task partition, a function of the shape only ------------------------------------

constexpr int kMr8[kPB + 1] = {0, 12, 12, 8, 6};  // int8 micro-tile rows for nr panels
constexpr int kMr4 = 4;                           // int4 micro-tile rows (nr <= 4)
constexpr int64_t kKc4 = 256;                     // int8 K chunk: 256 steps = 1024 bytes of K

struct Plan {
  Layout L;
  int64_t m = 0;
  bool dyn = false, fused = false;  // dynamic: fused = one pass with whole-row units
  int64_t lda_s = 0;                // row stride of the A copy in scratch (when one is needed)
  int64_t mb = 0, mblocks = 0;      // rows per unit, row blocks
  int bpc = 0, nchunks = 0;         // panel blocks per unit, column chunks
  int64_t np = 0;                   // padded row length of the dynamic raw buffer (P * 16)
  int64_t raw_bytes = 0;            // 4: int8 acc + bias (two-pass); 8: v (int4: columns in
                                    // order; int8 fused: even / odd lanes, see dyn8)
  int64_t abuf_rows = 0;            // rows of the scratch A block (mb rounded for AMX tiles)
};

// amx_rows: rows granularity of the A block in scratch (32 for AMX tiles, 1 otherwise).
Plan make_plan(const MatmulShape& s, const MatmulEpilogue& e, int amx_rows) {
  Plan p;
  make_layout(s, p.L);
  p.m = s.m;
  p.dyn = e.op == MatmulOp::dynamic;
  p.np = int64_t{p.L.panels} * kL;
  p.raw_bytes = 8;  // set below
  p.lda_s = p.L.kp + 64;  // not a power of two: the MR rows of a tile fall in different L1 sets
  const int mr = p.L.i4 ? kMr4 : kMr8[kPB];
  const int64_t wbytes = int64_t{p.L.panels} * kL * p.L.kp / (p.L.i4 ? 2 : 1);
  // Rows per unit: at most what keeps the unit's A rows (mb x kp) in L2 while the unit's
  // weight blocks stream through it once, so that big weights are read from memory once per
  // row block. Units: split N first (chunks of panel blocks), then M, until there are kUnits
  // (2+ threads balance); GEMV splits N finer since it is bandwidth-bound.
  const int64_t wunits = wbytes / (64 * 1024);  // GEMV: >= 64 KB of weights per unit
  if (s.m == 1 && wunits <= 1) {  // a small GEMV: one unit, as below, without run-time divisions
    p.mb = p.mblocks = 1;         // (decode plans every matrix of every token)
    p.bpc = p.L.blocks, p.nchunks = 1;
    p.fused = p.dyn;
    p.raw_bytes = p.L.i4 || p.fused ? 8 : 4;
    p.abuf_rows = amx_rows;       // round_up(1, amx_rows)
    return p;
  }
  const int64_t kUnits = s.m > 1 ? 8 : wunits < 1 ? 1 : wunits > 32 ? 32 : wunits;
  int64_t mb_max = (512 * 1024) / p.L.kp;
  mb_max = mb_max < mr ? mr : mb_max > 256 ? 256 : mb_max;  // 256 bounds x86_run's row maxima
  int64_t mblocks = ceil_div(s.m, mb_max);
  // Whole-row units for dynamic requantization when the weights are L2-sized (each unit reads
  // them all) and M gives enough row blocks; otherwise pass 0 splits N and pass 1 finishes rows.
  p.fused = p.dyn && s.m >= 64 && wbytes <= (1 << 20);
  int64_t chunks = 1;
  if (p.fused) {  // ~64 rows per unit (each unit reads all the weights), 8 units at least
    const int64_t want = round_up(ceil_div(s.m, 64), kUnits);
    mblocks = mblocks > want ? mblocks : want;
    // whole micro-tiles; AMX (int8): whole 16-row tiles, so that no unit pads a tile (64 rows: 4
    // units of 16, not 6 of 11 that each copy A zero-padded and half-fill their tiles)
    const int64_t tile = amx_rows > 1 && !p.L.i4 ? 16 : mr;
    mblocks = ceil_div(s.m, round_up(ceil_div(s.m, mblocks), tile));
  } else {
    const int64_t need = ceil_div(kUnits, mblocks > 0 ? mblocks : 1);
    chunks = need < p.L.blocks ? need : p.L.blocks;
    if (mblocks * chunks < kUnits) {  // few panel blocks: split M further (>= mr rows per unit)
      const int64_t more = ceil_div(kUnits, chunks), cap = ceil_div(s.m, mr);
      mblocks = more < cap ? (more > mblocks ? more : mblocks) : (cap > mblocks ? cap : mblocks);
    }
  }
  if (!p.fused && mblocks > kUnits) mblocks = round_up(mblocks, kUnits);  // whole rounds for 2-8 threads
  const int64_t min_blocks = ceil_div(s.m, mb_max);             // mb <= 256 (row maxima array)
  mblocks = mblocks < min_blocks ? min_blocks : mblocks;
  p.mblocks = s.m > 0 ? (mblocks < 1 ? 1 : mblocks) : 0;
  p.mb = p.mblocks ? ceil_div(s.m, p.mblocks) : 1;  // even out the blocks
  p.mblocks = p.mblocks ? ceil_div(s.m, p.mb) : 0;
  p.bpc = int(ceil_div(p.L.blocks, chunks));
  p.nchunks = int(ceil_div(p.L.blocks, p.bpc));
  if (p.dyn && p.nchunks == 1) p.fused = true;  // units hold whole rows anyway (small N)
  p.raw_bytes = p.L.i4 || p.fused ? 8 : 4;      // the workspace keeps the narrower i32
  p.abuf_rows = round_up(p.mb, amx_rows);
  return p;
}

// Workspace (two-pass dynamic only): raw [M][np] (acc+bias i32 or v i64), rowmax u64 [M][nchunks].
size_t x86_workspace(const Plan& p) {
  if (!p.dyn || p.fused) return 0;
  return size_t(round_up(p.m * p.np * p.raw_bytes, kAlign) + p.m * p.nchunks * 8);
}
// Scratch: the A copy, the fused strip (raw [mb][np]), K-chunk partial sums, AMX tail rows.
size_t x86_scratch(const Plan& p, size_t amx_extra) {  // amx_extra: the AMX tail block
  size_t bytes = size_t(round_up(p.abuf_rows * p.lda_s, kAlign)) + 64;
  if (p.fused) bytes += size_t(round_up(p.mb * p.np * p.raw_bytes, kAlign));
  bytes += size_t(round_up(p.mb, kMr8[1]) * kPB * 64);  // K-chunk partial sums
  return bytes + amx_extra;
}
int x86_passes(const Plan& p) { return p.dyn && !p.fused ? 2 : 1; }
int64_t x86_tasks(const Plan& p, int pass) { return pass == 0 ? p.mblocks * p.nchunks : p.m; }

// ---- A copies ----------------------------------------------------------------------------

// rows x K int8 (stride lda) -> dst rows x kp, columns K..kp-1 and rows rows..zrows-1 zero
// (zero weights meet them anyway; the copy only keeps reads inside buffers).
void copy_a(const int8_t* a, int64_t lda, int64_t rows, int k, int64_t kp, int64_t zrows, uint8_t* dst) {
  for (int64_t r = 0; r < zrows; ++r, dst += kp) {
    const int8_t* src = a + r * lda;
    const int live = r < rows ? k : 0;
    for (int64_t c = 0; c < kp; c += 64) {
      const int64_t n = live - c;
      const __mmask64 m = n >= 64 ? ~__mmask64{0} : n > 0 ? _bzhi_u64(~uint64_t{0}, unsigned(n)) : 0;
      _mm512_storeu_si512(dst + c, _mm512_maskz_loadu_epi8(m, src + c));
    }
  }
}

// ---- micro-kernels ---------------------------------------------------------------------------

// int8: out[i][n][16] (i32) = sum over k4 steps of a[i][4k..4k+3] (u8) . b_n[k][lane][0..3] (s8).
// init (optional): the partial sums of earlier K chunks, [MR][NR] (i32, wrapping).
template <int MR, int NR>
void tile8(const uint8_t* a, int64_t lda, const int8_t* b, int64_t bstep, int64_t k4,
           const __m512i* init, __m512i* out) {
  __m512i acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) acc[i][n] = init ? init[i * NR + n] : _mm512_setzero_si512();
  const __m512i k80 = _mm512_set1_epi8(char(0x80));
  if (MR == 1) {  // a GEMV row: even and odd k-steps on two chains (half the vpdpbusd latency chain)
    __m512i odd[NR];
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) odd[n] = _mm512_setzero_si512();
    int64_t k = 0;
    for (; k + 2 <= k4; k += 2, b += 2 * bstep, a += 8) {
      int32_t v0, v1;
      std::memcpy(&v0, a, 4);
      std::memcpy(&v1, a + 4, 4);
      const __m512i x0 = _mm512_xor_si512(_mm512_set1_epi32(v0), k80), x1 = _mm512_xor_si512(_mm512_set1_epi32(v1), k80);
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) {
        acc[0][n] = _mm512_dpbusd_epi32(acc[0][n], x0, _mm512_loadu_si512(b + n * 64));
        odd[n] = _mm512_dpbusd_epi32(odd[n], x1, _mm512_loadu_si512(b + bstep + n * 64));
      }
    }
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) acc[0][n] = _mm512_add_epi32(acc[0][n], odd[n]);  // i32 sums wrap: same bytes
    k4 -= k;
  }
  for (int64_t k = 0; k < k4; ++k, b += bstep, a += 4) {
    __m512i w[NR];
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) w[n] = _mm512_loadu_si512(b + n * 64);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      std::memcpy(&v, a + i * lda, 4);
      const __m512i xa = _mm512_xor_si512(_mm512_set1_epi32(v), k80);  // a + 128 as u8
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) acc[i][n] = _mm512_dpbusd_epi32(acc[i][n], xa, w[n]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) out[i * NR + n] = acc[i][n];
}

// int8 GEMV over the index copy (cbx; AVX512_VBMI): one row of A, NR panels, k-steps [0, k4).
// vpermb reads the low 6 bits of each index byte: from the panel's codebook for the step's group
// broadcast to all 8 qwords (te: entry i = cb[i % 8]) it gives the weights of the even k-step,
// from te permuted to entry i = cb[i / 8] (to) those of the odd one. Panel 2's indices: bits 6-7 of
// V0 / V1 shifted down (vpsrlw 6; the bits that come in above bit 1 are ignored by tables whose
// entry i is cb[i % 4] (tl) or cb[4 + i % 4] (th)), and the mask picks th where the third bit is
// set. Per 512 weights of a 4-panel record: 10 vpermb (port 5), 8 vpdpbusd and 2 shifts (port 0).
// The two k-steps of a pair feed two accumulator chains, as in tile8<1, NR>; the weights are the
// int8 blocks' bytes, so the sums are tile8's. idx: the block's first record; cbt: its first
// panel's codebooks.
struct CbIdx {
  alignas(64) uint8_t odd[64], lo[64], hi[64];
};
constexpr CbIdx make_cb_idx() {
  CbIdx t{};
  for (int i = 0; i < 64; ++i) t.odd[i] = uint8_t(i / 8), t.lo[i] = uint8_t(i % 4), t.hi[i] = uint8_t(4 + i % 4);
  return t;
}
constexpr CbIdx kCbIdx = make_cb_idx();

// Panel 2's weights from index vector v's bits 6-7 and the third bits m.
__attribute__((target("avx512vbmi"), always_inline)) inline __m512i cb_c_weights(__m512i v, __mmask64 m, __m512i tl,
                                                                                 __m512i th) {
  const __m512i c = _mm512_srli_epi16(v, 6);
  return _mm512_mask_permutexvar_epi8(_mm512_permutexvar_epi8(c, tl), m, c, th);
}

// One record of tile8cb: k-steps k and k + 1 (PAIR), or an odd k4's last step alone (the record's
// odd fields are padding then).
template <int NR, bool PAIR>
__attribute__((target("avx512vbmi"), always_inline)) inline void cb_record(const uint8_t* a, int64_t k, const uint8_t* idx,
                                                                           const __m512i* te, const __m512i* to, __m512i tl,
                                                                           __m512i th, __m512i* acc, __m512i* odd) {
  constexpr int kV = cbx_vectors(NR);
  const __m512i k80 = _mm512_set1_epi8(char(0x80));
  int32_t v0, v1 = 0;
  std::memcpy(&v0, a + 4 * k, 4);
  if (PAIR) std::memcpy(&v1, a + 4 * k + 4, 4);
  const __m512i x0 = _mm512_xor_si512(_mm512_set1_epi32(v0), k80), x1 = _mm512_xor_si512(_mm512_set1_epi32(v1), k80);
  __m512i v[kV];
#pragma GCC unroll 3
  for (int i = 0; i < kV; ++i) {
    const int n = kCbxVp[i];
    v[i] = _mm512_loadu_si512(idx + 64 * i);
    acc[n] = _mm512_dpbusd_epi32(acc[n], x0, _mm512_permutexvar_epi8(v[i], te[n]));
    if (PAIR) odd[n] = _mm512_dpbusd_epi32(odd[n], x1, _mm512_permutexvar_epi8(v[i], to[n]));
  }
  if (NR >= 3) {
    __mmask64 m0, m1;
    std::memcpy(&m0, idx + 64 * kV, 8);
    std::memcpy(&m1, idx + 64 * kV + 8, 8);
    acc[2 % NR] = _mm512_dpbusd_epi32(acc[2 % NR], x0, cb_c_weights(v[0], m0, tl, th));
    if (PAIR) odd[2 % NR] = _mm512_dpbusd_epi32(odd[2 % NR], x1, cb_c_weights(v[1 % kV], m1, tl, th));
  }
}

template <int NR>
__attribute__((target("avx512vbmi"))) void tile8cb(const uint8_t* a, const uint8_t* idx, const int8_t* cbt, int cng,
                                                   int g4, int64_t k4, __m512i* out) {
  constexpr int64_t kRec = Layout::cbx_record_bytes(NR);
  __m512i acc[NR], odd[NR];
#pragma GCC unroll 4
  for (int n = 0; n < NR; ++n) acc[n] = odd[n] = _mm512_setzero_si512();
  for (int64_t k0 = 0, g = 0; k0 < k4; k0 += g4, ++g) {  // g4 is even: pairs never straddle groups
    __m512i te[NR], to[NR], tl = _mm512_setzero_si512(), th = tl;
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) {
      int64_t c;
      std::memcpy(&c, cbt + (int64_t{n} * cng + g) * 8, 8);
      te[n] = _mm512_set1_epi64(c);
      to[n] = _mm512_permutexvar_epi8(_mm512_load_si512(kCbIdx.odd), te[n]);
    }
    if (NR >= 3) {
      tl = _mm512_permutexvar_epi8(_mm512_load_si512(kCbIdx.lo), te[2 % NR]);
      th = _mm512_permutexvar_epi8(_mm512_load_si512(kCbIdx.hi), te[2 % NR]);
    }
    const int64_t k1 = k0 + g4 < k4 ? k0 + g4 : k4;
    int64_t k = k0;
    for (; k + 2 <= k1; k += 2, idx += kRec) cb_record<NR, true>(a, k, idx, te, to, tl, th, acc, odd);
    if (k < k1) cb_record<NR, false>(a, k, idx, te, to, tl, th, acc, odd), idx += kRec;
  }
#pragma GCC unroll 4
  for (int n = 0; n < NR; ++n) out[n] = _mm512_add_epi32(acc[n], odd[n]);  // i32 sums wrap: same bytes
}
using Tile8CbFn = void (*)(const uint8_t*, const uint8_t*, const int8_t*, int, int, int64_t, __m512i*);
constexpr Tile8CbFn kTile8Cb[kPB + 1] = {nullptr, tile8cb<1>, tile8cb<2>, tile8cb<3>, tile8cb<4>};
// Panel block b of a cbx layout times one row a (whole K): acc[pb].
inline void tile8cb_block(const Layout& L, const uint8_t* packed, int b, const uint8_t* a, __m512i* acc) {
  kTile8Cb[L.pb(b)](a, packed + L.cbx_offset(b), reinterpret_cast<const int8_t*>(packed + L.cbt_offset(b * kPB)), L.cng,
                    L.cg / 4, L.k4, acc);
}

// int4: out[i][n] = (sum_e, sum_o) i64 pairs: sum over groups of acc_u[g] * gm (even / odd lanes).
// b: the block's first group; gstride: bytes per group; pb: panels in the block; n0: first panel.
template <int MR, int NR>
void tile4(const uint8_t* a, int64_t lda, const uint8_t* b, int pb, int n0, int G, int ng,
           int64_t gstride, __m512i* out_e, __m512i* out_o) {
  __m512i se[MR][NR], so[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) se[i][n] = so[i][n] = _mm512_setzero_si512();
  const __m512i f0 = _mm512_set1_epi8(char(0xF0)), k80 = _mm512_set1_epi8(char(0x80));
  const int64_t bstep = int64_t{pb} * 64;
  for (int g = 0; g < ng; ++g, b += gstride, a += G) {
    __m512i acc[MR][NR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) acc[i][n] = _mm512_setzero_si512();
    const uint8_t* bp = b + n0 * 64;
    const uint8_t* ap = a;
    for (int j = 0; j < G / 8; ++j, bp += bstep, ap += 8) {
      __m512i x0[MR], x1[MR];
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        int32_t v0, v1;
        std::memcpy(&v0, ap + i * lda, 4);
        std::memcpy(&v1, ap + i * lda + 4, 4);
        x0[i] = _mm512_xor_si512(_mm512_set1_epi32(v0), k80);  // a + 128 as u8
        x1[i] = _mm512_xor_si512(_mm512_set1_epi32(v1), k80);
      }
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) {
        const __m512i w = _mm512_loadu_si512(bp + n * 64);
        const __m512i lo = _mm512_and_si512(_mm512_slli_epi16(w, 4), f0);  // 16q, step 2j
        const __m512i hi = _mm512_and_si512(w, f0);                         // 16q, step 2j+1
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
          acc[i][n] = _mm512_dpbusd_epi32(acc[i][n], x0[i], lo);
          acc[i][n] = _mm512_dpbusd_epi32(acc[i][n], x1[i], hi);
        }
      }
    }
    const int16_t* gmp = reinterpret_cast<const int16_t*>(b + int64_t{G} / 8 * bstep) + n0 * kL;
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) {
      const __m512i gm = _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(gmp + n * kL)));
      const __m512i gmo = _mm512_srli_epi64(gm, 32);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        se[i][n] = _mm512_add_epi64(se[i][n], _mm512_mul_epi32(acc[i][n], gm));
        so[i][n] = _mm512_add_epi64(so[i][n], _mm512_mul_epi32(_mm512_srli_epi64(acc[i][n], 32), gmo));
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) out_e[i * NR + n] = se[i][n], out_o[i * NR + n] = so[i][n];
}

using Tile8Fn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, const __m512i*,
                        __m512i*);
using Tile4Fn = void (*)(const uint8_t*, int64_t, const uint8_t*, int, int, int, int, int64_t,
                         __m512i*, __m512i*);

template <int NR, int... I>
constexpr Tile8Fn tile8_at(int mr, std::integer_sequence<int, I...>) {
  Tile8Fn f = nullptr;
  ((mr == I + 1 ? (f = &tile8<I + 1, NR>, 0) : 0), ...);
  return f;
}
Tile8Fn tile8_fn(int mr, int nr) {
  switch (nr) {
    case 1: return tile8_at<1>(mr, std::make_integer_sequence<int, kMr8[1]>{});
    case 2: return tile8_at<2>(mr, std::make_integer_sequence<int, kMr8[2]>{});
    case 3: return tile8_at<3>(mr, std::make_integer_sequence<int, kMr8[3]>{});
    default: return tile8_at<4>(mr, std::make_integer_sequence<int, kMr8[4]>{});
  }
}
template <int NR, int... I>
constexpr Tile4Fn tile4_at(int mr, std::integer_sequence<int, I...>) {
  Tile4Fn f = nullptr;
  ((mr == I + 1 ? (f = &tile4<I + 1, NR>, 0) : 0), ...);
  return f;
}
Tile4Fn tile4_fn(int mr, int nr) {
  switch (nr) {
    case 1: return tile4_at<1>(mr, std::make_integer_sequence<int, kMr4>{});
    case 2: return tile4_at<2>(mr, std::make_integer_sequence<int, kMr4>{});
    case 3: return tile4_at<3>(mr, std::make_integer_sequence<int, kMr4>{});
    default: return tile4_at<4>(mr, std::make_integer_sequence<int, kMr4>{});
  }
}

// ---- epilogue --------------------------------------------------------------------------------

// 16 columns of one row as exact i64 v, columns 0-7 in lo and 8-15 in hi.
struct V16 { __m512i lo, hi; };

// Per-panel constants, hoisted out of the row loop.
struct PanelEpi {
  __m512i bias32;            // int8: added to the i32 accumulator (cbias for VNNI, bias for AMX)
  __m512i mw_lo, mw_hi;      // int8: sign-extended multipliers
  __m512i b16_lo, b16_hi, gs_lo, gs_hi;  // int4
  __m512i sh_lo, sh_hi, rd_lo, rd_hi;    // requant / residual: per-column shift and 2^(s-1)
  __mmask16 mask;            // live columns
  int64_t n0;
};

PanelEpi panel_epi(const Plan& p, const uint8_t* packed, const MatmulEpilogue& e, int panel,
                   bool amx_bias) {
  PanelEpi q;
  q.n0 = int64_t{panel} * kL;
  const int64_t live = p.L.n - q.n0 < kL ? p.L.n - q.n0 : kL;
  q.mask = __mmask16((1u << live) - 1);
  const uint8_t* par = packed + panel * p.L.par_bytes;
  if (!p.L.i4) {
    const ParI8* pi = reinterpret_cast<const ParI8*>(par);
    q.bias32 = amx_bias ? _mm512_loadu_si512(packed + p.L.amx_bias_offset() + panel * 64)
                        : _mm512_loadu_si512(pi->cbias);
    if (e.op == MatmulOp::dynamic) {  // even / odd lanes (dyn8)
      q.mw_lo = _mm512_loadu_si512(pi->mw);
      q.mw_hi = _mm512_srli_epi64(q.mw_lo, 32);
    } else {
      q.mw_lo = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pi->mw)));
      q.mw_hi = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pi->mw + 8)));
    }
  } else {
    const ParI4* pi = reinterpret_cast<const ParI4*>(par);
    q.b16_lo = _mm512_loadu_si512(pi->b16), q.b16_hi = _mm512_loadu_si512(pi->b16 + 8);
    q.gs_lo = _mm512_loadu_si512(pi->gs), q.gs_hi = _mm512_loadu_si512(pi->gs + 8);
  }
  if (e.op == MatmulOp::requant || e.op == MatmulOp::residual) {
    const __m128i sh8 = _mm_maskz_loadu_epi8(q.mask, e.shift + q.n0);
    q.sh_lo = _mm512_cvtepi8_epi64(sh8);
    q.sh_hi = _mm512_cvtepi8_epi64(_mm_srli_si128(sh8, 8));
    // 2^(s-1); s = 0 gives a count of 2^64-1, which vpsllvq turns into 0.
    const __m512i one = _mm512_set1_epi64(1);
    q.rd_lo = _mm512_sllv_epi64(one, _mm512_sub_epi64(q.sh_lo, one));
    q.rd_hi = _mm512_sllv_epi64(one, _mm512_sub_epi64(q.sh_hi, one));
  }
  return q;
}

// int8: i32 accumulator (+ bias32, wrapping) -> v.
inline __m512i acc_bias(const PanelEpi& q, __m512i acc) { return _mm512_add_epi32(acc, q.bias32); }
inline V16 v_from_acc(const PanelEpi& q, __m512i a) {  // a = acc + bias (i32)
  return {_mm512_mul_epi32(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(a)), q.mw_lo),
          _mm512_mul_epi32(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(a, 1)), q.mw_hi)};
}
// int4: (even, odd) lane sums -> v in column order.
inline V16 v_from_sums(const PanelEpi& q, __m512i se, __m512i so) {
  const __m512i lo = _mm512_unpacklo_epi64(se, so), hi = _mm512_unpackhi_epi64(se, so);
  const __m512i i0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i i1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  __m512i v0 = _mm512_permutex2var_epi64(lo, i0, hi), v1 = _mm512_permutex2var_epi64(lo, i1, hi);
  v0 = _mm512_sllv_epi64(_mm512_srai_epi64(_mm512_add_epi64(v0, q.b16_lo), 4), q.gs_lo);
  v1 = _mm512_sllv_epi64(_mm512_srai_epi64(_mm512_add_epi64(v1, q.b16_hi), 4), q.gs_hi);
  return {v0, v1};
}

inline __m512i rshift_round16(__m512i v, __m512i rd, __m512i sh) {
  return _mm512_srav_epi64(_mm512_add_epi64(v, rd), sh);
}

// Saturating narrow of 16 i64 to `t` and a masked store at y (element pointer).
inline void store16(OutType t, void* y, __m512i lo, __m512i hi, __mmask16 m) {
  switch (t) {
    case OutType::i8: {
      const __m128i r = _mm_unpacklo_epi64(_mm512_cvtsepi64_epi8(lo), _mm512_cvtsepi64_epi8(hi));
      if (m == 0xffff) _mm_storeu_si128(static_cast<__m128i*>(y), r);
      else _mm_mask_storeu_epi8(y, m, r);
      break;
    }
    case OutType::i16: {
      const __m256i r = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtsepi64_epi16(lo)),
                                                _mm512_cvtsepi64_epi16(hi), 1);
      if (m == 0xffff) _mm256_storeu_si256(static_cast<__m256i*>(y), r);
      else _mm256_mask_storeu_epi16(y, m, r);
      break;
    }
    case OutType::i32: {
      const __m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi64_epi32(lo)),
                                           _mm512_cvtsepi64_epi32(hi), 1);
      _mm512_mask_storeu_epi32(y, m, r);
      break;
    }
    case OutType::u8: break;  // not produced by this family
  }
}

inline size_t out_size(OutType t) {
  return t == OutType::i32 ? 4 : t == OutType::i16 ? 2 : 1;
}

// Everything a unit's epilogue needs besides the panel constants.
struct EpiCtx {
  const MatmulArgs* x;
  const Plan* p;
  uint8_t* raw;       // dynamic: raw buffer (workspace or fused strip), row stride p->np
  int64_t raw_row0;   // row of raw's first row
  __m512i* rowmax;    // dynamic: per row of the unit, u64 max |v| (8 lanes)
  int64_t m0;         // first row of the unit (rowmax index 0)
};

// Epilogue of one row m, one panel. For int8, `acc` is the i32 accumulator + bias32.
inline void epilogue_row(const EpiCtx& c, const PanelEpi& q, int64_t m, __m512i acc, const V16& v) {
  const MatmulArgs& x = *c.x;
  const MatmulEpilogue& e = x.e;
  switch (e.op) {
    case MatmulOp::acc:
      store16(OutType::i32, static_cast<int32_t*>(x.y) + m * x.ldy + q.n0, v.lo, v.hi, q.mask);
      break;
    case MatmulOp::requant:
      store16(e.out_type, static_cast<int8_t*>(x.y) + (m * x.ldy + q.n0) * out_size(e.out_type),
              rshift_round16(v.lo, q.rd_lo, q.sh_lo), rshift_round16(v.hi, q.rd_hi, q.sh_hi), q.mask);
      break;
    case MatmulOp::residual: {
      __m512i r0, r1;
      const int64_t ri = m * e.ldr + q.n0;
      if (e.out_type == OutType::i16) {
        const __m256i r = _mm256_maskz_loadu_epi16(q.mask, static_cast<const int16_t*>(e.residual) + ri);
        r0 = _mm512_cvtepi16_epi64(_mm256_castsi256_si128(r));
        r1 = _mm512_cvtepi16_epi64(_mm256_extracti128_si256(r, 1));
      } else {
        const __m512i r = _mm512_maskz_loadu_epi32(q.mask, static_cast<const int32_t*>(e.residual) + ri);
        r0 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(r));
        r1 = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(r, 1));
      }
      store16(e.out_type, static_cast<int8_t*>(x.y) + (m * x.ldy + q.n0) * out_size(e.out_type),
              _mm512_add_epi64(r0, rshift_round16(v.lo, q.rd_lo, q.sh_lo)),
              _mm512_add_epi64(r1, rshift_round16(v.hi, q.rd_hi, q.sh_hi)), q.mask);
      break;
    }
    case MatmulOp::dynamic: {  // int4 (int8 goes through dyn8)
      uint8_t* dst = c.raw + ((m - c.raw_row0) * c.p->np + q.n0) * c.p->raw_bytes;
      _mm512_storeu_si512(dst, v.lo);
      _mm512_storeu_si512(dst + 64, v.hi);
      __m512i& mx = c.rowmax[m - c.m0];
      mx = _mm512_max_epu64(mx, _mm512_max_epu64(_mm512_abs_epi64(v.lo), _mm512_abs_epi64(v.hi)));
      break;
    }
  }
}

// Dynamic, int8: v = (acc + bias) * mw as even / odd lanes (order does not matter for the max);
// stores acc + bias (raw_bytes 4) or v (raw_bytes 8: even lanes, then odd lanes) and returns
// max(mx, |v|).
// v = a * mw as even / odd lanes (mw_lo: the multipliers, mw_hi: them shifted down 32), stored at
// dst and dst + 64 when store; returns max(mx, |v|).
inline __m512i v_eo(__m512i a, __m512i mw_lo, __m512i mw_hi, bool store, uint8_t* dst, __m512i mx) {
  const __m512i ve = _mm512_mul_epi32(a, mw_lo), vo = _mm512_mul_epi32(_mm512_srli_epi64(a, 32), mw_hi);
  if (store) {
    _mm512_storeu_si512(dst, ve);
    _mm512_storeu_si512(dst + 64, vo);
  }
  return _mm512_max_epu64(mx, _mm512_max_epu64(_mm512_abs_epi64(ve), _mm512_abs_epi64(vo)));
}
inline __m512i dyn8(const EpiCtx& c, const PanelEpi& q, int64_t m, __m512i a, __m512i mx) {
  uint8_t* dst = c.raw + ((m - c.raw_row0) * c.p->np + q.n0) * c.p->raw_bytes;
  if (c.p->raw_bytes != 8) _mm512_storeu_si512(dst, a);
  return v_eo(a, q.mw_lo, q.mw_hi, c.p->raw_bytes == 8, dst, mx);
}

// store16 for v given as even (columns 0, 2, ..., 14) and odd lanes; i8 / i16 only. Its one caller,
// finalize_row, gives |v| <= 2^(bits - 1) (the dynamic shift), so each lane's low dword is v: the
// odd lanes' dwords are moved up beside the even ones (column order) and one saturating narrow
// stores all 16 (2 port-5 uops, against 7 for two 64-bit narrows and their interleave).
inline void store16_eo(OutType t, void* y, __m512i e, __m512i o, __mmask16 m) {
  const __m512i d = _mm512_mask_mov_epi32(e, __mmask16(0xAAAA), _mm512_slli_epi64(o, 32));
  if (t == OutType::i8) _mm512_mask_cvtsepi32_storeu_epi8(y, m, d);
  else _mm512_mask_cvtsepi32_storeu_epi16(y, m, d);
}

// Dynamic requantization of row m from its raw values, given the row's max |v|.
void finalize_row(const Plan& p, const MatmulArgs& x, const uint8_t* packed, int64_t m,
                  const uint8_t* raw, uint64_t vmax) {
  const MatmulEpilogue& e = x.e;
  const int bits = e.out_type == OutType::i16 ? 16 : 8;
  const int bitlen = vmax ? 64 - __builtin_clzll(vmax) : 0;
  const int sh = bitlen - (bits - 1) > 0 ? bitlen - (bits - 1) : 0;
  e.row_shift[m] = int8_t(sh);
  const __m512i shv = _mm512_set1_epi64(sh), rd = _mm512_set1_epi64(sh ? int64_t{1} << (sh - 1) : 0);
  const size_t osz = out_size(e.out_type);
  int8_t* y = static_cast<int8_t*>(x.y) + m * x.ldy * int64_t(osz);
  for (int panel = 0; panel < p.L.panels; ++panel) {
    const int64_t n0 = int64_t{panel} * kL;
    const int64_t live = p.L.n - n0 < kL ? p.L.n - n0 : kL;
    const __mmask16 mask = __mmask16((1u << live) - 1);
    if (p.L.i4) {
      store16(e.out_type, y + n0 * int64_t(osz), rshift_round16(_mm512_loadu_si512(raw + n0 * 8), rd, shv),
              rshift_round16(_mm512_loadu_si512(raw + n0 * 8 + 64), rd, shv), mask);
      continue;
    }
    __m512i ve, vo;  // int8: even / odd lanes
    if (p.raw_bytes == 8) {
      ve = _mm512_loadu_si512(raw + n0 * 8);
      vo = _mm512_loadu_si512(raw + n0 * 8 + 64);
    } else {
      const ParI8* pi = reinterpret_cast<const ParI8*>(packed + panel * p.L.par_bytes);
      const __m512i a = _mm512_loadu_si512(raw + n0 * 4), mw = _mm512_loadu_si512(pi->mw);
      ve = _mm512_mul_epi32(a, mw);
      vo = _mm512_mul_epi32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(mw, 32));
    }
    store16_eo(e.out_type, y + n0 * int64_t(osz), rshift_round16(ve, rd, shv), rshift_round16(vo, rd, shv), mask);
  }
}

// ---- driver ------------------------------------------------------------------------------------

// The small-GEMV plan's one unit with dynamic requantization and int8 or cb3 weights (token-by-token
// decode of small models, where the matrices are a few KB and the unit bookkeeping below would
// cost as much as the sums): the same micro-kernels and the same arithmetic as the general path
// (K is not chunked: with one row there is no A block to keep in L2, and the i32 sums wrap
// either way), v kept in the strip and requantized by finalize_row.
void gemv_small_dyn8(const Plan& p, const MatmulArgs& x, bool cbx, uint8_t* abuf, uint8_t* strip) {
  const uint8_t* packed = static_cast<const uint8_t*>(x.packed);
  const uint8_t* av = reinterpret_cast<const uint8_t*>(x.a);
  if (p.L.k % 4 != 0) {
    copy_a(x.a, x.lda, 1, p.L.k, p.lda_s, 1, abuf);
    av = abuf;
  }
  __m512i mx = _mm512_setzero_si512();
  for (int b = 0; b < p.L.blocks; ++b) {
    const int pb = p.L.pb(b);
    __m512i acc[kPB];
    if (cbx)
      tile8cb_block(p.L, packed, b, av, acc);
    else
      tile8_fn(1, pb)(av, 0, reinterpret_cast<const int8_t*>(packed + p.L.block_offset(b)), int64_t{pb} * 64,
                      p.L.k4, nullptr, acc);
    for (int j = 0; j < pb; ++j) {  // dyn8's v and max |v|
      const ParI8* pi = reinterpret_cast<const ParI8*>(packed + (b * kPB + j) * p.L.par_bytes);
      const __m512i mw = _mm512_loadu_si512(pi->mw);
      mx = v_eo(_mm512_add_epi32(acc[j], _mm512_loadu_si512(pi->cbias)), mw, _mm512_srli_epi64(mw, 32), true,
                strip + (b * kPB + j) * kL * 8, mx);
    }
  }
  finalize_row(p, x, packed, 0, strip, _mm512_reduce_max_epu64(mx));
}

// No AMX: every unit runs the VNNI micro-kernels.
struct NoAmx {
  static constexpr int kRows = 1;
  static size_t scratch(const Plan&) { return 0; }
  static bool use(const Plan&) { return false; }
  static void begin() {}
  static void end() {}
  // Computes rows [0, rows) of the unit's A (s8, row stride lda; rows at or past `readable` may not
  // be read: copy them, zero padded, into `tmp`) times the block's pb panels into i32
  // accumulators (acc + bias is the caller's business) and calls epi(row, panel, acc).
  template <class Epi>
  static void block(const Plan&, const int8_t*, int64_t, int64_t, int64_t, const uint8_t*, int,
                    uint8_t*, Epi&&) {}
};

template <class Amx>
void x86_run_units(Plan p, const MatmulShape& s, const MatmulArgs& x, int pass, int64_t begin, int64_t end,
                   void* scratch);

// The small GEMV returns before the general driver's frame (16 KB of row maxima, tile buffers) is set
// up: decode runs a few hundred of them per token.
template <class Amx>
void x86_run(const MatmulShape& s, const MatmulArgs& x, int pass, int64_t begin, int64_t end,
             void* scratch) {
  const Plan p = make_plan(s, x.e, Amx::kRows);
  if (p.m == 1 && p.nchunks == 1 && p.fused && !p.L.i4 && !Amx::use(p)) {  // (the one task: begin 0, end 1)
    uint8_t* abuf = align64<uint8_t>(scratch);
    if (begin < end)
      gemv_small_dyn8(p, x, p.L.cbx && cpu_features().vbmi, abuf, abuf + round_up(p.abuf_rows * p.lda_s, kAlign));
    return;
  }
  x86_run_units<Amx>(p, s, x, pass, begin, end, scratch);
}

template <class Amx>
__attribute__((noinline)) void x86_run_units(Plan p, const MatmulShape& s, const MatmulArgs& x, int pass,
                                             int64_t begin, int64_t end, void* scratch) {
  // (p by value: a local the loops below can keep in registers; through a reference every field
  // would be reloaded after each store of the epilogue)
  const uint8_t* packed = static_cast<const uint8_t*>(x.packed);
  uint8_t* ws = static_cast<uint8_t*>(x.workspace);
  uint64_t* ws_max = p.dyn && !p.fused
                         ? reinterpret_cast<uint64_t*>(ws + round_up(p.m * p.np * p.raw_bytes, kAlign))
                         : nullptr;
  if (pass == 1) {  // two-pass dynamic: requantize whole rows
    for (int64_t m = begin; m < end; ++m) {
      uint64_t vmax = 0;
      for (int c = 0; c < p.nchunks; ++c) vmax = ws_max[m * p.nchunks + c] > vmax ? ws_max[m * p.nchunks + c] : vmax;
      finalize_row(p, x, packed, m, ws + m * p.np * p.raw_bytes, vmax);
    }
    return;
  }
  const bool amx = Amx::use(p);
  const bool vbmi = p.L.cbx && cpu_features().vbmi;
  uint8_t* abuf = align64<uint8_t>(scratch);
  uint8_t* strip = abuf + round_up(p.abuf_rows * p.lda_s, kAlign);
  __m512i* part = reinterpret_cast<__m512i*>(strip + (p.fused ? round_up(p.mb * p.np * p.raw_bytes, kAlign) : 0));
  uint8_t* amx_scratch = reinterpret_cast<uint8_t*>(part + round_up(p.mb, kMr8[1]) * kPB);
  if (amx) Amx::begin();
  alignas(64) __m512i rowmax[256];  // dynamic: per row of the unit (mb <= 256, see make_plan)
  for (int64_t t = begin; t < end; ++t) {
    const int64_t m0 = (p.nchunks == 1 ? t : t / p.nchunks) * p.mb;
    const int64_t rows = p.m - m0 < p.mb ? p.m - m0 : p.mb;
    const int chunk = p.nchunks == 1 ? 0 : int(t % p.nchunks);
    const int b0 = chunk * p.bpc, b1 = b0 + p.bpc < p.L.blocks ? b0 + p.bpc : p.L.blocks;
    // A for this unit, read in place when whole k-steps never run past a row (AMX: 64-byte tile
    // rows; int8 VNNI: 4-byte steps; the micro-kernels add the +128 themselves, a free vpxord),
    // otherwise a zero-padded copy in scratch.
    const int8_t* ablk = reinterpret_cast<const int8_t*>(abuf);
    int64_t ablk_ld = p.lda_s, readable = round_up(rows, Amx::kRows);
    if (amx ? s.k % 64 == 0 : !p.L.i4 && s.k % 4 == 0) {
      ablk = x.a + m0 * x.lda, ablk_ld = x.lda, readable = rows;
    } else {
      copy_a(x.a + m0 * x.lda, x.lda, rows, s.k, p.lda_s, readable, abuf);
    }
    const uint8_t* av = reinterpret_cast<const uint8_t*>(ablk);  // VNNI micro-kernels
    const bool cbx = vbmi && rows == 1 && !amx;  // (cbx implies K % 4 == 0: A in place)
    EpiCtx c{&x, &p, p.fused ? strip : ws, p.fused ? m0 : 0, rowmax, m0};
    if (p.dyn)
      for (int64_t r = 0; r < rows; ++r) rowmax[r] = _mm512_setzero_si512();
    for (int b = b0; b < b1; ++b) {
      const int pb = p.L.pb(b);
      const uint8_t* wb = packed + p.L.block_offset(b);
      PanelEpi q[kPB];
      for (int j = 0; j < pb; ++j) q[j] = panel_epi(p, packed, x.e, b * kPB + j, amx);
      if (amx) {
        Amx::block(p, ablk, ablk_ld, readable, rows, wb, pb, amx_scratch, [&](int64_t r, int j, __m512i acc) {
          const __m512i a = acc_bias(q[j], acc);
          if (p.dyn) rowmax[r] = dyn8(c, q[j], m0 + r, a, rowmax[r]);
          else epilogue_row(c, q[j], m0 + r, a, v_from_acc(q[j], a));
        });
        continue;
      }
      // rows r .. r + mr - 1 of the tile's sums acc[mr][pb]: the epilogue, or for dynamic
      // requantization a + bias stored and max |v| tracked (lane order is irrelevant)
      auto finish8 = [&](int64_t r, int mr, const __m512i* acc) {
        for (int i = 0; i < mr; ++i) {
          if (p.dyn) {
            __m512i mx = rowmax[r + i];
            for (int j = 0; j < pb; ++j) mx = dyn8(c, q[j], m0 + r + i, acc_bias(q[j], acc[i * pb + j]), mx);
            rowmax[r + i] = mx;
            continue;
          }
          for (int j = 0; j < pb; ++j) {
            const __m512i a = acc_bias(q[j], acc[i * pb + j]);
            epilogue_row(c, q[j], m0 + r + i, a, v_from_acc(q[j], a));
          }
        }
      };
      if (cbx) {  // one row: the index copy
        __m512i acc[kPB];
        tile8cb_block(p.L, packed, b, av, acc);
        finish8(0, 1, acc);
        continue;
      }
      if (!p.L.i4) {
        // K in chunks of kKc4 steps so that the unit's A rows and the block's weights of one
        // chunk stay in L2; partial sums of a row tile wait in `part` (the i32 sum wraps, so
        // chunking gives the same bytes).
        const int mrmax = kMr8[pb];
        for (int64_t k0 = 0; k0 < p.L.k4; k0 += kKc4) {
          const int64_t kc = p.L.k4 - k0 < kKc4 ? p.L.k4 - k0 : kKc4;
          const bool first = k0 == 0, last = k0 + kc == p.L.k4;
          for (int64_t r = 0; r < rows; r += mrmax) {
            const int mr = int(rows - r < mrmax ? rows - r : mrmax);
            __m512i acc[24];  // mr * nr <= 24
            __m512i* pr = part + r * kPB;
            tile8_fn(mr, pb)(av + r * ablk_ld + k0 * 4, ablk_ld,
                             reinterpret_cast<const int8_t*>(wb) + k0 * pb * 64, int64_t{pb} * 64, kc,
                             first ? nullptr : pr, last ? acc : pr);
            if (last) finish8(r, mr, acc);
          }
        }
      } else {
        for (int64_t r = 0; r < rows; r += kMr4) {
          const int mr = int(rows - r < kMr4 ? rows - r : kMr4);
          __m512i se[kMr4 * kPB], so[kMr4 * kPB];
          tile4_fn(mr, pb)(av + r * ablk_ld, ablk_ld, wb, pb, 0, p.L.g, p.L.ng, p.L.group_bytes(pb),
                           se, so);
          for (int i = 0; i < mr; ++i)
            for (int j = 0; j < pb; ++j)
              epilogue_row(c, q[j], m0 + r + i, _mm512_setzero_si512(),
                           v_from_sums(q[j], se[i * pb + j], so[i * pb + j]));
        }
      }
    }
    if (!p.dyn) continue;
    for (int64_t r = 0; r < rows; ++r) {
      const uint64_t vmax = _mm512_reduce_max_epu64(rowmax[r]);
      if (p.fused)
        finalize_row(p, x, packed, m0 + r, strip + r * p.np * p.raw_bytes, vmax);
      else
        ws_max[(m0 + r) * p.nchunks + chunk] = vmax;
    }
  }
  if (amx) Amx::end();
}

}  // namespace
}  // namespace fq::k
