// fqrun generate: text generation with a llama2.c-style decode graph (tools/llama/graph.h),
// printing exactly what llama2.c's run.c prints (docs/fqrun.md).
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <vector>

#include "common.h"
#include "lm.h"
#include "forward.h"    // tools/llama: Sampler
#include "tokenizer.h"  // tools/llama: Tokenizer, piece_printable

namespace fqrun {

namespace {

const char kGenerateUsage[] =
    "usage: fqrun generate GRAPH [options]\n"
    "\n"
    "Generates text with a decode graph (inputs tokens i32 [1] and pos i32 [1], output logits f32\n"
    "or integer + logits_scale, KV caches as state tensors; written by fqimport-llama or\n"
    "fqquant-llama). Feeds BOS and the prompt, then\n"
    "samples like llama2.c run.c until -n positions are done or BOS is sampled. Prints the text on\n"
    "stdout (run.c's decoding and safe-print rules, then a newline) and 'X tok/s' on stderr.\n"
    "The tokenizer is the file named by the graph's meta 'tokenizer', next to the graph.\n"
    "Byte-level graphs (meta 'tokenizer: bytes', e.g. fqimport-rwkv's): the prompt's bytes are the\n"
    "tokens (an empty prompt feeds a newline), the raw sampled bytes are printed, BOS is not special.\n"
    "\n"
    "options:\n"
    "  --prompt TEXT   prompt (default: none, start from BOS)\n"
    "  -n N            positions to run, prompt included (default 256; 0 = the context length;\n"
    "                  more than the context length is an error)\n"
    "  --temp T        temperature >= 0 (default 1.0; 0 = greedy argmax)\n"
    "  --topp P        top-p (nucleus) sampling in [0, 1] (default 0.9; 0 or 1 = plain sampling)\n"
    "  --seed S        random seed, a positive integer (default: the current time)\n"
    "  --threads T     worker threads (default 1)\n"
    "  --isa ISA       highest kernel ISA (default: $FQ_ISA, else the best)\n"
    "  --no-stop       do not stop when BOS is sampled: feed it and go on (a new story starts)\n"
    "  --tokens-out FILE  append one line to FILE: the token ids fed at every position run\n"
    "                  (BOS, the prompt, the sampled tokens fed back; -n ids unless generation\n"
    "                  stopped at BOS), the format 'fqrun eval --tokens' reads\n"
    "\n"
    "Integer graphs (logits i16 with logits_scale): greedy (--temp 0) takes the argmax of the\n"
    "integer logits; sampling uses the real logits q * mant * 2^-exp.\n";

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
                {"seed", 0, true}, {"threads", 't', true}, {"tokens-out", 0, true},
                {"no-stop", 0, false}},
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
  const bool no_stop = a.has("no-stop");
  const std::string tokens_out = a.str("tokens-out", "");
  if (a.has("tokens-out") && tokens_out.empty())
    throw UsageError("option '--tokens-out' needs a file name");
  const fq::Options opt = session_options(global, a, threads);

  const fq::Graph g = fq::load_graph(path);
  // Byte-level models (RWKV, meta `tokenizer: bytes`): the prompt's bytes are the tokens.
  const bool bytes = is_byte_model(g);
  const std::string tok_path = bytes ? std::string() : tokenizer_file(g, path, "fqrun generate");
  if (!is_decode_graph(g))
    throw fq::Error(path + ": not a language-model decode graph (needs inputs 'tokens' and 'pos')");
  DecodeSession ds(g, path, opt);
  const int vocab = ds.vocab();
  const int64_t context = ds.context();
  const RealOutput& logits = ds.logits();

