// Scalar reference of the depthwise conv family: the executable specification (see dwconv.h).
// Every other variant must produce the same bytes. A task is one output row (n, oy).
#include <cstring>

#include "fq/kernels/dwconv.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/store.h"

namespace fq::k {
namespace {

size_t ref_packed_size(const DwConvShape& s) { return size_t(s.kh) * s.kw * s.c; }

void ref_pack(const DwConvShape& s, const int8_t* w, void* packed) {
  std::memcpy(packed, w, ref_packed_size(s));  // the caller's layout [KH, KW, C]
}

size_t ref_scratch_size(const DwConvShape&) { return 0; }

int64_t ref_num_tasks(const DwConvShape& s) { return int64_t{s.n} * s.oh; }

void ref_run(const DwConvShape& s, const uint8_t* x, const void* packed, const DwConvEpilogue& e,
             void* y, int64_t begin, int64_t end, void*) {
  const int8_t* w = static_cast<const int8_t*>(packed);
  for (int64_t t = begin; t < end; ++t) {
    const int oy = int(t % s.oh), n = int(t / s.oh);
    for (int ox = 0; ox < s.ow; ++ox)
      for (int c = 0; c < s.c; ++c) {
        int32_t acc = e.bias[c];  // exact: |acc| < 2^31 by the preconditions
        for (int ky = 0; ky < s.kh; ++ky) {
          const int iy = oy * s.stride - s.pad_t + ky;
          if (iy < 0 || iy >= s.h) continue;
          for (int kx = 0; kx < s.kw; ++kx) {
            const int ix = ox * s.stride - s.pad_l + kx;
            if (ix < 0 || ix >= s.w) continue;
            acc += int32_t{x[((int64_t{n} * s.h + iy) * s.w + ix) * s.c + c]} *
                   w[(ky * s.kw + kx) * s.c + c];
          }
        }
        const int64_t v = int64_t{acc} * e.mult[c];
        store(e.out_type, y, (t * s.ow + ox) * s.c + c,
              clamp64(rshift_round(v, e.shift[c]), e.lo, e.hi));
      }
  }
}

}  // namespace

extern const DwConvKernel kDwConvScalar = {
    Isa::scalar, "scalar", ref_packed_size, ref_pack, ref_scratch_size, ref_num_tasks, ref_run,
};

}  // namespace fq::k
