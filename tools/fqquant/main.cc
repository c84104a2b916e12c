// fqquant: float FQ graph -> integer FQ graph. See `fqquant --help` and docs/quantization.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dataset.h"
#include "fq/fq.h"
#include "fqquant.h"

namespace {

const char kHelp[] =
    "usage: fqquant FLOAT.yaml --recipe RECIPE.yaml --calib mnist:IMAGES,LABELS\n"
    "               [--calib-split SEED:TRAIN:train|test] [-v] -o OUT.yaml\n"
    "\n"
    "Quantizes a float FQ graph to an integer one (writes OUT.yaml and OUT.fqw):\n"
    "  1. folds standalone relus and merges RepVGG branches into single convs (checked by\n"
    "     running both graphs),\n"
    "  2. calibrates activation ranges on the float graph (recipe: minmax, percentile or kl)\n"
    "     over the first calib_images images of the split (default: all images),\n"
    "  3. writes int8 weights (per-channel or per-tensor, optional CFWS coarse/fine split),\n"
    "     i32 biases and dyadic requantization parameters.\n"
    "  4. reports, on the calibration images, how often the integer graph's top-1 agrees with\n"
    "     the float graph's and the SQNR of its outputs (-v: of every tensor) against float.\n"
    "Recipes: configs/digits-*.yaml. Details: docs/quantization.md.\n"
    "Errors are one line on stderr, exit code 2.\n";

struct Args {
  std::string in, recipe, calib, split, out;
  bool verbose = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int k = 1; k < argc; ++k) {
    const std::string s = argv[k];
    auto value = [&](std::string* dst) {
      if (k + 1 >= argc) throw fq::Error("option " + s + " needs a value (see --help)");
      *dst = argv[++k];
    };
    if (s == "--help" || s == "-h") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    } else if (s == "-v" || s == "--verbose") {
      a.verbose = true;
    } else if (s == "--recipe") {
      value(&a.recipe);
    } else if (s == "--calib") {
      value(&a.calib);
    } else if (s == "--calib-split") {
      value(&a.split);
    } else if (s == "-o" || s == "--output") {
      value(&a.out);
    } else if (!s.empty() && s[0] == '-') {
      throw fq::Error("unknown option '" + s + "' (see --help)");
    } else if (a.in.empty()) {
      a.in = s;
    } else {
      throw fq::Error("unexpected argument '" + s + "' (one float graph; see --help)");
    }
  }
  if (a.in.empty()) throw fq::Error("no float graph given (see --help)");
  if (a.recipe.empty()) throw fq::Error("--recipe is required (see --help)");
  if (a.calib.empty()) throw fq::Error("--calib is required (see --help)");
  if (a.out.empty()) throw fq::Error("-o OUT.yaml is required (see --help)");
  return a;
}

// Graph input 0 is an image [1, H, W, C] (real = pixel / 255); the dataset's images are H x W.
void check_image_input(const fq::Graph& g, const fq::tools::Dataset& d) {
  if (g.inputs.size() != 1)
    throw fq::Error(g.path + ": fqquant calibrates graphs with one image input");
  const fq::TensorDef& t = g.tensor(g.inputs[0]);
  if (t.dtype != fq::DType::f32 || t.shape.size() != 4 || t.shape[0] != 1 || t.shape[1] != d.h ||
      t.shape[2] != d.w || t.shape[3] != 1)
    throw fq::Error(g.path + ": input '" + t.name + "' must be f32 [1," + std::to_string(d.h) +
                    "," + std::to_string(d.w) + ",1] for this data set");
}

