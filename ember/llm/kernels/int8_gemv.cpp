// int8 weight x int8 activation matrix-vector product for CPU decode (AVX512-VNNI).
//
// Weights are per-output-channel int8, stored offset by +128 as uint8 in tiles of 16 output
// channels: tile t holds K/4 groups of 64 bytes, group g = 16 channels x 4 consecutive inputs,
// so one vpdpbusd adds 4 products to each of 16 channel sums. Activations are quantized on the
// fly (quantized_rows.h). The +128 offset is removed once per row:
// sum((w + 128) * x) = sum(w * x) + 128 * sum(x).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "quantized_rows.h"

namespace {

using ember::kBlock;
constexpr int64_t kTile = 16;     // output channels per accumulator register
constexpr int64_t kMaxRows = 8;   // rows that share one pass over the weights

template <int Rows>
void tiles(const uint8_t* weight, const int8_t* codes, const float* x_scales, const float* offsets,
           const float* w_scales, float* out, int64_t k, int64_t n, int64_t first, int64_t last) {
  const int64_t blocks = k / kBlock;
  for (int64_t t = first; t < last; ++t) {
    const uint8_t* w = weight + t * k * kTile;
    __m512 sums[Rows];
    for (int r = 0; r < Rows; ++r) sums[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      __m512i dots[Rows];
      for (int r = 0; r < Rows; ++r) dots[r] = _mm512_setzero_si512();
      for (int64_t g = 0; g < kBlock / 4; ++g) {
        const __m512i group = _mm512_loadu_si512(w + (b * kBlock / 4 + g) * 64);
        for (int r = 0; r < Rows; ++r) {
          int32_t four;
          std::memcpy(&four, codes + r * k + b * kBlock + g * 4, 4);
          dots[r] = _mm512_dpbusd_epi32(dots[r], group, _mm512_set1_epi32(four));
        }
      }
      for (int r = 0; r < Rows; ++r) {
        const __m512 scale = _mm512_set1_ps(x_scales[r * blocks + b]);
        sums[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[r]), scale, sums[r]);
      }
    }
    const __m512 channel_scales = _mm512_loadu_ps(w_scales + t * kTile);
    for (int r = 0; r < Rows; ++r) {
      const __m512 y = _mm512_sub_ps(sums[r], _mm512_set1_ps(offsets[r]));
      _mm512_storeu_ps(out + r * n + t * kTile, _mm512_mul_ps(y, channel_scales));
    }
  }
}

using TileFn = void (*)(const uint8_t*, const int8_t*, const float*, const float*, const float*, float*,
                        int64_t, int64_t, int64_t, int64_t);
constexpr TileFn kTileFns[kMaxRows] = {tiles<1>, tiles<2>, tiles<3>, tiles<4>,
                                       tiles<5>, tiles<6>, tiles<7>, tiles<8>};

}  // namespace

namespace ember {

at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "x must be a 2-D float32 tensor");
  TORCH_CHECK(packed.dim() == 4 && packed.scalar_type() == at::kByte, "packed must be (N/16, K/4, 16, 4) uint8");
  const int64_t rows = x.size(0), k = x.size(1), n = packed.size(0) * kTile;
  TORCH_CHECK(packed.size(1) * 4 == k && k % kBlock == 0, "K must match the packed weight and be a multiple of 32");
  TORCH_CHECK(scales.numel() == n && scales.scalar_type() == at::kFloat, "scales must be N float32 values");
  const at::Tensor input = x.contiguous();
  const at::Tensor weight = packed.contiguous();
  const at::Tensor channel_scales = scales.contiguous();
  at::Tensor out = at::empty({rows, n}, x.options());
  const ember::QuantizedRows quantized = ember::quantize_rows(input.data_ptr<float>(), rows, k);
  const int8_t* codes = quantized.codes.data();
  const float* x_scales = quantized.scales.data();
  std::vector<float> offsets(rows, 0.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < k / kBlock; ++b)
      offsets[r] += x_scales[r * (k / kBlock) + b] * 128.f * quantized.sums[r * (k / kBlock) + b];
  // A few tiles per task: enough work per thread to hide the fork, even for 192-wide outputs. Each
  // tile serves every group of rows while its weights are in L1 (batched decode, prefill chunks).
  at::parallel_for(0, n / kTile, 4, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      for (int64_t r0 = 0; r0 < rows; r0 += kMaxRows) {
        kTileFns[std::min(kMaxRows, rows - r0) - 1](weight.data_ptr<uint8_t>(), codes + r0 * k,
                                                    x_scales + r0 * (k / kBlock), offsets.data() + r0,
                                                    channel_scales.data_ptr<float>(),
                                                    out.data_ptr<float>() + r0 * n, k, n, t, t + 1);
      }
    }
  });
  return out;
}

}  // namespace ember

namespace {

at::Tensor int8_linear_meta(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales) {
  return at::empty({x.size(0), packed.size(0) * kTile}, x.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ember_kernels, m) { m.def("int8_linear(Tensor x, Tensor packed, Tensor scales) -> Tensor"); }
TORCH_LIBRARY_IMPL(ember_kernels, CPU, m) { m.impl("int8_linear", ember::int8_linear); }
TORCH_LIBRARY_IMPL(ember_kernels, Meta, m) { m.impl("int8_linear", int8_linear_meta); }
