// Scalar reference of the linattn family: the executable specification (see fq/kernels/linattn.h).
// Every other variant must produce the same bytes. Written for clarity, not speed.
#include "fq/kernels/linattn.h"

#include "linattn_internal.h"

namespace fq::k {

bool linattn_valid(const LinattnArgs& a) {
  return a.dk >= 1 && a.dk <= linattn::kMaxDim && a.dv >= 1 && a.dv <= linattn::kMaxDim &&
         a.kv_heads >= 1 && a.q_heads >= a.kv_heads && a.q_heads % a.kv_heads == 0 && a.rows >= 0 &&
         // RWKV extensions: output_first has no delta and no second key; the second key b (v7)
         // needs its retrieval key a, its scales, the pre-decay retrieval and no beta.
         (!a.output_first || (a.beta == nullptr && a.b == nullptr)) &&
         (a.b == nullptr || (a.a != nullptr && a.bs != nullptr && a.beta == nullptr && a.retrieve_pre_decay == 1));
}

extern const LinattnKernel kLinattnScalar = {Isa::scalar, "scalar", linattn::heads_impl<linattn::ScalarOps>, linattn::out_impl};

}  // namespace fq::k
