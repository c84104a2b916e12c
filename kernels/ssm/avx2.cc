// AVX2 variant of the ssm family: the same bytes as ref.cc for every input the contract allows.
// The structure of avx512.cc in 64-bit lanes (4 per ymm): scan over 4 channels per step (their
// scan_ch and scan_y as vectors) and per channel 8 states per step, conv over channels, the row
// quantizer over elements. AVX2 has no 64-bit arithmetic shift, min/max, abs or
// low multiply; they are built from logical shifts, vpcmpgtq / blends and vpmuldq / vpmuludq
// products of at most 32-bit halves (every product below is exact in 64 bits).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../llm/x86_avx2_helpers.h"
#include "ssm_internal.h"

namespace fq::k {
namespace ssm {
namespace {

using namespace avx2h;

// Mask of the first `left` lanes (64-bit), for loads and stores of a tail.
inline V tail4(int64_t left) {
  return _mm256_cmpgt_epi64(s64(left < 4 ? left : 4), _mm256_setr_epi64x(0, 1, 2, 3));
}
inline V load_i32(const int32_t* p, int64_t left) {
  if (left >= 4) return _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) int32_t t[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < left; ++i) t[i] = p[i];
  return _mm256_cvtepi32_epi64(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}
inline V load_i16(const int16_t* p, int64_t left) {
  if (left >= 4) return _mm256_cvtepi16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  alignas(16) int16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < left; ++i) t[i] = p[i];
  return _mm256_cvtepi16_epi64(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}
inline V load_i64(const int64_t* p, int64_t left) {
  return left >= 4 ? _mm256_loadu_si256(reinterpret_cast<const V*>(p))
                   : _mm256_maskload_epi64(reinterpret_cast<const long long*>(p), tail4(left));
}
// The low 32 bits of the 4 lanes (values already in int32 range) to p[0..min(left, 4)).
inline void store_i32(int32_t* p, int64_t left, V x) {
  const __m128i v = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
  if (left >= 4) _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
  else _mm_maskstore_epi32(p, _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(tail4(left), _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0))), v);
}
inline void store_i64(int64_t* p, int64_t left, V x) {
  if (left >= 4) _mm256_storeu_si256(reinterpret_cast<V*>(p), x);
  else _mm256_maskstore_epi64(reinterpret_cast<long long*>(p), tail4(left), x);
}

// ---- row quantizer ------------------------------------------------------------------------------

inline V load4(const int64_t* p, int64_t left) { return load_i64(p, left); }
inline V load4(const int32_t* p, int64_t left) { return load_i32(p, left); }
inline V load4(const int16_t* p, int64_t left) { return load_i16(p, left); }

// quantize_row of n values of type T (max |v|, then avx2h::vquant_gen); returns A and writes d.
template <typename T>
int64_t vquant_row(const T* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* dout) {
  V mx = zero();
  for (int64_t i = 0; i < n; i += 4) mx = maxv(mx, absv(load4(v + i, n - i)));
  alignas(32) int64_t m4[4];
  _mm256_store_si256(reinterpret_cast<V*>(m4), mx);
  const uint64_t A0 = uint64_t(std::max(std::max(m4[0], m4[1]), std::max(m4[2], m4[3])));
  return vquant_gen(n, qmax, llm::QRow{q8, q16}, A0, dout, [v](int64_t j) { return load4(v + j, 4); },
                    [v](int64_t j) { return int64_t(v[j]); });
}

// vquant_row as a value for the row passes of ssm_internal.h.
constexpr auto kQuant = [](const auto* v, int64_t n, int qmax, int8_t* q8, int16_t* q16, int* d) {
  return vquant_row(v, n, qmax, q8, q16, d);
};

// ---- conv ---------------------------------------------------------------------------------------

// v = zq * sig(zc) of swiglu per lane (conv_v).
inline V vsilu(V zq) { return _mm256_mul_epi32(zq, vsig(clampv(vshs(zq, 4), -kL17, kL17))); }

void x_conv(const SsmConvArgs& a, int64_t c0, int64_t c1) {
  const int K = taps_of(a);
  const int64_t C = a.channels, zsh = conv_zsh(a), ush = conv_ush(a);
  alignas(32) int64_t wt[kMaxTaps][4];
  V win[kMaxTaps];
  for (int64_t c = c0; c < c1; c += 4) {
    const int64_t left = c1 - c;
    for (int j = 0; j < K; ++j)
      for (int l = 0; l < 4; ++l) wt[j][l] = l < left ? a.w[(c + l) * K + j] : 0;
    for (int j = 0; j < K - 1; ++j) win[j] = load_i32(a.state + j * C + c, left);
    const V bias = a.bias ? load_i32(a.bias + c, left) : zero();
    for (int64_t m = 0; m < a.rows; ++m) {
      const int64_t o = m * C + c;
      const RowScale s = a.xs[m];
      const V xm = _mm256_mul_epi32(load_i16(a.x + o, left), s64(s.mant));
      win[K - 1] = clampv(vshs(xm, int64_t{s.exp} - a.x_exp), INT32_MIN, INT32_MAX);
      V acc = bias;
      for (int j = 0; j < K; ++j)
        acc = _mm256_add_epi64(acc, _mm256_mul_epi32(_mm256_load_si256(reinterpret_cast<const V*>(wt[j])), win[j]));
      const V v = vsilu(clampv(vshs(acc, zsh), -kSat31, kSat31));
      store_i64(a.work + o, left, v);
      store_i32(a.uf + o, left, clampv(vshs(v, ush), INT32_MIN, INT32_MAX));
      for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
    }
    for (int j = 0; j < K - 1; ++j) store_i32(a.state + j * C + c, left, win[j]);
  }
}

void x_conv_out(const SsmConvArgs& a, int64_t m0, int64_t m1) { conv_out_rows(a, m0, m1, kQuant); }

// ---- scan ---------------------------------------------------------------------------------------

// shift_s(x, s) per lane with a per-lane shift s (any int64 s; as vshs).
inline V vshsv(V x, V s) {
  const V one = s64(1), neg = neg_mask(x);
  auto srav = [&](V c) { return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(x, neg), c), neg); };  // c < 64
  const V rpos = _mm256_add_epi64(srav(s), _mm256_and_si256(srav(_mm256_sub_epi64(s, one)), one));
  const V l = _mm256_sub_epi64(zero(), s);  // s <= 0: the left shift l >= 0 (>= 64 shifts out to 0)
  const V lim = _mm256_sllv_epi64(one, maxv(_mm256_sub_epi64(s64(62), l), zero()));  // l >= 62: 1
  const V mag = absv(x);  // INT64_MIN stays negative: counted as big
  const V small = _mm256_andnot_si256(neg_mask(mag), _mm256_cmpgt_epi64(lim, mag));  // |x| < lim
  V r = blend(blend(s64(llm::kSat62), s64(-llm::kSat62), neg), _mm256_sllv_epi64(x, l), small);
  r = blend(r, rpos, _mm256_cmpgt_epi64(s, zero()));
  r = blend(r, x, _mm256_cmpeq_epi64(s, zero()));
  return _mm256_andnot_si256(_mm256_cmpgt_epi64(s, s64(62)), r);
}

