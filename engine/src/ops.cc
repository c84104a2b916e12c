// The operator table (docs/format.md section 3): per op, its checks and its binding. Integer
// nodes bind to kernels through fq_exec's step functions; float nodes to the reference ops.
#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "bind.h"
#include "blob.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/dwconv.h"
#include "fq/kernels/linattn.h"
#include "fq/kernels/llm.h"
#include "fq/kernels/lut.h"
#include "fq/kernels/rwkv.h"
#include "fq/kernels/matmul.h"
#include "fq/kernels/pool.h"
#include "fq/reference/ops.h"
#include "fq/reference/rwkv_ops.h"
#include "fq/reference/mamba_ops.h"
#include "int_ops.h"

namespace fq::detail {

[[noreturn]] void fail_node(const Graph& g, const NodeDef& n, const std::string& msg) {
  fail(g, n.line, "node '" + n.name + "' (" + n.op + "): " + msg);
}

namespace {

// Checks of one node, with messages that name the node and the tensor.
struct Check {
  const Graph& g;
  const NodeDef& n;

  [[noreturn]] void error(const std::string& msg) const { fail_node(g, n, msg); }
  const TensorDef& in(size_t i) const { return g.tensor(n.inputs[i]); }
  const TensorDef& out(size_t i) const { return g.tensor(n.outputs[i]); }
  bool is_float() const { return in(0).dtype == DType::f32; }

  void arity(size_t min_in, size_t max_in, size_t outs) const {
    if (n.inputs.size() < min_in || n.inputs.size() > max_in)
      error("takes " + (min_in == max_in ? std::to_string(min_in)
                                         : std::to_string(min_in) + ".." + std::to_string(max_in)) +
            " inputs, got " + std::to_string(n.inputs.size()));
    if (n.outputs.size() != outs)
      error("has " + std::to_string(outs) + " output(s), got " + std::to_string(n.outputs.size()));
  }
  void dtype(const TensorDef& t, std::initializer_list<DType> ok) const {
    if (std::find(ok.begin(), ok.end(), t.dtype) != ok.end()) return;
    std::string names;
    for (DType d : ok) names += std::string(names.empty() ? "" : "/") + dtype_name(d);
    error("tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) + ", expected " + names);
  }
  void shape(const TensorDef& t, const std::vector<int64_t>& want) const {
    if (t.shape != want)
      error("tensor '" + t.name + "' has shape " + shape_str(t.shape) + ", expected " +
            shape_str(want));
  }
  void rank(const TensorDef& t, size_t r) const {
    if (t.shape.size() != r)
      error("tensor '" + t.name + "' must have rank " + std::to_string(r) + ", has shape " +
            shape_str(t.shape));
  }
  void constant(const TensorDef& t) const {
    if (!t.is_const) error("tensor '" + t.name + "' must be a constant");
  }
  void state(const TensorDef& t) const {
    if (!t.is_state) error("tensor '" + t.name + "' must be a state tensor (state: true)");
  }
  void not_const(const TensorDef& t) const {
    if (t.is_const) error("tensor '" + t.name + "' must not be a constant");
  }
  // A required integer attribute in [lo, hi]; `why` completes the message when out of range.
  int64_t attr(const std::string& key, int64_t lo, int64_t hi, const std::string& why = "") const {
    if (!n.attrs.count(key)) error("needs attribute '" + key + "'");
    const int64_t v = n.attr_int(key, 0);
    if (v < lo || v > hi)
      error("attribute '" + key + "' = " + std::to_string(v) + " is outside [" +
            std::to_string(lo) + ", " + std::to_string(hi) + "]" + why);
    return v;
  }
  // A positive integer attribute (required).
  int64_t positive(const std::string& key) const { return attr(key, 1, int64_t{1} << 30); }
  // Constant parameter of dtype `d` and shape `s`; returns its data (nullptr if not loaded).
  template <class T>
  const T* param(size_t i, DType d, const std::vector<int64_t>& s) const {
    const TensorDef& t = in(i);
    constant(t);
    dtype(t, {d});
    shape(t, s);
    return t.data.ptr ? t.as<T>() : nullptr;
  }
  template <class T>
  void range(const TensorDef& t, const T* v, int64_t lo, int64_t hi) const {
    for (int64_t i = 0; v && i < t.numel(); ++i)
      if (v[i] < lo || v[i] > hi)
        error("tensor '" + t.name + "' element " + std::to_string(i) + " = " +
              std::to_string(int64_t{v[i]}) + " is outside [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "]");
  }
  void shifts(const TensorDef& t, const int8_t* v) const {
    for (int64_t i = 0; v && i < t.numel(); ++i)
      if (v[i] < 1 || v[i] > 62)
        error("tensor '" + t.name + "' element " + std::to_string(i) + " = " +
              std::to_string(v[i]) + ": shifts must be in [1, 62]");
  }
  int64_t flag(const std::string& key) const {
    const int64_t v = n.attr_int(key, 0);
    if (v != 0 && v != 1) error("attribute '" + key + "' must be 0 or 1");
    return v;
  }
};

constexpr int64_t kMaxAccK = 32768;         // K * 255 * 128 <= 2^30: i32 accumulators are safe
constexpr int64_t kMaxBias = int64_t{1} << 30;

// Output clamp bounds for an integer output dtype, with ReLU raising the lower bound to 0.
void out_bounds(DType t, bool relu, int32_t* lo, int32_t* hi, k::OutType* ot) {
  switch (t) {
    case DType::u8: *lo = 0, *hi = 255, *ot = k::OutType::u8; break;
    case DType::i8: *lo = -128, *hi = 127, *ot = k::OutType::i8; break;
    case DType::i16: *lo = -32768, *hi = 32767, *ot = k::OutType::i16; break;
    default:
      *lo = std::numeric_limits<int32_t>::min(), *hi = std::numeric_limits<int32_t>::max();
      *ot = k::OutType::i32;
  }
  if (relu) *lo = std::max(*lo, 0);
}

// Binds an integer conv2d or fully_connected node (inputs x, w, b, mult, shift [, w_coarse,
// mult_coarse]) to the best conv kernel: packs the weights once and plans the step.
void bind_int_conv(BindCtx& ctx, const NodeDef& n, const k::ConvShape& s, bool relu) {
  const Graph& g = ctx.g;
  auto in = [&](size_t i) -> const TensorDef& { return g.tensor(n.inputs[i]); };
  exec::ConvParams p{};
  p.kernel = k::conv_kernel(ctx.isa);
  p.shape = s;
  p.epilogue.bias = in(2).as<int32_t>();
  p.epilogue.mult = in(3).as<int32_t>();
  p.epilogue.shift = in(4).as<int8_t>();
  if (s.coarse) p.epilogue.mult_coarse = in(6).as<int32_t>();
  out_bounds(g.tensor(n.outputs[0]).dtype, relu, &p.epilogue.lo, &p.epilogue.hi,
             &p.epilogue.out_type);
  void* packed = ctx.alloc(p.kernel->packed_size(s));
  p.kernel->pack(s, in(1).as<int8_t>(), s.coarse ? in(5).as<int8_t>() : nullptr, packed);
  p.packed = packed;
  p.x = static_cast<const uint8_t*>(ctx.tensor(n.inputs[0]));
  p.y = ctx.tensor(n.outputs[0]);
  ctx.kernel[ctx.node] = p.kernel->name;
  const int64_t macs = int64_t(s.n) * s.oh * s.ow * s.o * (s.kh * s.kw + (s.coarse ? 1 : 0)) * s.c;
  ctx.step(exec::conv_step, ctx.make(p), p.kernel->num_tasks(s), p.kernel->scratch_size(s), macs);
}

// ---- conv2d -------------------------------------------------------------------------------

struct ConvGeom {
  int64_t stride, pt, pl, pb, pr;
};

ConvGeom conv_geom(const Check& c) {
  ConvGeom q{c.n.attr_int("stride", 1), 0, 0, 0, 0};
  const std::vector<int64_t> pads = c.n.attr_ints("pads");
  if (!pads.empty()) {
    if (c.n.attrs.count("pad")) c.error("give either 'pad' or 'pads', not both");
    if (pads.size() != 4) c.error("attribute 'pads' must be [top, left, bottom, right]");
    q.pt = pads[0], q.pl = pads[1], q.pb = pads[2], q.pr = pads[3];
  } else {
    q.pt = q.pl = q.pb = q.pr = c.n.attr_int("pad", 0);
  }
  if (q.stride < 1 || q.stride > 16) c.error("attribute 'stride' must be in [1, 16]");
  for (int64_t p : {q.pt, q.pl, q.pb, q.pr})
    if (p < 0 || p > 16) c.error("padding must be in [0, 16]");
  return q;
}

void check_conv2d(const Check& c) {
  const bool f = c.is_float();
  c.arity(3, f ? 3 : 7, 1);
  if (!f && c.n.inputs.size() != 5 && c.n.inputs.size() != 7)
    c.error("integer conv2d takes x, w, b, mult, shift [, w_coarse, mult_coarse]");
  const TensorDef &x = c.in(0), &w = c.in(1), &y = c.out(0);
  c.dtype(x, {DType::f32, DType::u8});
  c.rank(x, 4);
  c.rank(w, 4);
  c.constant(w);
  c.dtype(w, {f ? DType::f32 : DType::i8});
  const int64_t o = w.shape[0], kh = w.shape[1], kw = w.shape[2], ci = w.shape[3];
  // groups: 1 (dense) or the channel count C (depthwise, weights [C, KH, KW, 1]).
  const int64_t groups = c.n.attr_int("groups", 1);
  const bool depthwise = groups != 1;
  if (depthwise) {
    if (groups != x.shape[3])
      c.error("attribute 'groups' = " + std::to_string(groups) +
              ": only 1 and the input channel count (" + std::to_string(x.shape[3]) +
              ", depthwise) are supported");
    if (f) c.error("depthwise conv2d (groups > 1) has an integer form only (x u8)");
    if (c.n.inputs.size() != 5) c.error("depthwise conv2d takes x, w, b, mult, shift (no CFWS)");
    if (o != groups || ci != 1)
      c.error("depthwise weight '" + w.name + "' has shape " + shape_str(w.shape) +
              ", expected [" + std::to_string(groups) + ",KH,KW,1]");
    if (kh < 1 || kh > k::kDwMaxKernel || kw < 1 || kw > k::kDwMaxKernel)
      c.error("depthwise kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
              " is outside 1x1..7x7");
    if (c.n.attr_int("stride", 1) > 2) c.error("depthwise conv2d needs stride 1 or 2");
  } else if (ci != x.shape[3]) {
    c.error("weight '" + w.name + "' has " + std::to_string(ci) + " input channels, input '" +
            x.name + "' has " + std::to_string(x.shape[3]));
  }
  const ConvGeom q = conv_geom(c);
  const int64_t oh = (x.shape[1] + q.pt + q.pb - kh) / q.stride + 1;
  const int64_t ow = (x.shape[2] + q.pl + q.pr - kw) / q.stride + 1;
  if (x.shape[1] + q.pt + q.pb < kh || x.shape[2] + q.pl + q.pr < kw)
    c.error("kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
            " is larger than the padded input");
  c.flag("relu");
  c.shape(y, {x.shape[0], oh, ow, o});
  if (f) {
    c.dtype(y, {DType::f32});
    c.param<float>(2, DType::f32, {o});
    return;
  }
  c.dtype(y, {DType::u8, DType::i8});
  if (kh * kw * ci > kMaxAccK)
    c.error("kernel size x channels = " + std::to_string(kh * kw * ci) +
            " exceeds the i32 accumulator budget (" + std::to_string(kMaxAccK) + ")");
  const bool cfws = c.n.inputs.size() == 7;
  c.range(c.in(2), c.param<int32_t>(2, DType::i32, {o}), -kMaxBias, kMaxBias);
  // With CFWS two 64-bit products are summed: mantissas stay below 2^30 so the sum fits.
  const int64_t mmax = cfws ? (int64_t{1} << 30) - 1 : std::numeric_limits<int32_t>::max();
  c.range(c.in(3), c.param<int32_t>(3, DType::i32, {o}), 0, mmax);
  c.shifts(c.in(4), c.param<int8_t>(4, DType::i8, {o}));
  if (cfws) {
    c.param<int8_t>(5, DType::i8, {o, 1, 1, ci});
    c.range(c.in(6), c.param<int32_t>(6, DType::i32, {o}), 0, mmax);
  }
}

struct RefConvParams {
  ref::Conv2dShape s;
  const float *x, *w, *b;
  bool relu;
  float* y;
};

void ref_conv_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefConvParams*>(p);
  ref::conv2d(q.s, q.x, q.w, q.b, q.relu, q.y);
}

// Depthwise conv2d (groups = C): weights [C, KH, KW, 1] are transposed to the family's
// [KH, KW, C] once, then packed by the best depthwise variant.
void bind_int_dwconv(BindCtx& ctx, const NodeDef& n, const ConvGeom& q, bool relu) {
  const Graph& g = ctx.g;
  auto in = [&](size_t i) -> const TensorDef& { return g.tensor(n.inputs[i]); };
  const TensorDef &x = in(0), &w = in(1), &y = g.tensor(n.outputs[0]);
  exec::DwConvParams p{};
  p.kernel = k::dwconv_kernel(ctx.isa);
  k::DwConvShape& s = p.shape;
  s.n = int(x.shape[0]), s.h = int(x.shape[1]), s.w = int(x.shape[2]), s.c = int(x.shape[3]);
  s.kh = int(w.shape[1]), s.kw = int(w.shape[2]);
  s.stride = int(q.stride), s.pad_t = int(q.pt), s.pad_l = int(q.pl);
  s.oh = int(y.shape[1]), s.ow = int(y.shape[2]);
  p.epilogue.bias = in(2).as<int32_t>();
  p.epilogue.mult = in(3).as<int32_t>();
  p.epilogue.shift = in(4).as<int8_t>();
  int32_t lo = 0, hi = 0;
  k::OutType ot{};
  out_bounds(y.dtype, relu, &lo, &hi, &ot);
  p.epilogue.lo = lo, p.epilogue.hi = hi, p.epilogue.out_type = ot;
  const int8_t* wc = w.as<int8_t>();  // [C, KH*KW]
  const int taps = s.kh * s.kw;
  std::vector<int8_t> hwc(size_t(taps) * s.c);
  for (int c = 0; c < s.c; ++c)
    for (int t = 0; t < taps; ++t) hwc[size_t(t) * s.c + c] = wc[size_t(c) * taps + t];
  void* packed = ctx.alloc(p.kernel->packed_size(s));
  p.kernel->pack(s, hwc.data(), packed);
  p.packed = packed;
  p.x = static_cast<const uint8_t*>(ctx.tensor(n.inputs[0]));
  p.y = ctx.tensor(n.outputs[0]);
  ctx.kernel[ctx.node] = std::string("dwconv/") + p.kernel->name;
  const int64_t macs = int64_t(s.n) * s.oh * s.ow * s.c * taps;
  ctx.step(exec::dwconv_step, ctx.make(p), p.kernel->num_tasks(s), p.kernel->scratch_size(s),
           macs);
}

void bind_conv2d(BindCtx& ctx, const NodeDef& n) {
  const Graph& g = ctx.g;
  const TensorDef &x = g.tensor(n.inputs[0]), &w = g.tensor(n.inputs[1]),
                  &y = g.tensor(n.outputs[0]);
  const Check c{g, n};
  const ConvGeom q = conv_geom(c);
  const bool relu = n.attr_int("relu", 0) != 0;
  if (x.dtype == DType::f32) {
    ref::Conv2dShape s{int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3]),
                       int(w.shape[0]), int(w.shape[1]), int(w.shape[2]), int(q.stride),
                       int(q.pt), int(q.pl), int(y.shape[1]), int(y.shape[2])};
    auto* p = ctx.make(RefConvParams{s, static_cast<const float*>(ctx.tensor(n.inputs[0])),
                                     w.as<float>(), g.tensor(n.inputs[2]).as<float>(), relu,
                                     static_cast<float*>(ctx.tensor(n.outputs[0]))});
    ctx.kernel[ctx.node] = "ref_conv2d_f32";
    ctx.step(ref_conv_step, p, 1);
    return;
  }
  if (n.attr_int("groups", 1) != 1) return bind_int_dwconv(ctx, n, q, relu);
  k::ConvShape s;
  s.n = int(x.shape[0]), s.h = int(x.shape[1]), s.w = int(x.shape[2]), s.c = int(x.shape[3]);
  s.o = int(w.shape[0]), s.kh = int(w.shape[1]), s.kw = int(w.shape[2]);
  s.stride = int(q.stride), s.pad_t = int(q.pt), s.pad_l = int(q.pl);
  s.oh = int(y.shape[1]), s.ow = int(y.shape[2]);
  s.coarse = n.inputs.size() == 7;
  bind_int_conv(ctx, n, s, relu);
}

