// fqrun generate: text generation with a llama2.c-style decode graph (tools/llama/graph.h),
// printing exactly what llama2.c's run.c prints (docs/fqrun.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "common.h"
#include "forward.h"    // tools/llama: Sampler
#include "tokenizer.h"  // tools/llama: Tokenizer, piece_printable

namespace fqrun {

namespace {

const char kGenerateUsage[] =
    "usage: fqrun generate GRAPH [options]\n"
    "\n"
    "Generates text with a decode graph (inputs tokens i32 [1] and pos i32 [1], output logits,\n"
    "KV caches as state tensors; written by fqimport-llama). Feeds BOS and the prompt, then\n"
    "samples like llama2.c run.c until -n positions are done or BOS is sampled. Prints the text on\n"
    "stdout (run.c's decoding and safe-print rules, then a newline) and 'X tok/s' on stderr.\n"
    "The tokenizer is the file named by the graph's meta 'tokenizer', next to the graph.\n"
    "\n"
    "options:\n"
    "  --prompt TEXT   prompt (default: none, start from BOS)\n"
    "  -n N            positions to run, prompt included (default 256; 0 = the context length;\n"
    "                  more than the context length is an error)\n"
    "  --temp T        temperature >= 0 (default 1.0; 0 = greedy argmax)\n"
    "  --topp P        top-p (nucleus) sampling in [0, 1] (default 0.9; 0 or 1 = plain sampling)\n"
    "  --seed S        random seed, a positive integer (default: the current time)\n"
    "  --threads T     worker threads (default 1)\n"
    "  --isa ISA       highest kernel ISA (default: $FQ_ISA, else the best)\n";

// A finite number in [lo, hi]; `range` describes it for the error message.
double real_option(const Args& a, const std::string& name, double fallback, double lo, double hi,
                   const std::string& range) {
  if (!a.has(name)) return fallback;
  const std::string v = a.str(name, "");
  char* end = nullptr;
  const double d = v.empty() ? NAN : std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(d) || d < lo || d > hi)
    throw UsageError("option '--" + name + "' takes " + range + ", not '" + v + "'");
  return d;
}

}  // namespace

int cmd_generate(const std::vector<std::string>& argv, const Global& global) {
  const Args a(argv,
               {{"prompt", 0, true}, {"n", 'n', true}, {"temp", 0, true}, {"topp", 0, true},
                {"seed", 0, true}, {"threads", 't', true}},
               1);
  if (a.help) {
    std::fputs(kGenerateUsage, stdout);
    return 0;
  }
  const std::string& path = a.graph();
  const std::string prompt = a.str("prompt", "");
  const int64_t n_opt = a.integer("n", 256, 0, int64_t{1} << 30);
  const float temp = float(real_option(a, "temp", 1.0, 0.0, 1e30, "a number >= 0"));
  const float topp = float(real_option(a, "topp", 0.9, 0.0, 1.0, "a number in [0, 1]"));
  uint64_t seed = uint64_t(a.integer("seed", 0, 0, INT64_MAX));
  if (seed == 0) seed = static_cast<unsigned int>(std::time(nullptr));  // as run.c
  const int threads = int(a.integer("threads", 1, 1, 1024));
  const fq::Options opt = session_options(global, a, threads);

  const fq::Graph g = fq::load_graph(path);
  auto tok_it = g.meta.find("tokenizer");
  if (tok_it == g.meta.end() || tok_it->second.empty())
    throw fq::Error(path + ": the graph names no tokenizer (meta 'tokenizer'); fqrun generate "
                           "needs a language-model graph written by fqimport-llama");
  // The context length: the rows of the smallest KV cache an attention node updates.
  int64_t context = 0;
  for (const fq::NodeDef& n : g.nodes)
    if (n.op == "attention") {
      const int64_t rows = g.tensor(n.inputs[3]).shape[0];
      context = context ? std::min(context, rows) : rows;
    }
  if (!context) throw fq::Error(path + ": the graph has no attention node (not a decode graph)");

  fq::Session s(g, opt);
  fq::TensorView tokens = s.input("tokens"), pos_in = s.input("pos");
  if (tokens.dtype != fq::DType::i32 || tokens.shape != std::vector<int64_t>{1} ||
      pos_in.dtype != fq::DType::i32 || pos_in.shape != std::vector<int64_t>{1})
    throw fq::Error(path + ": inputs 'tokens' and 'pos' must be i32 [1]");
  const fq::TensorView logits = s.output("logits");
  if (logits.dtype != fq::DType::f32 || logits.shape.empty())
    throw fq::Error(path + ": output 'logits' must be f32 [1, vocab]");
  const int vocab = int(logits.shape.back());
  if (int64_t(vocab) * 4 != int64_t(logits.bytes))
    throw fq::Error(path + ": output 'logits' must be f32 [1, vocab]");

  const fq::llama::Tokenizer tok =
      fq::llama::Tokenizer::load(dirname_of(path) + "/" + tok_it->second, vocab);
  const int steps = int(n_opt == 0 ? context : n_opt);
  if (steps > context)
    throw UsageError("-n " + std::to_string(n_opt) + " is beyond the context length " +
                     std::to_string(context) + " of " + path);
  const std::vector<int> prompt_tokens = tok.encode(prompt, true, false);
  for (int t : prompt_tokens)
    if (t < 0 || t >= vocab)
      throw fq::Error("prompt: encoding gave token " + std::to_string(t) +
                      ", outside the model's vocabulary of " + std::to_string(vocab));
  if (int64_t(prompt_tokens.size()) > steps)
    throw UsageError("the prompt encodes to " + std::to_string(prompt_tokens.size()) +
                     " tokens (with BOS), more than -n " + std::to_string(steps));

  fq::llama::Sampler sampler(vocab, temp, topp, seed);
  std::vector<float> scores(size_t(vocab), 0.f);
  using clock = std::chrono::steady_clock;
  clock::time_point start;
  bool started = false;
  const int n_prompt = int(prompt_tokens.size());
  int token = prompt_tokens[0], pos = 0;
  s.reset_state();
  while (pos < steps) {
    static_cast<int32_t*>(tokens.data)[0] = token;
    static_cast<int32_t*>(pos_in.data)[0] = pos;
    s.run();
    int next;
    if (pos < n_prompt - 1) {
      next = prompt_tokens[size_t(pos) + 1];
    } else {
      std::memcpy(scores.data(), logits.data, scores.size() * sizeof(float));
      next = sampler.sample(scores.data());
    }
    pos++;
    if (next == fq::llama::kBos) break;  // BOS delimits sequences
    const std::string piece = tok.decode(token, next);
    if (fq::llama::piece_printable(piece)) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    token = next;
    if (!started) {
      started = true;
      start = clock::now();
    }
  }
  std::printf("\n");
  std::fflush(stdout);
  if (pos > 1 && started) {
    const double sec = std::chrono::duration<double>(clock::now() - start).count();
    std::fprintf(stderr, "%.2f tok/s\n", sec > 0 ? (pos - 1) / sec : 0.0);
  }
  return 0;
}

}  // namespace fqrun
