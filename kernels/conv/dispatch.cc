// Variant table and selection for the conv family, generated from variants.inc.
#include "fq/kernels/conv.h"

namespace fq::k {

#define FQ_CONV_VARIANT(sym) extern const ConvKernel sym;
#include "variants.inc"
#undef FQ_CONV_VARIANT

namespace {
#define FQ_CONV_VARIANT(sym) &sym,
const ConvKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_CONV_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const ConvKernel* const* conv_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const ConvKernel* conv_kernel(Isa want) {
  const ConvKernel* best = kVariants[0];  // scalar: fits every request
  for (const ConvKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
