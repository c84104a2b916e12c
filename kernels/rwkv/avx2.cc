// AVX2 variant of the rwkv family: the same bytes as ref.cc for every input the contract allows.
// The structure of avx512.cc on 4 64-bit lanes per ymm (the row maxima of relu_sq and mul on 16-bit
// / 32-bit lanes); each row's last n % 4 elements take the scalar formulas of rwkv_internal.h. AVX2
// has no 64-bit arithmetic shift, min / max, abs or low multiply: they are built from logical
// shifts, vpcmpgtq blends and vpmuldq / vpmuludq products of at most 32-bit halves (every product
// below is exact in 64 bits).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../llm/x86_avx2_helpers.h"
#include "rwkv_internal.h"

namespace fq::k {
namespace rwkv {
namespace {

using namespace avx2h;

inline V load_i16(const int16_t* p) { return _mm256_cvtepi16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline V load_i32(const int32_t* p) { return _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline V load_i64(const int64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const V*>(p)); }
// The low dwords of the 4 lanes (values in int32 range).
inline __m128i low_dwords(V x) {
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
}
inline uint64_t hmax_u64(V x) {  // lanes >= 0
  alignas(32) int64_t t[4];
  _mm256_store_si256(reinterpret_cast<V*>(t), x);
  int64_t m = t[0];
  for (int l = 1; l < 4; ++l) m = t[l] > m ? t[l] : m;
  return uint64_t(m);
}

// max |x| over n int16 (|INT16_MIN| = 2^15: vpabsw's 0x8000 read unsigned).
inline uint64_t max_abs16(const int16_t* x, int64_t n) {
  V m = zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm256_max_epu16(m, _mm256_abs_epi16(_mm256_loadu_si256(reinterpret_cast<const V*>(x + i))));
  __m128i h = _mm_max_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  h = _mm_max_epu16(h, _mm_srli_si128(h, 8));
  h = _mm_max_epu16(h, _mm_srli_si128(h, 4));
  h = _mm_max_epu16(h, _mm_srli_si128(h, 2));
  uint64_t r = uint16_t(_mm_extract_epi16(h, 0));
  for (; i < n; ++i) r = llm::mag64(x[i]) > r ? llm::mag64(x[i]) : r;
  return r;
}

// mix_v_row's 8-lane path for a row with a static mu (no md) and |A|, |P| < 2^30 (so |P - A| <
// 2^31): a ma by vpmaddwd (ma < 2^15 in each lane's low half, 0 in the high half, which meets a's
// sign-extension bits), exact left shifts, mu clamped in int32; v = A 2^16 + D mu as vpmuldq pairs
// over the lanes reordered (0 4 1 5 2 6 3 7): even lanes elements 0-3, odd lanes 4-7. Writes
// v[0, n - n % 8), returns the vector maximum of |v|.
V mix_row8(const int16_t* ap, const int16_t* pp, const int32_t* mu_c, int64_t n, const MixRow& r, int64_t* v) {
  const V ma = _mm256_set1_epi32(int32_t(r.ma)), mp = _mm256_set1_epi32(int32_t(r.mp));
  const V la = _mm256_set1_epi32(int(-r.sa)), lp = _mm256_set1_epi32(int(-r.sp));   // (vpsllvd: one uop)
  const V lim = _mm256_set1_epi32(int32_t(kL18)), nlim = _mm256_set1_epi32(int32_t(-kL18)), c16 = s64(65536);
  const V order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  V mx = zero();
  for (int64_t i = 0; i + 8 <= n; i += 8) {
    const V A = _mm256_sllv_epi32(_mm256_madd_epi16(_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ap + i))), ma), la);
    const V P = _mm256_sllv_epi32(_mm256_madd_epi16(_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pp + i))), mp), lp);
    const V mu = mu_c ? _mm256_max_epi32(_mm256_min_epi32(_mm256_loadu_si256(reinterpret_cast<const V*>(mu_c + i)), lim), nlim) : zero();
    const V Ao = _mm256_permutevar8x32_epi32(A, order), Do = _mm256_permutevar8x32_epi32(_mm256_sub_epi32(P, A), order);
    const V Mo = _mm256_permutevar8x32_epi32(mu, order);
    const V x0 = _mm256_add_epi64(_mm256_mul_epi32(Ao, c16), _mm256_mul_epi32(Do, Mo));
    const V x1 = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(Ao, 32), c16),
                                  _mm256_mul_epi32(_mm256_srli_epi64(Do, 32), _mm256_srli_epi64(Mo, 32)));
    _mm256_storeu_si256(reinterpret_cast<V*>(v + i), x0);
    _mm256_storeu_si256(reinterpret_cast<V*>(v + i + 4), x1);
    mx = maxv(mx, maxv(absv(x0), absv(x1)));
  }
  return mx;
}

