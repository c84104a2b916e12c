// AVX-512 (F/BW/DQ/VL) variant of the llm family: the same bytes as ref.cc for every input the
// contract allows. Vectorized: attention_heads (across positions u: gathered dot products, logits,
// exp_q, probabilities, and the P.V accumulation in int64; for head_dim 8 every kv head of a
// position at once with contiguous loads, see attn_row8), the attention cache write, the row
// quantizer, rmsnorm, swiglu (its division by a Newton reciprocal and an exact correction), rope,
// residual_add, embedding, attention_out and hadamard (H_b by vpdpwssd, butterflies in int32).
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (the "undefined" pass-through operand).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "fq/kernels/cpu.h"
#include "llm_internal.h"
#include "x86_avx512_helpers.h"

namespace fq::k {
namespace llm {
namespace {

using namespace avx512h;

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

// exp_q(x, F) per lane for x <= 0 (avx512h::vexpq of nx = -x).
template <int F>
inline V vexpq_x(V x) { return vexpq<F>(_mm512_sub_epi64(zero(), x)); }

// quantize_row with A0 = max|v| known (avx512h::vquant_gen).
template <typename T>
int64_t vquant(const T* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout, uint64_t A0) {
  return vquant_gen(n, qmax, llm::QRow{q8, q16}, A0, dout, [v](int64_t i, __mmask8 k) { return load8(v + i, k); });
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
    int d = 0;
    const int64_t A = vquant(xs, D, a.qmax, y8, y16, &d, _mm512_reduce_max_epu64(mx2));
    a.ys[m] = rms_row_scale(a, c, sum, A, d);
  }
}

// ---- swiglu -------------------------------------------------------------------------------------

void x_swiglu(const SwigluArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* v = reinterpret_cast<int64_t*>(align64(scratch));  // pad16(N) + 16: whole 16-element stores
  const int64_t N = a.n, lim = int64_t{1} << 17;
  const __m512i z32 = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
  const __m512i t15 = _mm512_set1_epi32(1 << 15), t16 = _mm512_set1_epi32(1 << 16);
  const __m512i last = _mm512_set1_epi32(kSigLast), low16 = _mm512_set1_epi32(0xFFFF);
  const __m512i lim32 = _mm512_set1_epi32(int32_t(lim)), nlim32 = _mm512_set1_epi32(int32_t(-lim));
  // lanes reordered (0 8 1 9 .. 7 15): the even dwords hold elements 0-7, the odd ones 8-15
  const __m512i order = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  const int* tab = reinterpret_cast<const int*>(sig_table());
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* g = a.gate + m * N;
    const int16_t* u = a.up + m * N;
    const RowScale gs = a.gs[m], us = a.us[m];
    const int64_t sh = int64_t{gs.exp} - 12;
    // 16 elements per step in int32 lanes (the AVX2 variant's scheme): zq = clamp(shift_s(g gm,
    // sh), +-2^17) (|g gm| < 2^30; a right shift gives 0 from sh >= 31 on, as for any larger sh;
    // a left shift saturates: clamp(clamp(x, +-2^max(17 - l, 0)) 2^l, +-2^17), l = min(-sh, 18)),
    // sig gathered from sig_table (zq < 0 by the identity there), v = (g u) sig as two vpmuldq.
    const __m512i gm32 = _mm512_set1_epi32(gs.mant);
    const int l = sh < 0 ? int(sh < -18 ? 18 : -sh) : 0;
    const __m512i pre = _mm512_set1_epi32(int32_t(int64_t{1} << (17 - l > 0 ? 17 - l : 0)));
    const __m512i npre = _mm512_sub_epi32(z32, pre);
    // (per-lane counts: one uop each on Intel, the xmm-count shifts two)
    const __m512i cr = _mm512_set1_epi32(int(sh > 32 ? 32 : sh)), cr1 = _mm512_set1_epi32(int(sh > 32 ? 31 : sh - 1));
    const __m512i cl = _mm512_set1_epi32(l);
    V mx = zero();
    for (int64_t i = 0; i < N; i += 16) {
      const __mmask16 k = tail16(N - i);  // lanes past N: g = u = 0, so v = 0
      const __m512i g32 = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, g + i));
      const __m512i u32 = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, u + i));
      __m512i z = _mm512_mullo_epi32(g32, gm32);
      if (sh > 0) z = _mm512_add_epi32(_mm512_srav_epi32(z, cr), _mm512_and_si512(_mm512_srav_epi32(z, cr1), one));
      else if (sh < 0) z = _mm512_sllv_epi32(_mm512_max_epi32(_mm512_min_epi32(z, pre), npre), cl);
      z = _mm512_max_epi32(_mm512_min_epi32(z, lim32), nlim32);
      const __m512i T = _mm512_add_epi32(
          _mm512_and_si512(_mm512_i32gather_epi32(_mm512_min_epi32(_mm512_abs_epi32(z), last), tab, 2), low16), t15);
      const __m512i tn = _mm512_maskz_sub_epi32(_mm512_cmpneq_epi32_mask(T, t16), _mm512_sub_epi32(t16, one), T);
      const __m512i sig = _mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(z, z32), T, tn);
      const __m512i gu = _mm512_permutexvar_epi32(order, _mm512_mullo_epi32(g32, u32));  // |g u| <= 2^30
      const __m512i so = _mm512_permutexvar_epi32(order, sig);
      const V v0 = _mm512_mul_epi32(gu, so);
      const V v1 = _mm512_mul_epi32(_mm512_srli_epi64(gu, 32), _mm512_srli_epi64(so, 32));
      _mm512_storeu_si512(v + i, v0);
      _mm512_storeu_si512(v + i + 8, v1);
      mx = _mm512_max_epu64(mx, _mm512_max_epu64(_mm512_abs_epi64(v0), _mm512_abs_epi64(v1)));
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

void attn_heads_generic(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch) {
  const int H = a.heads, G = a.kv_heads, hd = a.head_dim;
  if (!attn_valid(a) || a.cache_rows * G * hd >= (int64_t{1} << 31) - 1024)
    return ref_attention_heads(a, u0, u1, scratch);
  const AttnScratch s = attn_scratch(scratch, a);
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
      const V e = vexpq_x<16>(x);
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

// ---- attention, head_dim 8 with G in {1, 2, 4}: every kv head of a position at once ----------
// With hd == 8 the cache is a flat array of slots k = u * G + g: key kc[8k, 8k + 8), scale kcs[k],
// value vc[8k, 8k + 8), scale vcs[k]. For the query heads h = g * R + r of one r (R = H / G) the
// query of slot k depends on k % G only, and G divides the vector widths below, so steps 2's
// per-position work runs over slots: every load is contiguous and the per-slot scales are read once
// per (row, r) instead of once per head. Lane l of an 8-slot vector starting at a multiple of 8
// belongs to kv head l % G.

// out[k] = q_{(k % G) * R + r} . key[k] for k in [0, K), zero up to the next multiple of 16.
void dots8(const int16_t* q, int G, int R, int r, const int8_t* kc, int64_t K, int32_t* out) {
  alignas(64) int16_t qv[32];
  for (int sl = 0; sl < 4; ++sl)
    for (int j = 0; j < 8; ++j) qv[sl * 8 + j] = q[((sl % G) * R + r) * 8 + j];
  const V Q = _mm512_load_si512(qv);
  // element 4 * lane128 + i of the reduced vector holds slot 4 * i + lane128
  const V perm = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    V P[4];
    for (int i = 0; i < 4; ++i) {
      const int8_t* src = kc + (k0 + 4 * i) * 8;
      const int64_t left = (K - k0 - 4 * i) * 8;  // bytes of valid keys from src
      __m256i b;
      if (left >= 32) b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
      else if (left <= 0) b = _mm256_setzero_si256();
      else b = _mm256_maskz_loadu_epi8(__mmask32((uint64_t{1} << left) - 1), src);
      P[i] = _mm512_madd_epi16(_mm512_cvtepi8_epi16(b), Q);  // lanes (slot, pair)
    }
    const V t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(P[0], P[1]), _mm512_unpackhi_epi32(P[0], P[1]));
    const V t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(P[2], P[3]), _mm512_unpackhi_epi32(P[2], P[3]));
    const V sum = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
    _mm512_storeu_si512(out + k0, _mm512_permutexvar_epi32(perm, sum));
  }
}

// acc[g][0..8) = sum_u C[u * G + g] * vc[u * G + g][0..8)   (C < 2^31, exact in int64)
template <int G>
void pv8(const int64_t* C, const int8_t* vc, int64_t n, V* acc) {
  for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_si512();
  for (int64_t u = 0; u < n; ++u)
    for (int g = 0; g < G; ++g) {
      const int64_t k = u * G + g;
      const V v = _mm512_cvtepi8_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(vc + 8 * k)));
      acc[g] = _mm512_add_epi64(acc[g], _mm512_mul_epi32(_mm512_set1_epi64(C[k]), v));
    }
}

