// AVX-512 (F/BW/DQ/VL) variant of the llm family: the same bytes as ref.cc for every input the
// contract allows. Vectorized: attention_heads (across positions u: gathered dot products, logits,
// exp_q, probabilities, and the P.V accumulation in int64), the row quantizer, rmsnorm, swiglu
// (its division by a 17-iteration restoring division, exact), rope, residual_add, embedding and
// attention_out. attention_cache and hadamard forward to the scalar reference.
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (the "undefined" pass-through operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "llm_internal.h"

namespace fq::k {
namespace llm {
namespace {

using V = __m512i;

inline V s64(int64_t x) { return _mm512_set1_epi64(x); }
inline __mmask8 tail8(int64_t left) { return left >= 8 ? __mmask8(0xFF) : __mmask8((1u << left) - 1); }
inline __mmask16 tail16(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}

// shift_s per 64-bit lane, any x, shift s per lane (any int64; clamped to [-63, 63] first).
inline V vshs(V x, V s) {
  const V zero = _mm512_setzero_si512(), one = s64(1);
  s = _mm512_max_epi64(_mm512_min_epi64(s, s64(63)), s64(-63));
  const V right = _mm512_add_epi64(_mm512_srav_epi64(x, s),
                                   _mm512_and_si512(_mm512_srav_epi64(x, _mm512_sub_epi64(s, one)), one));
  const V l = _mm512_sub_epi64(zero, s);
  const V left = _mm512_sllv_epi64(x, l);
  const V mag = _mm512_abs_epi64(x);
  const __mmask8 big = _mm512_cmpge_epi64_mask(l, s64(62)) & _mm512_test_epi64_mask(x, x);
  const __mmask8 ovf = _mm512_test_epi64_mask(_mm512_srlv_epi64(mag, _mm512_sub_epi64(s64(62), l)),
                                              _mm512_set1_epi64(-1));
  const V satv = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(x, zero), s64(kSat62), s64(-kSat62));
  const V lres = _mm512_mask_blend_epi64(__mmask8(big | ovf), left, satv);
  V out = _mm512_mask_blend_epi64(_mm512_cmpgt_epi64_mask(s, zero), x, right);
  out = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(s, zero), out, lres);
  return _mm512_mask_mov_epi64(out, _mm512_cmpgt_epi64_mask(s, s64(62)), zero);
}

// Uniform rounding right shift by d >= 1 (d <= 62), or exact left shift by -d (no saturation
// needed by the callers), or identity.
inline V vshift_uniform(V x, int d) {
  if (d > 0) {
    const V r = _mm512_sra_epi64(x, _mm_cvtsi32_si128(d));
    const V b = _mm512_and_si512(_mm512_sra_epi64(x, _mm_cvtsi32_si128(d - 1)), s64(1));
    return _mm512_add_epi64(r, b);
  }
  if (d < 0) return _mm512_sll_epi64(x, _mm_cvtsi32_si128(-d));
  return x;
}

// exp_q(x, F) per lane for x <= 0 (F = 12 or 16).
template <int F>
inline V vexpq(V x) {
  V nx = _mm512_sub_epi64(_mm512_setzero_si512(), x);
  nx = _mm512_min_epi64(nx, s64(int64_t{1} << (F + 5)));  // beyond: n >= 32 -> 0 either way
  V t = _mm512_mul_epu32(nx, s64(kLog2eQ16));
  t = _mm512_srli_epi64(_mm512_add_epi64(t, s64(1 << 15)), 16);
  const V n = _mm512_srli_epi64(t, F);
  const V f = _mm512_and_si512(t, s64((int64_t{1} << F) - 1));
  const V i = _mm512_srli_epi64(f, F - 8);
  const V r = _mm512_and_si512(f, s64((int64_t{1} << (F - 8)) - 1));
  // The two table reads per lane are scalar loads: faster than vpgatherqd on Zen 4 (measured).
  alignas(64) int64_t ii[8];
  alignas(32) uint32_t ta[8], tb[8];
  _mm512_store_si512(ii, i);
  for (int l = 0; l < 8; ++l) ta[l] = kExp2Q30[ii[l]], tb[l] = kExp2Q30[ii[l] + 1];
  const V a = _mm512_cvtepu32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(ta)));
  const V b = _mm512_cvtepu32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(tb)));
  const V corr = _mm512_srli_epi64(
      _mm512_add_epi64(_mm512_mul_epu32(_mm512_sub_epi64(a, b), r), s64(int64_t{1} << (F - 9))), F - 8);
  const V v = _mm512_sub_epi64(a, corr);
  const V half = _mm512_sllv_epi64(s64(1), _mm512_sub_epi64(n, s64(1)));  // n == 0: count -1 -> 0
  return _mm512_srlv_epi64(_mm512_add_epi64(v, half), n);                 // n >= 64 -> 0
}

