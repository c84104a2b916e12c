// fqrun conformance: run ONNX node tests (model.onnx + test_data_set_*/input_N.pb, output_N.pb)
// on FQ's integer kernels and compare with the expected outputs. docs/conformance.md is the manual.
//
// Integer ops (QLinearMatMul, MatMulInteger, QLinearConv, ConvInteger) run on the conv kernel
// family with every zero point folded exactly (see int_gemm_conv below) and must match bit for bit.
// QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear are the float <-> integer boundary and
// are computed here, as the ONNX reference does (float32 arithmetic, round half to even).
// Float ops with an integer kernel (llm family: rmsnorm, swiglu, rope, softmax, layernorm; lut
// family (DULUT, tables fitted at run time): gelu, sigmoid, tanh, softplus, erf, exp, hard-swish,
// mish) run as
// quantize -> integer kernel -> dequantize and are compared with a per-op tolerance. Ops without
// an integer kernel are reported UNSUPPORTED.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"
#include "fq/kernels/conv.h"
#include "fq/kernels/cpu.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/linattn.h"
#include "fq/kernels/llm.h"
#include "fq/kernels/lut.h"
#include "fq/kernels/ssm.h"
#include "dulut.h"
#include "onnx_reader.h"

namespace fqrun {

namespace {

namespace ox = fq::onnx;
namespace fk = fq::k;
using ox::Tensor;

const char kConformanceUsage[] =
    "usage: fqrun conformance DIR...\n"
    "\n"
    "Runs ONNX node tests on FQ's integer kernels. Each DIR is a test folder (model.onnx and\n"
    "test_data_set_*/input_N.pb, output_N.pb) or a folder of test folders (one level, sorted).\n"
    "Prints one line per test, 'PASS|FAIL|UNSUPPORTED <test> <op> ...', then\n"
    "'K unsupported (...)' and the last line 'N passed, M failed'. Unsupported tests are not\n"
    "failures. Integer ops must match bit for bit; float ops run as quantize -> integer kernel ->\n"
    "dequantize within a per-op tolerance (docs/conformance.md).\n"
    "\n"
    "options:\n"
    "  --isa ISA      highest kernel ISA (default: $FQ_ISA, else the best this CPU runs)\n"
    "  -v, --verbose  print every data set's comparison on stderr\n"
    "\n"
    "exit status: 0 no test failed; 1 some test failed; 2 bad input (unreadable folder, malformed\n"
    "protobuf, wrong dtype or shape; one line on stderr naming the file).\n";

// A problem with the test itself (exit status 2).
struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A well-formed test this runner cannot execute on an integer kernel.
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- small numeric helpers (float code: the boundary and offline scale computation) --------

// Round to nearest, ties to even (np.rint); the current rounding mode is the default.
double rne(double v) { return std::nearbyint(v); }

// Round a double to the nearest float16 value (ties to even), returned as double.
double to_f16(double v) {
  if (std::isnan(v) || std::isinf(v) || v == 0) return v;
  const double a = std::fabs(v);
  if (a >= 65520.0) return std::copysign(INFINITY, v);
  int e;
  std::frexp(a, &e);                 // a = f * 2^e, f in [0.5, 1)
  int q = e - 11;                    // 11 significant bits
  if (q < -24) q = -24;              // subnormals: fixed quantum 2^-24
  const double r = std::ldexp(rne(std::ldexp(a, -q)), q);
  return std::copysign(r, v);
}
double to_f32(double v) { return double(float(v)); }
// Round to the precision of an ONNX floating type.
double to_type(int t, double v) {
  if (t == ox::kFloat16) return to_f16(v);
  if (t == ox::kBfloat16) {
    const float f = float(v);
    uint32_t b;
    std::memcpy(&b, &f, 4);
    b = (b + 0x7fff + ((b >> 16) & 1)) & 0xffff0000u;
    float r;
    std::memcpy(&r, &b, 4);
    return double(r);
  }
  if (t == ox::kDouble) return v;
  return to_f32(v);
}

// A positive real r as m / 2^s with m < 2^31 (as large as possible), s in [1, 62]; exact when r
// has at most 31 significant bits (every float32 and float16 value in range). Unsupported when r
// is outside what a 31-bit mantissa and the shift range represent.
void dyadic(double r, int32_t* m, int8_t* s) {
  if (!(r > 0) || !std::isfinite(r)) throw Unsupported("requantization ratio is not a positive number");
  int e;
  std::frexp(r, &e);               // r in [2^(e-1), 2^e)
  int sh = 31 - e;                 // m = r * 2^sh in [2^30, 2^31)
  if (sh > 62) sh = 62;
  if (sh < 1) throw Unsupported("requantization ratio >= 2^30");
  double mv = std::floor(std::ldexp(r, sh) + 0.5);
  if (mv >= 2147483648.0) { mv = std::floor(mv / 2 + 0.5); --sh; }
  if (mv < 1) throw Unsupported("requantization ratio below 2^-62");
  *m = int32_t(mv);
  *s = int8_t(sh);
}

// ---- the kernels ---------------------------------------------------------------------------

// 64-byte aligned scratch.
struct Aligned {
  std::vector<uint8_t> buf;
  void* p = nullptr;
  explicit Aligned(size_t n) : buf(n + 64) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(buf.data());
    p = buf.data() + ((64 - (a & 63)) & 63);
  }
};

struct Ctx;

// Integer convolution / GEMM with zero points on the conv family (u8 activations x i8 weights).
// Real semantics: y[o, pix] = sum_taps (a - za) * (b - zb[o])   (then an optional requantization).
// Folding: x = a + oa (u8; oa = 128 for i8 data), ca = za + oa, so (a - za) = (x - ca);
// d = b - zb[o] in [-255, 255] is split into P int8 pieces (P = 1..3) over P copies of the input
// channels, so sum x * d is exact in the kernel; -ca * sum_taps d[o] goes into the bias.
// Padding taps are given the value ca (an explicit pre-padded input), so they contribute 0.
struct ConvProblem {
  int n = 1, c = 1, h = 1, w = 1;        // input (NCHW real layout; x given as NCHW a-values)
  int o = 1, kh = 1, kw = 1;             // weights [o][c][kh][kw] as b-values
  int sh = 1, sw = 1, dh = 1, dw = 1;    // strides, dilations
  int pt = 0, pl = 0, pb = 0, pr = 0;    // pads
  int oh = 1, ow = 1;
  int group = 1;
  const int64_t* x = nullptr;            // a-values [n][c][h][w]
  bool x_signed = false;
  int64_t za = 0;                        // per-tensor activation zero point
  const int64_t* wv = nullptr;           // b-values [o][c/group][kh][kw]
  std::vector<int64_t> zb;               // [o]
  std::vector<int64_t> bias;             // [o] (accumulator units) or empty
  // Epilogue: requant when mult is non-empty: y = clamp(rshift_round(acc*m, s), lo, hi) + yzp.
  std::vector<int32_t> mult;
  std::vector<int8_t> shift;
  int64_t lo = INT32_MIN, hi = INT32_MAX, yzp = 0;
};

struct KernelUse {
  std::string name;   // kernel variant used
  int pieces = 1;     // max weight pieces
};

// Returns y [n][o][oh][ow] (int64).
std::vector<int64_t> run_conv_problem(const ConvProblem& P, fk::Isa isa, KernelUse* use) {
  const fk::ConvKernel* kern = fk::conv_kernel(isa);
  use->name = std::string("conv/") + kern->name;
  const int cg = P.c / P.group, og = P.o / P.group;
  const int oa = P.x_signed ? 128 : 0;
  const int64_t ca = P.za + oa;
  if (ca < 0 || ca > 255) throw Unsupported("activation zero point outside the data type");
  const int khd = (P.kh - 1) * P.dh + 1, kwd = (P.kw - 1) * P.dw + 1;
  const int hp = P.h + P.pt + P.pb, wp = P.w + P.pl + P.pr;
  const bool kstride = P.sh == P.sw;               // the kernel has one stride
  const int kst = kstride ? P.sh : 1;
  const int koh = (hp - khd) / kst + 1, kow = (wp - kwd) / kst + 1;
  const double work = double(hp) * wp * P.c * 3 + double(P.o) * khd * kwd * P.c * 3 +
                      double(P.n) * P.o * koh * kow + double(P.n) * koh * kow * P.o * khd * kwd * P.c / P.group;
  if (work > double(int64_t{1} << 32)) throw Unsupported("convolution too large for the runner");
  if (koh < 1 || kow < 1) throw BadInput("kernel larger than the padded input");
  std::vector<int64_t> y(static_cast<size_t>(P.n) * P.o * P.oh * P.ow);
  for (int g = 0; g < P.group; ++g) {
    // Weight differences and the piece count for this group.
    std::vector<int64_t> d(static_cast<size_t>(og) * khd * kwd * cg, 0);   // [og][khd][kwd][cg]
    int64_t dmax = 0;
    for (int oo = 0; oo < og; ++oo) {
      const int oi = g * og + oo;
      for (int ci = 0; ci < cg; ++ci)
        for (int ky = 0; ky < P.kh; ++ky)
          for (int kx = 0; kx < P.kw; ++kx) {
            const int64_t b = P.wv[((int64_t(oi) * cg + ci) * P.kh + ky) * P.kw + kx];
            const int64_t v = b - P.zb[size_t(oi)];
            d[((size_t(oo) * khd + ky * P.dh) * kwd + kx * P.dw) * cg + ci] = v;
            dmax = std::max(dmax, v < 0 ? -v : v);
          }
    }
    const int pieces = dmax <= 127 ? 1 : dmax <= 254 ? 2 : 3;
    if (dmax > 381) throw Unsupported("weight minus zero point outside [-381, 381]");
    use->pieces = std::max(use->pieces, pieces);
    const int cc = cg * pieces;
    std::vector<int8_t> wk(static_cast<size_t>(og) * khd * kwd * cc);
    std::vector<int32_t> bias(static_cast<size_t>(og));
    for (int oo = 0; oo < og; ++oo) {
      int64_t dsum = 0;
      for (int t = 0; t < khd * kwd; ++t)
        for (int ci = 0; ci < cg; ++ci) {
          int64_t v = d[(size_t(oo) * khd * kwd + t) * cg + ci];
          dsum += v;
          for (int p = 0; p < pieces; ++p) {  // greedy split into int8 pieces summing to v
            const int64_t piece = p == pieces - 1 ? v : std::max<int64_t>(-127, std::min<int64_t>(127, v));
            wk[(size_t(oo) * khd * kwd + t) * cc + size_t(p) * cg + ci] = int8_t(piece);
            v -= piece;
          }
        }
      const int oi = g * og + oo;
      const int64_t b = -ca * dsum + (P.bias.empty() ? 0 : P.bias[size_t(oi)]);
      if (b < INT32_MIN || b > INT32_MAX) throw Unsupported("folded bias outside int32");
      bias[size_t(oo)] = int32_t(b);
    }
    fk::ConvShape s;
    s.n = 1, s.h = hp, s.w = wp, s.c = cc, s.o = og, s.kh = khd, s.kw = kwd;
    s.stride = kst, s.pad_t = 0, s.pad_l = 0, s.oh = koh, s.ow = kow;
    Aligned packed(kern->packed_size(s)), scratch(kern->scratch_size(s));
    kern->pack(s, wk.data(), nullptr, packed.p);
    std::vector<int32_t> mult(static_cast<size_t>(og), 2);
    std::vector<int8_t> shift(static_cast<size_t>(og), 1);   // acc * 2 >> 1 = acc exactly
    fk::ConvEpilogue e;
    e.bias = bias.data();
    e.out_type = fk::OutType::i32;
    e.lo = INT32_MIN, e.hi = INT32_MAX;
    if (!P.mult.empty()) {
      for (int oo = 0; oo < og; ++oo) mult[size_t(oo)] = P.mult[size_t(g * og + oo)],
                                      shift[size_t(oo)] = P.shift[size_t(g * og + oo)];
      e.lo = int32_t(P.lo - P.yzp), e.hi = int32_t(P.hi - P.yzp);
    }
    e.mult = mult.data(), e.shift = shift.data();
    std::vector<uint8_t> xk(static_cast<size_t>(hp) * wp * cc);
    std::vector<int32_t> yk(static_cast<size_t>(koh) * kow * og);
    for (int b = 0; b < P.n; ++b) {
      std::fill(xk.begin(), xk.end(), uint8_t(ca));
      for (int ci = 0; ci < cg; ++ci)
        for (int iy = 0; iy < P.h; ++iy)
          for (int ix = 0; ix < P.w; ++ix) {
            const int64_t a = P.x[((int64_t(b) * P.c + g * cg + ci) * P.h + iy) * P.w + ix];
            const uint8_t v = uint8_t(a + oa);
            for (int p = 0; p < pieces; ++p)
              xk[(size_t(iy + P.pt) * wp + ix + P.pl) * cc + size_t(p) * cg + ci] = v;
          }
      kern->run(s, xk.data(), packed.p, e, yk.data(), 0, kern->num_tasks(s), scratch.p);
      const int step_y = kstride ? 1 : P.sh, step_x = kstride ? 1 : P.sw;
      for (int oo = 0; oo < og; ++oo)
        for (int yy = 0; yy < P.oh; ++yy)
          for (int xx = 0; xx < P.ow; ++xx) {
            const int ky = yy * step_y, kx = xx * step_x;
            y[((size_t(b) * P.o + g * og + oo) * P.oh + yy) * P.ow + xx] =
                int64_t(yk[(size_t(ky) * kow + kx) * og + oo]) + (P.mult.empty() ? 0 : P.yzp);
          }
    }
  }
  return y;
}

// ---- test context --------------------------------------------------------------------------

struct Out {
  int dtype = 0;
  std::vector<int64_t> dims;
  std::vector<double> v;
};

struct OpResult {
  std::vector<Out> outs;            // one per node output
  bool exact = true;                // bit-exact comparison; else tolerance
  double tol = 0;                   // |got - want| <= tol * max(1, max|want|)  (float ops)
  std::string notes;                // appended to the test line
  int ties = 0, rne_diff = 0;       // QLinear*: exact .5 ties of the real rescale; and where the
                                    // kernel's half-up rounding differs from ONNX's half-even
  int64_t rescaled = 0;             // QLinear*: values requantized
};

struct Ctx {
  const ox::Node* node = nullptr;
  std::vector<const Tensor*> in;    // per node input; nullptr when omitted
  fk::Isa isa = fk::Isa::scalar;
  std::string where;                // test name, for messages
  int64_t opset = 0;                // the model's default-domain opset