// v of row m into v (the int64 row before quantize_row); returns max |v|.
uint64_t mix_v_row(const RwkvMixArgs& a, const MixRow& r, int64_t m, int64_t* v) {
  const int64_t n = a.n;
  const int16_t *ap = a.a + m * n, *pp = a.p + m * n, *mdp = a.md ? a.md + m * n : nullptr;
  const V ma = s64(r.ma), mp = s64(r.mp), mdm = s64(r.mdm), lo22 = s64((1 << 22) - 1);
  V mx = zero();
  int64_t i = 0;
  const auto small = [&](const int16_t* x, int64_t mant, int64_t sx) {  // |shift_s(x mant, sx)| < 2^30
    return sx <= 0 && mant >= 0 && mant < (1 << 15) && (max_abs16(x, n) * uint64_t(mant) << -sx) < (uint64_t{1} << 30);
  };
  if (!mdp && small(ap, r.ma, r.sa) && small(pp, r.mp, r.sp)) {
    mx = mix_row8(ap, pp, a.mu_c, n, r, v);
    i = n - n % 8;
  }
  for (; i + 4 <= n; i += 4) {
    // |a ma| < 2^30 and sa, sp >= -12 (mix_row): |A|, |P| <= 2^42, no saturation
    const V A = vshs_exact(_mm256_mul_epi32(load_i16(ap + i), ma), r.sa);
    const V P = vshs_exact(_mm256_mul_epi32(load_i16(pp + i), mp), r.sp);
    V mu = a.mu_c ? load_i32(a.mu_c + i) : zero();
    if (mdp) mu = _mm256_add_epi64(mu, clampv(vshs(_mm256_mul_epi32(load_i16(mdp + i), mdm), r.sd), -kL40, kL40));
    mu = clampv(mu, -kL18, kL18);
    // (P - A) mu with |P - A| <= 2^43 split at bit 22: the high part (P - A) >> 22 is the low
    // dword of a logical shift, the low part is below 2^22; both products fit vpmuldq
    const V D = _mm256_sub_epi64(P, A);
    const V Dmu = _mm256_add_epi64(_mm256_slli_epi64(_mm256_mul_epi32(_mm256_srli_epi64(D, 22), mu), 22),
                                   _mm256_mul_epi32(_mm256_and_si256(D, lo22), mu));
    const V x = _mm256_add_epi64(_mm256_slli_epi64(A, 16), Dmu);
    _mm256_storeu_si256(reinterpret_cast<V*>(v + i), x);
    mx = maxv(mx, absv(x));
  }
  uint64_t A0 = hmax_u64(mx);
  for (; i < n; ++i) {
    v[i] = mix_v(a, r, m, i);
    A0 = llm::mag64(v[i]) > A0 ? llm::mag64(v[i]) : A0;
  }
  return A0;
}

void x_mix(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t n = a.n;
  mix_pipelined(
      a, m0, m1, scratch, [&a](const MixRow& r, int64_t m, int64_t* v) { return mix_v_row(a, r, m, v); },
      [&a, n](int64_t m, const int64_t* v, uint64_t A0, int* d) {
        return vquant_gen(n, a.qmax, qrow(a.y, a.qmax, n, m), A0, d, [v](int64_t j) { return load_i64(v + j); },
                          [v](int64_t j) { return v[j]; });
      });
}

