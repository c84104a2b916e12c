// `fqrun conformance` (tools/fqrun/conformance.cc) and the ONNX protobuf reader (tools/onnx):
// every supported integer-op test of ../shared/testdata (and Debian's libonnx-testdata when
// installed) passes bit-exactly, the output format, the rounding report on exact ties, and bad
// inputs (truncated or corrupt protobuf, wrong dtype, mismatched shapes, missing folders) giving
// exit status 2 with one line on stderr and nothing on stdout.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "onnx_reader.h"

namespace fs = std::filesystem;

namespace {

using namespace fq::test;

const std::string kNode = FQ_SHARED_DIR "/testdata/onnx-node";
const std::string kUpstream = FQ_SHARED_DIR "/testdata/onnx-node-upstream";
const std::string kDebian = "/usr/share/libonnx-testdata/data/node";
const std::set<std::string> kIntOps = {"QLinearMatMul", "MatMulInteger", "ConvInteger", "QLinearConv",
                                       "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"};

// Checks the format of a run's output and returns (passed, failed, unsupported).
void check_format(const Proc& p, int* passed, int* failed, int* unsupported) {
  const std::vector<std::string> L = p.lines();
  REQUIRE(L.size() >= 2);
  std::smatch m;
  REQUIRE(std::regex_match(L.back(), m, std::regex(R"(^(\d+) passed, (\d+) failed$)")));
  *passed = std::stoi(m[1]), *failed = std::stoi(m[2]);
  REQUIRE(std::regex_match(L[L.size() - 2], m, std::regex(R"(^(\d+) unsupported( \(.*\))?$)")));
  *unsupported = std::stoi(m[1]);
  int np = 0, nf = 0, nu = 0;
  for (size_t i = 0; i + 2 < L.size(); ++i) {
    INFO(L[i]);
    REQUIRE(std::regex_search(L[i], std::regex(R"(^(PASS|FAIL|UNSUPPORTED) test_\S+ \S+ )")));
    np += L[i].rfind("PASS ", 0) == 0, nf += L[i].rfind("FAIL ", 0) == 0, nu += L[i].rfind("UNSUPPORTED ", 0) == 0;
    if (L[i].rfind("UNSUPPORTED", 0) != 0) CHECK(L[i].find(" max_err=") != std::string::npos);
  }
  CHECK(np == *passed);
  CHECK(nf == *failed);
  CHECK(nu == *unsupported);
  CHECK(p.code == (*failed ? 1 : 0));
}

// Every test of an integer op (the second word) in the output passed bit-exactly; returns how many.
int int_ops_passed(const Proc& p) {
  int n = 0;
  for (const std::string& l : p.lines()) {
    std::istringstream s(l);
    std::string verdict, name, op;
    s >> verdict >> name >> op;
    if (!kIntOps.count(op)) continue;
    INFO(l);
    CHECK(verdict == "PASS");
    CHECK(std::regex_search(l, std::regex(R"( max_err=0 exact=(\d+)/\1 )")));
    ++n;
  }
  return n;
}

// ---- a tiny protobuf writer for hand-made tests ------------------------------------------------

std::string varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    s.push_back(char(b | (v ? 0x80 : 0)));
  } while (v);
  return s;
}
std::string key(int field, int wire) { return varint(uint64_t(field) << 3 | unsigned(wire)); }
std::string fld(int field, const std::string& bytes) { return key(field, 2) + varint(bytes.size()) + bytes; }
std::string fint(int field, int64_t v) { return key(field, 0) + varint(uint64_t(v)); }

std::string tensor(const std::string& name, int dtype, const std::vector<int64_t>& dims, const std::string& raw) {
  std::string s;
  for (int64_t d : dims) s += fint(1, d);
  s += fint(2, dtype) + fld(8, name) + fld(9, raw);
  return s;
}
std::string f32s(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.data(), s.size());
  return s;
}
std::string u8s(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s.push_back(char(x));
  return s;
}
std::string value_info(const std::string& name, int dtype, const std::vector<int64_t>& dims) {
  std::string shape;
  for (int64_t d : dims) shape += fld(1, fint(1, d));
  return fld(1, name) + fld(2, fld(1, fint(1, dtype) + fld(2, shape)));
}

