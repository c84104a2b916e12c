// AVX-512 (F/BW/DQ/VL) variant of the rwkv family: the same bytes as ref.cc for every input the
// contract allows. Elements run in 64-bit lanes (8 per zmm), which every intermediate of the
// contract fits (|v| < 2^62); only the row maxima of relu_sq and mul, whose products are at most
// 2^30, are taken on 16-bit / 32-bit lanes. The quantizer gets A0 = max |v| from the first pass, so
// relu_sq and mul recompute their products instead of storing the row (mix, with its shifts and
// 64-bit product, stores it in the scratch).
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (the "undefined" pass-through operand).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "../llm/x86_avx512_helpers.h"
#include "rwkv_internal.h"

namespace fq::k {
namespace rwkv {
namespace {

using namespace avx512h;

// v of row m (the int64 row before the quantizer) into v; returns max |v|. The mantissas are in
// [0, 2^15] (llm.h's bounds), so |a * mant| <= 2^30 and v is formed as
//   v = A (2^16 - mu) + P mu   (= A 2^16 + (P - A) mu, exactly),
// each product one vpmuldq (|2^16 - mu| < 2^19): a side shifted right (s > 0) is rounded first, as
// A itself (|A| <= 2^30), by (x + 2^(s-1)) >> s (= shift_s; counts past 40 give 0 either way); a
// side shifted left (by at most 12, mix_row) is shifted after the product (|a mant (2^16 - mu)| <
// 2^49: no shift saturates, and |v| < 2^62 as the contract says). Only rows whose two exponents are
// more than 12 apart shift a side right (kRight); the others skip that step.
// mu64 (optional): the row-independent mu (no md) and 2^16 - mu as int64 rows, formed once per call.
template <bool kHoisted, bool kRight>
uint64_t mix_v_body(const RwkvMixArgs& a, const MixRow& r, int64_t m, int64_t* v, const int64_t* mu64) {
  const int64_t n = a.n;
  const int16_t *ap = a.a + m * n, *pp = a.p + m * n, *mdp = a.md ? a.md + m * n : nullptr;
  const int32_t* muc = a.mu_c;
  const int64_t sd = r.sd;
  const V ma = s64(r.ma), mp = s64(r.mp), mdm = s64(r.mdm);
  const int64_t ra = r.sa > 0 ? (r.sa < 40 ? r.sa : 40) : 0, rp = r.sp > 0 ? (r.sp < 40 ? r.sp : 40) : 0;
  const int64_t la = r.sa < 0 ? -r.sa : 0, lp = r.sp < 0 ? -r.sp : 0;
  const V ha = s64((int64_t{1} << ra) >> 1), hp = s64((int64_t{1} << rp) >> 1);
  const int64_t* om64 = mu64 ? mu64 + llm::pad16(n) : nullptr;
  V mx = zero();
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 k = tail8(n - i);
    V mu, om;
    if (kHoisted) {
      mu = _mm512_load_si512(mu64 + i), om = _mm512_load_si512(om64 + i);
    } else {
      mu = muc ? load_i32(muc + i, k) : zero();
      if (mdp) mu = _mm512_add_epi64(mu, clampv(vshs(_mm512_mul_epi32(load_i16(mdp + i, k), mdm), sd), -kL40, kL40));
      mu = clampv(mu, -kL18, kL18), om = _mm512_sub_epi64(s64(1 << 16), mu);
    }
    V xa = _mm512_mul_epi32(load_i16(ap + i, k), ma), xp = _mm512_mul_epi32(load_i16(pp + i, k), mp);
    if (kRight) {
      xa = sra64(_mm512_add_epi64(xa, ha), ra);
      xp = sra64(_mm512_add_epi64(xp, hp), rp);
    }
    const V x = _mm512_add_epi64(sll64(_mm512_mul_epi32(xa, om), la), sll64(_mm512_mul_epi32(xp, mu), lp));
    _mm512_mask_storeu_epi64(v + i, k, x);
    mx = _mm512_max_epu64(mx, _mm512_abs_epi64(x));  // lanes past n: a = p = 0, x = 0
  }
  return _mm512_reduce_max_epu64(mx);
}
template <bool kHoisted>
uint64_t mix_v_row(const RwkvMixArgs& a, const MixRow& r, int64_t m, int64_t* v, const int64_t* mu64) {
  return r.sa > 0 || r.sp > 0 ? mix_v_body<kHoisted, true>(a, r, m, v, mu64) : mix_v_body<kHoisted, false>(a, r, m, v, mu64);
}

void x_mix(const RwkvMixArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t n = a.n;
  // Several rows and a constant mu (no md): mu and 2^16 - mu once, in the scratch rows after the
  // two of mix_pipelined (whole vectors, zero past n: lanes the row loop masks off anyway).
  int64_t* mu64 = nullptr;
  if (!a.md && m1 - m0 > 1) {
    mu64 = reinterpret_cast<int64_t*>(llm::align64(scratch)) + 2 * (llm::pad16(n) + 16);
    for (int64_t i = 0; i < n; i += 8) {
      const __mmask8 k = tail8(n - i);
      const V mu = _mm512_maskz_mov_epi64(k, clampv(a.mu_c ? load_i32(a.mu_c + i, k) : zero(), -kL18, kL18));
      _mm512_store_si512(mu64 + i, mu);
      _mm512_store_si512(mu64 + llm::pad16(n) + i, _mm512_maskz_sub_epi64(k, s64(1 << 16), mu));
    }
  }
  const auto quant = [&a, n](int64_t m, const int64_t* v, uint64_t A0, int* d) {
    return vquant_gen(n, a.qmax, qrow(a.y, a.qmax, n, m), A0, d,
                      [v](int64_t i, __mmask8 k) { return _mm512_maskz_loadu_epi64(k, v + i); });
  };
  if (mu64)
    mix_pipelined(
        a, m0, m1, scratch,
        [&a, mu64](const MixRow& r, int64_t m, int64_t* v) { return mix_v_row<true>(a, r, m, v, mu64); }, quant);
  else
    mix_pipelined(
        a, m0, m1, scratch,
        [&a](const MixRow& r, int64_t m, int64_t* v) { return mix_v_row<false>(a, r, m, v, nullptr); }, quant);
}

void x_fixed(const RwkvFixedArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, lo = fixed_lo(a), hi = fixed_hi(a);
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale s = a.xs[m];
    const int64_t sh = int64_t{s.exp} - a.frac;
    for (int64_t i = 0; i < n; i += 8) {
      const __mmask8 k = tail8(n - i);
      V z = clampv(vshs(_mm512_mul_epi32(load_i16(a.x + m * n + i, k), s64(s.mant)), sh), -kL40, kL40);
      if (a.bias) z = _mm512_add_epi64(z, load_i32(a.bias + i, k));
      z = clampv(z, lo, hi);
      if (a.out_bits == 16) _mm512_mask_cvtepi64_storeu_epi16(static_cast<int16_t*>(a.y) + m * n + i, k, z);
      else _mm512_mask_cvtepi64_storeu_epi32(static_cast<int32_t*>(a.y) + m * n + i, k, z);
    }
  }
}

void x_neg_exp(const RwkvNegExpArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const RowScale s = a.xs[m];
    const int64_t sh = int64_t{s.exp} - 24;
    for (int64_t i = 0; i < n; i += 8) {
      const __mmask8 k = tail8(n - i);
      V z = clampv(vshs(_mm512_mul_epi32(load_i16(a.x + m * n + i, k), s64(s.mant)), sh), -kL40, kL40);
      if (a.bias) z = _mm512_add_epi64(z, load_i32(a.bias + i, k));
      const V t = _mm512_sub_epi64(z, s64(kRwkvExpShiftQ24));
      // vexpq caps -t far below the contract's 2^40 (exp_q is 0 from there on)
      const V e = vexpq<24>(_mm512_max_epi64(_mm512_sub_epi64(zero(), t), zero()));
      const V y = _mm512_mask_blend_epi64(_mm512_cmpgt_epi64_mask(t, zero()), _mm512_sub_epi64(zero(), _mm512_add_epi64(e, e)),
                                          s64(kNegExpFloor));
      _mm512_mask_cvtepi64_storeu_epi32(a.y + m * n + i, k, y);
    }
  }
}