// The same for G == 4 by vpdpbusd: c (< 2^31, int32 C32[k] for slot k) as four unsigned bytes, the
// values as signed bytes, four positions per int32 lane: sum_u c v = sum_b 2^(8b) sum_u c_b v
// (exact; an int32 lane gains <= 4 * 255 * 128 per step and is flushed to int64 every 4096 steps).
// C32 is zero from slot K up to the next multiple of 8 (+ 16).
void pv_g4(const int32_t* C32, const int8_t* vc, int64_t n, V* acc) {
  // 128-bit lane l of the transposed values holds kv head {0, 2, 1, 3}[l]: pidx gathers the c of
  // that head for the block's 4 positions into the lane, ctl[b] spreads their byte b to every dword
  const int gl[4] = {0, 2, 1, 3};
  alignas(64) int32_t pi[16];
  for (int l = 0; l < 4; ++l)
    for (int du = 0; du < 4; ++du) pi[4 * l + du] = 4 * du + gl[l];
  const V pidx = _mm512_load_si512(pi);
  V ctl[4];
  for (int b = 0; b < 4; ++b) {
    alignas(64) int8_t c[64];
    for (int i = 0; i < 64; ++i) c[i] = int8_t(4 * (i % 4) + b);
    ctl[b] = _mm512_load_si512(c);
  }
  V tot[2][2];
  for (auto& t : tot) t[0] = t[1] = _mm512_setzero_si512();
  const int64_t nblk = (n + 3) / 4;
  for (int64_t c0 = 0; c0 < nblk; c0 += 4096) {
    const int64_t c1 = nblk - c0 < 4096 ? nblk : c0 + 4096;
    V a[4][2];
    for (auto& x : a) x[0] = x[1] = _mm512_setzero_si512();
    for (int64_t blk = c0; blk < c1; ++blk) {
      const int8_t* src = vc + blk * 128;  // rows 4 blk .. 4 blk + 3, 32 bytes each
      const int64_t left = (n - blk * 4) * 32;
      V X, Y;
      if (left >= 128) {
        X = _mm512_loadu_si512(src);
        Y = _mm512_loadu_si512(src + 64);
      } else {
        X = _mm512_maskz_loadu_epi8(left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1, src);
        Y = _mm512_maskz_loadu_epi8(left <= 64 ? __mmask64(0) : (__mmask64(1) << (left - 64)) - 1, src + 64);
      }
      // X = [u0 g0g1, u0 g2g3, u1 g0g1, u1 g2g3], Y the same for u2, u3 (128-bit lanes)
      const V P = _mm512_shuffle_i64x2(X, Y, 0x44), Q = _mm512_shuffle_i64x2(X, Y, 0xEE);
      const V Rlo = _mm512_unpacklo_epi8(P, Q), Rhi = _mm512_unpackhi_epi8(P, Q);
      const V S = _mm512_shuffle_i64x2(Rlo, Rhi, 0x44), T = _mm512_shuffle_i64x2(Rlo, Rhi, 0xEE);
      const V B0 = _mm512_unpacklo_epi16(S, T), B1 = _mm512_unpackhi_epi16(S, T);  // j 0..3, 4..7
      const V Cp = _mm512_permutexvar_epi32(pidx, _mm512_loadu_si512(C32 + blk * 16));
      for (int b = 0; b < 4; ++b) {
        const V A = _mm512_shuffle_epi8(Cp, ctl[b]);
        a[b][0] = _mm512_dpbusd_epi32(a[b][0], A, B0);
        a[b][1] = _mm512_dpbusd_epi32(a[b][1], A, B1);
      }
    }
    for (int hf = 0; hf < 2; ++hf)
      for (int b = 0; b < 4; ++b) {
        const V lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(a[b][hf]));
        const V hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(a[b][hf], 1));
        tot[hf][0] = _mm512_add_epi64(tot[hf][0], _mm512_slli_epi64(lo, unsigned(8 * b)));
        tot[hf][1] = _mm512_add_epi64(tot[hf][1], _mm512_slli_epi64(hi, unsigned(8 * b)));
      }
  }
  alignas(64) int64_t t[2][16], o[4][8];
  for (int hf = 0; hf < 2; ++hf) {
    _mm512_store_si512(t[hf], tot[hf][0]);
    _mm512_store_si512(t[hf] + 8, tot[hf][1]);
  }
  for (int hf = 0; hf < 2; ++hf)
    for (int l = 0; l < 4; ++l)
      for (int i = 0; i < 4; ++i) o[gl[l]][4 * hf + i] = t[hf][4 * l + i];
  for (int g = 0; g < 4; ++g) acc[g] = _mm512_load_si512(o[g]);
}

// Per-lane-class reductions of an 8-lane vector: out[g] = op over lanes l with l % G == g.
inline void lane_classes_max(V v, int G, int64_t* out) {
  alignas(64) int64_t t[8];
  _mm512_store_si512(t, v);
  for (int g = 0; g < G; ++g) out[g] = INT64_MIN;
  for (int l = 0; l < 8; ++l) out[l % G] = t[l] > out[l % G] ? t[l] : out[l % G];
}
inline V lane_classes_vec(const int64_t* val, int G) {
  alignas(64) int64_t t[8];
  for (int l = 0; l < 8; ++l) t[l] = val[l % G];
  return _mm512_load_si512(t);
}

// Step 2 for row m, heads [hA, hB) (hd == 8, G in {1, 2, 4}).
void attn_row8(const AttentionArgs& a, int64_t m, int hA, int hB, const AttnScratch& s, int64_t clip) {
  const int H = a.heads, G = a.kv_heads, R = H / G;
  const int64_t n = a.pos + m + 1, K = n * G;
  const int16_t* q = a.q + m * H * 8;
  const RowScale qs = a.qs[m];
  const V zero = _mm512_setzero_si512(), one = s64(1);
  const int64_t* kcs = reinterpret_cast<const int64_t*>(a.kcs);
  const int64_t* vcs = reinterpret_cast<const int64_t*>(a.vcs);
  // Emin per kv head (over slots with a nonzero value mantissa)
  V vemin = s64(INT64_MAX);
  for (int64_t k0 = 0; k0 < K; k0 += 8) {
    const __mmask8 k = tail8(K - k0);
    const V vs = _mm512_maskz_loadu_epi64(k, vcs + k0);
    const V vmant = _mm512_slli_epi64(vs, 32);
    vemin = _mm512_mask_min_epi64(vemin, _mm512_test_epi64_mask(vmant, vmant), vemin, _mm512_srai_epi64(vs, 32));
  }
  int64_t Emin[4], Esafe[4];
  {
    alignas(64) int64_t t[8];
    _mm512_store_si512(t, vemin);
    for (int g = 0; g < G; ++g) Emin[g] = INT64_MAX;
    for (int l = 0; l < 8; ++l) Emin[l % G] = t[l] < Emin[l % G] ? t[l] : Emin[l % G];
    for (int g = 0; g < G; ++g) Esafe[g] = Emin[g] == INT64_MAX ? 0 : Emin[g];
  }
  const V eminv = lane_classes_vec(Esafe, G);
  const V qm = s64(qs.mant), qe = s64(int64_t{qs.exp} - 16);
  const V lo40 = s64(-kL40), hi40 = s64(kL40), nclip = s64(-clip), rnd45 = s64(int64_t{1} << 45);
  int32_t* const C32 = reinterpret_cast<int32_t*>(s.C);  // G == 4: c as int32 (pv_g4)
  for (int r = 0; r < R; ++r) {
    bool any = false;
    for (int g = 0; g < G; ++g) any |= g * R + r >= hA && g * R + r < hB;
    if (!any) continue;
    dots8(q, G, R, r, a.kc, K, s.S32);
    // logits L = clamp(shift_s(s * kmant * qmant, qexp + kexp - 16), +-2^40) and their max
    V vmax = s64(INT64_MIN);
    for (int64_t k0 = 0; k0 < K; k0 += 8) {
      const __mmask8 k = tail8(K - k0);
      const V ks = _mm512_maskz_loadu_epi64(k, kcs + k0);
      const V sv = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.S32 + k0)));
      const V w = _mm512_mul_epi32(sv, _mm512_mullo_epi32(ks, qm));  // |kmant * qmant| <= 2^30
      const V sh = _mm512_add_epi64(_mm512_srai_epi64(ks, 32), qe);
      V L;
      if (_mm512_mask_cmplt_epi64_mask(k, sh, zero))
        L = vshs(w, sh);
      else  // sh >= 0, |w| < 2^60: ((2w >> sh) + 1) >> 1 is rshift_round (and w for sh == 0, 0 beyond 62)
        L = _mm512_srai_epi64(_mm512_add_epi64(_mm512_srav_epi64(_mm512_slli_epi64(w, 1), sh), one), 1);
      L = _mm512_max_epi64(_mm512_min_epi64(L, hi40), lo40);
      _mm512_storeu_si512(s.L + k0, L);
      vmax = _mm512_mask_max_epi64(vmax, k, vmax, L);
    }
    int64_t Lmax[4];
    lane_classes_max(vmax, G, Lmax);
    const V lmaxv = lane_classes_vec(Lmax, G);
    // e = exp_q(max(L - Lmax, -clip)), Z per kv head
    V zsum = zero;
    for (int64_t k0 = 0; k0 < K; k0 += 8) {
      const __mmask8 k = tail8(K - k0);
      const V x = _mm512_max_epi64(_mm512_sub_epi64(_mm512_loadu_si512(s.L + k0), lmaxv), nclip);
      const V e = vexpq_x<16>(x);
      _mm512_storeu_si512(s.E + k0, e);
      zsum = _mm512_mask_add_epi64(zsum, k, zsum, e);
    }
    int64_t Fg[4];
    {
      alignas(64) int64_t t[8];
      _mm512_store_si512(t, zsum);
      int64_t Z[4] = {0, 0, 0, 0};
      for (int l = 0; l < 8; ++l) Z[l % G] += t[l];
      for (int g = 0; g < G; ++g) Fg[g] = kSat62 / Z[g];  // Z >= 2^30 (the max has e = 2^30)
    }
    const V Fv = lane_classes_vec(Fg, G);
    // c = shift_s(p * vmant, vexp - Emin) with p = rshift_round(e * F, 46); the shift is >= 0 for
    // every slot with vmant != 0 (and p * 0 = 0 for any shift): ((2 p vmant >> sh) + 1) >> 1
    for (int64_t k0 = 0; k0 < K; k0 += 8) {
      const __mmask8 k = tail8(K - k0);
      const V vs = _mm512_maskz_loadu_epi64(k, vcs + k0);
      const V p = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(_mm512_loadu_si512(s.E + k0), Fv), rnd45), 46);
      const V sh = _mm512_sub_epi64(_mm512_srai_epi64(vs, 32), eminv);
      const V c2 = _mm512_srlv_epi64(_mm512_mul_epu32(p, _mm512_slli_epi64(vs, 1)), sh);
      const V c = _mm512_maskz_srli_epi64(k, _mm512_add_epi64(c2, one), 1);
      if (G == 4) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(C32 + k0), _mm512_cvtepi64_epi32(c));
      } else {
        _mm512_storeu_si512(s.C + k0, c);
      }
    }
    V acc[4];
    if (G == 1) pv8<1>(s.C, a.vc, n, acc);
    else if (G == 2) pv8<2>(s.C, a.vc, n, acc);
    else {
      _mm512_storeu_si512(C32 + ((K + 7) & ~int64_t{7}), zero);
      pv_g4(C32, a.vc, n, acc);
    }
    for (int g = 0; g < G; ++g) {
      const int h = g * R + r;
      if (h < hA || h >= hB) continue;
      int64_t* o = a.work + m * H * 8 + int64_t{h} * 8;
      if (Emin[g] == INT64_MAX) {
        _mm512_storeu_si512(o, zero);
        a.work_exp[m * H + h] = INT32_MAX;
      } else {
        _mm512_storeu_si512(o, acc[g]);
        a.work_exp[m * H + h] = clamp_exp(Emin[g] + 16);
      }
    }
  }
}

void x_attention_heads(const AttentionArgs& a, int64_t u0, int64_t u1, void* scratch) {
  const int H = a.heads, G = a.kv_heads;
  if (!attn_valid(a) || a.head_dim != 8 || !(G == 1 || G == 2 || G == 4))
    return attn_heads_generic(a, u0, u1, scratch);
  const AttnScratch s = attn_scratch(scratch, a);
  const int64_t clip = attn_clip(a);
  for (int64_t t = u0; t < u1;) {
    const int64_t m = t / H;
    const int hA = int(t % H);
    const int hB = int(u1 - t < H - hA ? hA + (u1 - t) : H);
    attn_row8(a, m, hA, hB, s, clip);
    t += hB - hA;
  }
}