// ---- fully_connected ------------------------------------------------------------------------

void check_fully_connected(const Check& c) {
  const bool f = c.is_float();
  c.arity(f ? 2 : 3, f ? 3 : 5, 1);  // the float bias is optional
  if (!f && c.n.inputs.size() != 5) c.error("integer fully_connected takes x, w, b, mult, shift");
  const TensorDef &x = c.in(0), &w = c.in(1), &y = c.out(0);
  c.dtype(x, {DType::f32, DType::u8});
  c.rank(x, 2);
  c.rank(w, 2);
  c.constant(w);
  c.dtype(w, {f ? DType::f32 : DType::i8});
  const int64_t o = w.shape[0];
  if (w.shape[1] != x.shape[1])
    c.error("weight '" + w.name + "' has " + std::to_string(w.shape[1]) + " inputs, input '" +
            x.name + "' has " + std::to_string(x.shape[1]));
  c.flag("relu");
  c.shape(y, {x.shape[0], o});
  if (f) {
    c.dtype(y, {DType::f32});
    if (c.n.inputs.size() == 3) c.param<float>(2, DType::f32, {o});
    return;
  }
  c.dtype(y, {DType::u8, DType::i8, DType::i16, DType::i32});
  if (w.shape[1] > kMaxAccK) c.error("K exceeds the i32 accumulator budget");
  c.range(c.in(2), c.param<int32_t>(2, DType::i32, {o}), -kMaxBias, kMaxBias);
  c.range(c.in(3), c.param<int32_t>(3, DType::i32, {o}), 0, std::numeric_limits<int32_t>::max());
  c.shifts(c.in(4), c.param<int8_t>(4, DType::i8, {o}));
}

struct RefFcParams {
  const float *x, *w, *b;
  int n, k, o;
  bool relu;
  float* y;
};

void ref_fc_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefFcParams*>(p);
  ref::fully_connected(q.x, q.n, q.k, q.w, q.b, q.o, q.relu, q.y);
}

void bind_fully_connected(BindCtx& ctx, const NodeDef& n) {
  const Graph& g = ctx.g;
  const TensorDef &x = g.tensor(n.inputs[0]), &w = g.tensor(n.inputs[1]);
  const bool relu = n.attr_int("relu", 0) != 0;
  if (x.dtype == DType::f32) {
    auto* p = ctx.make(RefFcParams{static_cast<const float*>(ctx.tensor(n.inputs[0])),
                                   w.as<float>(),
                                   n.inputs.size() > 2 ? g.tensor(n.inputs[2]).as<float>() : nullptr,
                                   int(x.shape[0]), int(x.shape[1]), int(w.shape[0]), relu,
                                   static_cast<float*>(ctx.tensor(n.outputs[0]))});
    ctx.kernel[ctx.node] = "ref_fully_connected_f32";
    ctx.step(ref_fc_step, p, 1);
    return;
  }
  // A fully-connected layer is the 1x1 convolution of an [N, 1, 1, K] image.
  k::ConvShape s;
  s.n = int(x.shape[0]), s.c = int(x.shape[1]), s.o = int(w.shape[0]);
  bind_int_conv(ctx, n, s, relu);
}

// ---- global_avg_pool -----------------------------------------------------------------------

void check_global_avg_pool(const Check& c) {
  const bool f = c.is_float();
  c.arity(f ? 1 : 3, f ? 1 : 3, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  c.dtype(x, {DType::f32, DType::u8});
  c.rank(x, 4);
  c.shape(y, {x.shape[0], x.shape[3]});
  if (f) return c.dtype(y, {DType::f32});
  c.dtype(y, {DType::u8, DType::i8});
  if (x.shape[1] * x.shape[2] > (int64_t{1} << 23)) c.error("H*W too large for i32 sums");
  c.range(c.in(1), c.param<int32_t>(1, DType::i32, {1}), 0, std::numeric_limits<int32_t>::max());
  c.shifts(c.in(2), c.param<int8_t>(2, DType::i8, {1}));
}

struct RefGapParams {
  const float* x;
  int n, hw, c;
  float* y;
};

void ref_gap_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefGapParams*>(p);
  ref::global_avg_pool(q.x, q.n, q.hw, q.c, q.y);
}

void bind_global_avg_pool(BindCtx& ctx, const NodeDef& n) {
  const Graph& g = ctx.g;
  const TensorDef &x = g.tensor(n.inputs[0]), &y = g.tensor(n.outputs[0]);
  const int nb = int(x.shape[0]), hw = int(x.shape[1] * x.shape[2]), ch = int(x.shape[3]);
  if (x.dtype == DType::f32) {
    ctx.kernel[ctx.node] = "ref_global_avg_pool_f32";
    ctx.step(ref_gap_step,
             ctx.make(RefGapParams{static_cast<const float*>(ctx.tensor(n.inputs[0])), nb, hw,
                                   ch, static_cast<float*>(ctx.tensor(n.outputs[0]))}),
             1);
    return;
  }
  exec::GapParams p{};
  p.kernel = k::pool_kernel(ctx.isa);
  p.x = static_cast<const uint8_t*>(ctx.tensor(n.inputs[0]));
  p.n = nb, p.hw = hw, p.c = ch;
  p.mult = g.tensor(n.inputs[1]).as<int32_t>()[0];
  p.shift = g.tensor(n.inputs[2]).as<int8_t>()[0];
  out_bounds(y.dtype, false, &p.lo, &p.hi, &p.out);
  p.y = ctx.tensor(n.outputs[0]);
  ctx.kernel[ctx.node] = p.kernel->name;
  ctx.step(exec::gap_step, ctx.make(p), 1);
}

// ---- softmax -------------------------------------------------------------------------------
// Integer form: the llm family's DI-ClippedSoftmax (fq/kernels/llm.h `softmax`) over the last
// axis with one per-tensor RowScale: inputs x (i8/i16), x_scale (const i32 [2] = (mant, exp):
// real(x) = x * mant * 2^-exp); attribute clip_q16 (default 2^40: no clip); output u16 (p * 2^16)
// or u8 (p * 2^8). The older form x, mult, shift (mult / 2^shift = scale * log2(e) * 2^16) is
// converted at bind time to x_scale = normalize(mult * round(ln 2 * 2^32), shift + 48).

constexpr int64_t kSoftmaxNoClip = int64_t{1} << 40;   // exp_q's input range; also the default
constexpr uint64_t kSoftmaxLn2Q32 = 2977044472;        // round(ln 2 * 2^32)

void const_row_scales(const Check& c, const TensorDef& t);   // below, with the integer LLM ops

void check_softmax(const Check& c) {
  const bool f = c.is_float();
  c.arity(1, f ? 1 : 3, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  if (x.shape.empty()) c.error("tensor '" + x.name + "' must have rank >= 1");
  c.shape(y, x.shape);
  if (f) return c.dtype(y, {DType::f32});
  c.dtype(x, {DType::i8, DType::i16});
  c.dtype(y, {DType::u16, DType::u8});
  if (c.n.inputs.size() == 1) c.error("the integer form takes inputs x, x_scale (i32 [2])");
  if (c.n.inputs.size() == 2) {
    c.param<int32_t>(1, DType::i32, {2});
    const_row_scales(c, c.in(1));
  } else {
    c.range(c.in(1), c.param<int32_t>(1, DType::i32, {1}), 0, std::numeric_limits<int32_t>::max());
    c.shifts(c.in(2), c.param<int8_t>(2, DType::i8, {1}));
  }
  if (c.n.attrs.count("clip_q16")) c.attr("clip_q16", 1, kSoftmaxNoClip);
}

struct RefRowsParams {
  const float* x;
  int rows, cols;
  float* y;
};

void ref_softmax_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefRowsParams*>(p);
  ref::softmax(q.x, q.rows, q.cols, q.y);
}

void bind_softmax(BindCtx& ctx, const NodeDef& n) {
  const Graph& g = ctx.g;
  const TensorDef &x = g.tensor(n.inputs[0]), &y = g.tensor(n.outputs[0]);
  const int64_t cols = x.shape.back();
  const int64_t rows = x.numel() / cols;
  if (x.dtype == DType::f32) {
    ctx.kernel[ctx.node] = "ref_softmax_f32";
    ctx.step(ref_softmax_step,
             ctx.make(RefRowsParams{static_cast<const float*>(ctx.tensor(n.inputs[0])), int(rows),
                                    int(cols), static_cast<float*>(ctx.tensor(n.outputs[0]))}),
             1);
    return;
  }
  k::RowScale xs;
  if (n.inputs.size() == 2) {
    xs = g.tensor(n.inputs[1]).as<k::RowScale>()[0];
  } else {  // (mult, shift) in 2^-16 log2 units -> the real scale of one input LSB
    const uint64_t mult = uint64_t(g.tensor(n.inputs[1]).as<int32_t>()[0]);
    xs = k::normalize_scale(mult * kSoftmaxLn2Q32, g.tensor(n.inputs[2]).as<int8_t>()[0] + 48);
  }
  exec::LlmParams<k::SoftmaxArgs> p{};
  p.kernel = k::llm_kernel(ctx.isa);
  k::SoftmaxArgs& a = p.a;
  a.x = ctx.tensor(n.inputs[0]);
  a.in_bits = x.dtype == DType::i8 ? 8 : 16;
  a.n = cols;
  a.xs = ctx.make(xs);
  a.xs_stride = 0;
  a.valid = nullptr;
  a.clip_q16 = n.attr_int("clip_q16", kSoftmaxNoClip);
  a.out = y.dtype == DType::u8 ? k::kSoftmaxU8 : k::kSoftmaxU16;
  a.y = ctx.tensor(n.outputs[0]);
  ctx.kernel[ctx.node] = std::string("softmax_int/") + p.kernel->name;
  ctx.step(exec::softmax_step, ctx.make(p), rows, k::softmax_scratch(cols), 8 * x.numel());
}

// ---- float-only element-wise ops -------------------------------------------------------------

void check_relu(const Check& c) {
  c.arity(1, 1, 1);
  c.dtype(c.in(0), {DType::f32});
  c.dtype(c.out(0), {DType::f32});
  c.shape(c.out(0), c.in(0).shape);
}

void ref_relu_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefRowsParams*>(p);
  ref::relu(q.x, int64_t(q.rows) * q.cols, q.y);
}

void bind_relu(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  ctx.kernel[ctx.node] = "ref_relu_f32";
  ctx.step(ref_relu_step,
           ctx.make(RefRowsParams{static_cast<const float*>(ctx.tensor(n.inputs[0])), 1,
                                  int(x.numel()), static_cast<float*>(ctx.tensor(n.outputs[0]))}),
           1);
}

constexpr int kMaxAddInputs = 8;

void check_add(const Check& c) {
  c.arity(2, kMaxAddInputs, 1);
  for (size_t i = 0; i < c.n.inputs.size(); ++i) {
    c.dtype(c.in(i), {DType::f32});
    c.shape(c.in(i), c.in(0).shape);
  }
  c.flag("relu");
  c.dtype(c.out(0), {DType::f32});
  c.shape(c.out(0), c.in(0).shape);
}

struct RefAddParams {
  const float* xs[kMaxAddInputs];
  int count;
  int64_t n;
  bool relu;
  float* y;
};

void ref_add_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefAddParams*>(p);
  ref::add(q.xs, q.count, q.n, q.relu, q.y);
}

void bind_add(BindCtx& ctx, const NodeDef& n) {
  RefAddParams p{};
  for (size_t i = 0; i < n.inputs.size(); ++i)
    p.xs[i] = static_cast<const float*>(ctx.tensor(n.inputs[i]));
  p.count = int(n.inputs.size());
  p.n = ctx.g.tensor(n.outputs[0]).numel();
  p.relu = n.attr_int("relu", 0) != 0;
  p.y = static_cast<float*>(ctx.tensor(n.outputs[0]));
  ctx.kernel[ctx.node] = "ref_add_f32";
  ctx.step(ref_add_step, ctx.make(p), 1);
}

// ---- transformer ops (float forms; the integer forms follow ptr_of) -----------------------------

template <class T>
T* ptr_of(BindCtx& ctx, const std::string& name) {
  return static_cast<T*>(ctx.tensor(name));
}

// ---- integer LLM ops (docs/llm_int.md; kernels: fq/kernels/llm.h and matmul.h) ------------------
// Selected by input dtype; the float forms above dispatch here. A dynamic activation is a values
// tensor plus its row scales (i32 [M, 2] = RowScale pairs (mant, exp)).

constexpr int64_t kMaxExp = 124;            // |exponent| of constant scales, w_exp <= kMaxExp
constexpr int64_t kMaxResidualExp = 62;     // E: unit 2^-E of the int32 residual stream
constexpr int64_t kMaxRmsnormD = 16384;     // sum of x'^2 (|x'| <= 2^24) stays below 2^62
constexpr int64_t kMaxHeadDim = 256;        // q.k sums (2^15 * 2^7 per term) stay below 2^30
constexpr int64_t kMaxMatmulK8 = 131071;    // int8 DI-MatMul: K * 2^14 + |bias| < 2^31
constexpr int64_t kMaxClipQ16 = int64_t{1} << 40;  // exp_q's input range

// A row-scale tensor: i32 [rows, 2].
void row_scales(const Check& c, const TensorDef& t, int64_t rows) {
  c.dtype(t, {DType::i32});
  c.shape(t, {rows, 2});
}

// A constant row-scale table: each row (mant in [2^14, 2^15), exp in [-kMaxExp, kMaxExp]) or
// (0, 0).
void const_row_scales(const Check& c, const TensorDef& t) {
  const int32_t* v = t.data.ptr ? t.as<int32_t>() : nullptr;
  for (int64_t r = 0; v && r < t.numel() / 2; ++r) {
    const int32_t m = v[2 * r], e = v[2 * r + 1];
    if (m == 0 ? e != 0 : m < (1 << 14) || m >= (1 << 15) || e < -kMaxExp || e > kMaxExp)
      c.error("tensor '" + t.name + "' row " + std::to_string(r) + " = (" + std::to_string(m) +
              ", " + std::to_string(e) + "): a row scale is (mant in [2^14, 2^15), exp in [-" +
              std::to_string(kMaxExp) + ", " + std::to_string(kMaxExp) + "]) or (0, 0)");
  }
}

// A dynamic output (values of dtype in `ok`, shape `s`, then row scales) and its `qmax` attribute,
// whose range follows the values' dtype (the kernels write int8 when qmax <= 127, else int16).
void dynamic_output(const Check& c, std::initializer_list<DType> ok,
                    const std::vector<int64_t>& s) {
  const TensorDef& y = c.out(0);
  c.dtype(y, ok);
  c.shape(y, s);
  row_scales(c, c.out(1), s[0]);
  const bool i8 = y.dtype == DType::i8;
  c.attr("qmax", i8 ? 1 : 128, i8 ? 127 : 32767,
         std::string(" for ") + dtype_name(y.dtype) + " output '" + y.name + "'");
}