// max |v| over int64 values.
inline uint64_t vmaxabs(const int64_t* v, int64_t n) {
  V m = _mm512_setzero_si512();
  for (int64_t i = 0; i < n; i += 8)
    m = _mm512_max_epu64(m, _mm512_abs_epi64(_mm512_maskz_loadu_epi64(tail8(n - i), v + i)));
  return _mm512_reduce_max_epu64(m);
}

// quantize_row with A0 = max|v| known.
int64_t vquant(const int64_t* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout, uint64_t A0) {
  if (A0 == 0) {
    for (int64_t i = 0; i < n; ++i) {
      if (qmax <= 127) q8[i] = 0; else q16[i] = 0;
    }
    *dout = 0;
    return 0;
  }
  const QParams p = qparams(A0, qmax);
  const V F = s64(p.F), hi = s64(qmax), lo = s64(-qmax), rnd = s64(int64_t{1} << 39);
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 k = tail8(n - i);
    const V x = vshift_uniform(_mm512_maskz_loadu_epi64(k, v + i), p.d);
    V q = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mullo_epi64(x, F), rnd), 40);
    q = _mm512_max_epi64(_mm512_min_epi64(q, hi), lo);
    if (qmax <= 127) _mm512_mask_cvtepi64_storeu_epi8(q8 + i, k, q);
    else _mm512_mask_cvtepi64_storeu_epi16(q16 + i, k, q);
  }
  *dout = p.d;
  return p.A;
}

// ---- rmsnorm ------------------------------------------------------------------------------------

void x_rmsnorm(const RmsnormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* xs = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d;
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t* x = a.x + m * D;
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * D : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * D;
    __m512i mx = _mm512_setzero_si512();
    for (int64_t i = 0; i < D; i += 16)
      mx = _mm512_max_epu32(mx, _mm512_abs_epi32(_mm512_maskz_loadu_epi32(tail16(D - i), x + i)));
    const uint64_t A0 = _mm512_reduce_max_epu32(mx);
    if (A0 == 0) {
      for (int64_t i = 0; i < D; ++i) {
        if (y8) y8[i] = 0; else y16[i] = 0;
      }
      a.ys[m] = RowScale{};
      continue;
    }
    const int c = bitlen64(A0) - 24;
    V ss = _mm512_setzero_si512(), mx2 = _mm512_setzero_si512();
    for (int64_t i = 0; i < D; i += 8) {
      const __mmask8 k = tail8(D - i);
      const V v = vshift_uniform(_mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, x + i)), c);
      _mm512_storeu_si512(xs + i, v);  // scratch is padded
      ss = _mm512_add_epi64(ss, _mm512_mul_epi32(v, v));
      mx2 = _mm512_max_epu64(mx2, _mm512_abs_epi64(v));
    }
    const int64_t sum = _mm512_reduce_add_epi64(ss);
    const int32_t eps_m = a.eps_m < 0 ? 0 : a.eps_m;
    const int64_t k = rms_k(eps_m, a.eps_e, c);
    const int64_t ms = shs(sum / D, 2 * k) + shs(eps_m, int64_t{a.eps_e} + 2 * c + 2 * k);
    int d = 0;
    const int64_t A = vquant(xs, D, a.qmax, y8, y16, &d, _mm512_reduce_max_epu64(mx2));
    a.ys[m] = rms_scale(A, a.qmax, d, k, ms);
  }
}

