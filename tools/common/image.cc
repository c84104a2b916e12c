#include "image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

namespace {
// stb_image's allocations are capped: a legitimate image needs at most kMaxImagePixels * 4
// channels * 2 bytes (plus PNG filter bytes), and without the cap a small PNG whose zlib data
// inflates to gigabytes (a "zlib bomb") would be allocated in full before it fails.
constexpr size_t kMaxStbAlloc = size_t(fq::tools::kMaxImagePixels) * 8 + (size_t(1) << 24);
void* stb_malloc_capped(size_t n) { return n > kMaxStbAlloc ? nullptr : std::malloc(n); }
void* stb_realloc_capped(void* p, size_t n) { return n > kMaxStbAlloc ? nullptr : std::realloc(p, n); }
}  // namespace

// stb_image, compiled here with internal linkage and only the formats FQ accepts (TGA has no magic
// number and would take any bytes; GIF/PSD/HDR/PIC are not needed).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MALLOC(n) stb_malloc_capped(n)
#define STBI_REALLOC(p, n) stb_realloc_capped(p, n)
#define STBI_FREE(p) std::free(p)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace fq::tools {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& msg) {
  throw Error(name + ": " + msg);
}

uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }

enum class Format { png, jpeg, bmp, pnm, unknown };

Format sniff(const uint8_t* p, size_t n) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 8 && std::memcmp(p, kPng, 8) == 0) return Format::png;
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return Format::jpeg;
  if (n >= 2 && p[0] == 'B' && p[1] == 'M') return Format::bmp;
  if (n >= 2 && p[0] == 'P' && (p[1] == '5' || p[1] == '6')) return Format::pnm;
  return Format::unknown;
}

const char* format_name(Format f) {
  switch (f) {
    case Format::png: return "PNG";
    case Format::jpeg: return "JPEG";
    case Format::bmp: return "BMP";
    case Format::pnm: return "PGM/PPM";
    default: return "image";
  }
}

bool contains(const uint8_t* p, size_t n, const char* needle, size_t len, size_t from = 0) {
  if (n < len) return false;
  for (size_t i = from; i + len <= n; ++i)
    if (std::memcmp(p + i, needle, len) == 0) return true;
  return false;
}

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return be16(p) << 16 | be16(p + 2); }

void check_size(Format f, uint64_t w, uint64_t h, const std::string& name) {
  if (w == 0 || h == 0)
    fail(name, std::string("zero-size ") + format_name(f) + " image (" + std::to_string(w) + "x" +
                   std::to_string(h) + ")");
  if (w > uint64_t(kMaxImageSide) || h > uint64_t(kMaxImageSide) || w * h > uint64_t(kMaxImagePixels))
    fail(name, std::string(format_name(f)) + " image too large (" + std::to_string(w) + "x" +
                   std::to_string(h) + "; limit " + std::to_string(kMaxImageSide) + " per side, " +
                   std::to_string(kMaxImagePixels) + " pixels)");
}