// Input i: a dynamic activation of dtype d, rank 2, followed by its row scales at i + 1.
const TensorDef& dynamic_input(const Check& c, size_t i, DType d) {
  const TensorDef& x = c.in(i);
  c.dtype(x, {d});
  c.rank(x, 2);
  row_scales(c, c.in(i + 1), x.shape[0]);
  return x;
}

// True for the integer form of an op that also has a float form, selected by input i's dtype.
bool int_form(const Check& c, size_t i, DType d) {
  if (c.n.inputs.size() <= i) return false;  // the float form reports the arity
  c.dtype(c.in(i), {DType::f32, d});
  return c.in(i).dtype == d;
}

void position(const Check& c, size_t i) {
  c.dtype(c.in(i), {DType::i32});
  c.shape(c.in(i), {1});
}

void check_embedding_int(const Check& c) {
  c.arity(3, 3, 1);
  const TensorDef &ids = c.in(0), &table = c.in(1);
  c.dtype(ids, {DType::i32});
  c.rank(ids, 1);
  c.constant(table);
  c.rank(table, 2);
  c.param<int32_t>(2, DType::i32, {table.shape[0], 2});
  const_row_scales(c, c.in(2));
  c.attr("exp", 0, kMaxResidualExp);
  c.dtype(c.out(0), {DType::i32});
  c.shape(c.out(0), {ids.shape[0], table.shape[1]});
}

void check_rmsnorm_int(const Check& c) {
  c.arity(1, 1, 2);
  const TensorDef& x = c.in(0);
  c.rank(x, 2);
  if (x.shape[1] > kMaxRmsnormD)
    c.error("tensor '" + x.name + "' has " + std::to_string(x.shape[1]) + " columns, at most " +
            std::to_string(kMaxRmsnormD));
  c.attr("eps_m", 0, std::numeric_limits<int32_t>::max());
  c.attr("eps_e", -62, 124);
  dynamic_output(c, {DType::i8, DType::i16}, x.shape);
}

// The columns of x a dimatmul reads: optional attribute x_cols [begin, end) (default all of x), so
// that matrices fed by parts of one row (RWKV v6's LoRA: one fc1, five fc2 on its column ranges)
// read them in place. Returns {begin, K}.
std::pair<int64_t, int64_t> dimatmul_cols(const NodeDef& n, const TensorDef& x) {
  const std::vector<int64_t> r = n.attr_ints("x_cols");
  return r.size() == 2 ? std::make_pair(r[0], r[1] - r[0]) : std::make_pair(int64_t{0}, x.shape[1]);
}
// Validates x_cols when present; returns K.
int64_t check_dimatmul_cols(const Check& c, const TensorDef& x) {
  const std::vector<int64_t> r = c.n.attr_ints("x_cols");
  if (c.n.attrs.count("x_cols") && (r.size() != 2 || r[0] < 0 || r[0] >= r[1] || r[1] > x.shape[1]))
    c.error("attribute 'x_cols' must be [begin, end) with 0 <= begin < end <= " + std::to_string(x.shape[1]) +
            " (the columns of '" + x.name + "')");
  return dimatmul_cols(c.n, x).second;
}

// Codebook weights (RWKVQuant's vector-quantized matrices, matmul.h cb3 / cb4): w u8 [N, ceil(K b / 8)]
// (the index bitstream of each row), codebook i8 [ceil(N / R), ceil(K / group), 2^b] (R rows share
// a codebook), mult i32 or i16 [N] (row scales; i16 is widened at load) [, bias]; attrs bits (3 or
// 4), group (32, 64 or 128), w_exp, optional codebook_rows R (default 1).
void check_dimatmul_codebook(const Check& c, const TensorDef& x, const TensorDef& w, int64_t k) {
  const int64_t n = w.shape[0];
  if (c.n.inputs.size() < 5 || c.n.inputs.size() > 6)
    c.error("codebook dimatmul takes x, x_scale, w, codebook, mult [, bias]");
  const int64_t b = c.attr("bits", 3, 4), group = c.attr("group", 32, 128);
  if (group != 32 && group != 64 && group != 128) c.error("attribute 'group' must be 32, 64 or 128");
  if (w.shape[1] != (k * b + 7) / 8)
    c.error("codebook weight '" + w.name + "' has " + std::to_string(w.shape[1]) + " bytes per row, " +
            std::to_string(k) + " " + std::to_string(b) + "-bit indices need " + std::to_string((k * b + 7) / 8));
  if (k > kMaxMatmulK8)
    c.error("K = " + std::to_string(k) + " exceeds the i32 accumulator budget (" + std::to_string(kMaxMatmulK8) + ")");
  c.constant(w);
  const int64_t rows = c.n.attrs.count("codebook_rows") ? c.attr("codebook_rows", 1, std::max<int64_t>(n, 1)) : 1;
  c.param<int8_t>(3, DType::i8, {(n + rows - 1) / rows, (k + group - 1) / group, int64_t{1} << b});
  const TensorDef& mult = c.in(4);
  c.constant(mult);
  c.dtype(mult, {DType::i32, DType::i16});
  c.shape(mult, {n});
  if (mult.data.ptr && mult.dtype == DType::i32)
    c.range(mult, mult.as<int32_t>(), 0, std::numeric_limits<int32_t>::max());
  else if (mult.data.ptr)
    c.range(mult, mult.as<int16_t>(), 0, std::numeric_limits<int16_t>::max());
  if (c.n.inputs.size() == 6) {
    const int64_t bmax = std::numeric_limits<int32_t>::max() - k * 128 * 128;
    c.range(c.in(5), c.param<int32_t>(5, DType::i32, {n}), -bmax, bmax);
  }
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), {x.shape[0], n});
  row_scales(c, c.out(1), x.shape[0]);
}

void check_dimatmul(const Check& c) {
  c.arity(4, 6, 2);
  const TensorDef &x = dynamic_input(c, 0, DType::i8), &w = c.in(2);
  c.constant(w);
  c.dtype(w, {DType::i8, DType::i4, DType::u8});
  c.rank(w, 2);
  const int64_t n = w.shape[0], k = check_dimatmul_cols(c, x);
  c.attr("w_exp", 0, kMaxExp);
  if (w.dtype == DType::u8) return check_dimatmul_codebook(c, x, w, k);
  if (w.shape[1] != k)
    c.error("weight '" + w.name + "' has " + std::to_string(w.shape[1]) + " inputs, input '" +
            x.name + "' has " + std::to_string(k) + (c.n.attrs.count("x_cols") ? " (x_cols)" : ""));
  const bool i4 = w.dtype == DType::i4;
  const size_t nb = i4 ? 5 : 4;  // index of the optional bias
  if (c.n.inputs.size() < nb || c.n.inputs.size() > nb + 1)
    c.error(i4 ? "int4 dimatmul takes x, x_scale, w, gmult, gshift [, bias]"
               : "int8 dimatmul takes x, x_scale, w, mult [, bias]");
  const int32_t* bias = c.n.inputs.size() > nb ? c.param<int32_t>(nb, DType::i32, {n}) : nullptr;
  if (!i4) {
    if (c.n.attrs.count("group")) c.error("attribute 'group' is for int4 weights only");
    if (k > kMaxMatmulK8)
      c.error("K = " + std::to_string(k) + " exceeds the i32 accumulator budget (" +
              std::to_string(kMaxMatmulK8) + ")");
    c.range(c.in(3), c.param<int32_t>(3, DType::i32, {n}), 0, std::numeric_limits<int32_t>::max());
    const int64_t bmax = std::numeric_limits<int32_t>::max() - k * 128 * 128;
    if (bias) c.range(c.in(nb), bias, -bmax, bmax);
  } else {
    const int64_t group = c.attr("group", 32, 128);
    if (group != 32 && group != 64 && group != 128)
      c.error("attribute 'group' must be 32, 64 or 128");
    if (k % 2 != 0)
      c.error("int4 weight '" + w.name + "' needs an even K, has " + std::to_string(k));
    const int64_t ng = (k + group - 1) / group;
    const int16_t* gm = c.param<int16_t>(3, DType::i16, {n, ng});
    const int8_t* gs = c.param<int8_t>(4, DType::i8, {n});
    c.range(c.in(4), gs, 0, 30);
    // |v| < 2^62: |bias| + sum over groups of (128 * 8 * group length) * |gmult|, times 2^gshift.
    for (int64_t r = 0; gm && gs && r < n; ++r) {
      int64_t bound = bias ? std::abs(int64_t{bias[r]}) : 0;
      for (int64_t g = 0; g < ng; ++g)
        bound += 1024 * std::min(group, k - g * group) * std::abs(int64_t{gm[r * ng + g]});
      if (bound >= int64_t{1} << (62 - gs[r]))
        c.error("row " + std::to_string(r) + " of weight '" + w.name +
                "' can overflow: (|bias| + sum 1024 * group * |gmult|) * 2^gshift >= 2^62");
    }
  }
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), {x.shape[0], n});
  row_scales(c, c.out(1), x.shape[0]);
}

void check_rope_int(const Check& c) {
  c.arity(4, 4, 2);
  const TensorDef &x = dynamic_input(c, 0, DType::i16), &table = c.in(3);
  position(c, 2);
  const int64_t hd = c.attr("head_dim", 2, kMaxHeadDim);
  if (hd % 2 != 0) c.error("attribute 'head_dim' must be even (RoPE rotates pairs)");
  if (x.shape[1] % hd != 0)
    c.error("tensor '" + x.name + "' width " + std::to_string(x.shape[1]) +
            " is not a multiple of head_dim " + std::to_string(hd));
  c.rank(table, 3);
  c.range(table, c.param<int16_t>(3, DType::i16, {table.shape[0], hd / 2, 2}), -16384, 16384);
  if (table.shape[0] < x.shape[0])
    c.error("tensor '" + table.name + "' has fewer positions than '" + x.name + "' has rows");
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), x.shape);
  row_scales(c, c.out(1), x.shape[0]);
}

void check_attention_int(const Check& c) {
  c.arity(11, 11, 2);
  const int64_t hq = c.positive("n_heads"), hkv = c.positive("n_kv_heads");
  if (hq % hkv != 0) c.error("n_heads must be a multiple of n_kv_heads");
  const TensorDef& q = dynamic_input(c, 0, DType::i16);
  if (q.shape[1] % hq != 0)
    c.error("tensor '" + q.name + "' width " + std::to_string(q.shape[1]) +
            " is not a multiple of n_heads " + std::to_string(hq));
  const int64_t hd = q.shape[1] / hq, m = q.shape[0];
  if (hd > kMaxHeadDim)
    c.error("head_dim " + std::to_string(hd) + " exceeds " + std::to_string(kMaxHeadDim));
  for (size_t i : {2, 4}) c.shape(dynamic_input(c, i, DType::i16), {m, hkv * hd});
  const TensorDef& kc = c.in(6);
  c.rank(kc, 2);
  const int64_t s = kc.shape[0];
  for (size_t i = 6; i < 10; ++i) {
    const TensorDef& t = c.in(i);
    c.state(t);
    c.dtype(t, {i % 2 == 0 ? DType::i8 : DType::i32});
    c.shape(t, i % 2 == 0 ? std::vector<int64_t>{s, hkv * hd} : std::vector<int64_t>{s, hkv, 2});
    for (size_t j = 6; j < i; ++j)
      if (c.in(j).name == t.name) c.error("the four cache tensors must be different tensors");
  }
  if (m > s) c.error("more query rows than cache rows");
  position(c, 10);
  c.attr("clip_q16", 1, kMaxClipQ16);
  dynamic_output(c, {DType::i8}, q.shape);
}

void check_swiglu_int(const Check& c) {
  c.arity(4, 4, 2);
  const TensorDef& gate = dynamic_input(c, 0, DType::i16);
  c.shape(dynamic_input(c, 2, DType::i16), gate.shape);
  dynamic_output(c, {DType::i8, DType::i16}, gate.shape);
}

void check_hadamard(const Check& c) {
  c.arity(2, 2, 2);
  const TensorDef& x = dynamic_input(c, 0, c.in(0).dtype == DType::i16 ? DType::i16 : DType::i8);
  if (!k::hadamard_size_ok(x.shape[1]))
    c.error("tensor '" + x.name + "' width " + std::to_string(x.shape[1]) +
            " is not 2^k times 1, 12, 20, 28 or 44");
  if (x.dtype == DType::i16 && x.shape[1] > 65536)
    c.error("tensor '" + x.name + "': an int16 input is at most 65536 wide (int32 sums)");
  dynamic_output(c, {DType::i8}, x.shape);
}

void check_residual_add(const Check& c) {
  c.arity(3, 3, 1);
  const TensorDef& h = c.in(0);
  c.dtype(h, {DType::i32});
  c.rank(h, 2);
  c.dtype(c.in(1), {DType::i16});
  c.shape(c.in(1), h.shape);
  row_scales(c, c.in(2), h.shape[0]);
  c.attr("exp", 0, kMaxResidualExp);
  c.dtype(c.out(0), {DType::i32});
  c.shape(c.out(0), h.shape);
}

// ---- binding of the integer LLM ops ----

k::RowScale* row_scale_ptr(BindCtx& ctx, const std::string& name) {
  return ptr_of<k::RowScale>(ctx, name);
}
int attr_of(const NodeDef& n, const char* key) { return int(n.attr_int(key, 0)); }

// A family's kernel chosen for this node, reported as "op_int/variant".
template <class Kernel>
const Kernel* reported(BindCtx& ctx, const NodeDef& n, const Kernel* kern) {
  ctx.kernel[ctx.node] = n.op + "_int/" + kern->name;
  return kern;
}
const k::LlmKernel* llm_kernel(BindCtx& ctx, const NodeDef& n) { return reported(ctx, n, k::llm_kernel(ctx.isa)); }

// A row-wise op of a kernel family: one step over its rows, the params {kernel, args}. `work` ~
// multiply-adds (small steps stay on the calling thread).
template <class Params, class Kernel, class Args>
void rows_step(BindCtx& ctx, exec::StepFn fn, const Kernel* kern, const Args& a, int64_t rows, size_t scratch,
               int64_t work) {
  ctx.step(fn, ctx.make(Params{kern, a}), rows, scratch, work);
}
template <class Args>
void llm_rows(BindCtx& ctx, const NodeDef& n, exec::StepFn fn, const Args& a, int64_t rows,
              size_t scratch, int64_t work) {
  rows_step<exec::LlmParams<Args>>(ctx, fn, llm_kernel(ctx, n), a, rows, scratch, work);
}

void bind_embedding_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef &ids = ctx.g.tensor(n.inputs[0]), &table = ctx.g.tensor(n.inputs[1]);
  k::EmbeddingArgs a{};
  a.ids = ptr_of<const int32_t>(ctx, n.inputs[0]);
  a.table = table.as<int8_t>();
  a.ts = ctx.g.tensor(n.inputs[2]).as<k::RowScale>();
  a.vocab = table.shape[0], a.d = table.shape[1], a.e = attr_of(n, "exp");
  a.out = ptr_of<int32_t>(ctx, n.outputs[0]);
  llm_rows(ctx, n, exec::embedding_step, a, ids.shape[0], 0, ids.shape[0] * a.d);
}

void bind_rmsnorm_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  k::RmsnormArgs a{};
  a.x = ptr_of<const int32_t>(ctx, n.inputs[0]);
  a.d = x.shape[1];
  a.eps_m = attr_of(n, "eps_m"), a.eps_e = attr_of(n, "eps_e"), a.qmax = attr_of(n, "qmax");
  a.y = ctx.tensor(n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  llm_rows(ctx, n, exec::rmsnorm_step, a, x.shape[0], k::rmsnorm_scratch(a.d), 4 * x.numel());
}

