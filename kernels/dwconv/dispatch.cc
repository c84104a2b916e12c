// Variant table and selection for the depthwise conv family, generated from variants.inc.
#include "fq/kernels/dwconv.h"

namespace fq::k {

#define FQ_DWCONV_VARIANT(sym) extern const DwConvKernel sym;
#include "variants.inc"
#undef FQ_DWCONV_VARIANT

namespace {
#define FQ_DWCONV_VARIANT(sym) &sym,
const DwConvKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_DWCONV_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const DwConvKernel* const* dwconv_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const DwConvKernel* dwconv_kernel(Isa want) {
  const DwConvKernel* best = kVariants[0];  // scalar: fits every request
  for (const DwConvKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
