// FQ graph IR: the in-memory form of a model (docs/format.md). Plain data, shared by the loader,
// the writer, the quantizer and the engine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace fq {

// Every error FQ reports about its input is an fq::Error with a one-line message that names the
// file and line, tensor or node ("model.yaml:12: tensor 'conv0.w': shape [16,3,3] ...").
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType : uint8_t { u8 = 1, i8 = 2, u16 = 3, i16 = 4, i32 = 5, f32 = 6, i4 = 7 };
size_t dtype_bits(DType t);
const char* dtype_name(DType t);
bool parse_dtype(const std::string& s, DType* out);
// Bytes of `count` elements (i4: two per byte, rounded up).
size_t dtype_bytes(DType t, int64_t count);

// real = scale * (q - zero_point); per-tensor (axis < 0, one scale) or per-channel along `axis`.
struct Quant {
  std::vector<double> scale;
  std::vector<int32_t> zero_point;  // empty means 0
  int axis = -1;
  bool empty() const { return scale.empty(); }
};

// Constant data: points into a memory-mapped blob (kept alive by `owner`) or owns its bytes.
struct ConstData {
  std::shared_ptr<const void> owner;
  const uint8_t* ptr = nullptr;
  size_t size = 0;
  static ConstData copy_of(const void* p, size_t n);  // owning copy
};

struct TensorDef {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  Quant quant;
  bool is_const = false;
  // State tensor (YAML `state: true`): not constant, persists across Session::run() calls, zero
  // when the session is created or reset; updated in place by ops that take it as an input.
  bool is_state = false;
  std::string data_ref;   // blob entry name; empty = same as `name`
  ConstData data;         // filled for constants once loaded (or set by the quantizer)
  int line = 0;           // YAML line, 0 when built in memory
  int64_t numel() const;
  size_t nbytes() const { return dtype_bytes(dtype, numel()); }
  template <class T> const T* as() const { return reinterpret_cast<const T*>(data.ptr); }
};

using Attr = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

struct NodeDef {
  std::string name;
  std::string op;
  int version = 1;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, Attr> attrs;
  int line = 0;
  // Typed attribute access; throws fq::Error naming the node when present with the wrong type.
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key) const;  // empty when absent
  double attr_float(const std::string& key, double fallback) const;
  std::string attr_str(const std::string& key, const std::string& fallback) const;
};

struct Graph {
  std::string name;
  std::vector<TensorDef> tensors;
  std::vector<NodeDef> nodes;            // after load/validate: in execution (topological) order
  std::vector<std::string> inputs, outputs;
  std::map<std::string, std::string> meta;
  std::string path;                      // YAML file it was loaded from (for messages)

  int find_tensor(const std::string& name) const;   // -1 when absent
  const TensorDef& tensor(const std::string& name) const;  // throws fq::Error when absent
  TensorDef& tensor(const std::string& name);
  int add_tensor(TensorDef t);                       // throws on duplicate names
};

// Reads NAME.yaml and its blob (memory-mapped), and validates everything (format rules, checksums,
// op arity, dtypes and shapes). Throws fq::Error with a one-line message.
Graph load_graph(const std::string& yaml_path);
// Parses YAML text only (no blob; constants left without data). For tests and fuzzing.
Graph parse_graph_yaml(const std::string& text, const std::string& path_for_messages);
// Validates the graph (structure, topological order, per-op checks, shape inference) and reorders
// nodes into execution order. Called by load_graph; call it after building a graph in memory.
void validate_graph(Graph& g);
// Writes NAME.yaml and NAME.fqw (the blob name is the YAML name with .fqw).
void save_graph(const Graph& g, const std::string& yaml_path);

}  // namespace fq
