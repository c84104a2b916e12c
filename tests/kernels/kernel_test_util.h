// Helpers shared by the kernel tests: deterministic random data and the "which variants may run
// here" rule (compiled, supported by this CPU, and within the FQ_ISA cap).
#pragma once
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fq/kernels/cpu.h"

namespace fq::k::test {

using Rng = std::mt19937_64;

inline int64_t uniform(Rng& r, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(r);
}

template <class T>
std::vector<T> random_vec(Rng& r, size_t n, int64_t lo, int64_t hi) {
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(uniform(r, lo, hi));
  return v;
}

// True when the variant should be tested here; otherwise reports why it is skipped.
inline bool runnable(Isa isa, const char* name) {
  static const Isa cap = isa_from_env();
  if (!isa_supported(isa)) {
    WARN("skipping " << name << ": this CPU/OS cannot run " << isa_name(isa));
    return false;
  }
  if (!isa_fits(isa, cap)) {
    WARN("skipping " << name << ": above FQ_ISA=" << isa_name(cap));
    return false;
  }
  return true;
}

}  // namespace fq::k::test