void x_fixed(const RwkvFixedArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, lo = fixed_lo(a), hi = fixed_hi(a);
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale s = a.xs[m];
    const V mant = s64(s.mant);
    const int64_t sh = int64_t{s.exp} - a.frac;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      V z = clampv(vshs(_mm256_mul_epi32(load_i16(a.x + m * n + i), mant), sh), -kL40, kL40);
      if (a.bias) z = _mm256_add_epi64(z, load_i32(a.bias + i));
      const __m128i z32 = low_dwords(clampv(z, lo, hi));
      if (a.out_bits == 16)
        _mm_storel_epi64(reinterpret_cast<__m128i*>(static_cast<int16_t*>(a.y) + m * n + i), _mm_packs_epi32(z32, z32));
      else
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<int32_t*>(a.y) + m * n + i), z32);
    }
    for (; i < n; ++i) fixed_store(a, m * n + i, fixed_z(a, m, i));
  }
}

void x_neg_exp(const RwkvNegExpArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale s = a.xs[m];
    const V mant = s64(s.mant);
    const int64_t sh = int64_t{s.exp} - 24;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      V z = clampv(vshs(_mm256_mul_epi32(load_i16(a.x + m * n + i), mant), sh), -kL40, kL40);
      if (a.bias) z = _mm256_add_epi64(z, load_i32(a.bias + i));
      const V t = _mm256_sub_epi64(z, s64(kRwkvExpShiftQ24));
      const V e = vexpq<24>(maxv(_mm256_sub_epi64(zero(), t), zero()));   // capped as in avx512.cc
      const V y = blend(_mm256_sub_epi64(zero(), _mm256_add_epi64(e, e)), s64(kNegExpFloor), _mm256_cmpgt_epi64(t, zero()));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.y + m * n + i), low_dwords(y));
    }
    for (; i < n; ++i) a.y[m * n + i] = neg_exp_y(neg_exp_t(a, m, i));
  }
}

void x_relu_sq(const RwkvUnaryArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* x = a.x + m * n;
    // max v = max(0, max x)^2: the row maximum on 16 int16 lanes, no squares
    V mx = zero();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm256_max_epi16(mx, _mm256_loadu_si256(reinterpret_cast<const V*>(x + i)));
    __m128i h = _mm_max_epi16(_mm256_castsi256_si128(mx), _mm256_extracti128_si256(mx, 1));
    h = _mm_max_epi16(h, _mm_srli_si128(h, 8));
    h = _mm_max_epi16(h, _mm_srli_si128(h, 4));
    h = _mm_max_epi16(h, _mm_srli_si128(h, 2));
    int64_t xm = int16_t(_mm_extract_epi16(h, 0));
    for (; i < n; ++i) xm = x[i] > xm ? x[i] : xm;
    int d = 0;
    const int64_t A = vquant32_gen(
        n, a.qmax, qrow(a.y, a.qmax, n, m), uint64_t(xm * xm), &d,
        [x](int64_t j) {  // max(x, 0)^2 < 2^30: vpmaddwd of (x, 0) pairs (the high half is 0 after the max)
          const V xj = _mm256_max_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j))), zero());
          return _mm256_madd_epi16(xj, xj);
        },
        [x](int64_t j) {
          const V xj = _mm256_cvtepi16_epi64(
              _mm_max_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + j)), _mm_setzero_si128()));
          return _mm256_mul_epi32(xj, xj);
        },
        [x](int64_t j) { return relu_sq_v(x[j]); });
    a.ys[m] = unit_scale(A, a.qmax, d, relu_sq_unit(a.xs[m]));
  }
}

