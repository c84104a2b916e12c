// The model format (docs/format.md): save/load round trips, blob layout and checksums, in-place
// use of the mapped blob, execution order, and the IR helpers.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "../temp_dir.h"
#include "blob.h"
#include "fq/fq.h"
#include "fq/graph.h"

namespace fs = std::filesystem;
using fq::DType;

namespace {

using fq::test::TempDir;

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// FNV-1a 64 straight from its definition, one byte per step: the reference for the engine's.
uint64_t fnv_reference(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint32_t le32(const uint8_t* p) { return uint32_t(le64(p) & 0xffffffffu); }

fq::TensorDef tensor(const std::string& name, DType dt, std::vector<int64_t> shape) {
  fq::TensorDef t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(shape);
  return t;
}

// A constant with distinct, deterministic bytes.
fq::TensorDef constant(const std::string& name, DType dt, std::vector<int64_t> shape, int seed) {
  fq::TensorDef t = tensor(name, dt, std::move(shape));
  t.is_const = true;
  std::vector<uint8_t> bytes(t.nbytes());
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 37 + seed * 11 + 1);
  t.data = fq::ConstData::copy_of(bytes.data(), bytes.size());
  return t;
}

fq::NodeDef node(const std::string& name, const std::string& op, std::vector<std::string> in,
                 std::vector<std::string> out) {
  fq::NodeDef n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// A valid float graph (fully_connected + relu, listed out of order) plus unused constants of
// every dtype with per-tensor and per-channel quantization.
fq::Graph full_graph() {
  fq::Graph g;
  g.name = "round trip: \"all\" features";
  g.meta = {{"source", "tests/engine/format_test.cc"},
            {"true", "yes"},
            {"num", "123"},
            {"empty", ""},
            {"colon", "a: b # not a comment"},
            {"lines", "l1\nl2\ttab"},
            {"unicode", "\xc3\xa9t\xc3\xa9"}};
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.tensors.push_back(tensor("x", DType::f32, {2, 4}));
  g.tensors.push_back(constant("fc.w", DType::f32, {3, 4}, 1));
  g.tensors.push_back(constant("fc.b", DType::f32, {3}, 2));
  g.tensors.push_back(tensor("h", DType::f32, {2, 3}));
  g.tensors.push_back(tensor("y", DType::f32, {2, 3}));

  fq::TensorDef u8 = constant("c.u8", DType::u8, {5}, 3);
  u8.quant.scale = {1.0 / 255};
  u8.quant.zero_point = {3};
  g.tensors.push_back(u8);
  fq::TensorDef i8 = constant("c.i8", DType::i8, {3, 2}, 4);
  i8.quant.axis = 0;
  i8.quant.scale = {0.1, 1.0 / 3, 1e-300};
  i8.quant.zero_point = {-1, 0, 5};
  g.tensors.push_back(i8);
  g.tensors.push_back(constant("c.u16", DType::u16, {7}, 5));
  fq::TensorDef i16 = constant("c.i16", DType::i16, {2, 3, 1}, 6);
  i16.quant.axis = 1;
  i16.quant.scale = {0.00392156862745098, std::numeric_limits<double>::max(),
                     std::numeric_limits<double>::denorm_min()};
  g.tensors.push_back(i16);
  g.tensors.push_back(constant("c.i32", DType::i32, {4}, 7));
  g.tensors.push_back(constant("c.f32", DType::f32, {2, 2}, 8));
  fq::TensorDef i4 = constant("c.i4", DType::i4, {3, 3}, 9);  // 9 nibbles: 5 bytes
  i4.quant.axis = 1;
  i4.quant.scale = {2.0, 1e20, 0.015625};
  i4.quant.zero_point = {-8, 0, 7};
  g.tensors.push_back(i4);
  g.tensors.push_back(constant("c.scalar", DType::i32, {}, 10));
  fq::TensorDef alias = constant("c.alias", DType::i32, {4}, 7);  // same bytes as c.i32
  alias.data_ref = "c.i32";
  g.tensors.push_back(alias);
  g.tensors.push_back(constant("odd name: \"q\" #1 \xc3\xa9", DType::u8, {1}, 11));

  fq::NodeDef act = node("act", "relu", {"h"}, {"y"});
  fq::NodeDef fc = node("fc", "fully_connected", {"x", "fc.w", "fc.b"}, {"h"});
  fc.attrs["relu"] = int64_t(0);
  g.nodes = {act, fc};
  return g;
}

void require_same_tensors(const fq::Graph& a, const fq::Graph& b) {
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const fq::TensorDef& x = a.tensors[i];
    const fq::TensorDef& y = b.tensors[i];
    INFO("tensor " << x.name);
    CHECK(x.name == y.name);
    CHECK(x.dtype == y.dtype);
    CHECK(x.shape == y.shape);
    CHECK(x.is_const == y.is_const);
    CHECK(x.data_ref == y.data_ref);
    CHECK(x.quant.axis == y.quant.axis);
    CHECK(x.quant.scale == y.quant.scale);  // bit-exact: the writer prints round-trip digits
    CHECK(x.quant.zero_point == y.quant.zero_point);
    REQUIRE(x.data.size == y.data.size);
    if (x.data.size) CHECK(std::memcmp(x.data.ptr, y.data.ptr, x.data.size) == 0);
  }
}

// The start address and path of the mapping of this process that holds `p`, from /proc.
bool find_mapping(const void* p, uintptr_t* start, std::string* file) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    uintptr_t lo = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    uintptr_t hi = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    auto a = reinterpret_cast<uintptr_t>(p);
    if (a >= lo && a < hi) return *start = lo, *file = path, std::stoull(offset, nullptr, 16) == 0;
  }
  return false;
}

}  // namespace

