// Float graph + calibration -> integer graph (docs/quantization.md, "Weights and requantization").
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fq/reference/quant.h"
#include "fqquant.h"
#include "util.h"

namespace fq::quant {

namespace {

using detail::make_const;

struct Act {
  DType dtype;
  double scale;
};

class Quantizer {
 public:
  Quantizer(const Graph& f, const std::map<std::string, ActStats>& stats,
            const QuantizeOptions& opt)
      : f_(f), stats_(stats), opt_(opt), r_(opt.recipe) {}

  Graph run() {
    q_.name = opt_.name;
    q_.inputs = f_.inputs;
    q_.outputs = f_.outputs;
    q_.meta = opt_.meta;
    for (const auto& in : f_.inputs) {
      const TensorDef& t = f_.tensor(in);
      if (t.dtype != DType::f32 && t.dtype != DType::u8)
        throw Error("graph input '" + in + "': expected f32 (real = pixel / 255)");
      add_act(in, {DType::u8, opt_.input_scale});
    }
    for (const NodeDef& n : f_.nodes) {
      if (n.op == "conv2d") conv(n);
      else if (n.op == "fully_connected") fc(n);
      else if (n.op == "global_avg_pool") gap(n);
      else if (n.op == "softmax") softmax(n);
      else
        throw Error("node '" + n.name + "': op '" + n.op +
                    "' has no integer form in format v1 (only conv2d, fully_connected, "
                    "global_avg_pool, softmax; add/relu must be merged or folded first)");
    }
    validate_graph(q_);
    return std::move(q_);
  }

 private:
  const Graph& f_;
  const std::map<std::string, ActStats>& stats_;
  const QuantizeOptions& opt_;
  const Recipe& r_;
  Graph q_;
  std::map<std::string, Act> act_;

  std::string fresh(const std::string& base) const {
    std::string s = base;
    for (int k = 2; f_.find_tensor(s) >= 0 || q_.find_tensor(s) >= 0; ++k)
      s = base + "_" + std::to_string(k);
    return s;
  }
  // Name for a replacement of float constant `fname` (same name when it is not yet used in q).
  std::string reuse(const std::string& fname) const {
    return q_.find_tensor(fname) < 0 ? fname : fresh(fname);
  }

  void add_act(const std::string& name, Act a) {
    TensorDef t;
    t.name = name;
    t.dtype = a.dtype;
    t.shape = f_.tensor(name).shape;
    t.quant.scale = {a.scale};
    q_.add_tensor(std::move(t));
    act_[name] = a;
  }

  const Act& input_act(const NodeDef& n, int k, std::initializer_list<DType> allowed) const {
    const auto it = act_.find(n.inputs[k]);
    if (it == act_.end()) throw Error("node '" + n.name + "': input '" + n.inputs[k] + "' unknown");
    if (std::find(allowed.begin(), allowed.end(), it->second.dtype) == allowed.end())
      throw Error("node '" + n.name + "': input '" + n.inputs[k] + "' is " +
                  dtype_name(it->second.dtype) +
                  " in the integer graph, which this op does not take (a conv2d / "
                  "fully_connected input must come from a relu, i.e. be u8)");
    return it->second;
  }

  // Real threshold of a node output from calibration (T > 0), by the recipe's method.
  double threshold(const std::string& name, CalibMethod m, int levels) const {
    const auto it = stats_.find(name);
    if (it == stats_.end()) throw Error("tensor '" + name + "': no calibration statistics");
    const double t = choose_threshold(it->second, m, r_.percentile, levels);
    return t > 0 ? t : 1.0;  // a tensor that is always 0: any scale works
  }

  // Output activation of a conv/fc: u8 after relu (zero point 0), else `signed_type`.
  Act out_act(const NodeDef& n, DType signed_type) const {
    const std::string& y = n.outputs[0];
    if (n.attr_int("relu", 0)) return {DType::u8, threshold(y, r_.activations, 255) / 255};
    if (signed_type == DType::i16)  // logits: range from the max with headroom, 15 bits
      return {DType::i16, r_.logit_headroom * threshold(y, CalibMethod::minmax, 32767) / 32767};
    return {DType::i8, threshold(y, r_.activations, 127) / 127};
  }

  static Quant quant_of(const std::vector<double>& scales) {
    Quant q;
    q.scale = scales;
    q.axis = scales.size() > 1 ? 0 : -1;
    return q;
  }