// DI-MatMul: weights packed once; one step per kernel pass, then the output scales.
void bind_dimatmul(BindCtx& ctx, const NodeDef& n) {
  const Graph& g = ctx.g;
  const TensorDef &x = g.tensor(n.inputs[0]), &w = g.tensor(n.inputs[2]);
  const bool i4 = w.dtype == DType::i4, cb = w.dtype == DType::u8;
  const size_t nb = i4 || cb ? 5 : 4;
  const auto [col, kdim] = dimatmul_cols(n, x);
  k::MatmulShape s;
  s.m = x.shape[0], s.n = int(w.shape[0]), s.k = int(kdim);
  s.format = cb ? (attr_of(n, "bits") == 3 ? k::WeightFormat::cb3 : k::WeightFormat::cb4)
                : i4 ? k::WeightFormat::i4 : k::WeightFormat::i8;
  s.group = i4 || cb ? attr_of(n, "group") : 0;
  s.codebook_rows = cb ? int(n.attr_int("codebook_rows", 1)) : 1;
  k::MatmulWeights mw;
  mw.w = w.data.ptr;
  std::vector<int32_t> mult32;  // i16 codebook row scales, widened (pack() reads them once)
  if (cb) {
    const TensorDef& mult = g.tensor(n.inputs[4]);
    mw.codebook = g.tensor(n.inputs[3]).as<int8_t>();
    if (mult.dtype == DType::i16) {
      mult32.assign(mult.as<int16_t>(), mult.as<int16_t>() + s.n);
      mw.mult = mult32.data();
    } else {
      mw.mult = mult.as<int32_t>();
    }
  } else if (i4) {
    mw.gmult = g.tensor(n.inputs[3]).as<int16_t>();
    mw.gshift = g.tensor(n.inputs[4]).as<int8_t>();
  } else {
    mw.mult = g.tensor(n.inputs[3]).as<int32_t>();
  }
  if (n.inputs.size() > nb) mw.bias = g.tensor(n.inputs[nb]).as<int32_t>();
  exec::MatmulParams p{};
  p.kernel = k::matmul_kernel(ctx.isa);
  p.shape = s;
  void* packed = ctx.alloc(p.kernel->packed_size(s));
  p.kernel->pack(s, mw, packed);
  k::MatmulArgs& a = p.args;
  a.a = ptr_of<const int8_t>(ctx, n.inputs[0]) + col;
  a.lda = x.shape[1];
  a.packed = packed;
  a.e.op = k::MatmulOp::dynamic;
  a.e.out_type = k::OutType::i16;
  a.e.row_shift = static_cast<int8_t*>(ctx.alloc(size_t(s.m)));
  a.y = ctx.tensor(n.outputs[0]);
  a.ldy = s.n;
  if (const size_t ws = p.kernel->workspace_size(s, a.e)) a.workspace = ctx.alloc(ws);
  ctx.kernel[ctx.node] = std::string(cb ? "dimatmul_cb/" : i4 ? "dimatmul_i4/" : "dimatmul_i8/") + p.kernel->name;
  const size_t scratch = p.kernel->scratch_size(s, a.e);
  const int64_t macs = s.m * s.n * s.k;
  for (p.pass = 0; p.pass < p.kernel->num_passes(s, a.e); ++p.pass)
    ctx.step(exec::matmul_step, ctx.make(p), p.kernel->num_tasks(s, a.e, p.pass), scratch, macs);
  ctx.step(exec::matmul_scale_step,
           ctx.make(exec::MatmulScaleParams{row_scale_ptr(ctx, n.inputs[1]), a.e.row_shift,
                                            attr_of(n, "w_exp"), row_scale_ptr(ctx, n.outputs[1])}),
           s.m);
}

void bind_rope_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef &x = ctx.g.tensor(n.inputs[0]), &table = ctx.g.tensor(n.inputs[3]);
  exec::RopeParams p{};
  p.kernel = llm_kernel(ctx, n);
  p.a.x = ptr_of<const int16_t>(ctx, n.inputs[0]);
  p.a.width = x.shape[1], p.a.head_dim = attr_of(n, "head_dim");
  p.a.table = table.as<int16_t>(), p.a.table_rows = table.shape[0];
  p.a.xs = row_scale_ptr(ctx, n.inputs[1]);
  p.a.y = ptr_of<int16_t>(ctx, n.outputs[0]);
  p.a.ys = row_scale_ptr(ctx, n.outputs[1]);
  p.pos = ptr_of<const int32_t>(ctx, n.inputs[2]);
  ctx.step(exec::rope_step, ctx.make(p), x.shape[0], 0, 4 * x.numel());
}

// Attention: cache write (1 unit), heads (M * H units), output rows (M units); `work` and
// `work_exp` are shared by the last two steps and live with the session.
void bind_attention_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef &q = ctx.g.tensor(n.inputs[0]), &kc = ctx.g.tensor(n.inputs[6]);
  exec::AttentionParams p{};
  p.kernel = llm_kernel(ctx, n);
  k::AttentionArgs& a = p.a;
  a.q = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.k = ptr_of<const int16_t>(ctx, n.inputs[2]);
  a.v = ptr_of<const int16_t>(ctx, n.inputs[4]);
  a.qs = row_scale_ptr(ctx, n.inputs[1]);
  a.ks = row_scale_ptr(ctx, n.inputs[3]);
  a.vs = row_scale_ptr(ctx, n.inputs[5]);
  a.kc = ptr_of<int8_t>(ctx, n.inputs[6]);
  a.kcs = row_scale_ptr(ctx, n.inputs[7]);
  a.vc = ptr_of<int8_t>(ctx, n.inputs[8]);
  a.vcs = row_scale_ptr(ctx, n.inputs[9]);
  a.rows = q.shape[0];
  a.heads = attr_of(n, "n_heads"), a.kv_heads = attr_of(n, "n_kv_heads");
  a.head_dim = int(q.shape[1] / a.heads);
  a.cache_rows = kc.shape[0];
  a.clip_q16 = n.attr_int("clip_q16", 1);
  a.qmax = attr_of(n, "qmax");
  a.y = ptr_of<int8_t>(ctx, n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  a.work = static_cast<int64_t*>(ctx.alloc(sizeof(int64_t) * size_t(q.numel())));
  a.work_exp = static_cast<int32_t*>(ctx.alloc(sizeof(int32_t) * size_t(a.rows * a.heads)));
  p.pos = ptr_of<const int32_t>(ctx, n.inputs[10]);
  const auto* params = ctx.make(p);
  const size_t scratch = k::attention_scratch(a);
  ctx.step(exec::attention_cache_step, params, 1, scratch);
  // Worst case (all S positions): q.k and the weighted sum of v per (row, head).
  ctx.step(exec::attention_heads_step, params, a.rows * a.heads, scratch,
           2 * q.numel() * a.cache_rows);
  ctx.step(exec::attention_out_step, params, a.rows, scratch, 4 * q.numel());
}

void bind_swiglu_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& gate = ctx.g.tensor(n.inputs[0]);
  k::SwigluArgs a{};
  a.gate = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.up = ptr_of<const int16_t>(ctx, n.inputs[2]);
  a.n = gate.shape[1];
  a.gs = row_scale_ptr(ctx, n.inputs[1]);
  a.us = row_scale_ptr(ctx, n.inputs[3]);
  a.qmax = attr_of(n, "qmax");
  a.y = ctx.tensor(n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  llm_rows(ctx, n, exec::swiglu_step, a, gate.shape[0], k::swiglu_scratch(a.n), 8 * gate.numel());
}

void bind_hadamard(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  k::HadamardArgs a{};
  if (x.dtype == DType::i16) a.x16 = ptr_of<const int16_t>(ctx, n.inputs[0]);
  else a.x = ptr_of<const int8_t>(ctx, n.inputs[0]);
  a.xs = row_scale_ptr(ctx, n.inputs[1]);
  a.n = x.shape[1];
  a.qmax = attr_of(n, "qmax");
  a.y = ptr_of<int8_t>(ctx, n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  int64_t log2n = 0;  // butterflies per element, plus up to 44 for the H_b factor
  while ((int64_t{1} << log2n) < a.n) ++log2n;
  llm_rows(ctx, n, exec::hadamard_step, a, x.shape[0], k::hadamard_scratch(a.n),
           x.numel() * (log2n + 44));
}

void bind_residual_add(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& h = ctx.g.tensor(n.inputs[0]);
  k::ResidualArgs a{};
  a.h = ptr_of<const int32_t>(ctx, n.inputs[0]);
  a.y = ptr_of<const int16_t>(ctx, n.inputs[1]);
  a.ys = row_scale_ptr(ctx, n.inputs[2]);
  a.d = h.shape[1], a.e = attr_of(n, "exp");
  a.out = ptr_of<int32_t>(ctx, n.outputs[0]);
  llm_rows(ctx, n, exec::residual_add_step, a, h.shape[0], 0, 2 * h.numel());
}


// embedding: ids i32 [T], table f32 [V, D] (constant) -> [T, D]; ids outside [0, V) give zeros.
void check_embedding(const Check& c) {
  if (int_form(c, 1, DType::i8)) return check_embedding_int(c);
  c.arity(2, 2, 1);
  const TensorDef &ids = c.in(0), &table = c.in(1), &y = c.out(0);
  c.dtype(ids, {DType::i32});
  c.rank(ids, 1);
  c.constant(table);
  c.dtype(table, {DType::f32});
  c.rank(table, 2);
  c.dtype(y, {DType::f32});
  c.shape(y, {ids.shape[0], table.shape[1]});
}

struct RefEmbeddingParams {
  const int32_t* ids;
  const float* table;
  int t, v, d;
  float* y;
};

void ref_embedding_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefEmbeddingParams*>(p);
  ref::embedding(q.ids, q.t, q.table, q.v, q.d, q.y);
}

