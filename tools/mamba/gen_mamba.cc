// gen_mamba: writes a Mamba (v1) checkpoint (config.json + model.safetensors, the layout of
// state-spaces/mamba-130m) with mamba_ssm's initialization (init.h), deterministic for a seed.
//   gen_mamba -o DIR [--d-model 256] [--n-layer 4] [--d-state 16] [--expand 2] [--d-conv 4]
//             [--vocab 512] [--seed 1] [--dtype F32|F16|BF16]
// Exit status 0, or 2 with one line on stderr.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "init.h"
#include "model.h"

namespace {

bool parse_int(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::atoi(s.c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  fq::mamba::Config c;
  c.d_model = 256, c.n_layer = 4, c.vocab_size = 512;
  int seed = 1;
  std::string out, dtype = "F32";
  std::string bad;
  for (int i = 1; i < argc && bad.empty(); ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    int* target = nullptr;
    if (a == "--d-model") target = &c.d_model;
    else if (a == "--n-layer") target = &c.n_layer;
    else if (a == "--d-state") target = &c.d_state;
    else if (a == "--expand") target = &c.expand;
    else if (a == "--d-conv") target = &c.d_conv;
    else if (a == "--vocab") target = &c.vocab_size;
    else if (a == "--seed") target = &seed;
    if (target) {
      if (!has || !parse_int(argv[++i], target)) bad = "option " + a + " needs a non-negative integer";
    } else if ((a == "-o" || a == "--output") && has) {
      out = argv[++i];
    } else if (a == "--dtype" && has) {
      dtype = argv[++i];
    } else {
      bad = "unknown argument '" + a + "'";
    }
  }
  if (!bad.empty() || out.empty()) {
    std::fprintf(stderr, "%s%susage: gen_mamba -o DIR [--d-model N] [--n-layer N] [--d-state N] [--expand N] "
                 "[--d-conv N] [--vocab N] [--seed N] [--dtype F32|F16|BF16]\n",
                 bad.c_str(), bad.empty() ? "" : "\n");
    return 2;
  }
  try {
    c.dt_rank = (c.d_model + 15) / 16;
    fq::mamba::InitOptions o;
    o.seed = uint64_t(seed);
    const fq::mamba::Model m = fq::mamba::init_model(c, o);
    fq::mamba::save_model(m, out, dtype);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_mamba: %s\n", e.what());
    return 2;
  }
  return 0;
}
