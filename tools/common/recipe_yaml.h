// Reading quantization recipes (flat YAML maps, configs/*.yaml) with one-line errors that name
// the file and line: shared by fqquant and fqquant-llama. Needs yaml-cpp (tool dependency).
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>

#include "fq/graph.h"

namespace fq::tools::recipe {

[[noreturn]] inline void bad(const std::string& path, const YAML::Node& n, const std::string& msg) {
  const int line = n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
  throw Error(path + (line > 0 ? ":" + std::to_string(line) : "") + ": " + msg);
}

// The scalar value of recipe key `key`, or a one-line error naming the file, line and key.
template <class T>
T scalar(const std::string& path, const std::string& key, const YAML::Node& v) {
  if (!v.IsScalar()) bad(path, v, "recipe key '" + key + "' must be a scalar");
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    bad(path, v, "recipe key '" + key + "': cannot read '" + v.Scalar() + "'");
  }
}

// An integer in [lo, hi] or a real in [lo, hi] (one-line errors naming the file, line and key).
template <class T>
T in_range(const std::string& path, const std::string& key, const YAML::Node& v, T lo, T hi) {
  const T x = scalar<T>(path, key, v);
  if (!(x >= lo && x <= hi))
    bad(path, v, key + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}
// A bit width: 4 or 8.
inline int bits(const std::string& path, const std::string& key, const YAML::Node& v) {
  const int x = scalar<int>(path, key, v);
  if (x != 4 && x != 8) bad(path, v, key + " must be 4 or 8");
  return x;
}

// Parses recipe text: the root node (null for an empty recipe), or an error naming the file/line.
inline YAML::Node load(const std::string& text, const std::string& path) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace fq::tools::recipe
