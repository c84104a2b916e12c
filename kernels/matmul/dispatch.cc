// Variant table and selection for the matmul family, generated from variants.inc.
#include "fq/kernels/matmul.h"

namespace fq::k {

#define FQ_MATMUL_VARIANT(sym) extern const MatmulKernel sym;
#include "variants.inc"
#undef FQ_MATMUL_VARIANT

namespace {
#define FQ_MATMUL_VARIANT(sym) &sym,
const MatmulKernel* const kVariants[] = {
#include "variants.inc"
};
#undef FQ_MATMUL_VARIANT
constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);
}  // namespace

const MatmulKernel* const* matmul_kernels(size_t* count) {
  *count = kCount;
  return kVariants;
}

const MatmulKernel* matmul_kernel(Isa want) {
  const MatmulKernel* best = kVariants[0];  // scalar: fits every request
  for (const MatmulKernel* v : kVariants)
    if (isa_fits(v->isa, want) && isa_supported(v->isa) && v->isa >= best->isa) best = v;
  return best;
}

void matmul_run_all(const MatmulKernel& kern, const MatmulShape& s, const MatmulArgs& args,
                    void* scratch) {
  const int passes = kern.num_passes(s, args.e);
  for (int p = 0; p < passes; ++p) kern.run(s, args, p, 0, kern.num_tasks(s, args.e, p), scratch);
}

}  // namespace fq::k
