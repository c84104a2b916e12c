// fqquant-rwkv: an rwkv.cpp model (model.h) + a recipe (configs/rwkv-*.yaml) -> the integer graph
// of docs/rwkv.md "Integer graphs". All floating-point work (calibration on sequences the float
// model samples itself, weight quantization through the LLM quantizer's quantize_linear, the DULUT
// fits, the integer units) happens here, offline; the graph holds integers only.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fq/graph.h"
#include "fq/kernels/lut.h"
#include "forward.h"
#include "gptq.h"
#include "model.h"
#include "vq.h"

namespace fq::rwkv {

// A quantization recipe. Every key is optional; unknown keys are errors.
struct RwkvRecipe {
  std::string name = "rwkv-w8a8";
  std::string path;               // the file it was read from
  int weight_bits = 8;            // 8: per-channel int8; 4: int4 in groups of `group`
  int group = 32;                 // int4 group size: 32, 64 or 128
  int head_bits = 8;              // the logits matmul (8 or 4)
  bool gptq = false;              // GPTQ with calibration Hessians
  bool clip_search = false;       // per-channel / per-group clipping search
  int calib_sequences = 16;       // calibration: sequences sampled from the float model
  int calib_bytes = 256;          // bytes per sequence
  uint64_t calib_seed = 1000;     // first sampling seed
  double calib_temperature = 1.0;
  double residual_headroom = 8;   // E: int32 range = headroom x calibrated max |x|
  double state_headroom = 8;      // WKV state unit: int32 range = headroom x max |S| per layer
  // RWKVQuant (configs/rwkv-rwkvquant.yaml): the block matrices in the DI-MatMul codebook format
  bool codebook = false;          // block matrices as cb<codebook_bits> (embedding / head: head_bits)
  int codebook_bits = 3;          // 3 or 4 index bits
  int codebook_group = 128;       // columns per codebook (32, 64, 128; at most K rounded up to 32)
  int codebook_rows = 1;          // rows sharing one codebook per group
  bool proxy = true;              // coarse-to-fine proxy: uniform (scalar) codebook when coherent,
                                  // else k-means (VQ); a coherent mixing vector (mu_bits > 0) is
                                  // scalar int8; false: k-means everywhere
  double proxy_tau1 = 8, proxy_tau2 = 8;  // thresholds of hce / fine (RWKVQuant incoherent_param)
  int kmeans_iters = 30;
  int mu_bits = 0;                // mixing vectors: 0 = Q16; 2..4 = codebooks (activation-weighted
  int mu_group = 64;              //   k-means) of 2^mu_bits int8 entries per group of mu_group
};
RwkvRecipe parse_rwkv_recipe(const std::string& yaml_text, const std::string& path);
RwkvRecipe load_rwkv_recipe(const std::string& path);

// LayerNorm / GroupNorm parameters in the integer layernorm's form (llm.h): gamma = gm 2^-ae,
// beta = bo 2^-ae, eps = eps_m 2^-eps_e.
struct QNorm {
  std::vector<int32_t> gm, bo;
  int ae = 0;
  int32_t eps_m = 0;
  int eps_e = 0;
};

// A mixing vector stored as a codebook (decode_mu in fq/kernels/rwkv.h): indices [n], int8 entries
// [ceil(n / group)][2^bits], one scale (mant, exp); or, bits 8, as scalar int8: idx holds the int8
// codes, cb is empty.
struct QMuCodebook {
  int bits = 0, group = 0;
  std::vector<uint8_t> idx;
  std::vector<int8_t> cb;
  int32_t mant = 0, exp = 0;
};

struct QLayer {
  QNorm ln1, ln2, ln_x;
  std::map<std::string, llama::QLinear> w;       // matrices by graph name (rwkv.cpp names; v6 LoRA
                                                 // parts with a suffix .w/.k/.v/.r/.g)
  std::map<std::string, std::vector<int32_t>> q16;  // mixing vectors (y = a + (p - a) mu) and the
                                                    // bonus u, Q16 (the decoded values when a
  std::map<std::string, QMuCodebook> mu_cb;         // codebook stands for the vector)
  std::map<std::string, Proxy> proxy;            // rwkvquant: the proxy of each matrix
  std::vector<int32_t> decay_q24;                // v5: log decay ln(w) per channel; v6: the raw
                                                 // time_decay added before -exp (Q24)
  int state_exp = 0;                             // WKV state unit 2^-Es
  double state_max = 0;                          // calibrated max |S|
};

struct QModel {
  const Model* m = nullptr;
  RwkvRecipe r;
  std::vector<int8_t> emb_q;                     // [V][E]: LN0(emb) per row, int8
  std::vector<double> emb_scale;                 // [V]
  QNorm ln_out;
  llama::QLinear head;
  std::vector<QLayer> layers;
  int residual_exp = 0;
  double residual_max = 0;
  k::LutTable sigmoid, tanh;                     // DULUT tables: int16 Q(kSigmoidFrac / kTanhFrac) -> Q15
  std::vector<std::string> notes;                // human-readable report lines
  double weight_bits_avg = 0;                    // block matrices: stored bits per weight
};

constexpr int kSigmoidFrac = 11;                 // sigmoid input code: Q11, |x| < 16
constexpr int kTanhFrac = 12;                    // tanh input code: Q12, |x| < 8
constexpr int kDecayFrac = 24;                   // log-decays in Q24

// Byte sequences the float model samples itself (temperature `temp`, seeds seed, seed + 1, ...),
// from the zero state, starting with byte `first`; obs sees every forward pass (calibration).
std::vector<std::vector<int>> sample_sequences(const Model& m, int n, int bytes, uint64_t seed,
                                               double temp, int first = '\n', Observer* obs = nullptr);

// Calibrates and quantizes (versions 5.1, 5.2 and 6; others are an error naming the version).
QModel quantize_model(const Model& m, const RwkvRecipe& r);

// The integer graph: `rows` tokens per run (1: token by token; more: sequence mode, same bytes).
Graph build_int_graph(const QModel& q, const std::string& name, int rows = 1);

}  // namespace fq::rwkv
