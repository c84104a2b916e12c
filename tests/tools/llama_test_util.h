// Shared helpers of the llama tests: where the models live and scratch folders.
#pragma once
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <unistd.h>

#include "../temp_dir.h"

namespace fq::llama::test {

// The models live outside the repo (FQ_SHARED_DIR, set by tests/CMakeLists.txt); FQ_LLAMA_DIR
// overrides the folder.
inline std::string model_dir() {
  if (const char* d = std::getenv("FQ_LLAMA_DIR")) return d;
  return std::string(FQ_SHARED_DIR) + "/models/llama";
}
inline std::string model_file(const char* name) { return model_dir() + "/" + name; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// What run.c printed, without its trailing newline and the optional "achieved tok/s" line (which
// run.c writes to stderr but a captured log may contain).
inline std::string expected_greedy_text() {
  std::string s = read_file(model_file("expected-stdout-t0-n200.txt"));
  const size_t at = s.find("achieved tok/s");
  if (at != std::string::npos) s.erase(at);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

using fq::test::TempDir;

}  // namespace fq::llama::test
