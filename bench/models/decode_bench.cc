// fq_bench_models: end-to-end decode speed of the LLM graphs in build/models (the `models`
// target), one token per Session::run(), greedy from BOS like `fqrun generate --temp 0`.
// Rows: decode/<graph>/<isa>/threads:<t>, items_per_second = tokens/s (256 positions per
// iteration, state reset in between, argmax included). The float graph (FQ's float reference
// ops) is in the same run as the baseline; llama2.c's run.c is measured outside (docs/llm_int.md).
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

void register_all() {
  const std::string dir = std::string(FQ_BINARY_DIR) + "/models/";
  for (const char* name : {"stories260K-f32", "stories260K-w8a8", "stories260K-w4a8", "stories260K-w4a4"}) {
    std::shared_ptr<fq::Graph> g;
    try {
      g = std::make_shared<fq::Graph>(fq::load_graph(dir + name + ".yaml"));
    } catch (const fq::Error& e) {
      std::fprintf(stderr, "skipping %s: %s\n", name, e.what());
      continue;
    }
    const bool is_float = std::string(name).find("f32") != std::string::npos;
    std::vector<std::string> isas = {""};  // float graph: reference ops, ISA does not matter
    if (!is_float) {
      isas.clear();
      for (fq::k::Isa i : {fq::k::Isa::scalar, fq::k::Isa::avx2, fq::k::Isa::avx512,
                           fq::k::Isa::neon, fq::k::Isa::neondot})
        if (fq::k::isa_supported(i)) isas.push_back(fq::k::isa_name(i));
    }
    for (const std::string& isa : isas)
      for (int t : {1, 2})
        benchmark::RegisterBenchmark(
            ("decode/" + std::string(name) + "/" + (isa.empty() ? "ref" : isa) + "/threads:" +
             std::to_string(t)).c_str(),
            decode, g, isa, t)
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