  // mult / 2^shift for every output channel; r2 (CFWS coarse factors) share the shift with r.
  // The mantissa width is the largest (<= 31 bits, <= 30 with CFWS, where two products are
  // summed: the format's limit) for which |acc * m + acc_c * m_c| stays below
  // 2^62 for the worst-case accumulators (the rounding rule's precondition).
  void dyadics(const NodeDef& n, const std::vector<double>& r, const std::vector<double>* r2,
               const std::vector<double>& acc_bound, const std::vector<double>* acc2_bound,
               std::vector<int32_t>& m, std::vector<int32_t>* m2, std::vector<int8_t>& s) {
    const size_t o = r.size();
    m.assign(o, 0);
    s.assign(o, 0);
    if (m2) m2->assign(o, 0);
    for (size_t c = 0; c < o; ++c) {
      for (int bits = r2 ? 30 : 31;; --bits) {
        if (bits < 8)
          throw Error("node '" + n.name + "': channel " + std::to_string(c) +
                      ": accumulator range too large for a 64-bit requantization");
        int shift = 0;
        double bound = 0;
        if (r2) {
          const double rr[2] = {r[c], (*r2)[c]};
          int32_t mm[2];
          ref::to_dyadic_shared(rr, 2, bits, mm, &shift);
          m[c] = mm[0];
          (*m2)[c] = mm[1];
          bound = acc_bound[c] * mm[0] + (*acc2_bound)[c] * mm[1];
        } else {
          const ref::Dyadic d = ref::to_dyadic(r[c], bits);
          m[c] = d.m;
          shift = d.s;
          bound = acc_bound[c] * d.m;
        }
        s[c] = int8_t(shift);
        if (bound + std::ldexp(1.0, shift - 1) < std::ldexp(1.0, 62)) break;
      }
      const double got = std::ldexp(double(m[c]), -s[c]);
      if (m[c] <= 0 || std::fabs(got - r[c]) > 1e-3 * r[c])
        throw Error("node '" + n.name + "': requantization factor " + std::to_string(r[c]) +
                    " of channel " + std::to_string(c) +
                    " is outside what mult / 2^shift (1 <= shift <= 62) can represent");
    }
  }

  // Quantized bias (accumulator units sx * sw[o], round half away from zero), |b| <= 2^30 (the
  // format's limit, leaving the other half of the i32 accumulator to the products).
  std::vector<int32_t> bias(const NodeDef& n, int o, double sx, const QuantizedWeights& w) {
    std::vector<float> b(size_t(o), 0.f);
    if (n.inputs.size() > 2) b = const_f32(f_, n.inputs[2]);
    std::vector<int32_t> bq(static_cast<size_t>(o));
    for (int c = 0; c < o; ++c) {
      const double v = std::round(double(b[c]) / (sx * w.scale_of(c)));
      if (std::fabs(v) > 1073741824.0)
        throw Error("node '" + n.name + "': bias of channel " + std::to_string(c) + " is " +
                    std::to_string(v) + " accumulator units, beyond the format's 2^30");
      bq[c] = int32_t(v);
    }
    return bq;
  }

  static std::vector<double> abs_row_sums(const QuantizedWeights& w, int rows) {
    std::vector<double> s(size_t(rows), 0.0);
    const size_t per = w.q.size() / size_t(rows);
    for (int o = 0; o < rows; ++o)
      for (size_t k = 0; k < per; ++k) s[o] += std::abs(int(w.q[o * per + k]));
    return s;
  }

  void conv(const NodeDef& n) { matmul_like(n, true); }
  void fc(const NodeDef& n) { matmul_like(n, false); }