// Reads the size from the header and checks it against the limits before anything is decoded;
// then checks what stb_image does not notice: BMP and PNM pixel data cut short (stb reads past
// the end as zeros or leaves pixels unset) and a JPEG without its end marker (decodes as grey).
void inspect(Format f, const uint8_t* p, size_t n, const std::string& name) {
  const std::string trunc = std::string("truncated or corrupt ") + format_name(f) + " image";
  switch (f) {
    case Format::png:
      // Signature, then the IHDR chunk (length 13) with width and height.
      if (n < 33 || std::memcmp(p + 12, "IHDR", 4) != 0) fail(name, trunc + " (no IHDR chunk)");
      check_size(f, be32(p + 16), be32(p + 20), name);
      // Chunks end with IEND; stb checks the data chunks themselves.
      if (!contains(p, n, "IEND", 4, 33)) fail(name, trunc + " (no IEND chunk)");
      break;
    case Format::jpeg: {
      // Walk every marker segment (skipping APPn data, which may hold a whole thumbnail JPEG, and
      // the entropy-coded data after each SOS) up to EOI: the size comes from the SOFn segment,
      // every Huffman table must hold at most 256 codes (stb_image 2.27 writes past its tables
      // otherwise), and a file without EOI is truncated.
      size_t i = 2;
      bool sof = false, sos = false, eoi = false;
      while (!eoi) {
        if (i + 1 >= n) fail(name, trunc + (sos ? " (no end marker)" : " (no image data)"));
        if (p[i] != 0xFF) fail(name, "corrupt JPEG image (bad marker)");
        while (i + 1 < n && p[i + 1] == 0xFF) ++i;  // fill bytes
        if (i + 1 >= n) continue;
        const uint8_t m = p[i + 1];
        if (m == 0xD9) {
          if (!sos) fail(name, trunc + " (end marker before image data)");
          eoi = true;
          break;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
          i += 2;
          continue;
        }
        if (i + 3 >= n) fail(name, trunc + " (segment past the end of the file)");
        const size_t len = be16(p + i + 2), end = i + 2 + len;
        if (len < 2 || end > n) fail(name, trunc + " (segment past the end of the file)");
        const bool is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (is_sof) {
          if (len < 7) fail(name, "corrupt JPEG image (short frame header)");
          check_size(f, be16(p + i + 7), be16(p + i + 5), name);
          sof = true;
        } else if (m == 0xC4) {  // DHT: tables of (class/id, 16 counts, values)
          size_t k = i + 4;
          while (k < end) {
            if (k + 17 > end) fail(name, "corrupt JPEG image (bad Huffman table)");
            size_t codes = 0;
            for (int c = 1; c <= 16; ++c) codes += p[k + c];
            if ((p[k] >> 4) > 1 || (p[k] & 15) > 3 || codes > 256 || k + 17 + codes > end)
              fail(name, "corrupt JPEG image (bad Huffman table)");
            k += 17 + codes;
          }
        } else if (m == 0xDA) {
          if (!sof) fail(name, "corrupt JPEG image (scan before frame header)");
          sos = true;
          // Entropy-coded data: up to the next marker that is not a stuffed 0xFF00 or RSTn.
          size_t k = end;
          while (k + 1 < n && !(p[k] == 0xFF && p[k + 1] != 0 && !(p[k + 1] >= 0xD0 && p[k + 1] <= 0xD7))) ++k;
          if (k + 1 >= n) fail(name, trunc + " (no end marker)");
          i = k;
          continue;
        }
        i = end;
      }
      break;
    }
    case Format::bmp: {
      if (n < 26) fail(name, trunc + " (header)");
      const uint64_t off = le32(p + 10), hdr = le32(p + 14);
      int64_t w, h, bpp, comp = 0;
      if (hdr == 12) {
        w = le16(p + 18), h = le16(p + 20), bpp = le16(p + 24);
      } else {
        if (n < 34) fail(name, trunc + " (header)");
        w = int32_t(le32(p + 18)), h = int32_t(le32(p + 22)), bpp = le16(p + 28);
        comp = le32(p + 30);
      }
      const uint64_t ah = uint64_t(h < 0 ? -h : h);  // negative height: rows top-down
      if (w < 0) fail(name, "corrupt BMP image (negative width)");
      check_size(f, uint64_t(w), ah, name);
      if (bpp == 0 || bpp > 32) fail(name, "corrupt BMP image (" + std::to_string(bpp) + " bits per pixel)");
      if (comp == 0 || comp == 3 || comp == 6) {  // uncompressed: rows padded to 4 bytes
        const uint64_t stride = (uint64_t(w) * uint64_t(bpp) + 31) / 32 * 4;
        const uint64_t need = off + stride * ah;
        if (need > n)
          fail(name, trunc + " (" + std::to_string(n) + " bytes, pixel data needs " +
                         std::to_string(need) + ")");
      }
      break;
    }
    case Format::pnm: {
      // P5/P6, whitespace and comments, width, height, maxval, one whitespace byte, the samples.
      size_t i = 2;
      uint64_t v[3] = {0, 0, 0};
      for (int k = 0; k < 3; ++k) {
        for (;;) {
          while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r'))) ++i;
          if (i < n && p[i] == '#') {
            while (i < n && p[i] != '\n' && p[i] != '\r') ++i;
            continue;
          }
          break;
        }
        if (i >= n || p[i] < '0' || p[i] > '9') fail(name, trunc + " (header)");
        int digits = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
          if (++digits > 9) fail(name, "corrupt PGM/PPM image (number too large in header)");
          v[k] = v[k] * 10 + uint64_t(p[i++] - '0');
        }
        if (k == 1) check_size(f, v[0], v[1], name);
      }
      if (i >= n) fail(name, trunc + " (header)");
      ++i;  // the single whitespace byte before the samples
      if (v[2] == 0 || v[2] > 65535) fail(name, "corrupt PGM/PPM image (maxval " + std::to_string(v[2]) + ")");
      const uint64_t ch = p[1] == '6' ? 3 : 1, bytes = v[2] > 255 ? 2 : 1;
      const uint64_t need = v[0] * v[1] * ch * bytes;
      if (i + need > n)
        fail(name, trunc + " (" + std::to_string(n - i) + " bytes of pixel data, needs " +
                       std::to_string(need) + ")");
      break;
    }
    default: break;
  }
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace

Image decode_image(const void* data, size_t size, const std::string& name) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (size == 0) fail(name, "empty file, not an image");
  if (size > kMaxImageFileBytes)
    fail(name, "file too large for an image (" + std::to_string(size) + " bytes, limit " +
                   std::to_string(kMaxImageFileBytes) + ")");
  const Format f = sniff(p, size);
  if (f == Format::unknown)
    fail(name, "not a PNG, JPEG, BMP or binary PGM/PPM (P5/P6) image (unknown file signature)");
  inspect(f, p, size, name);
  if (size > size_t(std::numeric_limits<int>::max())) fail(name, "file too large");
  int w2 = 0, h2 = 0, n = 0;
  std::unique_ptr<stbi_uc, StbFree> pix(stbi_load_from_memory(p, int(size), &w2, &h2, &n, 0));
  if (!pix) {
    const std::string why = stbi_failure_reason() ? stbi_failure_reason() : "unknown";
    if (why == "outofmem")
      fail(name, std::string(format_name(f)) + " image needs more memory than its size allows (corrupt?)");
    fail(name, std::string("truncated or corrupt ") + format_name(f) + " image (" + why + ")");
  }
  if (w2 < 1 || h2 < 1 || w2 > kMaxImageSide || h2 > kMaxImageSide || n < 1 || n > 4)
    fail(name, std::string("corrupt ") + format_name(f) + " image (inconsistent header)");
  const int w = w2, h = h2;
  Image img;
  img.w = w, img.h = h, img.c = n >= 3 ? 3 : 1;
  const size_t count = size_t(w) * h;
  img.px.resize(count * img.c);
  const uint8_t* s = pix.get();
  uint8_t* d = img.px.data();
  const int color = n >= 3 ? 3 : 1;
  const bool alpha = n == 2 || n == 4;
  for (size_t i = 0; i < count; ++i, s += n, d += color) {
    const uint32_t a = alpha ? s[n - 1] : 255;
    for (int k = 0; k < color; ++k)  // over white: (c a + 255 (255 - a)) / 255, rounded
      d[k] = uint8_t((s[k] * a + 255u * (255u - a) + 127u) / 255u);
  }
  return img;
}