  const Tensor* opt(size_t i) const { return i < in.size() ? in[i] : nullptr; }
  const Tensor& req(size_t i) const {
    const Tensor* t = opt(i);
    if (!t) throw BadInput(where + ": " + node->op_type + " needs input " + std::to_string(i));
    return *t;
  }
  int64_t attr_i(const char* n, int64_t def) const {
    const ox::Attribute* a = node->attr(n);
    return a ? a->i : def;
  }
  double attr_f(const char* n, double def) const {
    const ox::Attribute* a = node->attr(n);
    return a ? a->f : def;
  }
  std::string attr_s(const char* n, const std::string& def) const {
    const ox::Attribute* a = node->attr(n);
    return a ? a->s : def;
  }
  std::vector<int64_t> attr_ints(const char* n) const {
    const ox::Attribute* a = node->attr(n);
    return a ? a->ints : std::vector<int64_t>{};
  }
  [[noreturn]] void bad(const std::string& what) const {
    throw BadInput(where + ": " + node->op_type + ": " + what);
  }
  void need_type(size_t i, std::initializer_list<int> types) const {
    const Tensor& t = req(i);
    for (int x : types)
      if (t.data_type == x) return;
    std::string list;
    for (int x : types) list += (list.empty() ? "" : "|") + ox::dtype_name(x);
    bad("input " + std::to_string(i) + " ('" + node->inputs[i] + "') is " + ox::dtype_name(t.data_type) +
        ", expected " + list);
  }
};

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

// Product of d[b, e) (e clipped to the rank).
int64_t prod(const std::vector<int64_t>& d, size_t b = 0, size_t e = SIZE_MAX) {
  int64_t n = 1;
  const size_t end = e < d.size() ? e : d.size();
  for (auto it = d.begin() + std::ptrdiff_t(std::min(b, end)); it != d.begin() + std::ptrdiff_t(end); ++it) n *= *it;
  return n;
}

int norm_axis(const Ctx& c, int64_t axis, size_t rank) {
  const int64_t r = int64_t(rank);
  if (axis < -r || axis >= r) c.bad("axis " + std::to_string(axis) + " outside rank " + std::to_string(rank));
  return int(axis < 0 ? axis + r : axis);
}

// Per-tensor scalar: a tensor with one element.
double scalar_of(const Ctx& c, const Tensor& t, const char* what) {
  if (t.numel() != 1) c.bad(std::string(what) + " must hold one element, has shape " + dims_str(t.dims));
  return t.at(0);
}

bool is_q8(int t) { return t == ox::kUint8 || t == ox::kInt8; }

// ---- MatMulInteger / QLinearMatMul -----------------------------------------------------------

// numpy.matmul shapes: A [..., M, K], B [..., K, N] (1-D operands promoted and the added dim
// removed afterwards), batch dims broadcast.
struct MatmulShape {
  std::vector<int64_t> batch, out;
  int64_t m = 1, k = 1, n = 1;
  std::vector<int64_t> a_off, b_off;   // per batch element, offsets into A and B
};

MatmulShape matmul_shape(const Ctx& c, const Tensor& A, const Tensor& B) {
  std::vector<int64_t> ad = A.dims, bd = B.dims;
  if (ad.empty() || bd.empty()) c.bad("matmul operands must have rank >= 1");
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  MatmulShape s;
  s.m = ad[ad.size() - 2], s.k = ad.back(), s.n = bd.back();
  if (bd[bd.size() - 2] != s.k)
    c.bad("inner dimensions differ: A " + dims_str(A.dims) + ", B " + dims_str(B.dims));
  const size_t ar = ad.size() - 2, br = bd.size() - 2, r = std::max(ar, br);
  s.batch.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t x = i + ar >= r ? ad[i + ar - r] : 1, y = i + br >= r ? bd[i + br - r] : 1;
    if (x != y && x != 1 && y != 1) c.bad("batch dimensions do not broadcast: " + dims_str(A.dims) + " x " + dims_str(B.dims));
    s.batch[i] = std::max(x, y);
  }
  const int64_t nb = prod(s.batch);
  if (s.m == 0 || s.n == 0 || s.k == 0 || nb == 0) throw Unsupported("empty matmul");
  if (double(nb) * s.m * s.n * (s.k + 1) > double(int64_t{1} << 32))
    throw Unsupported("matmul too large for the runner");
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, ao = 0, bo = 0, astr = s.m * s.k, bstr = s.k * s.n;
    for (size_t i = r; i-- > 0;) {
      const int64_t idx = rem % s.batch[i];
      rem /= s.batch[i];
      const int64_t x = i + ar >= r ? ad[i + ar - r] : 1, y = i + br >= r ? bd[i + br - r] : 1;
      if (x != 1) ao += idx * astr;
      if (y != 1) bo += idx * bstr;
      astr *= x, bstr *= y;
    }
    s.a_off.push_back(ao), s.b_off.push_back(bo);
  }
  s.out = s.batch;
  if (!a1) s.out.push_back(s.m);
  if (!b1) s.out.push_back(s.n);
  return s;
}

// Per-row (a) or per-column (b) parameters: a scalar, a 1-D vector of `len`, or an N-D tensor
// whose element count is len (the [..., M, 1] / [..., 1, N] forms without batch variation).
std::vector<double> vec_param(const Ctx& c, const Tensor* t, int64_t len, double def, const char* what) {
  if (!t) return std::vector<double>(size_t(len), def);
  if (t->numel() == 1) return std::vector<double>(size_t(len), t->at(0));
  if (t->numel() == len) {
    std::vector<double> v(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) v[size_t(i)] = t->at(i);
    return v;
  }
  c.bad(std::string(what) + " has shape " + dims_str(t->dims) + ", expected 1 or " + std::to_string(len) + " elements");
}

// The requantization ratio as the ONNX reference computes it: (sa * sb) / sy in the scales' own
// floating type (numpy keeps float32 / float16 arrays in their type).
double onnx_ratio(int t, double sa, double sb, double sy) {
  return to_type(t, to_type(t, sa * sb) / sy);
}

// Compares the kernel's requantized integer (before the output zero point) with the exact real
// rescale rounded half to even: counts ties and differences.
void count_rounding(OpResult* r, int64_t acc, double ratio, int64_t got_minus_zp, int64_t lo, int64_t hi) {
  const double v = double(acc) * ratio;  // exact: |acc| < 2^31, ratio has <= 24 bits
  const double fl = std::floor(v);
  if (v - fl == 0.5) ++r->ties;
  const double want = std::min(double(hi), std::max(double(lo), rne(v)));
  if (double(got_minus_zp) != want) ++r->rne_diff;
  ++r->rescaled;
}

OpResult matmul_op(const Ctx& c, bool qlinear) {
  // MatMulInteger: A, B, a_zp, b_zp.  QLinearMatMul: a, sa, za, b, sb, zb, sy, zy.
  const size_t ia = 0, ib = qlinear ? 3 : 1;
  c.need_type(ia, {ox::kUint8, ox::kInt8});
  c.need_type(ib, {ox::kUint8, ox::kInt8});
  const Tensor& A = c.req(ia);
  const Tensor& B = c.req(ib);
  const Tensor* za_t = c.opt(qlinear ? 2 : 2);
  const Tensor* zb_t = c.opt(qlinear ? 5 : 3);
  if (za_t && za_t->data_type != A.data_type) c.bad("a_zero_point type differs from A");
  if (zb_t && zb_t->data_type != B.data_type) c.bad("b_zero_point type differs from B");
  const MatmulShape s = matmul_shape(c, A, B);
  const std::vector<double> za = vec_param(c, za_t, s.m, 0, "a_zero_point");
  const std::vector<double> zb = vec_param(c, zb_t, s.n, 0, "b_zero_point");
  std::vector<double> sa, sb;
  double sy = 1, zy = 0;
  int ydt = ox::kInt32, sdt = ox::kFloat;
  int64_t lo = INT32_MIN, hi = INT32_MAX;
  if (qlinear) {
    for (size_t i : {size_t(1), size_t(4), size_t(6)}) c.need_type(i, {ox::kFloat, ox::kFloat16});
    sdt = c.req(1).data_type;
    if (c.req(4).data_type != sdt || c.req(6).data_type != sdt) c.bad("scales of different types");
    sa = vec_param(c, &c.req(1), s.m, 1, "a_scale");
    sb = vec_param(c, &c.req(4), s.n, 1, "b_scale");
    sy = scalar_of(c, c.req(6), "y_scale");
    const Tensor* zy_t = c.opt(7);
    ydt = zy_t ? zy_t->data_type : A.data_type;
    if (!is_q8(ydt)) c.bad("y_zero_point must be u8 or i8");
    if (zy_t) zy = scalar_of(c, *zy_t, "y_zero_point");
    ox::int_range(ydt, &lo, &hi);
  }
  OpResult r;
  Out o;
  o.dtype = ydt;
  o.dims = s.out;
  o.v.resize(size_t(prod(s.batch) * s.m * s.n));
  KernelUse use;
  const bool per_row = std::any_of(za.begin(), za.end(), [&](double v) { return v != za[0]; }) ||
                       (qlinear && std::any_of(sa.begin(), sa.end(), [&](double v) { return v != sa[0]; }));
  // Row blocks sharing the activation parameters: all rows, or one row at a time.
  const int64_t rb = per_row ? 1 : s.m;
  for (size_t bi = 0; bi < s.a_off.size(); ++bi) {
    for (int64_t m0 = 0; m0 < s.m; m0 += rb) {
      // Present the GEMM as a 1x1 convolution: rows = pixels, K = channels, N = outputs.
      std::vector<int64_t> xa(static_cast<size_t>(rb * s.k)), wb(static_cast<size_t>(s.n * s.k));
      for (int64_t i = 0; i < rb; ++i)
        for (int64_t kk = 0; kk < s.k; ++kk)   // x as NCHW [1][K][rows][1]
          xa[size_t(kk * rb + i)] = A.ints[size_t(s.a_off[bi] + (m0 + i) * s.k + kk)];
      for (int64_t nn = 0; nn < s.n; ++nn)
        for (int64_t kk = 0; kk < s.k; ++kk)
          wb[size_t(nn * s.k + kk)] = B.ints[size_t(s.b_off[bi] + kk * s.n + nn)];
      ConvProblem P;
      P.n = 1, P.c = int(s.k), P.h = int(rb), P.o = int(s.n), P.oh = int(rb);
      P.x = xa.data(), P.x_signed = A.data_type == ox::kInt8, P.za = int64_t(za[size_t(m0)]);
      P.wv = wb.data();
      for (double z : zb) P.zb.push_back(int64_t(z));
      std::vector<double> ratio(static_cast<size_t>(s.n));
      if (qlinear) {
        for (int64_t nn = 0; nn < s.n; ++nn) {
          ratio[size_t(nn)] = onnx_ratio(sdt, sa[size_t(m0)], sb[size_t(nn)], sy);
          int32_t mm;
          int8_t sh;
          dyadic(ratio[size_t(nn)], &mm, &sh);
          P.mult.push_back(mm), P.shift.push_back(sh);
        }
        P.lo = lo, P.hi = hi, P.yzp = int64_t(zy);
      }
      const std::vector<int64_t> y = run_conv_problem(P, c.isa, &use);
      // Exact accumulators for the rounding report (QLinear only).
      for (int64_t i = 0; i < rb; ++i)
        for (int64_t nn = 0; nn < s.n; ++nn) {
          const int64_t val = y[size_t(nn * rb + i)];
          o.v[size_t((int64_t(bi) * s.m + m0 + i) * s.n + nn)] = double(val);
          if (qlinear) {
            int64_t acc = 0;
            for (int64_t kk = 0; kk < s.k; ++kk)
              acc += (xa[size_t(kk * rb + i)] - P.za) * (wb[size_t(nn * s.k + kk)] - P.zb[size_t(nn)]);
            count_rounding(&r, acc, ratio[size_t(nn)], val - P.yzp, lo - P.yzp, hi - P.yzp);
          }
        }
    }
  }
  r.outs.push_back(std::move(o));
  r.notes = "path=" + use.name + (use.pieces > 1 ? " zp_pieces=" + std::to_string(use.pieces) : "");
  return r;
}

