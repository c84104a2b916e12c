// Scalar reference of the conv family: the executable specification (see conv.h). Every other
// variant must produce the same bytes. Written for clarity, not speed.
//
// Overflow budget: |x * w| <= 255 * 128 = 32640, so the i32 accumulator is exact while
// K * 32640 + |bias| < 2^31, i.e. for K = KH*KW*C up to ~65000 taps. Beyond that, every variant
// wraps modulo 2^32 in the same way (we accumulate in uint32_t so the wrap is defined here too).
// The epilogue needs |acc*mult + acc_c*mult_coarse| < 2^62 (precondition of rshift_round).
#include <cstring>

#include "fq/kernels/conv.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/store.h"

namespace fq::k {
namespace {

constexpr int kBlock = 16;  // a task = one output pixel x up to 16 output channels

int64_t weights_size(const ConvShape& s) { return int64_t{s.o} * s.kh * s.kw * s.c; }
int64_t blocks(const ConvShape& s) { return (s.o + kBlock - 1) / kBlock; }

// Packed layout = the caller's layout: w [O,KH,KW,C], then w_coarse [O,C] if CFWS.
size_t ref_packed_size(const ConvShape& s) {
  return size_t(weights_size(s) + (s.coarse ? int64_t{s.o} * s.c : 0));
}

void ref_pack(const ConvShape& s, const int8_t* w, const int8_t* w_coarse, void* packed) {
  std::memcpy(packed, w, size_t(weights_size(s)));
  if (s.coarse)
    std::memcpy(static_cast<int8_t*>(packed) + weights_size(s), w_coarse, size_t(s.o) * s.c);
}

size_t ref_scratch_size(const ConvShape&) { return 0; }

int64_t ref_num_tasks(const ConvShape& s) { return int64_t{s.n} * s.oh * s.ow * blocks(s); }

// x[n, iy, ix, :] or nullptr when the tap lies in the (zero) padding.
const uint8_t* pixel(const ConvShape& s, const uint8_t* x, int n, int iy, int ix) {
  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return nullptr;
  return x + ((int64_t{n} * s.h + iy) * s.w + ix) * s.c;
}

void ref_run(const ConvShape& s, const uint8_t* x, const void* packed, const ConvEpilogue& e,
             void* y, int64_t begin, int64_t end, void*) {
  const int8_t* w = static_cast<const int8_t*>(packed);
  const int8_t* wc = w + weights_size(s);
  const int taps = s.kh * s.kw;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t m = t / blocks(s);  // output pixel index (n, oy, ox)
    const int o_begin = int(t % blocks(s)) * kBlock;
    const int o_end = o_begin + kBlock < s.o ? o_begin + kBlock : s.o;
    const int ox = int(m % s.ow), oy = int(m / s.ow % s.oh), n = int(m / (int64_t{s.ow} * s.oh));
    const int iy0 = oy * s.stride - s.pad_t, ix0 = ox * s.stride - s.pad_l;
    for (int o = o_begin; o < o_end; ++o) {
      uint32_t acc = uint32_t(e.bias[o]);  // i32, wrapping (see overflow budget above)
      for (int ky = 0; ky < s.kh; ++ky)
        for (int kx = 0; kx < s.kw; ++kx) {
          const uint8_t* xp = pixel(s, x, n, iy0 + ky, ix0 + kx);
          if (!xp) continue;
          const int8_t* wp = w + (int64_t{o} * taps + ky * s.kw + kx) * s.c;
          for (int i = 0; i < s.c; ++i) acc += uint32_t(int32_t{xp[i]} * wp[i]);
        }
      int64_t v = int64_t{int32_t(acc)} * e.mult[o];
      if (s.coarse) {
        uint32_t acc_c = 0;
        if (const uint8_t* xp = pixel(s, x, n, iy0 + s.kh / 2, ix0 + s.kw / 2))
          for (int i = 0; i < s.c; ++i)
            acc_c += uint32_t(int32_t{xp[i]} * wc[int64_t{o} * s.c + i]);
        v += int64_t{int32_t(acc_c)} * e.mult_coarse[o];
      }
      store(e.out_type, y, m * s.o + o, clamp64(rshift_round(v, e.shift[o]), e.lo, e.hi));
    }
  }
}

}  // namespace

extern const ConvKernel kConvScalar = {
    Isa::scalar, "scalar", ref_packed_size, ref_pack, ref_scratch_size, ref_num_tasks, ref_run,
};

}  // namespace fq::k
