// libFuzzer: the importers of third-party model files on arbitrary bytes. The first byte picks the
// reader: 0 an rwkv.cpp file (fq::rwkv::load_model), 1 a safetensors file
// (fq::mamba::read_safetensors), 2 a Mamba config.json (fq::mamba::parse_config), 3 a llama2.c
// checkpoint (fq::llama::load_checkpoint). Property: every rejection is an fq::Error; no crash,
// hang, leak, UB or unbounded allocation (run.sh's RSS limit). FQ_FUZZ_MAKE_SEEDS=DIR writes seed
// inputs into DIR (small valid or truncated files) and exits.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fq/fq.h"
#include "llama/checkpoint.h"
#include "mamba/model.h"
#include "rwkv/model.h"

namespace {

std::string work_dir() {
  static const std::string dir = [] {
    char t[] = "/tmp/fq-fuzz-import-XXXXXX";
    if (!mkdtemp(t)) std::abort();
    return std::string(t);
  }();
  return dir;
}

void put(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  if (!f) std::abort();
}

// Seeds: a small safetensors file with F32 / F16 / BF16 tensors, a Mamba config and the heads of
// the real rwkv.cpp and llama2.c files (FQ_FUZZ_SHARED = ../shared).
void make_seeds(const std::string& dir) {
  auto seed = [&](const std::string& name, uint8_t mode, const std::string& bytes) {
    std::ofstream f(dir + "/" + name, std::ios::binary);
    f.put(char(mode));
    f << bytes;
  };
  const std::string hdr =
      R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
      R"("c":{"dtype":"BF16","shape":[1,2],"data_offsets":[22,26]},"__metadata__":{"format":"pt"}})";
  std::string st(8, '\0');
  for (int i = 0; i < 8; ++i) st[size_t(i)] = char((hdr.size() >> (8 * i)) & 255);
  st += hdr + std::string(16, '\0') + std::string("\x00\x3c\x00\x3c\x00\x3c\x80\x3f\x80\x3f", 10);
  seed("safetensors", 1, st);
  seed("config", 2,
       R"({"d_model": 64, "n_layer": 2, "vocab_size": 256, "ssm_cfg": {"d_state": 16, "d_conv": 4, "expand": 2},)"
       R"( "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8,)"
       R"( "tie_embeddings": true})");
  const char* shared = std::getenv("FQ_FUZZ_SHARED");
  const std::string root = shared ? shared : "../shared";
  auto head = [&](const std::string& name, uint8_t mode, const std::string& path) {
    std::ifstream f(root + "/models/" + path, std::ios::binary);
    std::string b(3000, '\0');
    f.read(b.data(), std::streamsize(b.size()));
    if (f.gcount() > 0) seed(name, mode, b.substr(0, size_t(f.gcount())));
  };
  head("rwkv5", 0, "rwkv/tiny-rwkv-5v2-730K-Q5_1.bin");
  head("rwkv6", 0, "rwkv/tiny-rwkv-6v0-3m-Q5_0.bin");
  head("rwkv7", 0, "rwkv/tiny-rwkv-7v0-834K-FP16.bin");
  head("llama2c", 3, "llama/stories260K.bin");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FQ_FUZZ_MAKE_SEEDS")) {
    make_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 4;
  ++data, --size;
  const std::string dir = work_dir();
  try {
    if (mode == 0) {
      put(dir + "/model.bin", data, size);
      fq::rwkv::load_model(dir + "/model.bin");
    } else if (mode == 1) {
      put(dir + "/model.safetensors", data, size);
      fq::mamba::read_safetensors(dir + "/model.safetensors");
    } else if (mode == 2) {
      fq::mamba::parse_config(std::string(reinterpret_cast<const char*>(data), size), "config.json");
    } else {
      put(dir + "/model.bin", data, size);
      fq::llama::load_checkpoint(dir + "/model.bin");
    }
  } catch (const fq::Error&) {
  }
  return 0;
}
