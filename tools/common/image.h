// Images for the tools: decoding (stb_image: PNG, JPEG, BMP, PGM/PPM), channel conversion,
// resizing and polarity, all in integer arithmetic; and the conversion of pixels to a graph input's
// dtype and quantization (docs/format.md "Image inputs": the real value of a pixel is pixel / 255).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fq/graph.h"

namespace fq::tools {

// 8-bit pixels, row-major, channels interleaved (HWC). c is 1 (gray) or 3 (RGB).
struct Image {
  int w = 0, h = 0, c = 0;
  std::vector<uint8_t> px;  // h * w * c
  uint8_t* row(int y) { return px.data() + size_t(y) * w * c; }
  const uint8_t* row(int y) const { return px.data() + size_t(y) * w * c; }
};

// Limits that decide "absurd": files above kMaxImageFileBytes and images with a side above
// kMaxImageSide or more than kMaxImagePixels pixels are rejected before decoding.
constexpr size_t kMaxImageFileBytes = size_t(256) << 20;
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

// Decodes a PNG, JPEG, BMP or binary PGM/PPM (P5/P6) file into gray (1 channel) or RGB (3).
// Alpha is composited over white; 16-bit samples are reduced to 8 bits. Throws fq::Error with a
// one-line message naming the file when it is unreadable, empty, not one of these formats,
// truncated or corrupt, or too large.
Image load_image(const std::string& path);
// The same for bytes in memory; `name` is used in messages.
Image decode_image(const void* data, size_t size, const std::string& name);

// Gray <-> RGB. RGB -> gray uses the BT.601 luma weights in 8-bit fixed point:
// Y = (77 R + 150 G + 29 B + 128) >> 8 (the weights sum to 256, so white stays 255).
Image convert_channels(const Image& img, int channels);

// Resizes to w x h (each 1 .. 65536) with a separable integer filter; per axis: the same size
// copies, shrinking averages the source pixels each output pixel covers (area filter, weights are
// the exact overlaps), enlarging interpolates linearly between the two nearest source pixels
// (half-pixel centres, edges clamped). The weights are exact integers, the two axes are combined in
// 64 bits and rounded once (half up), so the result is the exactly rounded value of the real-valued
// filter.
Image resize_image(const Image& img, int w, int h);

// Mean of the pixels within max(1, min(w, h) / 14) pixels of the edge (all channels), rounded down.
int border_mean(const Image& img);
// Dark ink on a light background: border_mean >= 128. MNIST-style models expect the opposite.
bool is_dark_on_light(const Image& img);
void invert_image(Image& img);  // p -> 255 - p
// Linear levels: p <= lo -> 0, p >= hi -> 255, between: round((p - lo) * 255 / (hi - lo)) (half
// up). No change when hi <= lo.
void stretch_levels(Image& img, int lo, int hi);
int max_pixel(const Image& img);

// Maps pixels (real value pixel / 255) to a tensor of the given dtype and quantization:
//   f32: pixel / 255 (quant ignored);
//   integer dtype with quant: q = sat(zero_point + round(pixel / (255 * scale))), the division done
//     as a dyadic multiply (47-bit multiplier, one rounding, half up) through a 256-entry table
//     per channel; a u8 input with scale 1/255 and zero point 0 gets the raw pixels;
//   integer dtype without quant: the raw pixel values.
// Per-channel quant applies along its axis. i4 is not supported (throws fq::Error).
class PixelConverter {
 public:
  PixelConverter(const std::string& tensor_name, DType dtype, const std::vector<int64_t>& shape,
                 const Quant& quant);
  // Converts `count` pixels into elements [first, first + count) of the tensor whose data is `dst`.
  void convert(const uint8_t* px, int64_t first, int64_t count, void* dst) const;
  // Value of one pixel as element `index` (for tests): the stored integer, or the float as double.
  double value(uint8_t pixel, int64_t index) const;
  // For an integer dtype: the table entry for `pixel` at channel `ch`.
  int64_t table(int ch, uint8_t pixel) const { return lut_[size_t(ch) * 256 + pixel]; }

 private:
  int channel_of(int64_t index) const;
  DType dtype_;
  int channels_ = 1;        // number of quant channels (1 = per-tensor)
  int64_t inner_ = 1;       // elements per step along the quant axis
  std::vector<int64_t> lut_;
};

}  // namespace fq::tools
