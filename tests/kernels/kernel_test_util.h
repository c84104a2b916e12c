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

// The dispatch contract of a kernel family (`list`: all compiled variants; `pick`: the dispatcher):
// scalar listed first; the variant picked for the FQ_ISA cap fits the cap, runs on this CPU, and
// no compiled variant that also does is above it; the scalar level picks the scalar variant.
template <class K>
void check_dispatch(const K* const* (*list)(size_t*), const K* (*pick)(Isa), const char* family) {
  size_t n = 0;
  const K* const* all = list(&n);
  REQUIRE(n >= 1);
  REQUIRE(all[0]->isa == Isa::scalar);
  const Isa want = isa_from_env();
  const K* k = pick(want);
  REQUIRE(k != nullptr);
  CHECK(isa_fits(k->isa, want));
  CHECK(isa_supported(k->isa));
  for (size_t i = 0; i < n; ++i)
    if (isa_fits(all[i]->isa, want) && isa_supported(all[i]->isa)) CHECK(all[i]->isa <= k->isa);
  CHECK(pick(Isa::scalar)->isa == Isa::scalar);
  WARN("FQ_ISA level " << isa_name(want) << " -> " << family << " variant " << k->name);
}

}  // namespace fq::k::test
