// Mamba checkpoint importer and writer (model.h).
#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "fq/fq.h"
#include "json.h"

namespace fq::mamba {

namespace {

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // safetensors' own limit (100 MB)
constexpr int64_t kMaxElems = int64_t{1} << 34;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int dtype_size(const std::string& d) {
  if (d == "F32") return 4;
  if (d == "F16" || d == "BF16") return 2;
  return 0;
}

bool known_other_dtype(const std::string& d) {
  static const std::set<std::string> k = {"F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16",
                                          "U8", "BOOL", "F8_E4M3", "F8_E5M2", "C64"};
  return k.count(d) != 0;
}

uint64_t rd64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const Tensor& Model::t(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end())
    throw Error((dir.empty() ? std::string("model") : dir) + ": tensor '" + name + "' is missing");
  return it->second;
}

const std::vector<float>& Model::mixer(int layer, const std::string& name) const {
  return v("backbone.layers." + std::to_string(layer) + ".mixer." + name);
}

const std::vector<float>& Model::head() const {
  return tensors.count("lm_head.weight") ? v("lm_head.weight") : v("backbone.embeddings.weight");
}

// ---- float conversions -------------------------------------------------------------------

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float mag;
  if (e == 0) mag = std::ldexp(float(m), -24);  // subnormal (exact)
  else if (e == 0x1f) mag = m ? NAN : INFINITY;
  else mag = std::ldexp(float(m | 0x400), int(e) - 25);
  uint32_t bits;
  std::memcpy(&bits, &mag, 4);
  bits |= sign;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1);  // round to nearest even
  return uint16_t(bits >> 16);
}

uint16_t float_to_half(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return uint16_t(sign | 0x7e00);
  if (a >= 65520.0f) return uint16_t(sign | 0x7c00);  // rounds to infinity
  if (a < std::ldexp(1.0f, -14)) {                    // subnormal: multiples of 2^-24
    const float q = std::nearbyint(a * std::ldexp(1.0f, 24));  // ties to even (default mode)
    return uint16_t(sign | uint16_t(q));
  }
  int e;
  const float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  float q = std::nearbyint(std::ldexp(m, 11));  // 11 significant bits, in [1024, 2048]
  if (q == 2048.0f) q = 1024.0f, ++e;
  const uint32_t he = uint32_t(e - 1 + 15);
  return uint16_t(sign | he << 10 | (uint32_t(q) - 1024));
}

// ---- config ------------------------------------------------------------------------------