// ---- ConvInteger / QLinearConv ---------------------------------------------------------------

OpResult conv_op(const Ctx& c, bool qlinear) {
  // ConvInteger: x, w, x_zp, w_zp.  QLinearConv: x, sx, zx, w, sw, zw, sy, zy, B.
  const size_t ix = 0, iw = qlinear ? 3 : 1;
  c.need_type(ix, {ox::kUint8, ox::kInt8});
  c.need_type(iw, {ox::kUint8, ox::kInt8});
  const Tensor& X = c.req(ix);
  const Tensor& W = c.req(iw);
  std::vector<int64_t> xd = X.dims, wd = W.dims;
  if (xd.size() != wd.size() || xd.size() < 3) c.bad("x " + dims_str(xd) + " and w " + dims_str(wd) + " must have the same rank >= 3");
  if (xd.size() == 3) xd.insert(xd.begin() + 2, 1), wd.insert(wd.begin() + 2, 1);  // 1-D conv
  if (xd.size() != 4) throw Unsupported("only 1-D and 2-D convolutions");
  const size_t sp = X.dims.size() - 2;  // spatial rank of the attributes
  const int64_t group = c.attr_i("group", 1);
  if (group < 1 || xd[1] % group || wd[0] % group) c.bad("group " + std::to_string(group) + " does not divide the channels");
  if (wd[1] * group != xd[1]) c.bad("w " + dims_str(W.dims) + " does not match x " + dims_str(X.dims) + " with group " + std::to_string(group));
  auto spatial = [&](const char* name, int64_t def) {
    std::vector<int64_t> v = c.attr_ints(name);
    if (v.empty()) v.assign(sp, def);
    if (v.size() != sp) c.bad(std::string(name) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(sp));
    if (sp == 1) v.insert(v.begin(), def);
    return v;
  };
  const std::vector<int64_t> st = spatial("strides", 1), dl = spatial("dilations", 1);
  std::vector<int64_t> ks = c.attr_ints("kernel_shape");
  if (!ks.empty()) {
    if (ks.size() != sp) c.bad("kernel_shape rank");
    for (size_t i = 0; i < sp; ++i)
      if (ks[i] != W.dims[2 + i]) c.bad("kernel_shape " + dims_str(ks) + " differs from w " + dims_str(W.dims));
  }
  std::vector<int64_t> pads = c.attr_ints("pads");
  if (pads.empty()) pads.assign(2 * sp, 0);
  if (pads.size() != 2 * sp) c.bad("pads has " + std::to_string(pads.size()) + " values");
  if (sp == 1) pads = {0, pads[0], 0, pads[1]};
  constexpr int64_t kMaxAttr = 1 << 16;   // absurd geometry is bad input, not an allocation
  for (int64_t v : st) if (v < 1 || v > kMaxAttr) c.bad("strides must be in [1, 65536]");
  for (int64_t v : dl) if (v < 1 || v > kMaxAttr) c.bad("dilations must be in [1, 65536]");
  for (int64_t v : pads) if (v < 0 || v > kMaxAttr) c.bad("pads must be in [0, 65536]");
  for (int64_t v : xd) if (v < 1 || v > kMaxAttr * 64) c.bad("x " + dims_str(X.dims) + ": empty or too large");
  for (int64_t v : wd) if (v < 1 || v > kMaxAttr * 64) c.bad("w " + dims_str(W.dims) + ": empty or too large");
  ConvProblem P;
  P.n = int(xd[0]), P.c = int(xd[1]), P.h = int(xd[2]), P.w = int(xd[3]);
  P.o = int(wd[0]), P.kh = int(wd[2]), P.kw = int(wd[3]);
  P.sh = int(st[0]), P.sw = int(st[1]), P.dh = int(dl[0]), P.dw = int(dl[1]);
  P.group = int(group);
  const int64_t khd = (P.kh - 1) * P.dh + 1, kwd = (P.kw - 1) * P.dw + 1;
  const std::string ap = c.attr_s("auto_pad", "NOTSET");
  int64_t pt = pads[0], pl = pads[1], pb = pads[2], pr = pads[3];
  auto same = [&](int64_t in, int64_t s, int64_t kd, bool upper, int64_t* b, int64_t* e) {
    const int64_t out = (in + s - 1) / s, total = std::max<int64_t>(0, (out - 1) * s + kd - in);
    *b = upper ? total / 2 : total - total / 2;
    *e = total - *b;
  };
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    same(P.h, P.sh, khd, ap == "SAME_UPPER", &pt, &pb);
    same(P.w, P.sw, kwd, ap == "SAME_UPPER", &pl, &pr);
    if (sp == 1) pt = pb = 0;
  } else if (ap == "VALID") {
    pt = pl = pb = pr = 0;
  } else if (ap != "NOTSET") {
    c.bad("auto_pad '" + ap + "'");
  }
  P.pt = int(pt), P.pl = int(pl), P.pb = int(pb), P.pr = int(pr);
  const int64_t oh = (P.h + pt + pb - khd) / P.sh + 1, ow = (P.w + pl + pr - kwd) / P.sw + 1;
  if (P.h + pt + pb < khd || P.w + pl + pr < kwd) c.bad("kernel larger than the padded input");
  P.oh = int(oh), P.ow = int(ow);
  // Trim padding the strided output never reads, so the kernel's own output size matches.
  P.pb = int(std::max<int64_t>(0, (oh - 1) * P.sh + khd - P.h - pt));
  P.pr = int(std::max<int64_t>(0, (ow - 1) * P.sw + kwd - P.w - pl));
  P.x = X.ints.data(), P.x_signed = X.data_type == ox::kInt8;
  P.wv = W.ints.data();
  const Tensor* zx_t = c.opt(2);
  const Tensor* zw_t = c.opt(qlinear ? 5 : 3);
  if (zx_t && zx_t->data_type != X.data_type) c.bad("x_zero_point type differs from x");
  if (zw_t && zw_t->data_type != W.data_type) c.bad("w_zero_point type differs from w");
  P.za = zx_t ? int64_t(scalar_of(c, *zx_t, "x_zero_point")) : 0;
  for (double z : vec_param(c, zw_t, P.o, 0, "w_zero_point")) P.zb.push_back(int64_t(z));
  OpResult r;
  int ydt = ox::kInt32;
  int64_t lo = INT32_MIN, hi = INT32_MAX;
  std::vector<double> ratio;
  if (qlinear) {
    for (size_t i : {size_t(1), size_t(4), size_t(6)}) c.need_type(i, {ox::kFloat, ox::kFloat16});
    const int sdt = c.req(1).data_type;
    const double sx = scalar_of(c, c.req(1), "x_scale"), sy = scalar_of(c, c.req(6), "y_scale");
    const std::vector<double> sw = vec_param(c, &c.req(4), P.o, 1, "w_scale");
    const Tensor* zy_t = c.opt(7);
    ydt = zy_t ? zy_t->data_type : X.data_type;
    if (!is_q8(ydt)) c.bad("y_zero_point must be u8 or i8");
    P.yzp = zy_t ? int64_t(scalar_of(c, *zy_t, "y_zero_point")) : 0;
    ox::int_range(ydt, &lo, &hi);
    P.lo = lo, P.hi = hi;
    for (int o = 0; o < P.o; ++o) {
      ratio.push_back(onnx_ratio(sdt, sx, sw[size_t(o)], sy));
      int32_t mm;
      int8_t sh;
      dyadic(ratio.back(), &mm, &sh);
      P.mult.push_back(mm), P.shift.push_back(sh);
    }
    if (const Tensor* bt = c.opt(8)) {
      if (bt->data_type != ox::kInt32) c.bad("bias must be i32");
      if (bt->numel() != P.o) c.bad("bias has " + std::to_string(bt->numel()) + " elements, expected " + std::to_string(P.o));
      P.bias = bt->ints;
    }
  }
  KernelUse use;
  const std::vector<int64_t> y = run_conv_problem(P, c.isa, &use);
  Out o;
  o.dtype = ydt;
  o.dims = {P.n, P.o, P.oh, P.ow};
  if (sp == 1) o.dims.erase(o.dims.begin() + 2);
  o.v.assign(y.begin(), y.end());
  if (qlinear) {
    // The real rescale of the exact accumulator, for the rounding report.
    ConvProblem Q = P;
    Q.mult.clear(), Q.shift.clear(), Q.yzp = 0;
    KernelUse u2;
    const std::vector<int64_t> acc = run_conv_problem(Q, c.isa, &u2);
    for (size_t i = 0; i < acc.size(); ++i) {
      const size_t oc = (i / size_t(P.oh * P.ow)) % size_t(P.o);
      count_rounding(&r, acc[i], ratio[oc], y[i] - P.yzp, lo - P.yzp, hi - P.yzp);
    }
  }
  r.outs.push_back(std::move(o));
  r.notes = "path=" + use.name + (use.pieces > 1 ? " zp_pieces=" + std::to_string(use.pieces) : "");
  return r;
}

// ---- QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear --------------------------------

// Index of the scale / zero point for element i of x: per-tensor, per-axis or blocked.
struct QParamIndex {
  int mode = 0;                 // 0 tensor, 1 axis, 2 blocked
  int64_t inner = 1, axis_len = 1, block = 0;
  std::vector<int64_t> xd;
  int axis = 0;
  int64_t operator()(int64_t i) const {
    if (mode == 0) return 0;
    const int64_t ai = (i / inner) % axis_len;
    if (mode == 1) return ai;
    const int64_t outer = i / (inner * axis_len), in = i % inner;
    const int64_t nb = (axis_len + block - 1) / block;
    return (outer * nb + ai / block) * inner + in;
  }
};

QParamIndex qparam_index(const Ctx& c, const Tensor& x, const Tensor& scale) {
  QParamIndex q;
  q.xd = x.dims;
  const int64_t block = c.attr_i("block_size", 0);
  if (scale.numel() == 1 && scale.dims.size() <= 1 && block == 0) return q;
  if (x.dims.empty()) c.bad("a scalar x needs a scalar scale");
  q.axis = norm_axis(c, c.attr_i("axis", 1), x.dims.size());
  q.axis_len = x.dims[size_t(q.axis)];
  q.inner = prod(x.dims, size_t(q.axis) + 1);
  if (block <= 0) {
    if (scale.dims.size() != 1 || scale.dims[0] != q.axis_len)
      c.bad("scale " + dims_str(scale.dims) + " does not match x " + dims_str(x.dims) + " on axis " + std::to_string(q.axis));
    q.mode = 1;
    return q;
  }
  std::vector<int64_t> want = x.dims;
  want[size_t(q.axis)] = (q.axis_len + block - 1) / block;
  if (scale.dims != want)
    c.bad("blocked scale " + dims_str(scale.dims) + " does not match x " + dims_str(x.dims) + " (axis " +
          std::to_string(q.axis) + ", block_size " + std::to_string(block) + ")");
  q.mode = 2, q.block = block;
  return q;
}

bool quant_int_type(int t) {
  return t == ox::kUint8 || t == ox::kInt8 || t == ox::kUint16 || t == ox::kInt16 || t == ox::kUint4 ||
         t == ox::kInt4 || t == ox::kUint2 || t == ox::kInt2;
}