// ---- swiglu -------------------------------------------------------------------------------------

void x_swiglu(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t N = a.n;
  const V zero = _mm512_setzero_si512();
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* g = a.gate + m * N;
    const int16_t* u = a.up + m * N;
    const RowScale gs = a.gs[m], us = a.us[m];
    const V gm = s64(gs.mant), gsh = s64(int64_t{gs.exp} - 12);
    V mx = zero;
    for (int64_t i = 0; i < N; i += 8) {
      const __mmask8 k = tail8(N - i);
      const V g64 = _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(k, g + i));
      const V u64 = _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(k, u + i));
      V zq = vshs(_mm512_mul_epi32(g64, gm), gsh);
      zq = _mm512_max_epi64(_mm512_min_epi64(zq, s64(1 << 17)), s64(-(1 << 17)));
      const V E = _mm512_srli_epi64(vexpq<12>(_mm512_sub_epi64(zero, _mm512_abs_epi64(zq))), 14);
      const V den = _mm512_add_epi64(E, s64(1 << 16));
      const __mmask8 nonneg = _mm512_cmpge_epi64_mask(zq, zero);
      V rem = _mm512_mask_blend_epi64(nonneg, _mm512_slli_epi64(E, 16), s64(int64_t{1} << 32));
      V q = zero;
#pragma GCC unroll 17
      for (int b = 16; b >= 0; --b) {  // restoring division: quotient < 2^17
        const V db = _mm512_slli_epi64(den, unsigned(b));
        const __mmask8 ge = _mm512_cmpge_epu64_mask(rem, db);
        rem = _mm512_mask_sub_epi64(rem, ge, rem, db);
        q = _mm512_mask_or_epi64(q, ge, q, s64(int64_t{1} << b));
      }
      const V val = _mm512_mul_epi32(_mm512_mul_epi32(g64, q), u64);
      _mm512_storeu_si512(v + i, val);  // scratch is padded
      mx = _mm512_max_epu64(mx, _mm512_abs_epi64(_mm512_maskz_mov_epi64(k, val)));
    }
    const RowScale mu = normalize(uint64_t(int64_t{gs.mant} * us.mant), int64_t{gs.exp} + us.exp + 16);
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + m * N : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + m * N;
    int d = 0;
    const int64_t A = vquant(v, N, a.qmax, y8, y16, &d, _mm512_reduce_max_epu64(mx));
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
    for (int64_t h0 = 0; h0 + hd <= a.width; h0 += hd)
      for (int i = 0; i < hd; i += 16) {
        const __mmask16 k = tail16(hd - i);
        const V xv = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, x + h0 + i));
        const V tv = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, t + i));
        const V P = _mm512_mullo_epi32(xv, tv);                                   // a c, b s
        const V Q = _mm512_mullo_epi32(xv, _mm512_shuffle_epi32(tv, _MM_PERM_CDAB));  // a s, b c
        const V even = _mm512_sub_epi32(P, _mm512_shuffle_epi32(P, _MM_PERM_CDAB));
        const V odd = _mm512_add_epi32(Q, _mm512_shuffle_epi32(Q, _MM_PERM_CDAB));
        // even/odd lie in [-2^31 + 2^15, 2^31] (2^31 when all four values are -32768), so they wrap
        // in int32: add 2^14 + (2^31 - 2^15) modulo 2^32 (then in [0, 2^32)), shift as unsigned
        // and take the offset (2^31 - 2^15) / 2^15 = 65535 back out: rshift_round, exact.
        V r = _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, odd);
        r = _mm512_add_epi32(r, _mm512_set1_epi32(int32_t((1u << 14) + (1u << 31) - (1u << 15))));
        r = _mm512_sub_epi32(_mm512_srli_epi32(r, 15), _mm512_set1_epi32(65535));
        _mm512_mask_cvtsepi32_storeu_epi16(y + h0 + i, k, r);
      }
    const RowScale in = a.xs[m];
    a.ys[m] = in.mant == 0 ? RowScale{} : RowScale{in.mant, clamp_exp(int64_t{in.exp} - 1)};
  }
}

// ---- residual_add / embedding -------------------------------------------------------------------