TEST_CASE("FNV-1a 64: known values, and the 8-byte path equals the byte-wise definition") {
  using fq::detail::fnv1a64;
  CHECK(fnv1a64("", 0) == 0xcbf29ce484222325ull);
  CHECK(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(300);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t start = 0; start < 9; ++start)
    for (size_t n = 0; start + n <= buf.size(); n += 1 + n / 4)
      REQUIRE(fnv1a64(buf.data() + start, n) == fnv_reference(buf.data() + start, n));
  // Continuing a hash equals hashing the concatenation.
  CHECK(fnv1a64(buf.data() + 100, 200, fnv1a64(buf.data(), 100)) == fnv_reference(buf.data(), 300));
}

TEST_CASE("save_graph then load_graph preserves every dtype, quantization, name and meta") {
  TempDir dir;
  fq::Graph g = full_graph();
  fq::save_graph(g, dir / "full.yaml");
  REQUIRE(fs::exists(dir / "full.fqw"));
  for (auto& e : fs::directory_iterator(dir.path))  // temporaries are renamed away
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);

  fq::Graph h = fq::load_graph(dir / "full.yaml");
  CHECK(h.path == dir / "full.yaml");
  CHECK(h.name == g.name);
  CHECK(h.meta == g.meta);
  CHECK(h.inputs == g.inputs);
  CHECK(h.outputs == g.outputs);
  require_same_tensors(g, h);
  // Nodes come back in execution order: fc before act, although act is listed first.
  REQUIRE(h.nodes.size() == 2);
  CHECK(h.nodes[0].name == "fc");
  CHECK(h.nodes[0].op == "fully_connected");
  CHECK(h.nodes[0].inputs == std::vector<std::string>{"x", "fc.w", "fc.b"});
  CHECK(h.nodes[0].attr_int("relu", -1) == 0);
  CHECK(h.nodes[1].name == "act");
  CHECK(h.nodes[0].line > 0);
  CHECK(h.tensors[0].line > 0);

  // Saving what was loaded gives the same files, byte for byte.
  fq::save_graph(h, dir / "again.yaml");
  CHECK(file_bytes(dir / "again.fqw") == file_bytes(dir / "full.fqw"));
  fq::Graph h2 = fq::load_graph(dir / "again.yaml");
  require_same_tensors(h, h2);
}