// Lane l = the sum of the 4 lanes of y[l].
inline V hsum4(const V* y) {
  const V p0 = _mm256_add_epi64(_mm256_unpacklo_epi64(y[0], y[1]), _mm256_unpackhi_epi64(y[0], y[1]));
  const V p1 = _mm256_add_epi64(_mm256_unpacklo_epi64(y[2], y[3]), _mm256_unpackhi_epi64(y[2], y[3]));
  return _mm256_add_epi64(_mm256_permute2x128_si256(p0, p1, 0x20), _mm256_permute2x128_si256(p0, p1, 0x31));
}

// scan_ch of the channels [c, c + left) (at most 4) of row m: dq and W per lane.
inline void vscan_ch(const SsmScanArgs& a, int64_t m, int64_t c, int64_t left, V* dq, V* W) {
  const int64_t o = m * a.channels + c;
  const RowScale ds = a.dts[m];
  V xq = vshs(_mm256_mul_epi32(load_i16(a.dt + o, left), s64(ds.mant)), int64_t{ds.exp} - 12);
  if (a.dt_bias) xq = _mm256_add_epi64(xq, load_i32(a.dt_bias + c, left));
  xq = clampv(xq, -kL17, kL17);
  // softplus: T[i] and T[i + 1] by one 8-byte gather at T + 4 i (j clamped into the table; the
  // lanes outside [-2^16, 2^16) are replaced below)
  const V j = clampv(_mm256_add_epi64(xq, s64(1 << 16)), 0, (1 << 17) - 1);
  const V tt = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kSoftplusQ24), _mm256_srli_epi64(j, 8), 4);
  const V t0 = _mm256_and_si256(tt, s64(0xFFFFFFFF)), t1 = _mm256_srli_epi64(tt, 32);  // T > 0
  const V r = _mm256_and_si256(j, s64(255));
  V d = _mm256_add_epi64(t0, _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(_mm256_sub_epi64(t1, t0), r), s64(128)), 8));
  d = blend(d, _mm256_slli_epi64(xq, 12), _mm256_cmpgt_epi64(xq, s64((1 << 16) - 1)));
  d = _mm256_andnot_si256(_mm256_cmpgt_epi64(s64(-(1 << 16)), xq), d);
  *dq = d;
  *W = clampv(vshs(_mm256_mul_epi32(d, load_i32(a.u + o, left)), 24), -kSat31, kSat31);  // |dq u| < 2^60
}