// Every tensor both graphs compute, compared after each run: re-parameterization must not change
// anything beyond f32 summation order.
void check_rewrite(const fq::Graph& before, const fq::Graph& after, int count,
                   const fq::quant::InputFiller& fill) {
  fq::Session a(before), b(after);
  std::map<std::string, std::vector<float>> seen;
  double worst = 0;
  std::string worst_name;
  for (int k = 0; k < count; ++k) {
    seen.clear();
    fill(k, a);
    fill(k, b);
    a.run_observed([&](const fq::NodeDef&, const fq::TensorView& t) {
      if (t.dtype != fq::DType::f32) return;
      const float* p = static_cast<const float*>(t.data);
      seen[t.name].assign(p, p + t.bytes / sizeof(float));
    });
    b.run_observed([&](const fq::NodeDef&, const fq::TensorView& t) {
      const auto it = seen.find(t.name);
      if (t.dtype != fq::DType::f32 || it == seen.end() || it->second.size() * 4 != t.bytes) return;
      const double d = fq::quant::max_rel_diff(it->second.data(),
                                                static_cast<const float*>(t.data),
                                                it->second.size());
      if (d > worst) worst = d, worst_name = t.name;
    });
  }
  if (worst > 1e-4)
    throw fq::Error("re-parameterization changed tensor '" + worst_name + "' by " +
                    std::to_string(worst) + " (relative); expected only f32 rounding");
  std::fprintf(stderr, "fqquant: re-parameterized graph matches the original on %d images "
               "(max relative difference %.2g)\n", count, worst);
}

// Element i of an activation as a real value (real = scale * q; zero points are 0 in FQ's
// integer graphs), or the f32 value.
double real_value(const fq::TensorView& t, size_t i) {
  const double s = t.dtype == fq::DType::f32 || t.quant.scale.empty() ? 1.0 : t.quant.scale[0];
  switch (t.dtype) {
    case fq::DType::f32: return static_cast<const float*>(t.data)[i];
    case fq::DType::u8: return s * static_cast<const uint8_t*>(t.data)[i];
    case fq::DType::i8: return s * static_cast<const int8_t*>(t.data)[i];
    case fq::DType::u16: return s * static_cast<const uint16_t*>(t.data)[i];
    case fq::DType::i16: return s * static_cast<const int16_t*>(t.data)[i];
    case fq::DType::i32: return s * static_cast<const int32_t*>(t.data)[i];
    default: return 0;
  }
}

int argmax(const fq::TensorView& t) {
  int best = 0;
  for (size_t i = 1; i < size_t(t.shape.back()); ++i)
    if (real_value(t, i) > real_value(t, size_t(best))) best = int(i);
  return best;
}

// The integer graph against the float one on the calibration images: top-1 agreement of the
// first output, and per tensor computed by both the SQNR 10 log10(sum f^2 / sum (f - q)^2) of the
// dequantized integer values q against the float values f.
void report(const fq::Graph& f, const fq::Graph& q, int count, const fq::quant::InputFiller& fill,
            bool verbose, const std::string& out, const std::string& recipe) {
  fq::Session fs(f), qs(q);
  std::map<std::string, std::vector<double>> fv;
  std::map<std::string, std::pair<double, double>> acc;  // signal, error energy
  std::vector<std::string> order;
  int agree = 0;
  for (int k = 0; k < count; ++k) {
    fill(k, fs);
    fill(k, qs);
    fs.run_observed([&](const fq::NodeDef&, const fq::TensorView& t) {
      auto& v = fv[t.name];
      v.resize(t.bytes / sizeof(float));
      for (size_t i = 0; i < v.size(); ++i) v[i] = real_value(t, i);
    });
    qs.run_observed([&](const fq::NodeDef&, const fq::TensorView& t) {
      const auto it = fv.find(t.name);
      size_t n = 1;
      for (int64_t d : t.shape) n *= size_t(d);
      if (it == fv.end() || it->second.size() != n) return;
      if (!acc.count(t.name)) order.push_back(t.name);
      auto& a = acc[t.name];
      for (size_t i = 0; i < it->second.size(); ++i) {
        const double d = it->second[i] - real_value(t, i);
        a.first += it->second[i] * it->second[i];
        a.second += d * d;
      }
    });
    agree += argmax(fs.output(0)) == argmax(qs.output(0));
  }
  auto sqnr = [&](const std::string& name) {
    const auto& a = acc.at(name);
    return a.second > 0 ? 10 * std::log10(a.first / a.second) : INFINITY;
  };
  if (verbose)
    for (const auto& name : order) {
      const fq::TensorDef& t = q.tensor(name);
      std::fprintf(stderr, "fqquant:   %-24s %-4s scale %-12.6g SQNR %6.1f dB\n", name.c_str(),
                   fq::dtype_name(t.dtype), t.quant.scale.empty() ? 0.0 : t.quant.scale[0],
                   sqnr(name));
    }
  std::string outs;
  for (const auto& o : q.outputs)
    if (acc.count(o)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%s %.1f dB", outs.empty() ? "" : ", ", o.c_str(), sqnr(o));
      outs += buf;
    }
  std::fprintf(stderr, "fqquant: wrote %s (%zu nodes, recipe %s); on %d calibration images: "
               "top-1 agrees with the float graph on %d, SQNR %s\n",
               out.c_str(), q.nodes.size(), recipe.c_str(), count, agree, outs.c_str());
}