OpResult quantize_op(const Ctx& c) {
  const Tensor& x = c.req(0);
  const Tensor& sc = c.req(1);
  const Tensor* zp = c.opt(2);
  if (!x.is_float()) c.bad("x must be a float tensor, is " + ox::dtype_name(x.data_type));
  if (!sc.is_float()) c.bad("y_scale must be a float tensor");
  int ydt = zp ? zp->data_type : int(c.attr_i("output_dtype", 0));
  if (ydt == 0) ydt = ox::kUint8;
  if (zp && c.attr_i("output_dtype", 0) && c.attr_i("output_dtype", 0) != ydt) c.bad("output_dtype differs from y_zero_point's type");
  if (!quant_int_type(ydt)) throw Unsupported("output type " + ox::dtype_name(ydt));
  const QParamIndex qi = qparam_index(c, x, sc);
  if (zp && zp->dims != sc.dims && !(zp->numel() == 1 && sc.numel() == 1)) c.bad("y_zero_point shape differs from y_scale");
  int64_t lo, hi;
  ox::int_range(ydt, &lo, &hi);
  // The division in the input's precision (float32; float16 inputs: float16), rint, + zp, clip.
  const int ct = x.data_type == ox::kDouble ? ox::kDouble : x.data_type == ox::kFloat16 ? ox::kFloat16 : ox::kFloat;
  Out o;
  o.dtype = ydt;
  o.dims = x.dims;
  const int64_t n = x.numel();
  o.v.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = qi(i);
    const double q = rne(to_type(ct, x.floats[size_t(i)] / sc.at(j))) + (zp ? zp->at(j) : 0);
    o.v[size_t(i)] = std::isnan(q) ? 0 : std::min(double(hi), std::max(double(lo), q));
  }
  OpResult r;
  r.outs.push_back(std::move(o));
  r.notes = "path=boundary";
  return r;
}

OpResult dequantize_op(const Ctx& c) {
  const Tensor& x = c.req(0);
  const Tensor& sc = c.req(1);
  const Tensor* zp = c.opt(2);
  if (!quant_int_type(x.data_type) && x.data_type != ox::kInt32) {
    if (x.is_float() || ox::is_int_type(x.data_type)) c.bad("x type " + ox::dtype_name(x.data_type));
    throw Unsupported("x type " + ox::dtype_name(x.data_type));
  }
  if (!sc.is_float()) c.bad("x_scale must be a float tensor");
  if (zp && zp->data_type != x.data_type) c.bad("x_zero_point type differs from x");
  const QParamIndex qi = qparam_index(c, x, sc);
  if (zp && zp->dims != sc.dims && !(zp->numel() == 1 && sc.numel() == 1)) c.bad("x_zero_point shape differs from x_scale");
  int ydt = int(c.attr_i("output_dtype", 0));
  if (ydt == 0) ydt = sc.data_type;
  Out o;
  o.dtype = ydt;
  o.dims = x.dims;
  const int64_t n = x.numel();
  o.v.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = qi(i);
    // (float32(x) - float32(zp)) * scale, in float32, then the output type.
    const double d = to_f32(to_f32(double(x.ints[size_t(i)])) - to_f32(zp ? zp->at(j) : 0));
    o.v[size_t(i)] = to_type(ydt, to_f32(d * sc.at(j)));
  }
  OpResult r;
  r.outs.push_back(std::move(o));
  r.notes = "path=boundary";
  return r;
}

OpResult dynamic_quantize_op(const Ctx& c) {
  c.need_type(0, {ox::kFloat});
  const Tensor& x = c.req(0);
  float mn = 0, mx = 0;
  for (double v : x.floats) mn = std::min(mn, float(v)), mx = std::max(mx, float(v));
  const float scale = (mx == mn ? 1.0f : float(mx - mn)) / 255.0f;  // ONNX: (max - min) / (qmax - qmin)
  const float izp = 0.0f - mn / scale;
  const double zp = rne(std::min(255.0, std::max(0.0, double(izp))));
  Out y, s, z;
  y.dtype = ox::kUint8, y.dims = x.dims;
  for (double v : x.floats)
    y.v.push_back(std::min(255.0, std::max(0.0, rne(double(float(v) / scale)) + zp)));
  s.dtype = ox::kFloat, s.v = {double(scale)};
  z.dtype = ox::kUint8, z.v = {zp};
  OpResult r;
  r.outs = {y, s, z};
  r.notes = "path=boundary";
  return r;
}

// ---- float ops on the llm kernels ---------------------------------------------------------------

// A row of reals as int16 with one RowScale (mant in [2^14, 2^15)): the input boundary.
fk::RowScale quant_row16(const double* x, int64_t n, int16_t* q) {
  double a = 0;
  for (int64_t i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
  if (a == 0 || !std::isfinite(a)) {
    for (int64_t i = 0; i < n; ++i) q[i] = 0;
    return fk::RowScale{};
  }
  const double step = a / 32767.0;
  int e;
  std::frexp(step, &e);                 // step in [2^(e-1), 2^e)
  int exp = 15 - e;                     // mant = step * 2^exp in [2^14, 2^15)
  double mant = std::floor(std::ldexp(step, exp) + 0.5);
  if (mant >= 32768) mant = 16384, --exp;
  const double unit = std::ldexp(mant, -exp);
  for (int64_t i = 0; i < n; ++i) {
    const double v = rne(x[i] / unit);
    q[i] = int16_t(std::min(32767.0, std::max(-32767.0, v)));
  }
  return fk::RowScale{int32_t(mant), exp};
}
double deq(int64_t q, fk::RowScale s) { return std::ldexp(double(q) * s.mant, -s.exp); }

const fk::LlmKernel& llm(const Ctx& c) { return *fk::llm_kernel(c.isa); }

// Broadcast t (numpy rules, right-aligned) to `dims`; returns the values.
std::vector<double> broadcast(const Ctx& c, const Tensor& t, const std::vector<int64_t>& dims, const char* what) {
  const size_t r = dims.size();
  if (t.dims.size() > r) c.bad(std::string(what) + " " + dims_str(t.dims) + " does not broadcast to " + dims_str(dims));
  const size_t off = r - t.dims.size();
  for (size_t i = 0; i < t.dims.size(); ++i)
    if (t.dims[i] != 1 && t.dims[i] != dims[off + i])
      c.bad(std::string(what) + " " + dims_str(t.dims) + " does not broadcast to " + dims_str(dims));
  const int64_t n = prod(dims);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, src = 0, stride = 1;
    for (size_t d = r; d-- > 0;) {
      const int64_t idx = rem % dims[d];
      rem /= dims[d];
      if (d >= off) {
        const int64_t td = t.dims[d - off];
        if (td != 1) src += idx * stride;
        stride *= td;
      }
    }
    v[size_t(i)] = t.at(src);
  }
  return v;
}

void need_float(const Ctx& c, size_t i) {
  const Tensor& t = c.req(i);
  if (!t.is_float()) c.bad("input " + std::to_string(i) + " ('" + c.node->inputs[i] + "') must be float, is " + ox::dtype_name(t.data_type));
}

// RMSNormalization: x as int32 with a power-of-two unit, eps in x^2 units, the rmsnorm kernel
// (int16 output + row scale), dequantized, then the scale (gamma) applied at the boundary (in a
// graph it is folded into the next matmul's weights).
OpResult rmsnorm_op(const Ctx& c) {
  need_float(c, 0);
  need_float(c, 1);
  const Tensor& X = c.req(0);
  if (X.dims.empty()) c.bad("X must have rank >= 1");
  const int axis = norm_axis(c, c.attr_i("axis", -1), X.dims.size());
  const double eps = c.attr_f("epsilon", 1e-5);
  const int64_t M = prod(X.dims, 0, size_t(axis)), D = prod(X.dims, size_t(axis));
  if (D > 16384) throw Unsupported("normalized size above 16384");
  const std::vector<int64_t> nd(X.dims.begin() + axis, X.dims.end());
  const std::vector<double> gamma = broadcast(c, c.req(1), nd, "scale");
  double amax = 0;
  for (double v : X.floats) amax = std::max(amax, std::fabs(v));
  int E = 0;
  if (amax > 0) { int e; std::frexp(amax, &e); E = 30 - e; }        // |x| * 2^E < 2^30
  std::vector<int32_t> xi(X.floats.size());
  for (size_t i = 0; i < xi.size(); ++i) xi[i] = int32_t(rne(std::ldexp(X.floats[i], E)));
  // eps * 2^(2E) = eps_m * 2^-eps_e, eps_m in [2^30, 2^31).
  int32_t eps_m = 0;
  int eps_e = 0;
  if (eps > 0) {
    int e;
    std::frexp(eps, &e);
    eps_e = 31 - e - 2 * E;
    double m = std::floor(std::ldexp(eps, 31 - e) + 0.5);
    if (m >= 2147483648.0) m /= 2, --eps_e;
    eps_m = int32_t(m);
    if (eps_e < -62 || eps_e > 124) throw Unsupported("epsilon outside the kernel's range");
  }
  std::vector<int16_t> y(xi.size());
  std::vector<fk::RowScale> ys(static_cast<size_t>(M));
  Aligned scratch(fk::rmsnorm_scratch(D));
  fk::RmsnormArgs a{xi.data(), D, eps_m, eps_e, 32767, y.data(), ys.data()};
  llm(c).rmsnorm(a, 0, M, scratch.p);
  Out o;
  o.dtype = X.data_type, o.dims = X.dims;
  o.v.resize(xi.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < D; ++i)
      o.v[size_t(m * D + i)] = deq(y[size_t(m * D + i)], ys[size_t(m)]) * gamma[size_t(i)];
  OpResult r;
  r.outs.push_back(std::move(o));
  r.exact = false;
  r.notes = std::string("path=llm/") + llm(c).name + ":rmsnorm";
  return r;
}

// y = g * sigmoid(g) * u on the swiglu kernel, rows of the last dimension; inputs as int16 rows.
Out swiglu_rows(const Ctx& c, const std::vector<double>& g, const std::vector<double>& u,
                const std::vector<int64_t>& dims, int dtype) {
  const int64_t N = dims.empty() ? 1 : dims.back();
  const int64_t M = N ? int64_t(g.size()) / N : 0;
  std::vector<int16_t> gq(g.size()), uq(u.size()), y(g.size());
  std::vector<fk::RowScale> gs(static_cast<size_t>(M)), us(static_cast<size_t>(M)), ys(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    gs[size_t(m)] = quant_row16(g.data() + m * N, N, gq.data() + m * N);
    us[size_t(m)] = quant_row16(u.data() + m * N, N, uq.data() + m * N);
  }
  Aligned scratch(fk::swiglu_scratch(N));
  fk::SwigluArgs a{gq.data(), uq.data(), N, gs.data(), us.data(), 32767, y.data(), ys.data()};
  llm(c).swiglu(a, 0, M, scratch.p);
  Out o;
  o.dtype = dtype, o.dims = dims;
  o.v.resize(g.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < N; ++i) o.v[size_t(m * N + i)] = deq(y[size_t(m * N + i)], ys[size_t(m)]);
  return o;
}

OpResult swiglu_op(const Ctx& c) {
  need_float(c, 0);
  const Tensor& A = c.req(0);
  std::vector<double> g, u;
  std::vector<int64_t> dims = A.dims;
  if (c.opt(1)) {
    need_float(c, 1);
    if (c.req(1).dims != A.dims) c.bad("a " + dims_str(A.dims) + " and b " + dims_str(c.req(1).dims) + " differ");
    g = A.floats, u = c.req(1).floats;
  } else {
    throw Unsupported("single-input SwiGLU");
  }
  if (c.attr_f("alpha", 1.0) != 1.0 || c.node->attr("limit")) throw Unsupported("SwiGLU alpha/limit");
  OpResult r;
  r.outs.push_back(swiglu_rows(c, g, u, dims, A.data_type));
  r.exact = false;
  r.notes = std::string("path=llm/") + llm(c).name + ":swiglu";
  return r;
}

// Swish(x) = x * sigmoid(alpha x) = swiglu(gate = alpha x, up = 1 / alpha).
OpResult swish_op(const Ctx& c, bool plain_silu) {
  need_float(c, 0);
  const Tensor& X = c.req(0);
  const double alpha = plain_silu ? 1.0 : c.attr_f("alpha", 1.0);
  if (!(alpha > 0)) throw Unsupported("alpha <= 0");
  std::vector<double> g(X.floats.size()), u(X.floats.size(), 1.0 / alpha);
  for (size_t i = 0; i < g.size(); ++i) g[i] = alpha * X.floats[i];
  OpResult r;
  r.outs.push_back(swiglu_rows(c, g, u, X.dims, X.data_type));
  r.exact = false;
  r.notes = std::string("path=llm/") + llm(c).name + ":swiglu(up=1/alpha)";
  return r;
}

