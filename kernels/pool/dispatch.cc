// Variant table and selection for the pool family, generated from variants.inc.
#include "fq/kernels/pool.h"

namespace fq::k {

#define FQ_POOL_VARIANT(sym) extern const PoolKernel sym;
#include "variants.inc"
#undef FQ_POOL_VARIANT

namespace {
#define FQ_POOL_VARIANT(sym) &sym,
const PoolKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_POOL_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const PoolKernel* const* pool_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const PoolKernel* pool_kernel(Isa want) {
  const PoolKernel* best = kVariants[0];  // scalar: fits every request
  for (const PoolKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
