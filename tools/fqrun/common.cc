#include "common.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace fqrun {

const std::vector<std::string> kIsaNames = {"scalar", "avx2", "avx512", "amx", "neon", "neondot"};

fq::Options session_options(const Global& g, const Args& a, int threads, bool profile) {
  fq::Options o;
  o.threads = threads;
  o.isa = g.isa;
  if (a.has("isa")) o.isa = a.choice("isa", "", kIsaNames);
  o.profile = profile;
  return o;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string type_str(fq::DType t, const std::vector<int64_t>& shape, const fq::Quant& q) {
  std::string s = std::string(fq::dtype_name(t)) + shape_str(shape);
  if (q.empty()) return s;
  char buf[96];
  if (q.scale.size() == 1) {
    std::snprintf(buf, sizeof buf, " scale=%.6g zp=%d", q.scale[0],
                  q.zero_point.empty() ? 0 : q.zero_point[0]);
  } else {
    std::snprintf(buf, sizeof buf, " per-channel(axis %d, %zu scales)", q.axis, q.scale.size());
  }
  return s + buf;
}

std::string with_commas(uint64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

std::string human_bytes(uint64_t v) {
  char buf[32];
  if (v < 1024) return std::to_string(v) + " B";
  if (v < (1u << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", v / 1024.0);
  else if (v < (1u << 30)) std::snprintf(buf, sizeof buf, "%.1f MiB", v / 1048576.0);
  else std::snprintf(buf, sizeof buf, "%.2f GiB", v / 1073741824.0);
  return buf;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

ImageGeometry image_geometry(const fq::TensorView& in) {
  const auto& s = in.shape;
  if (s.size() != 4 || (s[3] != 1 && s[3] != 3) || s[1] < 1 || s[2] < 1 || s[1] > 65536 ||
      s[2] > 65536)
    throw fq::Error("input '" + in.name + "' " + shape_str(s) +
                    " is not an image input [N,H,W,C] with C = 1 or 3");
  if (in.dtype == fq::DType::i4)
    throw fq::Error("input '" + in.name + "': dtype i4 is not supported for images");
  ImageGeometry g;
  g.n = s[0], g.h = int(s[1]), g.w = int(s[2]), g.c = int(s[3]);
  return g;
}

fq::tools::Image prepare_image(const fq::tools::Image& src, const ImageGeometry& geo,
                               const Preprocess& pp, PrepInfo* info) {
  using namespace fq::tools;
  PrepInfo pi;
  Image img = convert_channels(src, geo.c);
  const bool gray = geo.c == 1;
  pi.border = border_mean(img);
  pi.inverted = pp.invert == Mode::yes || (pp.invert == Mode::automatic && gray && pi.border >= 128);
  if (pi.inverted) invert_image(img);
  if (pp.levels == Mode::yes || (pp.levels == Mode::automatic && gray)) {
    pi.lo = border_mean(img), pi.hi = max_pixel(img);
    if (pi.hi > pi.lo && (pi.lo > 0 || pi.hi < 255)) {
      stretch_levels(img, pi.lo, pi.hi);
      pi.stretched = true;
    }
  }
  if (info) *info = pi;
  return resize_image(img, geo.w, geo.h);
}

namespace {

template <class T>
void read_as_double(const void* p, int64_t first, int64_t count, double* out) {
  const T* t = static_cast<const T*>(p) + first;
  for (int64_t i = 0; i < count; ++i) out[i] = double(t[i]);
}

}  // namespace

std::vector<double> dequantize(const fq::TensorView& t, int64_t first, int64_t count) {
  std::vector<double> v(size_t(std::max<int64_t>(count, 0)));
  const int64_t total = numel(t.shape);
  if (first < 0 || count < 0 || first + count > total)
    throw fq::Error("output '" + t.name + "': element range out of bounds");
  switch (t.dtype) {
    case fq::DType::u8: read_as_double<uint8_t>(t.data, first, count, v.data()); break;
    case fq::DType::i8: read_as_double<int8_t>(t.data, first, count, v.data()); break;
    case fq::DType::u16: read_as_double<uint16_t>(t.data, first, count, v.data()); break;
    case fq::DType::i16: read_as_double<int16_t>(t.data, first, count, v.data()); break;
    case fq::DType::i32: read_as_double<int32_t>(t.data, first, count, v.data()); break;
    case fq::DType::f32: read_as_double<float>(t.data, first, count, v.data()); return v;
    default: throw fq::Error("output '" + t.name + "': dtype " + fq::dtype_name(t.dtype) + " cannot be read");
  }
  const fq::Quant& q = t.quant;
  if (q.empty()) return v;
  int64_t inner = 1, channels = 1;
  const bool per_channel = q.scale.size() > 1 && q.axis >= 0 && q.axis < int(t.shape.size());
  if (per_channel) {
    channels = int64_t(q.scale.size());
    for (size_t a = q.axis + 1; a < t.shape.size(); ++a) inner *= t.shape[a];
  }
  for (int64_t i = 0; i < count; ++i) {
    const size_t ch = per_channel ? size_t(((first + i) / inner) % channels) : 0;
    const double zp = q.zero_point.empty() ? 0.0 : q.zero_point[std::min(ch, q.zero_point.size() - 1)];
    v[i] = q.scale[std::min(ch, q.scale.size() - 1)] * (v[i] - zp);
  }
  return v;
}

int argmax(const std::vector<double>& v) {
  int best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = int(i);
  return best;
}

namespace {

template <class T>
int64_t argmax_of(const void* p, int64_t first, int64_t count) {
  const T* t = static_cast<const T*>(p) + first;
  int64_t best = 0;
  for (int64_t i = 1; i < count; ++i)
    if (t[i] > t[best]) best = i;
  return best;
}

}  // namespace

RealOutput real_output(fq::Session& s, const std::string& name) {
  RealOutput o;
  o.values = s.output(name);
  const fq::DType d = o.values.dtype;
  const bool integer = d == fq::DType::u8 || d == fq::DType::i8 || d == fq::DType::u16 ||
                       d == fq::DType::i16 || d == fq::DType::i32;
  if (!integer && d != fq::DType::f32)
    throw fq::Error("output '" + name + "': dtype " + fq::dtype_name(d) + " cannot be read");
  const int64_t n = numel(o.values.shape);
  o.cols = o.values.shape.empty() ? 1 : o.values.shape.back();
  o.rows = o.cols > 0 ? n / o.cols : 0;
  const std::string scale_name = name + "_scale";
  for (size_t i = 0; i < s.num_outputs(); ++i) {
    fq::TensorView t = s.output(i);
    if (t.name != scale_name) continue;
    if (!integer)
      throw fq::Error("output '" + name + "' is " + fq::dtype_name(d) + " but has a row scale '" +
                      scale_name + "': only integer outputs carry one");
    if (t.dtype != fq::DType::i32 || numel(t.shape) != 2 * o.rows || t.shape.empty() ||
        t.shape.back() != 2)
      throw fq::Error("output '" + scale_name + "' " + type_str(t.dtype, t.shape, t.quant) +
                      " is not the i32 [" + std::to_string(o.rows) + ", 2] (mant, exp) row scale of '" +
                      name + "' " + shape_str(o.values.shape));
    o.has_row_scale = true;
    o.row_scale = t;
  }
  return o;
}

void RealOutput::read_row(int64_t r, double* out) const {
  if (r < 0 || r >= rows) throw fq::Error("output '" + values.name + "': row out of bounds");
  const int64_t first = r * cols;
  if (!has_row_scale) {
    const std::vector<double> v = dequantize(values, first, cols);
    std::copy(v.begin(), v.end(), out);
    return;
  }
  switch (values.dtype) {
    case fq::DType::u8: read_as_double<uint8_t>(values.data, first, cols, out); break;
    case fq::DType::i8: read_as_double<int8_t>(values.data, first, cols, out); break;
    case fq::DType::u16: read_as_double<uint16_t>(values.data, first, cols, out); break;
    case fq::DType::i16: read_as_double<int16_t>(values.data, first, cols, out); break;
    case fq::DType::i32: read_as_double<int32_t>(values.data, first, cols, out); break;
    default: throw fq::Error("output '" + values.name + "': dtype cannot be read");
  }
  const int32_t* sc = static_cast<const int32_t*>(row_scale.data) + 2 * r;
  // q * mant is below 2^62 in magnitude and the power of two is exact: no rounding in double
  // unless the result leaves double's range.
  for (int64_t i = 0; i < cols; ++i) out[i] = std::ldexp(out[i] * double(sc[0]), -sc[1]);
}

std::vector<double> RealOutput::row(int64_t r) const {
  std::vector<double> v(size_t(std::max<int64_t>(cols, 0)));
  read_row(r, v.data());
  return v;
}

int64_t RealOutput::argmax_stored(int64_t r) const {
  if (r < 0 || r >= rows) throw fq::Error("output '" + values.name + "': row out of bounds");
  const int64_t first = r * cols;
  switch (values.dtype) {
    case fq::DType::u8: return argmax_of<uint8_t>(values.data, first, cols);
    case fq::DType::i8: return argmax_of<int8_t>(values.data, first, cols);
    case fq::DType::u16: return argmax_of<uint16_t>(values.data, first, cols);
    case fq::DType::i16: return argmax_of<int16_t>(values.data, first, cols);
    case fq::DType::i32: return argmax_of<int32_t>(values.data, first, cols);
    case fq::DType::f32: return argmax_of<float>(values.data, first, cols);
    default: throw fq::Error("output '" + values.name + "': dtype cannot be read");
  }
}

int64_t classes_per_item(const fq::TensorView& out, int64_t batch) {
  const int64_t n = numel(out.shape);
  if (batch < 1 || n % batch != 0 || n / batch < 1)
    throw fq::Error("output '" + out.name + "' " + shape_str(out.shape) +
                    " does not split into " + std::to_string(batch) + " rows of class scores");
  return n / batch;
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const size_t c = line.find(':');
      if (c != std::string::npos) {
        std::string s = line.substr(c + 1);
        s.erase(0, s.find_first_not_of(" \t"));
        if (!s.empty()) return s;
      }
    }
  }
  struct utsname u;
  if (uname(&u) == 0) return u.machine;
  return "unknown";
}

std::string dirname_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace fqrun
