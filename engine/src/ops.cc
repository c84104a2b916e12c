// The operator table (docs/format.md section 3): per op, its checks and its binding. Integer
// nodes bind to kernels through fq_exec's step functions; float nodes to the reference ops.
#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "bind.h"
#include "blob.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/pool.h"
#include "fq/reference/ops.h"
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
  // A positive integer attribute (required).
  int64_t positive(const std::string& key) const {
    if (!n.attrs.count(key)) error("needs attribute '" + key + "'");
    const int64_t v = n.attr_int(key, 0);
    if (v < 1 || v > (int64_t{1} << 30)) error("attribute '" + key + "' must be in [1, 2^30]");
    return v;
  }
  // Constant parameter of dtype `d` and shape `s`; returns its data (nullptr if not loaded).
  template <class T>
  const T* param(size_t i, DType d, const std::vector<int64_t>& s) const {
    const TensorDef& t = in(i);
    constant(t);
    dtype(t, {d});
    shape(t, s);
    return t.data.ptr ? t.as<T>() : nullptr;
  }
  void range(const TensorDef& t, const int32_t* v, int64_t lo, int64_t hi) const {
    for (int64_t i = 0; v && i < t.numel(); ++i)
      if (v[i] < lo || v[i] > hi)
        error("tensor '" + t.name + "' element " + std::to_string(i) + " = " +
              std::to_string(v[i]) + " is outside [" + std::to_string(lo) + ", " +
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
  if (ci != x.shape[3])
    c.error("weight '" + w.name + "' has " + std::to_string(ci) + " input channels, input '" +
            x.name + "' has " + std::to_string(x.shape[3]));
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

void check_softmax(const Check& c) {
  const bool f = c.is_float();
  c.arity(f ? 1 : 3, f ? 1 : 3, 1);
  const TensorDef &x = c.in(0), &y = c.out(0);
  if (x.shape.empty()) c.error("tensor '" + x.name + "' must have rank >= 1");
  c.shape(y, x.shape);
  if (f) return c.dtype(y, {DType::f32});
  c.dtype(x, {DType::i8, DType::i16});
  c.dtype(y, {DType::u16});
  c.range(c.in(1), c.param<int32_t>(1, DType::i32, {1}), 0, std::numeric_limits<int32_t>::max());
  c.shifts(c.in(2), c.param<int8_t>(2, DType::i8, {1}));
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
  const TensorDef& x = g.tensor(n.inputs[0]);
  const int cols = int(x.shape.back());
  const int rows = int(x.numel() / cols);
  if (x.dtype == DType::f32) {
    ctx.kernel[ctx.node] = "ref_softmax_f32";
    ctx.step(ref_softmax_step,
             ctx.make(RefRowsParams{static_cast<const float*>(ctx.tensor(n.inputs[0])), rows,
                                    cols, static_cast<float*>(ctx.tensor(n.outputs[0]))}),
             1);
    return;
  }
  exec::SoftmaxParams p{ctx.tensor(n.inputs[0]), x.dtype == DType::i8, cols,
                        g.tensor(n.inputs[1]).as<int32_t>()[0],
                        g.tensor(n.inputs[2]).as<int8_t>()[0],
                        static_cast<uint16_t*>(ctx.tensor(n.outputs[0]))};
  ctx.kernel[ctx.node] = x.dtype == DType::i8 ? "softmax_i8_u16/scalar" : "softmax_i16_u16/scalar";
  ctx.step(exec::softmax_step, ctx.make(p), rows);
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

// ---- transformer ops (float only in v1) --------------------------------------------------------

template <class T>
T* ptr_of(BindCtx& ctx, const std::string& name) {
  return static_cast<T*>(ctx.tensor(name));
}

// embedding: ids i32 [T], table f32 [V, D] (constant) -> [T, D]; ids outside [0, V) give zeros.
void check_embedding(const Check& c) {
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
  RefEmbeddingParams p{ptr_of<const int32_t>(ctx, n.inputs[0]), table.as<float>(),
                       int(ctx.g.tensor(n.inputs[0]).shape[0]), int(table.shape[0]),
                       int(table.shape[1]), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_embedding_f32";
  ctx.step(ref_embedding_step, ctx.make(p), 1);
}

// rmsnorm: x [T, D], w [D] (constant), attr eps -> [T, D].
void check_rmsnorm(const Check& c) {
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
  RefRmsnormParams p{ptr_of<const float>(ctx, n.inputs[0]), ctx.g.tensor(n.inputs[1]).as<float>(),
                     int(x.shape[0]), int(x.shape[1]), float(n.attr_float("eps", 1e-5)),
                     ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rmsnorm_f32";
  ctx.step(ref_rmsnorm_step, ctx.make(p), 1);
}

// rope: x [T, W], pos i32 [1] (position of row 0); attrs head_dim (even, divides W), base.
void check_rope(const Check& c) {
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
  RefRopeParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const int32_t>(ctx, n.inputs[1]),
                  int(x.shape[0]), int(x.shape[1]), int(n.attr_int("head_dim", 0)),
                  float(n.attr_float("base", 10000.0)), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_rope_f32";
  ctx.step(ref_rope_step, ctx.make(p), 1);
}

// attention: q [T, Hq*hd], k, v [T, Hkv*hd], k_cache, v_cache (state [S, Hkv*hd]), pos i32 [1];
// attrs n_heads, n_kv_heads -> [T, Hq*hd]. Updates the caches in place (rows pos .. pos+T-1).
void check_attention(const Check& c) {
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
  RefSwigluParams p{ptr_of<const float>(ctx, n.inputs[0]), ptr_of<const float>(ctx, n.inputs[1]),
                    ctx.g.tensor(n.inputs[0]).numel(), ptr_of<float>(ctx, n.outputs[0])};
  ctx.kernel[ctx.node] = "ref_swiglu_f32";
  ctx.step(ref_swiglu_step, ctx.make(p), 1);
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
