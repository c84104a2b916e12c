// DULUT fitter (offline, float): builds the two cascaded tables of the DULUT kernel family
// (kernels/include/fq/kernels/lut.h) for one activation function, one input and one output scale.
//
// Target. For an input code x (int8 or int16) the ideal output, in output LSBs, is
//   T(x) = clamp(f(x * in_scale) / out_scale, out_min, out_max)
// (saturation is part of the ideal: codes whose value does not fit give the saturated code).
// The fitter minimizes max_x |y(x) - T(x)| over EVERY input code (the whole domain), y being the
// exact integer evaluation of the contract.
//
// Method.
//   1. Warp (stage 1). Per input segment i (N1 uniform segments of the code range) the curvature
//      C_i = max |T''| and slope S_i = max |T'| (LSB per code^k, sampled on a fine grid). A value
//      segment of length h costs about C h^2 / 16 LSB of minimax error, so the position density
//      (positions per code) to reach error E is 2^F * sqrt(C_i / (16 E)); it is also kept >= lambda
//      * S_i, so that rounding the 16-bit position costs at most 0.5 / lambda LSB. E is bisected so
//      the densities fill the 65536 positions exactly. Candidates over lambda, an exponent on C
//      and a neighbour smoothing of C are all evaluated exactly; the best max error wins (ties:
//      mean error).
//   2. Values (stage 2). Every value segment gets the minimax (Chebyshev) line through the codes
//      that land in it (a convex search over the rise, the base centring the residual), rounded and
//      then polished by a +-1 integer search on (base, rise) against the exact integer result.
//   3. Refinement. A greedy search moves the warp breakpoints (halving steps) while the exact max
//      error decreases.
// Also the comparison: fit_uniform() = one uniform interpolated table over the input code range
// (TFLite-style: the same stage 2 on an identity warp), any power-of-two size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fq/kernels/lut.h"

namespace fq::quant {

enum class ActFn { silu, gelu_erf, gelu_tanh, sigmoid, tanh, softplus, exp, reciprocal, rsqrt,
                   erf, hardswish, mish, exp_full };
// The functions of the accuracy tables (docs/accuracy.md) and their tests.
constexpr ActFn kAllActFns[] = {ActFn::silu,     ActFn::gelu_erf, ActFn::gelu_tanh,
                                ActFn::sigmoid,  ActFn::tanh,     ActFn::softplus,
                                ActFn::exp,      ActFn::reciprocal, ActFn::rsqrt};
// Further functions the fitter knows (used by `fqrun conformance`, fitted at run time for a test's
// input range): erf, hard-swish x * relu6(x + 3) / 6, mish x * tanh(softplus(x)), and exp_full = e^x
// for any x (ActFn::exp is the softmax form e^min(x, 0)).
constexpr ActFn kExtraActFns[] = {ActFn::erf, ActFn::hardswish, ActFn::mish, ActFn::exp_full};
const char* act_name(ActFn f);                     // "silu", "gelu", "gelu_tanh", ... "exp_full"
bool parse_act(const std::string& name, ActFn* f);
// The float64 function. exp is exp(min(x, 0)) (the softmax use: x <= 0); reciprocal and rsqrt
// are 1/x and 1/sqrt(x) for x > 0 and +infinity for x <= 0 (so they saturate there).
double act_eval(ActFn f, double x);

struct DulutSpec {
  ActFn fn = ActFn::gelu_erf;
  int in_bits = 8;           // 8 or 16
  double in_scale = 0;       // real value of one input LSB
  int out_bits = 8;          // 8 or 16
  double out_scale = 0;      // real value of one output LSB
  int k1 = 4, k2 = 5;        // table sizes N1 = 2^k1, N2 = 2^k2 (the recipe); kernel: 1..6
  int refine_passes = 2;     // greedy warp refinement passes (0: none)
};

// The tables in a size-unrestricted form (k1, k2 up to 12), evaluated by dulut_eval() with the
// kernel's exact integer formula; to_kernel_table() converts when the sizes fit the kernel.
struct DulutTables {
  int in_bits = 8, out_bits = 8, k1 = 0, k2 = 0, g = 0;
  std::vector<uint16_t> b1;
  std::vector<uint16_t> d1;
  std::vector<int16_t> b2, d2;
  int bytes() const { return 4 * ((1 << k1) + (1 << k2)); }  // stored int16 base + rise
};

int32_t dulut_eval(const DulutTables& t, int32_t x);  // = lut_eval_one for kernel-sized tables
bool to_kernel_table(const DulutTables& t, fq::k::LutTable* out);

// The ideal output T(x) in output LSBs (see above).
double dulut_target(const DulutSpec& s, int32_t x);

struct ErrStats {
  double max = 0, mean = 0;  // |y - T| in output LSBs over every input code
  int32_t worst_x = 0;
};
ErrStats dulut_error(const DulutSpec& s, const DulutTables& t);

DulutTables fit_dulut(const DulutSpec& s);
// One uniform interpolated table of 2^k segments over the input code range (stage 1 = identity).
// Its stored size is 4 * 2^k bytes (base + rise), like the value table of DULUT.
DulutTables fit_uniform(const DulutSpec& s, int k);

// The scales used in docs/accuracy.md and the tests for each function (input range, output range).
DulutSpec dulut_default_spec(ActFn f, int bits, int k1, int k2);

}  // namespace fq::quant