// RotaryEmbedding on the rope kernel: per token, the rotary part of every head (permuted into
// interleaved pairs for the default half-split layout) as one int16 row with its row scale, and a
// one-row Q14 table of that token's (cos, sin).
OpResult rope_op(const Ctx& c) {
  need_float(c, 0), need_float(c, 1), need_float(c, 2);
  const Tensor& X = c.req(0);
  const Tensor& C = c.req(1);
  const Tensor& S = c.req(2);
  const Tensor* pos = c.opt(3);
  if (C.dims != S.dims) c.bad("cos_cache and sin_cache shapes differ");
  const bool inter = c.attr_i("interleaved", 0) != 0;
  int64_t B, T, H, hd;
  bool four = X.dims.size() == 4;
  if (four) {
    B = X.dims[0], H = X.dims[1], T = X.dims[2], hd = X.dims[3];
  } else if (X.dims.size() == 3) {
    H = c.attr_i("num_heads", 0);
    if (H <= 0 || X.dims[2] % H) c.bad("3-D input needs num_heads dividing the hidden size");
    B = X.dims[0], T = X.dims[1], hd = X.dims[2] / H;
  } else {
    c.bad("input must be 3-D or 4-D, is " + dims_str(X.dims));
  }
  int64_t rd = c.attr_i("rotary_embedding_dim", 0);
  if (rd == 0) rd = hd;
  if (rd % 2 || rd > hd || rd < 2) c.bad("rotary_embedding_dim " + std::to_string(rd) + " with head size " + std::to_string(hd));
  const int64_t half = rd / 2;
  if (C.dims.empty() || C.dims.back() != half) c.bad("cos_cache last dimension must be " + std::to_string(half));
  if (pos) {
    if (pos->data_type != ox::kInt64 && pos->data_type != ox::kInt32) c.bad("position_ids must be integer");
    if (pos->dims != std::vector<int64_t>{B, T}) c.bad("position_ids " + dims_str(pos->dims) + ", expected " + dims_str({B, T}));
    if (C.dims.size() != 2) c.bad("cos_cache must be 2-D with position_ids");
  } else if (C.dims != std::vector<int64_t>{B, T, half}) {
    c.bad("cos_cache " + dims_str(C.dims) + ", expected " + dims_str({B, T, half}) + " without position_ids");
  }
  auto xi = [&](int64_t b, int64_t t, int64_t h, int64_t j) {
    return four ? ((b * H + h) * T + t) * hd + j : ((b * T + t) * H + h) * hd + j;
  };
  Out o;
  o.dtype = X.data_type, o.dims = X.dims;
  o.v = X.floats;  // the pass-through part
  const int64_t W = H * rd;
  std::vector<double> row(static_cast<size_t>(W));
  std::vector<int16_t> q(static_cast<size_t>(W)), y(static_cast<size_t>(W)), table(static_cast<size_t>(rd));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t crow;
      if (pos) {
        crow = pos->ints[size_t(b * T + t)];
        if (crow < 0 || crow >= C.dims[0]) c.bad("position id " + std::to_string(crow) + " outside cos_cache");
      } else {
        crow = b * T + t;
      }
      for (int64_t i = 0; i < half; ++i) {
        const double cv = C.floats[size_t(crow * half + i)], sv = S.floats[size_t(crow * half + i)];
        if (std::fabs(cv) >= 2 || std::fabs(sv) >= 2) throw Unsupported("cos/sin values outside Q14 int16");
        table[size_t(2 * i)] = int16_t(rne(cv * 16384)), table[size_t(2 * i + 1)] = int16_t(rne(sv * 16384));
      }
      // Gather: pair i of head h -> (a, b) at kernel positions 2i, 2i+1.
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t ja = inter ? 2 * i : i, jb = inter ? 2 * i + 1 : i + half;
          row[size_t(h * rd + 2 * i)] = X.floats[size_t(xi(b, t, h, ja))];
          row[size_t(h * rd + 2 * i + 1)] = X.floats[size_t(xi(b, t, h, jb))];
        }
      fk::RowScale xs = quant_row16(row.data(), W, q.data()), ys;
      fk::RopeArgs a{q.data(), W, int(rd), table.data(), 1, 0, &xs, y.data(), &ys};
      llm(c).rope(a, 0, 1);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t ja = inter ? 2 * i : i, jb = inter ? 2 * i + 1 : i + half;
          o.v[size_t(xi(b, t, h, ja))] = deq(y[size_t(h * rd + 2 * i)], ys);
          o.v[size_t(xi(b, t, h, jb))] = deq(y[size_t(h * rd + 2 * i + 1)], ys);
        }
    }
  OpResult r;
  r.outs.push_back(std::move(o));
  r.exact = false;
  r.notes = std::string("path=llm/") + llm(c).name + ":rope";
  return r;
}

// ---- Softmax / LogSoftmax / LayerNormalization / GroupNormalization (llm family) ----------------

// The rows of `axis` (opset >= 13) or of the flattened [prod(dims[:axis]), prod(dims[axis:])]
// (opset < 13): index lists of each row.
struct AxisRows {
  int64_t rows = 0, len = 0, inner = 1;
  int64_t at(int64_t r, int64_t i) const {   // element i of row r
    const int64_t outer = r / inner, in = r % inner;
    return (outer * len + i) * inner + in;
  }
};

int64_t opset_of(const Ctx& c) { return c.opset; }

OpResult softmax_op(const Ctx& c, bool log) {
  need_float(c, 0);
  const Tensor& X = c.req(0);
  const int64_t opset = opset_of(c);
  AxisRows ar;
  if (X.dims.empty()) {
    ar.rows = 1, ar.len = 1;
  } else {
    const int axis = norm_axis(c, c.attr_i("axis", opset >= 13 ? -1 : 1), X.dims.size());
    if (opset >= 13) {
      ar.len = X.dims[size_t(axis)], ar.inner = prod(X.dims, size_t(axis) + 1);
      ar.rows = prod(X.dims, 0, size_t(axis)) * ar.inner;
    } else {
      ar.len = prod(X.dims, size_t(axis)), ar.rows = prod(X.dims, 0, size_t(axis));
    }
  }
  const int64_t n = ar.len;
  if (n > (int64_t{1} << 24)) throw Unsupported("softmax rows above 2^24 elements");
  // Each row as int16 with a per-row offset (the zero point of an asymmetric quantization: softmax
  // and log-softmax do not depend on it) and a row scale: x = off + q * unit.
  std::vector<int16_t> q(static_cast<size_t>(ar.rows * n));
  std::vector<fk::RowScale> xs(static_cast<size_t>(ar.rows));
  std::vector<double> row(static_cast<size_t>(n));
  for (int64_t r = 0; r < ar.rows; ++r) {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      row[size_t(i)] = X.floats[size_t(ar.at(r, i))];
      if (!std::isfinite(row[size_t(i)])) throw Unsupported("non-finite softmax input");
      lo = std::min(lo, row[size_t(i)]), hi = std::max(hi, row[size_t(i)]);
    }
    const double off = (lo + hi) / 2;
    for (double& v : row) v -= off;
    xs[size_t(r)] = quant_row16(row.data(), n, q.data() + r * n);
  }
  const int out = log ? fk::kLogSoftmaxI16 : fk::kSoftmaxU16;
  std::vector<uint16_t> y(q.size());
  fk::SoftmaxArgs a{};
  a.x = q.data(), a.in_bits = 16, a.n = n, a.xs = xs.data(), a.xs_stride = 1, a.valid = nullptr;
  a.clip_q16 = int64_t{1} << 40, a.out = out, a.y = y.data();
  Aligned scratch(fk::softmax_scratch(n));
  llm(c).softmax(a, 0, ar.rows, scratch.p);
  Out o;
  o.dtype = X.data_type, o.dims = X.dims;
  o.v.resize(X.floats.size());
  for (int64_t r = 0; r < ar.rows; ++r)
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t v = y[size_t(r * n + i)];
      o.v[size_t(ar.at(r, i))] = to_type(X.data_type, log ? std::ldexp(double(int16_t(v)), -10) : std::ldexp(double(v), -16));
    }
  OpResult res;
  res.outs.push_back(std::move(o));
  res.exact = false;
  res.notes = std::string("path=llm/") + llm(c).name + (log ? ":softmax(log,i16 Q10)" : ":softmax(u16)");
  return res;
}

// gamma / beta (doubles per channel) -> gm, bo with one exponent ae (llm.h layernorm).
void fold_affine(const std::vector<double>& g, const std::vector<double>& b, std::vector<int32_t>* gm,
                 std::vector<int32_t>* bo, int* ae) {
  double gmax = 0, bmax = 0;
  for (double v : g) gmax = std::max(gmax, std::fabs(v));
  for (double v : b) bmax = std::max(bmax, std::fabs(v));
  int e = 40;
  if (gmax > 0) { int x; std::frexp(gmax, &x); e = std::min(e, 15 - x); }      // |gm| < 2^15
  if (bmax > 0) { int x; std::frexp(bmax, &x); e = std::min(e, 30 - x); }      // |bo| < 2^30
  if (e < -20) throw Unsupported("LayerNorm scale / bias too large");
  *ae = e;
  gm->clear(), bo->clear();
  for (double v : g) gm->push_back(int32_t(rne(std::ldexp(v, e))));
  for (double v : b) bo->push_back(int32_t(rne(std::ldexp(v, e))));
}

void eps_dyadic(double eps, int32_t* m, int* e) {
  *m = 0, *e = 0;
  if (!(eps > 0)) return;
  int x;
  std::frexp(eps, &x);
  *e = 31 - x;
  double mv = std::floor(std::ldexp(eps, *e) + 0.5);
  if (mv >= 2147483648.0) mv /= 2, --*e;
  *m = int32_t(mv);
  if (*e < -62 || *e > 124) throw Unsupported("epsilon outside the kernel's range");
}

// Rows [M][D] of reals through the layernorm kernel (int16 in, int16 out), with per-channel affine.
Out layernorm_rows(const Ctx& c, const std::vector<double>& x, int64_t M, int64_t D, int64_t groups, int64_t inner,
                   const std::vector<double>& g, const std::vector<double>& b, double eps, int dtype,
                   const std::vector<int64_t>& dims, std::vector<fk::LnStats>* st, std::vector<fk::RowScale>* xsv) {
  if (D > (int64_t{1} << 24)) throw Unsupported("normalized size above 2^24");
  std::vector<int16_t> q(x.size()), y(x.size());
  std::vector<fk::RowScale> xs(static_cast<size_t>(M)), ys(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) xs[size_t(m)] = quant_row16(x.data() + m * D, D, q.data() + m * D);
  std::vector<int32_t> gm, bo;
  int ae = 0;
  fold_affine(g, b, &gm, &bo, &ae);
  fk::LayernormArgs a{};
  a.x = q.data(), a.in_bits = 16, a.d = D, a.xs = xs.data(), a.xs_stride = 1;
  eps_dyadic(eps, &a.eps_m, &a.eps_e);
  a.gm = gm.data(), a.bo = bo.data(), a.ae = ae, a.groups = groups, a.inner = inner, a.qmax = 32767;
  a.y = y.data(), a.ys = ys.data();
  st->assign(size_t(M), fk::LnStats{});
  a.stats = st->data();
  Aligned scratch(fk::layernorm_scratch(D));
  llm(c).layernorm(a, 0, M, scratch.p);
  *xsv = xs;
  Out o;
  o.dtype = dtype, o.dims = dims;
  o.v.resize(x.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < D; ++i) o.v[size_t(m * D + i)] = to_type(dtype, deq(y[size_t(m * D + i)], ys[size_t(m)]));
  return o;
}

OpResult layernorm_op(const Ctx& c) {
  need_float(c, 0);
  need_float(c, 1);
  const Tensor& X = c.req(0);
  if (X.dims.empty()) c.bad("X must have rank >= 1");
  const int axis = norm_axis(c, c.attr_i("axis", -1), X.dims.size());
  const int64_t M = prod(X.dims, 0, size_t(axis)), D = prod(X.dims, size_t(axis));
  const std::vector<int64_t> nd(X.dims.begin() + axis, X.dims.end());
  const std::vector<double> g = broadcast(c, c.req(1), nd, "Scale");
  std::vector<double> b(g.size(), 0.0);
  if (c.opt(2)) { need_float(c, 2); b = broadcast(c, c.req(2), nd, "B"); }
  std::vector<fk::LnStats> st;
  std::vector<fk::RowScale> xs;
  OpResult r;
  r.outs.push_back(layernorm_rows(c, X.floats, M, D, 1, 1, g, b, c.attr_f("epsilon", 1e-5), X.data_type, X.dims, &st, &xs));
  // Mean and InvStdDev (shape dims[:axis] + [1] * (rank - axis)) from the kernel's integer row
  // statistics, in the input's units (llm.h LnStats).
  std::vector<int64_t> sd(X.dims.begin(), X.dims.begin() + axis);
  sd.resize(X.dims.size(), 1);
  const int st_type = c.attr_i("stash_type", 1) == 1 ? ox::kFloat : X.data_type;
  Out mean, inv;
  mean.dtype = inv.dtype = st_type, mean.dims = inv.dims = sd;
  for (int64_t m = 0; m < M; ++m) {
    const fk::LnStats& s = st[size_t(m)];
    const double unit = deq(1, xs[size_t(m)]);
    mean.v.push_back(to_type(st_type, (double(s.x0) + std::ldexp(double(s.mu), s.c)) * unit));
    const double sd_real = std::ldexp(double(s.r), s.c + s.e) * unit;
    inv.v.push_back(to_type(st_type, sd_real > 0 ? 1.0 / sd_real : INFINITY));
  }
  r.outs.push_back(std::move(mean));
  r.outs.push_back(std::move(inv));
  r.exact = false;
  r.notes = std::string("path=llm/") + llm(c).name + ":layernorm(i16)";
  return r;
}