// A one-node QLinearMatMul model: a u8 [1,2], scales f32 [], zero points u8 [], b u8 [2,3].
std::string qlinear_matmul_model() {
  const std::vector<std::string> in = {"a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point",
                                       "y_scale", "y_zero_point"};
  std::string node;
  for (const auto& n : in) node += fld(1, n);
  node += fld(2, "y") + fld(4, "QLinearMatMul");
  std::string graph = fld(1, node) + fld(2, "g");
  const int types[] = {2, 1, 2, 2, 1, 2, 1, 2};
  const std::vector<std::vector<int64_t>> dims = {{1, 2}, {}, {}, {2, 3}, {}, {}, {}, {}};
  for (size_t i = 0; i < in.size(); ++i) graph += fld(11, value_info(in[i], types[i], dims[i]));
  graph += fld(12, value_info("y", 2, {1, 3}));
  return fint(1, 7) + fld(8, fld(1, "") + fint(2, 13)) + fld(7, graph);
}

// Writes a test folder for qlinear_matmul_model: a = [1, 2], b = [[1,0,3],[0,1,0]], scales 1,
// 0.5, 1 (ratio 0.5: the accumulators 1, 2, 3 give 0.5, 1, 1.5), zero points 0.
void write_qlm(const std::string& dir, const std::string& expected_raw) {
  fs::create_directories(dir + "/test_data_set_0");
  spit(dir + "/model.onnx", qlinear_matmul_model());
  const std::string d = dir + "/test_data_set_0/";
  spit(d + "input_0.pb", tensor("a", 2, {1, 2}, u8s({1, 2})));
  spit(d + "input_1.pb", tensor("a_scale", 1, {}, f32s({1.0f})));
  spit(d + "input_2.pb", tensor("a_zero_point", 2, {}, u8s({0})));
  spit(d + "input_3.pb", tensor("b", 2, {2, 3}, u8s({1, 0, 3, 0, 1, 0})));
  spit(d + "input_4.pb", tensor("b_scale", 1, {}, f32s({0.5f})));
  spit(d + "input_5.pb", tensor("b_zero_point", 2, {}, u8s({0})));
  spit(d + "input_6.pb", tensor("y_scale", 1, {}, f32s({1.0f})));
  spit(d + "input_7.pb", tensor("y_zero_point", 2, {}, u8s({0})));
  spit(d + "output_0.pb", tensor("y", 2, {1, 3}, expected_raw));
}