void validate_config(const Config& c, const std::string& what) {
  auto bad = [&](const std::string& key, int v, int lo, int hi) {
    if (v < lo || v > hi)
      throw Error(what + ": " + key + " = " + std::to_string(v) + " is outside [" +
                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  bad("d_model", c.d_model, 1, 1 << 16);
  bad("n_layer", c.n_layer, 1, 1024);
  bad("vocab_size", c.vocab_size, 1, 1 << 20);
  bad("d_state", c.d_state, 1, 1024);
  bad("d_conv", c.d_conv, 2, 64);
  bad("expand", c.expand, 1, 16);
  bad("dt_rank", c.dt_rank, 1, 1 << 16);
  bad("pad_vocab_size_multiple", c.pad_vocab_size_multiple, 1, 1 << 16);
  if (!c.rms_norm) throw Error(what + ": rms_norm false (LayerNorm) models are not supported");
}

Config parse_config(const std::string& text, const std::string& what) {
  const Json j = parse_json(text, what);
  if (j.kind != Json::Kind::object) throw Error(what + ": the config is " + std::string(j.kind_name()) + ", not an object");
  Config c;
  auto int_of = [&](const std::string& key, const Json& v) -> int {
    if (v.kind != Json::Kind::number || !v.is_int || v.i < INT32_MIN || v.i > INT32_MAX)
      throw Error(what + ": key '" + key + "' must be an integer, it is " + v.kind_name());
    return int(v.i);
  };
  auto bool_of = [&](const std::string& key, const Json& v) -> bool {
    if (v.kind != Json::Kind::boolean)
      throw Error(what + ": key '" + key + "' must be true or false, it is " + v.kind_name());
    return v.b;
  };
  bool have_d = false, have_l = false, have_v = false;
  std::string dt_rank = "auto";
  for (const auto& [key, v] : j.fields) {
    if (key == "d_model") c.d_model = int_of(key, v), have_d = true;
    else if (key == "n_layer") c.n_layer = int_of(key, v), have_l = true;
    else if (key == "vocab_size") c.vocab_size = int_of(key, v), have_v = true;
    else if (key == "rms_norm") c.rms_norm = bool_of(key, v);
    else if (key == "residual_in_fp32") c.residual_in_fp32 = bool_of(key, v);
    else if (key == "fused_add_norm") c.fused_add_norm = bool_of(key, v);
    else if (key == "tie_embeddings") c.tie_embeddings = bool_of(key, v);
    else if (key == "pad_vocab_size_multiple") c.pad_vocab_size_multiple = int_of(key, v);
    else if (key == "d_intermediate") {
      if (int_of(key, v) != 0) throw Error(what + ": d_intermediate " + std::to_string(v.i) + " (MLP blocks) is not supported");
    } else if (key == "attn_layer_idx") {
      if (v.kind != Json::Kind::array || !v.items.empty())
        throw Error(what + ": attn_layer_idx must be an empty list (attention layers are not supported)");
    } else if (key == "attn_cfg") {
      if (v.kind != Json::Kind::object || !v.fields.empty())
        throw Error(what + ": attn_cfg must be an empty object (attention layers are not supported)");
    } else if (key == "ssm_cfg") {
      if (v.kind != Json::Kind::object) throw Error(what + ": key 'ssm_cfg' must be an object, it is " + v.kind_name());
      for (const auto& [k2, v2] : v.fields) {
        const std::string name = "ssm_cfg." + k2;
        if (k2 == "d_state") c.d_state = int_of(name, v2);
        else if (k2 == "d_conv") c.d_conv = int_of(name, v2);
        else if (k2 == "expand") c.expand = int_of(name, v2);
        else if (k2 == "dt_rank") {
          if (v2.kind == Json::Kind::string && v2.str == "auto") dt_rank = "auto";
          else dt_rank = std::to_string(int_of(name, v2));
        } else if (k2 == "layer") {
          if (v2.kind != Json::Kind::string || v2.str != "Mamba1")
            throw Error(what + ": ssm_cfg.layer must be \"Mamba1\" (Mamba-2 is not supported)");
        } else if (k2 == "bias") {
          if (bool_of(name, v2)) throw Error(what + ": ssm_cfg.bias true (in_proj/out_proj biases) is not supported");
        } else if (k2 == "conv_bias") {
          if (!bool_of(name, v2)) throw Error(what + ": ssm_cfg.conv_bias false is not supported");
        } else if (k2 == "dt_min" || k2 == "dt_max" || k2 == "dt_scale" || k2 == "dt_init_floor") {
          if (v2.kind != Json::Kind::number) throw Error(what + ": key '" + name + "' must be a number");
        } else if (k2 == "dt_init") {
          if (v2.kind != Json::Kind::string) throw Error(what + ": key '" + name + "' must be a string");
        } else if (k2 == "use_fast_path") {
          bool_of(name, v2);
        } else {
          throw Error(what + ": unknown key '" + name + "'");
        }
      }
    } else {
      throw Error(what + ": unknown key '" + key.substr(0, 80) + "'");
    }
  }
  if (!have_d) throw Error(what + ": missing key 'd_model'");
  if (!have_l) throw Error(what + ": missing key 'n_layer'");
  if (!have_v) throw Error(what + ": missing key 'vocab_size'");
  c.dt_rank = dt_rank == "auto" ? (c.d_model + 15) / 16 : std::stoi(dt_rank);
  validate_config(c, what);
  return c;
}

std::string config_json(const Config& c) {
  std::string s = "{\n";
  s += "  \"d_model\": " + std::to_string(c.d_model) + ",\n";
  s += "  \"n_layer\": " + std::to_string(c.n_layer) + ",\n";
  s += "  \"vocab_size\": " + std::to_string(c.vocab_size) + ",\n";
  s += "  \"ssm_cfg\": {\"d_state\": " + std::to_string(c.d_state) + ", \"d_conv\": " +
       std::to_string(c.d_conv) + ", \"expand\": " + std::to_string(c.expand);
  if (c.dt_rank != (c.d_model + 15) / 16) s += ", \"dt_rank\": " + std::to_string(c.dt_rank);
  s += "},\n";
  auto b = [](bool v) { return v ? "true" : "false"; };
  s += std::string("  \"rms_norm\": ") + b(c.rms_norm) + ",\n";
  s += std::string("  \"residual_in_fp32\": ") + b(c.residual_in_fp32) + ",\n";
  s += std::string("  \"fused_add_norm\": ") + b(c.fused_add_norm) + ",\n";
  s += "  \"pad_vocab_size_multiple\": " + std::to_string(c.pad_vocab_size_multiple) + ",\n";
  s += std::string("  \"tie_embeddings\": ") + b(c.tie_embeddings) + "\n}\n";
  return s;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const Config& c) {
  const int64_t D = c.d_model, Di = c.d_inner(), N = c.d_state, K = c.d_conv, R = c.dt_rank,
                V = c.padded_vocab();
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {{"backbone.embeddings.weight", {V, D}}};
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "backbone.layers." + std::to_string(l) + ".";
    t.push_back({p + "norm.weight", {D}});
    t.push_back({p + "mixer.in_proj.weight", {2 * Di, D}});
    t.push_back({p + "mixer.conv1d.weight", {Di, 1, K}});
    t.push_back({p + "mixer.conv1d.bias", {Di}});
    t.push_back({p + "mixer.x_proj.weight", {R + 2 * N, Di}});
    t.push_back({p + "mixer.dt_proj.weight", {Di, R}});
    t.push_back({p + "mixer.dt_proj.bias", {Di}});
    t.push_back({p + "mixer.A_log", {Di, N}});
    t.push_back({p + "mixer.D", {Di}});
    t.push_back({p + "mixer.out_proj.weight", {D, Di}});
  }
  t.push_back({"backbone.norm_f.weight", {D}});
  if (!c.tie_embeddings) t.push_back({"lm_head.weight", {V, D}});
  return t;
}

// ---- safetensors -------------------------------------------------------------------------

std::map<std::string, Tensor> read_safetensors(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
  auto fail = [&](const std::string& msg) -> void { throw Error(path + ": " + msg); };
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint64_t size = bytes.size();
  if (size < 8) fail("truncated: " + std::to_string(size) + " bytes, a safetensors file starts with an 8-byte header size");
  const uint64_t hn = rd64(base);
  if (hn > kMaxHeader) fail("header size " + std::to_string(hn) + " exceeds 100 MB (not a safetensors file?)");
  if (hn > size - 8)
    fail("truncated header: " + std::to_string(hn) + " bytes announced, " + std::to_string(size - 8) + " present");
  if (hn < 2 || base[8] != '{') fail("the header is not a JSON object");
  const std::string header(bytes, 8, size_t(hn));
  const Json j = parse_json(header, path + ": header");
  if (j.kind != Json::Kind::object) fail("the header is not a JSON object");
  const uint64_t buf_size = size - 8 - hn;
  const uint8_t* buf = base + 8 + hn;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  std::map<std::string, Tensor> out;
  for (const auto& [name, e] : j.fields) {
    if (name == "__metadata__") {
      if (e.kind != Json::Kind::object) fail("__metadata__ is not an object");
      for (const auto& f : e.fields)
        if (f.second.kind != Json::Kind::string) fail("__metadata__ value '" + f.first + "' is not a string");
      continue;
    }
    const std::string where = "tensor '" + name.substr(0, 200) + "'";
    if (name.empty()) fail("empty tensor name");
    if (e.kind != Json::Kind::object) fail(where + ": the entry is " + std::string(e.kind_name()) + ", not an object");
    const Json *dt = e.find("dtype"), *sh = e.find("shape"), *off = e.find("data_offsets");
    for (const auto& f : e.fields)
      if (f.first != "dtype" && f.first != "shape" && f.first != "data_offsets")
        fail(where + ": unknown key '" + f.first.substr(0, 80) + "'");
    if (!dt || !sh || !off) fail(where + ": needs keys dtype, shape and data_offsets");
    if (dt->kind != Json::Kind::string) fail(where + ": dtype is not a string");
    const int es = dtype_size(dt->str);
    if (!es) {
      if (known_other_dtype(dt->str)) fail(where + ": dtype " + dt->str + " is not supported (F32, F16, BF16)");
      fail(where + ": unknown dtype '" + dt->str.substr(0, 40) + "'");
    }
    if (sh->kind != Json::Kind::array || sh->items.size() > 8) fail(where + ": shape must be a list of at most 8 sizes");
    Tensor t;
    t.dtype = dt->str;
    int64_t n = 1;
    for (const Json& d : sh->items) {
      if (d.kind != Json::Kind::number || !d.is_int || d.i < 0 || d.i > (int64_t{1} << 31))
        fail(where + ": bad shape entry");
      t.shape.push_back(d.i);
      if (d.i != 0 && n > kMaxElems / d.i) fail(where + ": shape " + shape_str(t.shape) + " is too large");
      n *= d.i;
    }
    if (off->kind != Json::Kind::array || off->items.size() != 2) fail(where + ": data_offsets must be [begin, end]");
    for (const Json& d : off->items)
      if (d.kind != Json::Kind::number || !d.is_int || d.i < 0) fail(where + ": bad data_offsets");
    const uint64_t b = uint64_t(off->items[0].i), en = uint64_t(off->items[1].i);
    if (en < b) fail(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] end before begin");
    const uint64_t need = uint64_t(n) * uint64_t(es);
    if (en - b != need)
      fail(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] hold " +
           std::to_string(en - b) + " bytes, " + t.dtype + " " + shape_str(t.shape) + " needs " + std::to_string(need));
    if (en > buf_size)
      fail("truncated: " + where + " ends at byte " + std::to_string(en) + " of the data, the file holds " +
           std::to_string(buf_size) + " data bytes");
    spans.push_back({b, en, name});
    t.data.resize(size_t(n));
    const uint8_t* p = buf + b;
    for (int64_t i = 0; i < n; ++i) {
      float f;
      if (es == 4) {
        std::memcpy(&f, p + 4 * i, 4);
      } else {
        const uint16_t h = uint16_t(p[2 * i] | p[2 * i + 1] << 8);
        f = t.dtype == "F16" ? half_to_float(h) : bf16_to_float(h);
      }
      if (!std::isfinite(f)) fail(where + ": element " + std::to_string(i) + " is not finite");
      t.data[size_t(i)] = f;
    }
    out.emplace(name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  uint64_t at = 0;
  for (const Span& s : spans) {
    if (s.begin < at) fail("tensor '" + s.name + "' overlaps the previous tensor's data");
    if (s.begin > at) fail("tensor '" + s.name + "' leaves a gap before its data (bytes " + std::to_string(at) + ".." + std::to_string(s.begin) + ")");
    at = s.end;
  }
  if (at != buf_size)
    fail(std::to_string(buf_size - at) + " bytes after the last tensor's data (a corrupted header?)");
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::string& dtype) {
  const int es = dtype_size(dtype);
  if (!es) throw Error(path + ": cannot write dtype '" + dtype + "' (F32, F16, BF16)");
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t at = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t n = uint64_t(t.numel()) * uint64_t(es);
    header += "," + json_quote(name) + ":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(at + n) + "]}";
    at += n;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  out += header;
  out.reserve(out.size() + at);
  for (const auto& kv : tensors) {
    for (float f : kv.second.data) {
      if (es == 4) {
        char b[4];
        std::memcpy(b, &f, 4);
        out.append(b, 4);
      } else {
        const uint16_t h = dtype == "F16" ? float_to_half(f) : float_to_bf16(f);
        out += char(h & 0xff);
        out += char(h >> 8);
      }
    }
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(out.data(), std::streamsize(out.size()));
    if (!f.good()) throw Error(path + ": cannot write");
  }
  std::filesystem::rename(tmp, path);
}

