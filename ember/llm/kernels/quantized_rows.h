// Activations quantized for the int8 dot-product kernels: int8 codes in blocks of 32 inputs,
// each block with its own scale (as llama.cpp's Q8_0), so one outlier feature coarsens only its
// own block, and each block's code sum, which the kernels use to remove weight offsets.
#pragma once

#include <algorithm>
#include <cmath>
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
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = x + r * k + b * kBlock;
      float amax = 0.f;
      for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(src[i]));
      const float inverse = amax > 0.f ? 127.f / amax : 0.f;
      int32_t sum = 0;
      for (int64_t i = 0; i < kBlock; ++i) {
        const int32_t q = static_cast<int32_t>(std::nearbyint(src[i] * inverse));
        out.codes[r * k + b * kBlock + i] = static_cast<int8_t>(q);
        sum += q;
      }
      out.scales[r * blocks + b] = amax / 127.f;
      out.sums[r * blocks + b] = static_cast<float>(sum);
    }
  }
  return out;
}

}  // namespace ember
