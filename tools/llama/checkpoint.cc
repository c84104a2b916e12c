// llama2.c checkpoint importer: legacy and v1 float32 layouts (see checkpoint.h, docs/llama.md).
#include "checkpoint.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "fq/graph.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the llama2.c formats are little-endian; this reader assumes a little-endian host");

namespace fq::llama {

namespace {

constexpr size_t kLegacyHeaderBytes = 7 * 4;
constexpr size_t kV1HeaderBytes = 256;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw fq::Error(path + ": " + msg);
}

int32_t le_i32(const unsigned char* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::string config_summary(const LlamaConfig& c) {
  std::ostringstream s;
  s << "dim " << c.dim << ", hidden_dim " << c.hidden_dim << ", n_layers " << c.n_layers
    << ", n_heads " << c.n_heads << ", n_kv_heads " << c.n_kv_heads << ", vocab_size "
    << c.vocab_size << ", seq_len " << c.seq_len
    << (c.shared_classifier ? ", shared classifier" : ", separate classifier");
  return s.str();
}

// The first four bytes as text when they are all printable ASCII (a magic of some format).
std::string printable_magic(const unsigned char* p, size_t n) {
  if (n < 4) return "";
  for (int i = 0; i < 4; ++i)
    if (p[i] < 0x20 || p[i] > 0x7e) return "";
  return std::string(reinterpret_cast<const char*>(p), 4);
}

struct File {
  std::FILE* f = nullptr;
  ~File() {
    if (f) std::fclose(f);
  }
};

class Reader {
 public:
  Reader(std::FILE* f, const std::string& path) : f_(f), path_(path) {}

  void read(std::vector<float>& out, uint64_t n, const std::string& name) {
    out.resize(static_cast<size_t>(n));
    if (n != 0 && std::fread(out.data(), sizeof(float), out.size(), f_) != out.size())
      fail(path_, "read error in tensor '" + name + "'");
    for (size_t i = 0; i < out.size(); ++i) {
      if (!std::isfinite(out[i])) {
        std::ostringstream s;
        s << "tensor '" << name << "' has a non-finite value (" << out[i] << ") at element " << i;
        fail(path_, s.str());
      }
    }
  }

  void skip(uint64_t n_floats, const std::string& name) {
    if (std::fseek(f_, static_cast<long>(n_floats * sizeof(float)), SEEK_CUR) != 0)
      fail(path_, "seek error in '" + name + "'");
  }

 private:
  std::FILE* f_;
  std::string path_;
};

}  // namespace

bool LlamaConfig::operator==(const LlamaConfig& o) const {
  return dim == o.dim && hidden_dim == o.hidden_dim && n_layers == o.n_layers &&
         n_heads == o.n_heads && n_kv_heads == o.n_kv_heads && vocab_size == o.vocab_size &&
         seq_len == o.seq_len && shared_classifier == o.shared_classifier;
}

const char* checkpoint_format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::detect: return "detect";
    case CheckpointFormat::legacy: return "legacy";
    case CheckpointFormat::v1: return "v1";
  }
  return "?";
}

void validate_config(const LlamaConfig& c, const std::string& what) {
  auto range = [&](const char* name, int v, int max) {
    if (v <= 0 || v > max) {
      std::ostringstream s;
      s << what << ": " << name << " " << v << " out of range [1, " << max << "] ("
        << config_summary(c) << ")";
      throw fq::Error(s.str());
    }
  };
  range("dim", c.dim, kMaxDim);
  range("hidden_dim", c.hidden_dim, kMaxHiddenDim);
  range("n_layers", c.n_layers, kMaxLayers);
  range("n_heads", c.n_heads, c.dim);
  range("n_kv_heads", c.n_kv_heads, c.n_heads);
  range("vocab_size", c.vocab_size, kMaxVocab);
  range("seq_len", c.seq_len, kMaxSeqLen);
  std::ostringstream s;
  if (c.dim % c.n_heads != 0) {
    s << what << ": dim " << c.dim << " is not divisible by n_heads " << c.n_heads;
  } else if (c.n_heads % c.n_kv_heads != 0) {
    s << what << ": n_heads " << c.n_heads << " is not divisible by n_kv_heads " << c.n_kv_heads;
  } else if (c.head_size() % 2 != 0) {
    s << what << ": head size " << c.head_size() << " (dim " << c.dim << " / n_heads "
      << c.n_heads << ") is odd; RoPE rotates pairs";
  }
  if (!s.str().empty()) throw fq::Error(s.str());
}