void x_attention_out(const AttentionArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  attn_out_rows(
      a, m0, m1,
      [](int64_t* oh, int hd, int64_t sh) {
        V mx = _mm512_setzero_si512();
        for (int j = 0; j < hd; j += 8) {
          const __mmask8 k = tail8(hd - j);
          const V v = sh > 62 ? _mm512_setzero_si512() : vshift_uniform(_mm512_maskz_loadu_epi64(k, oh + j), int(sh));
          _mm512_mask_storeu_epi64(oh + j, k, v);
          mx = _mm512_max_epu64(mx, _mm512_abs_epi64(v));
        }
        return _mm512_reduce_max_epu64(mx);
      },
      [&a](const int64_t* o, int64_t W, int8_t* y, int64_t Er, uint64_t A0) {
        int d = 0;
        const int64_t A = vquant(o, W, a.qmax, y, nullptr, &d, A0);
        return scale_of_i(A, a.qmax, d, 1, Er);
      });
}

// ---- attention cache write ----------------------------------------------------------------------

void x_attention_cache(const AttentionArgs& a, void* /*scratch*/) {
  cache_write(a, [](const int16_t* src, int hd, const RowScale& sc, int8_t* dst) {
    V mx = _mm512_setzero_si512();
    for (int j = 0; j < hd; j += 8) mx = _mm512_max_epu64(mx, _mm512_abs_epi64(load_i16(src + j, tail8(hd - j))));
    int d = 0;
    const int64_t A = vquant(src, hd, 127, dst, nullptr, &d, _mm512_reduce_max_epu64(mx));
    return scale_of_i(A, 127, d, sc.mant, sc.exp);
  });
}

// ---- hadamard -----------------------------------------------------------------------------------

template <int NZ>
void hadamard_blocks(const int16_t* x16, int64_t nb, int b, const int32_t (*T)[48], int32_t* t) {
  const __mmask16 last = __mmask16((1u << (b - 16 * (NZ - 1))) - 1);
  for (int64_t jb = 0; jb < nb; ++jb) {
    V acc[NZ];
    for (int z = 0; z < NZ; ++z) acc[z] = _mm512_setzero_si512();
    const int16_t* xb = x16 + jb * b;
    for (int pp = 0; pp < b / 2; ++pp) {
      int32_t pair;
      __builtin_memcpy(&pair, xb + 2 * pp, 4);
      const V xv = _mm512_set1_epi32(pair);
      for (int z = 0; z < NZ; ++z)
        acc[z] = _mm512_dpwssd_epi32(acc[z], xv, _mm512_loadu_si512(T[pp] + 16 * z));
    }
    for (int z = 0; z < NZ; ++z)
      _mm512_mask_storeu_epi32(t + jb * b + 16 * z, z == NZ - 1 ? last : __mmask16(0xFFFF), acc[z]);
  }
}

void x_hadamard(const HadamardArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int b = hadamard_block(a.n);
  if (b == 0) return ref_hadamard(a, m0, m1, scratch);
  const int64_t n = a.n, nb = n / b;
  // scratch: t int32 [pad16(n) + 16], x16 int16 [pad16(n) + 16] (6 of the 8 bytes per entry)
  int32_t* t = reinterpret_cast<int32_t*>(align64(scratch));
  int16_t* x16 = reinterpret_cast<int16_t*>(t + pad16(n) + 16);
  const int w = b == 12 ? 0 : b == 20 ? 1 : b == 28 ? 2 : 3;
  const int32_t(*T)[48] = hadamard_pairs().t[w];
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* x = a.x + m * n;
    if (b == 1) {
      for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail16(n - i);
        const V v = a.x16 ? _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, a.x16 + m * n + i))
                          : _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, x + i));
        _mm512_mask_storeu_epi32(t + i, k, v);
      }
    } else {
      const int16_t* xs16 = a.x16 ? a.x16 + m * n : x16;
      for (int64_t i = 0; !a.x16 && i < n; i += 32) {
        const __mmask32 k = n - i >= 32 ? ~__mmask32(0) : __mmask32((uint64_t{1} << (n - i)) - 1);
        _mm512_mask_storeu_epi16(x16 + i, k, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(k, x + i)));
      }
      if (b == 12) hadamard_blocks<1>(xs16, nb, b, T, t);
      else if (b == 44) hadamard_blocks<3>(xs16, nb, b, T, t);
      else hadamard_blocks<2>(xs16, nb, b, T, t);
    }
    // Sylvester butterflies across blocks: segments of len * b contiguous entries (|t| <= n * 2^15).
    // b = 1, n >= 16: the stages len = 1, 2, 4, 8 stay inside one vector of 16 (lane j pairs with
    // lane j ^ len: the lower one gets p + q, the upper one p - q).
    int64_t len0 = b;
    if (b == 1 && n >= 16) {
      // lane permutations j -> j ^ 2^l and the lanes whose bit l is set (locals: no AVX-512 code
      // may run at static initialization)
      const V xor_idx[4] = {
          _mm512_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14),
          _mm512_setr_epi32(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13),
          _mm512_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11),
          _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)};
      const __mmask16 upper[4] = {0xAAAA, 0xCCCC, 0xF0F0, 0xFF00};
      for (int64_t i = 0; i < n; i += 16) {
        V v = _mm512_loadu_si512(t + i);
        for (int l = 0; l < 4; ++l) {
          const V w = _mm512_permutexvar_epi32(xor_idx[l], v);               // lane j ^ 2^l
          v = _mm512_mask_sub_epi32(_mm512_add_epi32(v, w), upper[l], w, v);  // upper: w - v
        }
        _mm512_storeu_si512(t + i, v);
      }
      len0 = 16;
    }
    for (int64_t len = len0; len < n; len <<= 1)
      for (int64_t i0 = 0; i0 < n; i0 += 2 * len)
        for (int64_t i = 0; i < len; i += 16) {
          const __mmask16 k = tail16(len - i);
          const V p = _mm512_maskz_loadu_epi32(k, t + i0 + i), q = _mm512_maskz_loadu_epi32(k, t + i0 + len + i);
          _mm512_mask_storeu_epi32(t + i0 + i, k, _mm512_add_epi32(p, q));
          _mm512_mask_storeu_epi32(t + i0 + len + i, k, _mm512_sub_epi32(p, q));
        }
    V mx = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; i += 16)
      mx = _mm512_max_epu32(mx, _mm512_abs_epi32(_mm512_maskz_loadu_epi32(tail16(n - i), t + i)));
    int d = 0;
    const int64_t A = vquant(t, n, a.qmax, a.y + m * n, nullptr, &d, _mm512_reduce_max_epu32(mx));
    a.ys[m] = scale_of_i(A, a.qmax, d, a.xs[m].mant, a.xs[m].exp);
  }
}

// ---- softmax ------------------------------------------------------------------------------------

// A table of up to 256 int16 entries in NB blocks of 64 (two registers each), looked up by word
// indices k in [0, 64 NB) with vpermi2w, the blocks selected by k >= 64 b.
template <int NB>
struct Tab16 {
  V lo[NB], hi[NB];
  explicit Tab16(const int16_t* t) {
    for (int b = 0; b < NB; ++b) lo[b] = _mm512_loadu_si512(t + 64 * b), hi[b] = _mm512_loadu_si512(t + 64 * b + 32);
  }
  V look(V k) const {
    V r = _mm512_permutex2var_epi16(lo[0], k, hi[0]);
    for (int b = 1; b < NB; ++b)
      r = _mm512_mask_mov_epi16(r, _mm512_cmpge_epu16_mask(k, _mm512_set1_epi16(int16_t(64 * b))),
                                _mm512_permutex2var_epi16(lo[b], k, hi[b]));
    return r;
  }
};

// t = max(shift_s(v, sh), -clip) per 64-bit lane for v <= 0, |v| < 2^31 (sh uniform): a left shift
// by l saturates at -clip <= -2^40 exactly like clamping v at -2^(41 - l) first.
inline V sm_tvec(V v, int64_t sh, V nclip) {
  if (sh > 62) v = _mm512_setzero_si512();
  else if (sh >= 0) v = vshift_uniform(v, int(sh));
  else {
    const int l = sh < -41 ? 41 : int(-sh);
    v = _mm512_sll_epi64(_mm512_max_epi64(v, s64(-(int64_t{1} << (41 - l)))), _mm_cvtsi32_si128(l));
  }
  return _mm512_max_epi64(v, nclip);
}

// Element outputs from e (Q30) or t, 8 lanes (sm_out of llm_internal.h).
inline V sm_outvec(int out, V e, V t, V F, V lnZ) {
  if (out == kLogSoftmaxI16) {
    const V r = _mm512_srai_epi64(_mm512_add_epi64(_mm512_sub_epi64(t, lnZ), s64(32)), 6);
    return _mm512_max_epi64(r, s64(-32768));  // t <= 0 <= lnZ: r <= 0
  }
  const int s = out == kSoftmaxU16 ? 46 : 54;
  const V p = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(e, F), s64(int64_t{1} << (s - 1))), s);
  return _mm512_min_epi64(p, s64(out == kSoftmaxU16 ? 65535 : 255));
}
inline void sm_store8(const SoftmaxArgs& a, int64_t k, __mmask8 msk, V v) {
  if (a.out == kSoftmaxU8) _mm512_mask_cvtepi64_storeu_epi8(static_cast<uint8_t*>(a.y) + k, msk, v);
  else _mm512_mask_cvtepi64_storeu_epi16(static_cast<int16_t*>(a.y) + k, msk, v);
}

// Any row (int8 or int16), exp per element in 64-bit lanes; e kept in scratch.
void sm_row_generic(const SoftmaxArgs& a, int64_t m, int64_t V_, const RowScale& s, int64_t clip, int64_t* e) {
  const int64_t n = a.n, base = m * n;
  auto xload = [&](int64_t i, __mmask8 k) -> V {
    if (a.in_bits == 8) return _mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(k, static_cast<const int8_t*>(a.x) + base + i));
    return _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(k, static_cast<const int16_t*>(a.x) + base + i));
  };
  V mx = s64(INT64_MIN);
  for (int64_t i = 0; i < V_; i += 8) {
    const __mmask8 k = tail8(V_ - i);
    mx = _mm512_mask_max_epi64(mx, k, mx, xload(i, k));
  }
  const V qx = s64(_mm512_reduce_max_epi64(mx)), mant = s64(s.mant), nclip = s64(-clip);
  const int64_t sh = int64_t{s.exp} - 16;
  V zs = _mm512_setzero_si512();
  for (int64_t i = 0; i < V_; i += 8) {
    const __mmask8 k = tail8(V_ - i);
    const V t = sm_tvec(_mm512_mul_epi32(_mm512_sub_epi64(xload(i, k), qx), mant), sh, nclip);
    const V ev = _mm512_maskz_mov_epi64(k, vexpq_x<16>(t));
    _mm512_storeu_si512(e + i, ev);
    zs = _mm512_add_epi64(zs, ev);
  }
  const int64_t Z = _mm512_reduce_add_epi64(zs);
  const V F = s64(kSat62 / Z), lnZ = s64(a.out == kLogSoftmaxI16 ? lnq16(uint64_t(Z)) : 0);
  for (int64_t i = 0; i < V_; i += 8) {
    const __mmask8 k = tail8(V_ - i);
    V t = _mm512_setzero_si512();
    if (a.out == kLogSoftmaxI16) t = sm_tvec(_mm512_mul_epi32(_mm512_sub_epi64(xload(i, k), qx), mant), sh, nclip);
    sm_store8(a, base + i, k, sm_outvec(a.out, _mm512_loadu_si512(e + i), t, F, lnZ));
  }
}

