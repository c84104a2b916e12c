// Scalar reference of the rwkv family: the executable specification (see fq/kernels/rwkv.h). Every
// other variant must produce the same bytes. Written for clarity, not speed.
#include "fq/kernels/rwkv.h"

#include <algorithm>

#include "rwkv_internal.h"

namespace fq::k {

// Four int64 rows, 64-byte aligned inside the block: two before quantize_row (variants may pipeline
// two rows), and the AVX-512 mix's mu and 2^16 - mu for a call of several rows.
size_t rwkv_scratch(int64_t n) { return size_t(64 + 4 * 8 * (llm::pad16(n < 0 ? 0 : n) + 16)); }

bool decode_mu(const uint8_t* codes, const int8_t* cb, int bits, int64_t group, RowScale s, int64_t n,
               int32_t* q16) {
  const bool scalar = bits == 8 && !cb, codebook = bits >= 2 && bits <= 4 && cb;
  if (!(scalar || codebook) || group < 1 || s.mant < 0 || s.mant > (1 << 15) || n < 0) return false;
  const int64_t sh = int64_t{s.exp} - 16;
  for (int64_t i = 0; i < n; ++i) {
    int64_t value;
    if (scalar) {
      value = int8_t(codes[i]);
    } else {
      // bits-bit index at bit i * bits, LSB first; it may straddle two bytes (bits 3), and the
      // second byte is read only when it does (the stream ends at ceil(n * bits / 8) bytes).
      const int64_t bit = i * bits, byte = bit >> 3;
      const int off = int(bit & 7);
      unsigned w = codes[byte];
      if (off + bits > 8) w |= unsigned{codes[byte + 1]} << 8;
      const unsigned c = (w >> off) & ((1u << bits) - 1);
      value = cb[(i / group) * (int64_t{1} << bits) + c];
    }
    q16[i] = int32_t(clamp64(llm::shs(value * s.mant, sh), INT32_MIN, INT32_MAX));
  }
  return true;
}

namespace rwkv {

void ref_mix(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(llm::align64(scratch));
  for (int64_t m = m0; m < m1; ++m) {
    const MixRow r = mix_row(a, m);
    for (int64_t i = 0; i < a.n; ++i) v[i] = mix_v(a, r, m, i);
    const QRow o = qrow(a.y, a.qmax, a.n, m);
    int d = 0;
    const int64_t A = quantize_row(v, a.n, a.qmax, o.q8, o.q16, &d);
    a.ys[m] = mix_scale(A, a.qmax, d, r);
  }
}

void ref_fixed(const RwkvFixedArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t i = 0; i < a.n; ++i) fixed_store(a, m * a.n + i, fixed_z(a, m, i));
}

void ref_neg_exp(const RwkvNegExpArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t i = 0; i < a.n; ++i) a.y[m * a.n + i] = neg_exp_y(neg_exp_t(a, m, i));
}

void ref_relu_sq(const RwkvUnaryArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(llm::align64(scratch));
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t i = 0; i < a.n; ++i) v[i] = relu_sq_v(a.x[m * a.n + i]);
    const QRow o = qrow(a.y, a.qmax, a.n, m);
    int d = 0;
    const int64_t A = quantize_row(v, a.n, a.qmax, o.q8, o.q16, &d);
    a.ys[m] = unit_scale(A, a.qmax, d, relu_sq_unit(a.xs[m]));
  }
}

void ref_mul(const RwkvMulArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(llm::align64(scratch));
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t i = 0; i < a.n; ++i) v[i] = int64_t{a.a[m * a.n + i]} * a.b[m * a.n + i];
    const QRow o = qrow(a.y, a.qmax, a.n, m);
    int d = 0;
    const int64_t A = quantize_row(v, a.n, a.qmax, o.q8, o.q16, &d);
    a.ys[m] = unit_scale(A, a.qmax, d, mul_unit(a.as[m], a.bs[m]));
  }
}

void ref_l2norm(const RwkvL2normArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      const int16_t* x = a.x + m * n + h0;
      const int32_t* c = a.c + h0;
      int16_t* y = a.y + m * n + h0;
      uint64_t A0 = 0;
      for (int64_t i = 0; i < N; ++i) A0 = std::max(A0, llm::mag64(x[i] * l2_c(c[i])));
      if (A0 == 0 || a.xs[m].mant == 0) {
        for (int64_t i = 0; i < N; ++i) y[i] = 0;
        continue;
      }
      const int d = l2_d(A0);
      uint64_t S = 0;
      for (int64_t i = 0; i < N; ++i) {
        const int64_t vp = llm::shs(x[i] * l2_c(c[i]), d);
        S += uint64_t(vp * vp);
      }
      const int64_t R = l2_R(S);
      for (int64_t i = 0; i < N; ++i) y[i] = l2_y(llm::shs(x[i] * l2_c(c[i]), d), R);
    }
  }
}

void ref_head_bonus(const RwkvBonusArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  int64_t* t = reinterpret_cast<int64_t*>(llm::align64(scratch));   // T, then W
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *y = a.y + m * n, *v = a.v + m * n, *p = a.p + m * n;
    uint64_t Tmax = 0;
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      int64_t s = 0;
      for (int64_t i = h0; i < h0 + N; ++i) s += p[i] * bonus_c(a.c[i]);
      for (int64_t i = h0; i < h0 + N; ++i) {
        t[i] = v[i] * s;
        Tmax = std::max(Tmax, llm::mag64(t[i]));
      }
    }
    const BonusRow r = bonus_row(a, m, Tmax);
    for (int64_t i = 0; i < n; ++i) t[i] = bonus_w(r, y[i], t[i]);
    const QRow o = qrow(a.out, a.qmax, n, m);
    int d = 0;
    const int64_t A = quantize_row(t, n, a.qmax, o.q8, o.q16, &d);
    a.os[m] = llm::scale_of_i(A, a.qmax, d, 1, r.e);
  }
}

}  // namespace rwkv

extern const RwkvKernel kRwkvScalar = {Isa::scalar,     "scalar",         rwkv::ref_mix, rwkv::ref_fixed,
                                       rwkv::ref_neg_exp, rwkv::ref_relu_sq, rwkv::ref_mul,
                                       rwkv::ref_l2norm,  rwkv::ref_head_bonus};

}  // namespace fq::k
