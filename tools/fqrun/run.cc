// fqrun run: classify one image.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "common.h"

namespace fqrun {

namespace {

const char kRunUsage[] =
    "usage: fqrun run GRAPH --image FILE [options]\n"
    "\n"
    "Classifies one image (PNG, JPEG, BMP, binary PGM/PPM) and prints the top K classes of the\n"
    "first output, one per line: CLASS, two spaces, probability with 4 decimals (the output's\n"
    "real value, scale * (q - zero_point)). The image is converted to the input's channels,\n"
    "resized to its H x W and converted to its dtype, all in integer arithmetic.\n"
    "\n"
    "options:\n"
    "  --image FILE          image to classify (required)\n"
    "  --top K               number of classes to print (default 5; capped at the class count)\n"
    "  --invert auto|yes|no  make dark-on-light images light-on-dark (default auto: for gray\n"
    "                        inputs, when the mean of the image border is >= 128)\n"
    "  --levels auto|yes|no  after that, stretch the levels linearly so the border mean becomes\n"
    "                        0 and the brightest pixel 255 (default auto: for gray inputs)\n"
    "  --threads T           worker threads (default 1)\n"
    "  --isa ISA             highest kernel ISA (default: $FQ_ISA, else the best)\n"
    "  -v, --verbose         describe the preprocessing on stderr\n";

}  // namespace

int cmd_run(const std::vector<std::string>& argv, const Global& global) {
  const Args a(argv,
               {{"image", 0, true}, {"top", 0, true}, {"invert", 0, true}, {"levels", 0, true}, {"threads", 't', true},
                {"verbose", 'v', false}},
               1);
  if (a.help) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  const std::string& path = a.graph();
  if (!a.has("image")) throw UsageError("missing --image FILE");
  const std::string image_path = a.str("image", "");
  if (image_path.empty()) throw UsageError("option '--image' needs a file name");
  const int top = int(a.integer("top", 5, 1, 1 << 20));
  auto mode = [&](const char* name) {
    const std::string v = a.choice(name, "auto", {"auto", "yes", "no"});
    return v == "auto" ? Mode::automatic : v == "yes" ? Mode::yes : Mode::no;
  };
  Preprocess pp;
  pp.invert = mode("invert");
  pp.levels = mode("levels");
  const int threads = int(a.integer("threads", 1, 1, 1024));
  const bool verbose = a.has("verbose");
  const fq::Options opt = session_options(global, a, threads);

  // Decode first: a bad image is reported before the (slower) graph load.
  const fq::tools::Image src = fq::tools::load_image(image_path);
  const fq::Graph g = fq::load_graph(path);
  fq::Session s(g, opt);
  if (s.num_inputs() != 1)
    throw fq::Error(path + ": fqrun run needs a graph with one image input, this one has " +
                    std::to_string(s.num_inputs()));
  fq::TensorView in = s.input(0);
  const ImageGeometry geo = image_geometry(in);
  PrepInfo info;
  const fq::tools::Image img = prepare_image(src, geo, pp, &info);
  const fq::tools::PixelConverter conv(in.name, in.dtype, in.shape, in.quant);
  for (int64_t b = 0; b < geo.n; ++b)  // every batch element gets the image
    conv.convert(img.px.data(), b * geo.per_image(), geo.per_image(), in.data);
  if (verbose) {
    std::string levels = "levels unchanged";
    if (info.stretched) levels = "levels " + std::to_string(info.lo) + ".." + std::to_string(info.hi) + " -> 0..255";
    std::fprintf(stderr, "fqrun: %s: %dx%d, %d channel%s; border mean %d, %s, %s; resized to %dx%dx%d, %s\n",
                 image_path.c_str(), src.w, src.h, src.c, src.c == 1 ? "" : "s", info.border,
                 info.inverted ? "inverted" : "not inverted", levels.c_str(), geo.w, geo.h, geo.c,
                 fq::dtype_name(in.dtype));
  }
  s.run();
  const fq::TensorView out = s.output(0);
  const int64_t classes = classes_per_item(out, geo.n);
  const std::vector<double> p = dequantize(out, 0, classes);
  std::vector<int> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return p[x] > p[y]; });
  const size_t k = std::min<size_t>(size_t(top), order.size());
  for (size_t i = 0; i < k; ++i) std::printf("%d  %.4f\n", order[i], p[order[i]]);
  return 0;
}

}  // namespace fqrun