int run(int argc, char** argv) {
  namespace fs = std::filesystem;
  using namespace fq::quant;
  const Args a = parse_args(argc, argv);
  const Recipe recipe = load_recipe(a.recipe);
  const fq::Graph original = fq::load_graph(a.in);

  const fq::tools::Dataset data = fq::tools::load_dataset(a.calib);
  std::vector<int> idx;
  if (!a.split.empty()) {
    idx = fq::tools::parse_split(a.split, data.n);
  } else {
    idx.resize(size_t(data.n));
    for (int k = 0; k < data.n; ++k) idx[k] = k;
  }
  if (int(idx.size()) > recipe.calib_images) idx.resize(size_t(recipe.calib_images));
  if (idx.empty()) throw fq::Error("calibration split '" + a.split + "' selects no images");
  check_image_input(original, data);
  const InputFiller fill = [&](int k, fq::Session& s) {
    fq::TensorView in = s.input(0);
    const uint8_t* px = data.image(idx[size_t(k)]);
    if (in.dtype == fq::DType::u8) {
      std::memcpy(in.data, px, in.bytes);
    } else {
      float* x = static_cast<float*>(in.data);
      for (size_t e = 0; e < in.bytes / sizeof(float); ++e) x[e] = px[e] / 255.0f;
    }
  };
  const int count = int(idx.size());

  // 1. Graph rewrites on the float graph.
  fq::Graph g = original;
  const int relus = fold_relu(g);
  const int merged = recipe.reparameterize ? reparameterize(g) : 0;
  if (relus + merged > 0) check_rewrite(original, g, std::min(count, 32), fill);

  // 2. Calibration.
  const auto stats = collect_stats(g, count, fill, recipe.histogram_bins);

  // 3. Quantization.
  QuantizeOptions opt;
  opt.recipe = recipe;
  opt.name = fs::path(a.out).stem().string();
  const fs::path out_dir = fs::absolute(a.out).parent_path();
  const std::string float_ref =
      fs::absolute(a.in).lexically_normal().lexically_relative(out_dir.lexically_normal())
          .string();
  std::string method = calib_method_name(recipe.activations);
  if (recipe.activations == CalibMethod::percentile) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %g", recipe.percentile);
    method += buf;
  }
  opt.meta = {
      {"source", "fqquant"},
      {"float_reference", float_ref.empty() ? a.in : float_ref},
      {"float_graph", original.name},
      {"recipe", recipe.name + " (" + fs::path(a.recipe).filename().string() + ")"},
      {"weights", std::string("int8 symmetric ") + granularity_name(recipe.weights) +
                      (recipe.cfws ? ", CFWS coarse/fine split of k x k kernels" : "")},
      {"calibration", method + " over " + std::to_string(recipe.histogram_bins) +
                          "-bin |x| histograms"},
      {"calib_images", std::to_string(count)},
      {"calib_data", fs::path(a.calib.substr(a.calib.find(':') + 1, a.calib.find(',') -
                                             a.calib.find(':') - 1)).filename().string() +
                         (a.split.empty() ? "" : " split " + a.split)},
      {"rewrites", std::to_string(merged) + " RepVGG adds merged, " + std::to_string(relus) +
                       " relus folded"},
  };
  const fq::Graph q = quantize_graph(g, stats, opt);
  fs::create_directories(out_dir);
  fq::save_graph(q, a.out);

  report(g, q, count, fill, a.verbose, a.out, recipe.name);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::fprintf(stderr, "fqquant: %s\n", msg.c_str());
    return 2;
  }
}
