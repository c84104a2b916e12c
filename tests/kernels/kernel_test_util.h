// Helpers shared by the kernel tests: deterministic random data and the "which variants may run
// here" rule (compiled, supported by this CPU, and within the FQ_ISA cap).
#pragma once
#include <catch2/catch.hpp>
#include <algorithm>
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

// The compiled variants after scalar that may run here (runnable), and the scalar one.
template <class K>
std::vector<const K*> tested_variants(const K* const* (*list)(size_t*)) {
  size_t n = 0;
  const K* const* all = list(&n);
  std::vector<const K*> v;
  for (size_t i = 1; i < n; ++i)
    if (runnable(all[i]->isa, all[i]->name)) v.push_back(all[i]);
  return v;
}
template <class K>
const K& scalar_variant(const K* const* (*list)(size_t*)) {
  size_t n = 0;
  return *list(&n)[0];
}

// How a task-parallel kernel's tasks [0, tasks) are handed out in a test.
enum class Split { all, one_by_one_reversed, random_chunks };

// Runs run(y, t0, t1, scratch) over the tasks as `split` says, writing `bytes` of output into a
// buffer with 64 guard bytes on each side that must survive; the two scratch buffers
// (scratch_bytes + 3 each) are poisoned and handed out misaligned by 0, 1 or 3 bytes. Returns the
// output.
template <class Run>
std::vector<uint8_t> run_split(int64_t tasks, size_t bytes, size_t scratch_bytes, Split split, Rng& r, Run run) {
  std::vector<uint8_t> scratch_a(scratch_bytes + 3, 0xa5), scratch_b(scratch_bytes + 3, 0x5a);
  constexpr size_t kGuard = 64;
  std::vector<uint8_t> out(bytes + 2 * kGuard, 0xee);
  void* y = out.data() + kGuard;
  REQUIRE(tasks >= 1);
  switch (split) {
    case Split::all:
      run(y, int64_t{0}, tasks, scratch_a.data() + 3);
      break;
    case Split::one_by_one_reversed:
      for (int64_t t = tasks - 1; t >= 0; --t) run(y, t, t + 1, (t & 1 ? scratch_a : scratch_b).data());
      break;
    case Split::random_chunks:
      for (int64_t t = 0, i = 0; t < tasks; ++i) {
        const int64_t e = std::min(tasks, t + uniform(r, 1, 3));
        run(y, t, e, (i & 1 ? scratch_a : scratch_b).data() + 1);
        t = e;
      }
      break;
  }
  for (size_t i = 0; i < kGuard; ++i) {
    REQUIRE(out[i] == 0xee);
    REQUIRE(out[kGuard + bytes + i] == 0xee);
  }
  return std::vector<uint8_t>(out.begin() + kGuard, out.end() - kGuard);
}

// got == want, or a failure naming the first differing byte i (and what(i), e.g. its channel).
template <class What>
void require_same_bytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, What what) {
  REQUIRE(got.size() == want.size());
  if (got == want) return;
  size_t i = 0;
  while (got[i] == want[i]) ++i;
  FAIL("first differing byte " << i << what(i) << ": got " << int(got[i]) << ", want " << int(want[i]));
}

// Every variant against `want` (the scalar output) in each split of its tasks, run(kernel, split)
// giving the bytes; describe(kernel) names the case. Returns the number of runs compared.
template <class K, class Run, class Describe, class What>
int check_splits(const std::vector<const K*>& variants, const std::vector<uint8_t>& want, Run run,
                 Describe describe, What what) {
  int compared = 0;
  for (const K* v : variants)
    for (Split split : {Split::all, Split::one_by_one_reversed, Split::random_chunks}) {
      INFO(v->name << " on " << describe(*v) << ", split " << int(split));
      require_same_bytes(run(*v, split), want, what);
      ++compared;
    }
  return compared;
}

}  // namespace fq::k::test
