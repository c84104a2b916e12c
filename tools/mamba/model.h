// Mamba (v1) checkpoint importer and writer (docs/mamba.md): the standard layout published for
// state-spaces/mamba-130m and friends, a folder with `config.json` (mamba_ssm's MambaConfig) and
// `model.safetensors` (tensor names of mamba_ssm's MambaLMHeadModel: backbone.embeddings.weight,
// backbone.layers.N.norm.weight, backbone.layers.N.mixer.{in_proj.weight, conv1d.weight,
// conv1d.bias, x_proj.weight, dt_proj.weight, dt_proj.bias, A_log, D, out_proj.weight},
// backbone.norm_f.weight, and lm_head.weight unless the head is tied to the embedding).
// F32, F16 and BF16 tensors are read into float32. Everything is validated; every problem is an
// fq::Error with a one-line message naming the file (and the tensor or key). Float code: an
// offline importer and the ground truth of the integer Mamba work, never the integer path.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fq::mamba {

struct Config {
  int d_model = 0;
  int n_layer = 0;
  int vocab_size = 0;  // as in config.json (unpadded)
  int d_state = 16;    // ssm_cfg (mamba_simple.Mamba defaults)
  int d_conv = 4;
  int expand = 2;
  int dt_rank = 0;  // ssm_cfg dt_rank, "auto" = ceil(d_model / 16)
  int pad_vocab_size_multiple = 8;
  bool rms_norm = true;  // only RMSNorm models are supported
  bool residual_in_fp32 = true;
  bool fused_add_norm = true;
  bool tie_embeddings = true;
  double norm_eps = 1e-5;  // mamba_ssm's norm_epsilon (not written in config.json)

  int d_inner() const { return expand * d_model; }
  // Rows of the embedding / head: vocab_size rounded up to pad_vocab_size_multiple.
  int padded_vocab() const {
    const int m = pad_vocab_size_multiple;
    return (vocab_size + m - 1) / m * m;
  }
};

struct Tensor {
  std::vector<int64_t> shape;
  std::string dtype;  // as stored: F32, F16 or BF16
  std::vector<float> data;
  int64_t numel() const;
};

struct Model {
  std::string dir;  // the checkpoint folder (or "" for a model built in memory)
  Config config;
  std::map<std::string, Tensor> tensors;

  const Tensor& t(const std::string& name) const;  // throws fq::Error naming the file if missing
  const std::vector<float>& v(const std::string& name) const { return t(name).data; }
  // "backbone.layers.{layer}.mixer." + name
  const std::vector<float>& mixer(int layer, const std::string& name) const;
  // The head matrix [padded_vocab, d_model]: lm_head.weight, or the embedding when tied.
  const std::vector<float>& head() const;
};

// Checks a config (positive and sane sizes). Throws fq::Error "<what>: <problem>".
void validate_config(const Config& c, const std::string& what);

// config.json text <-> Config. Unknown keys, wrong types and unsupported options (LayerNorm,
// biases on in_proj/out_proj, attention layers, Mamba-2) are errors naming `what` and the key.
Config parse_config(const std::string& json_text, const std::string& what);
std::string config_json(const Config& c);

// The tensors of a model with this config, with their shapes (lm_head.weight only if untied).
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const Config& c);

// safetensors: 8-byte little-endian header size, JSON header {name: {dtype, shape, data_offsets},
// "__metadata__": {..}}, then the data buffer (offsets relative to it, contiguous, no overlap).
std::map<std::string, Tensor> read_safetensors(const std::string& path);
// Writes every tensor as `dtype` (F32, F16 or BF16; rounding to nearest even), in name order.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::string& dtype = "F32");

// Loads DIR/config.json and DIR/model.safetensors and validates names and shapes against the
// config (every expected tensor present, no other tensor).
Model load_model(const std::string& dir);
// Writes DIR/config.json and DIR/model.safetensors (creating DIR).
void save_model(const Model& m, const std::string& dir, const std::string& dtype = "F32");

// Float conversions (exposed for tests).
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t h);
uint16_t float_to_half(float f);
uint16_t float_to_bf16(float f);

}  // namespace fq::mamba