// shift_s(x, s) for |x| <= 2^30 followed by an int32 saturation of (h + result): a left shift by
// more than 32 saturates the same way as by 32, so the shift is clamped there.
inline V vshift_small(V x, int64_t s) {
  if (s > 62) return _mm512_setzero_si512();
  if (s < -32) s = -32;
  return vshift_uniform(x, int(s));
}

void x_residual_add(const ResidualArgs& a, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale ys = a.ys[m];
    const int64_t sh = int64_t{ys.exp} - a.e;
    const V mant = s64(ys.mant);
    const int32_t* h = a.h + m * a.d;
    const int16_t* y = a.y + m * a.d;
    int32_t* out = a.out + m * a.d;
    for (int64_t i = 0; i < a.d; i += 8) {
      const __mmask8 k = tail8(a.d - i);
      const V t = vshift_small(_mm512_mul_epi32(_mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(k, y + i)), mant), sh);
      const V hv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, h + i));
      _mm512_mask_cvtsepi64_storeu_epi32(out + i, k, _mm512_add_epi64(hv, t));
    }
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
    const V mant = s64(ts.mant);
    for (int64_t i = 0; i < a.d; i += 8) {
      const __mmask8 k = tail8(a.d - i);
      const V v = _mm512_mul_epi32(_mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(k, t + i)), mant);
      _mm512_mask_cvtsepi64_storeu_epi32(out + i, k, vshift_small(v, sh));
    }
  }
}

// ---- attention ----------------------------------------------------------------------------------

// s_u = q . kc[u] for u in [0, n), 16 positions per step (int32, exact).
void dots(const int16_t* q, const int8_t* kbase, int64_t rw, int hd, int64_t n, int32_t* out) {
  const int hd4 = hd & ~3;
  V q02[64], q13[64];  // hd <= 256
  for (int j = 0; j < hd4; j += 4) {
    q02[j / 4] = _mm512_set1_epi32(int32_t(uint32_t(uint16_t(q[j])) | uint32_t(uint16_t(q[j + 2])) << 16));
    q13[j / 4] = _mm512_set1_epi32(int32_t(uint32_t(uint16_t(q[j + 1])) | uint32_t(uint16_t(q[j + 3])) << 16));
  }
  const V lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const V rwv = _mm512_set1_epi32(int32_t(rw));
  for (int64_t u0 = 0; u0 < n; u0 += 16) {
    const __mmask16 k = tail16(n - u0);
    const V idx = _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(int32_t(u0))), rwv);
    V acc = _mm512_setzero_si512();
    for (int j = 0; j < hd4; j += 4) {
      const V x = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, kbase + j, 1);
      const V ev = _mm512_srai_epi16(_mm512_slli_epi16(x, 8), 8);
      const V od = _mm512_srai_epi16(x, 8);
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(ev, q02[j / 4]));
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(od, q13[j / 4]));
    }
    _mm512_storeu_si512(out + u0, acc);  // scratch is padded
  }
  if (hd4 != hd)
    for (int64_t u = 0; u < n; ++u) {
      const int8_t* kr = kbase + u * rw;
      int32_t s = 0;
      for (int j = hd4; j < hd; ++j) s += int32_t{q[j]} * kr[j];
      out[u] += s;
    }
}

// o[0..hd) += sum_u C[u] * vc[u][0..hd), hd <= 64 (NC = ceil(hd / 8) accumulators).
template <int NC>
void pv(const int64_t* C, const int8_t* vbase, int64_t rw, int hd, int64_t n, int64_t* o) {
  V acc[NC];
  for (int k = 0; k < NC; ++k) acc[k] = _mm512_setzero_si512();
  const int rem = hd - 8 * (NC - 1);
  const __mmask16 tm = __mmask16((1u << rem) - 1);
  for (int64_t u = 0; u < n; ++u) {
    const V c = _mm512_set1_epi64(C[u]);
    const int8_t* vr = vbase + u * rw;
    for (int k = 0; k < NC; ++k) {
      const __m128i b = k < NC - 1 ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(vr + 8 * k))
                                   : _mm_maskz_loadu_epi8(tm, vr + 8 * k);
      acc[k] = _mm512_add_epi64(acc[k], _mm512_mullo_epi64(c, _mm512_cvtepi8_epi64(b)));
    }
  }
  for (int k = 0; k < NC; ++k) {
    const __mmask8 sm = k < NC - 1 ? __mmask8(0xFF) : __mmask8((1u << rem) - 1);
    _mm512_mask_storeu_epi64(o + 8 * k, sm, acc[k]);
  }
}