OpResult groupnorm_op(const Ctx& c) {
  need_float(c, 0), need_float(c, 1), need_float(c, 2);
  const Tensor& X = c.req(0);
  if (X.dims.size() < 2) c.bad("X must have rank >= 2");
  const int64_t G = c.attr_i("num_groups", 0), N = X.dims[0], C = X.dims[1], HW = prod(X.dims, 2);
  if (G < 1 || C % G) c.bad("num_groups " + std::to_string(G) + " does not divide the channels " + std::to_string(C));
  const Tensor& S = c.req(1);
  const Tensor& B = c.req(2);
  if (S.numel() != B.numel()) c.bad("scale and bias sizes differ");
  std::vector<double> g(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  for (int64_t ch = 0; ch < C; ++ch) {
    // opset 21: one value per channel; opset 18: one per group
    const int64_t k = S.numel() == C ? ch : S.numel() == G ? ch / (C / G) : -1;
    if (k < 0) c.bad("scale has " + std::to_string(S.numel()) + " elements, expected " + std::to_string(C) + " (or " + std::to_string(G) + ")");
    g[size_t(ch)] = S.at(k), b[size_t(ch)] = B.at(k);
  }
  std::vector<fk::LnStats> st;
  std::vector<fk::RowScale> xs;
  OpResult r;
  r.outs.push_back(layernorm_rows(c, X.floats, N * G, (C / G) * HW, G, HW, g, b, c.attr_f("epsilon", 1e-5), X.data_type, X.dims, &st, &xs));
  r.exact = false;
  r.notes = std::string("path=llm/") + llm(c).name + ":layernorm(groups=" + std::to_string(G) + ",i16)";
  return r;
}

// ---- DULUT activations (lut family) ----------------------------------------------------------

// x -> int16 per tensor (in_scale = max|x| / 32767), the DULUT kernel with tables fitted now for
// this input range (k1 = k2 = 6: 512 table bytes; output scale = max |f| over the range / 32767),
// dequantized. The fit's exact max error over every int16 code goes into the notes.
OpResult dulut_op(const Ctx& c, fq::quant::ActFn fn, const char* name) {
  need_float(c, 0);
  const Tensor& X = c.req(0);
  double A = 0;
  for (double v : X.floats) {
    if (!std::isfinite(v)) throw Unsupported("non-finite input");
    A = std::max(A, std::fabs(v));
  }
  if (A == 0) A = 1;
  fq::quant::DulutSpec s;
  s.fn = fn, s.in_bits = 16, s.out_bits = 16, s.k1 = 6, s.k2 = 6;
  s.in_scale = A / 32767;
  double F = 0;
  for (int i = -32768; i <= 32767; ++i) F = std::max(F, std::fabs(fq::quant::act_eval(fn, i * s.in_scale)));
  if (!std::isfinite(F) || F > 1e30) throw Unsupported("function value out of range");
  s.out_scale = (F > 0 ? F : 1) / 32767;
  const fq::quant::DulutTables t = fq::quant::fit_dulut(s);
  fk::LutTable kt;
  if (!fq::quant::to_kernel_table(t, &kt)) throw Unsupported("fitted table does not fit the kernel");
  const fq::quant::ErrStats es = fq::quant::dulut_error(s, t);
  std::vector<int16_t> q(X.floats.size()), y(X.floats.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = int16_t(std::min(32767.0, std::max(-32768.0, rne(X.floats[i] / s.in_scale))));
  const fk::LutKernel* k = fk::lut_kernel(c.isa);
  k->run(kt, q.data(), int64_t(q.size()), y.data());
  Out o;
  o.dtype = X.data_type, o.dims = X.dims;
  for (int16_t v : y) o.v.push_back(to_type(X.data_type, double(v) * s.out_scale));
  OpResult r;
  r.outs.push_back(std::move(o));
  r.exact = false;
  char buf[96];
  std::snprintf(buf, sizeof buf, ":dulut(%s,i16,6+6,fit_max=%.2fLSB)", name, es.max);
  r.notes = std::string("path=lut/") + k->name + buf;
  return r;
}

OpResult gelu_op(const Ctx& c) {
  const std::string ap = c.attr_s("approximate", "none");
  if (ap == "none") return dulut_op(c, fq::quant::ActFn::gelu_erf, "gelu");
  if (ap == "tanh") return dulut_op(c, fq::quant::ActFn::gelu_tanh, "gelu_tanh");
  c.bad("approximate '" + ap + "'");
}

// ---- LinearAttention / CausalConvWithState (opset 27) ----------------------------------------------

// A positive real as a RowScale (mant in [2^14, 2^15)): the boundary's dyadic of a scale factor.
fk::RowScale dyadic15(double s) {
  if (!(s > 0) || !std::isfinite(s)) return fk::RowScale{};
  int e;
  std::frexp(s, &e);                    // s in [2^(e-1), 2^e)
  int exp = 15 - e;
  double mant = std::floor(std::ldexp(s, exp) + 0.5);
  if (mant >= 32768) mant = 16384, --exp;
  return fk::RowScale{int32_t(mant), exp};
}

// 2^E with max|v| * 2^E < 2^bits (E = 0 for an all-zero tensor).
int pow2_unit(double amax, int bits) {
  if (!(amax > 0) || !std::isfinite(amax)) return 0;
  int e;
  std::frexp(amax, &e);                 // amax in [2^(e-1), 2^e)
  return bits - e;
}

void need_rank(const Ctx& c, size_t i, size_t rank, const char* what) {
  if (c.req(i).dims.size() != rank)
    c.bad(std::string(what) + " must have rank " + std::to_string(rank) + ", is " + dims_str(c.req(i).dims));
}

// LinearAttention on the linattn kernel: q, k, v (and the retrieval key erase_gate (.) k) as int16
// rows per token with row scales, decay in Q20, beta in Q15, the state int32 in a power-of-two unit
// calibrated by a float pass over the inputs (what a quantizer does offline), one kernel call per
// batch element (its T tokens), then output and state dequantized.
OpResult linear_attention_op(const Ctx& c) {
  for (size_t i = 0; i < 7; ++i)
    if (c.opt(i)) need_float(c, i);
  need_rank(c, 0, 3, "query"), need_rank(c, 1, 3, "key"), need_rank(c, 2, 3, "value");
  const Tensor &Q = c.req(0), &K = c.req(1), &V = c.req(2);
  const Tensor *P = c.opt(3), *D = c.opt(4), *Bt = c.opt(5), *Er = c.opt(6);
  const int64_t Hq = c.attr_i("q_num_heads", 0), Hk = c.attr_i("kv_num_heads", 0);
  if (Hq <= 0 || Hk <= 0 || Hq % Hk != 0)
    c.bad("q_num_heads (" + std::to_string(Hq) + ") must be a positive multiple of kv_num_heads (" + std::to_string(Hk) + ")");
  const std::string rule = c.attr_s("update_rule", "gated_delta");
  if (rule != "linear" && rule != "gated" && rule != "delta" && rule != "gated_delta") c.bad("update_rule '" + rule + "'");
  const bool gating = rule == "gated" || rule == "gated_delta", delta = rule == "delta" || rule == "gated_delta";
  if (gating != (D != nullptr)) c.bad("update_rule '" + rule + (gating ? "' needs" : "' forbids") + " the decay input");
  if (delta != (Bt != nullptr)) c.bad("update_rule '" + rule + (delta ? "' needs" : "' forbids") + " the beta input");
  if (Er && !delta) c.bad("update_rule '" + rule + "' forbids the erase_gate input");
  const int64_t B = Q.dims[0], T = Q.dims[1];
  if (K.dims[0] != B || V.dims[0] != B || K.dims[1] != T || V.dims[1] != T)
    c.bad("query " + dims_str(Q.dims) + ", key " + dims_str(K.dims) + " and value " + dims_str(V.dims) + " differ in (B, T)");
  if (Q.dims[2] % Hq != 0 || V.dims[2] % Hk != 0) c.bad("query / value last dims not divisible by the head counts");
  const int64_t dk = Q.dims[2] / Hq, dv = V.dims[2] / Hk;
  if (K.dims[2] != Hk * dk) c.bad("key " + dims_str(K.dims) + ": last dim must be kv_num_heads * d_k = " + std::to_string(Hk * dk));
  if (P && P->dims != std::vector<int64_t>{B, Hk, dk, dv})
    c.bad("past_state " + dims_str(P->dims) + " must be " + dims_str({B, Hk, dk, dv}));
  bool per_key = false;
  if (D) {
    need_rank(c, 4, 3, "decay");
    if (D->dims[0] != B || D->dims[1] != T || (D->dims[2] != Hk && D->dims[2] != Hk * dk))
      c.bad("decay " + dims_str(D->dims) + " must be [B, T, kv_num_heads] or [B, T, kv_num_heads * d_k]");
    per_key = D->dims[2] != Hk;
  }
  if (Bt) {
    need_rank(c, 5, 3, "beta");
    if (Bt->dims[0] != B || Bt->dims[1] != T || (Bt->dims[2] != Hk && Bt->dims[2] != 1))
      c.bad("beta " + dims_str(Bt->dims) + " must be [B, T, kv_num_heads] or [B, T, 1]");
  }
  if (Er) {
    need_rank(c, 6, 3, "erase_gate");
    if (Er->dims != K.dims) c.bad("erase_gate " + dims_str(Er->dims) + " must be shaped as key " + dims_str(K.dims));
  }
  if (dk < 1 || dv < 1 || dk > 1024 || dv > 1024) throw Unsupported("d_k or d_v outside [1, 1024]");
  const double scale = c.attr_f("scale", 0.0) == 0.0 ? 1.0 / std::sqrt(double(dk)) : c.attr_f("scale", 0.0);
  if (!(scale > 0)) throw Unsupported("scale <= 0");
  const int64_t grp = Hq / Hk, bl = Bt ? Bt->dims[2] : 1, dl = D ? D->dims[2] : 1;
  auto dec = [&](int64_t row, int64_t g, int64_t i) { return D->floats[size_t(row * dl + (per_key ? g * dk + i : g))]; };
  auto bet = [&](int64_t row, int64_t g) { return Bt->floats[size_t(row * bl + (bl == 1 ? 0 : g))]; };
  auto akey = [&](int64_t idx) { return Er ? Er->floats[size_t(idx)] * K.floats[size_t(idx)] : K.floats[size_t(idx)]; };
  for (int64_t i = 0; D && i < D->numel(); ++i)
    if (!(D->floats[size_t(i)] <= 0)) throw Unsupported("decay > 0 (a growing state; the gate is exp(decay) <= 1)");
  for (int64_t i = 0; Bt && i < Bt->numel(); ++i)
    if (!(std::fabs(Bt->floats[size_t(i)]) <= 2)) throw Unsupported("|beta| > 2 (beta is Q15 in [-2, 2])");
  // Calibration of the state unit: max |S| over every step of the float recurrence.
  double smax = 0;
  {
    std::vector<double> S(static_cast<size_t>(Hk * dk * dv)), r(static_cast<size_t>(dv));
    for (int64_t b = 0; b < B; ++b) {
      for (size_t i = 0; i < S.size(); ++i) S[i] = P ? P->floats[size_t(b * Hk * dk * dv) + i] : 0, smax = std::max(smax, std::fabs(S[i]));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t g = 0; g < Hk; ++g) {
          const int64_t row = b * T + t;
          double* s = &S[size_t(g * dk * dv)];
          if (D)
            for (int64_t i = 0; i < dk; ++i)
              for (int64_t j = 0; j < dv; ++j) s[i * dv + j] *= std::exp(dec(row, g, i));
          for (int64_t j = 0; j < dv; ++j) {
            double rr = 0;
            for (int64_t i = 0; Bt && i < dk; ++i) rr += akey(row * Hk * dk + g * dk + i) * s[i * dv + j];
            const double vv = V.floats[size_t(row * Hk * dv + g * dv + j)];
            r[size_t(j)] = Bt ? bet(row, g) * (vv - rr) : vv;
          }
          for (int64_t i = 0; i < dk; ++i)
            for (int64_t j = 0; j < dv; ++j) {
              s[i * dv + j] += K.floats[size_t(row * Hk * dk + g * dk + i)] * r[size_t(j)];
              smax = std::max(smax, std::fabs(s[i * dv + j]));
            }
        }
    }
  }
  const int Es = smax > 0 ? pow2_unit(smax, 29) : 20;   // max|S| 2^Es < 2^29: 4x headroom in int32
  // Integer inputs.
  const int64_t M = B * T;
  std::vector<int16_t> q(static_cast<size_t>(M * Hq * dk)), k(static_cast<size_t>(M * Hk * dk)), v(static_cast<size_t>(M * Hk * dv)), a;
  std::vector<fk::RowScale> qs(static_cast<size_t>(M)), ks(static_cast<size_t>(M)), vs(static_cast<size_t>(M)), as;
  std::vector<double> arow(static_cast<size_t>(Hk * dk));
  if (Er) a.resize(k.size()), as.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    qs[size_t(m)] = quant_row16(Q.floats.data() + m * Hq * dk, Hq * dk, q.data() + m * Hq * dk);
    ks[size_t(m)] = quant_row16(K.floats.data() + m * Hk * dk, Hk * dk, k.data() + m * Hk * dk);
    vs[size_t(m)] = quant_row16(V.floats.data() + m * Hk * dv, Hk * dv, v.data() + m * Hk * dv);
    if (Er) {
      for (int64_t i = 0; i < Hk * dk; ++i) arow[size_t(i)] = akey(m * Hk * dk + i);
      as[size_t(m)] = quant_row16(arow.data(), Hk * dk, a.data() + m * Hk * dk);
    }
  }
  constexpr int kDecayFrac = 20;
  std::vector<int32_t> dq, bq;
  if (D) {
    dq.resize(static_cast<size_t>(D->numel()));
    for (size_t i = 0; i < dq.size(); ++i) dq[i] = int32_t(std::max(-2147483647.0, rne(std::ldexp(D->floats[i], kDecayFrac))));
  }
  if (Bt) {
    bq.resize(static_cast<size_t>(M * Hk));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t g = 0; g < Hk; ++g) bq[size_t(m * Hk + g)] = int32_t(rne(std::ldexp(bet(m, g), 15)));
  }
  const fk::LinattnKernel& kern = *fk::linattn_kernel(c.isa);
  std::vector<int32_t> st(static_cast<size_t>(Hk * dk * dv));
  std::vector<int16_t> y(static_cast<size_t>(M * Hq * dv));
  std::vector<fk::RowScale> ys(static_cast<size_t>(M));
  std::vector<int64_t> work(static_cast<size_t>(T * Hq * dv));
  Out o, ps;
  o.dtype = Q.data_type, o.dims = {B, T, Hq * dv};
  o.v.resize(y.size());
  ps.dtype = P ? P->data_type : Q.data_type, ps.dims = {B, Hk, dk, dv};
  ps.v.resize(size_t(B) * st.size());
  for (int64_t b = 0; b < B; ++b) {
    for (size_t i = 0; i < st.size(); ++i)
      st[i] = P ? fq::k::saturate<int32_t>(int64_t(rne(std::ldexp(P->floats[size_t(b) * st.size() + i], Es)))) : 0;
    const int64_t m0 = b * T;
    fk::LinattnArgs A{};
    A.q = q.data() + m0 * Hq * dk, A.qs = qs.data() + m0;
    A.k = k.data() + m0 * Hk * dk, A.ks = ks.data() + m0;
    A.v = v.data() + m0 * Hk * dv, A.vs = vs.data() + m0;
    A.a = Er ? a.data() + m0 * Hk * dk : nullptr, A.as = Er ? as.data() + m0 : nullptr;
    A.decay = D ? dq.data() + m0 * dl : nullptr, A.decay_per_key = per_key, A.decay_frac = kDecayFrac;
    A.beta = Bt ? bq.data() + m0 * Hk : nullptr;
    A.rows = T, A.q_heads = int(Hq), A.kv_heads = int(Hk), A.dk = int(dk), A.dv = int(dv);
    A.state_exp = Es, A.scale = dyadic15(scale);
    A.state = st.data(), A.y = y.data() + m0 * Hq * dv, A.ys = ys.data() + m0, A.work = work.data();
    kern.heads(A, 0, Hk);
    kern.out(A, 0, T);
    for (size_t i = 0; i < st.size(); ++i) ps.v[size_t(b) * st.size() + i] = std::ldexp(double(st[i]), -Es);
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < Hq * dv; ++j) o.v[size_t(m * Hq * dv + j)] = deq(y[size_t(m * Hq * dv + j)], ys[size_t(m)]);
  (void)grp;
  OpResult res;
  res.outs.push_back(std::move(o));
  res.outs.push_back(std::move(ps));
  res.exact = false;
  res.notes = std::string("path=linattn/") + kern.name + ":" + rule + "(Es=" + std::to_string(Es) + ")";
  return res;
}

