// fqquant-rwkv: an rwkv.cpp model + recipe -> the integer graph (quant.h, docs/rwkv.md).
//   fqquant-rwkv MODEL.bin --recipe configs/rwkv-w8a8.yaml -o OUT.yaml [--rows M]
//                [--seq-out S.yaml [--seq-rows 64]] [--version V] [-v]
// --rows M writes the graph with M tokens per run (default 1: token by token); --seq-out also
// writes a sequence-mode graph of --seq-rows rows with the same weights and state tensors.
// Exit status 0, or 2 with one line on stderr.
#include <cstdio>
#include <filesystem>
#include <string>

#include "fq/graph.h"
#include "model.h"
#include "quant.h"

int main(int argc, char** argv) {
  std::string model, out, recipe, seq_out, version;
  int rows = 1, seq_rows = 64;
  bool verbose = false, bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    try {
      if ((a == "-o" || a == "--output") && more) out = argv[++i];
      else if (a == "--recipe" && more) recipe = argv[++i];
      else if (a == "--rows" && more) rows = std::stoi(argv[++i]);
      else if (a == "--seq-out" && more) seq_out = argv[++i];
      else if (a == "--seq-rows" && more) seq_rows = std::stoi(argv[++i]);
      else if (a == "--version" && more) version = argv[++i];
      else if (a == "-v") verbose = true;
      else if (model.empty() && !a.empty() && a[0] != '-') model = a;
      else bad = true;
    } catch (const std::exception&) {
      bad = true;
    }
  }
  if (bad || model.empty() || out.empty() || recipe.empty() || rows < 1 || rows > 65536 || seq_rows < 1 ||
      seq_rows > 65536) {
    std::fprintf(stderr,
                 "usage: fqquant-rwkv MODEL.bin --recipe RECIPE.yaml -o OUT.yaml [--rows M] "
                 "[--seq-out S.yaml [--seq-rows 64]] [--version 5.1|5.2|6] [-v]\n");
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    fq::rwkv::Version v;
    if (!version.empty() && !fq::rwkv::parse_version(version, &v))
      throw fq::Error("--version '" + version + "' is not one of 4, 5.1, 5.2, 6, 7");
    const fq::rwkv::Model m = fq::rwkv::load_model(model, v);
    const fq::rwkv::RwkvRecipe r = fq::rwkv::load_rwkv_recipe(recipe);
    const fq::rwkv::QModel q = fq::rwkv::quantize_model(m, r);
    if (verbose)
      for (const auto& line : q.notes) std::fprintf(stderr, "%s\n", line.c_str());
    auto write = [&](const std::string& path, int m_rows) {
      fq::Graph g = fq::rwkv::build_int_graph(q, fs::path(path).stem().string(), m_rows);
      fq::save_graph(g, path);
    };
    write(out, rows);
    if (!seq_out.empty()) write(seq_out, seq_rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqquant-rwkv: %s\n", e.what());
    return 2;
  }
  return 0;
}
