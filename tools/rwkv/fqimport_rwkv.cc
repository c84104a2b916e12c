// fqimport-rwkv: writes the FQ float decode graph of an rwkv.cpp model (tools/rwkv/graph.h).
//   fqimport-rwkv MODEL.bin -o OUT.yaml [--version V]
// --version (4, 5.1, 5.2, 6, 7) makes a file of another RWKV version an error. The graph's meta
// names the version and, for 256-token models, `tokenizer: bytes` (byte-level, no tokenizer file).
// Exit status 0, or 2 with one line on stderr.
#include <cstdio>
#include <filesystem>
#include <string>

#include "fq/graph.h"
#include "graph.h"
#include "model.h"

int main(int argc, char** argv) {
  std::string model, out, version;
  bool bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-o" || a == "--output") && i + 1 < argc) out = argv[++i];
    else if (a == "--version" && i + 1 < argc) version = argv[++i];
    else if (model.empty() && !a.empty() && a[0] != '-') model = a;
    else bad = true;
  }
  if (bad || model.empty() || out.empty()) {
    std::fprintf(stderr, "usage: fqimport-rwkv MODEL.bin -o OUT.yaml [--version 4|5.1|5.2|6|7]\n");
    return 2;
  }
  try {
    fq::rwkv::Version v;
    if (!version.empty() && !fq::rwkv::parse_version(version, &v))
      throw fq::Error("--version '" + version + "' is not one of 4, 5.1, 5.2, 6, 7");
    const fq::rwkv::Model m = fq::rwkv::load_model(model, v);
    namespace fs = std::filesystem;
    fq::Graph g = fq::rwkv::build_float_graph(m, fs::path(out).stem().string());
    g.meta["source"] = fs::path(model).filename().string();
    fq::save_graph(g, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fqimport-rwkv: %s\n", e.what());
    return 2;
  }
  return 0;
}
