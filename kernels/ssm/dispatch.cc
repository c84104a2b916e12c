// Variant table and selection for the ssm family, generated from variants.inc.
#include "fq/kernels/ssm.h"

namespace fq::k {

#define FQ_SSM_VARIANT(sym) extern const SsmKernel sym;
#include "variants.inc"
#undef FQ_SSM_VARIANT

namespace {
#define FQ_SSM_VARIANT(sym) &sym,
const SsmKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_SSM_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const SsmKernel* const* ssm_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const SsmKernel* ssm_kernel(Isa want) {
  const SsmKernel* best = kVariants[0];  // scalar: fits every request
  for (const SsmKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