void x_relu_sq(const RwkvUnaryArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t* x = a.x + m * n;
    // max v = max(0, max x)^2: the row maximum on 32 int16 lanes, no squares
    __m512i mx = zero();
    for (int64_t i = 0; i < n; i += 32) mx = _mm512_max_epi16(mx, _mm512_maskz_loadu_epi16(tail32(n - i), x + i));
    const int64_t xm = _mm512_reduce_max_epi32(_mm512_max_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(mx)),
                                                                _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(mx, 1))));
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.y, a.qmax, n, m), uint64_t(xm * xm), &d, [x](int64_t i, __mmask8 k) {
      const V xi = _mm512_max_epi64(load_i16(x + i, k), zero());
      return _mm512_mul_epi32(xi, xi);
    });
    a.ys[m] = unit_scale(A, a.qmax, d, relu_sq_unit(a.xs[m]));
  }
}

void x_mul(const RwkvMulArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) {
  const int64_t n = a.n;
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *pa = a.a + m * n, *pb = a.b + m * n;
    // max |a b| on 16 int32 lanes (|a b| <= 2^30)
    __m512i mx = zero();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = tail16(n - i);
      const __m512i ab = _mm512_mullo_epi32(_mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, pa + i)),
                                            _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, pb + i)));
      mx = _mm512_max_epu32(mx, _mm512_abs_epi32(ab));
    }
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.y, a.qmax, n, m), _mm512_reduce_max_epu32(mx), &d,
                             [pa, pb](int64_t i, __mmask8 k) { return _mm512_mul_epi32(load_i16(pa + i, k), load_i16(pb + i, k)); });
    a.ys[m] = unit_scale(A, a.qmax, d, mul_unit(a.as[m], a.bs[m]));
  }
}