// Length of a table once its constant tail is cut to one entry (>= 1): 2 + the last index below
// K - 1 whose entry differs from entry K - 1 (of either table), 1 when there is none.
inline int tab_len2(const int16_t* a, const int16_t* b, int K) {
  const V la = _mm512_set1_epi16(a[K - 1]), lb = _mm512_set1_epi16(b ? b[K - 1] : 0);
  for (int i0 = (K - 2) & ~31; i0 >= 0 && K >= 2; i0 -= 32) {
    const __mmask32 in = tail32(K - 1 - i0);
    __mmask32 ne = _mm512_mask_cmpneq_epi16_mask(in, _mm512_loadu_si512(a + i0), la);
    if (b) ne |= _mm512_mask_cmpneq_epi16_mask(in, _mm512_loadu_si512(b + i0), lb);
    if (ne) return i0 + 31 - __builtin_clz(ne) + 2;
  }
  return 1;
}
inline int tab_len(const int16_t* t, int K) { return tab_len2(t, nullptr, K); }

// Z = sum over valid lanes of T[k] with T = TH * 2^16 + (TL + 32768), k = qx - x clamped to L - 1.
template <int NB>
int64_t sm_sum8(const int8_t* x, int64_t V_, int qx, int L, const int16_t* TH, const int16_t* TL) {
  const Tab16<NB> th(TH), tl(TL);
  const V qv = _mm512_set1_epi16(int16_t(qx)), lim = _mm512_set1_epi16(int16_t(L - 1)), ones = _mm512_set1_epi16(1);
  const V lo0 = _mm512_set1_epi16(-32768);
  int64_t hsum = 0, lsum = 0, lanes = 0;
  for (int64_t c0 = 0; c0 < V_; c0 += int64_t{32} << 14) {  // 32-bit accumulators: flush every 2^14 steps
    const int64_t c1 = V_ - c0 < (int64_t{32} << 14) ? V_ : c0 + (int64_t{32} << 14);
    V ah = _mm512_setzero_si512(), al = _mm512_setzero_si512();
    int64_t i = c0;
    for (; i + 32 <= c1; i += 32) {
      const V kx = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
      const V k = _mm512_min_epu16(_mm512_sub_epi16(qv, kx), lim);
      ah = _mm512_dpwssd_epi32(ah, th.look(k), ones);
      al = _mm512_dpwssd_epi32(al, tl.look(k), ones);
    }
    lanes += i - c0;
    if (i < c1) {
      const __mmask32 km = tail32(c1 - i);
      const V kx = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(km, x + i));
      const V k = _mm512_min_epu16(_mm512_sub_epi16(qv, kx), lim);
      ah = _mm512_dpwssd_epi32(ah, _mm512_maskz_mov_epi16(km, th.look(k)), ones);
      al = _mm512_dpwssd_epi32(al, _mm512_mask_mov_epi16(lo0, km, tl.look(k)), ones);
      lanes += 32;
    }
    hsum += _mm512_reduce_add_epi32(ah);
    lsum += _mm512_reduce_add_epi32(al);
  }
  return hsum * 65536 + lsum + 32768 * lanes;
}

template <int NB>
void sm_out8(const int8_t* x, int64_t n, int64_t V_, int qx, int L, const int16_t* O, int out, void* y, int16_t masked) {
  const Tab16<NB> to(O);
  const V qv = _mm512_set1_epi16(int16_t(qx)), lim = _mm512_set1_epi16(int16_t(L - 1)), mv = _mm512_set1_epi16(masked);
  int64_t i = 0;
  for (; i + 32 <= V_; i += 32) {
    const V kx = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    const V o = to.look(_mm512_min_epu16(_mm512_sub_epi16(qv, kx), lim));
    if (out == kSoftmaxU8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<uint8_t*>(y) + i), _mm512_cvtepi16_epi8(o));
    else _mm512_storeu_si512(static_cast<int16_t*>(y) + i, o);
  }
  for (; i < n; i += 32) {
    const __mmask32 kn = tail32(n - i), kv = i < V_ ? tail32(V_ - i) : 0;
    const V kx = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(kv, x + i));
    const V k = _mm512_min_epu16(_mm512_sub_epi16(qv, kx), lim);
    const V o = _mm512_mask_mov_epi16(mv, kv, to.look(k));
    if (out == kSoftmaxU8) _mm256_mask_storeu_epi8(static_cast<uint8_t*>(y) + i, kn, _mm512_cvtepi16_epi8(o));
    else _mm512_mask_storeu_epi16(static_cast<int16_t*>(y) + i, kn, o);
  }
}

// int8 rows: every valid element's k = qx - x is in [0, K), K = qx - min + 1 <= 256, so e, the
// output and its sum are tables of k (computed once per row with the vector exp_q) looked up with
// vpermi2w; the same values as the per-element formula.
void sm_row_i8(const SoftmaxArgs& a, int64_t m, int64_t V_, const RowScale& s, int64_t clip, void* scratch) {
  const int64_t n = a.n, base = m * n;
  const int8_t* x = static_cast<const int8_t*>(a.x) + base;
  V mx = _mm512_set1_epi8(-128), mn = _mm512_set1_epi8(127);
  for (int64_t i = 0; i < V_; i += 64) {
    const __mmask64 k = tail64(V_ - i);
    const V v = _mm512_maskz_loadu_epi8(k, x + i);
    mx = _mm512_mask_max_epi8(mx, k, mx, v);
    mn = _mm512_mask_min_epi8(mn, k, mn, v);
  }
  alignas(64) int8_t bx[64], bn[64];
  _mm512_store_si512(bx, mx);
  _mm512_store_si512(bn, mn);
  int qx = -128, qn = 127;
  for (int i = 0; i < 64; ++i) qx = bx[i] > qx ? bx[i] : qx, qn = bn[i] < qn ? bn[i] : qn;
  const int K = qx - qn + 1;
  // tables: T (int64 [256]), t (int64 [256]), TH, TL, O (int16 [256] each)
  int64_t* T = reinterpret_cast<int64_t*>(align64(scratch));
  int64_t* tt = T + 256;
  int16_t* TH = reinterpret_cast<int16_t*>(tt + 256);
  int16_t* TL = TH + 256;
  int16_t* O = TL + 256;
  const V mant = s64(s.mant), nclip = s64(-clip), lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const int64_t sh = int64_t{s.exp} - 16;
  for (int k0 = 0; k0 < K; k0 += 8) {
    const V kk = _mm512_add_epi64(lane, s64(k0));
    const V t = sm_tvec(_mm512_mul_epi32(_mm512_sub_epi64(_mm512_setzero_si512(), kk), mant), sh, nclip);
    const V e = vexpq_x<16>(t);
    _mm512_store_si512(T + k0, e);
    _mm512_store_si512(tt + k0, t);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(TH + k0), _mm512_cvtepi64_epi16(_mm512_srli_epi64(e, 16)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(TL + k0),
                     _mm512_cvtepi64_epi16(_mm512_sub_epi64(_mm512_and_si512(e, s64(0xFFFF)), s64(32768))));
  }
  const int LZ = tab_len2(TH, TL, K);
  int64_t Z;
  switch ((LZ + 63) / 64) {
    case 1: Z = sm_sum8<1>(x, V_, qx, LZ, TH, TL); break;
    case 2: Z = sm_sum8<2>(x, V_, qx, LZ, TH, TL); break;
    case 3: Z = sm_sum8<3>(x, V_, qx, LZ, TH, TL); break;
    default: Z = sm_sum8<4>(x, V_, qx, LZ, TH, TL); break;
  }
  const V F = s64(kSat62 / Z), lnZ = s64(a.out == kLogSoftmaxI16 ? lnq16(uint64_t(Z)) : 0);
  for (int k0 = 0; k0 < K; k0 += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(O + k0),
                     _mm512_cvtepi64_epi16(sm_outvec(a.out, _mm512_load_si512(T + k0), _mm512_load_si512(tt + k0), F, lnZ)));
  const int LO = tab_len(O, K);
  const int16_t mval = int16_t(sm_masked(a.out));
  switch ((LO + 63) / 64) {
    case 1: sm_out8<1>(x, n, V_, qx, LO, O, a.out, static_cast<uint8_t*>(a.y) + base * (a.out == kSoftmaxU8 ? 1 : 2), mval); break;
    case 2: sm_out8<2>(x, n, V_, qx, LO, O, a.out, static_cast<uint8_t*>(a.y) + base * (a.out == kSoftmaxU8 ? 1 : 2), mval); break;
    case 3: sm_out8<3>(x, n, V_, qx, LO, O, a.out, static_cast<uint8_t*>(a.y) + base * (a.out == kSoftmaxU8 ? 1 : 2), mval); break;
    default: sm_out8<4>(x, n, V_, qx, LO, O, a.out, static_cast<uint8_t*>(a.y) + base * (a.out == kSoftmaxU8 ? 1 : 2), mval); break;
  }
}

// GCC 12 also reports -Wuninitialized for the "undefined" pass-through operand of some intrinsics
// inlined into the target("avx512vbmi") functions below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// ---- int8 rows with AVX-512 VBMI (vpermi2b): byte tables of 128 entries per register pair ------
// The same values as sm_row_i8: e_k (Q30, < 2^31) is split into 4 byte planes looked up with
// vpermi2b (k < 128 and k >= 128 halves selected by bit 7 of k) and summed exactly with vpdpbusd
// (4 bytes per 32-bit lane, flushed to int64 before they can overflow); the u8 output table is a
// byte table too. A plane whose entries are 0 for every k >= 128 skips its upper half.
struct Tab8 {
  V lo0, lo1, hi0, hi1;
  bool hi;
};
inline Tab8 tab8(const uint8_t* b, int K) {
  Tab8 t;
  t.lo0 = _mm512_loadu_si512(b), t.lo1 = _mm512_loadu_si512(b + 64);
  t.hi0 = _mm512_loadu_si512(b + 128), t.hi1 = _mm512_loadu_si512(b + 192);
  t.hi = K > 128 && _mm512_mask_test_epi8_mask(tail64(K - 128), t.hi0, t.hi0) != 0;
  if (K > 192) t.hi = t.hi || _mm512_mask_test_epi8_mask(tail64(K - 192), t.hi1, t.hi1) != 0;
  return t;
}

