// llama2.c checkpoint importer (docs/llama.md). Reads the two float32 formats of karpathy/llama2.c
// into plain float tensors: the legacy format (7 x int32 header, classifier sharing signalled by
// the sign of vocab_size, two unused RoPE tables) and the "v1" format (magic "ak42", version 1,
// 256-byte header with a shared-classifier flag, norms first). Float code: this is the importer
// and float reference, never part of the integer path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fq::llama {

struct LlamaConfig {
  int dim = 0;         // model width
  int hidden_dim = 0;  // FFN width
  int n_layers = 0;
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (GQA: n_heads is a multiple of it)
  int vocab_size = 0;  // always positive here (the legacy sign is decoded into shared_classifier)
  int seq_len = 0;     // maximum sequence length (size of the KV cache)
  bool shared_classifier = true;  // classifier weights are the token embedding
  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return head_size() * n_kv_heads; }
  int kv_mul() const { return n_heads / n_kv_heads; }  // query heads per key/value head
  bool operator==(const LlamaConfig& o) const;
  bool operator!=(const LlamaConfig& o) const { return !(*this == o); }
};

// One transformer block. Matrices are row-major [out, in], so y = W x is
// y[o] = sum_i W[o * in + i] * x[i] (llama2.c's matmul).
struct LlamaLayer {
  std::vector<float> rms_att;  // [dim]
  std::vector<float> wq;       // [dim, dim]      (n_heads * head_size outputs)
  std::vector<float> wk;       // [kv_dim, dim]
  std::vector<float> wv;       // [kv_dim, dim]
  std::vector<float> wo;       // [dim, dim]
  std::vector<float> rms_ffn;  // [dim]
  std::vector<float> w1;       // [hidden_dim, dim]  gate
  std::vector<float> w2;       // [dim, hidden_dim]  down
  std::vector<float> w3;       // [hidden_dim, dim]  up
};

enum class CheckpointFormat { detect, legacy, v1 };
const char* checkpoint_format_name(CheckpointFormat f);

struct LlamaWeights {
  LlamaConfig config;
  CheckpointFormat format = CheckpointFormat::legacy;  // the format it was read from
  std::string path;                                    // the file it was read from
  std::vector<float> token_embedding;                  // [vocab_size, dim]
  std::vector<LlamaLayer> layers;                      // n_layers
  std::vector<float> rms_final;                        // [dim]
  std::vector<float> wcls;  // [vocab_size, dim]; empty when config.shared_classifier
  // The classifier matrix [vocab_size, dim]: wcls, or the token embedding when shared.
  const std::vector<float>& classifier() const {
    return config.shared_classifier ? token_embedding : wcls;
  }
};

// Sanity limits for header fields (a header beyond them is rejected as corrupt).
constexpr int kMaxDim = 1 << 16;
constexpr int kMaxHiddenDim = 1 << 18;
constexpr int kMaxLayers = 1 << 10;
constexpr int kMaxVocab = 1 << 20;
constexpr int kMaxSeqLen = 1 << 20;
constexpr uint32_t kV1Magic = 0x616b3432;  // "ak42" as a little-endian uint32 (bytes "24ka")

// Checks a config (positive and sane sizes, dim divisible by n_heads, n_heads divisible by
// n_kv_heads, even head size for RoPE pairs). Throws fq::Error "<what>: <problem>".
void validate_config(const LlamaConfig& c, const std::string& what);

// Reads a llama2.c float32 checkpoint. `format` detect: v1 when the file starts with the "ak42"
// magic, legacy otherwise. Everything is validated (header fields, exact file size, finite
// weights); any problem throws fq::Error with a one-line message naming the file.
LlamaWeights load_checkpoint(const std::string& path,
                             CheckpointFormat format = CheckpointFormat::detect);

// Number of bytes a checkpoint of this config occupies in the given format (legacy or v1).
uint64_t checkpoint_bytes(const LlamaConfig& c, CheckpointFormat format);

}  // namespace fq::llama