TEST_CASE("the YAML is readable: flow-style shapes, plain names, quoted odd strings") {
  TempDir dir;
  fq::save_graph(full_graph(), dir / "m.yaml");
  std::string y = fq::read_file(dir / "m.yaml");
  CHECK(y.rfind("format: fq-graph\nversion: 1\nname: \"round trip: \\\"all\\\" features\"\n"
                "weights: m.fqw\n",
                0) == 0);
  CHECK(y.find("inputs: [x]\noutputs: [\"y\"]\ntensors:\n  - name: x\n    dtype: f32\n"
               "    shape: [2, 4]\n") != std::string::npos);
  CHECK(y.find("    const: true\n    data: c.i32\n") != std::string::npos);
  CHECK(y.find("quant: {axis: 0, scale: [0.1, 0.3333333333333333, 1.0e-300], "
               "zero_point: [-1, 0, 5]}") != std::string::npos);
  CHECK(y.find("quant: {scale: 0.00392156862745098, zero_point: 3}") != std::string::npos);
  CHECK(y.find("\"true\": \"yes\"") != std::string::npos);
  CHECK(y.find("lines: \"l1\\x0al2\\x09tab\"") != std::string::npos);
  CHECK(y.find("attrs: {relu: 0}") != std::string::npos);
}

TEST_CASE("attributes of every type round-trip with their types") {
  TempDir dir;
  fq::Graph g;
  g.outputs = {"y"};
  g.tensors.push_back(tensor("y", DType::f32, {1}));
  fq::NodeDef n = node("n", "custom", {}, {"y"});
  n.version = 3;
  n.attrs = {{"int", int64_t(7)},
             {"min", std::numeric_limits<int64_t>::min()},
             {"float", 2.0},  // integral: must stay a float
             {"tenth", 0.1},
             {"big", 1e300},
             {"inf", -HUGE_VAL},
             {"str", std::string("hello")},
             {"num_str", std::string("123")},
             {"bool_str", std::string("true")},
             {"empty_str", std::string("")},
             {"colon", std::string("a: b")},
             {"dash", std::string("-")},
             {"ints", std::vector<int64_t>{1, -2, 3}},
             {"floats", std::vector<double>{0.5, 2.0, -1e-7}},
             {"none", std::vector<int64_t>{}}};
  g.nodes = {n};
  fq::save_graph(g, dir / "attrs.yaml");
  CHECK(!fs::exists(dir / "attrs.fqw"));  // no constants, no blob
  fq::Graph h = fq::parse_graph_yaml(fq::read_file(dir / "attrs.yaml"), "attrs.yaml");
  REQUIRE(h.nodes.size() == 1);
  CHECK(h.nodes[0].version == 3);
  CHECK(h.nodes[0].attrs == n.attrs);             // std::variant ==: same type and value
  CHECK(h.nodes[0].attr_float("int", 0) == 7.0);  // an integer reads as a float
}

