// DI-MatMul family: int8 activations x int8 / int4 weights, i32 accumulation, fused epilogues
// (static requantization, DI-MatMul dynamic per-token requantization, residual add).
// The scalar variant (kernels/matmul/ref.cc) is the executable form of this contract; every other
// variant produces the same bytes for every shape, epilogue and task split.
//
// ---- Numeric contract -------------------------------------------------------------------------
// Shapes: A [M, K] int8, row stride lda (symmetric per-token activations: the kernel never needs
// A's scale). W [N, K]. y [M, N], row stride ldy. G = group size (int4 only).
//
// int8 weights (WeightFormat::i8): w[n, k] int8, per-channel multiplier mw[n] (int32), bias[n]
// (int32, accumulator units, optional = 0):
//   acc[m,n] = bias[n] + sum_k A[m,k] * w[n,k]          i32, wrapping modulo 2^32 (exact while
//                                                      K * 2^14 + |bias| < 2^31, i.e. K < 131072)
//   v[m,n]   = acc[m,n] * mw[n]                        i64, exact
// int4 weights (WeightFormat::i4): q[n, k] in [-8, 7], stored two per byte, row n occupying
// (K+1)/2 bytes, element k in byte k/2, low nibble for even k, high nibble for odd k (two's
// complement 4-bit; an odd K leaves the last high nibble unused). Groups of G in {32, 64, 128}
// consecutive k (ng = ceil(K/G) groups, the last may be partial). Per-(n, group) mantissa
// gm[n, g] (int16, row-major [N][ng]), one left shift gs[n] in [0, 30] per n, bias[n] (int32, in
// units of 2^gs[n], optional):
//   acc_g[m,n,g] = sum_{k in group g} A[m,k] * q[n,k]   i32, exact (|acc_g| <= 2^17)
//   v[m,n]       = (bias[n] + sum_g acc_g * gm[n,g]) * 2^gs[n]         i64, exact
// So the real weight is w = q * gm[n, g] * 2^gs[n] * sW_unit, with sW_unit one scale for the whole
// matrix (the int8 case: w_real = w * mw[n] * sW_unit), and real(v[m,n]) = v * sA[m] * sW_unit.
// Codebook weights (WeightFormat::cb3 / cb4, b = 3 / 4 index bits; RWKVQuant's vector-quantized
// weights): an index idx[n, k] in [0, 2^b), row n a little-endian bitstream of ceil(K*b/8) bytes
// (index k in bits k*b .. k*b+b-1 of the row; the unused high bits of the last byte are ignored).
// Groups of G in {32, 64, 128} consecutive k (the last may be partial) of R consecutive rows
// (R = codebook_rows >= 1; the last block of rows may be partial) share a codebook of 2^b int8
// entries, cb[n/R, g, j] (int8 [ceil(N/R)][ng][2^b]). The weight is w[n, k] = cb[n/R, k/G, idx[n, k]],
// and from there everything is the int8 case (mw[n], bias[n], the same v and the same limits).
// The scalar variant decodes indices on the fly; the SIMD variants decode them once at pack()
// into their int8 layout (matmul_as_i8), so their speed is the int8 speed, except that the
// AVX-512 variants keep cb3 indices (3.25 bits per weight) for one-row GEMVs on AVX512_VBMI CPUs
// and look the weights up in registers (matmul/avx512_impl.h): the same int8 weights, same bytes.
// Precondition for all formats: |v| < 2^62 (the rshift_round precondition).
//
// Epilogues (MatmulOp), all rounding = rshift_round (half toward +inf), sat = saturation to the
// destination type:
//   acc       y[m,n] = sat_i32(v)                                (raw acc + bias: pass mw = 1)
//   requant   y[m,n] = sat_T(rshift_round(v, s[n])),    T in {i8, i16, i32}, s[n] in [0, 62]
//   dynamic   (DI-MatMul per-token) for each row m over the WHOLE row n = 0..N-1:
//               vmax  = max_n |v[m,n]|
//               sh[m] = max(0, bitlen(vmax) - (bits(T) - 1)),  bitlen(x) = 64 - clz(x), bitlen(0) = 0
//               y[m,n] = sat_T(rshift_round(v, sh[m])),  T in {i8, i16};  row_shift[m] = sh[m]
//             so real(y) = y * 2^sh[m] * sA[m] * sW_unit: the caller tracks the row scale.
//   residual  y[m,n] = sat_T(r[m,n] + rshift_round(v, s[n])),  T in {i16, i32}, r [M, ldr] of
//             type T; r may alias y (same pointer and stride: in-place residual stream update).
//
// ---- Execution contract (same conventions as conv.h) --------------------------------------------
// Weights are packed once (pack(): depends on n, k, format and group, never on m) into the
// variant's own layout, scales and bias included. A call runs num_passes() passes in order; pass p
// has num_tasks(p) independent work units: run(pass, begin, end) computes units [begin, end) and
// the bytes written never depend on how units are spread over threads. The caller must finish
// every unit of a pass before starting the next (one executor step per pass).
// Dynamic requantization needs whole-row maxima: a variant either gives each unit whole rows
// (one pass) or, when it splits N (GEMV, small M), writes v (or the i32 accumulator) and per-block
// row maxima to the shared `workspace` in pass 0 and requantizes whole rows in pass 1. Either way
// the row maximum is an exact max, so the result is the same for every split.
// Buffers: packed, workspace and scratch should be 64-byte aligned; scratch is per worker and
// only lives during a run() call; workspace is shared by all workers and lives across passes.
// run() does no allocation, I/O or exceptions; no floating point anywhere in the family.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/conv.h"  // OutType
#include "fq/kernels/cpu.h"

