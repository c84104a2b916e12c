// fq_bench_models: end-to-end decode speed of the LLM graphs in build/models (the `models`
// target), one token per Session::run(), greedy from BOS like `fqrun generate --temp 0`.
// Rows: decode/<graph>/<isa>/threads:<t>, items_per_second = tokens/s (256 positions per
// iteration, state reset in between, argmax included). The float graph (FQ's float reference
// ops) is in the same run as the baseline; llama2.c's run.c is measured outside (docs/llm_int.md).
// Mamba (docs/mamba.md): decode rows for mamba-tiny-{f32,w8a8,w4a8}, and sequence rows
// sequence/<graph>/<isa>/threads:<t>: 2048 teacher-forced tokens from the zero state through the
// decode graph (one token per run) or the prefill graph (-prefill64: 64 tokens per run; the same
// bytes), items_per_second = tokens/s.
// RWKV (docs/rwkv.md): decode rows for rwkv-{5v1-730K,5v2-730K,6v0-3m,7v0-834K}-{f32,w8a8} (and
// the rwkvquant recipe's graphs of 5v2 and 6v0) and sequence
// rows over 512 bytes (rwkv.cpp's eval_sequence figure) through the token graph or the 64-row
// sequence-mode graph (-seq64).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fq/fq.h"
#include "fq/kernels/cpu.h"

namespace {

constexpr int kPositions = 256;

// Index of the largest logit (first on ties); f32 or integer logits (a positive row scale does
// not change the order).
int argmax(const fq::TensorView& v) {
  const int64_t n = v.shape.back();
  int best = 0;
  if (v.dtype == fq::DType::f32) {
    const float* p = static_cast<const float*>(v.data);
    for (int64_t i = 1; i < n; ++i) if (p[i] > p[best]) best = int(i);
  } else {
    const int16_t* p = static_cast<const int16_t*>(v.data);
    for (int64_t i = 1; i < n; ++i) if (p[i] > p[best]) best = int(i);
  }
  return best;
}

void decode(benchmark::State& state, std::shared_ptr<fq::Graph> g, std::string isa, int threads) {
  fq::Session s(*g, {threads, isa, false});
  int32_t* tok = static_cast<int32_t*>(s.input("tokens").data);
  int32_t* pos = static_cast<int32_t*>(s.input("pos").data);
  const fq::TensorView logits = s.output("logits");
  int64_t checksum = 0;
  for (auto _ : state) {
    s.reset_state();
    int t = 1;  // BOS
    for (int p = 0; p < kPositions; ++p) {
      *tok = t, *pos = p;
      s.run();
      t = argmax(logits);
      checksum += t;
    }
  }
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(state.iterations() * kPositions);
}

void sequence(benchmark::State& state, std::shared_ptr<fq::Graph> g, std::string isa, int threads, int n_tokens) {
  fq::Session s(*g, {threads, isa, false});
  fq::TensorView in = s.input("tokens");
  int32_t* tok = static_cast<int32_t*>(in.data);
  int32_t* pos = static_cast<int32_t*>(s.input("pos").data);
  const int64_t rows = in.shape[0], vocab = s.output("logits").shape.back();
  uint64_t r = 12345;
  std::vector<int32_t> text(static_cast<size_t>(n_tokens));
  for (int32_t& t : text) r = r * 6364136223846793005ull + 1442695040888963407ull, t = int32_t((r >> 33) % uint64_t(vocab));
  for (auto _ : state) {
    s.reset_state();
    for (int p = 0; p < n_tokens; p += int(rows)) {
      std::memcpy(tok, text.data() + p, sizeof(int32_t) * size_t(rows));
      *pos = p;
      s.run();
    }
  }
  state.SetItemsProcessed(state.iterations() * n_tokens);
}

std::vector<std::string> int_isas() {
  std::vector<std::string> isas;
  for (fq::k::Isa i : {fq::k::Isa::scalar, fq::k::Isa::avx2, fq::k::Isa::avx512, fq::k::Isa::neon,
                       fq::k::Isa::neondot})
    if (fq::k::isa_supported(i)) isas.push_back(fq::k::isa_name(i));
  return isas;
}

// The graph build/models/<name>.yaml, or nullptr (with a note) when it was not built.
std::shared_ptr<fq::Graph> load(const std::string& dir, const char* name) {
  try {
    return std::make_shared<fq::Graph>(fq::load_graph(dir + name + ".yaml"));
  } catch (const fq::Error& e) {
    std::fprintf(stderr, "skipping %s: %s\n", name, e.what());
    return nullptr;
  }
}

void register_all() {
  const std::string dir = std::string(FQ_BINARY_DIR) + "/models/";
  for (const char* name : {"stories260K-f32", "stories260K-w8a8", "stories260K-w4a8", "stories260K-w4a4",
                           "mamba-tiny-f32", "mamba-tiny-w8a8", "mamba-tiny-w4a8", "rwkv-5v1-730K-f32",
                           "rwkv-5v1-730K-w8a8", "rwkv-5v2-730K-f32", "rwkv-5v2-730K-w8a8", "rwkv-6v0-3m-f32",
                           "rwkv-6v0-3m-w8a8", "rwkv-7v0-834K-f32", "rwkv-7v0-834K-w8a8",
                           "rwkv-5v2-730K-rwkvquant", "rwkv-6v0-3m-rwkvquant"}) {
    const std::shared_ptr<fq::Graph> g = load(dir, name);
    if (!g) continue;
    const bool is_float = std::string(name).find("f32") != std::string::npos;
    // float graph: reference ops, the ISA does not matter
    const std::vector<std::string> isas = is_float ? std::vector<std::string>{""} : int_isas();
    for (const std::string& isa : isas)
      for (int t : {1, 2})
        benchmark::RegisterBenchmark(
            ("decode/" + std::string(name) + "/" + (isa.empty() ? "ref" : isa) + "/threads:" +
             std::to_string(t)).c_str(),
            decode, g, isa, t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
  }
  for (const char* name : {"mamba-tiny-f32", "mamba-tiny-w8a8", "mamba-tiny-w8a8-prefill64",
                           "mamba-tiny-w4a8", "mamba-tiny-w4a8-prefill64", "rwkv-5v2-730K-f32",
                           "rwkv-5v2-730K-w8a8", "rwkv-5v2-730K-w8a8-seq64", "rwkv-6v0-3m-f32",
                           "rwkv-6v0-3m-w8a8", "rwkv-6v0-3m-w8a8-seq64", "rwkv-7v0-834K-w8a8",
                           "rwkv-7v0-834K-w8a8-seq64"}) {
    const std::shared_ptr<fq::Graph> g = load(dir, name);
    if (!g) continue;
    const int n = std::string(name).rfind("rwkv", 0) == 0 ? 512 : 2048;
    const bool is_float = std::string(name).find("f32") != std::string::npos;
    for (const std::string& isa : is_float ? std::vector<std::string>{""} : int_isas())
      benchmark::RegisterBenchmark(
          ("sequence/" + std::string(name) + "/" + (isa.empty() ? "ref" : isa) + "/threads:1").c_str(),
          sequence, g, isa, 1, n)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