void pv_any(const int64_t* C, const int8_t* vbase, int64_t rw, int hd, int64_t n, int64_t* o) {
  for (int j0 = 0; j0 < hd; j0 += 64) {
    const int w = hd - j0 < 64 ? hd - j0 : 64;
    switch ((w + 7) / 8) {
      case 1: pv<1>(C, vbase + j0, rw, w, n, o + j0); break;
      case 2: pv<2>(C, vbase + j0, rw, w, n, o + j0); break;
      case 3: pv<3>(C, vbase + j0, rw, w, n, o + j0); break;
      case 4: pv<4>(C, vbase + j0, rw, w, n, o + j0); break;
      case 5: pv<5>(C, vbase + j0, rw, w, n, o + j0); break;
      case 6: pv<6>(C, vbase + j0, rw, w, n, o + j0); break;
      case 7: pv<7>(C, vbase + j0, rw, w, n, o + j0); break;
      default: pv<8>(C, vbase + j0, rw, w, n, o + j0); break;
    }
  }
}

void x_attention_heads(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch) {
  const int H = a.heads, G = a.kv_heads, hd = a.head_dim;
  if (!attn_valid(a) || a.cache_rows * G * hd >= (int64_t{1} << 31) - 1024)
    return ref_attention_heads(a, u0, u1, scratch);
  const AttnScratch s = attn_scratch(scratch, a.cache_rows);
  const int64_t clip = attn_clip(a), rw = int64_t{G} * hd;
  const V lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const V zero = _mm512_setzero_si512();
  for (int64_t t = u0; t < u1; ++t) {
    const int64_t m = t / H;
    const int h = int(t % H);
    const int g = h / (H / G);
    const int64_t n = a.pos + m + 1;
    int64_t* o = a.work + m * H * hd + int64_t{h} * hd;
    const RowScale qs = a.qs[m];
    dots(a.q + m * H * hd + int64_t{h} * hd, a.kc + int64_t{g} * hd, rw, hd, n, s.S32);
    // logits, their max, and the smallest value exponent
    const V qm = s64(qs.mant), qe = s64(int64_t{qs.exp} - 16);
    V vmax = s64(INT64_MIN), vemin = s64(INT64_MAX);
    for (int64_t u = 0; u < n; u += 8) {
      const __mmask8 k = tail8(n - u);
      const V idx = _mm512_add_epi64(_mm512_mullo_epi64(_mm512_add_epi64(lane, s64(u)), s64(G)), s64(g));
      const V ks = _mm512_mask_i64gather_epi64(zero, k, idx, a.kcs, 8);
      const V kmant = _mm512_srai_epi64(_mm512_slli_epi64(ks, 32), 32), kexp = _mm512_srai_epi64(ks, 32);
      const V sv = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.S32 + u)));
      const V w = _mm512_mullo_epi64(_mm512_mul_epi32(sv, kmant), qm);
      V L = vshs(w, _mm512_add_epi64(kexp, qe));
      L = _mm512_max_epi64(_mm512_min_epi64(L, s64(kL40)), s64(-kL40));
      _mm512_storeu_si512(s.L + u, L);
      vmax = _mm512_mask_max_epi64(vmax, k, vmax, L);
      const V vs = _mm512_mask_i64gather_epi64(zero, k, idx, a.vcs, 8);
      const V vmant = _mm512_slli_epi64(vs, 32);
      vemin = _mm512_mask_min_epi64(vemin, _mm512_test_epi64_mask(vmant, vmant), vemin, _mm512_srai_epi64(vs, 32));
    }
    const int64_t Lmax = _mm512_reduce_max_epi64(vmax), Emin = _mm512_reduce_min_epi64(vemin);
    for (int j = 0; j < hd; ++j) o[j] = 0;
    a.work_exp[t] = INT32_MAX;
    if (Emin == INT64_MAX) continue;
    // e_u and Z
    V zsum = zero;
    const V lmax = s64(Lmax), nclip = s64(-clip);
    for (int64_t u = 0; u < n; u += 8) {
      const __mmask8 k = tail8(n - u);
      const V x = _mm512_max_epi64(_mm512_sub_epi64(_mm512_loadu_si512(s.L + u), lmax), nclip);
      const V e = vexpq<16>(x);
      _mm512_storeu_si512(s.E + u, e);
      zsum = _mm512_mask_add_epi64(zsum, k, zsum, e);
    }
    const int64_t Z = _mm512_reduce_add_epi64(zsum);
    const V F = s64(kSat62 / Z), emin = s64(Emin), rnd = s64(int64_t{1} << 45);
    // c_u
    for (int64_t u = 0; u < n; u += 8) {
      const __mmask8 k = tail8(n - u);
      const V idx = _mm512_add_epi64(_mm512_mullo_epi64(_mm512_add_epi64(lane, s64(u)), s64(G)), s64(g));
      const V vs = _mm512_mask_i64gather_epi64(zero, k, idx, a.vcs, 8);
      const V vmant = _mm512_srai_epi64(_mm512_slli_epi64(vs, 32), 32), vexp = _mm512_srai_epi64(vs, 32);
      const V pu = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(_mm512_loadu_si512(s.E + u), F), rnd), 46);
      const V c = vshs(_mm512_mullo_epi64(pu, vmant), _mm512_sub_epi64(vexp, emin));
      _mm512_storeu_si512(s.C + u, _mm512_maskz_mov_epi64(k, c));
    }
    pv_any(s.C, a.vc + int64_t{g} * hd, rw, hd, n, o);
    a.work_exp[t] = clamp_exp(Emin + 16);
  }
}

