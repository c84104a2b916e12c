// rwkv.cpp model importer (model.h).
#include "model.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "fq/fq.h"
#include "fq/graph.h"

namespace fq::rwkv {

namespace {

constexpr uint32_t kMagic = 0x67676d66;  // "ggmf"
constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxElems = int64_t{1} << 34;

uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

bool is_quantized(int32_t t) { return t == 2 || t == 3 || t == 7 || t == 8 || t == 9; }
bool is_known(int32_t t) { return t == 0 || t == 1 || is_quantized(t); }

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "(";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + (ne.size() == 1 ? ",)" : ")");
}

}  // namespace

const char* type_name(int32_t type) {
  switch (type) {
    case 0: return "FP32";
    case 1: return "FP16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 4: return "Q4_1_O";
    case 5: return "Q4_2";
    case 6: return "Q4_3";
    case 7: return "Q5_0";
    case 8: return "Q5_1";
    case 9: return "Q8_0";
    default: return "unknown";
  }
}

std::string Version::str() const {
  return major == 5 ? "5." + std::to_string(minor) : std::to_string(major);
}

bool parse_version(const std::string& s, Version* out) {
  static const std::map<std::string, Version> known = {
      {"4", {4, 0}}, {"4.0", {4, 0}}, {"5.1", {5, 1}}, {"5.2", {5, 2}},
      {"6", {6, 0}}, {"6.0", {6, 0}}, {"7", {7, 0}},   {"7.0", {7, 0}}};
  std::string v = s;
  if (!v.empty() && (v[0] == 'v' || v[0] == 'V')) v = v.substr(1);
  const auto it = known.find(v);
  if (it == known.end()) return false;
  *out = it->second;
  return true;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

const Tensor& Model::t(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw Error(path + ": tensor '" + name + "' is missing");
  return it->second;
}

const std::vector<float>& Model::lv(int layer, const std::string& name) const {
  return v("blocks." + std::to_string(layer) + "." + name);
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

int64_t type_bytes(int32_t type, int64_t n) {
  if (type == 0) return 4 * n;
  if (type == 1) return 2 * n;
  if (n % 32 != 0) return -1;
  const int64_t blocks = n / 32;
  switch (type) {
    case 2: return blocks * 18;  // fp16 d, 16 bytes of nibbles
    case 3: return blocks * 20;  // fp16 d, fp16 m, 16 bytes
    case 7: return blocks * 22;  // fp16 d, u32 qh, 16 bytes
    case 8: return blocks * 24;  // fp16 d, fp16 m, u32 qh, 16 bytes
    case 9: return blocks * 34;  // fp16 d, 32 int8
    default: return -1;
  }
}

void dequantize(int32_t type, const uint8_t* src, int64_t n, float* dst) {
  if (type == 0) {
    std::memcpy(dst, src, size_t(n) * 4);
    return;
  }
  if (type == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_float(rd16(src + 2 * i));
    return;
  }
  const int64_t bs = type_bytes(type, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* p = src + b * bs;
    float* y = dst + b * 32;
    const float d = fp16_to_float(rd16(p));
    switch (type) {
      case 2:  // Q4_0: d * (q - 8)
        for (int j = 0; j < 16; ++j) {
          y[j] = float((p[2 + j] & 0xf) - 8) * d;
          y[j + 16] = float((p[2 + j] >> 4) - 8) * d;
        }
        break;
      case 3: {  // Q4_1: d * q + m
        const float m = fp16_to_float(rd16(p + 2));
        for (int j = 0; j < 16; ++j) {
          y[j] = float(p[4 + j] & 0xf) * d + m;
          y[j + 16] = float(p[4 + j] >> 4) * d + m;
        }
        break;
      }
      case 7: {  // Q5_0: d * (q - 16), 5th bit from qh
        const uint32_t qh = rd32(p + 2);
        for (int j = 0; j < 16; ++j) {
          const int lo = (p[6 + j] & 0xf) | int((qh >> j) & 1) << 4;
          const int hi = (p[6 + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
          y[j] = float(lo - 16) * d;
          y[j + 16] = float(hi - 16) * d;
        }
        break;
      }
      case 8: {  // Q5_1: d * q + m
        const float m = fp16_to_float(rd16(p + 2));
        const uint32_t qh = rd32(p + 4);
        for (int j = 0; j < 16; ++j) {
          const int lo = (p[8 + j] & 0xf) | int((qh >> j) & 1) << 4;
          const int hi = (p[8 + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
          y[j] = float(lo) * d + m;
          y[j + 16] = float(hi) * d + m;
        }
        break;
      }
      case 9:  // Q8_0: d * q
        for (int j = 0; j < 32; ++j) y[j] = float(int8_t(p[2 + j])) * d;
        break;
      default: break;
    }
  }
}

Model load_model(const std::string& path, Version expect) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  const int64_t size = int64_t(bytes.size());
  auto fail = [&](const std::string& msg) -> void { throw Error(path + ": " + msg); };

  Model m;
  m.path = path;
  if (size < 24)
    fail("truncated header: " + std::to_string(size) + " bytes, an rwkv.cpp file starts with 24");
  const uint32_t magic = rd32(base);
  if (magic != kMagic) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", magic);
    fail(std::string("bad magic ") + buf + ", not an rwkv.cpp model (0x67676d66)");
  }
  m.file_version = rd32(base + 4);
  if (m.file_version != 100 && m.file_version != 101)
    fail("unsupported file version " + std::to_string(m.file_version) + " (100 or 101)");
  const uint32_t n_vocab = rd32(base + 8), n_embed = rd32(base + 12), n_layer = rd32(base + 16);
  m.data_type = int32_t(rd32(base + 20));
  if (!is_known(m.data_type))
    fail("header data type " + std::to_string(m.data_type) + " (" + type_name(m.data_type) +
         ") is not supported (FP32, FP16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)");
  if (is_quantized(m.data_type) && m.file_version != 101)
    fail(std::string("quantized ") + type_name(m.data_type) +
         " file of version 100 (the old block layout rwkv.cpp no longer loads)");
  if (n_vocab < 1 || n_vocab > (1u << 20)) fail("n_vocab " + std::to_string(n_vocab) + " outside [1, 2^20]");
  if (n_embed < 1 || n_embed > 65536) fail("n_embed " + std::to_string(n_embed) + " outside [1, 65536]");
  if (n_layer < 1 || n_layer > 1024) fail("n_layer " + std::to_string(n_layer) + " outside [1, 1024]");
  m.n_vocab = int(n_vocab), m.n_embed = int(n_embed), m.n_layer = int(n_layer);

  // Tensor records to the end of the file.
  int64_t at = 24;
  int index = 0;
  while (at < size) {
    const std::string rec = "tensor record " + std::to_string(index) + " at offset " + std::to_string(at);
    if (size - at < 12) fail(rec + ": truncated record header");
    const int32_t n_dims = int32_t(rd32(base + at)), name_len = int32_t(rd32(base + at + 4)),
                  type = int32_t(rd32(base + at + 8));
    if (n_dims < 1 || n_dims > 3) fail(rec + ": dimension count " + std::to_string(n_dims) + " (1 to 3)");
    if (name_len < 1 || name_len > 1024) fail(rec + ": name length " + std::to_string(name_len) + " (1 to 1024)");
    if (size - at - 12 < 4 * n_dims) fail(rec + ": truncated shape");
    std::vector<int64_t> ne;
    for (int d = 0; d < n_dims; ++d) ne.push_back(int32_t(rd32(base + at + 12 + 4 * d)));
    at += 12 + 4 * n_dims;
    if (size - at < name_len) fail(rec + ": truncated name");
    const std::string name(reinterpret_cast<const char*>(base + at), size_t(name_len));
    at += name_len;
    for (char c : name)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) fail(rec + ": name has a control byte");
    const std::string where = "tensor '" + name + "'";
    if (!is_known(type))
      fail(where + ": type " + std::to_string(type) + " (" + type_name(type) + ") is not supported");
    if (is_quantized(type) && m.file_version != 101)
      fail(where + std::string(": quantized ") + type_name(type) + " tensor in a version-100 file");
    int64_t n = 1;
    for (int64_t d : ne) {
      if (d < 1 || d > kMaxDim) fail(where + ": bad shape " + shape_str(ne));
      if (n > kMaxElems / d) fail(where + ": shape " + shape_str(ne) + " is too large");  // before n * d can overflow
      n *= d;
    }
    const int64_t nbytes = type_bytes(type, ne[0] % 32 == 0 ? n : (is_quantized(type) ? -1 : n));
    if (nbytes < 0)
      fail(where + ": " + type_name(type) + " needs a first dimension that is a multiple of 32, shape " + shape_str(ne));
    if (size - at < nbytes)
      fail(where + ": truncated data (" + std::to_string(nbytes) + " bytes needed, " +
           std::to_string(size - at) + " left)");
    if (m.tensors.count(name)) fail(where + ": duplicate tensor name");
    Tensor t;
    t.ne = ne;
    t.type = type;
    t.data.resize(size_t(n));
    dequantize(type, base + at, n, t.data.data());
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(t.data[size_t(i)]))
        fail(where + ": element " + std::to_string(i) + " is not finite");
    at += nbytes;
    m.tensors.emplace(name, std::move(t));
    ++index;
  }

  // Architecture version, as rwkv.cpp detects it.
  auto has = [&](const std::string& n) { return m.tensors.count(n) != 0; };
  Version v{4, 0};
  if (has("blocks.0.att.ln_x.weight")) v = {5, has("blocks.0.att.gate.weight") ? 2 : 1};
  if (has("blocks.0.att.time_maa_x")) v = {6, 0};
  if (has("blocks.0.att.r_k")) v = {7, 0};
  m.version = v;
  if (expect.major != 0 && expect != v)
    fail("an RWKV v" + v.str() + " model (detected from its tensor names), not v" + expect.str() +
         " as expected");

  // Dimensions taken from block 0, then every tensor checked against the version's list.
  const std::string vs = "RWKV v" + v.str();
  auto dim = [&](const std::string& n, size_t axis) -> int64_t {
    const auto it = m.tensors.find(n);
    if (it == m.tensors.end()) fail("tensor '" + n + "' is missing (required by " + vs + ")");
    if (it->second.ne.size() <= axis) fail("tensor '" + n + "' has shape " + shape_str(it->second.ne) + ", too few dimensions for " + vs);
    return it->second.ne[axis];
  };
  const int64_t E = n_embed, V = n_vocab;
  m.ffn_size = int(dim("blocks.0.ffn.key.weight", 1));
  const int64_t F = m.ffn_size;
  if (v.major >= 5) {
    const int64_t h = v.major == 7 ? dim("blocks.0.att.r_k", 1) : dim("blocks.0.att.time_decay", 2);
    if (h < 1 || E % h != 0)
      fail("head count " + std::to_string(h) + " does not divide n_embed " + std::to_string(E));
    m.head_count = int(h);
    m.head_size = int(E / h);
  }
  const int64_t H = m.head_count, N = m.head_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
      {"emb.weight", {E, V}}, {"blocks.0.ln0.weight", {E}}, {"blocks.0.ln0.bias", {E}},
      {"ln_out.weight", {E}}, {"ln_out.bias", {E}},         {"head.weight", {E, V}}};
  int64_t D6 = 0, Dd = 0, Dw = 0, Da = 0, Dg = 0, Dv = 0;
  if (v.major == 6) {
    const int64_t w1 = dim("blocks.0.att.time_maa_w1", 1);
    if (w1 % 5 != 0) fail("tensor 'blocks.0.att.time_maa_w1' width " + std::to_string(w1) + " is not 5 LoRA blocks");
    D6 = w1 / 5;
    Dd = dim("blocks.0.att.time_decay_w1", 1);
  }
  if (v.major == 7) {
    Dw = dim("blocks.0.att.w1", 1), Da = dim("blocks.0.att.a1", 1), Dg = dim("blocks.0.att.g1", 1);
    if (n_layer > 1) Dv = dim("blocks.1.att.v1", 1);
  }
  for (int l = 0; l < int(n_layer); ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    auto add = [&](const std::string& n, std::vector<int64_t> s) { want.push_back({p + n, std::move(s)}); };
    for (const char* n : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"}) add(n, {E});
    add("ffn.key.weight", {E, F});
    add("ffn.value.weight", {F, E});
    for (const char* n : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight"})
      add(n, {E, E});
    switch (v.major) {
      case 4:
        for (const char* n : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.time_first", "att.time_decay"})
          add(n, {E});
        break;
      case 5:
        for (const char* n : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "att.ln_x.weight", "att.ln_x.bias"})
          add(n, {E});
        if (v.minor == 1) {
          add("att.time_first", {1, 1, H});
          add("att.time_decay", {1, 1, H});
        } else {
          add("att.time_faaaa", {1, N, H});
          add("att.time_decay", {1, N, H});
          add("att.time_mix_g", {E});
          add("att.gate.weight", {E, E});
        }
        break;
      case 6:
        for (const char* n : {"att.time_maa_x", "att.time_maa_w", "att.time_maa_k", "att.time_maa_v",
                              "att.time_maa_r", "att.time_maa_g", "att.ln_x.weight", "att.ln_x.bias"})
          add(n, {E});
        add("att.time_maa_w1", {E, 5 * D6});
        add("att.time_maa_w2", {D6, E, 5});
        add("att.time_decay", {1, N, H});
        add("att.time_faaaa", {1, N, H});
        add("att.time_decay_w1", {E, Dd});
        add("att.time_decay_w2", {Dd, E});
        add("att.gate.weight", {E, E});
        break;
      case 7:
        add("att.x_rwkvag", {E, 1, 6});
        add("att.w0", {E, 1, 1}), add("att.w1", {E, Dw}), add("att.w2", {Dw, E});
        add("att.a0", {E, 1, 1}), add("att.a1", {E, Da}), add("att.a2", {Da, E});
        add("att.g1", {E, Dg}), add("att.g2", {Dg, E});
        if (l > 0) add("att.v0", {E, 1, 1}), add("att.v1", {E, Dv}), add("att.v2", {Dv, E});
        add("att.k_k", {E, 1, 1}), add("att.k_a", {E, 1, 1}), add("att.r_k", {N, H});
        add("att.ln_x.weight", {E}), add("att.ln_x.bias", {E});
        break;
    }
    if (v.major == 4 || v.major == 5) add("ffn.time_mix_k", {E}), add("ffn.time_mix_r", {E});
    if (v.major == 6) add("ffn.time_maa_k", {E}), add("ffn.time_maa_r", {E});
    if (v.major == 7) add("ffn.x_k", {E, 1, 1});
    if (v.major != 7) add("ffn.receptance.weight", {E, E});
  }
  std::set<std::string> expected;
  for (const auto& [name, shape] : want) {
    const auto it = m.tensors.find(name);
    if (it == m.tensors.end()) fail("tensor '" + name + "' is missing (required by " + vs + ")");
    if (it->second.ne != shape)
      fail("tensor '" + name + "' has shape " + shape_str(it->second.ne) + ", " + vs + " with n_embed " +
           std::to_string(E) + " expects " + shape_str(shape));
    expected.insert(name);
  }
  for (const auto& kv : m.tensors)
    if (!expected.count(kv.first))
      fail("unexpected tensor '" + kv.first + "' (not part of an " + vs + " model with " +
           std::to_string(n_layer) + " layers)");
  return m;
}

}  // namespace fq::rwkv
