// AVX2 variant of the llm family: the same bytes as ref.cc for every input the contract allows.
// Vectorized: attention_heads across positions (gathered dot products, logits, exp_q, c_u and the
// P.V accumulation in int64 lanes), the attention cache write and attention_out, rmsnorm, swiglu
// (avx2h::vsig), rope, residual_add, embedding, softmax, layernorm and exp (64-bit lanes;
// arithmetic shifts, min / max and the quantizer's multiply from x86_avx2_helpers.h); hadamard's
// H_b products (vpmaddwd) and butterflies in int32.
#include <immintrin.h>

#include <cstring>

#include "llm_internal.h"
#include "x86_avx2_helpers.h"

namespace fq::k {
namespace llm {
namespace {

using namespace avx2h;  // s64, minv / maxv (64-bit lanes), ...

// ---- lane helpers (the 64-bit min / max / abs / shifts are avx2h's) -----------------------------

inline __m128i lo32(V v) {  // the low dword of each 64-bit lane
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
}
inline int64_t hsum64(V v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(_mm_add_epi64(s, _mm_unpackhi_epi64(s, s)));
}
inline V load4_i16(const int16_t* p) { return _mm256_cvtepi16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline V load4_i32(const int32_t* p) { return _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline void store4(int64_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<V*>(p), v); }
inline int64_t hmax64(V v) {
  alignas(32) int64_t b[4];
  _mm256_store_si256(reinterpret_cast<V*>(b), v);
  const int64_t x = b[0] > b[1] ? b[0] : b[1], y = b[2] > b[3] ? b[2] : b[3];
  return x > y ? x : y;
}

// quantize_row of int64 values with A0 = max|v| known (avx2h::vquant_gen).
int64_t vquant(const int64_t* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout, uint64_t A0) {
  return vquant_gen(
      n, qmax, QRow{q8, q16}, A0, dout, [v](int64_t i) { return _mm256_loadu_si256(reinterpret_cast<const V*>(v + i)); },
      [v](int64_t i) { return v[i]; });
}

// ---- rmsnorm / swiglu ---------------------------------------------------------------------------
// 4 elements per step in 64-bit lanes, the last n mod 4 by the scalar element; then vquant.

void x_rmsnorm(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* xs = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d;
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t* x = a.x + m * D;
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * D : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * D;
    __m256i mx = _mm256_setzero_si256();  // max |x| over 8 dword lanes (|INT32_MIN| = 2^31 unsigned)
    int64_t i = 0;
    for (; i + 8 <= D; i += 8)
      mx = _mm256_max_epu32(mx, _mm256_abs_epi32(_mm256_loadu_si256(reinterpret_cast<const V*>(x + i))));
    alignas(32) uint32_t m8[8];
    _mm256_store_si256(reinterpret_cast<V*>(m8), mx);
    uint64_t A0 = 0;
    for (uint32_t v : m8) A0 = v > A0 ? v : A0;
    for (; i < D; ++i) A0 = mag64(x[i]) > A0 ? mag64(x[i]) : A0;
    if (A0 == 0) {
      for (i = 0; i < D; ++i) {
        if (y8) y8[i] = 0; else y16[i] = 0;
      }
      a.ys[m] = RowScale{};
      continue;
    }
    const int c = bitlen64(A0) - 24;  // |xs| <= 2^24: xs^2 by vpmuldq
    V ss = zero(), mx2 = zero();
    for (i = 0; i + 4 <= D; i += 4) {
      const V v = vshift_uniform(load4_i32(x + i), c);
      store4(xs + i, v);
      ss = _mm256_add_epi64(ss, _mm256_mul_epi32(v, v));
      mx2 = maxv(mx2, absv(v));
    }
    int64_t sum = hsum64(ss);
    uint64_t A1 = uint64_t(hmax64(mx2));
    for (; i < D; ++i) {
      xs[i] = shs(x[i], c);
      sum += xs[i] * xs[i];
      A1 = mag64(xs[i]) > A1 ? mag64(xs[i]) : A1;
    }
    int d = 0;
    const int64_t A = vquant(xs, D, a.qmax, y8, y16, &d, A1);
    a.ys[m] = rms_row_scale(a, c, sum, A, d);
  }
}

void x_swiglu(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t N = a.n, lim = int64_t{1} << 17;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* g = a.gate + m * N;
    const int16_t* u = a.up + m * N;
    const RowScale gs = a.gs[m], us = a.us[m];
    const int64_t sh = int64_t{gs.exp} - 12;
    // 8 elements per step in int32 lanes: zq = clamp(shift_s(g gm, sh), +-2^17) (|g gm| < 2^30;
    // a right shift as vshift_uniform, which gives 0 for sh >= 31 as for any larger sh; a left
    // shift saturates: clamp(clamp(x, +-2^max(17 - l, 0)) 2^l, +-2^17), l = min(-sh, 18)), sig
    // gathered from sig_table (zq < 0 by the identity there), v = (g u) sig as two vpmuldq over
    // the lanes reordered (0 4 1 5 2 6 3 7): the even lanes hold elements 0-3, the odd ones 4-7.
    const __m256i gm32 = _mm256_set1_epi32(gs.mant), lim32 = _mm256_set1_epi32(int32_t(lim));
    const int l = sh < 0 ? int(sh < -18 ? 18 : -sh) : 0;
    const __m256i pre = _mm256_set1_epi32(int32_t(int64_t{1} << (17 - l > 0 ? 17 - l : 0)));
    // (per-lane counts: one uop each on Intel, the xmm-count shifts two)
    const __m256i cr = _mm256_set1_epi32(int(sh > 32 ? 32 : sh)), cr1 = _mm256_set1_epi32(int(sh > 32 ? 31 : sh - 1));
    const __m256i cl = _mm256_set1_epi32(l);
    const __m256i one = _mm256_set1_epi32(1), t15 = _mm256_set1_epi32(1 << 15), t16 = _mm256_set1_epi32(1 << 16);
    const __m256i last = _mm256_set1_epi32(kSigLast), low16 = _mm256_set1_epi32(0xFFFF);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const int* tab = reinterpret_cast<const int*>(sig_table());
    V mx = zero();
    int64_t i = 0;
    for (; i + 8 <= N; i += 8) {
      const __m256i g32 = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + i)));
      const __m256i u32 = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u + i)));
      __m256i z = _mm256_mullo_epi32(g32, gm32);
      if (sh > 0) {
        z = _mm256_add_epi32(_mm256_srav_epi32(z, cr), _mm256_and_si256(_mm256_srav_epi32(z, cr1), one));
      } else if (sh < 0) {
        z = _mm256_sllv_epi32(_mm256_max_epi32(_mm256_min_epi32(z, pre), _mm256_sub_epi32(_mm256_setzero_si256(), pre)), cl);
      }
      z = _mm256_max_epi32(_mm256_min_epi32(z, lim32), _mm256_sub_epi32(_mm256_setzero_si256(), lim32));
      const __m256i T = _mm256_add_epi32(
          _mm256_and_si256(_mm256_i32gather_epi32(tab, _mm256_min_epi32(_mm256_abs_epi32(z), last), 2), low16), t15);
      const __m256i tn = _mm256_andnot_si256(_mm256_cmpeq_epi32(T, t16), _mm256_sub_epi32(_mm256_sub_epi32(t16, one), T));
      const __m256i sig = _mm256_blendv_epi8(T, tn, _mm256_cmpgt_epi32(_mm256_setzero_si256(), z));
      const __m256i gu = _mm256_permutevar8x32_epi32(_mm256_mullo_epi32(g32, u32), order);   // |g u| <= 2^30
      const __m256i so = _mm256_permutevar8x32_epi32(sig, order);
      const V v0 = _mm256_mul_epi32(gu, so);
      const V v1 = _mm256_mul_epi32(_mm256_srli_epi64(gu, 32), _mm256_srli_epi64(so, 32));
      store4(v + i, v0);
      store4(v + i + 4, v1);
      mx = maxv(mx, maxv(absv(v0), absv(v1)));
    }
    uint64_t A0 = uint64_t(hmax64(mx));
    for (; i < N; ++i) {
      v[i] = swiglu_v(g[i], u[i], gs.mant, sh);
      A0 = mag64(v[i]) > A0 ? mag64(v[i]) : A0;
    }
    const RowScale mu = normalize(uint64_t(int64_t{gs.mant} * us.mant), int64_t{gs.exp} + us.exp + 16);
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * N : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * N;
    int d = 0;
    const int64_t A = vquant(v, N, a.qmax, y8, y16, &d, A0);
    a.ys[m] = scale_of_i(A, a.qmax, d, mu.mant, mu.exp);
  }
}

