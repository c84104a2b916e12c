// A small strict JSON reader (RFC 8259) for safetensors headers and config.json: objects keep
// their key order, duplicate keys are an error, numbers keep whether they were integers.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fq::mamba {

struct JsonField;

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool b = false;
  double num = 0;
  bool is_int = false;  // a number written without fraction or exponent that fits in int64
  int64_t i = 0;
  std::string str;
  std::vector<Json> items;                           // array
  std::vector<JsonField> fields;  // object, in order (vector of an incomplete type: C++17)

  const Json* find(const std::string& key) const;
  const char* kind_name() const;
};

// An object's member (a struct, not std::pair<std::string, Json>: a pair cannot be instantiated
// while Json is incomplete, which clang's libstdc++ checks).
struct JsonField {
  std::string first;
  Json second;
};

inline const Json* Json::find(const std::string& key) const {
  for (const auto& f : fields)
    if (f.first == key) return &f.second;
  return nullptr;
}

// Parses `text` (the whole of it, surrounding whitespace allowed). Throws fq::Error
// "<what>: JSON: <problem> at byte N".
Json parse_json(const std::string& text, const std::string& what);
// A JSON string literal of `s` (quotes and escapes).
std::string json_quote(const std::string& s);

}  // namespace fq::mamba