TEST_CASE("blob layout: header, 64-byte aligned data, checksums, zero gaps") {
  TempDir dir;
  fq::Graph g = full_graph();
  fq::save_graph(g, dir / "m.yaml");
  std::vector<uint8_t> b = file_bytes(dir / "m.fqw");
  REQUIRE(b.size() >= 64);
  CHECK(std::memcmp(b.data(), "FQWB", 4) == 0);
  CHECK(le32(&b[4]) == 1);
  CHECK(b[8] == 4);  // byte-order mark 0x01020304 as 04 03 02 01
  CHECK(b[11] == 1);
  const uint32_t count = le32(&b[12]);
  CHECK(count == 11);  // 12 constants, c.alias shares c.i32's entry
  CHECK(le64(&b[16]) == 64);
  const uint64_t table_end = 64 + le64(&b[24]);
  CHECK(le64(&b[32]) == b.size());
  std::vector<uint8_t> zeroed = b;
  std::memset(&zeroed[40], 0, 8);
  CHECK(le64(&b[40]) == fnv_reference(zeroed.data(), zeroed.size()));
  for (int i = 48; i < 64; ++i) CHECK(b[i] == 0);

  std::vector<char> covered(b.size(), 0);
  std::fill(covered.begin(), covered.begin() + long(table_end), 1);
  size_t pos = 64;
  for (uint32_t i = 0; i < count; ++i) {
    CHECK(pos % 8 == 0);
    const uint8_t* e = &b[pos];
    const uint32_t name_len = le32(e);
    const unsigned ndim = e[6];
    std::string name(reinterpret_cast<const char*>(e + 32 + 8 * ndim), name_len);
    INFO("entry " << name);
    const uint64_t off = le64(e + 8), size = le64(e + 16);
    CHECK(off % 64 == 0);
    CHECK(off >= table_end);
    REQUIRE(off + size <= b.size());
    CHECK(le64(e + 24) == fnv_reference(&b[off], size));
    const fq::TensorDef& t = g.tensor(name);
    CHECK(uint8_t(t.dtype) == e[4]);
    CHECK(size == t.nbytes());
    CHECK(std::memcmp(&b[off], t.data.ptr, size) == 0);
    for (uint64_t k = off; k < off + size; ++k) {
      CHECK_FALSE(covered[k]);
      covered[k] = 1;
    }
    pos += (32 + 8 * ndim + name_len + 7) / 8 * 8;
  }
  CHECK(pos == table_end);
  for (size_t k = 0; k < b.size(); ++k)
    if (!covered[k]) REQUIRE(b[k] == 0);
}

TEST_CASE("constants are used in place: inside the read-only mapping, 64-byte aligned") {
  TempDir dir;
  fq::save_graph(full_graph(), dir / "m.yaml");
  fq::detail::Blob blob = fq::detail::Blob::open(dir / "m.fqw");
  std::vector<uint8_t> original;
  {
    fq::Graph g = fq::load_graph(dir / "m.yaml");
    for (const auto& t : g.tensors) {
      if (!t.is_const) continue;
      INFO("tensor " << t.name);
      CHECK(reinterpret_cast<uintptr_t>(t.data.ptr) % 64 == 0);
      uintptr_t start = 0;
      std::string file;
      REQUIRE(find_mapping(t.data.ptr, &start, &file));
      CHECK(fs::equivalent(file, dir / "m.fqw"));
      const auto* e = blob.find(t.data_ref.empty() ? t.name : t.data_ref);
      REQUIRE(e);
      CHECK(reinterpret_cast<uintptr_t>(t.data.ptr) - start == e->offset);
    }
    const fq::TensorDef& w = g.tensor("fc.w");
    original.assign(w.data.ptr, w.data.ptr + w.data.size);
    // Replacing the files under a loaded graph leaves its data intact (atomic rename).
    fq::Graph other = full_graph();
    other.tensor("fc.w") = constant("fc.w", DType::f32, {3, 4}, 99);
    fq::save_graph(other, dir / "m.yaml");
    CHECK(std::vector<uint8_t>(w.data.ptr, w.data.ptr + w.data.size) == original);
    fs::remove(dir / "m.fqw");
    CHECK(std::vector<uint8_t>(w.data.ptr, w.data.ptr + w.data.size) == original);
  }
  // A constant's data outlives the Graph it came from.
  fq::save_graph(full_graph(), dir / "n.yaml");
  fq::ConstData kept;
  { kept = fq::load_graph(dir / "n.yaml").tensor("fc.w").data; }
  CHECK(std::vector<uint8_t>(kept.ptr, kept.ptr + kept.size) == original);
}