// ---- rope ---------------------------------------------------------------------------------------

void x_rope(const RopeArgs& a, int64_t m0, int64_t m1) {
  const int hd = a.head_dim;
  if (hd <= 0 || (hd & 1)) return ref_rope(a, m0, m1);
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t p = int64_t{a.pos} + m;
    if (p < 0 || p >= a.table_rows) {
      ref_rope(a, m, m + 1);
      continue;
    }
    const int16_t* x = a.x + m * a.width;
    int16_t* y = a.y + m * a.width;
    const int16_t* t = a.table + p * hd;
    for (int64_t h0 = 0; h0 + hd <= a.width; h0 += hd) {
      int i = 0;
      for (; i + 8 <= hd; i += 8) {  // 4 pairs
        const V xv = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + h0 + i)));
        const V tv = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + i)));
        const V P = _mm256_mullo_epi32(xv, tv);
        const V Q = _mm256_mullo_epi32(xv, _mm256_shuffle_epi32(tv, 0xB1));
        const V even = _mm256_sub_epi32(P, _mm256_shuffle_epi32(P, 0xB1));
        const V odd = _mm256_add_epi32(Q, _mm256_shuffle_epi32(Q, 0xB1));
        V r = _mm256_blend_epi32(even, odd, 0xAA);
        // exact rshift_round(., 15) of a value in [-2^31 + 2^15, 2^31] (see avx512.cc)
        r = _mm256_add_epi32(r, _mm256_set1_epi32(int32_t((1u << 14) + (1u << 31) - (1u << 15))));
        r = _mm256_sub_epi32(_mm256_srli_epi32(r, 15), _mm256_set1_epi32(65535));
        const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + h0 + i), packed);
      }
      for (; i < hd; i += 2) {
        const int64_t xa = x[h0 + i], xb = x[h0 + i + 1], c = t[i], s = t[i + 1];
        y[h0 + i] = saturate<int16_t>(rshift_round(xa * c - xb * s, 15));
        y[h0 + i + 1] = saturate<int16_t>(rshift_round(xa * s + xb * c, 15));
      }
    }
    const RowScale in = a.xs[m];
    a.ys[m] = in.mant == 0 ? RowScale{} : RowScale{in.mant, clamp_exp(int64_t{in.exp} - 1)};
  }
}

// ---- residual_add / embedding -------------------------------------------------------------------

// sat32(h + shift_s(x, s)) for 8 int32 x with |x| <= 2^30: the rounding right shift in int32
// (s >= 32 gives 0 as |x| < 2^(s-1)), the left shift in int64 clamped at 32 (a larger shift
// saturates the same way), the add and the saturation in int64.
inline __m128i sat_pack(V v) {  // 4 int64 in [INT32_MIN, INT32_MAX] -> 4 int32
  return lo32(maxv(minv(v, s64(INT32_MAX)), s64(INT32_MIN)));
}
inline void add_shift_store(V x, int64_t s, const int32_t* h, int32_t* out) {
  if (s > 0) {
    if (s >= 32) {
      x = _mm256_setzero_si256();
    } else {
      const __m256i c = _mm256_set1_epi32(int(s)), c1 = _mm256_set1_epi32(int(s - 1));
      x = _mm256_add_epi32(_mm256_srav_epi32(x, c), _mm256_and_si256(_mm256_srav_epi32(x, c1), _mm256_set1_epi32(1)));
    }
  }
  V lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(x));
  V hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(x, 1));
  if (s < 0) {
    const __m256i c = _mm256_set1_epi64x(s < -32 ? 32 : -s);
    lo = _mm256_sllv_epi64(lo, c);
    hi = _mm256_sllv_epi64(hi, c);
  }
  if (h) {
    const V hv = _mm256_loadu_si256(reinterpret_cast<const V*>(h));
    lo = _mm256_add_epi64(lo, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(hv)));
    hi = _mm256_add_epi64(hi, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(hv, 1)));
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), sat_pack(lo));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), sat_pack(hi));
}

void x_residual_add(const ResidualArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale ys = a.ys[m];
    const int64_t sh = int64_t{ys.exp} - a.e;
    const V mant = _mm256_set1_epi32(ys.mant);
    const int64_t base = m * a.d;
    int64_t i = 0;
    for (; i + 8 <= a.d; i += 8) {
      const V yv = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.y + base + i)));
      add_shift_store(_mm256_mullo_epi32(yv, mant), sh, a.h + base + i, a.out + base + i);
    }
    for (; i < a.d; ++i)
      a.out[base + i] = saturate<int32_t>(a.h[base + i] + shs(int64_t{a.y[base + i]} * ys.mant, sh));
  }
}

void x_embedding(const EmbeddingArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    int32_t* out = a.out + m * a.d;
    const int64_t id = a.ids[m];
    if (id < 0 || id >= a.vocab) {
      for (int64_t i = 0; i < a.d; ++i) out[i] = 0;
      continue;
    }
    const int8_t* t = a.table + id * a.d;
    const RowScale ts = a.ts[id];
    const int64_t sh = int64_t{ts.exp} - a.e;
    const V mant = _mm256_set1_epi32(ts.mant);
    int64_t i = 0;
    for (; i + 8 <= a.d; i += 8) {
      const V tv = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t + i)));
      add_shift_store(_mm256_mullo_epi32(tv, mant), sh, nullptr, out + i);
    }
    for (; i < a.d; ++i) out[i] = saturate<int32_t>(shs(int64_t{t[i]} * ts.mant, sh));
  }
}

