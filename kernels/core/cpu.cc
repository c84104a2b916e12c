#include "fq/kernels/cpu.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define FQ_X86 1
#elif defined(__aarch64__)
#include <sys/auxv.h>
#define FQ_ARM64 1
#endif

namespace fq::k {
namespace {

#if FQ_X86
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

// AMX tile data is off by default on Linux: a process must ask for it once.
bool request_amx_permission() {
  constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long bits = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bits) != 0) return false;
  return (bits >> kXfeatureXtiledata) & 1;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if FQ_X86
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0, 0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  __get_cpuid_count(1, 0, &a, &b, &c, &d);
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    const unsigned b7 = b, c7 = c, d7 = d;
    f.avx2 = os_avx && ((b7 >> 5) & 1);
    f.fma = os_avx && fma;
    f.bmi2 = (b7 >> 8) & 1;
    f.avx512f = os_avx512 && ((b7 >> 16) & 1);
    f.avx512dq = f.avx512f && ((b7 >> 17) & 1);
    f.avx512bw = f.avx512f && ((b7 >> 30) & 1);
    f.avx512vl = f.avx512f && ((b7 >> 31) & 1);
    f.avx512vnni = f.avx512f && ((c7 >> 11) & 1);
    f.vbmi = f.avx512f && ((c7 >> 1) & 1);
    if (const char* nv = std::getenv("FQ_NO_VBMI"); nv && *nv && std::string(nv) != "0") f.vbmi = false;
    const bool amx_bits = ((d7 >> 24) & 1) && ((d7 >> 25) & 1);  // AMX-TILE, AMX-INT8
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;              // XTILECFG, XTILEDATA
    if (amx_bits && os_amx && request_amx_permission()) f.amx_tile = f.amx_int8 = true;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    f.avxvnni = os_avx && ((a >> 4) & 1);
  }
  unsigned ext = __get_cpuid_max(0x80000000, nullptr);
  if (ext >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(0, 1);
  }
#elif FQ_ARM64
  const unsigned long hw = getauxval(AT_HWCAP);
  f.neon = true;  // mandatory on aarch64
  f.dotprod = (hw >> 20) & 1;  // HWCAP_ASIMDDP
  f.brand = "aarch64";
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2 && f.fma && f.bmi2;
    case Isa::avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
    case Isa::amx: return isa_supported(Isa::avx512) && f.amx_int8;
    case Isa::neon: return f.neon;
    case Isa::neondot: return f.neon && f.dotprod;
  }
  return false;
}

Isa best_isa() {
  for (Isa i : {Isa::amx, Isa::avx512, Isa::avx2, Isa::neondot, Isa::neon})
    if (isa_supported(i)) return i;
  return Isa::scalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::amx: return "amx";
    case Isa::neon: return "neon";
    case Isa::neondot: return "neondot";
  }
  return "?";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon, Isa::neondot})
    if (name == isa_name(i)) { *out = i; return true; }
  return false;
}

Isa isa_from_env() {
  const char* env = std::getenv("FQ_ISA");
  if (!env || !*env) return best_isa();
  Isa isa;
  if (!parse_isa(env, &isa))
    throw std::runtime_error(std::string("FQ_ISA=") + env +
                             ": unknown ISA (use scalar, avx2, avx512, amx, neon or neondot)");
  if (!isa_supported(isa))
    throw std::runtime_error(std::string("FQ_ISA=") + env + ": this CPU/OS cannot run it (best: " +
                             isa_name(best_isa()) + ")");
  return isa;
}

}  // namespace fq::k
