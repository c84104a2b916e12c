// Integer row softmax (pool.h), scalar reference. Per row:
//   d_i = x_i - max(x)                         <= 0, |d_i| < 2^16
//   t_i = rshift_round(d_i * mult, shift)      exponent in Q16 log2 units (<= 0 for mult >= 0)
//   e_i = 2^(t_i / 2^16) in Q30                = 2^floor(t_i/2^16) * 2^(frac/2^16); the fraction
//                                                from four 16-entry tables, the integer part a
//                                                rounding shift. The row max gives e = 2^30.
//   S   = sum e_i (u64)                        2^30 <= S < cols * 2^31 <= 2^62
//   R   = round(2^61 / S)                      one division per row, R <= 2^31
//   y_i = min(65535, rshift_round(e_i * R, 45))   = p_i * 2^16; e_i * R <= 2^61
// Preconditions: mult >= 0, 0 <= shift <= 62, cols < 2^31. Measured error vs float64: see
// docs/accuracy.md ("Softmax"), enforced by tests/kernels/softmax_test.cc.
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/pool.h"

namespace fq::k {
namespace {

// kExp2[t][j] = round(2^30 * 2^(j / 16^(t+1))), generated with Python's decimal module:
//   int((Decimal(2) ** (Decimal(j) / 16**(t+1)) * 2**30).to_integral_value())
// All entries are < 2^31, so products of two fit comfortably in 63 bits.
constexpr uint32_t kExp2[4][16] = {
    {1073741824, 1121280436, 1170923762, 1222764986, 1276901417, 1333434672, 1392470869, 1454120821,
     1518500250, 1585730000, 1655936265, 1729250827, 1805811301, 1885761398, 1969251188,
     2056437387},
    {1073741824, 1076653033, 1079572136, 1082499153, 1085434106, 1088377016, 1091327906, 1094286796,
     1097253708, 1100228665, 1103211687, 1106202798, 1109202018, 1112209370, 1115224875,
     1118248556},
    {1073741824, 1073923544, 1074105294, 1074287076, 1074468888, 1074650730, 1074832604, 1075014508,
     1075196443, 1075378409, 1075560406, 1075742434, 1075924492, 1076106581, 1076288701,
     1076470852},
    {1073741824, 1073753181, 1073764537, 1073775894, 1073787251, 1073798608, 1073809965, 1073821323,
     1073832680, 1073844038, 1073855395, 1073866753, 1073878111, 1073889469, 1073900827,
     1073912185},
};

// 2^(f / 2^16) in Q30 for 0 <= f < 2^16, four hex digits of f one table each (relative error
// below 2^-29: one half-unit rounding per step).
int64_t exp2_frac_q30(uint32_t f) {
  int64_t r = kExp2[0][f >> 12];
  r = rshift_round(r * kExp2[1][(f >> 8) & 15], 30);  // r < 2^31: the product is < 2^62
  r = rshift_round(r * kExp2[2][(f >> 4) & 15], 30);
  return rshift_round(r * kExp2[3][f & 15], 30);
}

// e = 2^(t / 2^16) in Q30 for d = x - max <= 0.
int64_t exp_q30(int32_t d, int32_t mult, int shift) {
  const int64_t t = rshift_round(int64_t{d} * mult, shift);  // |d * mult| < 2^47
  const int64_t whole = -(t >> 16);                          // >= 0: 2^floor(t/2^16) = 2^-whole
  const int64_t frac = exp2_frac_q30(uint32_t(t & 0xffff));  // < 2^31, so whole >= 32 gives 0
  return whole >= 32 ? 0 : rshift_round(frac, int(whole));
}

template <class T>
void softmax_rows(const T* x, int rows, int cols, int32_t mult, int shift, uint16_t* y) {
  for (int r = 0; r < rows; ++r, x += cols, y += cols) {
    if (cols <= 0) continue;
    int32_t mx = x[0];
    for (int i = 1; i < cols; ++i) mx = x[i] > mx ? x[i] : mx;
    uint64_t sum = 0;
    for (int i = 0; i < cols; ++i) sum += uint64_t(exp_q30(x[i] - mx, mult, shift));
    const uint64_t recip = ((uint64_t{1} << 61) + sum / 2) / sum;  // sum >= 2^30: recip <= 2^31
    for (int i = 0; i < cols; ++i) {
      const int64_t p = rshift_round(exp_q30(x[i] - mx, mult, shift) * int64_t(recip), 45);
      y[i] = static_cast<uint16_t>(p > 65535 ? 65535 : p);
    }
  }
}

}  // namespace

void softmax_i16_u16(const int16_t* x, int rows, int cols, int32_t mult, int shift, uint16_t* y) {
  softmax_rows(x, rows, cols, mult, shift, y);
}

void softmax_i8_u16(const int8_t* x, int rows, int cols, int32_t mult, int shift, uint16_t* y) {
  softmax_rows(x, rows, cols, mult, shift, y);
}

}  // namespace fq::k