// ---- attention ----------------------------------------------------------------------------------

// p * m mod 2^64 per lane for an int32 m in every lane's low dword (the low 64 bits of the
// product from two vpmuludq; a negative m reads as m + 2^32, corrected by p * 2^32).
inline V mul64x32(V p, V m) {
  const V lo = _mm256_mul_epu32(p, m), hi = _mm256_mul_epu32(_mm256_srli_epi64(p, 32), m);
  const V neg = _mm256_cmpgt_epi64(zero(), _mm256_slli_epi64(m, 32));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(_mm256_sub_epi64(hi, _mm256_and_si256(neg, p)), 32));
}
// shift_s(x, s) per lane for s >= 0 (rounding right shift; 0 beyond 62).
inline V vrshv(V x, V s) {
  const V sg = neg_mask(x);
  auto srav = [&](V c) { return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(x, sg), c), sg); };
  const V r = _mm256_add_epi64(srav(s), _mm256_and_si256(srav(_mm256_sub_epi64(s, s64(1))), s64(1)));
  const V out = blend(r, x, _mm256_cmpeq_epi64(s, zero()));
  return _mm256_andnot_si256(_mm256_cmpgt_epi64(s, s64(62)), out);
}

void dots(const int16_t* q, const int8_t* kbase, int64_t rw, int hd, int64_t n, int32_t* out) {
  const int hd4 = hd & ~3;
  const V lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const V rwv = _mm256_set1_epi32(int32_t(rw));
  const int64_t nfull = n & ~int64_t{7};
  for (int64_t u0 = 0; u0 < nfull; u0 += 8) {
    const V idx = _mm256_mullo_epi32(_mm256_add_epi32(lane, _mm256_set1_epi32(int32_t(u0))), rwv);
    V acc = _mm256_setzero_si256();
    for (int j = 0; j < hd4; j += 4) {
      const V x = _mm256_i32gather_epi32(reinterpret_cast<const int*>(kbase + j), idx, 1);
      const V q02 = _mm256_set1_epi32(int32_t(uint32_t(uint16_t(q[j])) | uint32_t(uint16_t(q[j + 2])) << 16));
      const V q13 = _mm256_set1_epi32(int32_t(uint32_t(uint16_t(q[j + 1])) | uint32_t(uint16_t(q[j + 3])) << 16));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_srai_epi16(_mm256_slli_epi16(x, 8), 8), q02));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_srai_epi16(x, 8), q13));
    }
    _mm256_storeu_si256(reinterpret_cast<V*>(out + u0), acc);
  }
  for (int64_t u = nfull; u < n; ++u) {
    const int8_t* kr = kbase + u * rw;
    int32_t s = 0;
    for (int j = 0; j < hd4; ++j) s += int32_t{q[j]} * kr[j];
    out[u] = s;
  }
  if (hd4 != hd)
    for (int64_t u = 0; u < n; ++u) {
      const int8_t* kr = kbase + u * rw;
      int32_t s = 0;
      for (int j = hd4; j < hd; ++j) s += int32_t{q[j]} * kr[j];
      out[u] += s;
    }
}

// o[0..w) += sum_u C[u] * vc[u][0..w), w a multiple of 4, w <= 32 (c_u < 2^31: cache scales as
// attention_cache writes them, see llm.h).
template <int NC>
void pv(const int64_t* C, const int8_t* vbase, int64_t rw, int64_t n, int64_t* o) {
  V acc[NC];
  for (int k = 0; k < NC; ++k) acc[k] = _mm256_setzero_si256();
  for (int64_t u = 0; u < n; ++u) {
    const V c = _mm256_set1_epi64x(C[u]);
    const int8_t* vr = vbase + u * rw;
    for (int k = 0; k < NC; ++k) {
      int32_t b;
      std::memcpy(&b, vr + 4 * k, 4);
      acc[k] = _mm256_add_epi64(acc[k], _mm256_mul_epi32(c, _mm256_cvtepi8_epi64(_mm_cvtsi32_si128(b))));
    }
  }
  for (int k = 0; k < NC; ++k) {
    const V cur = _mm256_loadu_si256(reinterpret_cast<const V*>(o + 4 * k));
    _mm256_storeu_si256(reinterpret_cast<V*>(o + 4 * k), _mm256_add_epi64(cur, acc[k]));
  }
}

void pv_any(const int64_t* C, const int8_t* vbase, int64_t rw, int hd, int64_t n, int64_t* o) {
  const int hd4 = hd & ~3;
  for (int j0 = 0; j0 < hd4; j0 += 32) {
    const int w = hd4 - j0 < 32 ? hd4 - j0 : 32;
    switch (w / 4) {
      case 1: pv<1>(C, vbase + j0, rw, n, o + j0); break;
      case 2: pv<2>(C, vbase + j0, rw, n, o + j0); break;
      case 3: pv<3>(C, vbase + j0, rw, n, o + j0); break;
      case 4: pv<4>(C, vbase + j0, rw, n, o + j0); break;
      case 5: pv<5>(C, vbase + j0, rw, n, o + j0); break;
      case 6: pv<6>(C, vbase + j0, rw, n, o + j0); break;
      case 7: pv<7>(C, vbase + j0, rw, n, o + j0); break;
      default: pv<8>(C, vbase + j0, rw, n, o + j0); break;
    }
  }
  for (int64_t u = 0; u < n; ++u)
    for (int j = hd4; j < hd; ++j) o[j] += C[u] * vbase[u * rw + j];
}

