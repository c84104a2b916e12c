// fqrun eval: top-1 accuracy over a digit data set; for language-model graphs, eval_lm.cc.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "common.h"
#include "dataset.h"
#include "lm.h"

namespace fqrun {

namespace {

const char kEvalUsage[] =
    "usage: fqrun eval GRAPH --dataset mnist:IMAGES,LABELS [options]   (image classifiers)\n"
    "       fqrun eval GRAPH --tokens FILE | --text FILE [options]    (language models)\n"
    "\n"
    "Top-1 accuracy (argmax of the first output) over a data set; no progress output. Prints the\n"
    "accuracy per label, then a last line 'top1=<fraction> n=<count> correct=<count>'.\n"
    "Images go through the same integer conversion as 'fqrun run' (channels, resize, dtype),\n"
    "without inversion or levels (MNIST digits are already light on black).\n"
    "\n"
    "options:\n"
    "  --dataset mnist:IMAGES,LABELS   raw uint8 N x 28 x 28 images and N labels (required for\n"
    "                                  image classifiers)\n"
    "  --split SEED:TRAIN:train|test   only one part of the project's split (default: all)\n"
    "                                  e.g. 2026:8000:test = the 2000 held-out digits\n"
    "  --limit N                       only the first N images (after --split), or sequences\n"
    "  --threads T                     worker threads (default 1)\n"
    "  --isa ISA                       highest kernel ISA (default: $FQ_ISA, else the best)\n"
    "\n"
    "Language-model decode graphs (inputs tokens and pos, output logits; fqrun generate's graphs):\n"
    "teacher-forced next-token prediction, one token per run, the KV state reset per sequence.\n"
    "Prints one line per sequence, then a last line\n"
    "'nll=<mean nats> ppl=<exp(nll)> top1=<fraction> tokens=<predictions>'.\n"
    "  --tokens FILE                   one sequence per line: whitespace-separated token ids, the\n"
    "                                  first BOS (1), 2 .. context-length ids (generate --tokens-out)\n"
    "  --text FILE                     the file's text encoded with the graph's tokenizer (BOS\n"
    "                                  first), cut into sequences of BOS + context-length - 1 tokens\n";

}  // namespace

int cmd_eval(const std::vector<std::string>& argv, const Global& global) {
  const Args a(argv,
               {{"dataset", 0, true}, {"split", 0, true}, {"limit", 0, true}, {"threads", 't', true},
                {"tokens", 0, true}, {"text", 0, true}},
               1);
  if (a.help) {
    std::fputs(kEvalUsage, stdout);
    return 0;
  }
  const std::string& path = a.graph();
  const int sources = int(a.has("dataset")) + int(a.has("tokens")) + int(a.has("text"));
  if (sources > 1) throw UsageError("give one of --dataset, --tokens, --text");
  if (a.has("tokens") || a.has("text")) {
    if (a.has("split")) throw UsageError("option '--split' applies to --dataset only");
    return eval_lm(a, global);
  }
  if (!a.has("dataset")) {
    // Say what this graph needs: a data set for a classifier, token sequences for a language model.
    const fq::Graph g = fq::load_graph(path);
    if (is_decode_graph(g)) throw UsageError("missing --tokens FILE or --text FILE (a language-model graph)");
    throw UsageError("missing --dataset mnist:IMAGES,LABELS");
  }
  const std::string spec = a.str("dataset", "");
  const size_t comma = spec.find(',');
  if (spec.rfind("mnist:", 0) != 0 || comma == std::string::npos || comma == 6 || comma + 1 == spec.size())
    throw UsageError("option '--dataset' takes mnist:IMAGES,LABELS (two file names), not '" + spec + "'");
  const int64_t limit = a.integer("limit", -1, 0, int64_t(1) << 40);
  const int threads = int(a.integer("threads", 1, 1, 1024));
  const fq::Options opt = session_options(global, a, threads);

  const fq::Graph g = fq::load_graph(path);
  if (is_decode_graph(g))
    throw fq::Error(path + ": a language-model graph: evaluate it with --tokens FILE or --text FILE");
  const fq::tools::Dataset ds = fq::tools::load_dataset(spec);
  std::vector<int> idx;
  if (a.has("split")) {
    idx = fq::tools::parse_split(a.str("split", ""), ds.n);
  } else {
    idx.resize(size_t(ds.n));
    std::iota(idx.begin(), idx.end(), 0);
  }
  if (limit >= 0 && size_t(limit) < idx.size()) idx.resize(size_t(limit));

  fq::Session s(g, opt);
  if (s.num_inputs() != 1)
    throw fq::Error(path + ": fqrun eval needs a graph with one image input, this one has " +
                    std::to_string(s.num_inputs()));
  fq::TensorView in = s.input(0);
  const ImageGeometry geo = image_geometry(in);
  const fq::tools::PixelConverter conv(in.name, in.dtype, in.shape, in.quant);
  const fq::TensorView out = s.output(0);
  const int64_t classes = classes_per_item(out, geo.n);

  int64_t correct = 0;
  int64_t per_n[256] = {0}, per_ok[256] = {0};
  Preprocess pp;  // data set images are used as they are: no inversion, no levels
  pp.invert = pp.levels = Mode::no;
  fq::tools::Image src;
  src.w = ds.w, src.h = ds.h, src.c = 1;
  for (size_t start = 0; start < idx.size(); start += size_t(geo.n)) {
    // One batch of N images; a short last batch repeats its last image in the free slots.
    const size_t count = std::min(idx.size() - start, size_t(geo.n));
    for (int64_t b = 0; b < geo.n; ++b) {
      const int i = idx[start + std::min(size_t(b), count - 1)];
      src.px.assign(ds.image(i), ds.image(i) + size_t(ds.w) * ds.h);
      const fq::tools::Image img = prepare_image(src, geo, pp);
      conv.convert(img.px.data(), b * geo.per_image(), geo.per_image(), in.data);
    }
    s.run();
    for (size_t b = 0; b < count; ++b) {
      const uint8_t label = ds.labels[idx[start + b]];
      const int pred = argmax(dequantize(out, int64_t(b) * classes, classes));
      ++per_n[label];
      if (pred == label) ++per_ok[label], ++correct;
    }
  }
  std::printf("graph %s  data %s  images %zu  isa %s  threads %d\n", g.name.c_str(),
              a.str("dataset", "").c_str(), idx.size(), s.isa().c_str(), s.threads());
  for (int l = 0; l < 256; ++l)
    if (per_n[l])
      std::printf("label %d  %.4f  %lld/%lld\n", l, double(per_ok[l]) / double(per_n[l]),
                  (long long)per_ok[l], (long long)per_n[l]);
  std::printf("top1=%.4f n=%zu correct=%lld\n", idx.empty() ? 0.0 : double(correct) / double(idx.size()),
              idx.size(), (long long)correct);
  return 0;
}

}  // namespace fqrun