// CausalConvWithState (activation silu/swish) on the ssm family's conv: per batch element, x as
// int16 rows [T][C] (one row scale per time step; ONNX's [C, T] layout transposed), weights int16
// in 2^-Ew, the carried state int32 [K-1][C] in 2^-Ex, and the kernel's scan-input output uf
// (int32 silu(z) in 2^-Eu) as the result; present_state = the kernel's state after the call.
OpResult causal_conv_op(const Ctx& c) {
  for (size_t i = 0; i < 4; ++i)
    if (c.opt(i)) need_float(c, i);
  need_rank(c, 0, 3, "input"), need_rank(c, 1, 3, "weight");
  const Tensor &X = c.req(0), &W = c.req(1);
  const Tensor *Bi = c.opt(2), *P = c.opt(3);
  const int64_t B = X.dims[0], C = X.dims[1], T = X.dims[2], Kt = W.dims[2];
  if (W.dims[0] != C || W.dims[1] != 1) c.bad("weight " + dims_str(W.dims) + " must be [channels, 1, k] with channels = " + std::to_string(C));
  if (Bi && Bi->dims != std::vector<int64_t>{C}) c.bad("bias " + dims_str(Bi->dims) + " must be [" + std::to_string(C) + "]");
  if (P && P->dims != std::vector<int64_t>{B, C, Kt - 1}) c.bad("past_state " + dims_str(P->dims) + " must be " + dims_str({B, C, Kt - 1}));
  const std::string act = c.attr_s("activation", "none");
  if (act != "none" && act != "silu" && act != "swish") c.bad("activation '" + act + "'");
  if (act == "none") throw Unsupported("activation none (the ssm conv kernel fuses SiLU)");
  if (Kt < 2 || Kt > 64) throw Unsupported("kernel size outside [2, 64]");
  const fk::SsmKernel* kern = fk::ssm_kernel(c.isa);
  if (!kern) throw Unsupported("no ssm kernel");
  double xmax = 0, wmax = 0, bmax = 0, wsum = 0;
  for (double v : X.floats) xmax = std::max(xmax, std::fabs(v));
  for (int64_t i = 0; P && i < P->numel(); ++i) xmax = std::max(xmax, std::fabs(P->floats[size_t(i)]));
  for (double v : W.floats) wmax = std::max(wmax, std::fabs(v));
  for (int64_t ch = 0; ch < C; ++ch) {
    double s = 0;
    for (int64_t j = 0; j < Kt; ++j) s += std::fabs(W.floats[size_t(ch * Kt + j)]);
    wsum = std::max(wsum, s + (Bi ? std::fabs(Bi->floats[size_t(ch)]) : 0));
  }
  for (int64_t i = 0; Bi && i < C; ++i) bmax = std::max(bmax, std::fabs(Bi->floats[size_t(i)]));
  const int Ew = pow2_unit(wmax, 15);                  // max|w| 2^Ew < 2^15
  int Ex = pow2_unit(xmax, 30);                        // max|x| 2^Ex < 2^30 (the int32 state)
  if (bmax > 0) Ex = std::min(Ex, pow2_unit(bmax, 30) - Ew);   // bias 2^(Ex+Ew) < 2^30
  const int Eu = pow2_unit(wsum * std::max(xmax, 1e-30), 30);  // |silu(z)| <= |z| <= sum|w| max|x| + |b|
  std::vector<int16_t> w(static_cast<size_t>(C * Kt)), xq(static_cast<size_t>(T * C));
  for (size_t i = 0; i < w.size(); ++i) w[i] = int16_t(std::max(-32767.0, std::min(32767.0, rne(std::ldexp(W.floats[i], Ew)))));
  std::vector<int32_t> bias;
  if (Bi) {
    bias.resize(static_cast<size_t>(C));
    for (int64_t i = 0; i < C; ++i) bias[size_t(i)] = fq::k::saturate<int32_t>(int64_t(rne(std::ldexp(Bi->floats[size_t(i)], Ex + Ew))));
  }
  std::vector<fk::RowScale> xs(static_cast<size_t>(T)), us(static_cast<size_t>(T));
  std::vector<int32_t> st(static_cast<size_t>((Kt - 1) * C)), uf(static_cast<size_t>(T * C));
  std::vector<int8_t> u(static_cast<size_t>(T * C));
  std::vector<int64_t> work(static_cast<size_t>(T * C));
  std::vector<double> row(static_cast<size_t>(C));
  Out o, ps;
  o.dtype = X.data_type, o.dims = X.dims, o.v.resize(static_cast<size_t>(X.numel()));
  ps.dtype = P ? P->data_type : X.data_type, ps.dims = {B, C, Kt - 1}, ps.v.resize(static_cast<size_t>(B * C * (Kt - 1)));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t ch = 0; ch < C; ++ch) row[size_t(ch)] = X.floats[size_t((b * C + ch) * T + t)];
      xs[size_t(t)] = quant_row16(row.data(), C, xq.data() + t * C);
    }
    for (int64_t j = 0; j < Kt - 1; ++j)
      for (int64_t ch = 0; ch < C; ++ch)
        st[size_t(j * C + ch)] = P ? fq::k::saturate<int32_t>(int64_t(rne(std::ldexp(P->floats[size_t((b * C + ch) * (Kt - 1) + j)], Ex)))) : 0;
    fk::SsmConvArgs A{};
    A.x = xq.data(), A.xs = xs.data(), A.rows = T, A.channels = C, A.taps = int(Kt);
    A.w = w.data(), A.bias = Bi ? bias.data() : nullptr;
    A.x_exp = Ex, A.w_exp = Ew, A.u_exp = Eu, A.qmax = 127;
    A.state = st.data(), A.u = u.data(), A.us = us.data(), A.uf = uf.data(), A.work = work.data();
    kern->conv(A, 0, C);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t ch = 0; ch < C; ++ch) o.v[size_t((b * C + ch) * T + t)] = std::ldexp(double(uf[size_t(t * C + ch)]), -Eu);
    for (int64_t j = 0; j < Kt - 1; ++j)
      for (int64_t ch = 0; ch < C; ++ch) ps.v[size_t((b * C + ch) * (Kt - 1) + j)] = std::ldexp(double(st[size_t(j * C + ch)]), -Ex);
  }
  OpResult res;
  res.outs.push_back(std::move(o));
  res.outs.push_back(std::move(ps));
  res.exact = false;
  res.notes = std::string("path=ssm/") + kern->name + ":conv+silu(Ex=" + std::to_string(Ex) + ",Ew=" + std::to_string(Ew) +
              ",Eu=" + std::to_string(Eu) + ")";
  return res;
}

// ---- op table ------------------------------------------------------------------------------

struct OpEntry {
  const char* op;
  std::function<OpResult(const Ctx&)> fn;
  double tol;   // float ops: |got - want| <= tol * max(1, max|want|); 0 = bit-exact
};

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> t = {
      {"MatMulInteger", [](const Ctx& c) { return matmul_op(c, false); }, 0},
      {"QLinearMatMul", [](const Ctx& c) { return matmul_op(c, true); }, 0},
      {"ConvInteger", [](const Ctx& c) { return conv_op(c, false); }, 0},
      {"QLinearConv", [](const Ctx& c) { return conv_op(c, true); }, 0},
      {"QuantizeLinear", quantize_op, 0},
      {"DequantizeLinear", dequantize_op, 0},
      {"DynamicQuantizeLinear", dynamic_quantize_op, 0},
      {"RMSNormalization", rmsnorm_op, 1.0 / 4096},
      {"SwiGLU", swiglu_op, 1.0 / 1024},
      {"Swish", [](const Ctx& c) { return swish_op(c, false); }, 1.0 / 1024},
      {"RotaryEmbedding", rope_op, 1.0 / 4096},
      {"Softmax", [](const Ctx& c) { return softmax_op(c, false); }, 1.0 / 4096},
      {"LogSoftmax", [](const Ctx& c) { return softmax_op(c, true); }, 1.0 / 1024},
      {"LayerNormalization", layernorm_op, 1.0 / 2048},
      {"GroupNormalization", groupnorm_op, 1.0 / 2048},
      {"Gelu", gelu_op, 1.0 / 1024},
      {"Sigmoid", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::sigmoid, "sigmoid"); }, 1.0 / 1024},
      {"Tanh", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::tanh, "tanh"); }, 1.0 / 1024},
      {"Softplus", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::softplus, "softplus"); }, 1.0 / 1024},
      {"Erf", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::erf, "erf"); }, 1.0 / 1024},
      {"Exp", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::exp_full, "exp_full"); }, 1.0 / 1024},
      {"HardSwish", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::hardswish, "hardswish"); }, 1.0 / 1024},
      {"Mish", [](const Ctx& c) { return dulut_op(c, fq::quant::ActFn::mish, "mish"); }, 1.0 / 1024},
      {"LinearAttention", linear_attention_op, 1.0 / 1024},
      {"CausalConvWithState", causal_conv_op, 1.0 / 1024},
  };
  return t;
}