void x_attention_heads(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch) {
  const int H = a.heads, G = a.kv_heads, hd = a.head_dim;
  if (!attn_valid(a) || a.cache_rows * G * hd >= (int64_t{1} << 31) - 1024)
    return ref_attention_heads(a, u0, u1, scratch);
  const AttnScratch s = attn_scratch(scratch, a);
  const int64_t clip = attn_clip(a), rw = int64_t{G} * hd;
  for (int64_t t = u0; t < u1; ++t) {
    const int64_t m = t / H;
    const int h = int(t % H);
    const int g = h / (H / G);
    const int64_t n = a.pos + m + 1;
    int64_t* o = a.work + m * H * hd + int64_t{h} * hd;
    for (int j = 0; j < hd; ++j) o[j] = 0;
    a.work_exp[t] = INT32_MAX;
    const RowScale qs = a.qs[m];
    dots(a.q + m * H * hd + int64_t{h} * hd, a.kc + int64_t{g} * hd, rw, hd, n, s.S32);
    // logits, their max and the smallest value exponent: 4 positions per step, the rest (and a
    // step with a shift <= 0, a left shift) by the scalar element
    const int64_t qe = int64_t{qs.exp} - 16, n4 = n & ~int64_t{3};
    const V qm = s64(qs.mant), gl = _mm256_setr_epi64x(0, G, 2 * G, 3 * G);
    V vmax = s64(INT64_MIN), vemin = s64(INT64_MAX);
    int64_t Lmax = INT64_MIN, Emin = INT64_MAX;
    auto logit1 = [&](int64_t u) {
      const RowScale ks = a.kcs[u * G + g], vs = a.vcs[u * G + g];
      const int64_t L = clamp64(shs(int64_t{s.S32[u]} * ks.mant * qs.mant, qe + ks.exp), -kL40, kL40);
      s.L[u] = L;
      if (L > Lmax) Lmax = L;
      if (vs.mant != 0 && vs.exp < Emin) Emin = vs.exp;
    };
    for (int64_t u = 0; u < n4; u += 4) {
      const V idx = _mm256_add_epi64(gl, s64(u * G + g));
      const V ks = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(a.kcs), idx, 8);
      const V sh = _mm256_add_epi64(sra(ks, 32), s64(qe));
      if (_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(s64(1), sh)))) {
        for (int64_t v = u; v < u + 4; ++v) logit1(v);
        continue;
      }
      const V w = mul64x32(_mm256_mul_epi32(load4_i32(s.S32 + u), ks), qm);  // vpmuldq reads kmant
      const V L = clampv(vrshv(w, sh), -kL40, kL40);
      store4(s.L + u, L);
      vmax = maxv(vmax, L);
      const V vs = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(a.vcs), idx, 8);
      const V live = _mm256_xor_si256(_mm256_cmpeq_epi64(_mm256_slli_epi64(vs, 32), zero()), s64(-1));
      vemin = blend(vemin, minv(vemin, sra(vs, 32)), live);
    }
    for (int64_t u = n4; u < n; ++u) logit1(u);
    alignas(32) int64_t b4[4];
    store4(b4, vmax);
    for (int64_t v : b4) Lmax = v > Lmax ? v : Lmax;
    store4(b4, vemin);
    for (int64_t v : b4) Emin = v < Emin ? v : Emin;
    if (Emin == INT64_MAX) continue;
    // e_u = exp_q(max(L_u - Lmax, -clip), 16) and Z
    const V lmax = s64(Lmax), nclip = s64(-clip);
    V zsum = zero();
    for (int64_t u = 0; u < n4; u += 4) {
      const V x = maxv(_mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const V*>(s.L + u)), lmax), nclip);
      const V e = vexpq<16>(_mm256_sub_epi64(zero(), x));
      store4(s.E + u, e);
      zsum = _mm256_add_epi64(zsum, e);
    }
    int64_t Z = hsum64(zsum);
    for (int64_t u = n4; u < n; ++u) {
      s.E[u] = expq(s.L[u] - Lmax < -clip ? -clip : s.L[u] - Lmax, 16);
      Z += s.E[u];
    }
    // c_u = shift_s(rshift_round(e_u F, 46) * vmant_u, vexp_u - Emin) (F < 2^32: Z >= 2^30; the
    // shift is >= 0 wherever vmant != 0, and the product is 0 elsewhere)
    const int64_t F = kSat62 / Z;
    const V Fv = s64(F), rnd = s64(int64_t{1} << 45), emin = s64(Emin);
    for (int64_t u = 0; u < n4; u += 4) {
      const V vs = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(a.vcs), _mm256_add_epi64(gl, s64(u * G + g)), 8);
      const V pu = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(_mm256_loadu_si256(reinterpret_cast<const V*>(s.E + u)), Fv), rnd), 46);
      store4(s.C + u, vrshv(_mm256_mul_epi32(pu, vs), maxv(_mm256_sub_epi64(sra(vs, 32), emin), zero())));
    }
    for (int64_t u = n4; u < n; ++u) {
      const RowScale vs = a.vcs[u * G + g];
      s.C[u] = shs(rshift_round(s.E[u] * F, 46) * vs.mant, int64_t{vs.exp} - Emin);
    }
    pv_any(s.C, a.vc + int64_t{g} * hd, rw, hd, n, o);
    a.work_exp[t] = clamp_exp(Emin + 16);
  }
}

// attention_out (attn_out_rows): 4 lanes per step, the last hd mod 4 by the scalar element.
void x_attention_out(const AttentionArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  attn_out_rows(
      a, m0, m1,
      [](int64_t* oh, int hd, int64_t sh) {
        V mx = zero();
        uint64_t A0 = 0;
        int j = 0;
        for (; j + 4 <= hd; j += 4) {
          const V v = sh > 62 ? zero() : vshift_uniform(_mm256_loadu_si256(reinterpret_cast<const V*>(oh + j)), int(sh));
          store4(oh + j, v);
          mx = maxv(mx, absv(v));
        }
        for (; j < hd; ++j) {
          oh[j] = shs(oh[j], sh);
          A0 = mag64(oh[j]) > A0 ? mag64(oh[j]) : A0;
        }
        return uint64_t(hmax64(mx)) > A0 ? uint64_t(hmax64(mx)) : A0;
      },
      [&a](const int64_t* o, int64_t W, int8_t* y, int64_t Er, uint64_t A0) {
        int d = 0;
        const int64_t A = vquant(o, W, a.qmax, y, nullptr, &d, A0);
        return scale_of_i(A, a.qmax, d, 1, Er);
      });
}

// Each new K / V slot quantized to int8 straight from int16 (cache_write).
void x_attention_cache(const AttentionArgs& a, void* /*scratch*/) {
  cache_write(a, [](const int16_t* src, int hd, const RowScale& sc, int8_t* dst) {
    V mx = zero();
    uint64_t A0 = 0;
    int j = 0;
    for (; j + 4 <= hd; j += 4) mx = maxv(mx, absv(load4_i16(src + j)));
    for (; j < hd; ++j) A0 = mag64(src[j]) > A0 ? mag64(src[j]) : A0;
    A0 = uint64_t(hmax64(mx)) > A0 ? uint64_t(hmax64(mx)) : A0;
    int d = 0;
    const int64_t A = vquant_gen(hd, 127, QRow{dst, nullptr}, A0, &d, [src](int64_t i) { return load4_i16(src + i); },
                                 [src](int64_t i) { return int64_t{src[i]}; });
    return scale_of_i(A, 127, d, sc.mant, sc.exp);
  });
}

// ---- hadamard -----------------------------------------------------------------------------------

