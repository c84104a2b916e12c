// Scalar reference of the matmul family: the executable specification (see matmul.h). Every other
// variant must produce the same bytes. Written for clarity, not speed.
//
// Packed layout (the caller's layout plus its parameters): bias i32 [N] (zeros when absent), then
// i8: mw i32 [N], w int8 [N][K]; i4: gs i32 [N], gm i32 [N][ng], w bytes [N][(K+1)/2];
// cb3/cb4: mw i32 [N], codebooks int8 [ceil(N/R)][ng][2^b], index bytes [N][ceil(K*b/8)].
// Tasks: one pass. requant / acc / residual: unit = (row m, block of 16 columns); dynamic: unit =
// one whole row (v kept in the worker's scratch between the max and the requantization).
#include <cstring>

#include "fq/kernels/fixed_point.h"
#include "fq/kernels/matmul.h"
#include "epilogue_scalar.h"

namespace fq::k {
namespace {

constexpr int kBlock = 16;

int64_t blocks(const MatmulShape& s) { return (s.n + kBlock - 1) / kBlock; }
int64_t wbytes(const MatmulShape& s) {
  if (is_codebook(s.format)) return codebook_bytes(s) + int64_t{s.n} * codebook_row_bytes(s);
  return s.format == WeightFormat::i4 ? int64_t{s.n} * ((s.k + 1) / 2) : int64_t{s.n} * s.k;
}
int64_t pbytes(const MatmulShape& s) {  // parameter block, before the weights
  const int64_t ng = matmul_groups(s);
  return 4 * int64_t{s.n} * (s.format == WeightFormat::i4 ? 2 + ng : 2);
}

// Codebook index k of a row (little-endian bitstream of b-bit indices).
int cb_index(const uint8_t* row, int64_t k, int b) {
  const int64_t bit = k * b;
  const unsigned two = row[bit >> 3] | (((bit & 7) + b > 8 ? row[(bit >> 3) + 1] : 0u) << 8);
  return int((two >> (bit & 7)) & ((1u << b) - 1));
}

size_t ref_packed_size(const MatmulShape& s) { return size_t(pbytes(s) + wbytes(s)); }

void ref_pack(const MatmulShape& s, const MatmulWeights& w, void* packed) {
  int32_t* p = static_cast<int32_t*>(packed);
  const int ng = matmul_groups(s);
  for (int n = 0; n < s.n; ++n) p[n] = w.bias ? w.bias[n] : 0;
  p += s.n;
  if (s.format != WeightFormat::i4) {
    for (int n = 0; n < s.n; ++n) p[n] = w.mult[n];
  } else {
    for (int n = 0; n < s.n; ++n) p[n] = w.gshift[n];
    for (int64_t i = 0; i < int64_t{s.n} * ng; ++i) p[s.n + i] = w.gmult[i];
  }
  uint8_t* out = static_cast<uint8_t*>(packed) + pbytes(s);
  std::memcpy(out, is_codebook(s.format) ? static_cast<const void*>(w.codebook) : w.w,
              size_t(is_codebook(s.format) ? codebook_bytes(s) : wbytes(s)));
  if (is_codebook(s.format))
    std::memcpy(out + codebook_bytes(s), w.w, size_t(int64_t{s.n} * codebook_row_bytes(s)));
}

// Signed 4-bit value of element k in an int4 row.
int q4(const uint8_t* row, int k) {
  const int nib = (row[k >> 1] >> ((k & 1) * 4)) & 15;
  return nib >= 8 ? nib - 16 : nib;
}

// v[m, n] of the contract.
int64_t value(const MatmulShape& s, const void* packed, const int8_t* a, int n) {
  const int32_t* bias = static_cast<const int32_t*>(packed);
  const int32_t* par = bias + s.n;
  const uint8_t* w = static_cast<const uint8_t*>(packed) + pbytes(s);
  if (s.format == WeightFormat::i8) {
    const int8_t* wr = reinterpret_cast<const int8_t*>(w) + int64_t{n} * s.k;
    uint32_t acc = uint32_t(bias[n]);  // i32, wrapping (see matmul.h)
    for (int k = 0; k < s.k; ++k) acc += uint32_t(int32_t{a[k]} * wr[k]);
    return int64_t{int32_t(acc)} * par[n];
  }
  if (is_codebook(s.format)) {
    const int b = codebook_bits(s.format), ng = matmul_groups(s);
    const int8_t* cb = reinterpret_cast<const int8_t*>(w) + int64_t{n / s.codebook_rows} * ng * (1 << b);
    const uint8_t* idx = w + codebook_bytes(s) + int64_t{n} * codebook_row_bytes(s);
    uint32_t acc = uint32_t(bias[n]);
    for (int k = 0; k < s.k; ++k)
      acc += uint32_t(int32_t{a[k]} * cb[(k / s.group) * (1 << b) + cb_index(idx, k, b)]);
    return int64_t{int32_t(acc)} * par[n];
  }
  const int ng = matmul_groups(s);
  const int32_t* gm = par + s.n + int64_t{n} * ng;
  const uint8_t* wr = w + int64_t{n} * ((s.k + 1) / 2);
  int64_t sum = bias[n];
  for (int g = 0; g < ng; ++g) {
    int32_t acc = 0;
    const int kend = (g + 1) * s.group < s.k ? (g + 1) * s.group : s.k;
    for (int k = g * s.group; k < kend; ++k) acc += int32_t{a[k]} * q4(wr, k);
    sum += int64_t{acc} * gm[g];
  }
  return sum * (int64_t{1} << par[n]);
}

int ref_num_passes(const MatmulShape&, const MatmulEpilogue&) { return 1; }
size_t ref_workspace_size(const MatmulShape&, const MatmulEpilogue&) { return 0; }
size_t ref_scratch_size(const MatmulShape& s, const MatmulEpilogue& e) {
  return e.op == MatmulOp::dynamic ? size_t(s.n) * 8 : 0;
}
int64_t ref_num_tasks(const MatmulShape& s, const MatmulEpilogue& e, int) {
  return e.op == MatmulOp::dynamic ? s.m : s.m * blocks(s);
}

void ref_run(const MatmulShape& s, const MatmulArgs& x, int, int64_t begin, int64_t end,
             void* scratch) {
  const MatmulEpilogue& e = x.e;
  int64_t vb[kBlock];
  for (int64_t t = begin; t < end; ++t) {
    if (e.op == MatmulOp::dynamic) {  // unit = row t
      int64_t* v = static_cast<int64_t*>(scratch);
      for (int n = 0; n < s.n; ++n) v[n] = value(s, x.packed, x.a + t * x.lda, n);
      epi::dynamic_row(x, t, v, s.n);
      continue;
    }
    const int64_t m = t / blocks(s);
    const int n0 = int(t % blocks(s)) * kBlock, n1 = n0 + kBlock < s.n ? n0 + kBlock : s.n;
    for (int n = n0; n < n1; ++n) vb[n - n0] = value(s, x.packed, x.a + m * x.lda, n);
    epi::columns(x, m, n0, n1, vb);
  }
}

}  // namespace

DecodedWeights::~DecodedWeights() { delete[] p_; }
int8_t* DecodedWeights::allocate(size_t bytes) {
  delete[] p_;
  p_ = new int8_t[bytes ? bytes : 1];
  return p_;
}

MatmulWeights matmul_as_i8(const MatmulShape& s, const MatmulWeights& w, DecodedWeights* buf) {
  if (!is_codebook(s.format)) return w;
  const int b = codebook_bits(s.format), ng = matmul_groups(s);
  int8_t* out8 = buf->allocate(size_t(int64_t{s.n} * s.k));
  for (int n = 0; n < s.n; ++n) {
    const uint8_t* idx = static_cast<const uint8_t*>(w.w) + int64_t{n} * codebook_row_bytes(s);
    const int8_t* cb = w.codebook + int64_t{n / s.codebook_rows} * ng * (1 << b);
    for (int k = 0; k < s.k; ++k)
      out8[int64_t{n} * s.k + k] = cb[(k / s.group) * (1 << b) + cb_index(idx, k, b)];
  }
  MatmulWeights out = w;
  out.w = out8;
  return out;
}

extern const MatmulKernel kMatmulScalar = {
    Isa::scalar,        "scalar",          ref_packed_size,  ref_pack,
    ref_num_passes,     ref_workspace_size, ref_scratch_size, ref_num_tasks,
    ref_run};

}  // namespace fq::k