// 8 clamped int32 of c widened to int64 lanes (the clamp on the int32 lanes).
inline V load_c(const int32_t* p, __mmask8 k, int32_t lim) {
  const __m256i c = _mm256_maskz_loadu_epi32(k, p);
  return _mm512_cvtepi32_epi64(_mm256_max_epi32(_mm256_min_epi32(c, _mm256_set1_epi32(lim)), _mm256_set1_epi32(-lim)));
}

// l2norm, head by head: max |v| (v = x c exact in vpmuldq: |x| < 2^16, |c| <= 2^24), then S = sum
// v'^2 (v' fits 32 bits: vpmuldq), then y from v' R (vpmullq, |v' R| <= 2^61).
void x_l2norm(const RwkvL2normArgs& a, int64_t m0, int64_t m1) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  const int32_t lim = int32_t(kL24);
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      const int16_t* x = a.x + m * n + h0;
      const int32_t* c = a.c + h0;
      int16_t* y = a.y + m * n + h0;
      V mx = zero();
      for (int64_t i = 0; i < N; i += 8) {
        const __mmask8 k = tail8(N - i);
        mx = _mm512_max_epu64(mx, _mm512_abs_epi64(_mm512_mul_epi32(load_i16(x + i, k), load_c(c + i, k, lim))));
      }
      const uint64_t A0 = _mm512_reduce_max_epu64(mx);
      if (A0 == 0 || a.xs[m].mant == 0) {
        for (int64_t i = 0; i < N; i += 32) _mm512_mask_storeu_epi16(y + i, tail32(N - i), zero());
        continue;
      }
      const int d = l2_d(A0);
      V acc = zero();
      for (int64_t i = 0; i < N; i += 8) {
        const __mmask8 k = tail8(N - i);
        const V vp = vshs(_mm512_mul_epi32(load_i16(x + i, k), load_c(c + i, k, lim)), d);
        acc = _mm512_add_epi64(acc, _mm512_mul_epi32(vp, vp));
      }
      const V R = s64(l2_R(uint64_t(_mm512_reduce_add_epi64(acc)))), rnd = s64(int64_t{1} << 45);
      for (int64_t i = 0; i < N; i += 8) {
        const __mmask8 k = tail8(N - i);
        const V vp = vshs(_mm512_mul_epi32(load_i16(x + i, k), load_c(c + i, k, lim)), d);
        const V q = clampv(_mm512_srai_epi64(_mm512_add_epi64(_mm512_mullo_epi64(vp, R), rnd), 46), -32767, 32767);
        _mm512_mask_cvtepi64_storeu_epi16(y + i, k, q);
      }
    }
  }
}