// t = H_N x in int32 (|t| <= n * 128), then quantize_row on its int64 copy.
void x_hadamard(const HadamardArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int b = hadamard_block(a.n);
  if (b == 0 || (b == 1 && a.n < 8)) return ref_hadamard(a, m0, m1, scratch);
  const int64_t n = a.n, nb = n / b, np = pad16(n) + 16;
  // scratch (hadamard_scratch): t64 int64 [np], t int32 [np]
  int64_t* t64 = reinterpret_cast<int64_t*>(align64(scratch));
  int32_t* t = reinterpret_cast<int32_t*>(t64 + np);
  const int w = b == 12 ? 0 : b == 20 ? 1 : b == 28 ? 2 : 3;
  const int32_t(*T)[48] = hadamard_pairs().t[w];
  const int nz = (b + 7) / 8;
  for (int64_t m = m0; m < m1; ++m) {
    // element j of the row as int16 (int8 input sign-extended)
    auto xe = [&](int64_t j) { return a.x16 ? a.x16[m * n + j] : int16_t(a.x[m * n + j]); };
    if (b == 1) {  // n = 2^k >= 8: the stages len = 1, 2, 4 inside one vector of 8 (lane j ^ len)
      const V idx[3] = {_mm256_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6), _mm256_setr_epi32(2, 3, 0, 1, 6, 7, 4, 5),
                        _mm256_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3)};
      for (int64_t i = 0; i < n; i += 8) {
        V v = a.x16 ? _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.x16 + m * n + i)))
                    : _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.x + m * n + i)));
        V u = _mm256_permutevar8x32_epi32(v, idx[0]);
        v = _mm256_blend_epi32(_mm256_add_epi32(v, u), _mm256_sub_epi32(u, v), 0xAA);
        u = _mm256_permutevar8x32_epi32(v, idx[1]);
        v = _mm256_blend_epi32(_mm256_add_epi32(v, u), _mm256_sub_epi32(u, v), 0xCC);
        u = _mm256_permutevar8x32_epi32(v, idx[2]);
        v = _mm256_blend_epi32(_mm256_add_epi32(v, u), _mm256_sub_epi32(u, v), 0xF0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(t + i), v);
      }
    }
    for (int64_t jb = 0; b > 1 && jb < nb; ++jb) {
      V acc[6];
      for (int z = 0; z < nz; ++z) acc[z] = _mm256_setzero_si256();
      const int64_t xb = jb * b;
      for (int pp = 0; pp < b / 2; ++pp) {
        const V xv = _mm256_set1_epi32(int32_t(uint32_t(uint16_t(xe(xb + 2 * pp))) |
                                               (uint32_t(uint16_t(xe(xb + 2 * pp + 1))) << 16)));
        for (int z = 0; z < nz; ++z)
          acc[z] = _mm256_add_epi32(acc[z], _mm256_madd_epi16(xv, _mm256_loadu_si256(
                                                                   reinterpret_cast<const __m256i*>(T[pp] + 8 * z))));
      }
      // blocks in order: the padding lanes of block jb land on block jb + 1 (rewritten next) or
      // in the scratch's padding
      for (int z = 0; z < nz; ++z) _mm256_storeu_si256(reinterpret_cast<__m256i*>(t + jb * b + 8 * z), acc[z]);
    }
    for (int64_t len = b == 1 ? 8 : b; len < n; len <<= 1)  // len is a multiple of 4
      for (int64_t i0 = 0; i0 < n; i0 += 2 * len) {
        int64_t i = 0;
        for (; i + 8 <= len; i += 8) {
          int32_t* pa = t + i0 + i;
          int32_t* pb = t + i0 + len + i;
          const V p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pa));
          const V q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(pa), _mm256_add_epi32(p, q));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb), _mm256_sub_epi32(p, q));
        }
        for (; i < len; ++i) {
          const int32_t p = t[i0 + i], q = t[i0 + len + i];
          t[i0 + i] = p + q;
          t[i0 + len + i] = p - q;
        }
      }
    for (int64_t i = 0; i < n; ++i) t64[i] = t[i];
    int d = 0;
    const int64_t A = quantize_row(t64, n, a.qmax, a.y + m * n, nullptr, &d);
    a.ys[m] = scale_of_i(A, a.qmax, d, a.xs[m].mant, a.xs[m].exp);
  }
}


// ---- softmax ------------------------------------------------------------------------------------
// int8 rows of >= 128 valid columns: e and the output are tables of k = max - x (computed once per
// row with exp_q, K <= 256 entries) read with vpgatherdd. Other rows (int16, short int8): exp_q
// per element in 4 x 64-bit lanes (sm_row_generic of avx512.cc), the last V mod 4 columns scalar.

// t = max(shift_s(v, sh), -clip) for v <= 0, |v| < 2^31 (sm_tvec of avx512.cc).
inline V sm_tvec(V v, int64_t sh, V nclip) {
  if (sh > 62) v = _mm256_setzero_si256();
  else if (sh >= 0) v = vshift_uniform(v, int(sh));
  else {
    const int l = sh < -41 ? 41 : int(-sh);
    v = _mm256_sll_epi64(maxv(v, s64(-(int64_t{1} << (41 - l)))), _mm_cvtsi32_si128(l));
  }
  return maxv(v, nclip);
}
inline V sm_outvec(int out, V e, V t, V F, V lnZ) {  // sm_out of llm_internal.h, 4 lanes
  if (out == kLogSoftmaxI16) return maxv(sra(_mm256_add_epi64(_mm256_sub_epi64(t, lnZ), s64(32)), 6), s64(-32768));
  const int s = out == kSoftmaxU16 ? 46 : 54;
  const V p = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(e, F), s64(int64_t{1} << (s - 1))), _mm_cvtsi32_si128(s));
  return minv(p, s64(out == kSoftmaxU16 ? 65535 : 255));
}
inline V sm_load4(const SoftmaxArgs& a, int64_t k) {
  if (a.in_bits == 8) {
    int32_t b;
    memcpy(&b, static_cast<const int8_t*>(a.x) + k, 4);
    return _mm256_cvtepi8_epi64(_mm_cvtsi32_si128(b));
  }
  return _mm256_cvtepi16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const int16_t*>(a.x) + k)));
}
inline void sm_store4(const SoftmaxArgs& a, int64_t k, V v) {
  const __m128i w = lo32(v);
  if (a.out == kSoftmaxU8) {
    const int32_t b = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packus_epi32(w, w), w));
    memcpy(static_cast<uint8_t*>(a.y) + k, &b, 4);
  } else {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(static_cast<int16_t*>(a.y) + k),
                     a.out == kSoftmaxU16 ? _mm_packus_epi32(w, w) : _mm_packs_epi32(w, w));
  }
}

void sm_row_generic(const SoftmaxArgs& a, int64_t m, int64_t V_, const RowScale& s, int64_t clip, int64_t* e) {
  const int64_t base = m * a.n, V4 = V_ & ~int64_t{3};
  auto xv = [&](int64_t i) -> int64_t {
    return a.in_bits == 8 ? static_cast<const int8_t*>(a.x)[base + i] : static_cast<const int16_t*>(a.x)[base + i];
  };
  V mx = s64(INT64_MIN);
  for (int64_t i = 0; i < V4; i += 4) mx = maxv(mx, sm_load4(a, base + i));
  int64_t qx = hmax64(mx);
  for (int64_t i = V4; i < V_; ++i) qx = xv(i) > qx ? xv(i) : qx;
  const V qv = s64(qx), mant = s64(s.mant), nclip = s64(-clip);
  const int64_t sh = int64_t{s.exp} - 16;
  auto tvec = [&](int64_t i) {
    return sm_tvec(_mm256_mul_epi32(_mm256_sub_epi64(sm_load4(a, base + i), qv), mant), sh, nclip);
  };
  V zs = _mm256_setzero_si256();
  for (int64_t i = 0; i < V4; i += 4) {
    const V ev = vexpq<16>(_mm256_sub_epi64(zero(), tvec(i)));
    _mm256_storeu_si256(reinterpret_cast<V*>(e + i), ev);
    zs = _mm256_add_epi64(zs, ev);
  }
  int64_t Z = hsum64(zs);
  for (int64_t i = V4; i < V_; ++i) Z += e[i] = expq(sm_t(xv(i) - qx, s, clip), 16);
  const bool lg = a.out == kLogSoftmaxI16;
  const int64_t F = kSat62 / Z, lnZ = lg ? lnq16(uint64_t(Z)) : 0;
  const V Fv = s64(F), lv = s64(lnZ);
  for (int64_t i = 0; i < V4; i += 4)
    sm_store4(a, base + i, sm_outvec(a.out, _mm256_loadu_si256(reinterpret_cast<const V*>(e + i)),
                                     lg ? tvec(i) : _mm256_setzero_si256(), Fv, lv));
  for (int64_t i = V4; i < V_; ++i) sm_store(a, base + i, sm_out(a.out, e[i], lg ? sm_t(xv(i) - qx, s, clip) : 0, F, lnZ));
}

