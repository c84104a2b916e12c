// llama_run: llama2.c run.c's command line on the FQ float reference (tools/llama, docs/llama.md).
//   llama_run <checkpoint> [-t temperature] [-p topp] [-s seed] [-n steps] [-i prompt] [-z tokenizer]
// Prints the generated text like run.c (stdout, then a newline) and "achieved tok/s: X" on stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "checkpoint.h"
#include "forward.h"
#include "fq/graph.h"
#include "tokenizer.h"

namespace {

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "Usage:   llama_run <checkpoint> [options]\n"
               "Example: llama_run stories260K.bin -z tok512.bin -t 0 -n 200\n"
               "Options:\n"
               "  -t <float>  temperature in [0,inf), default 1.0\n"
               "  -p <float>  p value in top-p (nucleus) sampling in [0,1], default 0.9\n"
               "  -s <int>    random seed, default time(NULL)\n"
               "  -n <int>    number of steps to run for, default 256. 0 = max_seq_len\n"
               "  -i <string> input prompt\n"
               "  -z <string> tokenizer path, default tokenizer.bin\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fq::llama;
  if (argc < 2) usage();
  const std::string checkpoint = argv[1];
  std::string tokenizer_path = "tokenizer.bin";
  std::string prompt;
  float temperature = 1.0f, topp = 0.9f;
  unsigned long long seed = 0;
  int steps = 256;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc || argv[i][0] != '-' || std::strlen(argv[i]) != 2) usage();
    const char* v = argv[i + 1];
    switch (argv[i][1]) {
      case 't': temperature = std::strtof(v, nullptr); break;
      case 'p': topp = std::strtof(v, nullptr); break;
      case 's': seed = std::strtoull(v, nullptr, 10); break;
      case 'n': steps = std::atoi(v); break;
      case 'i': prompt = v; break;
      case 'z': tokenizer_path = v; break;
      default: usage();
    }
  }
  // run.c's parameter overrides.
  if (seed == 0) seed = static_cast<unsigned int>(std::time(nullptr));
  if (temperature < 0.0f) temperature = 0.0f;
  if (topp < 0.0f || 1.0f < topp) topp = 0.9f;
  if (steps < 0) steps = 0;
  try {
    const LlamaWeights w = load_checkpoint(checkpoint);
    const Tokenizer tok = Tokenizer::load(tokenizer_path, w.config.vocab_size);
    Sampler sampler(w.config.vocab_size, temperature, topp, seed);
    const GenerateResult r = generate(w, tok, sampler, prompt, steps, [](const std::string& p) {
      std::fputs(p.c_str(), stdout);
      std::fflush(stdout);
    });
    std::printf("\n");
    if (r.positions > 1) std::fprintf(stderr, "achieved tok/s: %f\n", r.tok_per_s);
  } catch (const fq::Error& e) {
    std::fprintf(stderr, "llama_run: %s\n", e.what());
    return 1;
  }
  return 0;
}
