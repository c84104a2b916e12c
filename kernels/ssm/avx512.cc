// AVX-512 (F/BW/DQ/VL) variant of the ssm family: the same bytes as ref.cc for every input the
// contract allows. Everything runs in 64-bit lanes (8 per zmm), int32 quantities sign-extended:
//   scan: 8 channels per step: their scan_ch (softplus by one 8-byte gather of T[i], T[i + 1]) and
//         scan_y (the 8 partial-sum vectors reduced together, per-lane shifts) as vectors; per
//         channel the N states 16 at a time (one zmm of int32 h / a, even and odd states in the
//         low dwords of 64-bit lanes): dt|A| (vpmuldq), exp_q (two vpermd table lookups), g * h
//         and W * Bm (vpmuldq), the saturating update and the C . h dot product;
//   conv: 8 channels at a time: xf, the K-tap window (vpmuldq), shift, the swiglu sigmoid (exp_q
//         and a Newton reciprocal made exact), uf;
//   conv_out / scan_out / requant: the row quantizer (max |v|, then shift, multiply, clamp, narrow).
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (the "undefined" pass-through operand).
#if !defined(__clang__)  // (a GCC warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "../llm/x86_avx512_helpers.h"
#include "ssm_internal.h"

namespace fq::k {
namespace ssm {
namespace {

using namespace avx512h;
inline void store_sat32(int32_t* p, __mmask8 k, V x) { _mm512_mask_cvtsepi64_storeu_epi32(p, k, x); }

// ---- row quantizer (conv_out, scan_out, requant) ------------------------------------------------

// quantize_row of n values of type T (max |v|, then avx512h::vquant_gen); returns A and writes d.
template <typename T>
int64_t vquant_row(const T* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout) {
  V mx = _mm512_setzero_si512();
  for (int64_t i = 0; i < n; i += 8) mx = _mm512_max_epu64(mx, _mm512_abs_epi64(load8(v + i, tail8(n - i))));
  return vquant_gen(n, qmax, llm::QRow{q8, q16}, _mm512_reduce_max_epu64(mx), dout,
                    [v](int64_t i, __mmask8 k) { return load8(v + i, k); });
}

// vquant_row as a value for the row passes of ssm_internal.h.
constexpr auto kQuant = [](const auto* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* d) {
  return vquant_row(v, n, qmax, q8, q16, d);
};

// ---- conv ---------------------------------------------------------------------------------------

// v = zq * sig(zc) of swiglu per lane (conv_v), zq in +-(2^31 - 1).
inline V vsilu(V zq) { return _mm512_mul_epi32(zq, vsig(clampv(vshs(zq, 4), -kL17, kL17))); }

void x_conv(const SsmConvArgs& a, int64_t c0, int64_t c1) {
  const int K = taps_of(a);
  const int64_t C = a.channels, zsh = conv_zsh(a), ush = conv_ush(a);
  alignas(64) int64_t wt[kMaxTaps][8];  // the taps of 8 channels, tap-major
  V win[kMaxTaps];                      // xf of rows m - K + 1 .. m
  for (int64_t c = c0; c < c1; c += 8) {
    const __mmask8 k = tail8(c1 - c);
    const int nc = int(c1 - c < 8 ? c1 - c : 8);
    for (int j = 0; j < K; ++j)
      for (int l = 0; l < 8; ++l) wt[j][l] = l < nc ? a.w[(c + l) * K + j] : 0;
    for (int j = 0; j < K - 1; ++j) win[j] = load_i32(a.state + j * C + c, k);
    const V bias = a.bias ? load_i32(a.bias + c, k) : _mm512_setzero_si512();
    for (int64_t m = 0; m < a.rows; ++m) {
      const int64_t o = m * C + c;
      const RowScale s = a.xs[m];
      win[K - 1] = vshs(_mm512_mul_epi32(load_i16(a.x + o, k), s64(s.mant)), int64_t{s.exp} - a.x_exp);
      win[K - 1] = clampv(win[K - 1], INT32_MIN, INT32_MAX);
      V acc = bias;
      for (int j = 0; j < K; ++j)
        acc = _mm512_add_epi64(acc, _mm512_mul_epi32(_mm512_load_si512(wt[j]), win[j]));
      const V v = vsilu(clampv(vshs(acc, zsh), -kSat31, kSat31));
      _mm512_mask_storeu_epi64(a.work + o, k, v);
      store_sat32(a.uf + o, k, vshs(v, ush));
      for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
    }
    for (int j = 0; j < K - 1; ++j) _mm512_mask_cvtepi64_storeu_epi32(a.state + j * C + c, k, win[j]);
  }
}

void x_conv_out(const SsmConvArgs& a, int64_t m0, int64_t m1) { conv_out_rows(a, m0, m1, kQuant); }

// ---- scan ---------------------------------------------------------------------------------------

// shift_s(x, s) per lane with a per-lane shift s (any int64 s; as vshs).
inline V vshsv(V x, V s) {
  const V one = s64(1), zero = _mm512_setzero_si512();
  const V rpos = _mm512_add_epi64(_mm512_srav_epi64(x, s), _mm512_and_si512(_mm512_srav_epi64(x, _mm512_sub_epi64(s, one)), one));
  const V l = _mm512_sub_epi64(zero, s);  // s <= 0: the left shift l >= 0 (>= 64 shifts out to 0)
  const V lim = _mm512_sllv_epi64(one, _mm512_max_epi64(_mm512_sub_epi64(s64(62), l), zero));  // l >= 62: 1
  const __mmask8 big = _mm512_cmpge_epu64_mask(_mm512_abs_epi64(x), lim);
  const V sat = _mm512_mask_blend_epi64(_mm512_movepi64_mask(x), s64(llm::kSat62), s64(-llm::kSat62));
  V r = _mm512_mask_blend_epi64(big, _mm512_sllv_epi64(x, l), sat);
  r = _mm512_mask_blend_epi64(_mm512_cmpgt_epi64_mask(s, zero), r, rpos);
  r = _mm512_mask_blend_epi64(_mm512_cmpeq_epi64_mask(s, zero), r, x);
  return _mm512_maskz_mov_epi64(_mm512_cmple_epi64_mask(s, s64(62)), r);
}
// shift_s(x, s) for 1 <= s <= 62 and |x| < 2^62 (the add cannot overflow).
inline V vrsh(V x, int64_t s) {
  return _mm512_srav_epi64(_mm512_add_epi64(x, s64(int64_t{1} << (s - 1))), s64(s));   // (one uop; the xmm-count form two)
}

// Lane l = the sum of the 8 lanes of y[l].
inline V hsum8(const V* y) {
  V p[4];
  for (int i = 0; i < 4; ++i)  // 128-bit block b of p[i]: (y[2i] pair b, y[2i+1] pair b)
    p[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(y[2 * i], y[2 * i + 1]), _mm512_unpackhi_epi64(y[2 * i], y[2 * i + 1]));
  V q[2];
  for (int i = 0; i < 2; ++i)  // blocks: (p[2i] b0+b1, p[2i] b2+b3, p[2i+1] b0+b1, p[2i+1] b2+b3)
    q[i] = _mm512_add_epi64(_mm512_shuffle_i64x2(p[2 * i], p[2 * i + 1], 0x88), _mm512_shuffle_i64x2(p[2 * i], p[2 * i + 1], 0xDD));
  return _mm512_add_epi64(_mm512_shuffle_i64x2(q[0], q[1], 0x88), _mm512_shuffle_i64x2(q[0], q[1], 0xDD));
}

// scan_ch of 8 channels [c, c + popcount(k)) of row m: dq and W per lane.
inline void vscan_ch(const SsmScanArgs& a, int64_t m, int64_t c, __mmask8 k, V* dq, V* W) {
  const int64_t o = m * a.channels + c;
  const RowScale ds = a.dts[m];
  V xq = vshs(_mm512_mul_epi32(load_i16(a.dt + o, k), s64(ds.mant)), int64_t{ds.exp} - 12);
  if (a.dt_bias) xq = _mm512_add_epi64(xq, load_i32(a.dt_bias + c, k));
  xq = clampv(xq, -kL17, kL17);
  // softplus: T[i] and T[i + 1] by one 8-byte gather at T + 4 i (j clamped into the table; the
  // lanes outside [-2^16, 2^16) are replaced below)
  const V j = clampv(_mm512_add_epi64(xq, s64(1 << 16)), 0, (1 << 17) - 1);
  const V tt = _mm512_i64gather_epi64(_mm512_srli_epi64(j, 8), kSoftplusQ24, 4);
  const V t0 = _mm512_and_si512(tt, s64(0xFFFFFFFF)), t1 = _mm512_srli_epi64(tt, 32);  // T > 0
  const V r = _mm512_and_si512(j, s64(255));
  V d = _mm512_add_epi64(t0, _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_sub_epi64(t1, t0), r), s64(128)), 8));
  d = _mm512_mask_blend_epi64(_mm512_cmpge_epi64_mask(xq, s64(1 << 16)), d, _mm512_slli_epi64(xq, 12));
  d = _mm512_maskz_mov_epi64(_mm512_cmpge_epi64_mask(xq, s64(-(1 << 16))), d);
  *dq = d;
  *W = clampv(vrsh(_mm512_mul_epi32(d, load_i32(a.u + o, k)), 24), -kSat31, kSat31);  // |dq u| < 2^60
}

