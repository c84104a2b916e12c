// AVX-512 VNNI variant of the matmul family (vpdpbusd on zmm). The implementation, shared with the
// AMX variant, is avx512_impl.h; this file only instantiates it without AMX.
#include "avx512_impl.h"

namespace fq::k {
namespace {

int avx512_num_passes(const MatmulShape& s, const MatmulEpilogue& e) { return x86_passes(make_plan(s, e, 1)); }
size_t avx512_workspace_size(const MatmulShape& s, const MatmulEpilogue& e) { return x86_workspace(make_plan(s, e, 1)); }
size_t avx512_scratch_size(const MatmulShape& s, const MatmulEpilogue& e) { return x86_scratch(make_plan(s, e, 1), 0); }
int64_t avx512_num_tasks(const MatmulShape& s, const MatmulEpilogue& e, int pass) { return x86_tasks(make_plan(s, e, 1), pass); }

}  // namespace

extern const MatmulKernel kMatmulAvx512 = {
    Isa::avx512,           "avx512",              x86_packed_size,     x86_pack,
    avx512_num_passes,     avx512_workspace_size, avx512_scratch_size, avx512_num_tasks,
    x86_run<NoAmx>};

}  // namespace fq::k
