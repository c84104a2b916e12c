// Variant table and selection for the llm family, generated from variants.inc.
#include "fq/kernels/llm.h"

namespace fq::k {

#define FQ_LLM_VARIANT(sym) extern const LlmKernel sym;
#include "variants.inc"
#undef FQ_LLM_VARIANT

namespace {
#define FQ_LLM_VARIANT(sym) &sym,
const LlmKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_LLM_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const LlmKernel* const* llm_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const LlmKernel* llm_kernel(Isa want) {
  const LlmKernel* best = kVariants[0];  // scalar: fits every request
  for (const LlmKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

}  // namespace fq::k
