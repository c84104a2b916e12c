// rwkv_run: runs the float reference forward pass (forward.h) of an rwkv.cpp model on bytes.
//   rwkv_run MODEL [--version V] [--expected LOGITS.bin] [--text TEXT]
// Feeds TEXT (default `"in`, the bytes rwkv.cpp's tests use) one byte at a time from the zero state.
// With --expected (256 float32 logits), prints the largest absolute difference of the last logits
// and exits 1 when it exceeds 1e-4. Exit status 2 with one line on stderr for bad input.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "forward.h"
#include "fq/fq.h"
#include "model.h"

int main(int argc, char** argv) {
  std::string model, expected, text = "\"in", version;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--expected" && i + 1 < argc) expected = argv[++i];
    else if (a == "--text" && i + 1 < argc) text = argv[++i];
    else if (a == "--version" && i + 1 < argc) version = argv[++i];
    else if (model.empty() && !a.empty() && a[0] != '-') model = a;
    else model.clear(), i = argc;
  }
  if (model.empty() || text.empty()) {
    std::fprintf(stderr, "usage: rwkv_run MODEL [--version V] [--expected LOGITS.bin] [--text TEXT]\n");
    return 2;
  }
  try {
    fq::rwkv::Version v;
    if (!version.empty() && !fq::rwkv::parse_version(version, &v))
      throw fq::Error("--version: '" + version + "' is not 4, 5.1, 5.2, 6 or 7");
    const fq::rwkv::Model m = fq::rwkv::load_model(model, v);
    fq::rwkv::State s(m);
    std::vector<float> logits;
    for (unsigned char c : text) logits = fq::rwkv::forward(m, s, c);
    std::printf("model %s: RWKV v%s, n_embed %d, n_layer %d, heads %d x %d, ffn %d, type %s\n",
                model.c_str(), m.version.str().c_str(), m.n_embed, m.n_layer, m.head_count,
                m.head_size, m.ffn_size, fq::rwkv::type_name(m.data_type));
    if (expected.empty()) {
      for (size_t i = 0; i < logits.size(); ++i) std::printf("%s%.6f", i ? " " : "", logits[i]);
      std::printf("\n");
      return 0;
    }
    const std::string e = fq::read_file(expected);
    if (e.size() != logits.size() * 4)
      throw fq::Error(expected + ": " + std::to_string(e.size()) + " bytes, expected " +
                      std::to_string(logits.size() * 4));
    double max_err = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      float ref;
      std::memcpy(&ref, e.data() + 4 * i, 4);
      max_err = std::fmax(max_err, std::fabs(double(ref) - double(logits[i])));
    }
    std::printf("max |logit - expected| = %.3g\n", max_err);
    return max_err <= 1e-4 ? 0 : 1;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "rwkv_run: %s\n", ex.what());
    return 2;
  }
}