Image load_image(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not an image");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, std::string("cannot open image: ") + std::strerror(errno));
  f.seekg(0, std::ios::end);
  const std::streamoff end = f.tellg();
  if (end < 0) fail(path, "cannot read image (not a regular file?)");
  if (size_t(end) > kMaxImageFileBytes)
    fail(path, "file too large for an image (" + std::to_string(end) + " bytes, limit " +
                   std::to_string(kMaxImageFileBytes) + ")");
  f.seekg(0, std::ios::beg);
  std::vector<char> bytes(static_cast<size_t>(end));
  if (end > 0 && !f.read(bytes.data(), end)) fail(path, "cannot read image");
  return decode_image(bytes.data(), bytes.size(), path);
}

Image convert_channels(const Image& img, int channels) {
  if (channels != 1 && channels != 3) throw Error("convert_channels: channels must be 1 or 3");
  if (img.c == channels) return img;
  Image out;
  out.w = img.w, out.h = img.h, out.c = channels;
  const size_t count = size_t(img.w) * img.h;
  out.px.resize(count * channels);
  const uint8_t* s = img.px.data();
  uint8_t* d = out.px.data();
  if (channels == 1) {
    for (size_t i = 0; i < count; ++i, s += 3)
      d[i] = uint8_t((77u * s[0] + 150u * s[1] + 29u * s[2] + 128u) >> 8);
  } else {
    for (size_t i = 0; i < count; ++i, d += 3) d[0] = d[1] = d[2] = s[i];
  }
  return out;
}

namespace {

// One axis of the separable filter: output i = sum over taps of src[first[i] + t] * weight, divided
// by `den`. All weights are exact integers (see resize_image).
struct AxisFilter {
  std::vector<int> first, offset;  // offset[i] .. offset[i+1]: taps of output i
  std::vector<uint32_t> weight;
  uint64_t den = 1;
};

AxisFilter axis_filter(int src, int dst) {
  AxisFilter f;
  f.first.resize(dst);
  f.offset.resize(dst + 1);
  const int64_t s = src, d = dst;
  for (int64_t i = 0; i < d; ++i) {
    f.offset[i] = int(f.weight.size());
    if (s == d) {
      f.first[i] = int(i);
      f.weight.push_back(1);
    } else if (s > d) {
      // Area: in units of 1/d source pixel, output i covers [i s, (i+1) s) and source pixel j
      // covers [j d, (j+1) d); the weight is the overlap, the overlaps of one output sum to s.
      const int64_t lo = i * s, hi = (i + 1) * s;
      const int64_t j0 = lo / d, j1 = (hi + d - 1) / d;  // [j0, j1)
      f.first[i] = int(j0);
      for (int64_t j = j0; j < j1; ++j)
        f.weight.push_back(uint32_t(std::min((j + 1) * d, hi) - std::max(j * d, lo)));
      f.den = uint64_t(s);
    } else {
      // Linear, half-pixel centres: the source position of output i is (i + 1/2) s / d - 1/2,
      // i.e. ((2i + 1) s - d) / (2d); in units of 1/(2d), clamped to [0, s - 1].
      int64_t num = (2 * i + 1) * s - d;
      num = std::clamp<int64_t>(num, 0, (s - 1) * 2 * d);
      const int64_t j0 = num / (2 * d), frac = num % (2 * d);
      f.first[i] = int(j0);
      f.weight.push_back(uint32_t(2 * d - frac));
      if (frac != 0) f.weight.push_back(uint32_t(frac));
      f.den = uint64_t(2 * d);
    }
  }
  f.offset[dst] = int(f.weight.size());
  return f;
}

}  // namespace