  std::optional<fq::llama::Tokenizer> tok;
  if (!bytes) tok.emplace(fq::llama::Tokenizer::load(tok_path, vocab));
  if (bytes && vocab != 256)
    throw fq::Error(path + ": a byte-level graph needs 256 logits, it has " + std::to_string(vocab));
  const int steps = int(n_opt == 0 ? context : n_opt);
  if (steps > context)
    throw UsageError("-n " + std::to_string(n_opt) + " is beyond the context length " +
                     std::to_string(context) + " of " + path);
  // encode() puts BOS first and never drops text: an empty prompt gives [BOS] (start from BOS,
  // as run.c), a non-empty one BOS plus at least one token. So the check below cannot fire; it
  // keeps prompt_tokens[0] safe (run.c: "expected at least 1 prompt token").
  // Byte models have no BOS: an empty prompt starts from a newline (fed, not printed).
  const std::vector<int> prompt_tokens =
      !bytes ? tok->encode(prompt, true, false)
             : prompt.empty() ? std::vector<int>{'\n'}
                              : std::vector<int>(reinterpret_cast<const unsigned char*>(prompt.data()),
                                                 reinterpret_cast<const unsigned char*>(prompt.data()) + prompt.size());
  if (prompt_tokens.empty()) throw fq::Error("prompt: the prompt encodes to no tokens");
  for (int t : prompt_tokens)
    if (t < 0 || t >= vocab)
      throw fq::Error("prompt: encoding gave token " + std::to_string(t) +
                      ", outside the model's vocabulary of " + std::to_string(vocab));
  if (int64_t(prompt_tokens.size()) > steps)
    throw UsageError("the prompt encodes to " + std::to_string(prompt_tokens.size()) +
                     " tokens (with BOS), more than -n " + std::to_string(steps));
  // Open the token file before generating, so a bad name fails before any output.
  std::FILE* tf = nullptr;
  if (!tokens_out.empty()) {
    tf = std::fopen(tokens_out.c_str(), "a");
    if (!tf) throw fq::Error(tokens_out + ": cannot open for appending: " + std::strerror(errno));
  }
  std::vector<int> fed;  // the token at every position run, for --tokens-out
  fed.reserve(size_t(steps));

  fq::llama::Sampler sampler(vocab, temp, topp, seed);
  std::vector<float> scores(size_t(vocab), 0.f);
  std::vector<double> real(size_t(vocab), 0.0);
  using clock = std::chrono::steady_clock;
  clock::time_point start;
  bool started = false;
  const int n_prompt = int(prompt_tokens.size());
  int token = prompt_tokens[0], pos = 0;
  ds.session().reset_state();
  if (bytes && !prompt.empty()) std::fputc(prompt_tokens[0], stdout);
  while (pos < steps) {
    ds.step(token, pos);
    fed.push_back(token);
    int next;
    if (pos < n_prompt - 1) {
      next = prompt_tokens[size_t(pos) + 1];
    } else if (logits.is_float()) {
      // The float graph: exactly run.c's sampler on the float logits.
      std::memcpy(scores.data(), logits.values.data, scores.size() * sizeof(float));
      next = sampler.sample(scores.data());
    } else if (temp == 0.0f) {
      next = int(logits.argmax_stored(0));  // greedy on the integers: same order as the reals
    } else {
      logits.read_row(0, real.data());  // q * mant * 2^-exp
      for (size_t i = 0; i < real.size(); ++i) scores[i] = float(real[i]);
      next = sampler.sample(scores.data());
    }
    pos++;
    if (!bytes && next == fq::llama::kBos && !no_stop) break;  // BOS delimits sequences
    if (bytes) {
      std::fputc(next, stdout);  // raw bytes (UTF-8 text, or whatever the model writes)
      std::fflush(stdout);
    } else {
      const std::string piece = tok->decode(token, next);
      if (fq::llama::piece_printable(piece)) {
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
      }
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
  if (tf) {
    std::string line;
    for (size_t i = 0; i < fed.size(); ++i) line += (i ? " " : "") + std::to_string(fed[i]);
    line += '\n';
    const bool ok = std::fwrite(line.data(), 1, line.size(), tf) == line.size();
    if (std::fclose(tf) != 0 || !ok) throw fq::Error(tokens_out + ": write error");
  }
  return 0;
}

}  // namespace fqrun