void bind_embedding(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& table = ctx.g.tensor(n.inputs[1]);
  if (table.dtype != DType::f32) return bind_embedding_int(ctx, n);
  RefEmbeddingParams p{ptr_of<const int32_t>(ctx, n.inputs[0]), table.as<float>(),
                       int(ctx.g.tensor(n.inputs[0]).shape[0]), int(table.shape[0]),
                       int(table.shape[1]), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_embedding_f32";
  ctx.step(ref_embedding_step, ctx.make(p), 1);
}

// rmsnorm: x [T, D], w [D] (constant), attr eps -> [T, D].
void check_rmsnorm(const Check& c) {
  if (int_form(c, 0, DType::i32)) return check_rmsnorm_int(c);
  c.arity(2, 2, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  c.dtype(x, {DType::f32});
  c.rank(x, 2);
  c.param<float>(1, DType::f32, {x.shape[1]});
  const double eps = c.n.attr_float("eps", 1e-5);
  if (!(eps > 0) || !std::isfinite(eps)) c.error("attribute 'eps' must be finite and > 0");
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefRmsnormParams {
  const float *x, *w;
  int rows, d;
  float eps;
  float* y;
};

void ref_rmsnorm_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefRmsnormParams*>(p);
  ref::rmsnorm(q.x, q.rows, q.d, q.w, q.eps, q.y);
}

void bind_rmsnorm(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  if (x.dtype != DType::f32) return bind_rmsnorm_int(ctx, n);
  RefRmsnormParams p{ptr_of<const float>(ctx, n.inputs[0]), ctx.g.tensor(n.inputs[1]).as<float>(),
                     int(x.shape[0]), int(x.shape[1]), float(n.attr_float("eps", 1e-5)),
                     ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rmsnorm_f32";
  ctx.step(ref_rmsnorm_step, ctx.make(p), 1);
}

// rope: x [T, W], pos i32 [1] (position of row 0); attrs head_dim (even, divides W), base.
void check_rope(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_rope_int(c);
  c.arity(2, 2, 1);
  const TensorDef &x = c.in(0), &pos = c.in(1), &y = c.out(0);
  c.dtype(x, {DType::f32});
  c.rank(x, 2);
  c.dtype(pos, {DType::i32});
  c.shape(pos, {1});
  const int64_t hd = c.positive("head_dim");
  if (hd % 2 != 0) c.error("attribute 'head_dim' must be even (RoPE rotates pairs)");
  if (x.shape[1] % hd != 0)
    c.error("tensor '" + x.name + "' width " + std::to_string(x.shape[1]) +
            " is not a multiple of head_dim " + std::to_string(hd));
  const double base = c.n.attr_float("base", 10000.0);
  if (!(base > 0) || !std::isfinite(base)) c.error("attribute 'base' must be finite and > 0");
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefRopeParams {
  const float* x;
  const int32_t* pos;
  int rows, width, head_dim;
  float base;
  float* y;
};

void ref_rope_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefRopeParams*>(p);
  ref::rope(q.x, q.rows, q.width, q.head_dim, q.base, q.pos[0], q.y);
}

void bind_rope(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  if (x.dtype != DType::f32) return bind_rope_int(ctx, n);
  RefRopeParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const int32_t>(ctx, n.inputs[1]),
                  int(x.shape[0]), int(x.shape[1]), int(n.attr_int("head_dim", 0)),
                  float(n.attr_float("base", 10000.0)), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rope_f32";
  ctx.step(ref_rope_step, ctx.make(p), 1);
}

// attention: q [T, Hq*hd], k, v [T, Hkv*hd], k_cache, v_cache (state [S, Hkv*hd]), pos i32 [1];
// attrs n_heads, n_kv_heads -> [T, Hq*hd]. Updates the caches in place (rows pos .. pos+T-1).
void check_attention(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_attention_int(c);
  c.arity(6, 6, 1);
  const TensorDef &q = c.in(0), &k = c.in(1), &v = c.in(2), &kc = c.in(3), &vc = c.in(4),
                  &pos = c.in(5), &y = c.out(0);
  const int64_t hq = c.positive("n_heads"), hkv = c.positive("n_kv_heads");
  if (hq % hkv != 0) c.error("n_heads must be a multiple of n_kv_heads");
  for (const TensorDef* t : {&q, &k, &v}) {
    c.dtype(*t, {DType::f32});
    c.rank(*t, 2);
    c.not_const(*t);
  }
  if (q.shape[1] % hq != 0)
    c.error("tensor '" + q.name + "' width " + std::to_string(q.shape[1]) +
            " is not a multiple of n_heads " + std::to_string(hq));
  const int64_t hd = q.shape[1] / hq, t = q.shape[0];
  c.shape(k, {t, hkv * hd});
  c.shape(v, {t, hkv * hd});
  for (const TensorDef* s : {&kc, &vc}) {
    c.state(*s);
    c.dtype(*s, {DType::f32});
    c.rank(*s, 2);
  }
  if (kc.shape[1] != hkv * hd)
    c.error("tensor '" + kc.name + "' must have " + std::to_string(hkv * hd) + " columns");
  c.shape(vc, kc.shape);
  if (kc.name == vc.name) c.error("k_cache and v_cache must be different tensors");
  if (t > kc.shape[0]) c.error("more query rows than cache rows");
  c.dtype(pos, {DType::i32});
  c.shape(pos, {1});
  c.dtype(y, {DType::f32});
  c.shape(y, q.shape);
}

struct RefAttentionParams {
  ref::AttentionShape s;
  const float *q, *k, *v;
  float *k_cache, *v_cache;
  const int32_t* pos;
  float* y;
};

void ref_attention_step(const void* p, int64_t, int64_t, void* scratch) {
  const auto& a = *static_cast<const RefAttentionParams*>(p);
  ref::attention(a.s, a.q, a.k, a.v, a.k_cache, a.v_cache, a.pos[0], static_cast<float*>(scratch),
                 a.y);
}

void bind_attention(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_attention_int(ctx, n);
  const TensorDef &q = ctx.g.tensor(n.inputs[0]), &kc = ctx.g.tensor(n.inputs[3]);
  const int hq = int(n.attr_int("n_heads", 1)), hkv = int(n.attr_int("n_kv_heads", 1));
  RefAttentionParams p{{int(q.shape[0]), hq, hkv, int(q.shape[1] / hq), int(kc.shape[0])},
                       ptr_of<const float>(ctx, n.inputs[0]),
                       ptr_of<const float>(ctx, n.inputs[1]),
                       ptr_of<const float>(ctx, n.inputs[2]),
                       ptr_of<float>(ctx, n.inputs[3]),
                       ptr_of<float>(ctx, n.inputs[4]),
                       ptr_of<const int32_t>(ctx, n.inputs[5]),
                       ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_attention_f32";
  ctx.step(ref_attention_step, ctx.make(p), 1, sizeof(float) * size_t(kc.shape[0]));
}

// swiglu: gate, up [.., H] -> silu(gate) * up.
void check_swiglu(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_swiglu_int(c);
  c.arity(2, 2, 1);
  c.dtype(c.in(0), {DType::f32});
  c.dtype(c.in(1), {DType::f32});
  c.shape(c.in(1), c.in(0).shape);
  c.dtype(c.out(0), {DType::f32});
  c.shape(c.out(0), c.in(0).shape);
}

struct RefSwigluParams {
  const float *gate, *up;
  int64_t n;
  float* y;
};

void ref_swiglu_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefSwigluParams*>(p);
  ref::swiglu(q.gate, q.up, q.n, q.y);
}

void bind_swiglu(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_swiglu_int(ctx, n);
  RefSwigluParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                    ctx.g.tensor(n.inputs[0]).numel(), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_swiglu_f32";
  ctx.step(ref_swiglu_step, ctx.make(p), 1);
}

// ---- integer RWKV ops (docs/rwkv.md "Integer graphs"; kernels: fq/kernels/rwkv.h, linattn.h,
// lut.h and llm.h's layernorm). The float forms below dispatch here by input dtype.

constexpr int64_t kMaxRwkvLn = int64_t{1} << 24;   // llm layernorm: d <= 2^24

const k::RwkvKernel* rwkv_kernel(BindCtx& ctx, const NodeDef& n) { return reported(ctx, n, k::rwkv_kernel(ctx.isa)); }

template <class Args>
void rwkv_rows_step(BindCtx& ctx, const NodeDef& n, exec::StepFn fn, const Args& a, int64_t rows,
                    size_t scratch, int64_t work) {
  rows_step<exec::RwkvParams<Args>>(ctx, fn, rwkv_kernel(ctx, n), a, rows, scratch, work);
}

// attr `groups` (default 1) dividing the width d.
int64_t int_groups(const Check& c, int64_t d) {
  const int64_t g = c.n.attrs.count("groups") ? c.positive("groups") : 1;
  if (d % g != 0)
    c.error("attribute 'groups' = " + std::to_string(g) + " does not divide the width " + std::to_string(d));
  return g;
}

// layernorm (integer form): x i32 [M, D] (the residual, unit 2^-exp) or x i16 [M, D] + x_scale;
// gamma, beta i32 [D] constants (gamma = g 2^-ae with |g| <= 2^15, beta = b 2^-ae); attrs ae,
// eps_m / eps_e (eps = eps_m 2^-eps_e in real units), groups (statistics per run of D / groups:
// RWKV's GroupNorm over the heads of a token; one row scale per token), qmax -> y i8/i16 + y_scale.
void check_layernorm_int(const Check& c) {
  const bool res = c.in(0).dtype == DType::i32;
  c.arity(res ? 3 : 4, res ? 3 : 4, 2);
  const TensorDef& x = res ? c.in(0) : dynamic_input(c, 0, DType::i16);
  c.rank(x, 2);
  c.not_const(x);
  if (res) c.attr("exp", 0, kMaxResidualExp);
  const int64_t d = x.shape[1];
  if (d > kMaxRwkvLn) c.error("tensor '" + x.name + "' is wider than 2^24");
  const size_t gi = res ? 1 : 2;
  c.range(c.in(gi), c.param<int32_t>(gi, DType::i32, {d}), -32768, 32768);
  c.param<int32_t>(gi + 1, DType::i32, {d});
  c.attr("ae", -kMaxResidualExp, kMaxResidualExp);
  c.attr("eps_m", 0, std::numeric_limits<int32_t>::max());
  c.attr("eps_e", -62, 124);
  int_groups(c, d);
  dynamic_output(c, {DType::i8, DType::i16}, x.shape);
}

void bind_layernorm_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  const bool res = x.dtype == DType::i32;
  const size_t gi = res ? 1 : 2;
  k::LayernormArgs a{};
  a.x = ctx.tensor(n.inputs[0]);
  a.in_bits = res ? 32 : 16;
  a.d = x.shape[1];
  if (res) {  // the residual's static unit 2^-E as a row scale shared by every row
    a.xs = ctx.make(k::RowScale{1 << 14, attr_of(n, "exp") + 14});
    a.xs_stride = 0;
  } else {
    a.xs = row_scale_ptr(ctx, n.inputs[1]);
    a.xs_stride = 1;
  }
  a.eps_m = int32_t(n.attr_int("eps_m", 0)), a.eps_e = attr_of(n, "eps_e");
  a.gm = ctx.g.tensor(n.inputs[gi]).as<int32_t>();
  a.bo = ctx.g.tensor(n.inputs[gi + 1]).as<int32_t>();
  a.ae = attr_of(n, "ae");
  a.groups = 1, a.inner = 1;
  a.segments = n.attr_int("groups", 1);
  a.qmax = attr_of(n, "qmax");
  a.y = ctx.tensor(n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  a.stats = nullptr;
  llm_rows(ctx, n, exec::layernorm_step, a, x.shape[0], k::layernorm_scratch(a.d), 8 * x.numel());
}

// token_shift (integer form): x i16 [M, D] + x_scale; state i16 [1, D] and state_scale i32 [1, 2]
// (state tensors) -> y i16 [M, D] + y_scale = (state, x[0], .., x[M-2]); the state becomes x[M-1].
void check_token_shift_int(const Check& c) {
  c.arity(4, 4, 2);
  const TensorDef& x = dynamic_input(c, 0, DType::i16);
  c.not_const(x);
  for (size_t i : {size_t(2), size_t(3)}) {
    const TensorDef& s = c.in(i);
    c.state(s);
    c.dtype(s, {i == 2 ? DType::i16 : DType::i32});
    c.shape(s, {1, i == 2 ? x.shape[1] : 2});
  }
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), x.shape);
  row_scales(c, c.out(1), x.shape[0]);
}

void bind_token_shift_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  exec::TokenShiftParams p{ptr_of<const int16_t>(ctx, n.inputs[0]), row_scale_ptr(ctx, n.inputs[1]),
                           x.shape[0], x.shape[1], ptr_of<int16_t>(ctx, n.inputs[2]),
                           row_scale_ptr(ctx, n.inputs[3]), ptr_of<int16_t>(ctx, n.outputs[0]),
                           row_scale_ptr(ctx, n.outputs[1])};
  ctx.kernel[ctx.node] = "token_shift_int";
  ctx.step(exec::token_shift_step, ctx.make(p), 1);
}

// rwkv_mix: a, a_scale (this token), p, p_scale (the previous token: token_shift of a), mu (constant:
// i32 [D] in Q16; i8 [D] with attrs mu_mant, mu_exp: value = mu * mu_mant * 2^-mu_exp; or a
// codebook: codes u8 [ceil(D bits / 8)] (bits-bit indices, LSB first) and entries i8
// [ceil(D / group), 2^bits] with attrs mu_bits, mu_group, mu_mant, mu_exp: value = entry * mu_mant
// * 2^-mu_exp; both decoded to Q16 at load (fq/kernels/rwkv.h decode_mu)) [, md i16 [M, D] +
// md_scale: the data-dependent part of mu (v6)] -> y i8/i16 + y_scale = a + (p - a) * (mu + md).
size_t rwkv_mix_mu(const Check& c, int64_t d) {
  if (c.n.inputs.size() < 5) c.error("takes a, a_scale, p, p_scale, mu [, md, md_scale]");
  if (c.in(4).dtype == DType::i32) {
    c.param<int32_t>(4, DType::i32, {d});
    return 5;
  }
  if (c.in(4).dtype != DType::u8) {  // scalar int8
    c.param<int8_t>(4, DType::i8, {d});
    c.attr("mu_mant", 0, 32768);
    c.attr("mu_exp", -kMaxExp, kMaxExp);
    return 5;
  }
  if (c.n.inputs.size() < 6) c.error("a codebook mu takes codes and entries");
  const int64_t bits = c.attr("mu_bits", 2, 4), group = c.attr("mu_group", 1, int64_t{1} << 30);
  c.attr("mu_mant", 0, 32768);
  c.attr("mu_exp", -kMaxExp, kMaxExp);
  c.param<uint8_t>(4, DType::u8, {(d * bits + 7) / 8});
  c.param<int8_t>(5, DType::i8, {(d + group - 1) / group, int64_t{1} << bits});
  return 6;
}

void check_rwkv_mix(const Check& c) {
  c.arity(5, 8, 2);
  const TensorDef& a = dynamic_input(c, 0, DType::i16);
  c.shape(dynamic_input(c, 2, DType::i16), a.shape);
  const size_t next = rwkv_mix_mu(c, a.shape[1]);
  if (c.n.inputs.size() == next + 2) c.shape(dynamic_input(c, next, DType::i16), a.shape);
  else if (c.n.inputs.size() != next) c.error("takes a, a_scale, p, p_scale, mu [, md, md_scale]");
  dynamic_output(c, {DType::i8, DType::i16}, a.shape);
}

void bind_rwkv_mix(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  k::RwkvMixArgs a{};
  a.a = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.as = row_scale_ptr(ctx, n.inputs[1]);
  a.p = ptr_of<const int16_t>(ctx, n.inputs[2]);
  a.ps = row_scale_ptr(ctx, n.inputs[3]);
  a.n = x.shape[1], a.qmax = attr_of(n, "qmax");
  size_t next = 5;
  const DType mu_t = ctx.g.tensor(n.inputs[4]).dtype;
  if (mu_t == DType::i32) {
    a.mu_c = ctx.g.tensor(n.inputs[4]).as<int32_t>();
  } else {  // decode the codebook or the int8 vector once, at load
    const bool cb = mu_t == DType::u8;
    auto* q16 = static_cast<int32_t*>(ctx.alloc(sizeof(int32_t) * size_t(a.n)));
    if (!k::decode_mu(ctx.g.tensor(n.inputs[4]).as<uint8_t>(),
                      cb ? ctx.g.tensor(n.inputs[5]).as<int8_t>() : nullptr, cb ? attr_of(n, "mu_bits") : 8,
                      cb ? n.attr_int("mu_group", 0) : 1, k::RowScale{attr_of(n, "mu_mant"), attr_of(n, "mu_exp")},
                      a.n, q16))
      fail_node(ctx.g, n, cb ? "cannot decode the mu codebook" : "cannot decode the int8 mu");
    a.mu_c = q16;
    next = cb ? 6 : 5;
  }
  if (n.inputs.size() == next + 2) {
    a.md = ptr_of<const int16_t>(ctx, n.inputs[next]);
    a.mds = row_scale_ptr(ctx, n.inputs[next + 1]);
  }
  a.y = ctx.tensor(n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  rwkv_rows_step(ctx, n, exec::rwkv_mix_step, a, x.shape[0], k::rwkv_scratch(a.n), 4 * x.numel());
}

// dulut: x i16 [M, D] + x_scale, table i16 [4, 64] (constant: b1, d1, b2, d2 of a DULUT table with
// int16 input and output, lut.h) [, bias i32 [D] constant in Q(frac)]; attrs k1, k2, g (the table
// format), frac (the table's input code is x + bias in Q(frac), saturated to int16), out_exp (the
// output code's unit 2^-out_exp) -> y i16 [M, D] + y_scale (every row (2^14, out_exp + 14)); or, with
// one output y i32 [M, D] and attrs out_mul, out_shift: y = rshift_round(code * out_mul, out_shift)
// (RWKV v7's log-decay in the linattn kernel's Q format).
k::LutTable dulut_table(const NodeDef& n, const TensorDef& t) {
  k::LutTable lt;
  lt.in_bits = 16, lt.out_bits = 16;
  lt.k1 = uint8_t(n.attr_int("k1", 0)), lt.k2 = uint8_t(n.attr_int("k2", 0));
  lt.g = uint8_t(n.attr_int("g", 0));
  const int16_t* v = t.as<int16_t>();
  for (int i = 0; i < k::kLutMaxEntries; ++i) {
    lt.b1[i] = uint16_t(v[i]);
    lt.d1[i] = uint16_t(v[64 + i]);
    lt.b2[i] = v[128 + i];
    lt.d2[i] = v[192 + i];
  }
  return lt;
}

void check_dulut(const Check& c) {
  const bool wide = c.n.outputs.size() == 1;  // int32 output: code * out_mul >> out_shift
  c.arity(3, 4, wide ? 1 : 2);
  const TensorDef& x = dynamic_input(c, 0, DType::i16);
  const int16_t* tv = c.param<int16_t>(2, DType::i16, {4, k::kLutMaxEntries});
  if (c.n.inputs.size() == 4) c.param<int32_t>(3, DType::i32, {x.shape[1]});
  c.attr("k1", 1, k::kLutMaxLog2);
  c.attr("k2", 1, k::kLutMaxLog2);
  c.attr("g", 0, 14);
  c.attr("frac", 0, 30);
  if (!wide) c.attr("out_exp", -kMaxExp + 14, kMaxExp - 14);
  if (tv && !k::lut_valid(dulut_table(c.n, c.in(2))))
    c.error("tensor '" + c.in(2).name + "' is not a valid DULUT table for k1, k2, g (fq/kernels/lut.h)");
  if (wide) {
    c.attr("out_mul", std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
    c.attr("out_shift", 0, 31);
    c.dtype(c.out(0), {DType::i32});
    c.shape(c.out(0), x.shape);
    return;
  }
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), x.shape);
  row_scales(c, c.out(1), x.shape[0]);
}

void bind_dulut(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  exec::ActParams p{};
  p.front = rwkv_kernel(ctx, n);
  p.lut = k::lut_kernel(ctx.isa);
  ctx.kernel[ctx.node] = std::string("dulut/") + p.front->name + "+" + p.lut->name;
  p.table = ctx.make(dulut_table(n, ctx.g.tensor(n.inputs[2])));
  p.a.x = ptr_of<const int16_t>(ctx, n.inputs[0]);
  p.a.xs = row_scale_ptr(ctx, n.inputs[1]);
  p.a.bias = n.inputs.size() == 4 ? ctx.g.tensor(n.inputs[3]).as<int32_t>() : nullptr;
  p.a.n = x.shape[1], p.a.frac = attr_of(n, "frac"), p.a.out_bits = 16;
  if (n.outputs.size() == 1) {
    p.y32 = ptr_of<int32_t>(ctx, n.outputs[0]);
    p.out_mul = int32_t(n.attr_int("out_mul", 0)), p.out_shift = attr_of(n, "out_shift");
  } else {
    p.y = ptr_of<int16_t>(ctx, n.outputs[0]);
    p.out_scale = k::RowScale{1 << 14, attr_of(n, "out_exp") + 14};
    p.ys = row_scale_ptr(ctx, n.outputs[1]);
  }
  // rows per table call: the AVX2 table re-layout and the call cost stay per batch, not per row
  p.batch = std::max<int64_t>(1, std::min<int64_t>(x.shape[0], 8192 / std::max<int64_t>(1, p.a.n)));
  ctx.step(exec::act_step, ctx.make(p), x.shape[0], sizeof(int16_t) * size_t(p.batch * p.a.n) + 64, 4 * x.numel());
}