Image resize_image(const Image& img, int w, int h) {
  if (w < 1 || h < 1 || w > 65536 || h > 65536)
    throw Error("resize: target size " + std::to_string(w) + "x" + std::to_string(h) +
                " out of range 1..65536");
  if (img.w < 1 || img.h < 1 || img.px.size() != size_t(img.w) * img.h * img.c)
    throw Error("resize: empty or inconsistent image");
  if (img.w > (1 << 20) || img.h > (1 << 20))
    throw Error("resize: source image larger than 2^20 pixels per side");
  if (img.w == w && img.h == h) return img;
  const int c = img.c;
  const AxisFilter fx = axis_filter(img.w, w), fy = axis_filter(img.h, h);
  // Horizontal pass over every source row, unnormalized: values <= 255 * fx.den <= 255 * 2^17.
  std::vector<uint32_t> tmp(size_t(img.h) * w * c);
  for (int y = 0; y < img.h; ++y) {
    const uint8_t* s = img.row(y);
    uint32_t* t = tmp.data() + size_t(y) * w * c;
    for (int x = 0; x < w; ++x) {
      for (int k = 0; k < c; ++k) {
        uint32_t acc = 0;
        const uint8_t* sp = s + size_t(fx.first[x]) * c + k;
        for (int q = fx.offset[x]; q < fx.offset[x + 1]; ++q, sp += c) acc += fx.weight[q] * *sp;
        t[size_t(x) * c + k] = acc;
      }
    }
  }
  // Vertical pass in 64 bits (<= 255 * 2^17 * 2^17), then one rounding by den = fx.den * fy.den.
  const uint64_t den = fx.den * fy.den, half = den / 2;
  Image out;
  out.w = w, out.h = h, out.c = c;
  out.px.resize(size_t(w) * h * c);
  const size_t row = size_t(w) * c;
  std::vector<uint64_t> acc(row);
  for (int y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 0);
    const uint32_t* t = tmp.data() + size_t(fy.first[y]) * row;
    for (int q = fy.offset[y]; q < fy.offset[y + 1]; ++q, t += row) {
      const uint64_t wq = fy.weight[q];
      for (size_t i = 0; i < row; ++i) acc[i] += wq * t[i];
    }
    uint8_t* d = out.row(y);
    for (size_t i = 0; i < row; ++i) d[i] = uint8_t(std::min<uint64_t>((acc[i] + half) / den, 255));
  }
  return out;
}

int border_mean(const Image& img) {
  if (img.w < 1 || img.h < 1) return 0;
  const int b = std::max(1, std::min(img.w, img.h) / 14);
  uint64_t sum = 0, count = 0;
  for (int y = 0; y < img.h; ++y) {
    const uint8_t* r = img.row(y);
    const bool edge_row = y < b || y >= img.h - b;
    for (int x = 0; x < img.w; ++x) {
      if (!edge_row && x >= b && x < img.w - b) {
        x = img.w - b - 1;  // skip the interior of the row
        continue;
      }
      for (int k = 0; k < img.c; ++k) sum += r[size_t(x) * img.c + k];
      count += img.c;
    }
  }
  return count ? int(sum / count) : 0;
}

bool is_dark_on_light(const Image& img) { return border_mean(img) >= 128; }

void invert_image(Image& img) {
  for (auto& p : img.px) p = uint8_t(255 - p);
}

void stretch_levels(Image& img, int lo, int hi) {
  if (hi <= lo) return;
  const int range = hi - lo;
  uint8_t lut[256];
  for (int p = 0; p < 256; ++p)
    lut[p] = p <= lo ? 0 : p >= hi ? 255 : uint8_t(((p - lo) * 255 + range / 2) / range);
  for (auto& p : img.px) p = lut[p];
}

int max_pixel(const Image& img) {
  int m = 0;
  for (uint8_t p : img.px) m = std::max<int>(m, p);
  return m;
}

// ---------------------------------------------------------------------------------------------

namespace {

bool int_range(DType t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case DType::u8: *lo = 0, *hi = 255; return true;
    case DType::i8: *lo = -128, *hi = 127; return true;
    case DType::u16: *lo = 0, *hi = 65535; return true;
    case DType::i16: *lo = -32768, *hi = 32767; return true;
    case DType::i32: *lo = std::numeric_limits<int32_t>::min(), *hi = std::numeric_limits<int32_t>::max(); return true;
    default: return false;
  }
}

}  // namespace

