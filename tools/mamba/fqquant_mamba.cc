// fqquant-mamba: a Mamba (v1) checkpoint + recipe -> the integer graph (quant.h, docs/mamba.md).
//   fqquant-mamba DIR --recipe configs/mamba-w8a8.yaml -o OUT.yaml [--rows M] [--prefill-out P.yaml]
//                 [--set KEY=VALUE]... [--tokenizer NAME] [--eval N] [-v]
// --rows M writes the graph with M tokens per run (default 1, the decode graph); --prefill-out
// also writes a prefill graph of --prefill-rows (64) rows with the same weights and states.
// --eval N prints the fidelity against the float64 reference on N tokens the model samples itself
// (seed 1, not calibration text). Exit status 0, or 2 with one line on stderr.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "fq/graph.h"
#include "model.h"
#include "quant.h"

int main(int argc, char** argv) {
  std::string dir, out, recipe, prefill_out, tokenizer;
  std::vector<std::string> sets;
  int rows = 1, prefill_rows = 64, eval = 0;
  bool verbose = false, bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    try {
      if ((a == "-o" || a == "--output") && more) out = argv[++i];
      else if (a == "--recipe" && more) recipe = argv[++i];
      else if (a == "--rows" && more) rows = std::stoi(argv[++i]);
      else if (a == "--prefill-out" && more) prefill_out = argv[++i];
      else if (a == "--prefill-rows" && more) prefill_rows = std::stoi(argv[++i]);
      else if (a == "--set" && more) sets.push_back(argv[++i]);
      else if (a == "--tokenizer" && more) tokenizer = argv[++i];
      else if (a == "--eval" && more) eval = std::stoi(argv[++i]);
      else if (a == "-v") verbose = true;
      else if (dir.empty() && !a.empty() && a[0] != '-') dir = a;
      else bad = true;
    } catch (const std::exception&) {
      bad = true;
    }
  }
  if (bad || dir.empty() || out.empty() || recipe.empty() || rows < 1 || rows > 65536 ||
      prefill_rows < 1 || prefill_rows > 65536 || eval < 0) {
    std::fprintf(stderr,
                 "usage: fqquant-mamba DIR --recipe RECIPE.yaml -o OUT.yaml [--rows M] "
                 "[--prefill-out P.yaml [--prefill-rows 64]] [--set KEY=VALUE]... [--tokenizer NAME] "
                 "[--eval N] [-v]\n");
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    const fq::mamba::Model m = fq::mamba::load_model(dir);
    const fq::mamba::MambaRecipe r = fq::mamba::read_recipe(recipe, sets);
    const fq::mamba::QModel q = fq::mamba::quantize(m, r);
    if (verbose) std::fputs(q.notes.c_str(), stderr);
    auto write = [&](const std::string& path, int m_rows) {
      fq::Graph g = fq::mamba::build_int_graph(q, fs::path(path).stem().string(), m_rows, tokenizer);
      g.meta["source"] = fs::path(dir).filename().string();
      fq::save_graph(g, path);
      return g;
    };
    const fq::Graph g = write(out, rows);
    if (!prefill_out.empty()) write(prefill_out, prefill_rows);
    if (eval > 0) {
      const fq::Graph g1 = rows == 1 ? g : fq::mamba::build_int_graph(q, "eval", 1);
      const auto seq = fq::mamba::sample_sequences(m, 1, eval, 1).front();
      const fq::mamba::Fidelity f = fq::mamba::fidelity(m, q, g1, seq);
      double min_cos = 1;
      for (double v : f.cos) min_cos = std::min(min_cos, v);
      std::printf("tokens=%d cos_mean=%.6f cos_min=%.6f rel_err=%.5f kl=%.6f nll_ref=%.5f nll_q=%.5f\n",
                  eval, f.mean(f.cos), min_cos, f.mean(f.rel_err), f.mean(f.kl), f.mean(f.nll_ref),
                  f.mean(f.nll_q));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqquant-mamba: %s\n", e.what());
    return 2;
  }
  return 0;
}