  // conv2d and fully_connected: int8 weights (optionally CFWS-split), i32 bias, dyadic requant.
  void matmul_like(const NodeDef& n, bool is_conv) {
    const Act x = input_act(n, 0, {DType::u8});
    const std::vector<float> w = const_f32(f_, n.inputs[1]);
    const TensorDef& wt = f_.tensor(n.inputs[1]);
    const int o = int(wt.shape[0]);
    const int64_t per = wt.numel() / o;
    const Act y = out_act(n, is_conv ? DType::i8 : DType::i16);

    detail::ConvGeom geo;
    if (is_conv) geo = detail::conv_geom(f_, n);
    const bool split = is_conv && r_.cfws && (geo.kh > 1 || geo.kw > 1) && geo.kh % 2 == 1 &&
                       geo.kw % 2 == 1;
    QuantizedWeights wf, wc;
    if (split) {
      const CfwsSplit s = cfws_split(w.data(), o, geo.kh, geo.kw, geo.i, r_.weights);
      wf = quantize_weights(s.fine.data(), o, per, r_.weights);
      wc = quantize_weights(s.coarse.data(), o, geo.i, r_.weights);
    } else {
      wf = quantize_weights(w.data(), o, per, r_.weights);
    }
    const std::vector<int32_t> bq = bias(n, o, x.scale, wf);

    // Requantization factors and worst-case accumulators (x <= 255).
    const size_t no = static_cast<size_t>(o);
    std::vector<double> rf(no), rc(no), bound_f = abs_row_sums(wf, o), bound_c;
    for (int c = 0; c < o; ++c) {
      rf[c] = x.scale * wf.scale_of(c) / y.scale;
      bound_f[c] = bound_f[c] * 255 + std::fabs(double(bq[c]));
    }
    if (split) {
      bound_c = abs_row_sums(wc, o);
      for (int c = 0; c < o; ++c) {
        rc[c] = x.scale * wc.scale_of(c) / y.scale;
        bound_c[c] *= 255;
      }
    }
    for (int c = 0; c < o; ++c)
      if (bound_f[c] > 2147483647.0)
        throw Error("node '" + n.name + "': the i32 accumulator can overflow on channel " +
                    std::to_string(c));
    std::vector<int32_t> mult, mult_c;
    std::vector<int8_t> shift;
    dyadics(n, rf, split ? &rc : nullptr, bound_f, split ? &bound_c : nullptr, mult,
            split ? &mult_c : nullptr, shift);

    std::vector<double> bscale(wf.scale.size());
    for (size_t c = 0; c < bscale.size(); ++c) bscale[c] = x.scale * wf.scale[c];
    const std::string wn = reuse(n.inputs[1]);
    const std::string bn = n.inputs.size() > 2 ? reuse(n.inputs[2]) : fresh(n.name + ".b");
    const std::string mn = fresh(n.name + ".mult"), sn = fresh(n.name + ".shift");
    q_.add_tensor(make_const(wn, DType::i8, wt.shape, wf.q, quant_of(wf.scale)));
    q_.add_tensor(make_const(bn, DType::i32, {o}, bq, quant_of(bscale)));
    q_.add_tensor(make_const(mn, DType::i32, {o}, mult));
    q_.add_tensor(make_const(sn, DType::i8, {o}, shift));
    NodeDef m = n;
    m.inputs = {n.inputs[0], wn, bn, mn, sn};
    if (split) {
      const std::string wcn = fresh(n.name + ".w_coarse"), mcn = fresh(n.name + ".mult_coarse");
      q_.add_tensor(make_const(wcn, DType::i8, {o, 1, 1, geo.i}, wc.q, quant_of(wc.scale)));
      q_.add_tensor(make_const(mcn, DType::i32, {o}, mult_c));
      m.inputs.push_back(wcn);
      m.inputs.push_back(mcn);
    }
    add_act(n.outputs[0], y);
    q_.nodes.push_back(m);
  }

  void gap(const NodeDef& n) {
    const Act x = input_act(n, 0, {DType::u8});
    const auto& shape = f_.tensor(n.inputs[0]).shape;  // [N, H, W, C]
    const double hw = double(shape.at(1) * shape.at(2));
    const Act y{DType::u8, threshold(n.outputs[0], r_.activations, 255) / 255};
    add_rescaled(n, x.scale / (hw * y.scale), 255.0 * hw);
    add_act(n.outputs[0], y);
  }

  // Emits node `n` with one dyadic factor r (inputs x, mult [1], shift [1]); `bound` is the
  // largest |value| the kernel multiplies by it.
  void add_rescaled(const NodeDef& n, double r, double bound) {
    std::vector<int32_t> mult;
    std::vector<int8_t> shift;
    dyadics(n, {r}, nullptr, {bound}, nullptr, mult, nullptr, shift);
    const std::string mn = fresh(n.name + ".mult"), sn = fresh(n.name + ".shift");
    q_.add_tensor(make_const(mn, DType::i32, {1}, mult));
    q_.add_tensor(make_const(sn, DType::i8, {1}, shift));
    NodeDef m = n;
    m.inputs = {n.inputs[0], mn, sn};
    q_.nodes.push_back(m);
  }

  // softmax (integer form, docs/format.md): inputs x, x_scale = the logits' per-tensor scale as
  // a RowScale (mant in [2^14, 2^15), exp: real = q * mant * 2^-exp); no clip; u16 output p * 2^16.
  void softmax(const NodeDef& n) {
    const Act x = input_act(n, 0, {DType::i16, DType::i8});
    int e = 0;
    const double f = std::frexp(x.scale, &e);   // scale = f * 2^e, f in [0.5, 1)
    int32_t mant = int32_t(std::llround(std::ldexp(f, 15)));
    int exp = 15 - e;
    if (mant == (1 << 15)) mant = 1 << 14, exp -= 1;
    if (!(x.scale > 0) || exp < -124 || exp > 124)
      throw Error("node '" + n.name + "': softmax input scale " + std::to_string(x.scale) +
                  " is outside the row-scale range (2^-124 .. 2^124)");
    const std::string sn = fresh(n.name + ".x_scale");
    q_.add_tensor(make_const(sn, DType::i32, {2}, std::vector<int32_t>{mant, int32_t(exp)}));
    NodeDef m = n;
    m.inputs = {n.inputs[0], sn};
    q_.nodes.push_back(m);
    add_act(n.outputs[0], {DType::u16, 1.0 / 65536});
  }
};

}  // namespace

Graph quantize_graph(const Graph& f, const std::map<std::string, ActStats>& stats,
                     const QuantizeOptions& opt) {
  return Quantizer(f, stats, opt).run();
}

}  // namespace fq::quant