PixelConverter::PixelConverter(const std::string& tensor_name, DType dtype,
                               const std::vector<int64_t>& shape, const Quant& quant)
    : dtype_(dtype) {
  if (dtype == DType::f32) return;
  int64_t lo = 0, hi = 0;
  if (!int_range(dtype, &lo, &hi))
    throw Error("input '" + tensor_name + "': dtype not supported for image input");
  const bool per_channel = !quant.empty() && quant.axis >= 0 && quant.scale.size() > 1;
  if (per_channel) {
    if (quant.axis >= int(shape.size()) || shape[quant.axis] != int64_t(quant.scale.size()))
      throw Error("input '" + tensor_name + "': per-channel quant does not match the shape");
    channels_ = int(quant.scale.size());
    for (size_t a = quant.axis + 1; a < shape.size(); ++a) inner_ *= shape[a];
  }
  lut_.resize(size_t(channels_) * 256);
  for (int ch = 0; ch < channels_; ++ch) {
    int64_t* t = lut_.data() + size_t(ch) * 256;
    if (quant.empty()) {  // no quantization given: the raw pixel values
      for (int p = 0; p < 256; ++p) t[p] = std::clamp<int64_t>(p, lo, hi);
      continue;
    }
    const double scale = quant.scale[quant.scale.size() == 1 ? 0 : ch];
    const int64_t zp = quant.zero_point.empty()
                           ? 0
                           : quant.zero_point[quant.zero_point.size() == 1 ? 0 : ch];
    if (!(scale > 0) || !std::isfinite(scale))
      throw Error("input '" + tensor_name + "': quant scale must be positive and finite");
    // q = zp + round(p / (255 scale)) = zp + ((p m + 2^(s-1)) >> s), m / 2^s ~ 1 / (255 scale)
    // with m < 2^47 (p m < 2^55 fits easily).
    const double f = 1.0 / (255.0 * scale);
    int s = 62;
    while (s > 0 && std::ldexp(f, s) >= 0x1p47) --s;
    const double mf = std::nearbyint(std::ldexp(f, s));
    const int64_t m = mf >= 0x1p47 ? (int64_t(1) << 47) : int64_t(mf);
    const int64_t round = s > 0 ? int64_t(1) << (s - 1) : 0;
    for (int p = 0; p < 256; ++p) t[p] = std::clamp<int64_t>(zp + ((p * m + round) >> s), lo, hi);
  }
}

int PixelConverter::channel_of(int64_t index) const {
  return channels_ == 1 ? 0 : int((index / inner_) % channels_);
}

double PixelConverter::value(uint8_t pixel, int64_t index) const {
  if (dtype_ == DType::f32) return double(float(pixel) / 255.0f);
  return double(lut_[size_t(channel_of(index)) * 256 + pixel]);
}

void PixelConverter::convert(const uint8_t* px, int64_t first, int64_t count, void* dst) const {
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = first + k;
    const uint8_t p = px[k];
    if (dtype_ == DType::f32) {
      static_cast<float*>(dst)[i] = float(p) / 255.0f;
      continue;
    }
    const int64_t v = lut_[size_t(channel_of(i)) * 256 + p];
    switch (dtype_) {
      case DType::u8: static_cast<uint8_t*>(dst)[i] = uint8_t(v); break;
      case DType::i8: static_cast<int8_t*>(dst)[i] = int8_t(v); break;
      case DType::u16: static_cast<uint16_t*>(dst)[i] = uint16_t(v); break;
      case DType::i16: static_cast<int16_t*>(dst)[i] = int16_t(v); break;
      case DType::i32: static_cast<int32_t*>(dst)[i] = int32_t(v); break;
      default: break;
    }
  }
}

}  // namespace fq::tools