// ---- model -------------------------------------------------------------------------------

Model load_model(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  const std::string st_path = (fs::path(dir) / "model.safetensors").string();
  if (!fs::is_directory(dir)) throw Error(dir + ": not a checkpoint folder (config.json + model.safetensors)");
  std::string cfg_text;
  try {
    cfg_text = read_file(cfg_path);
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
  Model m;
  m.dir = dir;
  m.config = parse_config(cfg_text, cfg_path);
  m.tensors = read_safetensors(st_path);
  const Config& c = m.config;
  std::set<std::string> want;
  for (const auto& [name, shape] : expected_tensors(c)) {
    const auto it = m.tensors.find(name);
    if (it == m.tensors.end()) throw Error(st_path + ": tensor '" + name + "' is missing");
    if (it->second.shape != shape)
      throw Error(st_path + ": tensor '" + name + "' has shape " + shape_str(it->second.shape) +
                  ", expected " + shape_str(shape) + " (d_model " + std::to_string(c.d_model) +
                  ", d_inner " + std::to_string(c.d_inner()) + ", d_state " + std::to_string(c.d_state) +
                  ", d_conv " + std::to_string(c.d_conv) + ", dt_rank " + std::to_string(c.dt_rank) +
                  ", padded vocab " + std::to_string(c.padded_vocab()) + ")");
    want.insert(name);
  }
  for (const auto& kv : m.tensors) {
    if (want.count(kv.first)) continue;
    if (kv.first == "lm_head.weight" && kv.second.shape == std::vector<int64_t>{c.padded_vocab(), c.d_model}) {
      // A tied head saved twice (torch.save of the state dict): must equal the embedding.
      if (kv.second.data != m.v("backbone.embeddings.weight"))
        throw Error(st_path + ": tensor 'lm_head.weight' differs from the embedding, but tie_embeddings is true");
      continue;
    }
    throw Error(st_path + ": unexpected tensor '" + kv.first.substr(0, 200) + "' (not part of a Mamba model with " +
                std::to_string(c.n_layer) + " layers)");
  }
  if (c.tie_embeddings) m.tensors.erase("lm_head.weight");
  return m;
}

void save_model(const Model& m, const std::string& dir, const std::string& dtype) {
  namespace fs = std::filesystem;
  validate_config(m.config, dir);
  for (const auto& [name, shape] : expected_tensors(m.config)) {
    const Tensor& t = m.t(name);
    if (t.shape != shape || int64_t(t.data.size()) != t.numel())
      throw Error(dir + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected " + shape_str(shape));
  }
  fs::create_directories(dir);
  const std::string cfg = (fs::path(dir) / "config.json").string();
  {
    std::ofstream f(cfg, std::ios::binary | std::ios::trunc);
    f << config_json(m.config);
    if (!f.good()) throw Error(cfg + ": cannot write");
  }
  write_safetensors((fs::path(dir) / "model.safetensors").string(), m.tensors, dtype);
}

}  // namespace fq::mamba
