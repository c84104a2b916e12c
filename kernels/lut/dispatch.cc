// Variant table and selection for the DULUT family, generated from variants.inc.
#include "fq/kernels/lut.h"

namespace fq::k {

#define FQ_LUT_VARIANT(sym) extern const LutKernel sym;
#include "variants.inc"
#undef FQ_LUT_VARIANT

namespace {
#define FQ_LUT_VARIANT(sym) &sym,
const LutKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_LUT_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const LutKernel* const* lut_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const LutKernel* lut_kernel(Isa want) {
  const LutKernel* best = kVariants[0];  // scalar: fits every request
  for (const LutKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
