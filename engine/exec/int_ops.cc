#include "int_ops.h"

#include <algorithm>
#include <cstring>

#include "fq/kernels/fixed_point.h"

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

void layernorm_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = llm<k::LayernormArgs>(params);
  p.kernel->layernorm(p.a, begin, end, scratch);
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

// ---- integer RWKV ops ----
namespace {
template <class Args>
const RwkvParams<Args>& rwkv(const void* params) {
  return *static_cast<const RwkvParams<Args>*>(params);
}
}  // namespace

void rwkv_mix_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = rwkv<k::RwkvMixArgs>(params);
  p.kernel->mix(p.a, begin, end, scratch);
}
void rwkv_relu_sq_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = rwkv<k::RwkvUnaryArgs>(params);
  p.kernel->relu_sq(p.a, begin, end, scratch);
}
void rwkv_mul_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = rwkv<k::RwkvMulArgs>(params);
  p.kernel->mul(p.a, begin, end, scratch);
}
void rwkv_decay_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = rwkv<k::RwkvNegExpArgs>(params);
  p.kernel->neg_exp(p.a, begin, end);
}

void act_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = *static_cast<const ActParams*>(params);
  const int64_t n = p.a.n;
  int16_t* t = static_cast<int16_t*>(scratch);
  k::RwkvFixedArgs row = p.a;  // up to p.batch rows into the per-worker scratch, then one table call
  for (int64_t m0 = begin; m0 < end; m0 += p.batch) {
    const int64_t rows = std::min(p.batch, end - m0);
    for (int64_t r = 0; r < rows; ++r) {
      row.x = p.a.x + (m0 + r) * n;
      row.xs = p.a.xs + m0 + r;
      row.y = t + r * n;
      p.front->fixed(row, 0, 1);
    }
    if (p.y32) {  // a widened, rescaled output (one multiply per element after the table)
      p.lut->run(*p.table, t, rows * n, t);
      int32_t* y = p.y32 + m0 * n;
      for (int64_t i = 0; i < rows * n; ++i) y[i] = int32_t(k::rshift_round(int64_t{t[i]} * p.out_mul, p.out_shift));
      continue;
    }
    p.lut->run(*p.table, t, rows * n, p.y + m0 * n);
    for (int64_t r = 0; r < rows; ++r) p.ys[m0 + r] = p.out_scale;
  }
}

void rwkv_bonus_step(const void* params, int64_t begin, int64_t end, void* scratch) {
  const auto& p = rwkv<k::RwkvBonusArgs>(params);
  p.kernel->head_bonus(p.a, begin, end, scratch);
}

void rwkv_l2norm_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = *static_cast<const RwkvQ15Params*>(params);
  p.kernel->l2norm(p.a, begin, end);
  for (int64_t m = begin; m < end; ++m) p.ys[m] = k::RowScale{1 << 14, 29};
}

void token_shift_step(const void* params, int64_t, int64_t, void*) {
  const auto& p = *static_cast<const TokenShiftParams*>(params);
  const size_t row = sizeof(int16_t) * size_t(p.n);
  if (p.rows < 1) return;
  // y[0] = state; y[m] = x[m-1]; state = x[M-1] (x and y never alias: they are distinct tensors)
  std::memcpy(p.y, p.state, row);
  p.ys[0] = *p.state_scale;
  if (p.rows > 1) {
    std::memcpy(p.y + p.n, p.x, row * size_t(p.rows - 1));
    std::memcpy(p.ys + 1, p.xs, sizeof(k::RowScale) * size_t(p.rows - 1));
  }
  std::memcpy(p.state, p.x + (p.rows - 1) * p.n, row);
  *p.state_scale = p.xs[p.rows - 1];
}

void linattn_heads_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = *static_cast<const LinattnParams*>(params);
  p.kernel->heads(p.a, begin, end);
}
void linattn_out_step(const void* params, int64_t begin, int64_t end, void*) {
  const auto& p = *static_cast<const LinattnParams*>(params);
  p.kernel->out(p.a, begin, end);
}

}  // namespace fq::exec
