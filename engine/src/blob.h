// FQ format internals (docs/format.md): the .fqw weight blob reader and writer, and the pieces the
// YAML reader, the blob reader and validate_graph share (error lines, limits, names, shapes,
// FNV-1a). Not part of the public API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fq/graph.h"

namespace fq::detail {

// ---- errors: every input error is one line "FILE:LINE: MSG" -------------------------------------

// FILE or LINE is left out when unknown (empty, <= 0); control characters are escaped so the
// message stays on one line whatever the names contain.
std::string error_line(const std::string& file, int line, const std::string& msg);
[[noreturn]] void fail_at(const std::string& file, int line, const std::string& msg);

// ---- format rules shared by the YAML graph and the blob -----------------------------------------

constexpr size_t kMaxName = 255;
constexpr size_t kMaxRank = 8;
constexpr int64_t kMaxDim = 0x7fffffff;
constexpr uint64_t kMaxTensorBytes = uint64_t(1) << 40;
constexpr uint32_t kMaxBlobEntries = 1000000;
constexpr uint64_t kMaxGraphBytes = uint64_t(256) << 20;  // the YAML file

// Each returns "" when the value is valid, else what is wrong (a message fragment).
std::string name_problem(const std::string& name);  // 1..255 bytes, no control characters
std::string shape_problem(DType t, const std::vector<int64_t>& shape);  // rank, dims, byte size
std::string shape_str(const std::vector<int64_t>& shape);               // "[16,3,3,1]"
std::string quote(const std::string& s);  // 'name', cut short when very long

// All per-tensor rules of docs/format.md section 1: name, dtype, shape, quant, and the size of
// constant data when present. Defined in validate.cc; the YAML reader calls it per tensor so
// absurd shapes are rejected before anything is bound or allocated.
void check_tensor(const Graph& g, const TensorDef& t);

// ---- YAML (yaml_io.cc) --------------------------------------------------------------------------

struct ParsedYaml {
  Graph graph;
  std::string weights;  // the `weights:` value, "" when absent
  int weights_line = 0;
};
ParsedYaml parse_yaml(const std::string& text, const std::string& path);
// The YAML text of `g`; `weights` is written as the `weights:` value unless empty.
std::string graph_yaml(const Graph& g, const std::string& weights);

// ---- FNV-1a 64 ----------------------------------------------------------------------------------

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
// Continues the hash `h` over n bytes.
uint64_t fnv1a64(const void* p, size_t n, uint64_t h = kFnvBasis);

// ---- the .fqw blob ------------------------------------------------------------------------------

struct BlobEntry {
  std::string name;
  DType dtype = DType::u8;
  std::vector<int64_t> dims;
  uint64_t offset = 0, size = 0, checksum = 0;
};

// A validated blob. Every rule of docs/format.md section 2 is checked when it is opened; entry
// data is then used in place (ConstData shares ownership of the mapping).
class Blob {
 public:
  // Memory-maps `path` read-only and validates it. Throws fq::Error "PATH: ..." naming the entry.
  static Blob open(const std::string& path);
  // Validates `size` bytes at `bytes` (kept alive by `owner`); `path` is used in messages.
  static Blob parse(std::shared_ptr<const void> owner, const uint8_t* bytes, size_t size,
                    const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<BlobEntry>& entries() const { return entries_; }  // sorted by name
  const BlobEntry* find(const std::string& name) const;               // nullptr when absent
  ConstData data(const BlobEntry& e) const { return {owner_, bytes_ + e.offset, e.size}; }

 private:
  std::string path_;
  std::shared_ptr<const void> owner_;
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  std::vector<BlobEntry> entries_;
};

struct BlobItem {
  std::string name;
  DType dtype;
  std::vector<int64_t> dims;
  const uint8_t* data;  // dtype_bytes(dtype, numel(dims)) bytes
};
// Writes a blob with the entries in this order, each at the next 64-byte boundary (the layout
// tools/fqformat.py writes, byte for byte). Atomic: the old file stays intact, and mappings of it
// valid, until the new one is complete.
void write_blob(const std::string& path, const std::vector<BlobItem>& items);

// A file written under PATH.tmp and renamed over PATH by commit(); removed if never committed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* p, size_t n);
  void write_at(uint64_t offset, const void* p, size_t n);
  void commit();

 private:
  [[noreturn]] void fail(const char* what);
  std::string path_, tmp_;
  int fd_ = -1;
};

}  // namespace fq::detail
