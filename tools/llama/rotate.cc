// Hadamard matrices exactly as the integer `hadamard` op applies them (quantize.h).
#include <string>

#include "hadamard_tables.h"  // kernels/llm: H_12, H_20, H_28, H_44
#include "quantize.h"

namespace fq::llama {

namespace {

int block_of(int n) {
  if (n <= 0) return 0;
  int odd = n;
  while ((odd & 1) == 0) odd >>= 1;
  const int b = odd == 1 ? 1 : odd == 3 ? 12 : odd == 5 ? 20 : odd == 7 ? 28 : odd == 11 ? 44 : 0;
  if (b == 0 || n % b != 0) return 0;
  const int p = n / b;
  return (p & (p - 1)) == 0 ? b : 0;
}

int8_t block_entry(int b, int i, int j) {
  using namespace fq::k::llm_tables;
  switch (b) {
    case 1: return 1;
    case 12: return kHadamard12[i][j];
    case 20: return kHadamard20[i][j];
    case 28: return kHadamard28[i][j];
    case 44: return kHadamard44[i][j];
  }
  return 0;
}

}  // namespace

int hadamard_size_at_least(int n) {
  for (int m = n;; ++m)
    if (block_of(m)) return m;
}

std::vector<int8_t> hadamard_matrix(int n) {
  const int b = block_of(n);
  if (!b) throw Error("hadamard: size " + std::to_string(n) + " is not 2^k * {1,12,20,28,44}");
  const int p = n / b;
  std::vector<int8_t> h(size_t(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const int i1 = i / b, i2 = i % b, j1 = j / b, j2 = j % b;
      const int s = (__builtin_popcount(unsigned(i1 & j1)) & 1) ? -1 : 1;
      (void)p;
      h[size_t(i) * n + j] = int8_t(s * block_entry(b, i2, j2));
    }
  return h;
}

}  // namespace fq::llama
