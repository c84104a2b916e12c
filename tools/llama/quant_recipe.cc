// LLM quantization recipes (configs/llm-*.yaml): a flat YAML map, every key optional.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "quantize.h"
#include "recipe_yaml.h"

namespace fq::llama {

using tools::recipe::bad;
using tools::recipe::scalar;

LlmRecipe parse_llm_recipe(const std::string& text, const std::string& path) {
  const YAML::Node root = tools::recipe::load(text, path);
  LlmRecipe r;
  r.path = path;
  if (root.IsNull()) return r;
  if (!root.IsMap()) bad(path, root, "a recipe is a map of keys (see configs/llm-w8a8.yaml)");
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!seen.insert(key).second) bad(path, kv.first, "duplicate recipe key '" + key + "'");
    auto integer = [&](int lo, int hi) { return tools::recipe::in_range<int>(path, key, v, lo, hi); };
    auto real = [&](double lo, double hi) { return tools::recipe::in_range<double>(path, key, v, lo, hi); };
    auto bits = [&]() { return tools::recipe::bits(path, key, v); };
    if (key == "name") {
      r.name = scalar<std::string>(path, key, v);
    } else if (key == "weight_bits") {
      r.weight_bits = bits();
    } else if (key == "group") {
      r.group = scalar<int>(path, key, v);
      if (r.group != 32 && r.group != 64 && r.group != 128)
        bad(path, v, "group must be 32, 64 or 128");
    } else if (key == "activation_bits") {
      r.activation_bits = bits();
    } else if (key == "classifier_bits") {
      r.classifier_bits = bits();
    } else if (key == "rotate") {
      r.rotate = scalar<bool>(path, key, v);
    } else if (key == "rotate_seed") {
      r.rotate_seed = integer(0, 1 << 30);
    } else if (key == "rotate_trials") {
      r.rotate_trials = integer(1, 64);
    } else if (key == "rotate_heads") {
      r.rotate_heads = scalar<bool>(path, key, v);
    } else if (key == "online_hadamard") {
      r.online_hadamard = scalar<bool>(path, key, v);
    } else if (key == "hidden_expand") {
      r.hidden_expand = real(1, 4);
    } else if (key == "residual_expand") {
      r.residual_expand = real(1, 4);
    } else if (key == "online_hadamard_o") {
      r.online_hadamard_o = scalar<bool>(path, key, v);
    } else if (key == "smooth") {
      r.smooth = scalar<bool>(path, key, v);
    } else if (key == "smooth_alpha") {
      r.smooth_alpha = real(0, 1);
    } else if (key == "smooth_search") {
      r.smooth_search = scalar<bool>(path, key, v);
    } else if (key == "clip_search") {
      r.clip_search = scalar<bool>(path, key, v);
    } else if (key == "clip_min") {
      r.clip_min = real(0.1, 1);
    } else if (key == "gptq") {
      r.gptq = scalar<bool>(path, key, v);
    } else if (key == "gptq_damp") {
      r.gptq_damp = real(1e-6, 1);
    } else if (key == "gptq_act_order") {
      r.gptq_act_order = scalar<bool>(path, key, v);
    } else if (key == "clip_row_search") {
      r.clip_row_search = scalar<bool>(path, key, v);
    } else if (key == "scale_refine") {
      r.scale_refine = scalar<bool>(path, key, v);
    } else if (key == "local_search") {
      r.local_search = scalar<bool>(path, key, v);
    } else if (key == "refit") {
      r.refit = scalar<bool>(path, key, v);
    } else if (key == "refit_damp") {
      r.refit_damp = real(1e-6, 1);
    } else if (key == "gptq_sequential") {
      r.gptq_sequential = scalar<bool>(path, key, v);
    } else if (key == "calib_sequences") {
      r.calib_sequences = integer(1, 4096);
    } else if (key == "calib_tokens") {
      r.calib_tokens = integer(2, 1 << 20);
    } else if (key == "calib_seed") {
      r.calib_seed = integer(1000, 1 << 30);
    } else if (key == "calib_topp") {
      r.calib_topp = real(0, 1);
    } else if (key == "calib_stop_at_bos") {
      r.calib_stop_at_bos = scalar<bool>(path, key, v);
    } else if (key == "attention_clip") {
      r.attention_clip = real(1, 1000);
    } else if (key == "residual_headroom") {
      r.residual_headroom = real(1, 1 << 20);
    } else {
      bad(path, kv.first, "unknown recipe key '" + key + "'");
    }
  }
  return r;
}

LlmRecipe load_llm_recipe(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open recipe");
  std::ostringstream s;
  s << f.rdbuf();
  return parse_llm_recipe(s.str(), path);
}

}  // namespace fq::llama