TEST_CASE("execution order is topological and keeps the listed order where possible") {
  auto order = [](const std::vector<std::string>& listed) {
    std::string text = "format: fq-graph\nversion: 1\ninputs: [x]\noutputs: [r, s]\ntensors:\n";
    for (const char* t : {"x", "p", "q", "r", "s"})
      text += std::string("  - {name: ") + t + ", dtype: f32, shape: [4]}\n";
    text += "nodes:\n";
    const std::map<std::string, std::string> io = {{"n1", "[x], outputs: [p]"},
                                                   {"n2", "[p], outputs: [q]"},
                                                   {"n3", "[q], outputs: [r]"},
                                                   {"n4", "[x], outputs: [s]"}};
    for (const auto& n : listed)
      text += "  - {name: " + n + ", op: relu, inputs: " + io.at(n) + "}\n";
    fq::Graph g = fq::parse_graph_yaml(text, "order.yaml");
    fq::validate_graph(g);
    std::vector<std::string> names;
    for (const auto& n : g.nodes) names.push_back(n.name);
    return names;
  };
  using V = std::vector<std::string>;
  CHECK(order({"n1", "n2", "n3", "n4"}) == V{"n1", "n2", "n3", "n4"});
  CHECK(order({"n4", "n1", "n2", "n3"}) == V{"n4", "n1", "n2", "n3"});
  CHECK(order({"n1", "n4", "n2", "n3"}) == V{"n1", "n4", "n2", "n3"});
  CHECK(order({"n3", "n1", "n2", "n4"}) == V{"n1", "n2", "n3", "n4"});
  CHECK(order({"n3", "n2", "n4", "n1"}) == V{"n4", "n1", "n2", "n3"});
}