// rwkv_decay (v6): x i16 [M, D] + x_scale, bias i32 [D] (constant, Q24) -> y i32 [M, D]: the
// log-decay -exp(x + bias) in Q24 (fq/kernels/rwkv.h neg_exp), for rwkv_wkv5's decay input.
void check_rwkv_decay(const Check& c) {
  c.arity(3, 3, 1);
  const TensorDef& x = dynamic_input(c, 0, DType::i16);
  c.param<int32_t>(2, DType::i32, {x.shape[1]});
  c.dtype(c.out(0), {DType::i32});
  c.shape(c.out(0), x.shape);
}

void bind_rwkv_decay(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  k::RwkvNegExpArgs a{};
  a.x = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.xs = row_scale_ptr(ctx, n.inputs[1]);
  a.bias = ctx.g.tensor(n.inputs[2]).as<int32_t>();
  a.n = x.shape[1];
  a.y = ptr_of<int32_t>(ctx, n.outputs[0]);
  rwkv_rows_step(ctx, n, exec::rwkv_decay_step, a, x.shape[0], 0, 16 * x.numel());
}

// relu_squared (integer form): x i16 [M, D] + x_scale -> y i8/i16 + y_scale = max(x, 0)^2.
void check_relu_squared_int(const Check& c) {
  c.arity(2, 2, 2);
  dynamic_output(c, {DType::i8, DType::i16}, dynamic_input(c, 0, DType::i16).shape);
}

void bind_relu_squared_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  k::RwkvUnaryArgs a{ptr_of<const int16_t>(ctx, n.inputs[0]), row_scale_ptr(ctx, n.inputs[1]),
                     x.shape[1], attr_of(n, "qmax"), ctx.tensor(n.outputs[0]),
                     row_scale_ptr(ctx, n.outputs[1])};
  rwkv_rows_step(ctx, n, exec::rwkv_relu_sq_step, a, x.shape[0], k::rwkv_scratch(a.n), 4 * x.numel());
}

// mul (integer form): a, a_scale, b, b_scale (i16 [M, D] dynamic) -> y i8/i16 + y_scale = a * b.
void check_mul_int(const Check& c) {
  if (c.n.op != "mul") c.error("has no integer form (only mul does)");
  c.arity(4, 4, 2);
  const TensorDef& a = dynamic_input(c, 0, DType::i16);
  c.shape(dynamic_input(c, 2, DType::i16), a.shape);
  dynamic_output(c, {DType::i8, DType::i16}, a.shape);
}

void bind_mul_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  k::RwkvMulArgs a{ptr_of<const int16_t>(ctx, n.inputs[0]), row_scale_ptr(ctx, n.inputs[1]),
                   ptr_of<const int16_t>(ctx, n.inputs[2]), row_scale_ptr(ctx, n.inputs[3]),
                   x.shape[1], attr_of(n, "qmax"), ctx.tensor(n.outputs[0]),
                   row_scale_ptr(ctx, n.outputs[1])};
  rwkv_rows_step(ctx, n, exec::rwkv_mul_step, a, x.shape[0], k::rwkv_scratch(a.n), 4 * x.numel());
}

// rwkv_wkv5 (integer form, v5 / v6 on the linattn kernel): r, r_scale, k, k_scale, v, v_scale
// (i16 [M, C] dynamic), w i32 (log-decay in Q(decay_frac): constant [C] (v5) or [M, C] (v6, from
// rwkv_decay)), u i32 [C] (constant bonus, Q16), state i32 [H, N, N] (state tensor, unit
// 2^-state_exp) -> y i16 [M, C] + y_scale. y = r . (S + u k v^T), S = diag(e^w) S + k v^T per head.
constexpr int kMaxLinattnDim = 1024;

// The WKV state [H, N, N] (int32 state tensor matching a width C = H N), the state unit, the decay
// format and the output row of rwkv_wkv5 / rwkv_wkv7 (integer forms).
void check_wkv_int_tail(const Check& c, const TensorDef& r, size_t state) {
  const TensorDef& s = c.in(state);
  c.state(s);
  c.dtype(s, {DType::i32});
  const int64_t ch = r.shape[1];
  if (s.shape.size() != 3 || s.shape[1] != s.shape[2] || s.shape[0] * s.shape[1] != ch)
    c.error("tensor '" + s.name + "' has shape " + shape_str(s.shape) +
            ", expected [heads, head_size, head_size] with heads * head_size = " + std::to_string(ch));
  if (s.shape[1] > kMaxLinattnDim) c.error("head size " + std::to_string(s.shape[1]) + " exceeds 1024");
  c.attr("state_exp", -kMaxExp, kMaxExp);
  c.attr("decay_frac", 8, 24);
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), r.shape);
  row_scales(c, c.out(1), r.shape[0]);
}

// The linattn arguments both WKV forms share (q = r, one kv head per head, dk = dv = N, per-key
// decay, output scale 1) and its two steps.
void bind_wkv_int(BindCtx& ctx, const NodeDef& n, exec::LinattnParams& p, size_t state) {
  const TensorDef &r = ctx.g.tensor(n.inputs[0]), &s = ctx.g.tensor(n.inputs[state]);
  k::LinattnArgs& a = p.a;
  a.q = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.qs = row_scale_ptr(ctx, n.inputs[1]);
  a.decay_per_key = 1;
  a.decay_frac = attr_of(n, "decay_frac");
  a.rows = r.shape[0];
  a.q_heads = a.kv_heads = int(s.shape[0]);
  a.dk = a.dv = int(s.shape[1]);
  a.state_exp = attr_of(n, "state_exp");
  a.scale = k::RowScale{1 << 14, 14};  // 1.0
  a.state = ptr_of<int32_t>(ctx, n.inputs[state]);
  a.y = ptr_of<int16_t>(ctx, n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  a.work = static_cast<int64_t*>(ctx.alloc(sizeof(int64_t) * size_t(r.numel())));
  ctx.kernel[ctx.node] = n.op + "_int/linattn_" + std::string(p.kernel->name);
  const auto* params = ctx.make(p);
  ctx.step(exec::linattn_heads_step, params, a.kv_heads, 0, 8 * r.numel() * a.dk);
  ctx.step(exec::linattn_out_step, params, a.rows, 0, 4 * r.numel());
}

void check_rwkv_wkv5_int(const Check& c) {
  c.arity(9, 9, 2);
  const TensorDef& r = dynamic_input(c, 0, DType::i16);
  for (size_t i : {size_t(2), size_t(4)}) c.shape(dynamic_input(c, i, DType::i16), r.shape);
  const int64_t ch = r.shape[1];
  const TensorDef& w = c.in(6);
  c.dtype(w, {DType::i32});
  c.shape(w, w.is_const ? std::vector<int64_t>{ch} : r.shape);
  c.param<int32_t>(7, DType::i32, {ch});
  check_wkv_int_tail(c, r, 8);
}

void bind_rwkv_wkv5_int(BindCtx& ctx, const NodeDef& n) {
  exec::LinattnParams p{k::linattn_kernel(ctx.isa), {}};
  k::LinattnArgs& a = p.a;
  a.k = ptr_of<const int16_t>(ctx, n.inputs[2]);
  a.ks = row_scale_ptr(ctx, n.inputs[3]);
  a.v = ptr_of<const int16_t>(ctx, n.inputs[4]);
  a.vs = row_scale_ptr(ctx, n.inputs[5]);
  a.decay = ptr_of<const int32_t>(ctx, n.inputs[6]);
  a.decay_const = ctx.g.tensor(n.inputs[6]).is_const ? 1 : 0;
  a.output_first = 1;
  a.bonus = ctx.g.tensor(n.inputs[7]).as<int32_t>();
  bind_wkv_int(ctx, n, p, 8);
}

// l2norm (integer form, RWKV v7's kk): x i16 [M, D] + x_scale, c i32 [D] (constant, Q16: the
// per-channel factor k_k, or -k_k for -kk); attr groups (heads) -> y i16 [M, D] in Q15 + y_scale
// (every row (2^14, 29)): per head x c / |x c|.
void check_l2norm_int(const Check& c) {
  c.arity(3, 3, 2);
  const TensorDef& x = dynamic_input(c, 0, DType::i16);
  c.param<int32_t>(2, DType::i32, {x.shape[1]});
  const int64_t h = int_groups(c, x.shape[1]);
  if (x.shape[1] / h > kMaxLinattnDim) c.error("head size " + std::to_string(x.shape[1] / h) + " exceeds 1024");
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), x.shape);
  row_scales(c, c.out(1), x.shape[0]);
}

void bind_l2norm_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  exec::RwkvQ15Params p{rwkv_kernel(ctx, n), {}, row_scale_ptr(ctx, n.outputs[1])};
  p.a.x = ptr_of<const int16_t>(ctx, n.inputs[0]);
  p.a.xs = row_scale_ptr(ctx, n.inputs[1]);
  p.a.c = ctx.g.tensor(n.inputs[2]).as<int32_t>();
  p.a.n = x.shape[1], p.a.heads = int(n.attr_int("groups", 1));
  p.a.y = ptr_of<int16_t>(ctx, n.outputs[0]);
  ctx.step(exec::rwkv_l2norm_step, ctx.make(p), x.shape[0], 0, 8 * x.numel());
}

// rwkv7_bonus (integer form): y, y_scale, v, v_scale, p, p_scale (i16 [M, C] dynamic; p = r * k),
// r_k i32 [C] (constant, Q16); attrs heads, qmax -> out i8/i16 + out_scale = y + v * per-head
// sum(p * r_k) (fq/kernels/rwkv.h head_bonus).
void check_rwkv7_bonus_int(const Check& c) {
  c.arity(7, 7, 2);
  const TensorDef& y = dynamic_input(c, 0, DType::i16);
  for (size_t i : {size_t(2), size_t(4)}) c.shape(dynamic_input(c, i, DType::i16), y.shape);
  c.param<int32_t>(6, DType::i32, {y.shape[1]});
  const int64_t h = c.positive("heads");
  if (y.shape[1] % h != 0 || y.shape[1] / h > kMaxLinattnDim)
    c.error("attribute 'heads' = " + std::to_string(h) + " does not split the width " + std::to_string(y.shape[1]) +
            " into heads of at most 1024");
  dynamic_output(c, {DType::i8, DType::i16}, y.shape);
}

void bind_rwkv7_bonus_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& y = ctx.g.tensor(n.inputs[0]);
  k::RwkvBonusArgs a{};
  a.y = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.ys = row_scale_ptr(ctx, n.inputs[1]);
  a.v = ptr_of<const int16_t>(ctx, n.inputs[2]);
  a.vs = row_scale_ptr(ctx, n.inputs[3]);
  a.p = ptr_of<const int16_t>(ctx, n.inputs[4]);
  a.ps = row_scale_ptr(ctx, n.inputs[5]);
  a.c = ctx.g.tensor(n.inputs[6]).as<int32_t>();
  a.n = y.shape[1], a.heads = attr_of(n, "heads"), a.qmax = attr_of(n, "qmax");
  a.out = ctx.tensor(n.outputs[0]);
  a.os = row_scale_ptr(ctx, n.outputs[1]);
  rwkv_rows_step(ctx, n, exec::rwkv_bonus_step, a, y.shape[0], k::rwkv_scratch(a.n), 8 * y.numel());
}

// rwkv_wkv7 (integer form, on the linattn kernel): r, r_scale, w (i32 [M, C]: log-decay in
// Q(decay_frac)), k, k_scale, v, v_scale, a, a_scale, b, b_scale (i16 [M, C] dynamic), state i32
// [H, N, N] (state tensor, unit 2^-state_exp) -> y i16 [M, C] + y_scale. In rwkv.cpp's layout
// S = S diag(e^w) + (S a) b^T + v k^T, y = S r (linattn: retrieval before the decay, second key b).
void check_rwkv_wkv7_int(const Check& c) {
  c.arity(12, 12, 2);
  const TensorDef& r = dynamic_input(c, 0, DType::i16);
  const TensorDef& w = c.in(2);
  c.dtype(w, {DType::i32});
  c.shape(w, r.shape);
  c.not_const(w);
  for (size_t i : {size_t(3), size_t(5), size_t(7), size_t(9)}) c.shape(dynamic_input(c, i, DType::i16), r.shape);
  check_wkv_int_tail(c, r, 11);
}

void bind_rwkv_wkv7_int(BindCtx& ctx, const NodeDef& n) {
  exec::LinattnParams p{k::linattn_kernel(ctx.isa), {}};
  k::LinattnArgs& a = p.a;
  a.decay = ptr_of<const int32_t>(ctx, n.inputs[2]);
  a.k = ptr_of<const int16_t>(ctx, n.inputs[3]);
  a.ks = row_scale_ptr(ctx, n.inputs[4]);
  a.v = ptr_of<const int16_t>(ctx, n.inputs[5]);
  a.vs = row_scale_ptr(ctx, n.inputs[6]);
  a.a = ptr_of<const int16_t>(ctx, n.inputs[7]);
  a.as = row_scale_ptr(ctx, n.inputs[8]);
  a.b = ptr_of<const int16_t>(ctx, n.inputs[9]);
  a.bs = row_scale_ptr(ctx, n.inputs[10]);
  a.retrieve_pre_decay = 1;
  bind_wkv_int(ctx, n, p, 11);
}

// ---- RWKV float ops (docs/rwkv.md; reference: fq/reference/rwkv_ops.h) -------------------------
// Activations are [T, C] rows (tokens); recurrent states are state tensors updated in place, row
// by row. Float only for now; the integer forms will dispatch from these checks and binds.

// A float activation of rank 2 that is not a constant.
void rwkv_rows(const Check& c, const TensorDef& t) {
  c.dtype(t, {DType::f32});
  c.rank(t, 2);
  c.not_const(t);
}
// A constant f32 vector of `n` elements (shape [n]).
void rwkv_vec(const Check& c, size_t i, int64_t n) { c.param<float>(i, DType::f32, {n}); }
// A float state tensor of shape `s`.
void rwkv_state(const Check& c, const TensorDef& t, const std::vector<int64_t>& s) {
  c.state(t);
  c.dtype(t, {DType::f32});
  c.shape(t, s);
}
// Attribute `groups` (default 1) dividing width `d`.
int64_t rwkv_groups(const Check& c, int64_t d) {
  const int64_t g = c.n.attrs.count("groups") ? c.positive("groups") : 1;
  if (d % g != 0)
    c.error("attribute 'groups' = " + std::to_string(g) + " does not divide the width " + std::to_string(d));
  return g;
}
double rwkv_eps(const Check& c, double fallback) {
  const double eps = c.n.attr_float("eps", fallback);
  if (!(eps > 0) || !std::isfinite(eps)) c.error("attribute 'eps' must be finite and > 0");
  return eps;
}