void x_softmax(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t clip = sm_clip(a), n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t V_ = sm_valid(a, m), base = m * n;
    if (a.in_bits != 8 || V_ < 128) {
      for (int64_t i = V_; i < n; ++i) sm_store(a, base + i, sm_masked(a.out));
      if (V_ > 0) sm_row_generic(a, m, V_, a.xs[m * a.xs_stride], clip, reinterpret_cast<int64_t*>(align64(scratch)));
      continue;
    }
    const RowScale s = a.xs[m * a.xs_stride];
    const int8_t* x = static_cast<const int8_t*>(a.x) + base;
    V mx = _mm256_set1_epi8(-128), mn = _mm256_set1_epi8(127);
    int64_t i = 0;
    for (; i + 32 <= V_; i += 32) {
      const V v = _mm256_loadu_si256(reinterpret_cast<const V*>(x + i));
      mx = _mm256_max_epi8(mx, v), mn = _mm256_min_epi8(mn, v);
    }
    alignas(32) int8_t bx[32], bn[32];
    _mm256_store_si256(reinterpret_cast<V*>(bx), mx);
    _mm256_store_si256(reinterpret_cast<V*>(bn), mn);
    int qx = -128, qn = 127;
    for (int j = 0; j < 32; ++j) qx = bx[j] > qx ? bx[j] : qx, qn = bn[j] < qn ? bn[j] : qn;
    for (; i < V_; ++i) qx = x[i] > qx ? x[i] : qx, qn = x[i] < qn ? x[i] : qn;
    const int K = qx - qn + 1;
    int32_t* T = reinterpret_cast<int32_t*>(align64(scratch));
    int32_t* O = T + 256;
    for (int k = 0; k < K; ++k) T[k] = int32_t(expq(sm_t(-k, s, clip), 16));
    const V qv = _mm256_set1_epi32(qx);
    V z0 = _mm256_setzero_si256(), z1 = _mm256_setzero_si256();
    i = 0;
    for (; i + 8 <= V_; i += 8) {
      const V k = _mm256_sub_epi32(qv, _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i))));
      const V g = _mm256_i32gather_epi32(T, k, 4);
      z0 = _mm256_add_epi64(z0, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(g)));
      z1 = _mm256_add_epi64(z1, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(g, 1)));
    }
    alignas(32) int64_t zz[4];
    _mm256_store_si256(reinterpret_cast<V*>(zz), _mm256_add_epi64(z0, z1));
    int64_t Z = zz[0] + zz[1] + zz[2] + zz[3];
    for (; i < V_; ++i) Z += T[qx - x[i]];
    const int64_t F = kSat62 / Z, lnZ = a.out == kLogSoftmaxI16 ? lnq16(uint64_t(Z)) : 0;
    for (int k = 0; k < K; ++k) O[k] = int32_t(sm_out(a.out, T[k], sm_t(-k, s, clip), F, lnZ));
    i = 0;
    for (; i + 16 <= V_; i += 16) {
      const V k0 = _mm256_sub_epi32(qv, _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i))));
      const V k1 = _mm256_sub_epi32(qv, _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i + 8))));
      const V g0 = _mm256_i32gather_epi32(O, k0, 4), g1 = _mm256_i32gather_epi32(O, k1, 4);
      if (a.out == kSoftmaxU8) {
        const V w = _mm256_permute4x64_epi64(_mm256_packus_epi32(g0, g1), 0xD8);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(a.y) + base + i),
                         _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
      } else {
        const V w = _mm256_permute4x64_epi64(a.out == kSoftmaxU16 ? _mm256_packus_epi32(g0, g1) : _mm256_packs_epi32(g0, g1), 0xD8);
        _mm256_storeu_si256(reinterpret_cast<V*>(static_cast<int16_t*>(a.y) + base + i), w);
      }
    }
    for (; i < V_; ++i) sm_store(a, base + i, O[qx - x[i]]);
    for (; i < n; ++i) sm_store(a, base + i, sm_masked(a.out));
  }
}

// ---- layernorm ----------------------------------------------------------------------------------
// Row min / max in int32 (A0 = max(max - x0, x0 - min)), x' and the sums in int64 lanes (x' kept in
// scratch), then z, the affine step and the quantizer in int64 lanes (x_layernorm of avx512.cc).

// 8 elements of a row as int32; a partial block is padded with `pad` (the anchor x0: x' = 0).
inline V ln_load8(const LayernormArgs& a, int64_t k, int64_t left, int32_t pad) {
  if (left >= 8) {
    if (a.in_bits == 8) return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(a.x) + k)));
    if (a.in_bits == 16) return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const int16_t*>(a.x) + k)));
    return _mm256_loadu_si256(reinterpret_cast<const V*>(static_cast<const int32_t*>(a.x) + k));
  }
  alignas(32) int32_t b[8];
  for (int64_t j = 0; j < 8; ++j) b[j] = j < left ? int32_t(ln_x(a, k + j)) : pad;
  return _mm256_load_si256(reinterpret_cast<const V*>(b));
}

// isqrt64 of 8 lanes (u < 2^62, so signed compares serve, and the first digit is bit 60): the
// bit-by-bit square root of fixed_point.h, 31 steps for every lane (steps with r = 0 and bit > u
// change nothing), on two vectors at once: each step is a dependent chain, two hide each
// other's latency.
inline void visqrt8(V u0, V u1, V* r0, V* r1) {
  V a = _mm256_setzero_si256(), b = a;
  for (int it = 1; it < 32; ++it) {
    const V bit = s64(int64_t{1} << (62 - 2 * it));
    const V ta = _mm256_add_epi64(a, bit), tb = _mm256_add_epi64(b, bit);
    const V la = _mm256_cmpgt_epi64(ta, u0), lb = _mm256_cmpgt_epi64(tb, u1);  // u < r + bit
    u0 = _mm256_sub_epi64(u0, _mm256_andnot_si256(la, ta));
    u1 = _mm256_sub_epi64(u1, _mm256_andnot_si256(lb, tb));
    a = _mm256_add_epi64(_mm256_srli_epi64(a, 1), _mm256_andnot_si256(la, bit));
    b = _mm256_add_epi64(_mm256_srli_epi64(b, 1), _mm256_andnot_si256(lb, bit));
  }
  *r0 = a, *r1 = b;
}

