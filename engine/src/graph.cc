// The graph IR's small helpers: dtypes, constant data, attribute access, lookups, read_file.
#include "fq/graph.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "blob.h"
#include "fq/fq.h"
#include "ops.h"

namespace fq {

size_t dtype_bits(DType t) {
  switch (t) {
    case DType::u8:
    case DType::i8: return 8;
    case DType::u16:
    case DType::i16: return 16;
    case DType::i32:
    case DType::f32: return 32;
    case DType::i4: return 4;
  }
  return 0;  // not a DType (a corrupt in-memory value)
}

namespace {
struct DTypeName {
  DType t;
  const char* name;
};
constexpr DTypeName kDTypeNames[] = {{DType::u8, "u8"},   {DType::i8, "i8"},   {DType::u16, "u16"},
                                     {DType::i16, "i16"}, {DType::i32, "i32"}, {DType::f32, "f32"},
                                     {DType::i4, "i4"}};
}  // namespace

const char* dtype_name(DType t) {
  for (const auto& d : kDTypeNames)
    if (d.t == t) return d.name;
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  for (const auto& d : kDTypeNames)
    if (s == d.name) return *out = d.t, true;
  return false;
}

size_t dtype_bytes(DType t, int64_t count) {
  size_t bits = dtype_bits(t);
  uint64_t n = count > 0 ? uint64_t(count) : 0;
  if (bits == 4) return size_t(n / 2 + n % 2);
  uint64_t bytes;
  if (__builtin_mul_overflow(n, bits / 8, &bytes) || bytes > SIZE_MAX)
    throw Error("byte size of " + std::to_string(count) + " elements overflows");
  return size_t(bytes);
}

ConstData ConstData::copy_of(const void* p, size_t n) {
  // 64-byte aligned like blob data, so kernels see the same alignment for copies and mappings.
  void* buf = ::operator new(n ? n : 1, std::align_val_t(64));
  if (n) std::memcpy(buf, p, n);
  ConstData d;
  d.owner = std::shared_ptr<const void>(
      buf, [](const void* q) { ::operator delete(const_cast<void*>(q), std::align_val_t(64)); });
  d.ptr = static_cast<const uint8_t*>(buf);
  d.size = n;
  return d;
}

int64_t TensorDef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw Error("tensor " + detail::quote(name) + ": shape " + detail::shape_str(shape) +
                  " has no valid element count");
  return n;
}

// ---- attributes ---------------------------------------------------------------------------------

namespace {
const char* attr_kind(const Attr& a) {
  static const char* const kinds[] = {"an integer", "a float", "a string", "a list of integers",
                                      "a list of floats"};
  return kinds[a.index()];
}

// The attribute `key` of `n` if present; throws unless it holds T (or, with Alt, an Alt). The
// message has no location: validate_graph adds the node's when it calls the op checks.
template <class T, class Alt = T>
const Attr* typed_attr(const NodeDef& n, const std::string& key, const char* want) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) return nullptr;
  if (!std::holds_alternative<T>(it->second) && !std::holds_alternative<Alt>(it->second))
    throw Error("node " + detail::quote(n.name) + ": attribute " + detail::quote(key) + " is " +
                attr_kind(it->second) + ", expected " + want);
  return &it->second;
}
}  // namespace

int64_t NodeDef::attr_int(const std::string& key, int64_t fallback) const {
  const Attr* a = typed_attr<int64_t>(*this, key, "an integer");
  return a ? std::get<int64_t>(*a) : fallback;
}

std::vector<int64_t> NodeDef::attr_ints(const std::string& key) const {
  const Attr* a = typed_attr<std::vector<int64_t>>(*this, key, "a list of integers");
  return a ? std::get<std::vector<int64_t>>(*a) : std::vector<int64_t>{};
}

double NodeDef::attr_float(const std::string& key, double fallback) const {
  // An integer is a fine float ("eps: 1").
  const Attr* a = typed_attr<double, int64_t>(*this, key, "a number");
  if (!a) return fallback;
  if (auto* i = std::get_if<int64_t>(a)) return double(*i);
  return std::get<double>(*a);
}

std::string NodeDef::attr_str(const std::string& key, const std::string& fallback) const {
  const Attr* a = typed_attr<std::string>(*this, key, "a string");
  return a ? std::get<std::string>(*a) : fallback;
}

// ---- lookups ------------------------------------------------------------------------------------

// Graph has no index member, so lookups scan; the loader and validate_graph build their own
// std::map indexes instead of calling these per name.
int Graph::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return int(i);
  return -1;
}

const TensorDef& Graph::tensor(const std::string& name) const {
  int i = find_tensor(name);
  if (i < 0) detail::fail(*this, 0, "tensor " + detail::quote(name) + " is not declared");
  return tensors[size_t(i)];
}

TensorDef& Graph::tensor(const std::string& name) {
  return const_cast<TensorDef&>(static_cast<const Graph&>(*this).tensor(name));
}

int Graph::add_tensor(TensorDef t) {
  if (find_tensor(t.name) >= 0)
    detail::fail(*this, t.line, "tensor " + detail::quote(t.name) + " is declared twice");
  tensors.push_back(std::move(t));
  return int(tensors.size() - 1);
}

// ---- files --------------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) detail::fail_at(path, 0, std::string("cannot open: ") + std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int err = errno;
      ::close(fd);
      detail::fail_at(path, 0, std::string("cannot read: ") + std::strerror(err));
    }
    if (got == 0) break;
    out.append(buf, size_t(got));
  }
  ::close(fd);
  return out;
}

}  // namespace fq