// layernorm: x [T, D], w [D], b [D] (constants); attrs eps (1e-5), groups (1; > 1 is GroupNorm).
void check_layernorm(const Check& c) {
  if (!c.n.inputs.empty() && c.in(0).dtype != DType::f32) return check_layernorm_int(c);
  c.arity(3, 3, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  rwkv_rows(c, x);
  rwkv_vec(c, 1, x.shape[1]);
  rwkv_vec(c, 2, x.shape[1]);
  rwkv_groups(c, x.shape[1]);
  rwkv_eps(c, 1e-5);
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefLayernormParams {
  const float *x, *w, *b;
  int rows, d, groups;
  float eps;
  float* y;
};

void ref_layernorm_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefLayernormParams*>(p);
  ref::layernorm(q.x, q.rows, q.d, q.groups, q.w, q.b, q.eps, q.y);
}

void bind_layernorm(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  if (x.dtype != DType::f32) return bind_layernorm_int(ctx, n);
  RefLayernormParams p{ptr_of<const float>(ctx, n.inputs[0]), ctx.g.tensor(n.inputs[1]).as<float>(),
                       ctx.g.tensor(n.inputs[2]).as<float>(), int(x.shape[0]), int(x.shape[1]),
                       int(n.attr_int("groups", 1)), float(n.attr_float("eps", 1e-5)),
                       ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_layernorm_f32";
  ctx.step(ref_layernorm_step, ctx.make(p), 1);
}

// token_shift: x [T, D], state [1, D] -> y [T, D] = (state, x[0], .., x[T-2]); state = x[T-1].
void check_token_shift(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_token_shift_int(c);
  c.arity(2, 2, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  rwkv_rows(c, x);
  rwkv_state(c, c.in(1), {1, x.shape[1]});
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefTokenShiftParams {
  const float* x;
  float* state;
  int rows, d;
  float* y;
};

void ref_token_shift_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefTokenShiftParams*>(p);
  ref::token_shift(q.x, q.rows, q.d, q.state, q.y);
}

void bind_token_shift(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  if (x.dtype != DType::f32) return bind_token_shift_int(ctx, n);
  RefTokenShiftParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<float>(ctx, n.inputs[1]),
                        int(x.shape[0]), int(x.shape[1]), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_token_shift_f32";
  ctx.step(ref_token_shift_step, ctx.make(p), 1);
}

// mul, sub: x1 op x2, x2 of x1's shape or a vector [D] / [1, D] of x1's last dimension D
// (repeated over the rows).
void check_binary(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_mul_int(c);
  c.arity(2, 2, 1);
  const TensorDef &a = c.in(0), &b = c.in(1), &y = c.out(0);
  c.dtype(a, {DType::f32});
  c.dtype(b, {DType::f32});
  if (a.shape.empty()) c.error("tensor '" + a.name + "' must have rank >= 1");
  const int64_t d = a.shape.back();
  if (b.shape != a.shape && b.shape != std::vector<int64_t>{d} &&
      b.shape != std::vector<int64_t>{1, d})
    c.error("tensor '" + b.name + "' has shape " + shape_str(b.shape) + ", expected " +
            shape_str(a.shape) + " or a vector of " + std::to_string(d));
  c.dtype(y, {DType::f32});
  c.shape(y, a.shape);
}

struct RefBinaryParams {
  const float *a, *b;
  int64_t na, nb;
  float* y;
};

void ref_mul_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefBinaryParams*>(p);
  ref::mul(q.a, q.na, q.b, q.nb, q.y);
}
void ref_sub_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefBinaryParams*>(p);
  ref::sub(q.a, q.na, q.b, q.nb, q.y);
}

void bind_binary(BindCtx& ctx, const NodeDef& n, exec::StepFn fn) {
  RefBinaryParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                    ctx.g.tensor(n.inputs[0]).numel(), ctx.g.tensor(n.inputs[1]).numel(),
                    ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_" + n.op + "_f32";
  ctx.step(fn, ctx.make(p), 1);
}
void bind_mul(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_mul_int(ctx, n);
  bind_binary(ctx, n, ref_mul_step);
}
void bind_sub(BindCtx& ctx, const NodeDef& n) { bind_binary(ctx, n, ref_sub_step); }

// Element-wise unary ops: sigmoid, tanh, silu, exp, relu_squared, scale (attr `scale`).
void check_unary(const Check& c) {
  if (c.n.op == "relu_squared" && int_form(c, 0, DType::i16)) return check_relu_squared_int(c);
  c.arity(1, 1, 1);
  c.dtype(c.in(0), {DType::f32});
  c.dtype(c.out(0), {DType::f32});
  c.shape(c.out(0), c.in(0).shape);
  if (c.n.op == "scale") {
    if (!c.n.attrs.count("scale")) c.error("needs attribute 'scale'");
    if (!std::isfinite(c.n.attr_float("scale", 1.0))) c.error("attribute 'scale' must be finite");
  }
}

struct RefUnaryParams {
  ref::Unary op;
  const float* x;
  int64_t n;
  float s;
  float* y;
};

void ref_unary_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefUnaryParams*>(p);
  ref::unary(q.op, q.x, q.n, q.s, q.y);
}

void bind_unary(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_relu_squared_int(ctx, n);
  static const std::pair<const char*, ref::Unary> kinds[] = {
      {"sigmoid", ref::Unary::sigmoid}, {"tanh", ref::Unary::tanh},
      {"silu", ref::Unary::silu},       {"exp", ref::Unary::exp},
      {"relu_squared", ref::Unary::relu_squared}, {"scale", ref::Unary::scale},
      {"softplus", ref::Unary::softplus}};
  ref::Unary op = ref::Unary::scale;
  for (const auto& k : kinds)
    if (n.op == k.first) op = k.second;
  RefUnaryParams p{op, ptr_of<const float>(ctx, n.inputs[0]), ctx.g.tensor(n.inputs[0]).numel(),
                   float(n.attr_float("scale", 1.0)), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_" + n.op + "_f32";
  ctx.step(ref_unary_step, ctx.make(p), 1);
}

// l2norm: x [T, D] -> per row and group x / max(|x|_2, eps); attrs groups (1), eps (1e-12).
void check_l2norm(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_l2norm_int(c);
  c.arity(1, 1, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  rwkv_rows(c, x);
  rwkv_groups(c, x.shape[1]);
  rwkv_eps(c, 1e-12);
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefL2normParams {
  const float* x;
  int rows, d, groups;
  float eps;
  float* y;
};

void ref_l2norm_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefL2normParams*>(p);
  ref::l2norm(q.x, q.rows, q.d, q.groups, q.eps, q.y);
}

void bind_l2norm(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_l2norm_int(ctx, n);
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  RefL2normParams p{ptr_of<const float>(ctx, n.inputs[0]), int(x.shape[0]), int(x.shape[1]),
                    int(n.attr_int("groups", 1)), float(n.attr_float("eps", 1e-12)),
                    ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_l2norm_f32";
  ctx.step(ref_l2norm_step, ctx.make(p), 1);
}

// rwkv_wkv4: k, v [T, C], time_first [C], time_decay [C] (constants), state [3, C] -> y [T, C].
void check_rwkv_wkv4(const Check& c) {
  c.arity(5, 5, 1);
  const TensorDef &k = c.in(0), &y = c.out(0);
  rwkv_rows(c, k);
  const int64_t ch = k.shape[1];
  rwkv_rows(c, c.in(1));
  c.shape(c.in(1), k.shape);
  rwkv_vec(c, 2, ch);
  rwkv_vec(c, 3, ch);
  rwkv_state(c, c.in(4), {3, ch});
  c.dtype(y, {DType::f32});
  c.shape(y, k.shape);
}

struct RefWkv4Params {
  const float *k, *v, *u, *w;
  int rows, c;
  float* state;
  float* y;
};

void ref_wkv4_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefWkv4Params*>(p);
  ref::rwkv_wkv4(q.k, q.v, q.u, q.w, q.rows, q.c, q.state, q.y);
}

void bind_rwkv_wkv4(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& k = ctx.g.tensor(n.inputs[0]);
  RefWkv4Params p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                  ctx.g.tensor(n.inputs[2]).as<float>(), ctx.g.tensor(n.inputs[3]).as<float>(),
                  int(k.shape[0]), int(k.shape[1]), ptr_of<float>(ctx, n.inputs[4]),
                  ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rwkv_wkv4_f32";
  ctx.step(ref_wkv4_step, ctx.make(p), 1);
}

// The head layout of a WKV state [H, N, N] matching a width C = H * N.
void rwkv_heads(const Check& c, const TensorDef& s, int64_t ch) {
  c.state(s);
  c.dtype(s, {DType::f32});
  if (s.shape.size() != 3 || s.shape[1] != s.shape[2] || s.shape[0] * s.shape[1] != ch)
    c.error("tensor '" + s.name + "' has shape " + shape_str(s.shape) +
            ", expected [heads, head_size, head_size] with heads * head_size = " + std::to_string(ch));
}

// rwkv_wkv5: r, k, v [T, C], w (decay factors: constant [C] or [T, C]), u [C] (constant),
// state [H, N, N] -> y [T, C].
void check_rwkv_wkv5(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_rwkv_wkv5_int(c);
  c.arity(6, 6, 1);
  const TensorDef &r = c.in(0), &w = c.in(3), &y = c.out(0);
  rwkv_rows(c, r);
  const int64_t ch = r.shape[1];
  for (size_t i : {size_t(1), size_t(2)}) {
    rwkv_rows(c, c.in(i));
    c.shape(c.in(i), r.shape);
  }
  if (w.is_const) {
    rwkv_vec(c, 3, ch);
  } else {
    rwkv_rows(c, w);
    c.shape(w, r.shape);
  }
  rwkv_vec(c, 4, ch);
  rwkv_heads(c, c.in(5), ch);
  c.dtype(y, {DType::f32});
  c.shape(y, r.shape);
}

struct RefWkv5Params {
  const float *r, *k, *v, *w, *u;
  bool w_rows;
  int rows, heads, head_size;
  float* state;
  float* y;
};

void ref_wkv5_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefWkv5Params*>(p);
  ref::rwkv_wkv5(q.r, q.k, q.v, q.w, q.w_rows, q.u, q.rows, q.heads, q.head_size, q.state, q.y);
}

void bind_rwkv_wkv5(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_rwkv_wkv5_int(ctx, n);
  const TensorDef &r = ctx.g.tensor(n.inputs[0]), &w = ctx.g.tensor(n.inputs[3]),
                  &s = ctx.g.tensor(n.inputs[5]);
  RefWkv5Params p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                  ptr_of<const float>(ctx, n.inputs[2]),
                  w.is_const ? w.as<float>() : ptr_of<const float>(ctx, n.inputs[3]),
                  ctx.g.tensor(n.inputs[4]).as<float>(), !w.is_const, int(r.shape[0]),
                  int(s.shape[0]), int(s.shape[1]), ptr_of<float>(ctx, n.inputs[5]),
                  ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rwkv_wkv5_f32";
  ctx.step(ref_wkv5_step, ctx.make(p), 1);
}

// rwkv_wkv7: r, w, k, v, a, b [T, C], state [H, N, N] -> y [T, C].
void check_rwkv_wkv7(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_rwkv_wkv7_int(c);
  c.arity(7, 7, 1);
  const TensorDef &r = c.in(0), &y = c.out(0);
  rwkv_rows(c, r);
  for (size_t i = 1; i < 6; ++i) {
    rwkv_rows(c, c.in(i));
    c.shape(c.in(i), r.shape);
  }
  rwkv_heads(c, c.in(6), r.shape[1]);
  c.dtype(y, {DType::f32});
  c.shape(y, r.shape);
}

struct RefWkv7Params {
  const float *r, *w, *k, *v, *a, *b;
  int rows, heads, head_size;
  float* state;
  float* y;
};

void ref_wkv7_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefWkv7Params*>(p);
  ref::rwkv_wkv7(q.r, q.w, q.k, q.v, q.a, q.b, q.rows, q.heads, q.head_size, q.state, q.y);
}

void bind_rwkv_wkv7(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_rwkv_wkv7_int(ctx, n);
  const TensorDef &r = ctx.g.tensor(n.inputs[0]), &s = ctx.g.tensor(n.inputs[6]);
  RefWkv7Params p{};
  const float** ins[6] = {&p.r, &p.w, &p.k, &p.v, &p.a, &p.b};
  for (size_t i = 0; i < 6; ++i) *ins[i] = ptr_of<const float>(ctx, n.inputs[i]);
  p.rows = int(r.shape[0]), p.heads = int(s.shape[0]), p.head_size = int(s.shape[1]);
  p.state = ptr_of<float>(ctx, n.inputs[6]);
  p.y = ptr_of<float>(ctx, n.outputs[0]);
  ctx.kernel[ctx.node] = "ref_rwkv_wkv7_f32";
  ctx.step(ref_wkv7_step, ctx.make(p), 1);
}

// rwkv7_bonus: r, k, v [T, C], r_k [C] (constant); attr heads -> y = v * per-head sum(k r r_k).
void check_rwkv7_bonus(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_rwkv7_bonus_int(c);
  c.arity(4, 4, 1);
  const TensorDef &r = c.in(0), &y = c.out(0);
  rwkv_rows(c, r);
  for (size_t i : {size_t(1), size_t(2)}) {
    rwkv_rows(c, c.in(i));
    c.shape(c.in(i), r.shape);
  }
  rwkv_vec(c, 3, r.shape[1]);
  const int64_t h = c.positive("heads");
  if (r.shape[1] % h != 0)
    c.error("attribute 'heads' = " + std::to_string(h) + " does not divide the width " +
            std::to_string(r.shape[1]));
  c.dtype(y, {DType::f32});
  c.shape(y, r.shape);
}

struct RefBonusParams {
  const float *r, *k, *v, *rk;
  int rows, heads, head_size;
  float* y;
};

void ref_bonus_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefBonusParams*>(p);
  ref::rwkv7_bonus(q.r, q.k, q.v, q.rk, q.rows, q.heads, q.head_size, q.y);
}

void bind_rwkv7_bonus(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_rwkv7_bonus_int(ctx, n);
  const TensorDef& r = ctx.g.tensor(n.inputs[0]);
  const int heads = int(n.attr_int("heads", 1));
  RefBonusParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                   ptr_of<const float>(ctx, n.inputs[2]), ctx.g.tensor(n.inputs[3]).as<float>(),
                   int(r.shape[0]), heads, int(r.shape[1] / heads), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rwkv7_bonus_f32";
  ctx.step(ref_bonus_step, ctx.make(p), 1);
}

// ---- Mamba float ops (docs/mamba.md; reference: fq/reference/mamba_ops.h) -----------------------
// Activations are [T, C] rows; the conv and SSM states are state tensors updated in place, row by
// row (T rows equal T single-row runs). Element-wise ops (silu, softplus, mul) are the RWKV ones.

// causal_conv1d: x [T, C], w [C, K] (constant), b [C] (constant, optional), state [K - 1, C]
// (state; K >= 2) -> y [T, C].
void check_causal_conv1d_int(const Check& c);
void check_causal_conv1d(const Check& c) {
  if (int_form(c, 0, DType::i16)) return check_causal_conv1d_int(c);
  c.arity(3, 4, 1);
  const TensorDef &x = c.in(0), &w = c.in(1), &y = c.out(0);
  rwkv_rows(c, x);
  const int64_t ch = x.shape[1];
  c.constant(w);
  c.dtype(w, {DType::f32});
  c.rank(w, 2);
  if (w.shape[0] != ch || w.shape[1] < 2 || w.shape[1] > 64)
    c.error("tensor '" + w.name + "' has shape " + shape_str(w.shape) + ", expected [" +
            std::to_string(ch) + ", K] with K in [2, 64]");
  const int64_t k = w.shape[1];
  const bool has_bias = c.n.inputs.size() == 4;
  if (has_bias) rwkv_vec(c, 2, ch);
  rwkv_state(c, c.in(has_bias ? 3 : 2), {k - 1, ch});
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefCausalConvParams {
  const float *x, *w, *b;
  int rows, c, k;
  float* state;
  float* y;
};

void ref_causal_conv_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefCausalConvParams*>(p);
  ref::causal_conv1d(q.x, q.rows, q.c, q.k, q.w, q.b, q.state, q.y);
}