// Stores the first min(left, 4) lanes of z at p (the others keep their value); returns z with
// the lanes not stored zeroed. A full vector takes a plain store: vpmaskmovq stores are
// microcoded on AMD cores (x_layernorm spent a fifth of its time in them).
inline V store_upto4(int64_t* p, V z, int64_t left, V lane) {
  if (left >= 4) {
    _mm256_storeu_si256(reinterpret_cast<V*>(p), z);
    return z;
  }
  const V k = _mm256_cmpgt_epi64(s64(left), lane);
  _mm256_maskstore_epi64(reinterpret_cast<long long*>(p), k, z);
  return _mm256_and_si256(z, k);
}

// The shift c of a run of len elements at b: bitlen(max |x - x0|) - P (the anchor scan of the
// layernorm contract; max and min in int32 lanes).
int ln_anchor_shift(const LayernormArgs& a, int64_t b, int64_t len, int32_t x0, int P) {
  V mx = _mm256_set1_epi32(x0), mn = mx;
  for (int64_t i = 0; i < len; i += 8) {
    const V v = ln_load8(a, b + i, len - i, x0);
    mx = _mm256_max_epi32(mx, v), mn = _mm256_min_epi32(mn, v);
  }
  __m128i h = _mm_max_epi32(_mm256_castsi256_si128(mx), _mm256_extracti128_si256(mx, 1));
  __m128i l = _mm_min_epi32(_mm256_castsi256_si128(mn), _mm256_extracti128_si256(mn, 1));
  h = _mm_max_epi32(h, _mm_shuffle_epi32(h, 0x4E)), l = _mm_min_epi32(l, _mm_shuffle_epi32(l, 0x4E));
  h = _mm_max_epi32(h, _mm_shuffle_epi32(h, 0xB1)), l = _mm_min_epi32(l, _mm_shuffle_epi32(l, 0xB1));
  const int64_t hi = _mm_cvtsi128_si32(h), lo = _mm_cvtsi128_si32(l);   // the lanes start at x0
  return bitlen64(uint64_t(hi - x0 > x0 - lo ? hi - x0 : x0 - lo)) - P;
}

// segments > 1 (RWKV's GroupNorm over heads): runs of L = d / segments elements, statistics per run
// (any L >= 1: a short run is one block padded with its anchor). Per batch of up to 64 runs: the
// stats of each run (x' into w; a block's padding writes zeros ahead, into runs not yet loaded),
// the runs' square roots 4 at a time, then w of each run (masked stores); one quantizer per row.
__attribute__((noinline)) void x_layernorm_seg(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d, runs = a.segments, L = D / runs;
  const int64_t inner = a.inner < 1 ? 1 : a.inner;
  const int P = ln_P(L), lg = ln_log2(L);
  const V lane = _mm256_setr_epi64x(0, 1, 2, 3);
  constexpr int kB = 64;
  LnPre pre[kB];
  int64_t mus[kB];
  alignas(32) uint64_t us[kB + 8], rs[kB + 8];
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const LnEps eps = ln_eps(a, a.xs[m * a.xs_stride]);
    const int64_t c0 = a.gm ? ln_ch(a, m, 0) : 0;
    V wm = _mm256_setzero_si256();
    for (int64_t rb = 0; rb < runs; rb += kB) {
      const int nb = int(runs - rb < kB ? runs - rb : kB);
      for (int t = 0; t < nb; ++t) {
        const int64_t s0 = (rb + t) * L, b = base + s0;
        const int32_t x0 = int32_t(ln_x(a, b));
        const int c = ln_anchor_shift(a, b, L, x0, P);
        const V x0v = s64(x0);
        V sv = _mm256_setzero_si256(), qv = sv;
        for (int64_t i = 0; i < L; i += 8) {
          const V v = ln_load8(a, b + i, L - i, x0);
          for (int h = 0; h < 2; ++h) {
            const V x = vshs_exact(_mm256_sub_epi64(_mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v)), x0v), c);
            _mm256_storeu_si256(reinterpret_cast<V*>(w + s0 + i + 4 * h), x);  // padding: x' = 0
            sv = _mm256_add_epi64(sv, x);
            qv = _mm256_add_epi64(qv, _mm256_mul_epi32(x, x));
          }
        }
        const int64_t S = hsum64(sv), Q = hsum64(qv), mu = ln_mu(S, L);
        pre[t] = ln_pre(eps, c, ln_div(Q - 2 * mu * S + L * mu * mu, L, lg));
        mus[t] = mu;
        us[t] = pre[t].u;
      }
      for (int t = nb; t < ((nb + 7) & ~7); ++t) us[t] = 0;
      for (int t = 0; t < nb; t += 8) {   // two independent chains per step
        V r0, r1;
        visqrt8(_mm256_load_si256(reinterpret_cast<const V*>(us + t)), _mm256_load_si256(reinterpret_cast<const V*>(us + t + 4)), &r0, &r1);
        _mm256_store_si256(reinterpret_cast<V*>(rs + t), r0);
        _mm256_store_si256(reinterpret_cast<V*>(rs + t + 4), r1);
      }
      for (int t = 0; t < nb; ++t) {
        const LnRow r = ln_fin(pre[t], mus[t], int64_t(rs[t]));
        const int64_t s0 = (rb + t) * L, e0 = s0 + L;
        const V muv = s64(r.mu), Rv = s64(r.R);
        for (int64_t i = s0; i < e0; i += 4) {
          V z = r.sh > 62 ? _mm256_setzero_si256()
                          : vshs_exact(_mm256_mul_epi32(_mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const V*>(w + i)), muv), Rv), r.sh);
          if (a.gm) {
            V gmv, bov;
            if (inner == 1 && e0 - i >= 4) {
              gmv = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.gm + c0 + i)));
              bov = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bo + c0 + i)));
            } else if (inner == 1) {
              const __m128i k = _mm_cmpgt_epi32(_mm_set1_epi32(int32_t(e0 - i)), _mm_setr_epi32(0, 1, 2, 3));
              gmv = _mm256_cvtepi32_epi64(_mm_maskload_epi32(a.gm + c0 + i, k));
              bov = _mm256_cvtepi32_epi64(_mm_maskload_epi32(a.bo + c0 + i, k));
            } else {  // channel i / inner per element
              alignas(32) int64_t g4[4] = {}, b4[4] = {};
              for (int64_t j = 0; j < 4 && i + j < e0; ++j) {
                const int64_t ch = c0 + (i + j) / inner;
                g4[j] = a.gm[ch], b4[j] = a.bo[ch];
              }
              gmv = _mm256_load_si256(reinterpret_cast<const V*>(g4));
              bov = _mm256_load_si256(reinterpret_cast<const V*>(b4));
            }
            z = _mm256_add_epi64(_mm256_mul_epi32(gmv, z), _mm256_slli_epi64(bov, 16));
          }
          wm = maxv(wm, absv(store_upto4(w + i, z, e0 - i, lane)));
        }
      }
    }
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + base : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + base;
    int d = 0;
    const int64_t A = vquant(w, D, a.qmax, y8, y16, &d, uint64_t(hmax64(wm)));
    a.ys[m] = scale_of_i(A, a.qmax, d, 1, int64_t{a.ae} + 16);
  }
}

