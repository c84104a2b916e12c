// Shared by fqrun's commands: the command table, sessions, tensor descriptions, image inputs
// and reading outputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "fq/fq.h"
#include "fq/graph.h"
#include "image.h"

namespace fqrun {

// Settings that apply to every command (--isa may come before or after the command name).
struct Global {
  std::string isa;  // "" = FQ_ISA if set, else the best the CPU runs
};

int cmd_run(const std::vector<std::string>& argv, const Global& g);
int cmd_eval(const std::vector<std::string>& argv, const Global& g);
int cmd_info(const std::vector<std::string>& argv, const Global& g);
int cmd_check(const std::vector<std::string>& argv, const Global& g);
int cmd_bench(const std::vector<std::string>& argv, const Global& g);
int cmd_generate(const std::vector<std::string>& argv, const Global& g);

// The ISAs --isa accepts.
extern const std::vector<std::string> kIsaNames;
// Global settings merged with the command's own --isa (which wins).
fq::Options session_options(const Global& g, const Args& a, int threads, bool profile = false);

// "[1,28,28,1]"
std::string shape_str(const std::vector<int64_t>& shape);
// "u8[1,28,28,1] scale=0.00392157 zp=0", "i8[16,3,3,1] per-channel(axis 0, 16 scales)"
std::string type_str(fq::DType t, const std::vector<int64_t>& shape, const fq::Quant& q);
// 12345678 -> "12,345,678"
std::string with_commas(uint64_t v);
// "3.2 KiB", "1.5 MiB"
std::string human_bytes(uint64_t v);
// Number of elements (0 for an empty dimension list means a scalar: 1).
int64_t numel(const std::vector<int64_t>& shape);

// An image input [N, H, W, C] with C = 1 or 3; throws fq::Error naming the tensor otherwise.
struct ImageGeometry {
  int64_t n = 1;
  int h = 0, w = 0, c = 0;
  int64_t per_image() const { return int64_t(h) * w * c; }
};
ImageGeometry image_geometry(const fq::TensorView& in);

enum class Mode { automatic, yes, no };
// How `fqrun run` prepares an image: invert to light-on-dark, stretch the levels so the
// background is black and the brightest pixel white. `automatic` does either only for gray
// (MNIST-style) inputs: inversion when the border is light (border mean >= 128), the levels always.
struct Preprocess {
  Mode invert = Mode::automatic;
  Mode levels = Mode::automatic;
};
struct PrepInfo {
  int border = 0;         // border mean after channel conversion, before inversion
  bool inverted = false;
  bool stretched = false;
  int lo = 0, hi = 255;   // the levels stretched to 0 .. 255
};
// Channel conversion, inversion and levels (decided on the source image), then the resize to the
// input's H x W.
fq::tools::Image prepare_image(const fq::tools::Image& src, const ImageGeometry& geo,
                               const Preprocess& pp, PrepInfo* info = nullptr);

// Real values of elements [first, first + count) of an output: scale * (q - zero_point) for an
// integer tensor with quant, the stored value otherwise.
std::vector<double> dequantize(const fq::TensorView& t, int64_t first, int64_t count);
// Index of the largest value (lowest index on ties).
int argmax(const std::vector<double>& v);

// An output read as real numbers ("output as double"), bound once and read after each run():
//   - f32: the stored floats;
//   - an integer output X with a companion output X_scale (i32 [rows, 2], one (mant, exp) pair
//     per row, docs/llm_int.md): real = q * mant * 2^-exp, exact in double (X_scale wins over
//     any quant of X);
//   - an integer output with quant: scale * (q - zero_point) (dequantize above);
//   - an integer output without either: the stored integers.
// The values are seen as [rows, cols], cols = the last dimension.
struct RealOutput {
  fq::TensorView values;
  bool has_row_scale = false;
  fq::TensorView row_scale;  // X_scale when has_row_scale
  int64_t rows = 1, cols = 0;

  bool is_float() const { return values.dtype == fq::DType::f32; }
  // Real values of row `r` into out[0 .. cols).
  void read_row(int64_t r, double* out) const;
  std::vector<double> row(int64_t r) const;
  // Index of the largest stored value of row `r` (lowest index on ties), without converting:
  // the argmax of the real values whenever the row's scale is positive.
  int64_t argmax_stored(int64_t r) const;
};
// Binds output `name` of `s` and, when `s` also has an output `name`_scale, that scale. Throws
// fq::Error when the scale is not i32 [rows, 2] or the output's dtype cannot be read.
RealOutput real_output(fq::Session& s, const std::string& name);

// The class scores of one batch element of output 0: [count] values per element. Throws when the
// output cannot be split into `batch` equal rows.
int64_t classes_per_item(const fq::TensorView& out, int64_t batch);

// CPU model name from /proc/cpuinfo (or the machine name).
std::string cpu_name();
// Folder part of a path ("" -> ".").
std::string dirname_of(const std::string& path);

}  // namespace fqrun

namespace fqrun {
// One-line summary: name, inputs, outputs, tensor/constant counts, weight bytes, node count.
std::string graph_summary(const fq::Graph& g);
}  // namespace fqrun
