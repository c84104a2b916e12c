// A small, self-contained reader for the parts of the ONNX protobuf format that node tests use
// (ModelProto -> GraphProto -> NodeProto / AttributeProto / ValueInfoProto, and TensorProto),
// written directly against the protobuf wire format (no libprotobuf).
//
// Everything is bounds-checked: truncated varints, lengths past the end of a message, unknown or
// mismatched wire types, nesting deeper than kMaxDepth, absurd element counts and data sizes that
// do not match the dims are all reported as ParseError with the file and the byte offset (from
// the start of the file) where the problem was found. Nothing here aborts on bad input.
//
// Values: a Tensor keeps its elements decoded, integers (all integer types, bool, 2/4-bit types)
// in `ints`, floating types (f32, f64, f16, bf16) in `floats` as exact doubles, so tensors of any
// type can be compared without loss. Strings, complex and float8 types are recognized and rejected
// (UnsupportedType) rather than decoded.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fq::onnx {

// TensorProto.DataType values.
enum DataType : int {
  kUndefined = 0, kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6,
  kInt64 = 7, kString = 8, kBool = 9, kFloat16 = 10, kDouble = 11, kUint32 = 12, kUint64 = 13,
  kComplex64 = 14, kComplex128 = 15, kBfloat16 = 16, kFloat8e4m3fn = 17, kFloat8e4m3fnuz = 18,
  kFloat8e5m2 = 19, kFloat8e5m2fnuz = 20, kUint4 = 21, kInt4 = 22, kFloat4e2m1 = 23,
  kFloat8e8m0 = 24, kUint2 = 25, kInt2 = 26,
};

// "f32", "u8", "i4", ...; "type<N>" for an unknown value.
std::string dtype_name(int t);
bool is_float_type(int t);    // f32, f64, f16, bf16
bool is_int_type(int t);      // u8 i8 u16 i16 i32 i64 u32 u64 bool u4 i4 u2 i2
// Range of an integer type (bool: 0..1). False for non-integer types.
bool int_range(int t, int64_t* lo, int64_t* hi);

// A malformed file: message "FILE: malformed protobuf at byte N: WHAT".
struct ParseError : std::runtime_error {
  ParseError(const std::string& file, uint64_t offset, const std::string& what);
  std::string file;
  uint64_t offset;
};

// A well-formed tensor of a type this reader does not decode (string, complex, float8, external
// data). Message "FILE: tensor 'NAME': WHAT".
struct UnsupportedType : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr int kMaxDepth = 16;          // message nesting
constexpr int kMaxDims = 32;           // tensor rank
constexpr int64_t kMaxElements = int64_t{1} << 28;   // per tensor
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 30;

struct Tensor {
  std::string name;
  int data_type = kUndefined;
  std::vector<int64_t> dims;   // empty: a scalar
  std::vector<int64_t> ints;   // integer types (u64 stored as its bit pattern)
  std::vector<double> floats;  // floating types, exact
  int64_t numel() const;
  bool is_float() const { return is_float_type(data_type); }
  // Element i as double (either storage).
  double at(int64_t i) const { return is_float() ? floats[size_t(i)] : double(ints[size_t(i)]); }
};

enum class AttrType : int {
  undefined = 0, f = 1, i = 2, s = 3, tensor = 4, graph = 5, floats = 6, ints = 7, strings = 8,
  tensors = 9, graphs = 10, sparse_tensor = 11, sparse_tensors = 12, type_proto = 13,
  type_protos = 14,
};

struct Attribute {
  std::string name;
  AttrType type = AttrType::undefined;  // as declared, or inferred from the fields present
  double f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<double> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;          // t (one element) or tensors
  bool has_graph = false;               // subgraphs are recognized and skipped
};

struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;   // "" = an omitted optional input
  std::vector<Attribute> attributes;
  const Attribute* attr(const std::string& name) const;
};

struct ValueInfo {
  std::string name;
  int elem_type = kUndefined;   // 0 when not a tensor type or not given
  bool has_shape = false;
  std::vector<int64_t> dims;    // -1 for a symbolic or unknown dimension
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<Tensor> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

struct OpsetId {
  std::string domain;
  int64_t version = 0;
};

struct Model {
  int64_t ir_version = 0;
  std::vector<OpsetId> opsets;
  Graph graph;
  bool has_graph = false;
};

// Parse from memory; `file` names the source in error messages.
Model parse_model(const std::string& bytes, const std::string& file);
Tensor parse_tensor(const std::string& bytes, const std::string& file);

// Read a whole file (std::runtime_error "FILE: cannot open: ..." or "... too large") and parse it.
std::string read_file(const std::string& path);
Model read_model(const std::string& path);
Tensor read_tensor(const std::string& path);

}  // namespace fq::onnx