void x_layernorm(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  if (a.segments > 1) return x_layernorm_seg(a, m0, m1, scratch);
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));  // pad16(D) + 16 entries
  const int64_t D = a.d, inner = a.inner < 1 ? 1 : a.inner;
  const int lg = ln_log2(D);
  const V lane = _mm256_setr_epi64x(0, 1, 2, 3);
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const int32_t x0 = int32_t(ln_x(a, base));
    const int c = ln_anchor_shift(a, base, D, x0, ln_P(D));
    const V x0v = s64(x0);
    V sv = _mm256_setzero_si256(), qv = sv;
    for (int64_t i = 0; i < D; i += 8) {
      const V v = ln_load8(a, base + i, D - i, x0);
      for (int h = 0; h < 2; ++h) {
        const V x = vshs_exact(_mm256_sub_epi64(_mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v)), x0v), c);
        _mm256_storeu_si256(reinterpret_cast<V*>(w + i + 4 * h), x);  // |x'| <= 2^22
        sv = _mm256_add_epi64(sv, x);
        qv = _mm256_add_epi64(qv, _mm256_mul_epi32(x, x));
      }
    }
    const int64_t S = hsum64(sv), Q = hsum64(qv), mu = ln_mu(S, D);
    const int64_t ms = Q - 2 * mu * S + D * mu * mu;  // = sum (x' - mu)^2, exact (each term < 2^61)
    const LnPre pre = ln_pre(ln_eps(a, a.xs[m * a.xs_stride]), c, ln_div(ms, D, lg));  // ln_row
    const LnRow r = ln_fin(pre, mu, pre.zero ? 0 : int64_t{isqrt64(pre.u)});
    ln_stats(a, m, x0, c, r);
    const V muv = s64(r.mu), Rv = s64(r.R);
    V wm = _mm256_setzero_si256();
    // w[i, min(i + 4, end)) from x' (the other lanes keep their value: channel runs need not align)
    auto body = [&](int64_t i, int64_t end, V gmv, V bov) {
      V z = r.sh > 62 ? _mm256_setzero_si256()
                      : vshs_exact(_mm256_mul_epi32(_mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const V*>(w + i)), muv), Rv), r.sh);
      if (a.gm) z = _mm256_add_epi64(_mm256_mul_epi32(gmv, z), _mm256_slli_epi64(bov, 16));
      wm = maxv(wm, absv(store_upto4(w + i, z, end - i, lane)));
    };
    if (!a.gm) {
      for (int64_t i = 0; i < D; i += 4) body(i, D, _mm256_setzero_si256(), _mm256_setzero_si256());
    } else if (inner == 1) {
      const int64_t c0 = ln_ch(a, m, 0);
      int64_t i = 0;
      for (; i + 4 <= D; i += 4)
        body(i, D, _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.gm + c0 + i))),
             _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bo + c0 + i))));
      if (i < D) {
        const __m128i k = _mm_cmpgt_epi32(_mm_set1_epi32(int32_t(D - i)), _mm_setr_epi32(0, 1, 2, 3));
        body(i, D, _mm256_cvtepi32_epi64(_mm_maskload_epi32(a.gm + c0 + i, k)),
             _mm256_cvtepi32_epi64(_mm_maskload_epi32(a.bo + c0 + i, k)));
      }
    } else {
      for (int64_t s0 = 0; s0 < D; s0 += inner) {
        const int64_t ch = ln_ch(a, m, s0), e0 = s0 + inner < D ? s0 + inner : D;
        for (int64_t i = s0; i < e0; i += 4) body(i, e0, s64(a.gm[ch]), s64(a.bo[ch]));
      }
    }
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + base : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + base;
    int d = 0;
    const int64_t A = vquant(w, D, a.qmax, y8, y16, &d, uint64_t(hmax64(wm)));
    a.ys[m] = scale_of_i(A, a.qmax, d, 1, int64_t{a.ae} + 16);
  }
}

// ---- exp ----------------------------------------------------------------------------------------

// exp_shift on 8 int32 lanes (avx512.cc's vexpshift16: x clamped to >= -2^(F+5) first, which
// changes no output and keeps z within int32; q >= 32 shifts out to 0 as q >= 31 does).
inline __m256i vexpshift8(__m256i x, int F) {
  const __m256i z0 = _mm256_setzero_si256();
  x = _mm256_max_epi32(_mm256_min_epi32(x, z0), _mm256_set1_epi32(-(1 << (F + 5))));
  const __m256i z = _mm256_sub_epi32(_mm256_add_epi32(x, _mm256_srai_epi32(x, 1)), _mm256_srai_epi32(x, 4));
  const __m128i cF = _mm_cvtsi32_si128(F);
  const __m256i q = _mm256_srl_epi32(_mm256_sub_epi32(z0, z), cF);
  const __m256i r = _mm256_add_epi32(z, _mm256_sll_epi32(q, cF));
  const __m256i v = _mm256_add_epi32(_mm256_srai_epi32(r, 1), _mm256_set1_epi32(1 << F));
  return _mm256_srlv_epi32(_mm256_sll_epi32(v, _mm_cvtsi32_si128(30 - F)), q);
}

template <int F>
void x_exp_q(const ExpArgs& a, int64_t i0, int64_t i1) {
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    const V nx = _mm256_sub_epi64(zero(), minv(load4_i32(a.x + i), zero()));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a.y + i), lo32(vexpq<F>(nx)));
  }
  if (i < i1) ref_exp(a, i, i1);
}

void x_exp(const ExpArgs& a, int64_t i0, int64_t i1) {
  const int F = exp_bits(a);
  if (a.kind == kExpShift) {
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const V*>(a.x + i));
      _mm256_storeu_si256(reinterpret_cast<V*>(a.y + i), vexpshift8(x, F));
    }
    if (i < i1) ref_exp(a, i, i1);
    return;
  }
  if (!with_exp_bits(F, [&](auto f) { x_exp_q<decltype(f)::value>(a, i0, i1); })) ref_exp(a, i0, i1);  // F == 8
}

}  // namespace
}  // namespace llm

extern const LlmKernel kLlmAvx2 = {
    Isa::avx2,             "avx2",
    llm::x_rmsnorm,        llm::x_rope,
    llm::x_attention_cache, llm::x_attention_heads, llm::x_attention_out,
    llm::x_swiglu,         llm::x_residual_add,
    llm::x_embedding,      llm::x_hadamard,
    llm::x_softmax,        llm::x_layernorm,
    llm::x_exp};

}  // namespace fq::k
