// CPU feature detection and the ISA levels kernels are built for.
//
// An Isa is usable when the kernel was compiled for it, the CPU has the instructions, and the OS
// saves the registers (XCR0 for AVX/AVX-512, arch_prctl permission for AMX tiles). FQ_ISA
// (scalar|avx2|avx512|amx|neon|neondot) caps the level used by every kernel family, so CI can run
// each path on one machine; asking for a level the machine cannot run is an error, not a fallback.
#pragma once
#include <cstdint>
#include <string>

namespace fq::k {

// Ordered: a family picks its best variant at or below the chosen level on the same architecture.
enum class Isa : uint8_t { scalar = 0, avx2 = 1, avx512 = 2, amx = 3, neon = 16, neondot = 17 };

struct CpuFeatures {
  bool avx2 = false, fma = false, bmi2 = false, avxvnni = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool vbmi = false;                        // AVX512_VBMI (vpermb / vpermi2b): not part of any Isa level;
                                            // FQ_NO_VBMI=1 clears it, so CI tests the non-VBMI paths
  bool amx_tile = false, amx_int8 = false;  // CPU bits AND OS permission granted
  bool neon = false, dotprod = false;
  std::string brand;                        // CPU model string, for benchmark notes
};

const CpuFeatures& cpu_features();          // detected once, thread-safe
bool isa_supported(Isa isa);                // can this machine run code of this level?
Isa best_isa();                             // highest supported level
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);  // "scalar", "avx2", ...

// The level in force: FQ_ISA if set (throws std::runtime_error naming it when unknown or not
// supported by this machine), else best_isa(). Read once per call: cheap, call at prepare time.
Isa isa_from_env();

// True when `variant` may serve a request for level `want`: same architecture family and not above.
inline bool isa_fits(Isa variant, Isa want) {
  const bool arm_v = static_cast<uint8_t>(variant) >= 16, arm_w = static_cast<uint8_t>(want) >= 16;
  if (variant == Isa::scalar) return true;
  return arm_v == arm_w && static_cast<uint8_t>(variant) <= static_cast<uint8_t>(want);
}

}  // namespace fq::k