TEST_CASE("validate_graph checks in-memory graphs too") {
  fq::Graph g = full_graph();
  fq::validate_graph(g);
  CHECK(g.nodes[0].name == "fc");
  auto error = [](fq::Graph bad) {
    try {
      fq::validate_graph(bad);
    } catch (const fq::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  fq::Graph a = full_graph();
  a.tensor("c.i8").quant.scale.pop_back();
  CHECK(error(a) == "tensor 'c.i8': 2 quant scales, expected 3 (shape[0])");
  fq::Graph b = full_graph();
  b.tensor("fc.b").data.size = 4;
  CHECK(error(b) == "tensor 'fc.b': data is 4 bytes, expected 12");
  fq::Graph c = full_graph();
  c.tensors.push_back(tensor("x", DType::f32, {1}));
  CHECK(error(c) == "tensor 'x' is declared twice");
  fq::Graph d = full_graph();
  d.path = "mem.yaml";
  d.nodes[1].line = 12;
  d.nodes[1].attrs["relu"] = std::string("yes");  // the op's attribute read gets the location
  std::string msg = error(d);
  CHECK(msg.rfind("mem.yaml:12: node 'fc': attribute 'relu'", 0) == 0);
  fq::Graph e = full_graph();
  e.tensor("h").shape = {-1, 3};
  CHECK(error(e) == "tensor 'h': shape [-1,3]: dimension 0 is -1, must be 1..2147483647");
}

TEST_CASE("IR helpers: dtypes, numel, attribute access, lookups, errors") {
  for (DType t :
       {DType::u8, DType::i8, DType::u16, DType::i16, DType::i32, DType::f32, DType::i4}) {
    DType back;
    REQUIRE(fq::parse_dtype(fq::dtype_name(t), &back));
    CHECK(back == t);
  }
  DType dt;
  CHECK_FALSE(fq::parse_dtype("f16", &dt));
  CHECK(fq::dtype_bits(DType::i4) == 4);
  CHECK(fq::dtype_bytes(DType::i4, 9) == 5);
  CHECK(fq::dtype_bytes(DType::i16, 9) == 18);
  CHECK(fq::dtype_bytes(DType::f32, 0) == 0);
  CHECK_THROWS_AS(fq::dtype_bytes(DType::i32, int64_t(1) << 62), fq::Error);

  fq::TensorDef t = tensor("t", DType::i16, {2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.nbytes() == 48);
  CHECK(tensor("s", DType::u8, {}).numel() == 1);
  CHECK_THROWS_WITH(
      tensor("big", DType::u8, {1 << 30, 1 << 30, 1 << 30}).numel(),
      "tensor 'big': shape [1073741824,1073741824,1073741824] has no valid element count");

  fq::ConstData c = fq::ConstData::copy_of("abc", 3);
  CHECK(c.size == 3);
  CHECK(reinterpret_cast<uintptr_t>(c.ptr) % 64 == 0);
  CHECK(std::memcmp(c.ptr, "abc", 3) == 0);

  fq::NodeDef n = node("conv", "conv2d", {}, {});
  n.attrs = {{"stride", int64_t(2)},
             {"pads", std::vector<int64_t>{1, 1, 0, 0}},
             {"eps", 0.5},
             {"mode", std::string("same")}};
  CHECK(n.attr_int("stride", 1) == 2);
  CHECK(n.attr_int("absent", 9) == 9);
  CHECK(n.attr_ints("pads") == std::vector<int64_t>{1, 1, 0, 0});
  CHECK(n.attr_ints("absent").empty());
  CHECK(n.attr_float("eps", 0) == 0.5);
  CHECK(n.attr_str("mode", "") == "same");
  CHECK_THROWS_WITH(n.attr_int("eps", 0),
                    "node 'conv': attribute 'eps' is a float, expected an integer");
  CHECK_THROWS_WITH(n.attr_ints("stride"),
                    "node 'conv': attribute 'stride' is an integer, expected a list of integers");
  CHECK_THROWS_WITH(n.attr_str("pads", ""),
                    "node 'conv': attribute 'pads' is a list of integers, expected a string");
  CHECK_THROWS_WITH(n.attr_float("mode", 0),
                    "node 'conv': attribute 'mode' is a string, expected a number");

  fq::Graph g;
  g.path = "g.yaml";
  CHECK(g.add_tensor(tensor("a", DType::u8, {1})) == 0);
  CHECK(g.add_tensor(tensor("b", DType::u8, {1})) == 1);
  CHECK_THROWS_WITH(g.add_tensor(tensor("a", DType::u8, {1})),
                    "g.yaml: tensor 'a' is declared twice");
  CHECK(g.find_tensor("b") == 1);
  CHECK(g.find_tensor("zz") == -1);
  CHECK(g.tensor("b").name == "b");
  CHECK_THROWS_WITH(g.tensor("zz"), "g.yaml: tensor 'zz' is not declared");

  CHECK(fq::detail::error_line("f.yaml", 3, "tensor 'a\nb': x") == "f.yaml:3: tensor 'a\\x0ab': x");
  CHECK(fq::detail::error_line("", 0, "m") == "m");
  CHECK(fq::detail::error_line("", 5, "m") == "line 5: m");
  CHECK_THROWS_WITH(fq::read_file("/nonexistent/x.yaml"),
                    "/nonexistent/x.yaml: cannot open: No such file or directory");
}

TEST_CASE("a blob with no entries and graphs without constants") {
  TempDir dir;
  fq::detail::write_blob(dir / "empty.fqw", {});
  std::vector<uint8_t> b = file_bytes(dir / "empty.fqw");
  CHECK(b.size() == 64);
  fq::detail::Blob blob = fq::detail::Blob::open(dir / "empty.fqw");
  CHECK(blob.entries().empty());
  CHECK(blob.find("x") == nullptr);

  fq::Graph g = full_graph();
  std::vector<fq::TensorDef> kept;
  for (auto& t : g.tensors)
    if (!t.is_const || t.name.rfind("fc.", 0) == 0) kept.push_back(t);
  g.tensors = kept;
  fq::save_graph(g, dir / "m.yaml");
  fq::Graph h = fq::load_graph(dir / "m.yaml");
  CHECK(h.tensors.size() == 5);
}