uint64_t checkpoint_bytes(const LlamaConfig& c, CheckpointFormat format) {
  const uint64_t dim = c.dim, hidden = c.hidden_dim, L = c.n_layers, vocab = c.vocab_size;
  const uint64_t kv_dim = static_cast<uint64_t>(c.kv_dim());
  uint64_t floats = vocab * dim                      // token embedding
                    + L * dim * 2                    // rms_att, rms_ffn
                    + L * (dim * dim * 2)            // wq, wo
                    + L * (kv_dim * dim * 2)         // wk, wv
                    + L * (hidden * dim * 3)         // w1, w2, w3
                    + dim;                           // rms_final
  if (!c.shared_classifier) floats += vocab * dim;  // wcls
  uint64_t header = kV1HeaderBytes;
  if (format == CheckpointFormat::legacy) {
    header = kLegacyHeaderBytes;
    // Two unused RoPE tables (freq_cis_real, freq_cis_imag), seq_len * head_size / 2 each.
    floats += 2 * (static_cast<uint64_t>(c.seq_len) * c.head_size() / 2);
  }
  return header + floats * sizeof(float);
}

LlamaWeights load_checkpoint(const std::string& path, CheckpointFormat format) {
  File file;
  file.f = std::fopen(path.c_str(), "rb");
  if (!file.f) fail(path, std::string("cannot open llama2.c checkpoint: ") + std::strerror(errno));
  if (std::fseek(file.f, 0, SEEK_END) != 0) fail(path, "cannot seek (not a regular file?)");
  const long end = std::ftell(file.f);
  if (end < 0) fail(path, "cannot determine the file size");
  const uint64_t file_bytes = static_cast<uint64_t>(end);
  std::rewind(file.f);

  unsigned char hdr[kV1HeaderBytes] = {};
  const size_t got = std::fread(hdr, 1, sizeof hdr, file.f);
  uint32_t magic = 0;
  if (got >= 4) std::memcpy(&magic, hdr, 4);
  if (format == CheckpointFormat::detect)
    format = (got >= 4 && magic == kV1Magic) ? CheckpointFormat::v1 : CheckpointFormat::legacy;

  LlamaWeights w;
  w.path = path;
  w.format = format;
  LlamaConfig& c = w.config;
  const unsigned char* p = hdr;
  if (format == CheckpointFormat::v1) {
    if (got < 4) {
      std::ostringstream s;
      s << "file too short for a v1 header: " << file_bytes << " bytes present, " << kV1HeaderBytes
        << " expected";
      fail(path, s.str());
    }
    if (magic != kV1Magic) {
      std::ostringstream s;
      s << "bad magic 0x" << std::hex << magic << std::dec;
      const std::string text = printable_magic(hdr, got);
      if (!text.empty()) s << " (bytes '" << text << "')";
      s << ", expected 0x616b3432 ('ak42', bytes '24ka') of a llama2.c v1 checkpoint";
      fail(path, s.str());
    }
    if (got < kV1HeaderBytes) {
      std::ostringstream s;
      s << "file too short for a v1 header: " << file_bytes << " bytes present, " << kV1HeaderBytes
        << " expected";
      fail(path, s.str());
    }
    const int32_t version = le_i32(hdr + 4);
    if (version != 1) {
      std::ostringstream s;
      s << "unsupported llama2.c checkpoint version " << version
        << " (only version 1, float32, is supported" << (version == 2 ? "; version 2 is Q8_0" : "")
        << ")";
      fail(path, s.str());
    }
    p = hdr + 8;
  } else if (got < kLegacyHeaderBytes) {
    std::ostringstream s;
    s << "file too short for a llama2.c header: " << file_bytes << " bytes present, "
      << kLegacyHeaderBytes << " expected";
    fail(path, s.str());
  }

  c.dim = le_i32(p);
  c.hidden_dim = le_i32(p + 4);
  c.n_layers = le_i32(p + 8);
  c.n_heads = le_i32(p + 12);
  c.n_kv_heads = le_i32(p + 16);
  c.vocab_size = le_i32(p + 20);
  c.seq_len = le_i32(p + 24);
  if (format == CheckpointFormat::v1) {
    const unsigned char flag = hdr[36];
    if (flag > 1) {
      std::ostringstream s;
      s << "shared_classifier flag is " << int(flag) << ", expected 0 or 1";
      fail(path, s.str());
    }
    c.shared_classifier = flag == 1;
  } else {
    // Legacy: a negative vocab_size signals a separate classifier at the end of the file.
    c.shared_classifier = c.vocab_size > 0;
    if (c.vocab_size < 0 && c.vocab_size != INT32_MIN) c.vocab_size = -c.vocab_size;
  }
  const std::string text = printable_magic(hdr, got);
  if (format == CheckpointFormat::legacy && !text.empty()) {
    // Looks like some magic: say so rather than only "dim 1651192882 out of range".
    try {
      validate_config(c, "read as a legacy header");
    } catch (const fq::Error& e) {
      fail(path, "bad magic (bytes '" + text + "'): not a llama2.c v1 checkpoint (magic 'ak42', "
                 "bytes '24ka'), and " + e.what());
    }
  }
  validate_config(c, path);

  const uint64_t expected = checkpoint_bytes(c, format);
  if (file_bytes != expected) {
    std::ostringstream s;
    s << (file_bytes < expected ? "truncated" : "unexpected trailing data") << ": "
      << checkpoint_format_name(format) << " checkpoint with " << config_summary(c) << " needs "
      << expected << " bytes, " << file_bytes << " bytes present";
    fail(path, s.str());
  }

  if (std::fseek(file.f, static_cast<long>(format == CheckpointFormat::v1 ? kV1HeaderBytes
                                                                          : kLegacyHeaderBytes),
                 SEEK_SET) != 0)
    fail(path, "cannot seek to the weights");
  Reader r(file.f, path);
  const uint64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size;
  const uint64_t kv_dim = static_cast<uint64_t>(c.kv_dim());
  w.layers.resize(static_cast<size_t>(c.n_layers));
  auto per_layer = [&](std::vector<float> LlamaLayer::*member, uint64_t n, const char* name) {
    for (int l = 0; l < c.n_layers; ++l)
      r.read(w.layers[l].*member, n, "layers." + std::to_string(l) + "." + name);
  };
  if (format == CheckpointFormat::legacy) {
    r.read(w.token_embedding, vocab * dim, "token_embedding");
    per_layer(&LlamaLayer::rms_att, dim, "rms_att");
    per_layer(&LlamaLayer::wq, dim * dim, "wq");
    per_layer(&LlamaLayer::wk, kv_dim * dim, "wk");
    per_layer(&LlamaLayer::wv, kv_dim * dim, "wv");
    per_layer(&LlamaLayer::wo, dim * dim, "wo");
    per_layer(&LlamaLayer::rms_ffn, dim, "rms_ffn");
    per_layer(&LlamaLayer::w1, hidden * dim, "w1");
    per_layer(&LlamaLayer::w2, dim * hidden, "w2");
    per_layer(&LlamaLayer::w3, hidden * dim, "w3");
    r.read(w.rms_final, dim, "rms_final");
    const uint64_t freq = static_cast<uint64_t>(c.seq_len) * c.head_size() / 2;
    r.skip(2 * freq, "freq_cis");  // legacy RoPE tables, unused (RoPE is computed)
  } else {
    per_layer(&LlamaLayer::rms_att, dim, "rms_att");
    per_layer(&LlamaLayer::rms_ffn, dim, "rms_ffn");
    r.read(w.rms_final, dim, "rms_final");
    r.read(w.token_embedding, vocab * dim, "token_embedding");
    per_layer(&LlamaLayer::wq, dim * dim, "wq");
    per_layer(&LlamaLayer::wk, kv_dim * dim, "wk");
    per_layer(&LlamaLayer::wv, kv_dim * dim, "wv");
    per_layer(&LlamaLayer::wo, dim * dim, "wo");
    per_layer(&LlamaLayer::w1, hidden * dim, "w1");
    per_layer(&LlamaLayer::w2, dim * hidden, "w2");
    per_layer(&LlamaLayer::w3, hidden * dim, "w3");
  }
  if (!c.shared_classifier) r.read(w.wcls, vocab * dim, "wcls");
  return w;
}

}  // namespace fq::llama