// head_bonus: per head s = sum p c (vpmuldq: |c| <= 2^20), T = v s (vpmullq) into the scratch
// with max |T|; then W over the row (shift_s(T, d1) and mz fit 32 bits: vpmuldq) into the
// scratch with max |W|; then the row quantizer on W.
void x_head_bonus(const RwkvBonusArgs& a, int64_t m0, int64_t m1, void* scratch) {
  const int64_t n = a.n, N = head_size(n, a.heads);
  if (N == 0) return;
  int64_t* t = reinterpret_cast<int64_t*>(llm::align64(scratch));
  const int32_t lim = int32_t(kL20);
  for (int64_t m = m0; m < m1; ++m) {
    const int16_t *y = a.y + m * n, *v = a.v + m * n, *p = a.p + m * n;
    V tmx = zero();
    for (int64_t h0 = 0; h0 < n; h0 += N) {
      V acc = zero();
      for (int64_t i = 0; i < N; i += 8) {
        const __mmask8 k = tail8(N - i);
        acc = _mm512_add_epi64(acc, _mm512_mul_epi32(load_i16(p + h0 + i, k), load_c(a.c + h0 + i, k, lim)));
      }
      const V s = s64(_mm512_reduce_add_epi64(acc));
      for (int64_t i = 0; i < N; i += 8) {
        const __mmask8 k = tail8(N - i);
        const V T = _mm512_mullo_epi64(load_i16(v + h0 + i, k), s);
        _mm512_mask_storeu_epi64(t + h0 + i, k, T);
        tmx = _mm512_max_epu64(tmx, _mm512_abs_epi64(T));
      }
    }
    const BonusRow r = bonus_row(a, m, _mm512_reduce_max_epu64(tmx));
    const V my = s64(r.my), mz = s64(r.mz);
    V mx = zero();
    for (int64_t i = 0; i < n; i += 8) {
      const __mmask8 k = tail8(n - i);
      const V Y = _mm512_mul_epi32(load_i16(y + i, k), my);
      const V Z = _mm512_mul_epi32(vshs(load_i64(t + i, k), r.d1), mz);
      const V W = _mm512_add_epi64(vshs(Y, r.sy), vshs(Z, r.sz));
      _mm512_mask_storeu_epi64(t + i, k, W);
      mx = _mm512_max_epu64(mx, _mm512_abs_epi64(W));
    }
    int d = 0;
    const int64_t A = vquant_gen(n, a.qmax, qrow(a.out, a.qmax, n, m), _mm512_reduce_max_epu64(mx), &d,
                             [t](int64_t i, __mmask8 k) { return _mm512_maskz_loadu_epi64(k, t + i); });
    a.os[m] = llm::scale_of_i(A, a.qmax, d, 1, r.e);
  }
}

}  // namespace
}  // namespace rwkv

extern const RwkvKernel kRwkvAvx512 = {Isa::avx512,     "avx512",         rwkv::x_mix, rwkv::x_fixed,
                                       rwkv::x_neg_exp, rwkv::x_relu_sq, rwkv::x_mul,
                                       rwkv::x_l2norm,  rwkv::x_head_bonus};

}  // namespace fq::k