namespace fq::k {

// Weight formats (see the contract above).
enum class WeightFormat : uint8_t { i8 = 0, i4 = 1, cb3 = 2, cb4 = 3 };
inline bool is_codebook(WeightFormat f) { return f == WeightFormat::cb3 || f == WeightFormat::cb4; }
inline int codebook_bits(WeightFormat f) { return f == WeightFormat::cb3 ? 3 : 4; }

enum class MatmulOp : uint8_t { acc = 0, requant = 1, dynamic = 2, residual = 3 };

struct MatmulShape {
  int64_t m = 1;                          // rows (tokens); ignored by packed_size/pack
  int n = 1, k = 1;                       // output channels, depth
  WeightFormat format = WeightFormat::i8;
  int group = 0;                          // int4, codebook: G in {32, 64, 128}; ignored for int8
  int codebook_rows = 1;                  // codebook: R rows share each codebook (>= 1)
};

// Weights in the caller's layout (see the contract above); read by pack() only.
struct MatmulWeights {
  const void* w = nullptr;                // i8: int8 [N][K]; i4: uint8 [N][(K+1)/2];
                                          // cb3/cb4: uint8 [N][ceil(K*b/8)] index bitstreams
  const int8_t* codebook = nullptr;       // cb3/cb4: int8 [ceil(N/R)][ceil(K/G)][2^b]
  const int32_t* mult = nullptr;          // i8, cb3/cb4: mw[N]
  const int16_t* gmult = nullptr;         // i4: gm[N][ceil(K/G)]
  const int8_t* gshift = nullptr;         // i4: gs[N], 0..30
  const int32_t* bias = nullptr;          // [N] or nullptr (= 0)
};

struct MatmulEpilogue {
  MatmulOp op = MatmulOp::requant;
  OutType out_type = OutType::i8;         // acc: i32; requant: i8/i16/i32; dynamic: i8/i16;
                                          // residual: i16/i32 (u8 is not used by this family)
  const int8_t* shift = nullptr;          // requant / residual: s[N], 0..62
  const void* residual = nullptr;         // residual: r [M][ldr] of out_type (may alias y)
  int64_t ldr = 0;
  int8_t* row_shift = nullptr;            // dynamic: sh[M] written here
};

struct MatmulArgs {
  const int8_t* a = nullptr;              // A [M][lda]
  int64_t lda = 0;
  const void* packed = nullptr;           // pack() output
  MatmulEpilogue e;
  void* y = nullptr;                      // y [M][ldy] of e.out_type
  int64_t ldy = 0;
  void* workspace = nullptr;              // workspace_size() bytes, shared, kept across passes
};

// One variant of the family (function pointers; the variant list is kernels/matmul/variants.inc).
struct MatmulKernel {
  Isa isa;
  const char* name;
  size_t (*packed_size)(const MatmulShape& s);
  void (*pack)(const MatmulShape& s, const MatmulWeights& w, void* packed);
  int (*num_passes)(const MatmulShape& s, const MatmulEpilogue& e);
  size_t (*workspace_size)(const MatmulShape& s, const MatmulEpilogue& e);  // may be 0
  size_t (*scratch_size)(const MatmulShape& s, const MatmulEpilogue& e);    // per worker, may be 0
  int64_t (*num_tasks)(const MatmulShape& s, const MatmulEpilogue& e, int pass);
  void (*run)(const MatmulShape& s, const MatmulArgs& args, int pass, int64_t begin, int64_t end,
              void* scratch);
};

// Best variant whose ISA fits `want` (isa_fits) and that this machine supports; never null.
const MatmulKernel* matmul_kernel(Isa want);
// All variants compiled into this build, scalar first (tests and benchmarks iterate over these).
const MatmulKernel* const* matmul_kernels(size_t* count);

// Convenience for tests, tools and benchmarks: every pass, every unit, on the calling thread.
// `workspace` and `scratch` must hold workspace_size() and scratch_size() bytes.
void matmul_run_all(const MatmulKernel& kern, const MatmulShape& s, const MatmulArgs& args,
                    void* scratch);

// Number of groups of an int4 or codebook matrix (ceil(K / G)); 0 for int8.
inline int matmul_groups(const MatmulShape& s) {
  return s.format != WeightFormat::i8 && s.group > 0 ? (s.k + s.group - 1) / s.group : 0;
}

// Bytes of one row of codebook indices: ceil(K * b / 8).
inline int64_t codebook_row_bytes(const MatmulShape& s) {
  return (int64_t{s.k} * codebook_bits(s.format) + 7) / 8;
}

// Bytes of a codebook matrix's codebooks: ceil(N / R) * ceil(K / G) * 2^b; 0 for other formats.
inline int64_t codebook_bytes(const MatmulShape& s) {
  if (!is_codebook(s.format)) return 0;
  return (s.n + int64_t{s.codebook_rows} - 1) / s.codebook_rows * matmul_groups(s) * (1 << codebook_bits(s.format));
}

// Owner of decoded weights. Its members are out of line (ref.cc) on purpose: no inline library
// code gets instantiated in a translation unit compiled with ISA flags, where the linker could
// pick it for baseline code too.
class DecodedWeights {
 public:
  DecodedWeights() = default;
  ~DecodedWeights();
  DecodedWeights(const DecodedWeights&) = delete;
  DecodedWeights& operator=(const DecodedWeights&) = delete;
  int8_t* allocate(size_t bytes);  // replaces any previous buffer
 private:
  int8_t* p_ = nullptr;
};

// The weights as pack() of a SIMD variant sees them: codebook weights decoded into `buf` as the
// int8 matrix [N][K] they stand for (w = that matrix, the rest unchanged); others as they are.
MatmulWeights matmul_as_i8(const MatmulShape& s, const MatmulWeights& w, DecodedWeights* buf);

}  // namespace fq::k