// The N states of one channel for row m, 16 per step as one zmm of int32 (h, a): the even states
// in the low dwords of the 64-bit lanes, the odd ones shifted down (vpmuldq reads the low dwords;
// no widening loads or narrowing stores). Bm, Cm are in that order (bc_order<16>) and zero past N.
// Returns the 8 partial sums of C . h.
// The N states of channels l < nc of a block for row m, 16 per step as one zmm of int32 (h, a): the
// even states in the low dwords of the 64-bit lanes, the odd ones shifted down (vpmuldq reads the
// low dwords; no widening loads or narrowing stores). Bm, Cm are in that order (bc_order<16>) and zero
// past N. ys[l] = the 8 partial sums of C . h of channel l. Fast: tsh and every bsh in [1, 62].
template <bool Fast>
inline void vscan_block(int32_t* h, const int32_t* an, int64_t S, const int64_t* Bm, const int64_t* Cm,
                        int64_t N, const int64_t* dqb, const int64_t* Wb, const int64_t* bshb, int nc,
                        int64_t tsh, V* ys) {
  for (int l = 0; l < nc; ++l) {
    int32_t* hc = h + l * S;
    const int32_t* ac = an + l * S;
    const V dq = s64(dqb[l]), W = s64(Wb[l]);
    const int64_t bsh = bshb[l];
    const V rb = Fast ? s64(int64_t{1} << (bsh - 1)) : dq;
    const V cb = s64(bsh);
    V acc = _mm512_setzero_si512();
    auto half = [&](V av, V hv, const int64_t* bm, const int64_t* cm) {  // 8 states -> h' (64-bit)
      const V ta = _mm512_mul_epi32(dq, av);                             // |dq a| < 2^53
      const V g = vexpq<16>(Fast ? vrsh(ta, tsh) : vshs(ta, tsh));       // vexpq caps t (the 2^40 cap)
      const V gh = _mm512_mul_epi32(g, hv);
      const V wb = _mm512_mul_epi32(W, _mm512_load_si512(bm));           // |W Bm| < 2^48
      const V bb = Fast ? _mm512_srav_epi64(_mm512_add_epi64(wb, rb), cb) : vshs(wb, bsh);
      const V hn = clampv(_mm512_add_epi64(_mm512_srai_epi64(_mm512_add_epi64(gh, s64(1 << 29)), 30), bb),
                          INT32_MIN, INT32_MAX);
      acc = _mm512_add_epi64(acc, _mm512_mul_epi32(_mm512_load_si512(cm), hn));
      return hn;
    };
    auto step = [&](int64_t n, __mmask16 k) {
      const V av = _mm512_maskz_loadu_epi32(k, ac + n), hv = _mm512_maskz_loadu_epi32(k, hc + n);
      const V he = half(av, hv, Bm + n, Cm + n);
      const V ho = half(_mm512_srli_epi64(av, 32), _mm512_srli_epi64(hv, 32), Bm + n + 8, Cm + n + 8);
      _mm512_mask_storeu_epi32(hc + n, k, _mm512_mask_blend_epi32(0xAAAA, he, _mm512_slli_epi64(ho, 32)));
    };
    int64_t n = 0;
    for (; n + 16 <= N; n += 16) step(n, 0xFFFF);
    if (n < N) step(n, __mmask16((1u << (N - n)) - 1));
    ys[l] = acc;
  }
  for (int l = nc; l < 8; ++l) ys[l] = _mm512_setzero_si512();
}