// Ops the issue names, with no integer kernel in FQ yet (the reason printed).
const char* missing_kernel(const std::string& op) {
  static const std::map<std::string, const char*> m = {
      {"Attention", "ONNX Attention (masks, scale, GQA layouts) not mapped to the attention kernel"},
  };
  auto it = m.find(op);
  return it == m.end() ? nullptr : it->second;
}

// ---- running tests -------------------------------------------------------------------------

bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool is_file(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> list_dir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) throw BadInput(dir + ": cannot open folder: " + std::strerror(errno));
  std::vector<std::string> v;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") v.push_back(n);
  }
  closedir(d);
  std::sort(v.begin(), v.end());
  return v;
}

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Keeps messages one printable line whatever bytes a corrupt file put in a name.
std::string printable(const std::string& in) {
  std::string s = in;
  for (char& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
  return s;
}

std::string fmt_err(double e) {
  char b[32];
  if (e == 0) return "0";
  std::snprintf(b, sizeof b, "%.3g", e);
  return b;
}

struct Summary {
  int passed = 0, failed = 0, unsupported = 0;
  std::map<std::string, int> unsupported_ops;
  std::string out;   // stdout, printed at the end (nothing on stdout when an error stops the run)
};

void read_tensor_checked(const std::string& path, Tensor* t) {
  try {
    *t = ox::read_tensor(path);
  } catch (const ox::ParseError&) {
    throw;
  } catch (const ox::UnsupportedType& e) {
    throw Unsupported(e.what());
  }
}

// Checks a data file against the graph's declared type and shape.
void check_decl(const std::string& file, const Tensor& t, const ox::ValueInfo& vi) {
  if (vi.elem_type != 0 && t.data_type != vi.elem_type)
    throw BadInput(file + ": tensor is " + ox::dtype_name(t.data_type) + ", the graph declares '" + vi.name +
                   "' as " + ox::dtype_name(vi.elem_type));
  if (!vi.has_shape) return;
  bool ok = vi.dims.size() == t.dims.size();
  for (size_t i = 0; ok && i < t.dims.size(); ++i) ok = vi.dims[i] < 0 || vi.dims[i] == t.dims[i];
  if (!ok)
    throw BadInput(file + ": shape " + dims_str(t.dims) + " does not match the graph's '" + vi.name + "' " +
                   dims_str(vi.dims));
}

void run_test(const std::string& dir, fk::Isa isa, bool verbose, Summary* sum) {
  const std::string name = base_name(dir);
  ox::Model model;
  try {
    model = ox::read_model(dir + "/model.onnx");
  } catch (const ox::UnsupportedType& e) {
    sum->out += printable("UNSUPPORTED " + name + " ? " + e.what()) + "\n";
    ++sum->unsupported, ++sum->unsupported_ops["?"];
    return;
  }
  const ox::Graph& g = model.graph;
  std::string op = g.nodes.size() == 1 ? g.nodes[0].op_type : "graph";
  auto unsupported = [&](const std::string& why) {
    sum->out += printable("UNSUPPORTED " + name + " " + op + " (" + why + ")") + "\n";
    ++sum->unsupported, ++sum->unsupported_ops[printable(op)];
  };
  if (g.nodes.size() != 1) return unsupported(std::to_string(g.nodes.size()) + " nodes; only one-node tests");
  const ox::Node& node = g.nodes[0];
  if (!node.domain.empty() && node.domain != "ai.onnx") return unsupported("domain " + node.domain);
  const OpEntry* entry = nullptr;
  for (const OpEntry& e : op_table())
    if (node.op_type == e.op) entry = &e;
  if (!entry) {
    const char* why = missing_kernel(node.op_type);
    return unsupported(why ? why : "op not implemented by the runner");
  }
  // Graph inputs fed by data files: those that are not initializers, in order.
  std::map<std::string, const Tensor*> init;
  for (const Tensor& t : g.initializers) init[t.name] = &t;
  std::vector<const ox::ValueInfo*> feeds;
  for (const ox::ValueInfo& vi : g.inputs)
    if (!init.count(vi.name)) feeds.push_back(&vi);
  for (const ox::ValueInfo* vi : feeds)
    if (vi->elem_type == 0) return unsupported("graph input '" + vi->name + "' is not a tensor");
  std::vector<std::string> sets;
  for (const std::string& n : list_dir(dir))
    if (n.rfind("test_data_set_", 0) == 0 && is_dir(dir + "/" + n)) sets.push_back(n);
  if (sets.empty()) throw BadInput(dir + ": no test_data_set_* folder");
  double max_err = 0, tol_used = 0;
  bool pass = true;
  std::string notes, fail_why;
  int ties = 0, rne_diff = 0;
  int64_t rescaled = 0, mismatches = 0, compared = 0;
  for (const std::string& set : sets) {
    const std::string sd = dir + "/" + set;
    std::vector<Tensor> inputs(feeds.size()), expected;
    for (size_t i = 0; i < feeds.size(); ++i) {
      const std::string f = sd + "/input_" + std::to_string(i) + ".pb";
      if (!is_file(f)) throw BadInput(sd + ": missing input_" + std::to_string(i) + ".pb (the graph has " + std::to_string(feeds.size()) + " inputs)");
      try {
        read_tensor_checked(f, &inputs[i]);
      } catch (const Unsupported& e) {
        return unsupported(e.what());
      }
      check_decl(f, inputs[i], *feeds[i]);
    }
    if (is_file(sd + "/input_" + std::to_string(feeds.size()) + ".pb"))
      throw BadInput(sd + ": more input_N.pb files than graph inputs (" + std::to_string(feeds.size()) + ")");
    for (size_t i = 0;; ++i) {
      const std::string f = sd + "/output_" + std::to_string(i) + ".pb";
      if (!is_file(f)) break;
      if (i >= g.outputs.size()) throw BadInput(f + ": more output_N.pb files than graph outputs");
      expected.emplace_back();
      try {
        read_tensor_checked(f, &expected.back());
      } catch (const Unsupported& e) {
        return unsupported(e.what());
      }
      check_decl(f, expected.back(), g.outputs[i]);
    }
    if (expected.empty()) throw BadInput(sd + ": no output_0.pb");
    std::map<std::string, const Tensor*> values = init;
    for (size_t i = 0; i < feeds.size(); ++i) values[feeds[i]->name] = &inputs[i];
    Ctx ctx;
    ctx.node = &node, ctx.isa = isa, ctx.where = sd;
    for (const ox::OpsetId& os : model.opsets)
      if (os.domain.empty() || os.domain == "ai.onnx") ctx.opset = os.version;
    for (const std::string& in : node.inputs) {
      if (in.empty()) { ctx.in.push_back(nullptr); continue; }
      auto it = values.find(in);
      if (it == values.end()) throw BadInput(dir + "/model.onnx: node input '" + in + "' is neither a graph input nor an initializer");
      ctx.in.push_back(it->second);
    }
    OpResult res;
    try {
      res = entry->fn(ctx);
    } catch (const Unsupported& e) {
      return unsupported(e.what());
    }
    notes = res.notes;
    ties += res.ties, rne_diff += res.rne_diff, rescaled += res.rescaled;
    tol_used = entry->tol;
    // Compare each node output that is a graph output with data.
    for (size_t gi = 0; gi < expected.size(); ++gi) {
      const std::string& oname = g.outputs[gi].name;
      size_t ni = 0;
      while (ni < node.outputs.size() && node.outputs[ni] != oname) ++ni;
      if (ni == node.outputs.size() || ni >= res.outs.size())
        throw BadInput(dir + "/model.onnx: graph output '" + oname + "' is not an output of the node the runner computes");
      const Out& got = res.outs[ni];
      const Tensor& want = expected[gi];
      if (got.dims != want.dims && !(got.v.size() == 1 && want.numel() == 1)) {
        pass = false;
        fail_why = "output '" + oname + "' shape " + dims_str(got.dims) + ", expected " + dims_str(want.dims);
        continue;
      }
      if (got.dtype != want.data_type) {
        pass = false;
        fail_why = "output '" + oname + "' type " + ox::dtype_name(got.dtype) + ", expected " + ox::dtype_name(want.data_type);
        continue;
      }
      double wmax = 0;
      for (int64_t i = 0; i < want.numel(); ++i) wmax = std::max(wmax, std::fabs(want.at(i)));
      const double bound = entry->tol * std::max(1.0, wmax);
      for (int64_t i = 0; i < want.numel(); ++i) {
        const double w = want.at(i), v = got.v[size_t(i)];
        const bool both_nan = std::isnan(w) && std::isnan(v);
        const double e = both_nan ? 0 : std::fabs(v - w);
        const bool ok = both_nan || (entry->tol == 0 ? v == w : e <= bound);
        if (std::isnan(e)) pass = false;
        else max_err = std::max(max_err, e);
        ++compared;
        if (!ok) {
          ++mismatches;
          pass = false;
          if (fail_why.empty())
            fail_why = "output '" + oname + "'[" + std::to_string(i) + "] = " + fmt_err(v) + ", expected " + fmt_err(w);
        }
        if (verbose)
          std::fprintf(stderr, "%s %s[%lld] got %.9g want %.9g\n", sd.c_str(), oname.c_str(), (long long)i, v, w);
      }
    }
  }
  std::string line = std::string(pass ? "PASS " : "FAIL ") + name + " " + op + " max_err=" + fmt_err(max_err);
  if (tol_used == 0) line += " exact=" + std::to_string(compared - mismatches) + "/" + std::to_string(compared);
  else line += " tol=" + fmt_err(tol_used) + "*max(1,max|y|)";
  if (rescaled) {
    line += " ties=" + std::to_string(ties);
    if (rne_diff) line += " rne_diff=" + std::to_string(rne_diff) + " (half-up vs ONNX half-even on ties)";
  }
  line += " " + notes;
  if (!pass && !fail_why.empty()) line += " : " + fail_why;
  sum->out += printable(line) + "\n";
  (pass ? sum->passed : sum->failed)++;
}

}  // namespace

int cmd_conformance(const std::vector<std::string>& argv, const Global& gl) {
  const Args a(argv, {{"verbose", 'v', false}}, 1 << 20);
  if (a.help) {
    std::fputs(kConformanceUsage, stdout);
    return 0;
  }
  if (a.positional.empty()) throw UsageError("needs at least one DIR");
  std::string isa_name = a.str("isa", gl.isa);
  fk::Isa isa;
  if (isa_name.empty()) {
    isa = fk::isa_from_env();
  } else {
    if (!fk::parse_isa(isa_name, &isa)) throw UsageError("unknown --isa '" + isa_name + "'");
    if (!fk::isa_supported(isa)) throw fq::Error("--isa " + isa_name + " is not supported by this CPU");
  }
  Summary sum;
  try {
    for (const std::string& d : a.positional) {
      if (!is_dir(d)) throw BadInput(d + ": not a readable folder");
      if (is_file(d + "/model.onnx")) {
        run_test(d, isa, a.has("verbose"), &sum);
        continue;
      }
      int found = 0;
      for (const std::string& n : list_dir(d)) {
        const std::string sub = d + "/" + n;
        if (is_dir(sub) && is_file(sub + "/model.onnx")) {
          run_test(sub, isa, a.has("verbose"), &sum);
          ++found;
        }
      }
      if (!found) throw BadInput(d + ": no ONNX node test (no model.onnx here or in its subfolders)");
    }
  } catch (const BadInput& e) {
    std::fprintf(stderr, "fqrun conformance: %s\n", printable(e.what()).c_str());
    return 2;
  } catch (const ox::ParseError& e) {
    std::fprintf(stderr, "fqrun conformance: %s\n", printable(e.what()).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "fqrun conformance: out of memory\n");
    return 2;
  } catch (const std::runtime_error& e) {  // unreadable files
    std::fprintf(stderr, "fqrun conformance: %s\n", printable(e.what()).c_str());
    return 2;
  }
  std::fputs(sum.out.c_str(), stdout);
  std::string ops;
  for (const auto& [op, n] : sum.unsupported_ops) ops += (ops.empty() ? "" : ", ") + op + " x" + std::to_string(n);
  std::printf("%d unsupported%s\n", sum.unsupported, ops.empty() ? "" : (" (" + ops + ")").c_str());
  std::printf("%d passed, %d failed\n", sum.passed, sum.failed);
  return sum.failed ? 1 : 0;
}

}  // namespace fqrun
