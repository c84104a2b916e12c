// Every broken model is rejected with one fq::Error line that names the file and the line, tensor,
// node or blob entry. YAML cases are tests/data/bad/*.yaml (each a one-edit copy of _base.yaml, or
// for the integer LLM ops, llm_*.yaml, of _llm_base.yaml); blob cases are made here from the base
// model's blob by byte edits.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "../temp_dir.h"
#include "blob.h"
#include "fq/fq.h"
#include "fq/graph.h"

namespace fs = std::filesystem;

namespace {

const fs::path kBad = fs::path(FQ_SOURCE_DIR) / "tests" / "data" / "bad";

// A failure and where it must be reported: both strings must appear in the message.
struct Case {
  const char* file;   // in tests/data/bad, or the blob case's name
  const char* where;  // "FILE:LINE:" or the file plus the tensor/node/entry
  const char* what;   // the gist of the message
};

// Lines refer to the files in tests/data/bad (the edit is on the line the file's name suggests).
// clang-format off
const Case kYamlCases[] = {
    {"malformed_yaml.yaml", "malformed_yaml.yaml:8:", "invalid YAML"},
    {"wrong_format.yaml", "wrong_format.yaml:2:", "format: 'fq-graph2', expected 'fq-graph'"},
    {"wrong_version.yaml", "wrong_version.yaml:3:", "unsupported format version 2"},
    {"version_not_int.yaml", "version_not_int.yaml:3:", "version: expected an integer, got 'one'"},
    {"unknown_top_key.yaml", "unknown_top_key.yaml:7:", "the graph: unknown key 'output'"},
    {"unknown_tensor_key.yaml", "unknown_tensor_key.yaml:25:", "tensor 'y': unknown key 'shpae'"},
    {"unknown_quant_key.yaml", "unknown_quant_key.yaml:30:", "tensor 'q.w': quant: unknown key 'scales'"},
    {"unknown_op.yaml", "unknown_op.yaml:37:", "rectify"},
    {"unknown_op_version.yaml", "unknown_op_version.yaml:37:", "'act'"},
    {"unknown_dtype.yaml", "unknown_dtype.yaml:24:", "tensor 'y': unknown dtype 'f16'"},
    {"shape_negative.yaml", "shape_negative.yaml:9:", "tensor 'x': shape [2,-4]: dimension 1 is -4"},
    {"shape_zero.yaml", "shape_zero.yaml:9:", "tensor 'x': shape [0,4]: dimension 0 is 0"},
    {"shape_9dims.yaml", "shape_9dims.yaml:11:", "tensor 'x': shape: 9 items, at most 8"},
    {"shape_huge_dim.yaml", "shape_huge_dim.yaml:9:", "dimension 1 is 4294967296, must be 1..2147483647"},
    {"shape_overflow.yaml", "shape_overflow.yaml:9:", "tensor 'x': shape [2147483647,2147483647,2147483647,2147483647]: more than 2^40 bytes"},
    {"shape_wrap.yaml", "shape_wrap.yaml:9:", "tensor 'x': shape [2097152,2097152,4194304]: more than 2^40 bytes"},
    {"shape_mismatch.yaml", "shape_mismatch.yaml:37:", "'act'"},
    {"quoted_number.yaml", "quoted_number.yaml:11:", "tensor 'x': shape: expected an integer, got '2'"},
    {"dangling_tensor.yaml", "dangling_tensor.yaml:37:", "node 'act': input 'hidden' is not a declared tensor"},
    {"duplicate_tensor.yaml", "duplicate_tensor.yaml:20:", "tensor 'x' is declared twice (first at line 9)"},
    {"duplicate_node.yaml", "duplicate_node.yaml:37:", "node 'fc' is declared twice (first at line 32)"},
    {"duplicate_key.yaml", "duplicate_key.yaml:11:", "key 'dtype' is given twice"},
    {"missing_key.yaml", "missing_key.yaml:23:", "tensor 'y': missing key 'dtype'"},
    {"written_twice.yaml", "written_twice.yaml:41:", "tensor 'y' is written by node 'act' and by node 'act2'"},
    {"input_written.yaml", "input_written.yaml:37:", "node 'act' writes graph input 'x'"},
    {"const_written.yaml", "const_written.yaml:37:", "node 'act' writes constant tensor 'fc.b'"},
    {"cycle.yaml", "cycle.yaml:37:", "node 'act' is on a cycle (act -> fc -> act)"},
    {"missing_output.yaml", "missing_output.yaml:23:", "graph output 'y' is not written by any node"},
    {"undeclared_output.yaml", "undeclared_output.yaml: ", "graph output 'probs' is not a declared tensor"},
    {"undeclared_input.yaml", "undeclared_input.yaml: ", "graph input 'image' is not a declared tensor"},
    {"no_outputs.yaml", "no_outputs.yaml: ", "the graph has no outputs"},
    {"wrong_type.yaml", "wrong_type.yaml:6:", "inputs: expected a list"},
    {"missing_blob.yaml", "nothere.fqw: ", "cannot open: No such file or directory"},
    {"weights_absolute.yaml", "weights_absolute.yaml:5:", "must be a path relative to the graph file"},
    {"const_without_weights.yaml", "const_without_weights.yaml:11:", "tensor 'fc.w' is constant but the graph names no blob (weights:)"},
    {"const_missing_from_blob.yaml", "const_missing_from_blob.yaml:12:", "tensor 'fc.w': no entry 'fc.weight' in"},
    {"data_not_const.yaml", "data_not_const.yaml:20:", "tensor 'h': names a blob entry (data:) but is not constant"},
    {"blob_dtype_mismatch.yaml", "blob_dtype_mismatch.yaml:16:", "tensor 'fc.b': dtype i32 but blob entry 'fc.b'"},
    {"blob_shape_mismatch.yaml", "blob_shape_mismatch.yaml:12:", "tensor 'fc.w': shape [4,3] but blob entry 'fc.w'"},
    {"wrong_attr_type.yaml", "wrong_attr_type.yaml:32:", "attribute 'relu'"},
    {"nonfinite_scale.yaml", "nonfinite_scale.yaml:26:", "tensor 'q.w': quant scale inf is not finite and > 0"},
    {"negative_scale.yaml", "negative_scale.yaml:26:", "tensor 'q.w': quant scale -0.25 is not finite and > 0"},
    {"scale_count.yaml", "scale_count.yaml:26:", "tensor 'q.w': 2 quant scales, expected 3 (shape[0])"},
    {"quant_axis.yaml", "quant_axis.yaml:26:", "tensor 'q.w': quant axis 2 is not a dimension of shape [3,4]"},
    {"zero_point_range.yaml", "zero_point_range.yaml:26:", "tensor 'q.w': zero point 200 is outside i8 range"},
    {"long_name.yaml", "long_name.yaml:20:", "name is 256 bytes, at most 255"},
    {"control_char_name.yaml", "control_char_name.yaml:20:", "tensor 'h\\x09x': name contains a control character"},
    {"top_not_map.yaml", "top_not_map.yaml:2:", "the graph: expected a map"},
    {"empty_file.yaml", "empty_file.yaml: ", "empty document"},
    {"two_documents.yaml", "two_documents.yaml: ", "more than one YAML document"},
    {"alias_bomb.yaml", "alias_bomb.yaml:", "the document expands (through aliases) far beyond its size"},
    // Integer LLM ops: one-edit copies of _llm_base.yaml (blob llm_base.fqw).
    {"llm_embedding_dtype.yaml", "llm_embedding_dtype.yaml:49:", "tensor 'x' has dtype i16, expected i32"},
    {"llm_embedding_shape.yaml", "llm_embedding_shape.yaml:49:", "tensor 'x' has shape [1,7], expected [1,8]"},
    {"llm_embedding_exp.yaml", "llm_embedding_exp.yaml:49:", "attribute 'exp' = 63 is outside [0, 62]"},
    {"llm_rmsnorm_dtype.yaml", "llm_rmsnorm_dtype.yaml:50:", "tensor 'xb' has dtype u8, expected i8/i16"},
    {"llm_rmsnorm_shape.yaml", "llm_rmsnorm_shape.yaml:50:", "tensor 'xb_scale' has shape [1,3], expected [1,2]"},
    {"llm_rmsnorm_qmax.yaml", "llm_rmsnorm_qmax.yaml:50:", "attribute 'qmax' = 128 is outside [1, 127] for i8 output 'xb'"},
    {"llm_rmsnorm_eps.yaml", "llm_rmsnorm_eps.yaml:50:", "attribute 'eps_e' = 200 is outside [-62, 124]"},
    {"llm_dimatmul_dtype.yaml", "llm_dimatmul_dtype.yaml:51:", "tensor 'q' has dtype i8, expected i16"},
    {"llm_dimatmul_shape.yaml", "llm_dimatmul_shape.yaml:51:", "tensor 'q' has shape [1,7], expected [1,8]"},
    {"llm_dimatmul_w_exp.yaml", "llm_dimatmul_w_exp.yaml:51:", "attribute 'w_exp' = 125 is outside [0, 124]"},
    {"llm_dimatmul_group.yaml", "llm_dimatmul_group.yaml:52:", "attribute 'group' must be 32, 64 or 128"},
    {"llm_dimatmul_x_cols.yaml", "llm_dimatmul_x_cols.yaml:51:", "attribute 'x_cols' must be [begin, end) with 0 <= begin < end <= 8 (the columns of 'xb')"},
    {"llm_dimatmul_arity.yaml", "llm_dimatmul_arity.yaml:51:", "takes 4..6 inputs, got 3"},
    {"llm_rope_dtype.yaml", "llm_rope_dtype.yaml:54:", "tensor 'qr' has dtype i8, expected i16"},
    {"llm_rope_shape.yaml", "llm_rope_shape.yaml:54:", "tensor 'qr' has shape [1,6], expected [1,8]"},
    {"llm_rope_head_dim.yaml", "llm_rope_head_dim.yaml:54:", "attribute 'head_dim' must be even"},
    {"llm_attention_dtype.yaml", "llm_attention_dtype.yaml:55:", "tensor 'a' has dtype i16, expected i8"},
    {"llm_attention_shape.yaml", "llm_attention_shape.yaml:55:", "tensor 'k_cache' has shape [4,8], expected [4,4]"},
    {"llm_attention_state.yaml", "llm_attention_state.yaml:55:", "tensor 'v_cache_scale' must be a state tensor (state: true)"},
    {"llm_attention_clip.yaml", "llm_attention_clip.yaml:55:", "attribute 'clip_q16' = 0 is outside [1, 1099511627776]"},
    {"llm_attention_heads.yaml", "llm_attention_heads.yaml:55:", "n_heads must be a multiple of n_kv_heads"},
    {"llm_hadamard_dtype.yaml", "llm_hadamard_dtype.yaml:56:", "tensor 'h' has dtype i16, expected i8"},
    {"llm_hadamard_shape.yaml", "llm_hadamard_shape.yaml:56:", "tensor 'h_scale' has shape [2,2], expected [1,2]"},
    {"llm_hadamard_qmax.yaml", "llm_hadamard_qmax.yaml:56:", "attribute 'qmax' = 128 is outside [1, 127] for i8 output 'h'"},
    {"llm_residual_dtype.yaml", "llm_residual_dtype.yaml:58:", "tensor 'x2' has dtype i16, expected i32"},
    {"llm_residual_shape.yaml", "llm_residual_shape.yaml:58:", "tensor 'x2' has shape [1,4], expected [1,8]"},
    {"llm_residual_exp.yaml", "llm_residual_exp.yaml:58:", "attribute 'exp' = -1 is outside [0, 62]"},
    {"llm_swiglu_dtype.yaml", "llm_swiglu_dtype.yaml:59:", "tensor 'g' has dtype i32, expected i8/i16"},
    {"llm_swiglu_shape.yaml", "llm_swiglu_shape.yaml:59:", "tensor 'g' has shape [1,4], expected [1,8]"},
    // Depthwise conv2d: one-edit copies of _conv_base.yaml (blob conv_base.fqw).
    {"conv_groups.yaml", "conv_groups.yaml:16:", "node 'dw' (conv2d): attribute 'groups' = 4: only 1 and the input channel count (8, depthwise) are supported"},
    {"llm_swiglu_qmax.yaml", "llm_swiglu_qmax.yaml:59:", "attribute 'qmax' = 0 is outside [1, 127] for i8 output 'g'"},
    // Integer softmax: one-edit copies of _softmax_base.yaml (blob softmax_base.fqw).
    {"softmax_arity.yaml", "softmax_arity.yaml:13:", "node 'sm' (softmax): the integer form takes inputs x, x_scale (i32 [2])"},
    {"softmax_x_dtype.yaml", "softmax_x_dtype.yaml:13:", "tensor 'x' has dtype u8, expected i8/i16"},
    {"softmax_y_dtype.yaml", "softmax_y_dtype.yaml:13:", "tensor 'y' has dtype i16, expected u16/u8"},
    {"softmax_clip.yaml", "softmax_clip.yaml:13:", "attribute 'clip_q16' = 0 is outside [1, 1099511627776]"},
};
// clang-format on

// ---- blob cases: edits of the base model's blob -------------------------------------------------

using Bytes = std::vector<uint8_t>;

uint64_t rd(const Bytes& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | b.at(at + size_t(i));
  return v;
}
void wr(Bytes& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.at(at + size_t(i)) = uint8_t(v >> (8 * i));
}
// Byte position of table entry i (entries are fc.w, fc.b, q.w in the base blob).
size_t entry(const Bytes& b, int i) {
  size_t pos = 64;
  for (int k = 0; k < i; ++k) pos += (32 + 8 * b.at(pos + 6) + rd(b, pos, 4) + 7) / 8 * 8;
  return pos;
}
size_t data_of(const Bytes& b, int i) { return rd(b, entry(b, i) + 8, 8); }

struct BlobCase {
  const char* name;
  const char* where;
  const char* what;
  std::function<void(Bytes&)> edit;
  bool reseal = true;  // recompute the file checksum after the edit, so only the edit is wrong
};

const BlobCase kBlobCases[] = {
    {"blob_short", "blob_short.fqw: ", "truncated: 30 bytes, shorter than the 64-byte header",
     [](Bytes& b) { b.resize(30); }, false},
    {"blob_truncated", "blob_truncated.fqw: ", "header says 396 bytes but the file has 386",
     [](Bytes& b) { b.resize(b.size() - 10); }, false},
    {"blob_appended", "blob_appended.fqw: ", "header says 396 bytes but the file has 460",
     [](Bytes& b) { b.resize(b.size() + 64); }, false},
    {"blob_bad_magic", "blob_bad_magic.fqw: ", "bad magic: not an FQ weight blob",
     [](Bytes& b) { b[0] = 'X'; }},
    {"blob_wrong_version", "blob_wrong_version.fqw: ", "unsupported blob version 2",
     [](Bytes& b) { wr(b, 4, 2, 4); }},
    {"blob_byte_order", "blob_byte_order.fqw: ", "byte-order mark 0x04030201, expected 0x01020304",
     [](Bytes& b) { wr(b, 8, 0x04030201, 4); }},
    {"blob_reserved", "blob_reserved.fqw: ", "reserved header bytes 48..63 are not zero",
     [](Bytes& b) { b[50] = 1; }},
    {"blob_count_huge", "blob_count_huge.fqw: ", "tensor_count 2000000 exceeds 1000000",
     [](Bytes& b) { wr(b, 12, 2000000, 4); }},
    {"blob_count_vs_table", "blob_count_vs_table.fqw: ",
     "table_size 160 is too small for 5 entries", [](Bytes& b) { wr(b, 12, 5, 4); }},
    {"blob_table_offset", "blob_table_offset.fqw: ", "table_offset 72, must be 64",
     [](Bytes& b) { wr(b, 16, 72, 8); }},
    {"blob_table_size", "blob_table_size.fqw: ", "table_size 1000 runs past the end of the file",
     [](Bytes& b) { wr(b, 24, 1000, 8); }},
    {"blob_table_mismatch", "blob_table_mismatch.fqw: ",
     "table_size 168 but the entries end at byte 224", [](Bytes& b) { wr(b, 24, 168, 8); }},
    {"blob_file_checksum", "blob_file_checksum.fqw: ", "file checksum mismatch",
     [](Bytes& b) { b[40] ^= 1; }, false},
    {"blob_data_flipped", "blob_data_flipped.fqw: ", "entry 'fc.b': data checksum mismatch",
     [](Bytes& b) { b[data_of(b, 1) + 5] ^= 0x10; }},
    {"blob_entry_checksum", "blob_entry_checksum.fqw: ", "entry 'q.w': data checksum mismatch",
     [](Bytes& b) { b[entry(b, 2) + 24] ^= 1; }},
    {"blob_misaligned",
     "blob_misaligned.fqw: ", "entry 1 'fc.b': data_offset 328 is not a multiple of 64",
     [](Bytes& b) { wr(b, entry(b, 1) + 8, data_of(b, 1) + 8, 8); }},
    {"blob_out_of_range", "blob_out_of_range.fqw: ",
     "entry 2 'q.w': data [448, +12) runs past the end of the file (396 bytes)",
     [](Bytes& b) { wr(b, entry(b, 2) + 8, 448, 8); }},
    {"blob_huge_offset",
     "blob_huge_offset.fqw: ", "entry 2 'q.w': data [18446744073709551552, +12) runs past",
     [](Bytes& b) { wr(b, entry(b, 2) + 8, ~uint64_t(63), 8); }},
    {"blob_offset_in_table",
     "blob_offset_in_table.fqw: ", "entry 0 'fc.w': data_offset 192 is inside the header or table",
     [](Bytes& b) { wr(b, entry(b, 0) + 8, 192, 8); }},
    {"blob_overlap", "blob_overlap.fqw: ", "data overlaps entry",
     [](Bytes& b) { wr(b, entry(b, 1) + 8, data_of(b, 0), 8); }},
    {"blob_duplicate_name", "blob_duplicate_name.fqw: ", "entry 'fc.w' appears twice",
     [](Bytes& b) { b[entry(b, 1) + 32 + 8 + 3] = 'w'; }},
    {"blob_data_size",
     "blob_data_size.fqw: ", "entry 1 'fc.b': data_size 16, expected 12 for f32 [3]",
     [](Bytes& b) { wr(b, entry(b, 1) + 16, 16, 8); }},
    {"blob_dims_vs_size",
     "blob_dims_vs_size.fqw: ", "entry 0 'fc.w': data_size 48, expected 64 for f32 [4,4]",
     [](Bytes& b) { wr(b, entry(b, 0) + 32, 4, 8); }},
    {"blob_bad_dim", "blob_bad_dim.fqw: ", "entry 0 'fc.w': shape [0,4]: dimension 0 is 0",
     [](Bytes& b) { wr(b, entry(b, 0) + 32, 0, 8); }},
    {"blob_gap", "blob_gap.fqw: ", "nonzero byte at offset 310 outside the header, table and data",
     [](Bytes& b) { b[310] = 1; }},
    {"blob_dtype_code", "blob_dtype_code.fqw: ", "entry 1 'fc.b': dtype code 9, must be 1..7",
     [](Bytes& b) { b[entry(b, 1) + 4] = 9; }},
    {"blob_layout", "blob_layout.fqw: ", "entry 1 'fc.b': layout 1, v1 has only 0 (dense)",
     [](Bytes& b) { b[entry(b, 1) + 5] = 1; }},
    {"blob_ndim", "blob_ndim.fqw: ", "entry 0: ndim 9, at most 8",
     [](Bytes& b) { b[entry(b, 0) + 6] = 9; }},
    {"blob_name_len", "blob_name_len.fqw: ", "entry 1: name_len 0, must be 1..255",
     [](Bytes& b) { wr(b, entry(b, 1), 0, 4); }},
    {"blob_name_padding", "blob_name_padding.fqw: ", "entry 0 'fc.w': name padding is not zero",
     [](Bytes& b) { b[entry(b, 0) + 32 + 16 + 4] = 1; }},
    {"blob_const_dtype",
     "blob_const_dtype.yaml:15:", "tensor 'fc.b': dtype f32 but blob entry 'fc.b' in",
     [](Bytes& b) { b[entry(b, 1) + 4] = 5; }},  // i32: same size, so only the YAML disagrees
};

using fq::test::TempDir;

Bytes read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// Writes a base model (tests/data/bad/_NAME.yaml with deterministic constants) into `dir` as
// NAME.yaml and NAME.fqw.
// fill >= 0: every constant byte is `fill` instead.
void write_base(const fs::path& dir, const std::string& name, bool zero_constants, int fill = -1) {
  const std::string file = "_" + name + ".yaml";
  fq::Graph g = fq::parse_graph_yaml(fq::read_file((kBad / file).string()), file);
  for (auto& t : g.tensors) {
    if (!t.is_const) continue;
    Bytes data(t.nbytes());
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = fill >= 0 ? uint8_t(fill) : zero_constants ? 0 : uint8_t(i * 7 + 1);
    t.data = fq::ConstData::copy_of(data.data(), data.size());
  }
  fq::save_graph(g, (dir / (name + ".yaml")).string());
}
// The base models: base (float and i8 constants) and llm_base (integer LLM ops; zero constants
// are valid parameters of every op).
void write_base(const fs::path& dir) {
  write_base(dir, "base", false);
  write_base(dir, "llm_base", true);
  write_base(dir, "conv_base", false, 1);  // depthwise conv2d (conv_*.yaml cases)
  write_base(dir, "softmax_base", true);   // integer softmax (softmax_*.yaml cases)
}

// Loads `yaml` and checks the error: one line, naming the place and the problem.
void expect_error(const fs::path& yaml, const char* where, const char* what) {
  INFO("model: " << yaml.filename().string());
  std::string msg;
  try {
    fq::load_graph(yaml.string());
  } catch (const fq::Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  REQUIRE_FALSE(msg.empty());  // no error at all, or one that is not an fq::Error
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(msg.find(where) != std::string::npos);
  CHECK(msg.find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("the base model of the bad corpus loads") {
  TempDir dir;
  write_base(dir.path);
  fq::Graph g = fq::load_graph((dir.path / "base.yaml").string());
  CHECK(g.nodes.size() == 2);
  // The blob cases rely on the base blob's layout: fc.w, fc.b, q.w; 396 bytes.
  Bytes b = read_bytes(dir.path / "base.fqw");
  CHECK(b.size() == 396);
  CHECK(data_of(b, 0) == 256);
  CHECK(data_of(b, 1) == 320);
  CHECK(data_of(b, 2) == 384);
}

TEST_CASE("the integer LLM base model of the bad corpus loads and prepares") {
  TempDir dir;
  write_base(dir.path);
  fq::Graph g = fq::load_graph((dir.path / "llm_base.yaml").string());
  CHECK(g.nodes.size() == 11);
  fq::Session s(g);
  s.run();
}

TEST_CASE("the depthwise conv base model of the bad corpus loads and prepares") {
  TempDir dir;
  write_base(dir.path);
  fq::Graph g = fq::load_graph((dir.path / "conv_base.yaml").string());
  fq::Session s(g);
  s.run();
  CHECK(s.nodes().at(0).kernel.rfind("dwconv/", 0) == 0);
}

TEST_CASE("the integer softmax base model of the bad corpus loads and runs") {
  TempDir dir;
  write_base(dir.path);
  fq::Graph g = fq::load_graph((dir.path / "softmax_base.yaml").string());
  fq::Session s(g);
  s.run();
  CHECK(s.nodes().at(0).kernel.rfind("softmax_int/", 0) == 0);
  // x_scale = (0, 0): every logit difference is 0, so each row is uniform: 2^16 / 5 (truncated
  // through F = (2^62 - 1) / Z).
  const auto* y = static_cast<const uint16_t*>(s.output(0).data);
  for (int i = 0; i < 10; ++i) CHECK(y[i] == 13107);
}

// The softmax x_scale's values and the older (mult, shift) form (constants with data: built in
// code, checked by validate_graph; the older form must give the bytes of its x_scale equivalent).
TEST_CASE("integer softmax: x_scale values and the (mult, shift) form") {
  auto graph = [](std::vector<fq::TensorDef> params) {
    fq::Graph g;
    g.name = "sm";
    fq::TensorDef x, y;
    x.name = "x", x.dtype = fq::DType::i8, x.shape = {1, 4};
    y.name = "y", y.dtype = fq::DType::u16, y.shape = {1, 4};
    g.add_tensor(x);
    g.add_tensor(y);
    fq::NodeDef n;
    n.name = "sm", n.op = "softmax", n.inputs = {"x"}, n.outputs = {"y"};
    for (auto& t : params) {
      n.inputs.push_back(t.name);
      g.add_tensor(std::move(t));
    }
    g.inputs = {"x"}, g.outputs = {"y"};
    g.nodes.push_back(n);
    return g;
  };
  auto cst = [](const char* name, fq::DType dt, std::vector<int64_t> shape, const void* p,
                size_t bytes) {
    fq::TensorDef t;
    t.name = name, t.dtype = dt, t.shape = std::move(shape), t.is_const = true;
    t.data = fq::ConstData::copy_of(p, bytes);
    return t;
  };
  auto run = [](const fq::Graph& g) {
    fq::Session s(g);
    const int8_t x[4] = {3, -1, 0, -20};
    std::memcpy(s.input(0).data, x, 4);
    s.run();
    const auto* y = static_cast<const uint16_t*>(s.output(0).data);
    return std::vector<uint16_t>(y, y + 4);
  };
  const int32_t bad[2] = {1, 10};  // mant below 2^14
  fq::Graph bad_value = graph({cst("xs", fq::DType::i32, {2}, bad, 8)});
  fq::Graph bad_shape = graph({cst("xs", fq::DType::i32, {1, 2}, bad, 8)});
  CHECK_THROWS_WITH(fq::validate_graph(bad_value),
                    Catch::Contains("tensor 'xs' row 0 = (1, 10): a row scale is (mant in [2^14, 2^15)"));
  CHECK_THROWS_WITH(fq::validate_graph(bad_shape),
                    Catch::Contains("tensor 'xs' has shape [1,2], expected [2]"));
  // (mult, shift) = (2^30, 20): one LSB is 2^10 / 2^16 log2 units = ln 2 / 64 in real units;
  // its x_scale equivalent is normalize(2^30 * round(ln 2 * 2^32), 68) = (22713, 21).
  const int32_t mult = 1 << 30;
  const int8_t shift = 20;
  const int32_t xs[2] = {22713, 21};
  fq::Graph old = graph({cst("m", fq::DType::i32, {1}, &mult, 4),
                         cst("s", fq::DType::i8, {1}, &shift, 1)});
  fq::Graph cur = graph({cst("xs", fq::DType::i32, {2}, xs, 8)});
  fq::validate_graph(old);
  fq::validate_graph(cur);
  const std::vector<uint16_t> a = run(old), b = run(cur);
  CHECK(a == b);
  // ln 2 / 64 per LSB: p ~ 2^(d/64) / sum.
  double Z = 0;
  for (int d : {3, -1, 0, -20}) Z += std::exp2((d - 3) / 64.0);
  CHECK(std::fabs(a[0] - 65536 / Z) <= 1.0);
}

TEST_CASE("every broken YAML model is rejected with a one-line error naming the place") {
  TempDir dir;
  write_base(dir.path);  // the cases that need a blob name base.fqw
  std::set<std::string> listed;
  for (const Case& c : kYamlCases) {
    listed.insert(c.file);
    fs::copy_file(kBad / c.file, dir.path / c.file);
    expect_error(dir.path / c.file, c.where, c.what);
  }
  // Every file of the corpus is in the table (and so has its expected message).
  for (const auto& e : fs::directory_iterator(kBad)) {
    std::string name = e.path().filename().string();
    if (name[0] != '_') CHECK(listed.count(name) == 1);
  }
  CHECK(listed.size() >= 30);
  // Not a file at all (a device or FIFO would feed the reader forever).
  fs::create_directory(dir.path / "folder.yaml");
  expect_error(dir.path / "folder.yaml", "folder.yaml: ", "not a regular file");
}

TEST_CASE("every broken blob is rejected with a one-line error naming the file and entry") {
  TempDir dir;
  write_base(dir.path);
  const Bytes base = read_bytes(dir.path / "base.fqw");
  const std::string yaml = fq::read_file((dir.path / "base.yaml").string());
  for (const BlobCase& c : kBlobCases) {
    Bytes b = base;
    c.edit(b);
    if (c.reseal) {
      wr(b, 40, 0, 8);
      wr(b, 40, fq::detail::fnv1a64(b.data(), b.size()), 8);
    }
    const std::string name = c.name;
    write_bytes(dir.path / (name + ".fqw"), b);
    std::string text = yaml;
    text.replace(text.find("weights: base.fqw"), 17, "weights: " + name + ".fqw");
    std::ofstream(dir.path / (name + ".yaml")) << text;
    expect_error(dir.path / (name + ".yaml"), c.where, c.what);
  }
}

TEST_CASE("the blob reader takes bytes in memory too, with the same checks") {
  TempDir dir;
  write_base(dir.path);
  Bytes b = read_bytes(dir.path / "base.fqw");
  auto blob = fq::detail::Blob::parse(nullptr, b.data(), b.size(), "mem.fqw");
  REQUIRE(blob.entries().size() == 3);
  CHECK(blob.find("q.w")->dtype == fq::DType::i8);
  b[300] ^= 1;  // inside fc.w's data
  CHECK_THROWS_WITH(fq::detail::Blob::parse(nullptr, b.data(), b.size(), "mem.fqw"),
                    Catch::StartsWith("mem.fqw: entry 'fc.w': data checksum mismatch"));
}