// 8 channels per step (scan_blocks): scan_ch as vectors, the states of each channel, then scan_y
// as vectors (the 8 partial-sum vectors reduced together).
void x_scan(const SsmScanArgs& a, int64_t c0, int64_t c1) {
  const int64_t C = a.channels, N = states_of(a), S = a.states, tsh = int64_t{a.a_frac} + 8, dsh = scan_dsh(a);
  alignas(64) int64_t dqb[8], Wb[8];
  scan_blocks<8, 16, 16, int64_t>(a, c0, c1, [&](int64_t m, int64_t c, int nc, const int64_t* Bm, const int64_t* Cm,
                                                  const int64_t* bsh, bool fast) {
    const __mmask8 k = tail8(nc);
    V dq, W, ys[8];
    vscan_ch(a, m, c, k, &dq, &W);
    _mm512_store_si512(dqb, dq), _mm512_store_si512(Wb, W);
    if (fast) vscan_block<true>(a.h + c * S, a.a + c * S, S, Bm, Cm, N, dqb, Wb, bsh, nc, tsh, ys);
    else vscan_block<false>(a.h + c * S, a.a + c * S, S, Bm, Cm, N, dqb, Wb, bsh, nc, tsh, ys);
    const V ysh = _mm512_add_epi64(_mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(k, a.h_exp + c)), s64(scan_ysh0(a, m)));
    const V du = _mm512_mul_epi32(load_i32(a.d + c, k), load_i32(a.u + m * C + c, k));  // < 2^55
    const V y = _mm512_add_epi64(vshsv(hsum8(ys), ysh), vshs(du, dsh));
    _mm512_mask_storeu_epi64(a.work + m * C + c, k, clampv(y, -kL61, kL61));
  });
}

void x_scan_out(const SsmScanArgs& a, int64_t m0, int64_t m1) { scan_out_rows(a, m0, m1, kQuant); }

void x_requant(const RequantArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) { requant_rows(a, m0, m1, kQuant); }

}  // namespace
}  // namespace ssm

extern const SsmKernel kSsmAvx512 = {Isa::avx512,     "avx512",   ssm::x_conv, ssm::x_conv_out,
                                     ssm::x_scan,     ssm::x_scan_out, ssm::x_requant};

}  // namespace fq::k
