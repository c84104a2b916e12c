#include "args.h"

#include <algorithm>
#include <limits>

namespace fqrun {

const std::vector<OptSpec> kGlobalOpts = {{"isa", 0, true}};

namespace {

const OptSpec* find(const std::vector<OptSpec>& a, const std::vector<OptSpec>& b,
                    const std::string& name, char alias) {
  for (const auto* v : {&a, &b})
    for (const OptSpec& o : *v)
      if (alias ? o.alias == alias : name == o.name) return &o;
  return nullptr;
}

}  // namespace

bool parse_int(const std::string& s, int64_t* out) {
  size_t i = 0;
  const bool neg = !s.empty() && s[0] == '-';
  if (neg) i = 1;
  if (i >= s.size() || s.size() - i > 18) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return true;
}

Args::Args(const std::vector<std::string>& argv, const std::vector<OptSpec>& spec,
           size_t max_positional) {
  bool only_positional = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positional || a.size() < 2 || a[0] != '-') {
      if (positional.size() >= max_positional)
        throw UsageError("unexpected argument '" + a + "'");
      positional.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      help = true;
      continue;
    }
    std::string name, value;
    bool inline_value = false;
    const OptSpec* o = nullptr;
    if (a[1] == '-') {
      const size_t eq = a.find('=');
      name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) value = a.substr(eq + 1), inline_value = true;
      o = find(spec, kGlobalOpts, name, 0);
    } else if (a.size() == 2) {
      o = find(spec, kGlobalOpts, "", a[1]);
    }
    if (!o) throw UsageError("unknown option '" + a + "'");
    name = o->name;
    if (o->takes_value) {
      if (!inline_value) {
        if (i + 1 >= argv.size() || argv[i + 1].rfind("--", 0) == 0)
          throw UsageError("option '--" + name + "' needs a value");
        value = argv[++i];
      }
    } else if (inline_value) {
      throw UsageError("option '--" + name + "' takes no value");
    }
    opts_[name] = value;
  }
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
  const auto it = opts_.find(name);
  return it == opts_.end() ? fallback : it->second;
}

int64_t Args::integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  const auto it = opts_.find(name);
  if (it == opts_.end()) return fallback;
  int64_t v = 0;
  if (!parse_int(it->second, &v) || v < lo || v > hi)
    throw UsageError("option '--" + name + "' takes an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], not '" + it->second + "'");
  return v;
}

std::string Args::choice(const std::string& name, const std::string& fallback,
                         const std::vector<std::string>& choices) const {
  const std::string v = str(name, fallback);
  if (std::find(choices.begin(), choices.end(), v) != choices.end()) return v;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  throw UsageError("option '--" + name + "' takes " + list + ", not '" + v + "'");
}

std::vector<int64_t> Args::int_list(const std::string& name, const std::string& fallback,
                                    int64_t lo, int64_t hi) const {
  const std::string s = str(name, fallback);
  std::vector<int64_t> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int64_t v = 0;
    if (!parse_int(item, &v) || v < lo || v > hi)
      throw UsageError("option '--" + name + "' takes comma-separated integers in [" +
                       std::to_string(lo) + ", " + std::to_string(hi) + "], not '" + s + "'");
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

const std::string& Args::graph() const {
  if (positional.empty()) throw UsageError("missing GRAPH (a .yaml model)");
  return positional[0];
}

}  // namespace fqrun