// HM bit p: plane p has nonzero entries at some k >= 128 (else its upper half is skipped).
template <int HM>
__attribute__((target("avx512vbmi"))) inline V look8p(const Tab8& t, V k, __mmask64 sgn) {
  if (!HM) return _mm512_maskz_permutex2var_epi8(~sgn, t.lo0, k, t.lo1);
  return _mm512_mask_blend_epi8(sgn, _mm512_permutex2var_epi8(t.lo0, k, t.lo1),
                                _mm512_permutex2var_epi8(t.hi0, k, t.hi1));
}

template <int HM>
__attribute__((target("avx512vbmi")))
int64_t sm_sum8_vbmi_t(const int8_t* x, int64_t V_, int qx, const Tab8& t0, const Tab8& t1, const Tab8& t2, const Tab8& t3) {
  const V qv = _mm512_set1_epi8(int8_t(qx)), ones = _mm512_set1_epi8(1);
  int64_t z[4] = {0, 0, 0, 0};
  for (int64_t c0 = 0; c0 < V_; c0 += int64_t{64} << 20) {  // 32-bit lanes: <= 1020 per step
    const int64_t c1 = V_ - c0 < (int64_t{64} << 20) ? V_ : c0 + (int64_t{64} << 20);
    V a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = c0;
#pragma GCC unroll 2
    for (; i + 64 <= c1; i += 64) {
      const V k = _mm512_sub_epi8(qv, _mm512_loadu_si512(x + i));  // qx - x in [0, 256) as a byte
      const __mmask64 sg = _mm512_movepi8_mask(k);
      a0 = _mm512_dpbusd_epi32(a0, look8p<HM & 1>(t0, k, sg), ones);
      a1 = _mm512_dpbusd_epi32(a1, look8p<HM & 2>(t1, k, sg), ones);
      a2 = _mm512_dpbusd_epi32(a2, look8p<HM & 4>(t2, k, sg), ones);
      a3 = _mm512_dpbusd_epi32(a3, look8p<HM & 8>(t3, k, sg), ones);
    }
    if (i < c1) {
      const __mmask64 km = tail64(c1 - i);
      const V k = _mm512_sub_epi8(qv, _mm512_maskz_loadu_epi8(km, x + i));
      const __mmask64 sg = _mm512_movepi8_mask(k);
      a0 = _mm512_dpbusd_epi32(a0, _mm512_maskz_mov_epi8(km, look8p<HM & 1>(t0, k, sg)), ones);
      a1 = _mm512_dpbusd_epi32(a1, _mm512_maskz_mov_epi8(km, look8p<HM & 2>(t1, k, sg)), ones);
      a2 = _mm512_dpbusd_epi32(a2, _mm512_maskz_mov_epi8(km, look8p<HM & 4>(t2, k, sg)), ones);
      a3 = _mm512_dpbusd_epi32(a3, _mm512_maskz_mov_epi8(km, look8p<HM & 8>(t3, k, sg)), ones);
    }
    z[0] += _mm512_reduce_add_epi32(a0), z[1] += _mm512_reduce_add_epi32(a1);
    z[2] += _mm512_reduce_add_epi32(a2), z[3] += _mm512_reduce_add_epi32(a3);
  }
  return z[0] + (z[1] << 8) + (z[2] << 16) + (z[3] << 24);
}

__attribute__((target("avx512vbmi")))
int64_t sm_sum8_vbmi(const int8_t* x, int64_t V_, int qx, const uint8_t* P, int K) {
  const Tab8 t0 = tab8(P, K), t1 = tab8(P + 256, K), t2 = tab8(P + 512, K), t3 = tab8(P + 768, K);
  switch (int(t0.hi) | int(t1.hi) << 1 | int(t2.hi) << 2 | int(t3.hi) << 3) {
#define FQ_SM_SUM(h) case h: return sm_sum8_vbmi_t<h>(x, V_, qx, t0, t1, t2, t3);
    FQ_SM_SUM(0) FQ_SM_SUM(1) FQ_SM_SUM(2) FQ_SM_SUM(3) FQ_SM_SUM(4) FQ_SM_SUM(5) FQ_SM_SUM(6) FQ_SM_SUM(7)
    FQ_SM_SUM(8) FQ_SM_SUM(9) FQ_SM_SUM(10) FQ_SM_SUM(11) FQ_SM_SUM(12) FQ_SM_SUM(13) FQ_SM_SUM(14)
    default: return sm_sum8_vbmi_t<15>(x, V_, qx, t0, t1, t2, t3);
#undef FQ_SM_SUM
  }
}

template <int H>
__attribute__((target("avx512vbmi")))
void sm_out8_vbmi_t(const int8_t* x, int64_t n, int64_t V_, int qx, const Tab8& to, uint8_t* y) {
  const V qv = _mm512_set1_epi8(int8_t(qx));
  int64_t i = 0;
#pragma GCC unroll 2
  for (; i + 64 <= V_; i += 64) {
    const V k = _mm512_sub_epi8(qv, _mm512_loadu_si512(x + i));
    _mm512_storeu_si512(y + i, look8p<H>(to, k, _mm512_movepi8_mask(k)));
  }
  for (; i < n; i += 64) {
    const __mmask64 kn = tail64(n - i), kv = i < V_ ? tail64(V_ - i) : 0;
    const V k = _mm512_sub_epi8(qv, _mm512_maskz_loadu_epi8(kv, x + i));
    _mm512_mask_storeu_epi8(y + i, kn, _mm512_maskz_mov_epi8(kv, look8p<H>(to, k, _mm512_movepi8_mask(k))));
  }
}

__attribute__((target("avx512vbmi")))
void sm_out8_vbmi(const int8_t* x, int64_t n, int64_t V_, int qx, const uint8_t* O, int K, uint8_t* y) {
  const Tab8 to = tab8(O, K);
  if (to.hi) sm_out8_vbmi_t<1>(x, n, V_, qx, to, y);
  else sm_out8_vbmi_t<0>(x, n, V_, qx, to, y);
}

struct SmTabs {
  int32_t mant = -1, exp = 0;
  int64_t clip = -1;
  int K = 0;                    // entries [0, K) of T and P are valid for (mant, exp, clip)
  alignas(64) uint32_t T[256];  // e_k (Q30, < 2^31)
  alignas(64) uint8_t P[1024];  // its 4 byte planes, [plane][k]
};

// e_k = exp_q(max(shift_s(-k mant, sh), -clip), 16) for 16 consecutive k (k mant < 2^24) in
// 32-bit lanes, the same values as vexpq_x<16>(sm_tvec(...)). nx = -t is computed clamped to
// C2 = min(clip, 2^21): exp_q is 0 for every -t >= 2^21 (n >= 32), so the clamp changes nothing.
//   right shift s >= 1 of -u (u = k mant >= 0): -rshift_round(-u, s) = (u + 2^(s-1) - 1) >> s
//   (s >= 25 gives 0, so s is capped at 31); left shift l: u is first clamped to 2^(22-l')
//   (l' = min(l, 22)), which only changes values already >= 2^22 > C2.
// exp_q in 32 bits (nx <= 2^21): t = rshift_round(nx * 94548, 16)
//   = nx + nh * 29012 + ((nl * 29012 + 2^15) >> 16)  (nx = nh 2^16 + nl; 94548 = 2^16 + 29012;
//   nl * 29012 + 2^15 < 2^31), n = t >> 16 (<= 46), i = (t >> 8) & 255 (vpermd reads the low
//   4 bits of its index), r = t & 255; r * C + 128 < 2^32; the 60- and 54-bit products in even /
//   odd 64-bit halves.
struct SmExp16 {
  __m512i mant, c2, lim;
  int mode, s;  // mode 0: right shift s (s >= 1), 1: identity, 2: left shift s
  SmExp16(const RowScale& rs, int64_t clip) {
    mant = _mm512_set1_epi32(rs.mant);
    c2 = _mm512_set1_epi32(int32_t(clip < (int64_t{1} << 21) ? clip : (int64_t{1} << 21)));
    const int64_t sh = int64_t{rs.exp} - 16;
    if (sh > 0) mode = 0, s = sh > 31 ? 31 : int(sh);
    else if (sh == 0) mode = 1, s = 0;
    else mode = 2, s = -sh > 22 ? 22 : int(-sh);
    lim = _mm512_set1_epi32(1 << (22 - (mode == 2 ? s : 0)));
  }
  // u = k mant of lanes k0 + j (the caller steps it by 16 mant)
  __m512i u0(int k0) const {
    return _mm512_mullo_epi32(
        _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(k0)), mant);
  }
  __m512i step() const { return _mm512_sll_epi32(mant, _mm_cvtsi32_si128(4)); }
  // N independent vectors at once, statement by statement (long dependency chains: interleaved
  // so that the scheduler sees independent work).
  template <int N>
  void run(const __m512i* u_, __m512i* e) const {
#define FQ_J _Pragma("GCC unroll 4") for (int j = 0; j < N; ++j)
    __m512i u[N], t[N], a[N], b[N], P[N], rc[N], q[N];
    const __m512i c29 = _mm512_set1_epi32(29012), h29 = s64(int64_t{1} << 29), h31 = s64(int64_t{1} << 31);
    FQ_J u[j] = u_[j];
    if (mode == 0) { FQ_J u[j] = _mm512_srl_epi32(_mm512_add_epi32(u[j], _mm512_set1_epi32(int32_t((1u << (s - 1)) - 1))), _mm_cvtsi32_si128(s)); }
    else if (mode == 2) { FQ_J u[j] = _mm512_sll_epi32(_mm512_min_epu32(u[j], lim), _mm_cvtsi32_si128(s)); }
    FQ_J u[j] = _mm512_min_epu32(u[j], c2);  // nx
    FQ_J t[j] = _mm512_mullo_epi32(_mm512_and_si512(u[j], _mm512_set1_epi32(0xFFFF)), c29);
    FQ_J a[j] = _mm512_add_epi32(u[j], _mm512_mullo_epi32(_mm512_srli_epi32(u[j], 16), c29));
    FQ_J t[j] = _mm512_add_epi32(a[j], _mm512_srli_epi32(_mm512_add_epi32(t[j], _mm512_set1_epi32(1 << 15)), 16));
    FQ_J a[j] = _mm512_permutexvar_epi32(_mm512_srli_epi32(t[j], 12), _mm512_loadu_si512(kExp2HiQ30));
    FQ_J b[j] = _mm512_permutexvar_epi32(_mm512_srli_epi32(t[j], 8), _mm512_loadu_si512(kExp2LoQ30));
    FQ_J P[j] = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(a[j], b[j]), h29), 30);
    FQ_J b[j] = _mm512_slli_epi64(
        _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(a[j], 32), _mm512_srli_epi64(b[j], 32)), h29), 2);
    FQ_J P[j] = _mm512_mask_blend_epi32(0xAAAA, P[j], b[j]);
    FQ_J rc[j] = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_mullo_epi32(_mm512_and_si512(t[j], _mm512_set1_epi32(255)), _mm512_set1_epi32(int32_t(kExp2ChordQ32))),
                         _mm512_set1_epi32(128)), 8);
    FQ_J q[j] = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(P[j], rc[j]), h31), 32);
    FQ_J a[j] = _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(P[j], 32), _mm512_srli_epi64(rc[j], 32)), h31);
    FQ_J q[j] = _mm512_sub_epi32(P[j], _mm512_mask_blend_epi32(0xAAAA, q[j], a[j]));  // v
    FQ_J t[j] = _mm512_srli_epi32(t[j], 16);  // n
    FQ_J a[j] = _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_sub_epi32(t[j], _mm512_set1_epi32(1)));
    FQ_J e[j] = _mm512_srlv_epi32(_mm512_add_epi32(q[j], a[j]), t[j]);