void bind_causal_conv1d_int(BindCtx& ctx, const NodeDef& n);
void bind_causal_conv1d(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_causal_conv1d_int(ctx, n);
  const TensorDef &x = ctx.g.tensor(n.inputs[0]), &w = ctx.g.tensor(n.inputs[1]);
  const bool has_bias = n.inputs.size() == 4;
  RefCausalConvParams p{ptr_of<const float>(ctx, n.inputs[0]), w.as<float>(),
                        has_bias ? ctx.g.tensor(n.inputs[2]).as<float>() : nullptr,
                        int(x.shape[0]), int(x.shape[1]), int(w.shape[1]),
                        ptr_of<float>(ctx, n.inputs[has_bias ? 3 : 2]),
                        ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_causal_conv1d_f32";
  ctx.step(ref_causal_conv_step, ctx.make(p), 1);
}

// selective_scan: x, dt [T, C], A [C, N] (constant), B, C [T, N], D [C] (constant),
// state [C, N] (state) -> y [T, C].
void check_selective_scan_int(const Check& c);
void check_selective_scan(const Check& c) {
  if (int_form(c, 0, DType::i32)) return check_selective_scan_int(c);
  c.arity(7, 7, 1);
  const TensorDef &x = c.in(0), &a = c.in(2), &y = c.out(0);
  rwkv_rows(c, x);
  const int64_t ch = x.shape[1];
  rwkv_rows(c, c.in(1));
  c.shape(c.in(1), x.shape);
  c.constant(a);
  c.dtype(a, {DType::f32});
  c.rank(a, 2);
  if (a.shape[0] != ch)
    c.error("tensor '" + a.name + "' has shape " + shape_str(a.shape) + ", expected [" +
            std::to_string(ch) + ", d_state]");
  const int64_t ns = a.shape[1];
  for (size_t i : {size_t(3), size_t(4)}) {
    rwkv_rows(c, c.in(i));
    c.shape(c.in(i), {x.shape[0], ns});
  }
  rwkv_vec(c, 5, ch);
  rwkv_state(c, c.in(6), {ch, ns});
  c.dtype(y, {DType::f32});
  c.shape(y, x.shape);
}

struct RefScanParams {
  const float *x, *dt, *a, *b, *c, *d;
  int rows, ch, n;
  float* state;
  float* y;
};

void ref_scan_step(const void* p, int64_t, int64_t, void*) {
  const auto& q = *static_cast<const RefScanParams*>(p);
  ref::selective_scan(q.x, q.dt, q.a, q.b, q.c, q.d, q.rows, q.ch, q.n, q.state, q.y);
}

void bind_selective_scan_int(BindCtx& ctx, const NodeDef& n);
void bind_selective_scan(BindCtx& ctx, const NodeDef& n) {
  if (ctx.g.tensor(n.inputs[0]).dtype != DType::f32) return bind_selective_scan_int(ctx, n);
  const TensorDef &x = ctx.g.tensor(n.inputs[0]), &a = ctx.g.tensor(n.inputs[2]);
  RefScanParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                  a.as<float>(), ptr_of<const float>(ctx, n.inputs[3]),
                  ptr_of<const float>(ctx, n.inputs[4]), ctx.g.tensor(n.inputs[5]).as<float>(),
                  int(x.shape[0]), int(x.shape[1]), int(a.shape[1]),
                  ptr_of<float>(ctx, n.inputs[6]), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_selective_scan_f32";
  ctx.step(ref_scan_step, ctx.make(p), 1);
}

// ---- integer Mamba ops (docs/mamba.md "Integer graphs"; kernels: fq/kernels/ssm.h) ---------------
// The integer forms of causal_conv1d and selective_scan (chosen by the first input's dtype) and
// requantize. Activations [M, C] are M tokens; a prefill call of M rows equals M decode calls.

constexpr int64_t kMaxSsmExp = 62;   // static unit exponents (x_exp, w_exp, u_exp, y_exp, h_exp)

// causal_conv1d (int): x i16 [M, C], x_scale, w i16 [C, K] (const), [bias i32 [C] (const)],
// state i32 [K - 1, C] -> u i8 [M, C], u_scale i32 [M, 2], uf i32 [M, C];
// attrs x_exp, w_exp, u_exp, qmax.
void check_causal_conv1d_int(const Check& c) {
  c.arity(4, 5, 3);
  const TensorDef& x = dynamic_input(c, 0, DType::i16);
  const TensorDef& w = c.in(2);
  const int64_t ch = x.shape[1];
  c.constant(w);
  c.dtype(w, {DType::i16});
  c.rank(w, 2);
  if (w.shape[0] != ch || w.shape[1] < 2 || w.shape[1] > 64)
    c.error("tensor '" + w.name + "' has shape " + shape_str(w.shape) + ", expected [" +
            std::to_string(ch) + ", K] with K in [2, 64]");
  const int64_t k = w.shape[1];
  const bool has_bias = c.n.inputs.size() == 5;
  if (has_bias) c.param<int32_t>(3, DType::i32, {ch});
  const TensorDef& st = c.in(has_bias ? 4 : 3);
  c.state(st);
  c.dtype(st, {DType::i32});
  c.shape(st, {k - 1, ch});
  for (const char* a : {"x_exp", "w_exp", "u_exp"}) c.attr(a, -kMaxSsmExp, kMaxSsmExp);
  dynamic_output(c, {DType::i8}, x.shape);
  c.dtype(c.out(2), {DType::i32});
  c.shape(c.out(2), x.shape);
}

// selective_scan (int): u i32 [M, C] (causal_conv1d's uf), dt i16 [M, C] + dt_scale, B i16 [M, N]
// + B_scale, C i16 [M, N] + C_scale, A i32 [C, N] (const, |A| in Q(a_frac), [0, 2^24)), D i32 [C]
// (const, Q16, |D| < 2^24), h_exp i8 [C] (const), dt_bias i32 [C] (const, Q12, |b| <= 2^20),
// state i32 [C, N] -> y i16 [M, C], y_scale; attrs u_exp, a_frac, y_exp.
void check_selective_scan_int(const Check& c) {
  c.arity(12, 12, 2);
  const TensorDef& u = c.in(0);
  c.rank(u, 2);
  c.not_const(u);
  const int64_t m = u.shape[0], ch = u.shape[1];
  c.shape(dynamic_input(c, 1, DType::i16), u.shape);
  const TensorDef& b = dynamic_input(c, 3, DType::i16);
  const int64_t ns = b.shape[1];
  if (b.shape[0] != m || ns < 1 || ns > 256)
    c.error("tensor '" + b.name + "' has shape " + shape_str(b.shape) + ", expected [" +
            std::to_string(m) + ", N] with N in [1, 256]");
  c.shape(dynamic_input(c, 5, DType::i16), b.shape);
  c.range(c.in(7), c.param<int32_t>(7, DType::i32, {ch, ns}), 0, (int64_t{1} << 24) - 1);
  const int64_t dmax = (int64_t{1} << 24) - 1;
  c.range(c.in(8), c.param<int32_t>(8, DType::i32, {ch}), -dmax, dmax);
  c.range(c.in(9), c.param<int8_t>(9, DType::i8, {ch}), -kMaxSsmExp, kMaxSsmExp);
  c.range(c.in(10), c.param<int32_t>(10, DType::i32, {ch}), -(1 << 20), 1 << 20);
  c.state(c.in(11));
  c.dtype(c.in(11), {DType::i32});
  c.shape(c.in(11), {ch, ns});
  c.attr("u_exp", -kMaxSsmExp, kMaxSsmExp);
  c.attr("a_frac", 0, 40);
  c.attr("y_exp", -kMaxSsmExp, kMaxSsmExp);
  c.dtype(c.out(0), {DType::i16});
  c.shape(c.out(0), u.shape);
  row_scales(c, c.out(1), m);
}

// requantize: x i16/i32 [M, n] + x_scale -> y i8/i16 [M, n] + y_scale; attr qmax.
void check_requantize(const Check& c) {
  c.arity(2, 2, 2);
  const TensorDef& x = c.in(0);
  c.dtype(x, {DType::i16, DType::i32});
  c.rank(x, 2);
  row_scales(c, c.in(1), x.shape[0]);
  dynamic_output(c, {DType::i8, DType::i16}, x.shape);
}

const k::SsmKernel* ssm_kernel(BindCtx& ctx, const NodeDef& n) { return reported(ctx, n, k::ssm_kernel(ctx.isa)); }

// Channel units first (each runs every row of its channels, in order), then row units.
void bind_causal_conv1d_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef &x = ctx.g.tensor(n.inputs[0]), &w = ctx.g.tensor(n.inputs[2]);
  const bool has_bias = n.inputs.size() == 5;
  exec::SsmParams<k::SsmConvArgs> p{ssm_kernel(ctx, n), {}};
  k::SsmConvArgs& a = p.a;
  a.x = ptr_of<const int16_t>(ctx, n.inputs[0]);
  a.xs = row_scale_ptr(ctx, n.inputs[1]);
  a.rows = x.shape[0], a.channels = x.shape[1], a.taps = int(w.shape[1]);
  a.w = w.as<int16_t>();
  a.bias = has_bias ? ctx.g.tensor(n.inputs[3]).as<int32_t>() : nullptr;
  a.x_exp = attr_of(n, "x_exp"), a.w_exp = attr_of(n, "w_exp"), a.u_exp = attr_of(n, "u_exp");
  a.qmax = attr_of(n, "qmax");
  a.state = ptr_of<int32_t>(ctx, n.inputs[has_bias ? 4 : 3]);
  a.u = ptr_of<int8_t>(ctx, n.outputs[0]);
  a.us = row_scale_ptr(ctx, n.outputs[1]);
  a.uf = ptr_of<int32_t>(ctx, n.outputs[2]);
  a.work = static_cast<int64_t*>(ctx.alloc(sizeof(int64_t) * size_t(x.numel())));
  const auto* params = ctx.make(p);
  ctx.step(exec::ssm_conv_step, params, a.channels, 0, 8 * x.numel() * a.taps);
  ctx.step(exec::ssm_conv_out_step, params, a.rows, 0, 4 * x.numel());
}

void bind_selective_scan_int(BindCtx& ctx, const NodeDef& n) {
  const TensorDef &u = ctx.g.tensor(n.inputs[0]), &b = ctx.g.tensor(n.inputs[3]);
  exec::SsmParams<k::SsmScanArgs> p{ssm_kernel(ctx, n), {}};
  k::SsmScanArgs& a = p.a;
  a.u = ptr_of<const int32_t>(ctx, n.inputs[0]);
  a.dt = ptr_of<const int16_t>(ctx, n.inputs[1]);
  a.dts = row_scale_ptr(ctx, n.inputs[2]);
  a.b = ptr_of<const int16_t>(ctx, n.inputs[3]);
  a.bs = row_scale_ptr(ctx, n.inputs[4]);
  a.c = ptr_of<const int16_t>(ctx, n.inputs[5]);
  a.cs = row_scale_ptr(ctx, n.inputs[6]);
  a.a = ctx.g.tensor(n.inputs[7]).as<int32_t>();
  a.d = ctx.g.tensor(n.inputs[8]).as<int32_t>();
  a.h_exp = ctx.g.tensor(n.inputs[9]).as<int8_t>();
  a.dt_bias = ctx.g.tensor(n.inputs[10]).as<int32_t>();
  a.rows = u.shape[0], a.channels = u.shape[1], a.states = b.shape[1];
  a.u_exp = attr_of(n, "u_exp"), a.a_frac = attr_of(n, "a_frac"), a.y_exp = attr_of(n, "y_exp");
  a.h = ptr_of<int32_t>(ctx, n.inputs[11]);
  a.y = ptr_of<int16_t>(ctx, n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  a.work = static_cast<int64_t*>(ctx.alloc(sizeof(int64_t) * size_t(u.numel())));
  const auto* params = ctx.make(p);
  ctx.step(exec::ssm_scan_step, params, a.channels, 0, 16 * u.numel() * a.states);
  ctx.step(exec::ssm_scan_out_step, params, a.rows, 0, 4 * u.numel());
}

void bind_requantize(BindCtx& ctx, const NodeDef& n) {
  const TensorDef& x = ctx.g.tensor(n.inputs[0]);
  exec::SsmParams<k::RequantArgs> p{ssm_kernel(ctx, n), {}};
  k::RequantArgs& a = p.a;
  a.x = ctx.tensor(n.inputs[0]);
  a.in_bits = x.dtype == DType::i16 ? 16 : 32;
  a.xs = row_scale_ptr(ctx, n.inputs[1]);
  a.n = x.shape[1];
  a.qmax = attr_of(n, "qmax");
  a.y = ctx.tensor(n.outputs[0]);
  a.ys = row_scale_ptr(ctx, n.outputs[1]);
  ctx.step(exec::requant_step, ctx.make(p), x.shape[0], k::requant_scratch(a.n), 4 * x.numel());
}

// ---- the table -------------------------------------------------------------------------------

struct OpDef {
  const char* name;
  int version;  // highest supported
  void (*check)(const Check&);
  void (*bind)(BindCtx&, const NodeDef&);
};

constexpr OpDef kOps[] = {
    {"conv2d", 1, check_conv2d, bind_conv2d},
    {"fully_connected", 1, check_fully_connected, bind_fully_connected},
    {"global_avg_pool", 1, check_global_avg_pool, bind_global_avg_pool},
    {"softmax", 1, check_softmax, bind_softmax},
    {"relu", 1, check_relu, bind_relu},
    {"add", 1, check_add, bind_add},
    {"embedding", 1, check_embedding, bind_embedding},
    {"rmsnorm", 1, check_rmsnorm, bind_rmsnorm},
    {"rope", 1, check_rope, bind_rope},
    {"attention", 1, check_attention, bind_attention},
    {"swiglu", 1, check_swiglu, bind_swiglu},
    {"dimatmul", 1, check_dimatmul, bind_dimatmul},
    {"residual_add", 1, check_residual_add, bind_residual_add},
    {"hadamard", 1, check_hadamard, bind_hadamard},
    // RWKV float ops (docs/rwkv.md)
    {"layernorm", 1, check_layernorm, bind_layernorm},
    {"token_shift", 1, check_token_shift, bind_token_shift},
    {"mul", 1, check_binary, bind_mul},
    {"sub", 1, check_binary, bind_sub},
    {"sigmoid", 1, check_unary, bind_unary},
    {"tanh", 1, check_unary, bind_unary},
    {"silu", 1, check_unary, bind_unary},
    {"exp", 1, check_unary, bind_unary},
    {"relu_squared", 1, check_unary, bind_unary},
    {"scale", 1, check_unary, bind_unary},
    {"l2norm", 1, check_l2norm, bind_l2norm},
    {"rwkv_wkv4", 1, check_rwkv_wkv4, bind_rwkv_wkv4},
    {"rwkv_wkv5", 1, check_rwkv_wkv5, bind_rwkv_wkv5},
    {"rwkv_wkv7", 1, check_rwkv_wkv7, bind_rwkv_wkv7},
    {"rwkv7_bonus", 1, check_rwkv7_bonus, bind_rwkv7_bonus},
    {"rwkv_mix", 1, check_rwkv_mix, bind_rwkv_mix},
    {"rwkv_decay", 1, check_rwkv_decay, bind_rwkv_decay},
    {"dulut", 1, check_dulut, bind_dulut},
    // Mamba float ops (docs/mamba.md)
    {"causal_conv1d", 1, check_causal_conv1d, bind_causal_conv1d},
    {"selective_scan", 1, check_selective_scan, bind_selective_scan},
    {"softplus", 1, check_unary, bind_unary},
    {"requantize", 1, check_requantize, bind_requantize},
};

const OpDef& find_op(const Graph& g, const NodeDef& n) {
  for (const OpDef& op : kOps)
    if (n.op == op.name) {
      if (n.version < 1 || n.version > op.version)
        fail_node(g, n, "op version " + std::to_string(n.version) + " is not supported (max " +
                            std::to_string(op.version) + ")");
      return op;
    }
  std::string known;
  for (const OpDef& op : kOps) known += std::string(known.empty() ? "" : ", ") + op.name;
  fail_node(g, n, "unknown op (known: " + known + ")");
}

}  // namespace

void check_node(const Graph& g, const NodeDef& n) { find_op(g, n).check(Check{g, n}); }

void bind_node(BindCtx& ctx, int index) {
  const NodeDef& n = ctx.g.nodes[index];
  ctx.node = index;
  find_op(ctx.g, n).bind(ctx, n);
}

void* BindCtx::alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw Error("out of memory preparing node '" + g.nodes[node].name + "'");
  std::memset(p, 0, rounded ? rounded : 64);
  owned_.emplace_back(p);
  return p;
}

}  // namespace fq::detail
