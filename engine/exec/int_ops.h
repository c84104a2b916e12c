// Step functions of the integer ops: each unpacks a params struct prepared at bind time (raw
// pointers into the arena and the weights) and calls a kernel. Integer only, like the kernels.
#pragma once
#include <cstdint>

#include "executor.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/dwconv.h"
#include "fq/kernels/linattn.h"
#include "fq/kernels/llm.h"
#include "fq/kernels/lut.h"
#include "fq/kernels/matmul.h"
#include "fq/kernels/pool.h"
#include "fq/kernels/rwkv.h"
#include "fq/kernels/ssm.h"

namespace fq::exec {

struct ConvParams {
  const k::ConvKernel* kernel;
  k::ConvShape shape;
  k::ConvEpilogue epilogue;
  const uint8_t* x;
  const void* packed;
  void* y;
};
void conv_step(const void* params, int64_t begin, int64_t end, void* scratch);

// conv2d with groups = C (depthwise): units are the dwconv kernel's tasks.
struct DwConvParams {
  const k::DwConvKernel* kernel;
  k::DwConvShape shape;
  k::DwConvEpilogue epilogue;
  const uint8_t* x;
  const void* packed;
  void* y;
};
void dwconv_step(const void* params, int64_t begin, int64_t end, void* scratch);

struct GapParams {
  const k::PoolKernel* kernel;
  const uint8_t* x;
  int n, hw, c;
  int32_t mult;
  int shift;
  int32_t lo, hi;
  k::OutType out;
  void* y;
};
void gap_step(const void* params, int64_t begin, int64_t end, void* scratch);


// ---- integer LLM ops (docs/llm_int.md) ----------------------------------------------------------

// One pass of a DI-MatMul (units: the kernel's tasks of that pass).
struct MatmulParams {
  const k::MatmulKernel* kernel;
  k::MatmulShape shape;
  k::MatmulArgs args;
  int pass;
};
void matmul_step(const void* params, int64_t begin, int64_t end, void* scratch);

// The DI-MatMul output scale, after the last pass: ys[m] = (xs[m].mant, xs[m].exp + w_exp -
// row_shift[m]), or (0, 0) for an all-zero row (xs[m].mant == 0). Units are rows.
struct MatmulScaleParams {
  const k::RowScale* xs;
  const int8_t* row_shift;
  int w_exp;
  k::RowScale* ys;
};
void matmul_scale_step(const void* params, int64_t begin, int64_t end, void* scratch);

// The row-wise ops of the llm family: units are rows.
template <class Args>
struct LlmParams {
  const k::LlmKernel* kernel;
  Args a;
};
void rmsnorm_step(const void* params, int64_t begin, int64_t end, void* scratch);
void swiglu_step(const void* params, int64_t begin, int64_t end, void* scratch);
void residual_add_step(const void* params, int64_t begin, int64_t end, void* scratch);
void embedding_step(const void* params, int64_t begin, int64_t end, void* scratch);
void hadamard_step(const void* params, int64_t begin, int64_t end, void* scratch);
// The graph op `softmax` (integer form): LlmParams<k::SoftmaxArgs>, units are rows.
void softmax_step(const void* params, int64_t begin, int64_t end, void* scratch);
// The graph op `layernorm` (integer form): LlmParams<k::LayernormArgs>, units are rows.
void layernorm_step(const void* params, int64_t begin, int64_t end, void* scratch);

// Ops that read the runtime position `pos` (a graph tensor) when they run. Positions outside the
// table or cache give zero outputs and scales and leave the caches untouched (the kernels' rule).
struct RopeParams {
  const k::LlmKernel* kernel;
  k::RopeArgs a;  // a.pos is read from `pos` at run time
  const int32_t* pos;
};
void rope_step(const void* params, int64_t begin, int64_t end, void* scratch);

// Attention is three steps sharing one params struct: cache write (1 unit), heads (M * H units:
// m * H + h), output rows (M units).
struct AttentionParams {
  const k::LlmKernel* kernel;
  k::AttentionArgs a;  // a.pos is read from `pos` at run time
  const int32_t* pos;
};
void attention_cache_step(const void* params, int64_t begin, int64_t end, void* scratch);
void attention_heads_step(const void* params, int64_t begin, int64_t end, void* scratch);
void attention_out_step(const void* params, int64_t begin, int64_t end, void* scratch);

// ---- integer Mamba ops (fq/kernels/ssm.h) --------------------------------------------------------
template <class Args>
struct SsmParams {
  const k::SsmKernel* kernel;
  Args a;
};
void ssm_conv_step(const void* params, int64_t begin, int64_t end, void* scratch);      // channels
void ssm_conv_out_step(const void* params, int64_t begin, int64_t end, void* scratch);  // rows
void ssm_scan_step(const void* params, int64_t begin, int64_t end, void* scratch);      // channels
void ssm_scan_out_step(const void* params, int64_t begin, int64_t end, void* scratch);  // rows
void requant_step(const void* params, int64_t begin, int64_t end, void* scratch);       // rows

// ---- integer RWKV ops (fq/kernels/rwkv.h, linattn.h, lut.h) --------------------------------------
template <class Args>
struct RwkvParams {
  const k::RwkvKernel* kernel;
  Args a;
};
void rwkv_mix_step(const void* params, int64_t begin, int64_t end, void* scratch);      // rows
void rwkv_relu_sq_step(const void* params, int64_t begin, int64_t end, void* scratch);  // rows
void rwkv_mul_step(const void* params, int64_t begin, int64_t end, void* scratch);      // rows
void rwkv_decay_step(const void* params, int64_t begin, int64_t end, void* scratch);    // rows
void rwkv_bonus_step(const void* params, int64_t begin, int64_t end, void* scratch);    // rows
// l2norm: the Q15 output rows get the constant scale (2^14, 29). Units are rows.
struct RwkvQ15Params {
  const k::RwkvKernel* kernel;
  k::RwkvL2normArgs a;
  k::RowScale* ys;
};
void rwkv_l2norm_step(const void* params, int64_t begin, int64_t end, void* scratch);

// A DULUT activation of a dynamic int16 input: the rwkv fixed-point front (input + bias in the
// table's input format, int16 codes into scratch) then the lut kernel; every output row gets the
// table's constant output scale. Units are rows; scratch 2 * n bytes.
struct ActParams {
  const k::RwkvKernel* front;
  const k::LutKernel* lut;
  const k::LutTable* table;
  k::RwkvFixedArgs a;                         // a.y unused (scratch)
  int16_t* y;
  k::RowScale out_scale;
  k::RowScale* ys;
  // int32 output instead (y32 != nullptr, ys unused): y32 = rshift_round(code * out_mul, out_shift)
  // (RWKV v7's log-decay -0.606531 sigmoid(.) in the linattn kernel's Q format)
  int32_t* y32 = nullptr;
  int32_t out_mul = 0;
  int out_shift = 0;
  int64_t batch = 1;                          // rows per table call (the scratch holds them)
};
void act_step(const void* params, int64_t begin, int64_t end, void* scratch);

// Token shift of a dynamic activation: y = (state, x[0], .., x[M-2]) with their row scales; the
// state becomes x[M-1]. One unit.
struct TokenShiftParams {
  const int16_t* x; const k::RowScale* xs;
  int64_t rows, n;
  int16_t* state; k::RowScale* state_scale;
  int16_t* y; k::RowScale* ys;
};
void token_shift_step(const void* params, int64_t begin, int64_t end, void* scratch);

// linattn: heads (units: kv heads), then out (units: rows).
struct LinattnParams {
  const k::LinattnKernel* kernel;
  k::LinattnArgs a;
};
void linattn_heads_step(const void* params, int64_t begin, int64_t end, void* scratch);
void linattn_out_step(const void* params, int64_t begin, int64_t end, void* scratch);

}  // namespace fq::exec
