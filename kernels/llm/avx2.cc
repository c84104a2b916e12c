// AVX2 variant of the llm family: the same bytes as ref.cc for every input the contract allows.
// Vectorized: attention_heads' dot products (gathered, across positions) and its P.V accumulation
// (int64 lanes), rope, residual_add and embedding. The per-position logit/exp chain of attention
// and the row quantizer stay scalar here (AVX2 lacks 64-bit arithmetic shifts and multiplies);
// hadamard's H_b products (vpmaddwd) and butterflies are vectorized in int32; rmsnorm, swiglu and
// attention_cache/out forward to the scalar reference.
#include <immintrin.h>

#include <cstring>

#include "llm_internal.h"

namespace fq::k {
namespace llm {
namespace {

using V = __m256i;

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
  const V lo = _mm256_set1_epi64x(INT32_MIN), hi = _mm256_set1_epi64x(INT32_MAX);
  v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
}
inline void add_shift_store(V x, int64_t s, const int32_t* h, int32_t* out) {
  if (s > 0) {
    if (s >= 32) {
      x = _mm256_setzero_si256();
    } else {
      const __m128i c = _mm_cvtsi32_si128(int(s)), c1 = _mm_cvtsi32_si128(int(s - 1));
      x = _mm256_add_epi32(_mm256_sra_epi32(x, c), _mm256_and_si256(_mm256_sra_epi32(x, c1), _mm256_set1_epi32(1)));
    }
  }
  V lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(x));
  V hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(x, 1));
  if (s < 0) {
    const __m128i c = _mm_cvtsi32_si128(int(s < -32 ? 32 : -s));
    lo = _mm256_sll_epi64(lo, c);
    hi = _mm256_sll_epi64(hi, c);
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
    int64_t Lmax = INT64_MIN, Emin = INT64_MAX;
    for (int64_t u = 0; u < n; ++u) {
      const RowScale ks = a.kcs[u * G + g];
      const int64_t w = int64_t{s.S32[u]} * ks.mant;
      const int64_t L = clamp64(shs(w * qs.mant, int64_t{qs.exp} + ks.exp - 16), -kL40, kL40);
      s.L[u] = L;
      if (L > Lmax) Lmax = L;
      const RowScale vs = a.vcs[u * G + g];
      if (vs.mant != 0 && vs.exp < Emin) Emin = vs.exp;
    }
    if (Emin == INT64_MAX) continue;
    int64_t Z = 0;
    for (int64_t u = 0; u < n; ++u) {
      int64_t x = s.L[u] - Lmax;
      if (x < -clip) x = -clip;
      s.E[u] = expq(x, 16);
      Z += s.E[u];
    }
    const int64_t F = kSat62 / Z;
    for (int64_t u = 0; u < n; ++u) {
      const RowScale vs = a.vcs[u * G + g];
      const int64_t pu = rshift_round(s.E[u] * F, 46);
      s.C[u] = shs(pu * vs.mant, int64_t{vs.exp} - Emin);
    }
    pv_any(s.C, a.vc + int64_t{g} * hd, rw, hd, n, o);
    a.work_exp[t] = clamp_exp(Emin + 16);
  }
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
// row with exp_q, K <= 256 entries) read with vpgatherdd; other rows run the scalar reference.
// layernorm forwards to the scalar reference.

void x_softmax(const SoftmaxArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t clip = sm_clip(a), n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t V_ = sm_valid(a, m), base = m * n;
    if (a.in_bits != 8 || V_ < 128) {
      ref_softmax(a, m, m + 1, scratch);
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

void x_layernorm(const LayernormArgs& a, int64_t m0, int64_t m1, void* scratch) {
  ref_layernorm(a, m0, m1, scratch);
}

}  // namespace
}  // namespace llm

extern const LlmKernel kLlmAvx2 = {
    Isa::avx2,             "avx2",
    llm::ref_rmsnorm,      llm::x_rope,
    llm::ref_attention_cache, llm::x_attention_heads, llm::ref_attention_out,
    llm::ref_swiglu,       llm::x_residual_add,
    llm::x_embedding,      llm::x_hadamard,
    llm::x_softmax,        llm::x_layernorm,
    llm::ref_exp};

}  // namespace fq::k