#undef FQ_J
  }
};

// u8 outputs min(rshift_round(e F, 54), 255) of 64 e in 32-bit lanes (F < 2^32, e < 2^31: the
// values before the min are < 2^9; the saturating packs give the min).
inline void sm_out64_u8(const uint32_t* T, V F, uint8_t* O8) {
  const V h = s64(int64_t{1} << 53);
  V o[4];
  for (int j = 0; j < 4; ++j) {
    const V e = _mm512_load_si512(T + 16 * j);
    const V oe = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(e, F), h), 54);
    const V oo = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(e, 32), F), h), 22);
    o[j] = _mm512_mask_blend_epi32(0xAAAA, oe, oo);
  }
  // per 128-bit lane L: dword j holds entries 4 L .. 4 L + 3 of vector j; dword 4 j + L wanted
  const V w = _mm512_packus_epi16(_mm512_packus_epi32(o[0], o[1]), _mm512_packus_epi32(o[2], o[3]));
  _mm512_store_si512(O8, _mm512_permutexvar_epi32(_mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0), w));
}

// Entries [c.K, k1) (multiples of 64) of e_k and of its 4 byte planes (byte p of entry j is byte 4 j + p of e).
__attribute__((target("avx512vbmi")))
void sm_build_vbmi(SmTabs& c, const SmExp16& ex, int k1, const int8_t* x = nullptr, int64_t nx = 0,
                   V* mx = nullptr, V* mn = nullptr) {
  alignas(64) uint8_t ix[128];  // byte m of the pair result: plane p + m / 32 of e_(m / 16 % 2), entry m % 16
  for (int m = 0; m < 64; ++m)
    ix[m] = uint8_t(64 * (m / 16 % 2) + 4 * (m % 16) + m / 32), ix[64 + m] = uint8_t(ix[m] + 2);
  const V ia = _mm512_load_si512(ix), ib = _mm512_load_si512(ix + 64);
  V u[4];
  u[0] = ex.u0(c.K);
  const V du = ex.step();
  for (int j = 1; j < 4; ++j) u[j] = _mm512_add_epi32(u[j - 1], du);
  const V du4 = _mm512_sll_epi32(du, _mm_cvtsi32_si128(2));
  // optional: max / min of x[0, nx) (nx a multiple of 64), spread over the iterations so that
  // the loads and byte max / min run beside the exp arithmetic
  const int64_t per = nx / ((k1 - c.K) / 64) & ~int64_t{63};
  int64_t i = 0;
  V ax = mx ? *mx : _mm512_setzero_si512(), an = mn ? *mn : _mm512_setzero_si512();
  for (int k0 = c.K; k0 < k1; k0 += 64) {
    V e[4];
    ex.run<4>(u, e);
    for (const int64_t i1 = k0 + 64 < k1 ? i + per : nx; i < i1; i += 64) {
      const V v = _mm512_loadu_si512(x + i);
      ax = _mm512_max_epi8(ax, v), an = _mm512_min_epi8(an, v);
    }
    for (int j = 0; j < 4; ++j) {
      u[j] = _mm512_add_epi32(u[j], du4);
      _mm512_store_si512(c.T + k0 + 16 * j, e[j]);
    }
    // [plane p of e0 | of e1 | plane p+1 of e0 | of e1] (16 bytes each), p = 0 and 2; same for e2, e3
    const V b01 = _mm512_permutex2var_epi8(e[0], ia, e[1]), b23 = _mm512_permutex2var_epi8(e[2], ia, e[3]);
    const V c01 = _mm512_permutex2var_epi8(e[0], ib, e[1]), c23 = _mm512_permutex2var_epi8(e[2], ib, e[3]);
    _mm512_store_si512(c.P + k0, _mm512_shuffle_i64x2(b01, b23, 0x44));
    _mm512_store_si512(c.P + 256 + k0, _mm512_shuffle_i64x2(b01, b23, 0xEE));
    _mm512_store_si512(c.P + 512 + k0, _mm512_shuffle_i64x2(c01, c23, 0x44));
    _mm512_store_si512(c.P + 768 + k0, _mm512_shuffle_i64x2(c01, c23, 0xEE));
  }
  c.K = k1;
  if (mx) *mx = ax, *mn = an;
}

// max of 64 signed bytes
inline int hmax_i8(V v) {
  v = _mm512_max_epi8(v, _mm512_shuffle_i64x2(v, v, 0x4E));
  v = _mm512_max_epi8(v, _mm512_shuffle_i64x2(v, v, 0xB1));
  __m128i b = _mm512_castsi512_si128(v);
  b = _mm_max_epi8(b, _mm_srli_si128(b, 8));
  b = _mm_max_epi8(b, _mm_srli_si128(b, 4));
  b = _mm_max_epi8(b, _mm_srli_si128(b, 2));
  b = _mm_max_epi8(b, _mm_srli_si128(b, 1));
  return int8_t(_mm_cvtsi128_si32(b));
}

__attribute__((target("avx512vbmi")))
void sm_row_i8_vbmi(const SoftmaxArgs& a, int64_t m, int64_t V_, const RowScale& s, int64_t clip, void* scratch,
                    SmTabs& c) {
  const int64_t n = a.n, base = m * n;
  const int8_t* x = static_cast<const int8_t*>(a.x) + base;
  // e_k and its byte planes depend only on (mant, exp, clip): kept for the next row of the same
  // call with the same scale (per-tensor scales), extended when a row needs more entries. Nothing
  // is kept across calls: the kernel has no hidden state.
  if (c.mant != s.mant || c.exp != s.exp || c.clip != clip) c.mant = s.mant, c.exp = s.exp, c.clip = clip, c.K = 0;
  uint32_t* T = c.T;
  uint8_t* P = c.P;
  const SmExp16 ex(s, clip);
  V mx = _mm512_set1_epi8(-128), mn = _mm512_set1_epi8(127);
  int64_t i = 0;
  if (V_ >= 1024 && c.K < 256) {  // long rows: the whole table, the max / min pass beside it
    i = V_ & ~int64_t{63};
    sm_build_vbmi(c, ex, 256, x, i, &mx, &mn);
  }
  for (; i + 64 <= V_; i += 64) {
    const V v = _mm512_loadu_si512(x + i);
    mx = _mm512_max_epi8(mx, v), mn = _mm512_min_epi8(mn, v);
  }
  if (i < V_) {
    const __mmask64 k = tail64(V_ - i);
    const V v = _mm512_maskz_loadu_epi8(k, x + i);
    mx = _mm512_mask_max_epi8(mx, k, mx, v), mn = _mm512_mask_min_epi8(mn, k, mn, v);
  }
  const int qx = hmax_i8(mx), qn = -hmax_i8(_mm512_sub_epi8(_mm512_set1_epi8(-1), mn)) - 1;  // -1 - x: no overflow
  const int K = qx - qn + 1;
  if (c.K < K) sm_build_vbmi(c, ex, (K + 63) & ~63);
  int16_t* O = reinterpret_cast<int16_t*>(align64(scratch));  // output table (int16 [256] or u8 [256])
  const bool lg = a.out == kLogSoftmaxI16;
  const V mant = s64(s.mant), nclip = s64(-clip), lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const int64_t sh = int64_t{s.exp} - 16;
  auto tvec = [&](int k0) {
    return sm_tvec(_mm512_mul_epi32(_mm512_sub_epi64(_mm512_setzero_si512(), _mm512_add_epi64(lane, s64(k0))), mant), sh, nclip);
  };
  const int64_t Z = sm_sum8_vbmi(x, V_, qx, P, K);
  const V F = s64(kSat62 / Z), lnZ = s64(lg ? lnq16(uint64_t(Z)) : 0);
  uint8_t* y8 = static_cast<uint8_t*>(a.y) + base * (a.out == kSoftmaxU8 ? 1 : 2);
  if (a.out == kSoftmaxU8) {
    uint8_t* O8 = reinterpret_cast<uint8_t*>(O);
    for (int k0 = 0; k0 < K; k0 += 64) sm_out64_u8(T + k0, F, O8 + k0);
    return sm_out8_vbmi(x, n, V_, qx, O8, K, y8);
  }
  for (int k0 = 0; k0 < K; k0 += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(O + k0),
                     _mm512_cvtepi64_epi16(sm_outvec(a.out, _mm512_cvtepu32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(T + k0))),
                                                     lg ? tvec(k0) : _mm512_setzero_si512(), F, lnZ)));
  const int LO = tab_len(O, K);
  const int16_t mval = int16_t(sm_masked(a.out));
  switch ((LO + 63) / 64) {
    case 1: sm_out8<1>(x, n, V_, qx, LO, O, a.out, y8, mval); break;
    case 2: sm_out8<2>(x, n, V_, qx, LO, O, a.out, y8, mval); break;
    case 3: sm_out8<3>(x, n, V_, qx, LO, O, a.out, y8, mval); break;
    default: sm_out8<4>(x, n, V_, qx, LO, O, a.out, y8, mval); break;
  }
}

#pragma GCC diagnostic pop

}  // namespace
// Test-only switch: false makes x_softmax take the non-VBMI int8 path even on a VBMI CPU.
extern bool softmax_use_vbmi;
bool softmax_use_vbmi = true;
namespace {


void x_softmax(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t clip = sm_clip(a);
  int64_t* e = reinterpret_cast<int64_t*>(align64(scratch));
  const bool vbmi = softmax_use_vbmi && cpu_features().vbmi;
  SmTabs tabs;  // the VBMI path's e tables, reused across this call's rows with the same scale
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t V_ = sm_valid(a, m), n = a.n;
    const RowScale s = a.xs[m * a.xs_stride];
    if (a.in_bits == 8 && V_ >= 128) {
      if (vbmi) sm_row_i8_vbmi(a, m, V_, s, clip, scratch, tabs);
      else sm_row_i8(a, m, V_, s, clip, scratch);
      continue;
    }
    const int16_t mval = int16_t(sm_masked(a.out));
    for (int64_t i = V_; i < n; ++i) sm_store(a, m * n + i, mval);
    if (V_ > 0) sm_row_generic(a, m, V_, s, clip, e);
  }
}

