#include "dataset.h"

#include <algorithm>
#include <numeric>

#include "fq/fq.h"

namespace fq::tools {

Dataset load_dataset(const std::string& spec) {
  const std::string kMnist = "mnist:";
  const size_t comma = spec.find(',');
  if (spec.rfind(kMnist, 0) != 0 || comma == std::string::npos)
    throw Error("dataset '" + spec + "': expected mnist:IMAGES,LABELS");
  const std::string img_path = spec.substr(kMnist.size(), comma - kMnist.size());
  const std::string lbl_path = spec.substr(comma + 1);
  Dataset d;
  d.h = d.w = 28;
  const std::string img = read_file(img_path), lbl = read_file(lbl_path);
  const size_t per = size_t(d.h) * d.w;
  if (img.empty() || img.size() % per != 0)
    throw Error(img_path + ": size " + std::to_string(img.size()) +
                " is not a whole number of 28x28 uint8 images");
  d.n = static_cast<int>(img.size() / per);
  if (lbl.size() != size_t(d.n))
    throw Error(lbl_path + ": " + std::to_string(lbl.size()) + " labels for " +
                std::to_string(d.n) + " images in " + img_path);
  d.pixels.assign(img.begin(), img.end());
  d.labels.assign(lbl.begin(), lbl.end());
  for (int i = 0; i < d.n; ++i)
    if (d.labels[i] > 9)
      throw Error(lbl_path + ": label " + std::to_string(d.labels[i]) + " at index " +
                  std::to_string(i) + " is not a digit");
  return d;
}

std::vector<int> split_indices(int n, uint64_t seed, int train, bool want_train) {
  uint64_t state = seed;
  auto next = [&state] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<int> a(n);
  std::iota(a.begin(), a.end(), 0);
  for (int i = n - 1; i >= 1; --i) std::swap(a[i], a[next() % uint64_t(i + 1)]);
  train = std::clamp(train, 0, n);
  return want_train ? std::vector<int>(a.begin(), a.begin() + train)
                    : std::vector<int>(a.begin() + train, a.end());
}

std::vector<int> parse_split(const std::string& spec, int n) {
  const size_t c1 = spec.find(':'), c2 = spec.find(':', c1 == std::string::npos ? 0 : c1 + 1);
  if (c1 == std::string::npos || c2 == std::string::npos)
    throw Error("split '" + spec + "': expected SEED:TRAIN:train|test");
  const std::string part = spec.substr(c2 + 1);
  if (part != "train" && part != "test")
    throw Error("split '" + spec + "': the last field must be 'train' or 'test'");
  try {
    const uint64_t seed = std::stoull(spec.substr(0, c1));
    const int train = std::stoi(spec.substr(c1 + 1, c2 - c1 - 1));
    if (train < 0 || train > n) throw std::out_of_range("train");
    return split_indices(n, seed, train, part == "train");
  } catch (const std::logic_error&) {
    throw Error("split '" + spec + "': SEED and TRAIN must be integers, TRAIN in [0, " +
                std::to_string(n) + "]");
  }
}

}  // namespace fq::tools
