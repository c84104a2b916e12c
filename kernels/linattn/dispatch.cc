// Variant table and selection for the linattn family, generated from variants.inc.
#include "fq/kernels/linattn.h"

namespace fq::k {

#define FQ_LINATTN_VARIANT(sym) extern const LinattnKernel sym;
#include "variants.inc"
#undef FQ_LINATTN_VARIANT

namespace {
#define FQ_LINATTN_VARIANT(sym) &sym,
const LinattnKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_LINATTN_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const LinattnKernel* const* linattn_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const LinattnKernel* linattn_kernel(Isa want) {
  const LinattnKernel* best = kVariants[0];  // scalar: fits every request
  for (const LinattnKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