// The N states of channels l < nc of a block for row m, 8 per step as one ymm of int32 (h, a): the
// even states in the low dwords of the 64-bit lanes, the odd ones shifted down (vpmuldq reads the
// low dwords). Bm, Cm are in that order (bc_order<8>) and zero past N. ys[l] = the 4 partial sums of
// C . h of channel l. Fast: tsh and every bsh in [1, 62]; then the arithmetic right shifts are
// logical ones of x + 2^63 (|x| < 2^62), the bias 2^(63 - s) taken off after.
template <bool Fast>
inline void vscan_block(int32_t* h, const int32_t* an, int64_t S, const int64_t* Bm, const int64_t* Cm,
                        int64_t N, const int64_t* dqb, const int64_t* Wb, const int64_t* bshb, int nc,
                        int64_t tsh, V* ys) {
  const V ct = s64(tsh);   // (per-lane counts: vpsrlvq is one uop on Intel, the xmm-count form two)
  const V rt = Fast ? s64(int64_t{1} << (tsh - 1)) : zero();
  for (int l = 0; l < nc; ++l) {
    int32_t* hc = h + l * S;
    const int32_t* ac = an + l * S;
    const V dq = s64(dqb[l]), W = s64(Wb[l]);
    const int64_t bsh = bshb[l];
    const V cb = s64(bsh);
    const V rb = Fast ? s64(INT64_MIN + (int64_t{1} << (bsh - 1))) : zero();
    const V bias = Fast ? s64((int64_t{1} << 33) + (int64_t{1} << (63 - bsh))) : zero();
    V acc = zero();
    auto half = [&](V av, V hv, const int64_t* bm, const int64_t* cm) {  // 4 states -> h' (64-bit)
      const V ta = _mm256_mul_epi32(dq, av);                             // 0 <= dq a < 2^53
      const V g = vexpq<16>(Fast ? _mm256_srlv_epi64(_mm256_add_epi64(ta, rt), ct) : vshs(ta, tsh));
      const V gh = _mm256_mul_epi32(g, hv);                              // |g h| < 2^61
      const V wb = _mm256_mul_epi32(W, _mm256_load_si256(reinterpret_cast<const V*>(bm)));  // |W Bm| < 2^48
      V hn;
      if (Fast) {
        const V r1 = _mm256_srli_epi64(_mm256_add_epi64(gh, s64(INT64_MIN + (1 << 29))), 30);
        hn = _mm256_sub_epi64(_mm256_add_epi64(r1, _mm256_srlv_epi64(_mm256_add_epi64(wb, rb), cb)), bias);
      } else {
        hn = _mm256_add_epi64(sra(_mm256_add_epi64(gh, s64(1 << 29)), 30), vshs(wb, bsh));
      }
      hn = clampv(hn, INT32_MIN, INT32_MAX);
      acc = _mm256_add_epi64(acc, _mm256_mul_epi32(_mm256_load_si256(reinterpret_cast<const V*>(cm)), hn));
      return hn;
    };
    auto step = [&](int64_t n, V av, V hv) {  // returns h' of the 8 states as int32
      const V he = half(av, hv, Bm + n, Cm + n);
      const V ho = half(_mm256_srli_epi64(av, 32), _mm256_srli_epi64(hv, 32), Bm + n + 4, Cm + n + 4);
      return _mm256_blend_epi32(he, _mm256_slli_epi64(ho, 32), 0xAA);
    };
    int64_t n = 0;
    for (; n + 8 <= N; n += 8) {
      const V av = _mm256_loadu_si256(reinterpret_cast<const V*>(ac + n));
      const V hv = _mm256_loadu_si256(reinterpret_cast<const V*>(hc + n));
      _mm256_storeu_si256(reinterpret_cast<V*>(hc + n), step(n, av, hv));
    }
    if (n < N) {  // a partial step on padded copies
      alignas(32) int32_t at[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ht[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t i = n; i < N; ++i) at[i - n] = ac[i], ht[i - n] = hc[i];
      _mm256_store_si256(reinterpret_cast<V*>(ht), step(n, _mm256_load_si256(reinterpret_cast<const V*>(at)),
                                                       _mm256_load_si256(reinterpret_cast<const V*>(ht))));
      for (int64_t i = n; i < N; ++i) hc[i] = ht[i - n];
    }
    ys[l] = acc;
  }
  for (int l = nc; l < 4; ++l) ys[l] = zero();
}

// 4 channels per step (scan_blocks): scan_ch as vectors, the states of each channel, then scan_y
// as vectors (the 4 partial-sum vectors reduced together).
void x_scan(const SsmScanArgs& a, int64_t c0, int64_t c1) {
  const int64_t C = a.channels, N = states_of(a), S = a.states, tsh = int64_t{a.a_frac} + 8, dsh = scan_dsh(a);
  alignas(32) int64_t dqb[4], Wb[4];
  scan_blocks<4, 8, 8, int64_t>(a, c0, c1, [&](int64_t m, int64_t c, int nc, const int64_t* Bm, const int64_t* Cm,
                                                const int64_t* bsh, bool fast) {
    V dq, W, ys[4];
    vscan_ch(a, m, c, nc, &dq, &W);
    _mm256_store_si256(reinterpret_cast<V*>(dqb), dq), _mm256_store_si256(reinterpret_cast<V*>(Wb), W);
    if (fast) vscan_block<true>(a.h + c * S, a.a + c * S, S, Bm, Cm, N, dqb, Wb, bsh, nc, tsh, ys);
    else vscan_block<false>(a.h + c * S, a.a + c * S, S, Bm, Cm, N, dqb, Wb, bsh, nc, tsh, ys);
    alignas(32) int64_t he[4] = {0, 0, 0, 0};
    for (int l = 0; l < nc; ++l) he[l] = a.h_exp[c + l];
    const V ysh = _mm256_add_epi64(_mm256_load_si256(reinterpret_cast<const V*>(he)), s64(scan_ysh0(a, m)));
    const V du = _mm256_mul_epi32(load_i32(a.d + c, nc), load_i32(a.u + m * C + c, nc));  // < 2^55
    const V y = _mm256_add_epi64(vshsv(hsum4(ys), ysh), vshs(du, dsh));
    store_i64(a.work + m * C + c, nc, clampv(y, -kL61, kL61));
  });
}

void x_scan_out(const SsmScanArgs& a, int64_t m0, int64_t m1) { scan_out_rows(a, m0, m1, kQuant); }

void x_requant(const RequantArgs& a, int64_t m0, int64_t m1, void* /*scratch*/) { requant_rows(a, m0, m1, kQuant); }

}  // namespace
}  // namespace ssm

extern const SsmKernel kSsmAvx2 = {Isa::avx2,   "avx2",        ssm::x_conv, ssm::x_conv_out,
                                   ssm::x_scan, ssm::x_scan_out, ssm::x_requant};

}  // namespace fq::k