void expect_bad(const std::string& args, const std::string& needle) {
  const Proc p = fqrun(args);
  INFO(args << "\nstderr: " << p.err << "\nstdout: " << p.out);
  CHECK(p.code == 2);
  CHECK(p.err_lines() == 1);
  CHECK(p.out.empty());
  CHECK(p.err.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("conformance: shared onnx-node tests", "[conformance]") {
  if (!exists(kNode)) FAIL("missing " << kNode);
  const Proc p = fqrun("conformance '" + kNode + "'");
  INFO(p.out << p.err);
  int passed, failed, unsupported;
  check_format(p, &passed, &failed, &unsupported);
  CHECK(p.code == 0);
  CHECK(failed == 0);
  // 3 ConvInteger, 2 DequantizeLinear, 3 DynamicQuantizeLinear, MatMulInteger, QLinearConv,
  // 2 QLinearMatMul, 2 QuantizeLinear.
  CHECK(int_ops_passed(p) == 14);
  CHECK(passed + failed + unsupported == 116);
  // The float ops on the llm (softmax, layernorm) and lut (DULUT) kernels pass within tolerance.
  const std::pair<const char*, int> float_ops[] = {
      {" Softmax ", 7}, {" LogSoftmax ", 7}, {" LayerNormalization ", 19}, {" Sigmoid ", 2}, {" Tanh ", 2},
      {" Softplus ", 2}, {" Erf ", 1}, {" Exp ", 1}, {" HardSwish ", 1}};
  for (const auto& [op, want] : float_ops) {
    int n = 0;
    for (const std::string& l : p.lines())
      if (l.find(op) != std::string::npos) {
        INFO(l);
        CHECK(l.rfind("PASS ", 0) == 0);
        ++n;
      }
    INFO(op);
    CHECK(n == want);
  }
  CHECK(passed == 14 + 7 + 7 + 19 + 2 + 2 + 2 + 1 + 1 + 1);
}

TEST_CASE("conformance: shared onnx-node-upstream tests", "[conformance]") {
  if (!exists(kUpstream)) FAIL("missing " << kUpstream);
  const Proc p = fqrun("conformance '" + kUpstream + "'");
  INFO(p.out << p.err);
  int passed, failed, unsupported;
  check_format(p, &passed, &failed, &unsupported);
  CHECK(p.code == 0);
  CHECK(failed == 0);
  CHECK(int_ops_passed(p) == 21);
  CHECK(passed + failed + unsupported == 76);
  // The float ops with an integer kernel pass within their tolerance.
  for (const char* op : {" RMSNormalization ", " RotaryEmbedding ", " SwiGLU ", " Swish ", " Softmax ",
                         " LayerNormalization ", " GroupNormalization ", " Gelu ", " Mish ",
                         " LinearAttention ", " CausalConvWithState "}) {
    int n = 0;
    for (const std::string& l : p.lines())
      if (l.find(op) != std::string::npos) {
        INFO(l);
        CHECK(l.rfind("PASS ", 0) == 0);
        ++n;
      }
    CHECK(n > 0);
  }
  // Same bytes on every ISA the machine runs (not under the sanitizers: the kernel tests run every
  // variant there, and this repeats the whole folder per ISA; CMakeLists.txt).
#if !defined(FQ_TEST_SLICE)
  for (const char* isa : {"scalar", "avx2"}) {
    const Proc q = fqrun(std::string("--isa ") + isa + " conformance '" + kUpstream + "'");
    if (q.code == 2 && q.err.find("not supported") != std::string::npos) continue;
    CHECK(q.code == 0);
    CHECK(int_ops_passed(q) == 21);
    CHECK(q.out.find("\n" + std::to_string(passed) + " passed, 0 failed\n") != std::string::npos);
  }
#endif
}

TEST_CASE("conformance: Debian libonnx-testdata", "[conformance]") {
#if defined(FQ_TEST_SLICE)
  // Under the sanitizers the shared onnx-node folders above take the same operators through the
  // same code; this one (a third of the binary's time there) runs in the optimized builds.
  return;
#endif
  if (!exists(kDebian)) {
    WARN("skipped: " << kDebian << " not installed (apt-get install libonnx-testdata)");
    return;
  }
  const Proc p = fqrun("conformance '" + kDebian + "'");
  INFO(p.err);
  int passed, failed, unsupported;
  check_format(p, &passed, &failed, &unsupported);
  CHECK(failed == 0);
  CHECK(int_ops_passed(p) >= 14);
  CHECK(passed >= 57);  // + Softmax, LogSoftmax, LayerNormalization and the DULUT activations
}

TEST_CASE("conformance: several folders and a single test folder", "[conformance]") {
  const Proc p = fqrun("conformance '" + kNode + "/test_qlinearconv' '" + kUpstream + "/test_qlinearmatmul_2D_int8_float16'");
  INFO(p.out << p.err);
  CHECK(p.code == 0);
  const auto L = p.lines();
  REQUIRE(L.size() == 4);
  CHECK(L[0].rfind("PASS test_qlinearconv QLinearConv max_err=0 exact=49/49 ties=0 ", 0) == 0);
  CHECK(L[1].rfind("PASS test_qlinearmatmul_2D_int8_float16 QLinearMatMul max_err=0 exact=6/6 ", 0) == 0);
  CHECK(L[2] == "0 unsupported");
  CHECK(L[3] == "2 passed, 0 failed");
}

TEST_CASE("conformance: unsupported ops are listed, not failures", "[conformance]") {
  const Proc p = fqrun("conformance '" + kUpstream + "/test_bitshift_left_uint8'");
  CHECK(p.code == 0);
  const auto L = p.lines();
  REQUIRE(L.size() == 3);
  CHECK(L[0].rfind("UNSUPPORTED test_bitshift_left_uint8 BitShift (", 0) == 0);
  CHECK(L[1] == "1 unsupported (BitShift x1)");
  CHECK(L[2] == "0 passed, 0 failed");
}

TEST_CASE("conformance: exact ties are reported (dyadic half-up vs ONNX half-even)", "[conformance]") {
  // ONNX: rint([0.5, 1, 1.5]) = [0, 1, 2]; the kernel rounds ties up: [1, 1, 2].
  const std::string d = tmpdir() + "/ties/test_ties";
  write_qlm(d, u8s({0, 1, 2}));
  Proc p = fqrun("conformance '" + d + "'");
  INFO(p.out << p.err);
  CHECK(p.code == 1);
  CHECK(p.out.rfind("FAIL test_ties QLinearMatMul max_err=1 exact=2/3 ties=2 rne_diff=1 ", 0) == 0);
  CHECK(p.out.find("1 passed") == std::string::npos);
  CHECK(p.out.find("\n0 passed, 1 failed\n") != std::string::npos);
  // With the kernel's rounding as the expectation the same test passes (the ties are still counted).
  // The difference to ONNX is still reported (rne_diff compares with the real rescale).
  write_qlm(d, u8s({1, 1, 2}));
  p = fqrun("conformance '" + d + "'");
  CHECK(p.code == 0);
  CHECK(p.out.rfind("PASS test_ties QLinearMatMul max_err=0 exact=3/3 ties=2 rne_diff=1 ", 0) == 0);
}

TEST_CASE("conformance: bad inputs exit 2 with one line", "[conformance]") {
  const std::string root = tmpdir() + "/bad";
  fs::create_directories(root);
  expect_bad("conformance '" + root + "/nothere'", "not a readable folder");
  expect_bad("conformance '" + root + "'", "no ONNX node test");
  expect_bad("conformance", "needs at least one DIR");

  // Truncated model.onnx at every length: never a crash; malformed ones name the file and byte.
  const std::string src = kNode + "/test_qlinearmatmul_2D";
  const std::string t = root + "/t";
  fs::copy(src, t, fs::copy_options::recursive);
  const std::string model = slurp(src + "/model.onnx");
  int bad = 0;
  for (size_t n = 0; n < model.size(); ++n) {
    spit(t + "/model.onnx", model.substr(0, n));
    const Proc p = fqrun("conformance '" + t + "'");
    INFO("truncated to " << n << ": " << p.err);
    REQUIRE(p.code <= 2);
    if (p.code == 2) {
      ++bad;
      CHECK(p.err_lines() == 1);
      CHECK(p.out.empty());
      CHECK(p.err.find("model.onnx") != std::string::npos);
    }
  }
  CHECK(bad > int(model.size()) * 9 / 10);
  spit(t + "/model.onnx", model.substr(0, model.size() - 5));
  expect_bad("conformance '" + t + "'", "model.onnx: malformed protobuf at byte ");
  spit(t + "/model.onnx", model);

  // Truncated input tensor, data shorter than the dims, a varint longer than 10 bytes.
  const std::string in0 = t + "/test_data_set_0/input_0.pb";
  const std::string a = slurp(src + "/test_data_set_0/input_0.pb");
  spit(in0, a.substr(0, a.size() - 3));
  expect_bad("conformance '" + t + "'", "input_0.pb: malformed protobuf at byte ");
  spit(in0, tensor("a", 2, {2, 4}, u8s({1, 2, 3, 4, 5, 6, 7})));
  expect_bad("conformance '" + t + "'", "needs 8 bytes of raw_data, has 7");
  spit(in0, key(1, 0) + std::string(11, '\xff'));
  expect_bad("conformance '" + t + "'", "varint");
  // Wrong dtype (f32 where the graph declares u8), mismatched shape ([2,5] for [2,4]).
  spit(in0, tensor("a", 1, {2, 4}, f32s({1, 2, 3, 4, 5, 6, 7, 8})));
  expect_bad("conformance '" + t + "'", "input_0.pb: tensor is f32, the graph declares 'a' as u8");
  spit(in0, tensor("a", 2, {2, 5}, u8s({1, 2, 3, 4, 5, 6, 7, 8, 9, 10})));
  expect_bad("conformance '" + t + "'", "input_0.pb: shape [2,5] does not match the graph's 'a' [2,4]");
  // Inner dimensions that do not match (no declared shapes in the hand-made model would catch
  // it; here the graph declares b as [2,3]).
  const std::string h = root + "/h/test_h";
  write_qlm(h, u8s({0, 1, 2}));
  spit(h + "/test_data_set_0/input_3.pb", tensor("b", 2, {3, 3}, u8s({1, 2, 3, 4, 5, 6, 7, 8, 9})));
  expect_bad("conformance '" + h + "'", "shape [3,3] does not match");
  // LinearAttention / CausalConvWithState attributes that contradict the data (patched in the
  // upstream models): kv_num_heads 4 -> 3 (q_num_heads 8 is not a multiple), activation 'gelu'.
  if (exists(kUpstream + "/test_linear_attention_gated_delta_gqa")) {
    const std::string la = root + "/la/test_la";
    fs::create_directories(root + "/la"), fs::create_directories(root + "/cc");
    fs::copy(kUpstream + "/test_linear_attention_gated_delta_gqa", la, fs::copy_options::recursive);
    std::string m = slurp(la + "/model.onnx");
    const size_t at = m.find("kv_num_heads\x18\x04");
    REQUIRE(at != std::string::npos);
    m[at + 13] = '\x03';
    spit(la + "/model.onnx", m);
    expect_bad("conformance '" + la + "'", "LinearAttention: q_num_heads (8) must be a positive multiple of kv_num_heads (3)");
    const std::string cc = root + "/cc/test_cc";
    fs::copy(kUpstream + "/test_causal_conv_with_state_silu", cc, fs::copy_options::recursive);
    m = slurp(cc + "/model.onnx");
    const size_t s2 = m.find("silu");
    REQUIRE(s2 != std::string::npos);
    m.replace(s2, 4, "gelu");
    spit(cc + "/model.onnx", m);
    expect_bad("conformance '" + cc + "'", "CausalConvWithState: activation 'gelu'");
  }
  // A missing input file.
  spit(in0, a);
  fs::remove(t + "/test_data_set_0/input_7.pb");
  expect_bad("conformance '" + t + "'", "missing input_7.pb");
}

TEST_CASE("onnx reader: wire-format errors", "[conformance]") {
  using fq::onnx::ParseError;
  auto parse = [](const std::string& b) { return fq::onnx::parse_tensor(b, "x.pb"); };
  // dims [2], u8, raw 2 bytes.
  const std::string ok = fint(1, 2) + fint(2, 2) + fld(9, u8s({7, 250}));
  const fq::onnx::Tensor t = parse(ok);
  CHECK(t.dims == std::vector<int64_t>{2});
  CHECK(t.ints == std::vector<int64_t>{7, 250});
  // Packed dims, int32_data, int4 raw (low nibble first), float16, float_data.
  CHECK(parse(fld(1, varint(3)) + fint(2, 6) + fld(5, varint(1) + varint(uint64_t(-2)) + varint(5))).ints ==
        std::vector<int64_t>{1, -2, 5});
  CHECK(parse(fint(1, 3) + fint(2, 22) + fld(9, u8s({0x71, 0x08}))).ints == std::vector<int64_t>{1, 7, -8});
  CHECK(parse(fint(1, 2) + fint(2, 10) + fld(9, u8s({0x00, 0x3c, 0x00, 0xc0}))).floats == std::vector<double>{1.0, -2.0});
  CHECK(parse(fint(2, 1) + fld(4, f32s({0.25f}))).floats == std::vector<double>{0.25});
  for (size_t n = 1; n < ok.size(); ++n) CHECK_THROWS_AS(parse(ok.substr(0, n)), ParseError);
  CHECK_THROWS_WITH(parse(key(1, 0) + std::string(10, '\x80') + "\x01"), Catch::Contains("x.pb: malformed protobuf at byte 1"));
  CHECK_THROWS_WITH(parse(fint(2, 2) + key(9, 2) + varint(1000) + "ab"), Catch::Contains("runs past the end"));
  CHECK_THROWS_WITH(parse(key(3, 3)), Catch::Contains("group"));
  CHECK_THROWS_WITH(parse(key(0, 0) + varint(1)), Catch::Contains("invalid field number 0"));
  CHECK_THROWS_WITH(parse(fint(1, -1) + fint(2, 2)), Catch::Contains("negative dimension"));
  CHECK_THROWS_WITH(parse(fint(1, 1 << 20) + fint(1, 1 << 20) + fint(2, 2)), Catch::Contains("more than 2^28"));
  CHECK_THROWS_WITH(parse(fint(1, 3) + fint(2, 2) + fld(9, "ab")), Catch::Contains("needs 3 bytes of raw_data, has 2"));
  CHECK_THROWS_WITH(parse(key(2, 2) + varint(1) + "a"), Catch::Contains("field 'data_type' has wire type 2"));
  CHECK_THROWS_AS(parse(fint(2, 8) + fld(6, "abc")), fq::onnx::UnsupportedType);
  CHECK_THROWS_WITH(fq::onnx::parse_model("", "m.onnx"), Catch::Contains("m.onnx: malformed protobuf at byte 0: empty file"));
  CHECK_THROWS_WITH(fq::onnx::parse_model(fint(1, 7), "m.onnx"), Catch::Contains("no graph"));
  const fq::onnx::Model m = fq::onnx::parse_model(qlinear_matmul_model(), "m.onnx");
  REQUIRE(m.graph.nodes.size() == 1);
  CHECK(m.graph.nodes[0].op_type == "QLinearMatMul");
  CHECK(m.graph.inputs.size() == 8);
  CHECK(m.graph.inputs[3].dims == std::vector<int64_t>{2, 3});
  CHECK(m.opsets.at(0).version == 13);
}