// ---- layernorm ----------------------------------------------------------------------------------

inline V ln_load8(const LayernormArgs& a, int64_t k, __mmask8 msk) {
  if (a.in_bits == 8) return _mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(msk, static_cast<const int8_t*>(a.x) + k));
  if (a.in_bits == 16) return _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(msk, static_cast<const int16_t*>(a.x) + k));
  return _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(msk, static_cast<const int32_t*>(a.x) + k));
}

// isqrt64 of 8 lanes (u < 2^62) for each of N vectors: the bit-by-bit square root of
// fixed_point.h, 32 steps for every lane (steps with r = 0 and bit > u change nothing, as its skip
// loop); the N chains interleaved in registers.
template <int N>
inline void visqrt8n(const V* u, V* r) {
  V uu[N], rr[N];
#pragma GCC unroll 8
  for (int q = 0; q < N; ++q) uu[q] = u[q], rr[q] = _mm512_setzero_si512();
  for (int it = 0; it < 32; ++it) {
    const V bit = s64(int64_t{1} << (62 - 2 * it));
#pragma GCC unroll 8
    for (int q = 0; q < N; ++q) {
      const V t = _mm512_add_epi64(rr[q], bit), h = _mm512_srli_epi64(rr[q], 1);
      const __mmask8 ge = _mm512_cmpge_epu64_mask(uu[q], t);
      uu[q] = _mm512_mask_sub_epi64(uu[q], ge, uu[q], t);
      rr[q] = _mm512_mask_add_epi64(h, ge, h, bit);
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < N; ++q) r[q] = rr[q];
}
inline V visqrt8(V u) {
  V r;
  visqrt8n<1>(&u, &r);
  return r;
}

// segments > 1 (RWKV's GroupNorm over heads): runs of L = d / segments elements, statistics per run,
// any L >= 1 (a run shorter than a vector is one masked vector). Per batch of up to 64 runs: the
// stats of each run (x' into w), the runs' square roots 8 at a time, then w of each run; one
// quantizer over the row.
__attribute__((noinline)) void x_layernorm_seg(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d, runs = a.segments, L = D / runs;
  const int64_t inner = a.inner < 1 ? 1 : a.inner;
  const int P = ln_P(L), lg = ln_log2(L);
  constexpr int kB = 64;
  LnPre pre[kB];
  int64_t mus[kB];
  alignas(64) uint64_t us[kB], rs[kB];
  const V zero = _mm512_setzero_si512();
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const LnEps eps = ln_eps(a, a.xs[m * a.xs_stride]);
    const int64_t c0 = a.gm ? ln_ch(a, m, 0) : 0;
    V wm = zero;
    for (int64_t rb = 0; rb < runs; rb += kB) {
      const int nb = int(runs - rb < kB ? runs - rb : kB);
      for (int t = 0; t < nb; ++t) {
        const int64_t s0 = (rb + t) * L, b = base + s0;
        const V x0 = s64(ln_x(a, b));
        V mx = zero;
        for (int64_t i = 0; i < L; i += 8) {
          const __mmask8 k = tail8(L - i);
          mx = _mm512_max_epu64(mx, _mm512_maskz_abs_epi64(k, _mm512_sub_epi64(ln_load8(a, b + i, k), x0)));
        }
        const int c = bitlen64(_mm512_reduce_max_epu64(mx)) - P;
        V sv = zero, qv = zero;
        for (int64_t i = 0; i < L; i += 8) {
          const __mmask8 k = tail8(L - i);
          const V x = _mm512_maskz_mov_epi64(k, vshift_uniform(_mm512_sub_epi64(ln_load8(a, b + i, k), x0), c));
          _mm512_mask_storeu_epi64(w + s0 + i, k, x);
          sv = _mm512_add_epi64(sv, x);
          qv = _mm512_add_epi64(qv, _mm512_mul_epi32(x, x));
        }
        const int64_t S = _mm512_reduce_add_epi64(sv), Q = _mm512_reduce_add_epi64(qv);
        const int64_t mu = ln_mu(S, L);
        pre[t] = ln_pre(eps, c, ln_div(Q - 2 * mu * S + L * mu * mu, L, lg));
        mus[t] = mu;
        us[t] = pre[t].u;
      }
      for (int t = 0; t < nb; t += 8) {
        const __mmask8 k = tail8(nb - t);
        _mm512_mask_storeu_epi64(rs + t, k, visqrt8(_mm512_maskz_loadu_epi64(k, us + t)));
      }
      for (int t = 0; t < nb; ++t) {
        const LnRow r = ln_fin(pre[t], mus[t], int64_t(rs[t]));
        const int64_t s0 = (rb + t) * L;
        const V muv = s64(r.mu), Rv = s64(r.R);
        for (int64_t i = 0; i < L; i += 8) {
          const __mmask8 k = tail8(L - i);
          int64_t* wp = w + s0 + i;
          V v = r.sh > 62 ? zero : vshift_uniform(_mm512_mul_epi32(_mm512_sub_epi64(_mm512_maskz_loadu_epi64(k, wp), muv), Rv), r.sh);
          if (a.gm) {
            V gmv, bov;
            if (inner == 1) {
              gmv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, a.gm + c0 + s0 + i));
              bov = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, a.bo + c0 + s0 + i));
            } else {  // channel i / inner per element
              alignas(64) int64_t g8[8] = {}, b8[8] = {};
              for (int j = 0; j < 8 && i + j < L; ++j) {
                const int64_t ch = c0 + (s0 + i + j) / inner;
                g8[j] = a.gm[ch], b8[j] = a.bo[ch];
              }
              gmv = _mm512_load_si512(g8), bov = _mm512_load_si512(b8);
            }
            v = _mm512_add_epi64(_mm512_mul_epi32(gmv, v), _mm512_slli_epi64(bov, 16));
          }
          v = _mm512_maskz_mov_epi64(k, v);
          _mm512_mask_storeu_epi64(wp, k, v);
          wm = _mm512_max_epu64(wm, _mm512_abs_epi64(v));
        }
      }
    }
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + base : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + base;
    int d = 0;
    const int64_t A = vquant(w, D, a.qmax, y8, y16, &d, _mm512_reduce_max_epu64(wm));
    a.ys[m] = scale_of_i(A, a.qmax, d, 1, int64_t{a.ae} + 16);
  }
}

// ---- layernorm, runs of 8 in lanes -------------------------------------------------------------

// 8x8 int64 transpose: lane j of r[i] -> lane i of c[j].
inline void transpose8x8(const V* r, V* c) {
  V a[8], b[8];
  for (int i = 0; i < 8; i += 2) a[i] = _mm512_unpacklo_epi64(r[i], r[i + 1]), a[i + 1] = _mm512_unpackhi_epi64(r[i], r[i + 1]);
  const V lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; ++h) {
      b[i + h] = _mm512_permutex2var_epi64(a[i + h], lo, a[i + 2 + h]);
      b[i + 2 + h] = _mm512_permutex2var_epi64(a[i + h], hi, a[i + 2 + h]);
    }
  for (int i = 0; i < 4; ++i) c[i] = _mm512_shuffle_i64x2(b[i], b[i + 4], 0x44), c[i + 4] = _mm512_shuffle_i64x2(b[i], b[i + 4], 0xEE);
}
// segments of L = 8 (RWKV's GroupNorm over heads of 8), d % 64 == 0, channels per element
// (inner <= 1): x_layernorm_seg's arithmetic with one run per lane. A group is 8 runs of one row,
// transposed so that every per-run statistic and ln_pre / ln_fin step is lane-wise; the square
// roots of up to kGroups groups (of one or more rows) are taken together, interleaved.
void x_layernorm_seg8(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d, G = D / 64;   // groups per row
  const V P = s64(ln_P(8));
  constexpr int kGroups = 8;
  struct Group {
    V xp[8];              // x' of element i of the 8 runs
    V mu, k, j, u;
    __mmask8 zero;
  };
  Group grp[kGroups];
  V rr[kGroups];
  V wm = zero();   // max |v| of the row being finished (rows may span batches)
  int64_t next = m0 * G;   // next group to finish, as m * G + g
  const int64_t end = m1 * G;
  for (int64_t first = m0 * G; first < end; first += kGroups) {
    const int n = int(end - first < kGroups ? end - first : kGroups);
    LnEps eps{0, 0};
    for (int q = 0; q < n; ++q) {   // statistics and ln_pre of each group
      const int64_t m = (first + q) / G, g = (first + q) % G, b = m * D + g * 64;
      if (q == 0 || g == 0) eps = ln_eps(a, a.xs[m * a.xs_stride]);
      Group& r = grp[q];
      V X[8];
      for (int t = 0; t < 8; ++t) X[t] = ln_load8(a, b + 8 * t, 0xFF);
      transpose8x8(X, r.xp);
      const V x0 = r.xp[0];
      V A0 = zero();
      for (int i = 0; i < 8; ++i) A0 = _mm512_max_epu64(A0, _mm512_abs_epi64(_mm512_sub_epi64(r.xp[i], x0)));
      const V c = _mm512_sub_epi64(vbitlen(A0), P);
      V S = zero(), Q = zero();
      for (int i = 0; i < 8; ++i) {
        const V x = vshift_lanes(_mm512_sub_epi64(r.xp[i], x0), c);   // |x'| <= 2^22
        r.xp[i] = x;
        S = _mm512_add_epi64(S, x);
        Q = _mm512_add_epi64(Q, _mm512_mul_epi32(x, x));
      }
      r.mu = _mm512_srai_epi64(_mm512_add_epi64(_mm512_add_epi64(S, S), s64(8)), 4);   // ln_mu(S, 8)
      const V muS = _mm512_mul_epi32(r.mu, S);                                         // |S| <= 2^25
      const V ms = _mm512_add_epi64(_mm512_sub_epi64(Q, _mm512_add_epi64(muS, muS)),
                                    _mm512_slli_epi64(_mm512_mul_epi32(r.mu, r.mu), 3));
      const V msd = _mm512_srai_epi64(ms, 3);                                          // ln_div(ms, 8, 3)
      // ln_pre, lane-wise
      const V e2 = _mm512_sub_epi64(s64(eps.e2c), _mm512_add_epi64(c, c));
      r.k = zero();
      if (eps.q > 0) {
        const V over = _mm512_add_epi64(e2, s64(int64_t{bitlen64(uint64_t(eps.q))} - 60));
        r.k = _mm512_maskz_srai_epi64(_mm512_cmpgt_epi64_mask(over, zero()), _mm512_add_epi64(over, s64(1)), 1);
      }
      const V k2 = _mm512_add_epi64(r.k, r.k);
      const V v = _mm512_add_epi64(vshs_lanes(msd, k2), vshs_lanes(s64(eps.q), _mm512_sub_epi64(k2, e2)));
      r.zero = _mm512_cmpeq_epi64_mask(v, zero());
      const V jv = _mm512_srai_epi64(_mm512_sub_epi64(s64(62), vbitlen(v)), 1);       // floor_half
      r.j = _mm512_mask_mov_epi64(jv, r.zero, s64(30));
      r.u = _mm512_maskz_mov_epi64(__mmask8(~r.zero), vshs_lanes(v, _mm512_sub_epi64(zero(), _mm512_add_epi64(jv, jv))));
    }
    // visqrt8 of every group, interleaved (in registers: 1, 2, 4 or 8 groups, zero padded)
    V u[kGroups];
    for (int q = 0; q < kGroups; ++q) u[q] = q < n ? grp[q].u : zero();
    if (n == 1) visqrt8n<1>(u, rr);
    else if (n == 2) visqrt8n<2>(u, rr);
    else if (n <= 4) visqrt8n<4>(u, rr);
    else visqrt8n<8>(u, rr);
    for (int q = 0; q < n; ++q, ++next) {   // ln_fin, the runs' values, the row's quantizer
      const Group& r = grp[q];
      const int64_t m = next / G, g = next % G;
      // ln_fin: rr = 2^30 for a zero run, >= 1 otherwise; R = (2^61 - 1) / rr per lane
      const V rv = _mm512_mask_mov_epi64(_mm512_max_epi64(rr[q], s64(1)), r.zero, s64(int64_t{1} << 30));
      alignas(64) int64_t rl[8];
      _mm512_store_si512(rl, rv);
      for (int l = 0; l < 8; ++l) rl[l] = int64_t(((uint64_t{1} << 61) - 1) / uint64_t(rl[l]));
      const V R = _mm512_load_si512(rl);
      const V sh = _mm512_min_epi64(_mm512_add_epi64(_mm512_sub_epi64(s64(61 - 16), r.j), r.k), s64(63));
      const __mmask8 live = _mm512_cmple_epi64_mask(sh, s64(62));   // sh > 62: v = 0
      V z[8], Z[8];
      for (int i = 0; i < 8; ++i)
        z[i] = _mm512_maskz_mov_epi64(live, vshift_lanes(_mm512_mul_epi32(_mm512_sub_epi64(r.xp[i], r.mu), R), sh));
      transpose8x8(z, Z);
      const int64_t c0 = a.gm ? ln_ch(a, m, 0) : 0;
      for (int t = 0; t < 8; ++t) {
        const int64_t s0 = g * 64 + 8 * t;
        V v = Z[t];
        if (a.gm) {
          const V gmv = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.gm + c0 + s0)));
          const V bov = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bo + c0 + s0)));
          v = _mm512_add_epi64(_mm512_mul_epi32(gmv, v), _mm512_slli_epi64(bov, 16));
        }
        _mm512_storeu_si512(w + s0, v);
        wm = _mm512_max_epu64(wm, _mm512_abs_epi64(v));
      }
      if (g + 1 < G) continue;
      const int64_t base = m * D;
      int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + base : nullptr;
      int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + base;
      int d = 0;
      const int64_t A = vquant(w, D, a.qmax, y8, y16, &d, _mm512_reduce_max_epu64(wm));
      a.ys[m] = scale_of_i(A, a.qmax, d, 1, int64_t{a.ae} + 16);
      wm = zero();
    }
  }
}