void x_mul(const RwkvMulArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *pa = a.a + m * n, *pb = a.b + m * n;
    // max |a b| on 8 int32 lanes (|a b| <= 2^30)
    V mx = zero();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const V ab = _mm256_mullo_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + i))),
                                      _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + i))));
      mx = _mm256_max_epu32(mx, _mm256_abs_epi32(ab));
    }
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(mx), _mm256_extracti128_si256(mx, 1));
    h = _mm_max_epu32(h, _mm_srli_si128(h, 8));
    h = _mm_max_epu32(h, _mm_srli_si128(h, 4));
    uint64_t A0 = uint32_t(_mm_cvtsi128_si32(h));
    for (; i < n; ++i) A0 = std::max<uint64_t>(A0, llm::mag64(int64_t{pa[i]} * pb[i]));
    int d = 0;
    const int64_t A = vquant32_gen(
        n, a.qmax, qrow(a.y, a.qmax, n, m), A0, &d,
        [pa, pb](int64_t j) {  // |a b| <= 2^30
          return _mm256_mullo_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + j))),
                                    _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + j))));
        },
        [pa, pb](int64_t j) { return _mm256_mul_epi32(load_i16(pa + j), load_i16(pb + j)); },
        [pa, pb](int64_t j) { return int64_t{pa[j]} * pb[j]; });
    a.ys[m] = unit_scale(A, a.qmax, d, mul_unit(a.as[m], a.bs[m]));
  }
}

inline int64_t hsum_i64(V x) {
  alignas(32) int64_t t[4];
  _mm256_store_si256(reinterpret_cast<V*>(t), x);
  return t[0] + t[1] + t[2] + t[3];
}
// 4 int32 of c clamped into [-lim, lim] (on the int32 lanes) and widened to int64 lanes.
inline V load_c(const int32_t* p, int32_t lim) {
  const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_epi64(_mm_max_epi32(_mm_min_epi32(c, _mm_set1_epi32(lim)), _mm_set1_epi32(-lim)));
}
// 4 int64 lanes in [-32767, 32767] (after a clamp of the int32 reading) stored as int16.
inline void store_q16(int16_t* p, V q) {
  const __m128i q32 = _mm_max_epi32(_mm_min_epi32(low_dwords(q), _mm_set1_epi32(32767)), _mm_set1_epi32(-32767));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi32(q32, q32));
}

// l2norm, head by head as in avx512.cc; the last N % 4 elements of a head take the scalar
// formulas. v' R (|v'| <= 2^23, R < 2^40) as two vpmuldq of 20-bit halves of R; rshift_round(.,
// 46) of |v' R| <= 2^61 as a logical shift of v' R + 2^45 + 2^62 (positive), minus 2^16.
void x_l2norm(const RwkvL2normArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  const int32_t lim = int32_t(kL24);
  const V bias = s64((int64_t{1} << 62) + (int64_t{1} << 45)), off = s64(int64_t{1} << 16);
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      const int16_t* x = a.x + m * n + h0;
      const int32_t* c = a.c + h0;
      int16_t* y = a.y + m * n + h0;
      const int64_t N4 = N & ~int64_t{3};
      V mx = zero();
      for (int64_t i = 0; i < N4; i += 4) mx = maxv(mx, absv(_mm256_mul_epi32(load_i16(x + i), load_c(c + i, lim))));
      uint64_t A0 = hmax_u64(mx);
      for (int64_t i = N4; i < N; ++i) A0 = std::max(A0, llm::mag64(x[i] * l2_c(c[i])));
      if (A0 == 0 || a.xs[m].mant == 0) {
        std::memset(y, 0, size_t(N) * sizeof(int16_t));
        continue;
      }
      const int d = l2_d(A0);
      V acc = zero();
      for (int64_t i = 0; i < N4; i += 4) {
        const V vp = vshs(_mm256_mul_epi32(load_i16(x + i), load_c(c + i, lim)), d);
        acc = _mm256_add_epi64(acc, _mm256_mul_epi32(vp, vp));
      }
      uint64_t S = uint64_t(hsum_i64(acc));
      for (int64_t i = N4; i < N; ++i) {
        const int64_t vp = llm::shs(x[i] * l2_c(c[i]), d);
        S += uint64_t(vp * vp);
      }
      const int64_t R = l2_R(S);
      const V R0 = s64(R & ((1 << 20) - 1)), R1 = s64(R >> 20);
      for (int64_t i = 0; i < N4; i += 4) {
        const V vp = vshs(_mm256_mul_epi32(load_i16(x + i), load_c(c + i, lim)), d);
        const V pr = _mm256_add_epi64(_mm256_slli_epi64(_mm256_mul_epi32(vp, R1), 20), _mm256_mul_epi32(vp, R0));
        store_q16(y + i, _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(pr, bias), 46), off));
      }
      for (int64_t i = N4; i < N; ++i) y[i] = l2_y(llm::shs(x[i] * l2_c(c[i]), d), R);
    }
  }
}

