// fqrun's command-line parsing: GNU-style long options ("--top 3" or "--top=3"), positional
// arguments, and one-line usage errors (exit status 2).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fq/graph.h"

namespace fqrun {

// A malformed command line; main prints "fqrun CMD: MSG (see 'fqrun CMD --help')" and exits 2.
struct UsageError : fq::Error {
  using fq::Error::Error;
};

struct OptSpec {
  const char* name;      // long name without dashes, e.g. "top"
  char alias;            // short alias ('v' for -v) or 0
  bool takes_value;
};

// The options every command accepts (besides --help/-h): --isa.
extern const std::vector<OptSpec> kGlobalOpts;

class Args {
 public:
  // Parses argv (the words after the command name) against `spec` + kGlobalOpts. Throws UsageError.
  Args(const std::vector<std::string>& argv, const std::vector<OptSpec>& spec, size_t max_positional);

  bool help = false;
  std::vector<std::string> positional;

  bool has(const std::string& name) const { return opts_.count(name) != 0; }
  std::string str(const std::string& name, const std::string& fallback) const;
  // Integer option in [lo, hi]; UsageError naming the option otherwise.
  int64_t integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  // One of `choices`.
  std::string choice(const std::string& name, const std::string& fallback,
                     const std::vector<std::string>& choices) const;
  // Comma-separated integers, each in [lo, hi].
  std::vector<int64_t> int_list(const std::string& name, const std::string& fallback, int64_t lo,
                                int64_t hi) const;
  // The single positional GRAPH argument (UsageError when missing).
  const std::string& graph() const;

 private:
  std::map<std::string, std::string> opts_;
};

// Strict decimal integer parse (optional leading '-', digits only, no overflow).
bool parse_int(const std::string& s, int64_t* out);

}  // namespace fqrun
