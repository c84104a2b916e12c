// Helpers of the tests that run FQ's command-line tools: files, a private temporary folder, and
// running a program with its exit code, stdout and stderr captured.
#pragma once
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fq::test {

inline bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// A private temporary folder, removed when the test binary exits.
inline const std::string& tmpdir() {
  struct Dir {
    std::string path;
    Dir() {
      char tmpl[] = "/tmp/fq_cli_test.XXXXXX";
      const char* d = mkdtemp(tmpl);
      if (d) path = d;
    }
    ~Dir() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  REQUIRE(!dir.path.empty());
  return dir.path;
}

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

inline std::string last_line(const std::string& s) {
  const auto v = lines_of(s);
  return v.empty() ? "" : v.back();
}

struct Proc {
  int code = -1;
  std::string out, err;
  std::vector<std::string> lines() const { return lines_of(out); }
  int err_lines() const {
    int n = 0;
    for (char c : err) n += c == '\n';
    return n;
  }
};

// Runs `exe` with `args` (already shell-quoted where needed).
inline Proc run(const std::string& exe, const std::string& args) {
  const std::string o = tmpdir() + "/stdout", e = tmpdir() + "/stderr";
  const std::string cmd = "'" + exe + "' " + args + " >'" + o + "' 2>'" + e + "'";
  const int st = std::system(cmd.c_str());
  Proc p;
  p.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  p.out = slurp(o), p.err = slurp(e);
  return p;
}

#ifdef FQRUN_PATH
inline Proc fqrun(const std::string& args) { return run(FQRUN_PATH, args); }
#endif

}  // namespace fq::test
