// int4 weight x int8 activation matrix-vector product for CPU decode (AVX512-VNNI).
//
// Weights are asymmetric 4-bit codes q in 0..15 with a scale and minimum per group of 32 inputs
// (w = q * scale + min), in tiles of 16 output channels. For each block of 32 inputs a tile holds
// 8 chunks of 32 bytes; chunk c unpacks to the 64-byte vpdpbusd operand of inputs 4c..4c+3
// (16 channels x 4 inputs): its low nibbles are channels 0-7, its high nibbles channels 8-15.
// Scales and minimums are fp16, 16 per tile and block. With activations quantized per block
// (quantized_rows.h): sum(w * x) = x_scale * (w_scale * sum(q * code) + w_min * sum(code)).
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
constexpr int64_t kTile = 16;
constexpr int64_t kMaxRows = 8;
constexpr int64_t kChunkBytes = 32;

template <int Rows>
void tiles(const uint8_t* weight, const at::Half* w_scales, const at::Half* w_mins, const int8_t* codes,
           const float* x_scales, const float* x_sums, float* out, int64_t k, int64_t n, int64_t first,
           int64_t last) {
  const int64_t blocks = k / kBlock;
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  for (int64_t t = first; t < last; ++t) {
    const uint8_t* w = weight + t * blocks * (kBlock / 4) * kChunkBytes;
    __m512 sums[Rows];
    for (int r = 0; r < Rows; ++r) sums[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      __m512i dots[Rows];
      for (int r = 0; r < Rows; ++r) dots[r] = _mm512_setzero_si512();
      for (int64_t c = 0; c < kBlock / 4; ++c) {
        const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (b * kBlock / 4 + c) * kChunkBytes));
        const __m256i low = _mm256_and_si256(packed, low_nibbles);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
        const __m512i group = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
        for (int r = 0; r < Rows; ++r) {
          int32_t four;
          std::memcpy(&four, codes + r * k + b * kBlock + c * 4, 4);
          dots[r] = _mm512_dpbusd_epi32(dots[r], group, _mm512_set1_epi32(four));
        }
      }
      const int64_t at = (t * blocks + b) * kTile;
      const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_scales + at)));
      const __m512 minimum = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_mins + at)));
      for (int r = 0; r < Rows; ++r) {
        const __m512 block = _mm512_fmadd_ps(minimum, _mm512_set1_ps(x_sums[r * blocks + b]),
                                             _mm512_mul_ps(_mm512_cvtepi32_ps(dots[r]), scale));
        sums[r] = _mm512_fmadd_ps(block, _mm512_set1_ps(x_scales[r * blocks + b]), sums[r]);
      }
    }
    for (int r = 0; r < Rows; ++r) _mm512_storeu_ps(out + r * n + t * kTile, sums[r]);
  }
}

using TileFn = void (*)(const uint8_t*, const at::Half*, const at::Half*, const int8_t*, const float*,
                        const float*, float*, int64_t, int64_t, int64_t, int64_t);
constexpr TileFn kTileFns[kMaxRows] = {tiles<1>, tiles<2>, tiles<3>, tiles<4>,
                                       tiles<5>, tiles<6>, tiles<7>, tiles<8>};

// x (M, K) float32; packed (N/16, K/32, 8, 32) uint8; scales, mins (N/16, K/32, 16) float16.
}  // namespace

namespace ember {

at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales,
                       const at::Tensor& mins) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "x must be a 2-D float32 tensor");
  TORCH_CHECK(packed.dim() == 4 && packed.scalar_type() == at::kByte && packed.size(2) == kBlock / 4 &&
                  packed.size(3) == kChunkBytes,
              "packed must be (N/16, K/32, 8, 32) uint8");
  const int64_t rows = x.size(0), k = x.size(1), n = packed.size(0) * kTile, blocks = k / kBlock;
  TORCH_CHECK(k % kBlock == 0 && packed.size(1) == blocks, "K must match the packed weight and be a multiple of 32");
  TORCH_CHECK(scales.scalar_type() == at::kHalf && mins.scalar_type() == at::kHalf &&
                  scales.numel() == n * blocks && mins.numel() == n * blocks,
              "scales and mins must be (N/16, K/32, 16) float16");
  const at::Tensor input = x.contiguous(), weight = packed.contiguous();
  const at::Tensor w_scales = scales.contiguous(), w_mins = mins.contiguous();
  at::Tensor out = at::empty({rows, n}, x.options());
  const ember::QuantizedRows quantized = ember::quantize_rows(input.data_ptr<float>(), rows, k);
  // Each tile serves every group of rows while its weights are in L1 (batched decode, prefill chunks).
  at::parallel_for(0, n / kTile, 4, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      for (int64_t r0 = 0; r0 < rows; r0 += kMaxRows) {
        kTileFns[std::min(kMaxRows, rows - r0) - 1](
            weight.data_ptr<uint8_t>(), w_scales.data_ptr<at::Half>(), w_mins.data_ptr<at::Half>(),
            quantized.codes.data() + r0 * k, quantized.scales.data() + r0 * blocks,
            quantized.sums.data() + r0 * blocks, out.data_ptr<float>() + r0 * n, k, n, t, t + 1);
      }
    }
  });
  return out;
}

}  // namespace ember

namespace {

at::Tensor int4_linear_meta(const at::Tensor& x, const at::Tensor& packed, const at::Tensor&, const at::Tensor&) {
  return at::empty({x.size(0), packed.size(0) * kTile}, x.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ember_kernels, m) {
  m.def("int4_linear(Tensor x, Tensor packed, Tensor scales, Tensor mins) -> Tensor");
}
TORCH_LIBRARY_IMPL(ember_kernels, CPU, m) { m.impl("int4_linear", ember::int4_linear); }
TORCH_LIBRARY_IMPL(ember_kernels, Meta, m) { m.impl("int4_linear", int4_linear_meta); }
