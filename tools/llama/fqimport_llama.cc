// fqimport-llama: writes the FQ float graph of a llama2.c checkpoint (tools/llama/graph.h).
//   fqimport-llama CHECKPOINT TOKENIZER -o OUT.yaml
// The graph's meta names the tokenizer by file name (`tokenizer:`); it is looked up next to the
// graph, so copy TOKENIZER beside OUT.yaml. Exit status 0, or 2 with one line on stderr.
#include <cstdio>
#include <filesystem>
#include <string>

#include "checkpoint.h"
#include "fq/graph.h"
#include "graph.h"
#include "tokenizer.h"

int main(int argc, char** argv) {
  std::string checkpoint, tokenizer, out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-o" || a == "--output") && i + 1 < argc) {
      out = argv[++i];
    } else if (!a.empty() && a[0] == '-') {
      out.clear();
      checkpoint.clear();
      break;
    } else if (checkpoint.empty()) {
      checkpoint = a;
    } else if (tokenizer.empty()) {
      tokenizer = a;
    } else {
      checkpoint.clear();
      break;
    }
  }
  if (checkpoint.empty() || tokenizer.empty() || out.empty()) {
    std::fprintf(stderr, "usage: fqimport-llama CHECKPOINT TOKENIZER -o OUT.yaml\n");
    return 2;
  }
  try {
    const fq::llama::LlamaWeights w = fq::llama::load_checkpoint(checkpoint);
    fq::llama::Tokenizer::load(tokenizer, w.config.vocab_size);  // must match the model
    namespace fs = std::filesystem;
    fq::Graph g = fq::llama::build_float_graph(w, fs::path(out).stem().string());
    g.meta["source"] = fs::path(checkpoint).filename().string();
    g.meta["tokenizer"] = fs::path(tokenizer).filename().string();
    fq::save_graph(g, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqimport-llama: %s\n", e.what());
    return 2;
  }
  return 0;
}
