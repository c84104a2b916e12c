// fqimport-mamba: writes the FQ float decode graph of a Mamba (v1) checkpoint (tools/mamba/graph.h).
//   fqimport-mamba DIR -o OUT.yaml [--tokenizer NAME]
// DIR holds config.json and model.safetensors (the layout of state-spaces/mamba-130m). NAME, a
// tokenizer file expected beside the graph (e.g. tok512.bin), goes into the graph's meta for
// `fqrun generate` / `eval --text`. Exit status 0, or 2 with one line on stderr.
#include <cstdio>
#include <filesystem>
#include <string>

#include "fq/graph.h"
#include "graph.h"
#include "model.h"

int main(int argc, char** argv) {
  std::string dir, out, tokenizer;
  bool bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-o" || a == "--output") && i + 1 < argc) out = argv[++i];
    else if (a == "--tokenizer" && i + 1 < argc) tokenizer = argv[++i];
    else if (dir.empty() && !a.empty() && a[0] != '-') dir = a;
    else bad = true;
  }
  if (bad || dir.empty() || out.empty()) {
    std::fprintf(stderr, "usage: fqimport-mamba DIR -o OUT.yaml [--tokenizer NAME]\n");
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    const fq::mamba::Model m = fq::mamba::load_model(dir);
    fq::Graph g = fq::mamba::build_float_graph(m, fs::path(out).stem().string(), tokenizer);
    g.meta["source"] = fs::path(dir).filename().string();
    fq::save_graph(g, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqimport-mamba: %s\n", e.what());
    return 2;
  }
  return 0;
}
