// DULUT family: elementwise nonlinear activations (SiLU, GELU, sigmoid, tanh, softplus, exp,
// reciprocal, rsqrt, ...) as two cascaded linear tables, integer only. The tables are fitted offline
// by fqquant (tools/fqquant/dulut.h) for one function and one pair of per-tensor scales; the kernel
// knows nothing of the function. The scalar variant (kernels/lut/ref.cc) is the executable form of
// this contract; every other variant produces the same bytes for every table and every length.
//
// ---- Numeric contract -------------------------------------------------------------------------
// Input x: int8 (in_bits = 8) or int16 (in_bits = 16) codes, b = in_bits. Output y: int8 or int16
// (out_bits). N1 = 2^k1 warp segments, N2 = 2^k2 value segments, 1 <= k1, k2 <= 6 (at most 64
// entries per table: one vpermi2w / one 4-register tbl per table). Derived constants:
//   s1 = b - k1 (2..15)      input bits below the warp index
//   F  = 16 - k2 (10..15)    position bits below the value index (positions are 16-bit)
//   G  = g (0..14)           fraction bits of the value table (output LSB = 2^G table units)
//
// Stage 1 (index / warp table), per element: an exact position with 15 fraction bits
//   u  = x + 2^(b-1)                         0 <= u < 2^b (offset binary)
//   i  = u >> s1,  f = u & (2^s1 - 1)
//   P  = b1[i] * 2^16 + d1[i] * (f << (16 - s1))     exact, 0 <= P < 2^32 (precondition below)
//   p  = P >> 16                                     the 16-bit position (P: 16 fraction bits)
// Stage 2 (value table, uniform in position):
//   j  = p >> F,   r = p & (2^F - 1)
//   q  = (P >> (F + 1)) & (2^15 - 1)         Q15 fraction of the way through value segment j
//   t  = b2[j] + rshift_round(d2[j] * q, 15) (exact integer; int16 by the precondition below)
//   y  = sat_out(rshift_round(t, G))         sat_out = saturation to int8 / int16
// rshift_round is fixed_point.h's rule (half toward +infinity); all products are exact.
// So the real output is y * out_scale, x * in_scale being the real input: the fitter builds
// P(x) = a piecewise-linear warp that spends value segments where the function bends, (b2, d2) =
// per-segment lines (base and rise over the segment) in units of 2^-G output LSB. The position
// carries 32 bits, so a value segment may span many input codes (flat regions) without losing
// resolution: q resolves 1/32768 of a segment.
//
// Table preconditions (lut_valid() checks them; the fitter only emits valid tables):
//   b1[i] + d1[i] <= 65536 (both uint16)                    (i < N1; so 0 <= P < 2^32)
//   b2[j], d2[j] int16 and b2[j] + d2[j] in [-32768, 32767]   (j < N2; so t stays int16)
// Entries at or beyond N1 / N2 are ignored (variants may read them; keep them zero).
//
// Why this form vectorizes: every quantity is a 16-bit lane. d1 * (f << (16 - s1)) is one
// pmullw + pmulhuw pair (p = b1 + hi, q = (p << (k2 - 1) & 0x7fff) | lo >> (F + 1)) whose Q16
// operand is the input shifted left (the index bits fall off the top); rshift_round(d2 * q, 15) is one pmulhrsw
// (x86) / sqrdmulh (NEON; q >= 0, so it never saturates); rshift_round(t, G) is
// pmulhrsw(t, 2^(15-G)). Lookups are vpermi2w (AVX-512: 64 int16 entries in two zmm), vpgatherdd
// on (b, d) pairs (AVX2) and tbl on byte planes (NEON).
//
// ---- Execution contract ------------------------------------------------------------------------
// run(t, x, n, y) maps n elements; element k depends on x[k] only, so callers split n freely
// (threads, rows) and the bytes never depend on the split. x and y may alias exactly (in place,
// same type width) but must not partially overlap. No allocation, I/O, exceptions or floating
// point anywhere in the family.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fq/kernels/cpu.h"

namespace fq::k {

constexpr int kLutMaxLog2 = 6;
constexpr int kLutMaxEntries = 1 << kLutMaxLog2;

// One fitted activation: both tables plus their formats (64-byte aligned, 536 bytes; the stored
// tables proper are lut_table_bytes()).
struct alignas(64) LutTable {
  uint16_t b1[kLutMaxEntries] = {};  // warp: position at the start of input segment i
  uint16_t d1[kLutMaxEntries] = {};  // warp: position rise over input segment i (monotone warp)
  int16_t b2[kLutMaxEntries] = {};   // value at the start of value segment j (2^-G output LSB)
  int16_t d2[kLutMaxEntries] = {};   // value rise over value segment j
  uint8_t in_bits = 8;               // 8 or 16
  uint8_t out_bits = 8;              // 8 or 16
  uint8_t k1 = 4, k2 = 5;            // log2 of the table sizes, 1..6
  uint8_t g = 0;                     // value-table fraction bits, 0..14
};

// True when the table satisfies every precondition above (formats and entry ranges).
bool lut_valid(const LutTable& t);
// Bytes of table data a real deployment stores: 4 * (N1 + N2) (int16 base + rise per entry).
inline int lut_table_bytes(const LutTable& t) { return 4 * ((1 << t.k1) + (1 << t.k2)); }

// One variant of the family (the variant list is kernels/lut/variants.inc).
struct LutKernel {
  Isa isa;
  const char* name;
  // x: int8[n] or int16[n] (t.in_bits); y: int8[n] or int16[n] (t.out_bits). t must be valid.
  void (*run)(const LutTable& t, const void* x, int64_t n, void* y);
};

// Best variant whose ISA fits `want` (isa_fits) and that this machine supports; never null.
const LutKernel* lut_kernel(Isa want);
// All variants compiled into this build, scalar first (tests and benchmarks iterate over these).
const LutKernel* const* lut_kernels(size_t* count);

// The contract for one element (the scalar reference uses it; tests and tools may too).
int32_t lut_eval_one(const LutTable& t, int32_t x);

}  // namespace fq::k