// head_bonus as in avx512.cc; T = v s (|s| <= 2^45) as two vpmuldq of s >> 23 and its low 23 bits.
void x_head_bonus(const RwkvBonusArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  int64_t* t = reinterpret_cast<int64_t*>(llm::align64(scratch));
  const int32_t lim = int32_t(kL20);
  const int64_t N4 = N & ~int64_t{3};
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *y = a.y + m * n, *v = a.v + m * n, *p = a.p + m * n;
    V tmx = zero();
    uint64_t Tmax = 0;
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      V acc = zero();
      for (int64_t i = h0; i < h0 + N4; i += 4) acc = _mm256_add_epi64(acc, _mm256_mul_epi32(load_i16(p + i), load_c(a.c + i, lim)));
      int64_t s = hsum_i64(acc);
      for (int64_t i = h0 + N4; i < h0 + N; ++i) s += p[i] * bonus_c(a.c[i]);
      const V s1 = s64(s >> 23), s0 = s64(s & ((1 << 23) - 1));
      for (int64_t i = h0; i < h0 + N4; i += 4) {
        const V vi = load_i16(v + i);
        const V T = _mm256_add_epi64(_mm256_slli_epi64(_mm256_mul_epi32(vi, s1), 23), _mm256_mul_epi32(vi, s0));
        _mm256_storeu_si256(reinterpret_cast<V*>(t + i), T);
        tmx = maxv(tmx, absv(T));
      }
      for (int64_t i = h0 + N4; i < h0 + N; ++i) {
        t[i] = v[i] * s;
        Tmax = std::max(Tmax, llm::mag64(t[i]));
      }
    }
    const BonusRow r = bonus_row(a, m, std::max(Tmax, hmax_u64(tmx)));
    const V my = s64(r.my), mz = s64(r.mz);
    V mx = zero();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const V Y = _mm256_mul_epi32(load_i16(y + i), my);
      const V Z = _mm256_mul_epi32(vshs(load_i64(t + i), r.d1), mz);
      const V W = _mm256_add_epi64(vshs(Y, r.sy), vshs(Z, r.sz));
      _mm256_storeu_si256(reinterpret_cast<V*>(t + i), W);
      mx = maxv(mx, absv(W));
    }
    uint64_t A0 = hmax_u64(mx);
    for (; i < n; ++i) {
      t[i] = bonus_w(r, y[i], t[i]);
      A0 = std::max(A0, llm::mag64(t[i]));
    }
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.out, a.qmax, n, m), A0, &d, [t](int64_t j) { return load_i64(t + j); },
                             [t](int64_t j) { return t[j]; });
    a.os[m] = llm::scale_of_i(A, a.qmax, d, 1, r.e);
  }
}

}  // namespace
}  // namespace rwkv

extern const RwkvKernel kRwkvAvx2 = {Isa::avx2,       "avx2",          rwkv::x_mix, rwkv::x_fixed,
                                     rwkv::x_neg_exp, rwkv::x_relu_sq, rwkv::x_mul,
                                     rwkv::x_l2norm,  rwkv::x_head_bonus};

}  // namespace fq::k