void x_layernorm(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  if (a.segments > 1 && a.d == 8 * a.segments && a.d % 64 == 0 && a.inner <= 1)
    return x_layernorm_seg8(a, m0, m1, scratch);
  if (a.segments > 1) return x_layernorm_seg(a, m0, m1, scratch);
  int64_t* w = reinterpret_cast<int64_t*>(align64(scratch));
  const int64_t D = a.d;
  const int64_t inner = a.inner < 1 ? 1 : a.inner;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t base = m * D;
    const RowScale xs = a.xs[m * a.xs_stride];
    const V x0 = s64(ln_x(a, base));
    V mx = _mm512_setzero_si512();
    for (int64_t i = 0; i < D; i += 8) {
      const __mmask8 k = tail8(D - i);
      mx = _mm512_max_epu64(mx, _mm512_maskz_abs_epi64(k, _mm512_sub_epi64(ln_load8(a, base + i, k), x0)));
    }
    const uint64_t A0 = _mm512_reduce_max_epu64(mx);
    const int c = bitlen64(A0) - ln_P(D);
    V sv = _mm512_setzero_si512(), qv = _mm512_setzero_si512();
    for (int64_t i = 0; i < D; i += 8) {
      const __mmask8 k = tail8(D - i);
      const V x = _mm512_maskz_mov_epi64(k, vshift_uniform(_mm512_sub_epi64(ln_load8(a, base + i, k), x0), c));  // |x'| <= 2^22
      _mm512_storeu_si512(w + i, x);  // scratch is padded
      sv = _mm512_add_epi64(sv, x);
      qv = _mm512_add_epi64(qv, _mm512_mul_epi32(x, x));
    }
    const int64_t S = _mm512_reduce_add_epi64(sv), Q = _mm512_reduce_add_epi64(qv);
    const int64_t mu = ln_mu(S, D);
    const int64_t ms = Q - 2 * mu * S + D * mu * mu;  // = sum (x' - mu)^2, exact (each term < 2^61)
    const LnRow r = ln_row(a, xs, c, mu, ms);
    ln_stats(a, m, ln_x(a, base), c, r);
    const V muv = s64(r.mu), Rv = s64(r.R);
    V wm = _mm512_setzero_si512();
    auto body = [&](int64_t i, __mmask8 k, V gmv, V bov) {
      const V z = r.sh > 62 ? _mm512_setzero_si512() : vshift_uniform(_mm512_mul_epi32(_mm512_sub_epi64(_mm512_loadu_si512(w + i), muv), Rv), r.sh);
      V v = z;
      if (a.gm) v = _mm512_add_epi64(_mm512_mul_epi32(gmv, z), _mm512_slli_epi64(bov, 16));
      v = _mm512_maskz_mov_epi64(k, v);
      _mm512_storeu_si512(w + i, v);
      wm = _mm512_max_epu64(wm, _mm512_abs_epi64(v));
    };
    const V zero = _mm512_setzero_si512();
    if (!a.gm) {
      for (int64_t i = 0; i < D; i += 8) body(i, tail8(D - i), zero, zero);
    } else if (inner == 1) {
      const int64_t c0 = ln_ch(a, m, 0);
      for (int64_t i = 0; i < D; i += 8) {
        const __mmask8 k = tail8(D - i);
        body(i, k, _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, a.gm + c0 + i)),
             _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(k, a.bo + c0 + i)));
      }
    } else {
      // channel runs of `inner` elements: done 8 at a time with lane masks, runs need not align
      for (int64_t s0 = 0; s0 < D; s0 += inner) {
        const int64_t ch = ln_ch(a, m, s0), e0 = s0 + inner < D ? s0 + inner : D;
        const V gmv = s64(a.gm[ch]), bov = s64(a.bo[ch]);
        for (int64_t i = s0; i < e0; i += 8) {
          const __mmask8 k = tail8(e0 - i);
          if (k == 0xFF) { body(i, k, gmv, bov); continue; }
          // partial: compute into a temporary so the next run's lanes are not overwritten
          alignas(64) int64_t keep[8];
          _mm512_store_si512(keep, _mm512_loadu_si512(w + i));
          body(i, k, gmv, bov);
          _mm512_mask_storeu_epi64(w + i, __mmask8(~k), _mm512_load_si512(keep));
        }
      }
    }
    int8_t* y8 = a.qmax <= 127 ? static_cast<int8_t*>(a.y) + base : nullptr;
    int16_t* y16 = a.qmax <= 127 ? nullptr : static_cast<int16_t*>(a.y) + base;
    int d = 0;
    const int64_t A = vquant(w, D, a.qmax, y8, y16, &d, _mm512_reduce_max_epu64(wm));
    a.ys[m] = scale_of_i(A, a.qmax, d, 1, int64_t{a.ae} + 16);
  }
}

// ---- exp (array form of exp_q / exp_shift) ---------------------------------------------------------

// exp_shift on 16 int32 lanes. x is first clamped to >= -2^(F+5): z is monotone in x and already
// gives q >= 46 there (output 0), so the clamp changes no output and keeps z within int32.
inline __m512i vexpshift16(__m512i x, int F) {
  const __m512i zero = _mm512_setzero_si512();
  x = _mm512_max_epi32(_mm512_min_epi32(x, zero), _mm512_set1_epi32(-(1 << (F + 5))));
  const __m512i z = _mm512_sub_epi32(_mm512_add_epi32(x, _mm512_srai_epi32(x, 1)), _mm512_srai_epi32(x, 4));
  const __m128i cF = _mm_cvtsi32_si128(F);
  const __m512i q = _mm512_srl_epi32(_mm512_sub_epi32(zero, z), cF);
  const __m512i r = _mm512_add_epi32(z, _mm512_sll_epi32(q, cF));
  const __m512i v = _mm512_add_epi32(_mm512_srai_epi32(r, 1), _mm512_set1_epi32(1 << F));
  // q >= 32: vpsrlvd gives 0, as q >= 31 does in the definition (v * 2^(30-F) <= 2^30).
  return _mm512_srlv_epi32(_mm512_sll_epi32(v, _mm_cvtsi32_si128(30 - F)), q);
}

template <int F>
void x_exp_q(const ExpArgs& a, int64_t i0, int64_t i1) {
  const V zero = _mm512_setzero_si512();
  for (int64_t i = i0; i < i1; i += 8) {
    const __mmask8 k = tail8(i1 - i);
    const V x = _mm512_min_epi64(load8(a.x + i, k), zero);
    _mm256_mask_storeu_epi32(a.y + i, k, _mm512_cvtepi64_epi32(vexpq_x<F>(x)));
  }
}

void x_exp(const ExpArgs& a, int64_t i0, int64_t i1) {
  const int F = exp_bits(a);
  if (a.kind == kExpShift) {
    for (int64_t i = i0; i < i1; i += 16) {
      const __mmask16 k = tail16(i1 - i);
      const __m512i x = _mm512_maskz_loadu_epi32(k, a.x + i);
      _mm512_mask_storeu_epi32(a.y + i, k, vexpshift16(x, F));
    }
    return;
  }
  if (!with_exp_bits(F, [&](auto f) { x_exp_q<decltype(f)::value>(a, i0, i1); })) ref_exp(a, i0, i1);  // F == 8
}

}  // namespace
}  // namespace llm

extern const LlmKernel kLlmAvx512 = {
    Isa::avx512,           "avx512",
    llm::x_rmsnorm,        llm::x_rope,
    llm::x_attention_cache, llm::x_attention_heads, llm::x_attention_out,
    llm::x_swiglu,         llm::x_residual_add,
    llm::x_embedding,      llm::x_hadamard,
    llm::x_softmax,        llm::x_layernorm,
    llm::x_exp};

}  // namespace fq::k
