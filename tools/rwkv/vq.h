// RWKVQuant weight quantization (docs/rwkv.md "rwkvquant"; algorithms.md section 4): the
// coarse-to-fine proxy that picks scalar or vector (codebook) quantization per matrix, 1-D
// codebooks per (row, group) fitted by Hessian-weighted k-means, and the activation-weighted
// k-means of the element-wise mixing vectors. Both kinds of matrix land in the DI-MatMul codebook
// format (matmul.h cb3 / cb4): scalar quantization is a uniform codebook (a per-group step), VQ a
// fitted one. Float code, offline.
#pragma once
#include <vector>

#include "gptq.h"

namespace fq::rwkv {

// The proxy of RWKVQuant (GPTQ.fasterquant, incoherent_param): over the sorted unique values of
// w, the normalized consecutive gaps G_n (n of them):
//   hce  = log n + sum G_n log G_n                         (entropy deficit; 0 = uniform spacing)
//   fine = n^2/2 |mean (G_n - 1/n)^2| + n^3/6 |mean (G_n - 1/n)^3| + n^4/12 |mean (G_n - 1/n)^4|
// coherent (uniform-like: scalar quantization) when hce < tau1 and fine < tau2; else codebook.
struct Proxy {
  double hce = 0, fine = 0;
  bool coherent = false;
};
Proxy rwkvquant_proxy(const std::vector<float>& w, double tau1, double tau2);

// Codebook weights for matmul.h's cb3 / cb4 format: per row n a scale (mult[n] 2^-w_exp, mult
// < 2^15 so that the graph stores it as int16), per block of `rows` rows and group of `group`
// columns 2^bits int8 entries in units of the row's scale (the rows are normalized to max |w| =
// 127 units, so one codebook serves them all). uniform = true: the entries are the uniform grid of
// the block's range (scalar quantization, the range shrink chosen by weighted error); false: 1-D
// k-means with each value weighted by H_kk s_n^2 (its share of the output error; h: K x K input
// second moments, or empty = 1), `iters` Lloyd steps, entries rounded to int8 each step. Indices =
// nearest entry. With gptq (and h), GPTVQ's order: group by group, the codebook is fitted to the
// block's current values, then its columns are quantized one at a time (by decreasing H_kk: act
// order within the group) with the GPTQ update of the columns after them; then two rounds of an M-step (each codebook refitted to the block's output
// error, indices fixed) and a least-squares refit of each row's scale.
llama::QLinear quantize_codebook(const llama::Mat& w, const std::vector<double>& h, int bits, int group,
                                 bool uniform, int iters = 30, bool gptq = false, int rows = 1);

// Element-wise vectors (RWKVQuant Mask_Q): groups of `group` values, 2^bits centroids per group
// from k-means whose M-step is weighted by mask (mean |x| of the activation each value multiplies):
// c = sum mask w / sum mask. Returns the quantized values (centroids of each element).
std::vector<double> kmeans_mul(const std::vector<double>& w, const std::vector<double>& mask, int bits,
                               int group, int iters = 50);

// Storage of a codebook matrix in bits per weight: indices, codebooks and row scales.
double codebook_bits_per_weight(const llama::QLinear& q);

}  // namespace fq::rwkv
