// Activations quantized for the int8 dot-product kernels: int8 codes in blocks of 32 inputs,
// each block with its own scale (as llama.cpp's Q8_0), so one outlier feature coarsens only its
// own block, and each block's code sum, which the kernels use to remove weight offsets.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <vector>

namespace ember {

constexpr int64_t kBlock = 32;

struct QuantizedRows {
  std::vector<int8_t> codes;   // rows x k
  std::vector<float> scales;   // rows x k / kBlock
  std::vector<float> sums;     // rows x k / kBlock, sum of the block's codes
};

inline QuantizedRows quantize_rows(const float* x, int64_t rows, int64_t k) {
  const int64_t blocks = k / kBlock;
  QuantizedRows out{std::vector<int8_t>(rows * k), std::vector<float>(rows * blocks),
                    std::vector<float>(rows * blocks)};
  for (int64_t b = 0; b < rows * blocks; ++b) {  // rows are contiguous: block b of the whole input
    const float* src = x + b * kBlock;
    const __m512 lo = _mm512_loadu_ps(src), hi = _mm512_loadu_ps(src + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const __m512 inverse = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
    // Round half to even, as std::nearbyint does in the default rounding mode.
    const __m512i q_lo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inverse));
    const __m512i q_hi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inverse));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out.codes.data() + b * kBlock), _mm512_cvtsepi32_epi8(q_lo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out.codes.data() + b * kBlock + 16), _mm512_cvtsepi32_epi8(q_hi));
    out.scales[b] = amax / 127.f;
    out.sums[b] = static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(q_lo, q_hi)));
  }
  return out;
}

}  // namespace ember
