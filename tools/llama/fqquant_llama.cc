// fqquant-llama: writes the integer decode graph (docs/llm_int.md) of a llama2.c checkpoint.
//   fqquant-llama CHECKPOINT TOKENIZER --recipe RECIPE.yaml -o OUT.yaml
//                 [--set KEY=VALUE ...] [--eval TOKENS] [-v]
// --set overrides a recipe key (method ablations); --eval prints the simulated perplexity of the
// float and the quantized model on a token file (one sequence per line); -v prints the notes.
// Exit status 0, or 2 with one line on stderr.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "fq/graph.h"
#include "quantize.h"
#include "tokenizer.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: fqquant-llama CHECKPOINT TOKENIZER --recipe RECIPE.yaml -o OUT.yaml "
               "[--set KEY=VALUE]... [--eval TOKENS] [-v]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string checkpoint, tokenizer, recipe, out, eval;
  std::vector<std::string> sets;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-o" || a == "--output") && i + 1 < argc) out = argv[++i];
    else if (a == "--recipe" && i + 1 < argc) recipe = argv[++i];
    else if (a == "--set" && i + 1 < argc) sets.push_back(argv[++i]);
    else if (a == "--eval" && i + 1 < argc) eval = argv[++i];
    else if (a == "-v") verbose = true;
    else if (!a.empty() && a[0] == '-') return usage();
    else if (checkpoint.empty()) checkpoint = a;
    else if (tokenizer.empty()) tokenizer = a;
    else return usage();
  }
  if (checkpoint.empty() || tokenizer.empty() || recipe.empty() || out.empty()) return usage();
  namespace fs = std::filesystem;
  using namespace fq::llama;
  try {
    std::ifstream f(recipe, std::ios::binary);
    if (!f) throw fq::Error(recipe + ": cannot open recipe");
    std::ostringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    for (const std::string& s : sets) {  // replace the key's line (flat recipes only)
      const size_t eq = s.find('=');
      if (eq == std::string::npos || eq == 0) throw fq::Error("--set " + s + ": expected KEY=VALUE");
      const std::string key = s.substr(0, eq);
      std::istringstream in(text);
      std::string line, kept;
      while (std::getline(in, line))
        if (line.rfind(key + ":", 0) != 0) kept += line + "\n";
      text = kept + key + ": " + s.substr(eq + 1) + "\n";
    }
    const LlmRecipe r = parse_llm_recipe(text, recipe);
    const LlamaWeights w = load_checkpoint(checkpoint);
    Tokenizer::load(tokenizer, w.config.vocab_size);  // must match the model
    QuantReport rep;
    const TModel m = quantize_model(w, r, &rep);
    if (verbose)
      for (const auto& l : rep.lines) std::fprintf(stderr, "%s\n", l.c_str());
    fq::Graph g = build_int_graph(m, r, rep, fs::path(out).stem().string());
    g.meta["source"] = fs::path(checkpoint).filename().string();
    g.meta["tokenizer"] = fs::path(tokenizer).filename().string();
    g.meta["quant_recipe"] = fs::path(recipe).filename().string();
    g.meta["residual_exp"] = std::to_string(rep.residual_exp);
    fq::save_graph(g, out);
    if (!eval.empty()) {
      const auto seqs = read_token_file(eval);
      SimConfig q;
      q.act_qmax = r.act_qmax();
      q.kv_int8 = true;
      q.clip = r.attention_clip;
      double nf = 0, nq = 0;
      long count = 0;
      for (const auto& s : seqs) {
        nf += simulate(m, false, {}, s.data(), int(s.size()));
        nq += simulate(m, true, q, s.data(), int(s.size()));
        count += long(s.size()) - 1;
      }
      const double pf = std::exp(nf / count), pq = std::exp(nq / count);
      std::printf("sim: float ppl=%.4f quant ppl=%.4f ratio=%.4f tokens=%ld\n", pf, pq, pq / pf,
                  count);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqquant-llama: %s\n", e.what());
    return 2;
  }
  return 0;
}
