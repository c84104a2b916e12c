// Quantization recipes: small flat YAML documents (configs/*.yaml), every key optional.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "fqquant.h"
#include "recipe_yaml.h"

namespace fq::quant {

const char* granularity_name(Granularity g) {
  return g == Granularity::per_tensor ? "per_tensor" : "per_channel";
}

const char* calib_method_name(CalibMethod m) {
  switch (m) {
    case CalibMethod::minmax: return "minmax";
    case CalibMethod::percentile: return "percentile";
    case CalibMethod::kl: return "kl";
  }
  return "?";
}

using tools::recipe::bad;
using tools::recipe::scalar;

Recipe parse_recipe(const std::string& text, const std::string& path) {
  const YAML::Node root = tools::recipe::load(text, path);
  Recipe r;
  if (root.IsNull()) return r;
  if (!root.IsMap()) bad(path, root, "a recipe is a map of keys (see configs/digits-int8.yaml)");
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!seen.insert(key).second) bad(path, kv.first, "duplicate recipe key '" + key + "'");
    if (key == "name") {
      r.name = scalar<std::string>(path, key, v);
    } else if (key == "weights") {
      const auto s = scalar<std::string>(path, key, v);
      if (s == "per_channel") r.weights = Granularity::per_channel;
      else if (s == "per_tensor") r.weights = Granularity::per_tensor;
      else bad(path, v, "weights: '" + s + "' is not per_channel or per_tensor");
    } else if (key == "activations") {
      const auto s = scalar<std::string>(path, key, v);
      if (s == "minmax") r.activations = CalibMethod::minmax;
      else if (s == "percentile") r.activations = CalibMethod::percentile;
      else if (s == "kl") r.activations = CalibMethod::kl;
      else bad(path, v, "activations: '" + s + "' is not minmax, percentile or kl");
    } else if (key == "percentile") {
      r.percentile = scalar<double>(path, key, v);
      if (!(r.percentile > 0 && r.percentile <= 100))
        bad(path, v, "percentile must be in (0, 100]");
    } else if (key == "histogram_bins") {
      r.histogram_bins = scalar<int>(path, key, v);
      if (r.histogram_bins < 256 || r.histogram_bins > (1 << 20))
        bad(path, v, "histogram_bins must be in [256, 1048576]");
    } else if (key == "cfws") {
      r.cfws = scalar<bool>(path, key, v);
    } else if (key == "reparameterize") {
      r.reparameterize = scalar<bool>(path, key, v);
    } else if (key == "calib_images") {
      r.calib_images = scalar<int>(path, key, v);
      if (r.calib_images < 1) bad(path, v, "calib_images must be at least 1");
    } else if (key == "logit_headroom") {
      r.logit_headroom = scalar<double>(path, key, v);
      if (!(r.logit_headroom >= 1 && r.logit_headroom <= 256))
        bad(path, v, "logit_headroom must be in [1, 256]");
    } else {
      bad(path, kv.first, "unknown recipe key '" + key + "'");
    }
  }
  return r;
}

Recipe load_recipe(const std::string& path) { return parse_recipe(read_file(path), path); }

}  // namespace fq::quant
