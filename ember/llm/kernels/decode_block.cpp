// One decoder block of single-sequence decode in one call: RMSNorm, fused QKV projection, RoPE,
// cache write, attention, output projection and residual, RMSNorm, fused gate/up projection,
// SiLU, down projection and residual.
//
// Written as torch ops, a block is about 70 dispatches; for a 30-layer model on 2 cores that
// overhead took twice as long as the matrix products themselves. Here the small vector work is
// plain loops and the products go straight to the quantized kernels.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>

#include "kernels.h"

namespace {

// A linear layer's weights in a kernel layout, told apart by count: [packed, scales] int8,
// [packed, scales, mins] int4.
at::Tensor linear(const at::Tensor& x, at::TensorList weights) {
  switch (weights.size()) {
    case 2:
      return ember::int8_linear(x, weights[0], weights[1]);
    case 3:
      return ember::int4_linear(x, weights[0], weights[1], weights[2]);
    default:
      TORCH_CHECK(false, "a linear layer is 2 (int8) or 3 (int4) tensors, got ", weights.size());
  }
}

// weight * x / rms(x), as the model's RMSNorm computes it in float32.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const int64_t d = x.numel();
  at::Tensor out = at::empty_like(x);
  const float* in = x.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  float* o = out.data_ptr<float>();
  float squares = 0.f;
  for (int64_t i = 0; i < d; ++i) squares += in[i] * in[i];
  const float inverse = 1.f / std::sqrt(squares / static_cast<float>(d) + static_cast<float>(eps));
  for (int64_t i = 0; i < d; ++i) o[i] = w[i] * (in[i] * inverse);
  return out;
}

// Rotate `heads` vectors of size dim in place, HF's rotate-half layout: x * cos + rotate_half(x) * sin.
void rope(float* x, int64_t heads, int64_t dim, const float* cos, const float* sin) {
  const int64_t half = dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float first = v[i], second = v[i + half];
      v[i] = first * cos[i] - second * sin[i];
      v[i + half] = second * cos[i + half] + first * sin[i + half];
    }
  }
}

// x (1, d) float32 at `position` (a one-element int64 tensor: an int argument would make torch.compile
// specialise on every value); k_cache, v_cache (1, Hkv, max_len, D) are written at the position and
// read over [0, position]; cos, sin hold the position's D rotary values. Returns the new x.
at::Tensor decode_block(const at::Tensor& x, const at::Tensor& attn_norm, const at::Tensor& ffn_norm,
                        at::TensorList qkv, at::TensorList wo, at::TensorList gate_up, at::TensorList down,
                        const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& cos,
                        const at::Tensor& sin, const at::Tensor& positions, int64_t n_heads, double eps) {
  TORCH_CHECK(x.dim() == 2 && x.size(0) == 1 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "x must be one contiguous float32 row (1, d)");
  TORCH_CHECK(k_cache.dim() == 4 && k_cache.size(0) == 1 && k_cache.sizes() == v_cache.sizes() &&
                  k_cache.scalar_type() == at::kFloat && k_cache.is_contiguous() && v_cache.is_contiguous(),
              "the caches must be contiguous float32 (1, kv_heads, max_len, head_dim)");
  const int64_t kv_heads = k_cache.size(1), dim = k_cache.size(3);
  TORCH_CHECK(positions.numel() == 1 && positions.scalar_type() == at::kLong, "position must be one int64 value");
  const int64_t position = positions.item<int64_t>();
  TORCH_CHECK(position >= 0 && position < k_cache.size(2), "position ", position, " is outside the cache");
  TORCH_CHECK(cos.numel() == dim && sin.numel() == dim && cos.is_contiguous() && sin.is_contiguous(),
              "cos and sin must hold head_dim values");

  const at::Tensor projected = linear(rms_norm(x, attn_norm, eps), qkv);
  TORCH_CHECK(projected.size(1) == (n_heads + 2 * kv_heads) * dim, "the QKV projection's width does not match");
  float* q = projected.data_ptr<float>();
  float* k = q + n_heads * dim;
  const float* v = k + kv_heads * dim;
  rope(q, n_heads, dim, cos.data_ptr<float>(), sin.data_ptr<float>());
  rope(k, kv_heads, dim, cos.data_ptr<float>(), sin.data_ptr<float>());
  float* k_slots = k_cache.data_ptr<float>();
  float* v_slots = v_cache.data_ptr<float>();
  for (int64_t h = 0; h < kv_heads; ++h) {
    const int64_t slot = k_cache.stride(1) * h + k_cache.stride(2) * position;
    std::copy(k + h * dim, k + (h + 1) * dim, k_slots + slot);
    std::copy(v + h * dim, v + (h + 1) * dim, v_slots + slot);
  }
  const at::Tensor queries = projected.narrow(1, 0, n_heads * dim).view({1, n_heads, dim});
  const at::Tensor attended = ember::decode_attention(queries, k_cache.narrow(2, 0, position + 1),
                                                      v_cache.narrow(2, 0, position + 1),
                                                      1.0 / std::sqrt(static_cast<double>(dim)));
  at::Tensor hidden = x + linear(attended.view({1, n_heads * dim}), wo);

  at::Tensor gates = linear(rms_norm(hidden, ffn_norm, eps), gate_up);
  const int64_t ffn = gates.size(1) / 2;
  float* g = gates.data_ptr<float>();
  for (int64_t i = 0; i < ffn; ++i) g[i] = g[i] / (1.f + std::exp(-g[i])) * g[ffn + i];
  hidden += linear(gates.narrow(1, 0, ffn), down);
  return hidden;
}

at::Tensor decode_block_meta(const at::Tensor& x, const at::Tensor&, const at::Tensor&, at::TensorList,
                             at::TensorList, at::TensorList, at::TensorList, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             int64_t, double) {
  return at::empty_like(x);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ember_kernels, m) {
  m.def(
      "decode_block(Tensor x, Tensor attn_norm, Tensor ffn_norm, Tensor[] qkv, Tensor[] wo, Tensor[] gate_up, "
      "Tensor[] down, Tensor(a!) k_cache, Tensor(b!) v_cache, Tensor cos, Tensor sin, Tensor position, "
      "int n_heads, float eps) -> Tensor");
}
TORCH_LIBRARY_IMPL(ember_kernels, CPU, m) { m.impl("decode_block", decode_block); }
TORCH_LIBRARY_IMPL(ember_kernels, Meta, m) { m.impl("decode_block", decode_block_meta); }
