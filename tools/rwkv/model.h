// rwkv.cpp model importer (docs/rwkv.md). Reads the rwkv.cpp file format (FP32, FP16, Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0 tensors) of RWKV v4, v5.1, v5.2, v6 and v7 into float32 tensors, detects the
// architecture version from the tensor names exactly as rwkv.cpp does, and validates every tensor
// against that version (names, shapes, types, finite values). Float code: importer and reference,
// never part of the integer path.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fq::rwkv {

// rwkv.cpp tensor types (rwkv_file_format.inc): 4, 5, 6 are removed formats.
enum class FileType : int32_t { fp32 = 0, fp16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 7, q5_1 = 8, q8_0 = 9 };
const char* type_name(int32_t type);  // "FP32", ..., or "unknown"

struct Version {
  int major = 0;  // 4, 5, 6, 7
  int minor = 0;  // 1 or 2 for v5, else 0
  std::string str() const;  // "4", "5.1", "5.2", "6", "7"
  bool operator==(const Version& o) const { return major == o.major && minor == o.minor; }
  bool operator!=(const Version& o) const { return !(*this == o); }
};
// Parses "4", "5.1", "5.2", "6", "7" (also "6.0", "7.0", "4.0"); false otherwise.
bool parse_version(const std::string& s, Version* out);

// A tensor as float32. `ne` is the ggml shape (innermost first, as stored in the file); a matrix
// with ne = (K, O) is row-major [O][K], so y = W x is y[o] = sum_k data[o * K + k] * x[k].
struct Tensor {
  std::vector<int64_t> ne;
  int32_t type = 0;  // file type it was stored in
  std::vector<float> data;
  int64_t numel() const;
};

struct Model {
  std::string path;
  uint32_t file_version = 0;  // 100 or 101
  int32_t data_type = 0;      // header data type
  int n_vocab = 0, n_embed = 0, n_layer = 0;
  Version version;
  int head_count = 0;  // v5+: heads (v4: 0)
  int head_size = 0;   // v5+: n_embed / head_count
  int ffn_size = 0;    // channel-mix hidden width
  std::map<std::string, Tensor> tensors;

  // The tensor `name` (throws fq::Error naming the file if missing).
  const Tensor& t(const std::string& name) const;
  const std::vector<float>& v(const std::string& name) const { return t(name).data; }
  // "blocks.{layer}." + name
  const std::vector<float>& lv(int layer, const std::string& name) const;
};

// Loads and validates a model. With `expect` set (major != 0), a file of another version is an
// error. Every problem is an fq::Error with a one-line message starting with the file name.
Model load_model(const std::string& path, Version expect = {});

// Float conversions of the block formats (exposed for tests). `n` is a multiple of 32.
float fp16_to_float(uint16_t h);
void dequantize(int32_t type, const uint8_t* src, int64_t n, float* dst);
// Bytes of `n` elements of `type`, or -1 for an unknown type / n not a multiple of the block.
int64_t type_bytes(int32_t type, int64_t n);

}  // namespace fq::rwkv
