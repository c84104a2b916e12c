// Matmul family: (1) the scalar reference equals an independent __int128 model of the contract in
// matmul.h; (2) every compiled variant this machine may run (test::runnable), plus, where AVX-512
// runs, the AMX variant on emulated tiles (amx_emulated.cc) and the AVX2 variant's AVX-VNNI path in
// EVEX form (avxvnni_evex.cc), produces the same bytes as the scalar reference over a battery of
// shapes, weight formats, epilogues, extreme values and task splits.
#include "fq/kernels/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "fq/kernels/fixed_point.h"
#include "kernel_test_util.h"

namespace fq::k {
#if defined(__x86_64__)
extern const MatmulKernel kMatmulAmxEmulated;   // amx.cc on software tiles (amx_emulated.cc)
extern const MatmulKernel kMatmulAvx2VnniEvex;  // avx2.cc's AVX-VNNI path, EVEX-encoded (avxvnni_evex.cc)
#endif
namespace {

using i128 = __int128;

uint8_t* test_align(uint8_t* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

enum class Fill { random, a_min_w_min, a_max_w_min, a_zero, alternating };
const char* fill_name(Fill f) {
  static const char* names[] = {"random", "a=-128,w=min", "a=127,w=min", "a=0", "alternating"};
  return names[int(f)];
}

struct Format {
  WeightFormat f;
  int group;
  int rows = 1;  // codebook: rows sharing a codebook
  std::string name() const { return format_name(f, group, rows); }
  static std::string format_name(WeightFormat f, int group, int rows = 1) {
    if (f == WeightFormat::i8) return "w8";
    return (f == WeightFormat::i4 ? "w4g" : f == WeightFormat::cb3 ? "cb3g" : "cb4g") + std::to_string(group) +
           (rows > 1 ? "r" + std::to_string(rows) : "");
  }
};
const Format kFormats[] = {{WeightFormat::i8, 0},   {WeightFormat::i4, 32},  {WeightFormat::i4, 64},
                           {WeightFormat::i4, 128}, {WeightFormat::cb3, 64}, {WeightFormat::cb4, 32},
                           {WeightFormat::cb3, 128}, {WeightFormat::cb3, 64, 16}, {WeightFormat::cb4, 32, 3},
                           {WeightFormat::cb3, 32, 32}};
constexpr int kNumFormats = int(sizeof(kFormats) / sizeof(kFormats[0]));

struct Epi {
  MatmulOp op;
  OutType t;
  bool in_place = false;  // residual only
};
const Epi kEpis[] = {{MatmulOp::acc, OutType::i32},       {MatmulOp::requant, OutType::i8},
                     {MatmulOp::requant, OutType::i16},   {MatmulOp::requant, OutType::i32},
                     {MatmulOp::dynamic, OutType::i8},    {MatmulOp::dynamic, OutType::i16},
                     {MatmulOp::residual, OutType::i16},  {MatmulOp::residual, OutType::i32, true}};
std::string epi_name(const Epi& e) {
  static const char* ops[] = {"acc", "requant", "dynamic", "residual"};
  static const char* ts[] = {"u8", "i8", "i16", "i32"};
  return std::string(ops[int(e.op)]) + "/" + ts[int(e.t)] + (e.in_place ? "/in-place" : "");
}
int bits(OutType t) { return t == OutType::i8 ? 8 : t == OutType::i16 ? 16 : 32; }
size_t osize(OutType t) { return t == OutType::i8 ? 1 : t == OutType::i16 ? 2 : 4; }

// ---- the independent model ----------------------------------------------------------------------

i128 floor_div_pow2(i128 x, int s) {  // floor(x / 2^s), by division
  const i128 d = i128{1} << s;
  i128 q = x / d;  // truncates toward 0
  if (x % d != 0 && x < 0) q -= 1;
  return q;
}
i128 round_shift(i128 v, int s) { return s == 0 ? v : floor_div_pow2(v + (i128{1} << (s - 1)), s); }
i128 sat(i128 v, int b) {
  const i128 hi = (i128{1} << (b - 1)) - 1, lo = -(i128{1} << (b - 1));
  return v < lo ? lo : v > hi ? hi : v;
}
int bitlen(i128 x) {
  int b = 0;
  while (x > 0) x /= 2, ++b;
  return b;
}

struct Problem {
  MatmulShape s;
  Fill fill = Fill::random;
  int64_t lda = 0;
  std::vector<int8_t> a;
  std::vector<uint8_t> w;  // int8 [N][K], int4 bytes [N][(K+1)/2] or codebook index bitstreams
  std::vector<int8_t> cb;  // codebooks [ceil(N/R)][ng][2^b]
  std::vector<int32_t> mult, bias;
  std::vector<int16_t> gm;
  std::vector<int8_t> gs;
  bool with_bias = true;
  std::vector<int64_t> v;  // model v [M][N]
  std::string describe() const {
    std::ostringstream os;
    os << s.m << "x" << s.n << "x" << s.k << " "
       << Format::format_name(s.format, s.group, s.codebook_rows) << " "
       << fill_name(fill) << (with_bias ? "" : " no-bias");
    return os.str();
  }
  int wq(int n, int k) const {  // weight value, decoded independently of the kernels
    if (s.format == WeightFormat::i8) return int8_t(w[size_t(n) * s.k + k]);
    if (is_codebook(s.format)) {  // index bits one at a time from the row's bitstream
      const int b = codebook_bits(s.format), ng = (s.k + s.group - 1) / s.group;
      const size_t row = size_t((int64_t{s.k} * b + 7) / 8) * size_t(n);
      int idx = 0;
      for (int i = 0; i < b; ++i) {
        const int64_t bit = int64_t{k} * b + i;
        idx |= ((w[row + size_t(bit / 8)] >> (bit % 8)) & 1) << i;
      }
      return cb[(size_t(n / s.codebook_rows) * ng + size_t(k / s.group)) * (size_t{1} << b) + size_t(idx)];
    }
    const uint8_t byte = w[size_t(n) * ((s.k + 1) / 2) + k / 2];
    const uint8_t nib = k % 2 ? byte >> 4 : byte & 15;
    return int8_t(uint8_t(nib << 4)) / 16;
  }
};

// v[m,n] per the contract, in 128-bit arithmetic.
i128 model_v(const Problem& p, int64_t m, int n) {
  const MatmulShape& s = p.s;
  const int8_t* a = p.a.data() + m * p.lda;
  const i128 bias = p.with_bias ? p.bias[n] : 0;
  if (s.format != WeightFormat::i4) {  // int8, or codebook (decoded by wq)
    i128 acc = bias;
    for (int k = 0; k < s.k; ++k) acc += i128{a[k]} * p.wq(n, k);
    const int32_t wrapped = int32_t(uint32_t(uint64_t(int64_t(acc))));  // i32 modulo 2^32
    return i128{wrapped} * p.mult[n];
  }
  const int ng = (s.k + s.group - 1) / s.group;
  i128 sum = bias;
  for (int g = 0; g < ng; ++g) {
    i128 acc = 0;
    for (int k = g * s.group; k < std::min(s.k, (g + 1) * s.group); ++k) acc += i128{a[k]} * p.wq(n, k);
    sum += acc * p.gm[size_t(n) * ng + g];
  }
  return sum * (i128{1} << p.gs[n]);
}

// Random weights and scales, with |v| < 2^62 (the contract's precondition) by construction.
Problem make_problem(const MatmulShape& s, Fill fill, test::Rng& r) {
  Problem p;
  p.s = s;
  p.fill = fill;
  p.lda = s.k + test::uniform(r, 0, 5);
  p.a.resize(size_t(std::max<int64_t>(1, s.m * p.lda)));
  const bool i4 = s.format == WeightFormat::i4;
  const int wmin = i4 ? -8 : -128, wmax = i4 ? 7 : 127;
  for (int64_t m = 0; m < s.m; ++m)
    for (int64_t k = 0; k < p.lda; ++k) {
      int v = int(test::uniform(r, -128, 127));
      if (fill == Fill::a_min_w_min) v = -128;
      if (fill == Fill::a_max_w_min) v = 127;
      if (fill == Fill::a_zero) v = 0;
      if (fill == Fill::alternating) v = (m + k) % 2 ? 127 : -128;
      p.a[size_t(m * p.lda + k)] = int8_t(v);
    }
  auto wval = [&](int n, int k) {
    switch (fill) {
      case Fill::a_min_w_min: case Fill::a_max_w_min: return wmin;
      case Fill::alternating: return (n + k) % 3 ? wmin : wmax;
      default: return int(test::uniform(r, wmin, wmax));
    }
  };
  if (is_codebook(s.format)) {  // random indices (and unused tail bits); codebook entries as weights
    const int b = codebook_bits(s.format), ng = (s.k + s.group - 1) / s.group;
    const int64_t row = (int64_t{s.k} * b + 7) / 8;
    p.w.resize(size_t(s.n * row));
    for (auto& x : p.w) x = uint8_t(test::uniform(r, 0, 255));
    const int nb = (s.n + s.codebook_rows - 1) / s.codebook_rows;  // blocks of rows
    p.cb.resize(size_t(nb) * ng << b);
    for (int n = 0; n < nb; ++n)
      for (size_t j = 0; j < (size_t(ng) << b); ++j)
        p.cb[(size_t(n) * ng << b) + j] = int8_t(wval(n, int(j)));
  } else if (!i4) {
    p.w.resize(size_t(s.n) * s.k);
    for (int n = 0; n < s.n; ++n)
      for (int k = 0; k < s.k; ++k) p.w[size_t(n) * s.k + k] = uint8_t(int8_t(wval(n, k)));
  } else {
    const int row = (s.k + 1) / 2;
    p.w.assign(size_t(s.n) * row, 0);
    for (int n = 0; n < s.n; ++n) {
      for (int k = 0; k < s.k; ++k)
        p.w[size_t(n) * row + k / 2] |= uint8_t((wval(n, k) & 15) << (k % 2 * 4));
      if (s.k % 2) p.w[size_t(n) * row + row - 1] |= uint8_t(test::uniform(r, 0, 15) << 4);  // unused nibble
    }
  }
  p.with_bias = test::uniform(r, 0, 3) != 0;
  p.bias.resize(size_t(s.n));
  const bool big = fill != Fill::random;  // extreme fills also get extreme bias / multipliers
  for (auto& b : p.bias)
    b = int32_t(big ? test::uniform(r, 0, 1) ? INT32_MAX - test::uniform(r, 0, 3) : INT32_MIN + test::uniform(r, 0, 3)
                    : test::uniform(r, -(1 << 20), 1 << 20));
  if (!i4) {
    p.mult.resize(size_t(s.n));
    for (auto& m : p.mult) {
      const int e = int(test::uniform(r, 0, 29));
      m = int32_t(test::uniform(r, -(int64_t{1} << e), int64_t{1} << e));
      if (big) m = test::uniform(r, 0, 1) ? (1 << 30) - 1 : -(1 << 30);
    }
  } else {
    const int ng = (s.k + s.group - 1) / s.group;
    p.gm.resize(size_t(s.n) * ng);
    for (auto& g : p.gm) g = int16_t(big ? (test::uniform(r, 0, 1) ? 32767 : -32768) : test::uniform(r, -32768, 32767));
    p.gs.assign(size_t(s.n), 0);
  }
  p.v.assign(size_t(s.m) * s.n, 0);
  for (int n = 0; n < s.n; ++n) {
    i128 vmax = 0;
    for (int64_t m = 0; m < s.m; ++m) {
      const i128 v = model_v(p, m, n);
      vmax = std::max(vmax, v < 0 ? -v : v);
      p.v[size_t(m * s.n + n)] = int64_t(v);
    }
    if (i4) {  // the largest admissible left shift, or a random one below it
      const int room = std::min(30, 61 - bitlen(vmax));
      REQUIRE(room >= 0);
      const int gs = fill != Fill::random ? room : int(test::uniform(r, 0, room));
      p.gs[size_t(n)] = int8_t(gs);
      for (int64_t m = 0; m < s.m; ++m) p.v[size_t(m * s.n + n)] *= int64_t{1} << gs;
    }
  }
  for (int64_t v : p.v) REQUIRE((v < (int64_t{1} << 62) && v > -(int64_t{1} << 62)));
  return p;
}

// Epilogue inputs and the output buffer; `y` keeps guard columns (ldy > N) to catch stray writes.
struct Run {
  Epi epi;
  std::vector<int8_t> shift;
  std::vector<uint8_t> residual, y;
  int64_t ldy = 0, ldr = 0;
  std::vector<int8_t> row_shift;
};

Run make_run(const Problem& p, const Epi& epi, test::Rng& r) {
  Run u;
  u.epi = epi;
  const MatmulShape& s = p.s;
  u.ldy = s.n + test::uniform(r, 0, 3);
  u.y.assign(size_t(std::max<int64_t>(1, s.m * u.ldy)) * osize(epi.t), 0x5a);
  u.row_shift.assign(size_t(std::max<int64_t>(1, s.m)), 0x77);
  if (epi.op == MatmulOp::requant || epi.op == MatmulOp::residual) {
    u.shift.resize(size_t(s.n));
    for (int n = 0; n < s.n; ++n) {  // spread the outputs around the type's range
      i128 vmax = 0;
      for (int64_t m = 0; m < s.m; ++m) vmax = std::max<i128>(vmax, std::abs(p.v[size_t(m * s.n + n)]));
      const int sh = bitlen(vmax) - bits(epi.t) + int(test::uniform(r, -2, 3));
      u.shift[size_t(n)] = int8_t(std::clamp(sh, 0, 62));
    }
  }
  if (epi.op == MatmulOp::residual) {
    const int64_t hi = (int64_t{1} << (bits(epi.t) - 1)) - 1;
    u.ldr = epi.in_place ? u.ldy : s.n + test::uniform(r, 0, 2);
    std::vector<uint8_t>& dst = epi.in_place ? u.y : u.residual;
    if (!epi.in_place) dst.assign(size_t(std::max<int64_t>(1, s.m * u.ldr)) * osize(epi.t), 0);
    for (int64_t m = 0; m < s.m; ++m)
      for (int n = 0; n < s.n; ++n) {
        int64_t v = test::uniform(r, -hi - 1, hi);
        if (test::uniform(r, 0, 7) == 0) v = test::uniform(r, 0, 1) ? hi : -hi - 1;
        uint8_t* at = dst.data() + size_t(m * u.ldr + n) * osize(epi.t);
        if (epi.t == OutType::i16) { const int16_t x = int16_t(v); std::memcpy(at, &x, 2); }
        else { const int32_t x = int32_t(v); std::memcpy(at, &x, 4); }
      }
  }
  return u;
}

int64_t load_out(OutType t, const uint8_t* base, int64_t i) {
  if (t == OutType::i8) return int8_t(base[i]);
  if (t == OutType::i16) { int16_t x; std::memcpy(&x, base + 2 * i, 2); return x; }
  int32_t x; std::memcpy(&x, base + 4 * i, 4); return x;
}

// The model's output for a run (the guard columns keep their initial bytes).
Run model_output(const Problem& p, Run u) {
  const MatmulShape& s = p.s;
  const OutType t = u.epi.op == MatmulOp::acc ? OutType::i32 : u.epi.t;
  const std::vector<uint8_t> res = u.epi.in_place ? u.y : u.residual;
  for (int64_t m = 0; m < s.m; ++m) {
    int sh = 0;
    if (u.epi.op == MatmulOp::dynamic) {
      i128 vmax = 0;
      for (int n = 0; n < s.n; ++n) vmax = std::max<i128>(vmax, std::abs(p.v[size_t(m * s.n + n)]));
      sh = std::max(0, bitlen(vmax) - (bits(t) - 1));
      u.row_shift[size_t(m)] = int8_t(sh);
    }
    for (int n = 0; n < s.n; ++n) {
      const i128 v = p.v[size_t(m * s.n + n)];
      i128 y = 0;
      switch (u.epi.op) {
        case MatmulOp::acc: y = sat(v, 32); break;
        case MatmulOp::requant: y = sat(round_shift(v, u.shift[size_t(n)]), bits(t)); break;
        case MatmulOp::dynamic: y = sat(round_shift(v, sh), bits(t)); break;
        case MatmulOp::residual:
          y = sat(load_out(t, res.data(), m * u.ldr + n) + round_shift(v, u.shift[size_t(n)]), bits(t));
          break;
      }
      uint8_t* at = u.y.data() + size_t(m * u.ldy + n) * osize(t);
      if (t == OutType::i8) *at = uint8_t(int8_t(y));
      else if (t == OutType::i16) { const int16_t x = int16_t(y); std::memcpy(at, &x, 2); }
      else { const int32_t x = int32_t(y); std::memcpy(at, &x, 4); }
    }
  }
  return u;
}

enum class Split { all, one_by_one_reversed, random_ranges };

// Runs a kernel: pack, then every pass, its units split as asked. Scratch and workspace start as
// garbage so a kernel that reads before writing shows up.
Run run_kernel(const MatmulKernel& kern, const Problem& p, Run u, Split split, test::Rng& r) {
  MatmulShape s = p.s;
  std::vector<uint8_t> packed(kern.packed_size(s) + 64);
  uint8_t* pk = test_align(packed.data());
  MatmulWeights w;
  w.w = p.w.data(), w.mult = p.mult.data(), w.gmult = p.gm.data(), w.gshift = p.gs.data();
  w.codebook = p.cb.data();
  w.bias = p.with_bias ? p.bias.data() : nullptr;
  kern.pack(s, w, pk);
  MatmulArgs x;
  x.a = p.a.data(), x.lda = p.lda, x.packed = pk, x.y = u.y.data(), x.ldy = u.ldy;
  x.e.op = u.epi.op, x.e.out_type = u.epi.op == MatmulOp::acc ? OutType::i32 : u.epi.t;
  x.e.shift = u.shift.data(), x.e.row_shift = u.row_shift.data();
  x.e.residual = u.epi.in_place ? static_cast<const void*>(u.y.data()) : u.residual.data();
  x.e.ldr = u.ldr;
  std::vector<uint8_t> ws(kern.workspace_size(s, x.e) + 64, 0xcd), scratch(kern.scratch_size(s, x.e) + 64, 0xcd);
  x.workspace = test_align(ws.data());
  const int passes = kern.num_passes(s, x.e);
  REQUIRE(passes >= 1);
  for (int pass = 0; pass < passes; ++pass) {
    const int64_t n = kern.num_tasks(s, x.e, pass);
    REQUIRE(n >= 0);
    switch (split) {
      case Split::all: kern.run(s, x, pass, 0, n, test_align(scratch.data())); break;
      case Split::one_by_one_reversed:
        for (int64_t t = n - 1; t >= 0; --t) {
          std::fill(scratch.begin(), scratch.end(), uint8_t(t * 37));
          kern.run(s, x, pass, t, t + 1, test_align(scratch.data()));
        }
        break;
      case Split::random_ranges: {
        std::vector<std::pair<int64_t, int64_t>> ranges;
        for (int64_t b = 0; b < n;) {
          const int64_t e = std::min(n, b + test::uniform(r, 1, 5));
          ranges.push_back({b, e});
          b = e;
        }
        std::shuffle(ranges.begin(), ranges.end(), r);
        for (auto [b, e] : ranges) kern.run(s, x, pass, b, e, test_align(scratch.data()));
        break;
      }
    }
  }
  if (u.epi.op != MatmulOp::dynamic) u.row_shift.assign(u.row_shift.size(), 0x77);  // untouched
  return u;
}

// The variants to compare with the scalar reference on this machine.
std::vector<const MatmulKernel*> variants() {
  std::vector<const MatmulKernel*> out;
  size_t n = 0;
  const MatmulKernel* const* all = matmul_kernels(&n);
  for (size_t i = 1; i < n; ++i)
    if (test::runnable(all[i]->isa, all[i]->name)) out.push_back(all[i]);
#if defined(__x86_64__)
  if (isa_supported(Isa::avx512)) {
    out.push_back(&kMatmulAmxEmulated);
    out.push_back(&kMatmulAvx2VnniEvex);
  } else {
    WARN("skipping amx on emulated tiles and avx2's AVX-VNNI path in EVEX form: need AVX-512");
  }
#endif
  return out;
}

const MatmulKernel& scalar() { return test::scalar_variant(matmul_kernels); }

// Compares every variant with scalar (and scalar with the model when `model`). Returns comparisons.
int check_all(const Problem& p, const std::vector<const MatmulKernel*>& vars, test::Rng& r,
              bool model, int& split_counter, std::initializer_list<Epi> epis = {}) {
  int compared = 0;
  const std::vector<Epi> list = epis.size() ? std::vector<Epi>(epis) : std::vector<Epi>(std::begin(kEpis), std::end(kEpis));
  for (const Epi& epi : list) {
    const Run u = make_run(p, epi, r);
    const Run want = run_kernel(scalar(), p, u, Split::all, r);
    if (model) {
      const Run m = model_output(p, u);
      INFO("scalar vs model on " << p.describe() << ", " << epi_name(epi));
      REQUIRE(want.y == m.y);
      if (epi.op == MatmulOp::dynamic) REQUIRE(want.row_shift == m.row_shift);
    }
    for (const MatmulKernel* v : vars) {
      const Split split = Split(split_counter++ % 3);
      const Run got = run_kernel(*v, p, u, split, r);
      INFO(v->name << " on " << p.describe() << ", " << epi_name(epi) << ", split " << int(split));
      REQUIRE(got.y == want.y);
      REQUIRE(got.row_shift == want.row_shift);
      ++compared;
    }
  }
  return compared;
}

MatmulShape shape(int64_t m, int n, int k, const Format& f) {
  MatmulShape s;
  s.m = m, s.n = n, s.k = k, s.format = f.f, s.group = f.group, s.codebook_rows = f.rows;
  return s;
}

}  // namespace

TEST_CASE("matmul: the scalar reference equals an int128 model of the contract", "[matmul]") {
  test::Rng r(1);
  int cases = 0, splits = 0;
  for (const Format& f : kFormats)
    for (int64_t m : {1, 3, 17})
      for (int n : {1, 17, 64})
        for (int k : {1, 31, 65, 172}) {
          check_all(make_problem(shape(m, n, k, f), Fill::random, r), {}, r, true, splits);
          ++cases;
        }
  for (const Format& f : kFormats)
    for (Fill fill : {Fill::a_min_w_min, Fill::a_max_w_min, Fill::a_zero, Fill::alternating}) {
      check_all(make_problem(shape(5, 33, 129, f), fill, r), {}, r, true, splits);
      ++cases;
    }
  REQUIRE(cases == kNumFormats * 3 * 3 * 4 + kNumFormats * 4);
}

TEST_CASE("matmul: every variant equals the scalar reference over the shape battery", "[matmul]") {
  const auto vars = variants();
  test::Rng r(2);
  int cases = 0, compared = 0, splits = 0;
  for (const Format& f : kFormats)
    for (int64_t m : {1, 2, 3, 7, 16, 17, 33, 128})
      for (int n : {1, 15, 16, 17, 64, 100})
        for (int k : {1, 3, 4, 31, 64, 65, 172, 256}) {
          const Problem p = make_problem(shape(m, n, k, f), Fill::random, r);
#if defined(FQ_TEST_SLICE)
          // two of the eight epilogues per shape, in turn: every format meets every epilogue on a
          // quarter of the shapes (CMakeLists.txt)
          const int e = 2 * (cases % 4);
          compared += check_all(p, vars, r, false, splits, {kEpis[e], kEpis[e + 1]});
#else
          compared += check_all(p, vars, r, false, splits);
#endif
          ++cases;
        }
  REQUIRE(cases == kNumFormats * 8 * 6 * 8);
#if defined(FQ_TEST_SLICE)
  REQUIRE(compared == cases * 2 * int(vars.size()));
#else
  REQUIRE(compared == cases * 8 * int(vars.size()));
#endif
}

TEST_CASE("matmul: extreme values (saturation, wrap-around, maximal scales)", "[matmul]") {
  const auto vars = variants();
  test::Rng r(3);
  int cases = 0, splits = 0;
  for (const Format& f : kFormats)
    for (Fill fill : {Fill::a_min_w_min, Fill::a_max_w_min, Fill::a_zero, Fill::alternating})
      for (auto [m, n, k] : {std::tuple<int64_t, int, int>{1, 100, 256}, {7, 17, 65}, {33, 64, 172}, {70, 40, 300}}) {
        check_all(make_problem(shape(m, n, k, f), fill, r), vars, r, true, splits);
        ++cases;
      }
  REQUIRE(cases == kNumFormats * 4 * 4);
}

TEST_CASE("matmul: large shapes, every task split (two-pass and fused dynamic, many chunks)", "[matmul]") {
  const auto vars = variants();
  test::Rng r(4);
  int cases = 0;
  for (const Format& f : kFormats)
    for (auto [m, n, k] : {std::tuple<int64_t, int, int>{1, 1000, 300}, {1, 4100, 64}, {4, 700, 520},
                           {65, 300, 128}, {130, 520, 96}, {300, 64, 576}, {129, 2100, 64},
                           {20, 130, 1100}, {1, 70, 2500}}) {
      const Problem p = make_problem(shape(m, n, k, f), Fill::random, r);
      for (int split = 0; split < 3; ++split) {
#if defined(FQ_TEST_SLICE)
        if (split != cases % 3) continue;  // one split per shape, in turn (CMakeLists.txt)
#endif
        int s = split;
        check_all(p, vars, r, false, s, {{MatmulOp::dynamic, OutType::i8}, {MatmulOp::requant, OutType::i8},
                                         {MatmulOp::residual, OutType::i16, true}});
      }
      ++cases;
    }
  REQUIRE(cases == kNumFormats * 9);
}

TEST_CASE("matmul: the same bytes for every split of the units", "[matmul]") {
  // check_all cycles splits over variants; here each variant runs all three on one problem.
  const auto vars = variants();
  test::Rng r(5);
  for (const MatmulKernel* v : vars)
    for (auto [m, n, k] : {std::tuple<int64_t, int, int>{1, 2000, 100}, {100, 300, 200}}) {
      const Problem p = make_problem(shape(m, n, k, kFormats[0]), Fill::random, r);
      for (const Epi& epi : kEpis) {
        const Run u = make_run(p, epi, r);
        const Run a = run_kernel(*v, p, u, Split::all, r);
        for (Split s : {Split::one_by_one_reversed, Split::random_ranges}) {
          INFO(v->name << " " << p.describe() << " " << epi_name(epi) << " split " << int(s));
          const Run b = run_kernel(*v, p, u, s, r);
          REQUIRE(a.y == b.y);
          REQUIRE(a.row_shift == b.row_shift);
        }
      }
    }
}

TEST_CASE("matmul: dispatch honours FQ_ISA and lists scalar first; units split GEMV and GEMM", "[matmul]") {
  test::check_dispatch(matmul_kernels, matmul_kernel, "matmul");
  MatmulEpilogue e;
  // SIMD variants that run here (the planner of another ISA's variant is built for that ISA):
  // enough units for 2+ threads, and few for a small GEMV
  for (const MatmulKernel* k : test::tested_variants(matmul_kernels)) {
    INFO(k->name);
    CHECK(k->num_tasks(shape(1, 4096, 4096, kFormats[0]), e, 0) >= 16);
    CHECK(k->num_tasks(shape(128, 4096, 4096, kFormats[0]), e, 0) >= 8);
    CHECK(k->num_tasks(shape(3136, 64, 576, kFormats[0]), e, 0) >= 8);
    CHECK(k->num_tasks(shape(1, 64, 64, kFormats[0]), e, 0) <= 4);
    CHECK(k->num_tasks(shape(0, 64, 64, kFormats[0]), e, 0) == 0);
  }
  // FQ_NO_VBMI=1 (.ci/run) hides VBMI, so the one-row cb3 GEMV takes its int8-block path here too
  const char* nv = std::getenv("FQ_NO_VBMI");
  if (nv && *nv && std::string(nv) != "0") CHECK_FALSE(cpu_features().vbmi);
}

}  // namespace fq::k

namespace fq::k {
namespace {

// Quantization error of DI-MatMul's dynamic per-token requantization (docs/accuracy.md): per row,
// y * 2^sh[m] against the exact v, and against an ideal float per-token quantizer with scale
// max|v| / (2^(b-1) - 1) and round-to-nearest. Float is fine here: it is test code, not a kernel.
struct DynErr {
  double max_lsb = 0, sqnr_db = 0, ideal_sqnr_db = 0;
  int64_t rows = 0;
};

DynErr dynamic_error(OutType t, int64_t m, int n, int k, test::Rng& r) {
  MatmulShape s;
  s.m = m, s.n = n, s.k = k;
  std::normal_distribution<double> gauss(0.0, 1.0);
  auto q = [&](double sigma) { return int8_t(std::clamp(std::lround(gauss(r) * sigma), -127L, 127L)); };
  std::vector<int8_t> a(size_t(m * k)), w(size_t(n) * k);
  for (auto& x : a) x = q(32);  // activations: per-token scale puts |max| near 127
  for (auto& x : w) x = q(24);
  std::vector<int32_t> mult(static_cast<size_t>(n));
  for (auto& x : mult) x = int32_t(test::uniform(r, 1 << 12, 1 << 14));  // per-channel scale spread
  MatmulWeights mw;
  mw.w = w.data(), mw.mult = mult.data();
  size_t count = 0;
  const MatmulKernel& kern = *matmul_kernels(&count)[0];
  std::vector<uint8_t> packed(kern.packed_size(s)), y(size_t(m) * n * osize(t));
  std::vector<int8_t> rs(static_cast<size_t>(m));
  std::vector<int32_t> acc(size_t(m) * n);
  kern.pack(s, mw, packed.data());
  MatmulArgs x;
  x.a = a.data(), x.lda = k, x.packed = packed.data(), x.ldy = n;
  std::vector<uint8_t> scratch(kern.scratch_size(s, x.e) + 64 + size_t(n) * 8);
  x.e.op = MatmulOp::acc, x.e.out_type = OutType::i32, x.y = acc.data();  // acc * 1 = v / mw
  std::vector<int32_t> ones(size_t(n), 1);
  MatmulWeights mw1 = mw;
  mw1.mult = ones.data();
  std::vector<uint8_t> packed1(kern.packed_size(s));
  kern.pack(s, mw1, packed1.data());
  x.packed = packed1.data();
  matmul_run_all(kern, s, x, scratch.data());
  x.packed = packed.data(), x.e.op = MatmulOp::dynamic, x.e.out_type = t, x.y = y.data(), x.e.row_shift = rs.data();
  matmul_run_all(kern, s, x, scratch.data());
  DynErr d;
  double sq = 0, se = 0, si = 0;
  const double qmax = t == OutType::i8 ? 127 : 32767;
  for (int64_t i = 0; i < m; ++i) {
    double vmax = 0;
    for (int j = 0; j < n; ++j) vmax = std::max(vmax, std::abs(double(acc[size_t(i * n + j)]) * mult[size_t(j)]));
    const double lsb = std::ldexp(1.0, rs[size_t(i)]), scale = vmax / qmax;
    for (int j = 0; j < n; ++j) {
      const double v = double(acc[size_t(i * n + j)]) * mult[size_t(j)];
      const double yq = double(load_out(t, y.data(), i * n + j)) * lsb;
      const double ideal = std::clamp(std::nearbyint(v / scale), -qmax, qmax) * scale;
      d.max_lsb = std::max(d.max_lsb, std::abs(yq - v) / lsb);
      sq += v * v, se += (yq - v) * (yq - v), si += (ideal - v) * (ideal - v);
    }
  }
  d.rows = m;
  d.sqnr_db = 10 * std::log10(sq / se);
  d.ideal_sqnr_db = 10 * std::log10(sq / si);
  return d;
}

}  // namespace

TEST_CASE("matmul: DI-MatMul dynamic requantization error (bounds in docs/accuracy.md)", "[matmul]") {
  test::Rng r(6);
  for (OutType t : {OutType::i8, OutType::i16}) {
    const DynErr d = dynamic_error(t, 256, 1024, 256, r);
    std::printf("dynamic %s: %ld rows x 1024: max error %.3f LSB, SQNR %.2f dB (ideal float per-token scale %.2f dB)\n",
                t == OutType::i8 ? "i8" : "i16", long(d.rows), d.max_lsb, d.sqnr_db, d.ideal_sqnr_db);
    CHECK(d.max_lsb <= 1.0);                          // 0.5 LSB rounding, 1 LSB at the saturated top
    CHECK(d.sqnr_db >= d.ideal_sqnr_db - 6.1);        // a power-of-two scale loses at most 1 bit
  }
}

}  // namespace fq::k
