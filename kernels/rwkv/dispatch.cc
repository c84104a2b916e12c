// Variant table and selection for the rwkv family, generated from variants.inc.
#include "fq/kernels/rwkv.h"

namespace fq::k {

#define FQ_RWKV_VARIANT(sym) extern const RwkvKernel sym;
#include "variants.inc"
#undef FQ_RWKV_VARIANT

namespace {
#define FQ_RWKV_VARIANT(sym) &sym,
const RwkvKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_RWKV_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const RwkvKernel* const* rwkv_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const RwkvKernel* rwkv_kernel(Isa want) {
  const RwkvKernel* best = kVariants[0];  // scalar: fits every request
  for (const RwkvKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