void x_attention_out(const AttentionArgs& a, int64_t m0, int64_t m1, void* scratch) {
  if (!attn_valid(a)) return ref_attention_out(a, m0, m1, scratch);
  const int H = a.heads, hd = a.head_dim;
  const int64_t W = int64_t{H} * hd;
  for (int64_t m = m0; m < m1; ++m) {
    int64_t* o = a.work + m * W;
    int8_t* y = a.y + m * W;
    int64_t Er = INT32_MAX;
    for (int h = 0; h < H; ++h) {
      const int64_t e = a.work_exp[m * H + h];
      if (e < Er) Er = e;
    }
    if (Er == INT32_MAX) {
      for (int64_t i = 0; i < W; ++i) y[i] = 0;
      a.ys[m] = RowScale{};
      continue;
    }
    V mx = _mm512_setzero_si512();
    for (int h = 0; h < H; ++h) {
      const int64_t e = a.work_exp[m * H + h];
      int64_t* oh = o + int64_t{h} * hd;
      for (int j = 0; j < hd; j += 8) {
        const __mmask8 k = tail8(hd - j);
        V v = _mm512_maskz_loadu_epi64(k, oh + j);
        if (e == INT32_MAX || e - Er > 62) v = _mm512_setzero_si512();
        else v = vshift_uniform(v, int(e - Er));
        _mm512_mask_storeu_epi64(oh + j, k, v);
        mx = _mm512_max_epu64(mx, _mm512_abs_epi64(v));
      }
    }
    int d = 0;
    const int64_t A = vquant(o, W, a.qmax, y, nullptr, &d, _mm512_reduce_max_epu64(mx));
    a.ys[m] = scale_of_i(A, a.qmax, d, 1, Er);
  }
}

}  // namespace
}  // namespace llm

extern const LlmKernel kLlmAvx512 = {
    Isa::avx512,           "avx512",
    llm::x_rmsnorm,        llm::x_rope,
    llm::ref_attention_cache, llm::x_attention_heads, llm::x_attention_out,
    llm::x_swiglu,         llm::x_residual_add,
    llm::x_embedding,      llm::ref_hadamard};

}  // namespace fq::k
