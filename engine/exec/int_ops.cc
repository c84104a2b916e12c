#include "int_ops.h"

namespace fq::exec {

void conv_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const ConvParams*>(params);
  p.kernel->run(p.shape, p.x, p.packed, p.epilogue, p.y, begin, end, scratch);
}

void dwconv_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const DwConvParams*>(params);
  p.kernel->run(p.shape, p.x, p.packed, p.epilogue, p.y, begin, end, scratch);
}

void gap_step(const void* params, int64_t, int64_t, void*) {
  const auto& p = *static_cast<const GapParams*>(params);
  p.kernel->gap_u8(p.x, p.n, p.hw, p.c, p.mult, p.shift, p.lo, p.hi, p.out, p.y);
}

// ---- integer LLM ops ----------------------------------------------------------------------------

void matmul_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const MatmulParams*>(params);
  p.kernel->run(p.shape, p.args, p.pass, begin, end, scratch);
}

void matmul_scale_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = *static_cast<const MatmulScaleParams*>(params);
  for (int64_t m = begin; m < end; ++m)
    p.ys[m] = p.xs[m].mant == 0 ? k::RowScale{}
                                : k::RowScale{p.xs[m].mant, p.xs[m].exp + p.w_exp - p.row_shift[m]};
}

namespace {
template <class Args>
const LlmParams<Args>& llm(const void* params) {
  return *static_cast<const LlmParams<Args>*>(params);
}
}  // namespace

void rmsnorm_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = llm<k::RmsnormArgs>(params);
  p.kernel->rmsnorm(p.a, begin, end, scratch);
}

void swiglu_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = llm<k::SwigluArgs>(params);
  p.kernel->swiglu(p.a, begin, end, scratch);
}

void residual_add_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = llm<k::ResidualArgs>(params);
  p.kernel->residual_add(p.a, begin, end);
}

void embedding_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = llm<k::EmbeddingArgs>(params);
  p.kernel->embedding(p.a, begin, end);
}

void hadamard_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = llm<k::HadamardArgs>(params);
  p.kernel->hadamard(p.a, begin, end, scratch);
}

void softmax_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = llm<k::SoftmaxArgs>(params);
  p.kernel->softmax(p.a, begin, end, scratch);
}

// The kernels handle positions outside the table or cache themselves (llm.h): zero outputs, the
// caches untouched.
void rope_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = *static_cast<const RopeParams*>(params);
  k::RopeArgs a = p.a;
  a.pos = *p.pos;
  p.kernel->rope(a, begin, end);
}

namespace {
k::AttentionArgs attention_args(const AttentionParams& p) {
  k::AttentionArgs a = p.a;
  a.pos = *p.pos;
  return a;
}
}  // namespace

void attention_cache_step(const void* params, int64_t, int64_t, void* scratch) {
  const auto& p = *static_cast<const AttentionParams*>(params);
  p.kernel->attention_cache(attention_args(p), scratch);
}

void attention_heads_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const AttentionParams*>(params);
  p.kernel->attention_heads(attention_args(p), begin, end, scratch);
}

void attention_out_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const AttentionParams*>(params);
  p.kernel->attention_out(attention_args(p), begin, end, scratch);
}

// ---- integer Mamba ops ----
namespace {
template <class Args>
const SsmParams<Args>& ssm(const void* params) {
  return *static_cast<const SsmParams<Args>*>(params);
}
}  // namespace

void ssm_conv_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = ssm<k::SsmConvArgs>(params);
  p.kernel->conv(p.a, begin, end);
}
void ssm_conv_out_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = ssm<k::SsmConvArgs>(params);
  p.kernel->conv_out(p.a, begin, end);
}
void ssm_scan_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = ssm<k::SsmScanArgs>(params);
  p.kernel->scan(p.a, begin, end);
}
void ssm_scan_out_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = ssm<k::SsmScanArgs>(params);
  p.kernel->scan_out(p.a, begin, end);
}
void requant_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = ssm<k::RequantArgs>(params);
  p.kernel->requant(p.a, begin, end, scratch);
}

}  // namespace fq::exec
