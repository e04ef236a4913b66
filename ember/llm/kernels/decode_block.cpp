// One decoder block of decode in one call: RMSNorm, fused QKV projection, RoPE, cache write,
// attention, output projection and residual, RMSNorm, fused gate/up projection, SiLU, down
// projection and residual. Two cache layouts: one sequence's contiguous cache (decode_block), and
// many sequences' slots in a paged pool reached through block tables (paged_decode_block, a
// continuous-batching step where every sequence decodes).
//
// Written as torch ops, a block is about 70 dispatches; for a 30-layer model on 2 cores that
// overhead took twice as long as the matrix products themselves. Here the small vector work is
// plain loops and the products go straight to the quantized kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "vector_math.h"

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

// weight * x / rms(x) for each row, as the model's RMSNorm computes it in float32.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const int64_t rows = x.size(0), d = x.size(1);
  at::Tensor out = at::empty_like(x);
  const float* w = weight.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x.data_ptr<float>() + r * d;
    float* o = out.data_ptr<float>() + r * d;
    float squares = 0.f;
    for (int64_t i = 0; i < d; ++i) squares += in[i] * in[i];
    const float inverse = 1.f / std::sqrt(squares / static_cast<float>(d) + static_cast<float>(eps));
    for (int64_t i = 0; i < d; ++i) o[i] = w[i] * (in[i] * inverse);
  }
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

struct BlockWeights {
  const at::Tensor& attn_norm;
  const at::Tensor& ffn_norm;
  at::TensorList qkv, wo, gate_up, down;
  int64_t n_heads, kv_heads, dim;
  double eps;
};

// x (R, d) float32, one new token per row, with its rotary values in rows of cos and sin (R, D).
// `store_and_attend(projected)` gets the (R, (Hq + 2 Hkv) * D) rotated queries, keys and values,
// stores the keys and values and returns the attention output (R, Hq, D). Returns the new x.
template <class StoreAndAttend>
at::Tensor run_block(const at::Tensor& x, const BlockWeights& w, const at::Tensor& cos, const at::Tensor& sin,
                     const StoreAndAttend& store_and_attend) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "x must be contiguous float32 rows (R, d)");
  const int64_t rows = x.size(0), dim = w.dim, width = (w.n_heads + 2 * w.kv_heads) * dim;
  TORCH_CHECK(w.attn_norm.numel() == x.size(1) && w.ffn_norm.numel() == x.size(1) &&
                  w.attn_norm.scalar_type() == at::kFloat && w.ffn_norm.scalar_type() == at::kFloat &&
                  w.attn_norm.is_contiguous() && w.ffn_norm.is_contiguous(),
              "the norm weights must be float32 vectors of the model width ", x.size(1));
  TORCH_CHECK(cos.numel() == rows * dim && sin.numel() == rows * dim && cos.is_contiguous() && sin.is_contiguous(),
              "cos and sin must hold head_dim values per row");
  const at::Tensor projected = linear(rms_norm(x, w.attn_norm, w.eps), w.qkv);
  TORCH_CHECK(projected.size(1) == width, "the QKV projection's width does not match the heads");
  for (int64_t r = 0; r < rows; ++r) {
    float* q = projected.data_ptr<float>() + r * width;
    const float* c = cos.data_ptr<float>() + r * dim;
    const float* s = sin.data_ptr<float>() + r * dim;
    rope(q, w.n_heads, dim, c, s);
    rope(q + w.n_heads * dim, w.kv_heads, dim, c, s);
  }
  const at::Tensor attended = store_and_attend(projected);
  at::Tensor hidden = x + linear(attended.view({rows, w.n_heads * dim}), w.wo);

  const at::Tensor gates = linear(rms_norm(hidden, w.ffn_norm, w.eps), w.gate_up);
  const int64_t ffn = gates.size(1) / 2;
  TORCH_CHECK(ffn % 16 == 0, "the feed-forward width must be a multiple of 16");
  at::parallel_for(0, rows, 4, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      float* g = gates.data_ptr<float>() + r * 2 * ffn;
      for (int64_t i = 0; i < ffn; i += 16)
        _mm512_storeu_ps(g + i, _mm512_mul_ps(ember::silu(_mm512_loadu_ps(g + i)), _mm512_loadu_ps(g + ffn + i)));
    }
  });
  hidden += linear(gates.narrow(1, 0, ffn), w.down);
  return hidden;
}

bool is_cache_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16;
}

// The k and v parts of one row of the projection, per kv head, into the cache at `offset` elements
// (std::copy converts to bfloat16 with round-to-nearest-even where the cache holds bfloat16).
template <class T>
void copy_heads(const float* row, int64_t n_heads, int64_t kv_heads, int64_t dim, T* k_dst, T* v_dst,
                int64_t head_stride) {
  const float* k = row + n_heads * dim;
  const float* v = k + kv_heads * dim;
  for (int64_t h = 0; h < kv_heads; ++h) {
    std::copy(k + h * dim, k + (h + 1) * dim, k_dst + h * head_stride);
    std::copy(v + h * dim, v + (h + 1) * dim, v_dst + h * head_stride);
  }
}

void store_heads(const float* row, int64_t n_heads, int64_t kv_heads, int64_t dim, const at::Tensor& k_cache,
                 const at::Tensor& v_cache, int64_t offset, int64_t head_stride) {
  if (k_cache.scalar_type() == at::kBFloat16)
    copy_heads(row, n_heads, kv_heads, dim, k_cache.data_ptr<at::BFloat16>() + offset,
               v_cache.data_ptr<at::BFloat16>() + offset, head_stride);
  else
    copy_heads(row, n_heads, kv_heads, dim, k_cache.data_ptr<float>() + offset, v_cache.data_ptr<float>() + offset,
               head_stride);
}

// One sequence: x (1, d) at `position` (a one-element int64 tensor: an int argument would make
// torch.compile specialise on every value); k_cache, v_cache (1, Hkv, max_len, D) are written at
// the position and read over [0, position].
at::Tensor decode_block(const at::Tensor& x, const at::Tensor& attn_norm, const at::Tensor& ffn_norm,
                        at::TensorList qkv, at::TensorList wo, at::TensorList gate_up, at::TensorList down,
                        const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& cos,
                        const at::Tensor& sin, const at::Tensor& positions, int64_t n_heads, double eps) {
  TORCH_CHECK(x.size(0) == 1, "decode_block takes one sequence's row; paged_decode_block takes many");
  TORCH_CHECK(k_cache.dim() == 4 && k_cache.size(0) == 1 && k_cache.sizes() == v_cache.sizes() &&
                  is_cache_dtype(k_cache) && v_cache.scalar_type() == k_cache.scalar_type() &&
                  k_cache.is_contiguous() && v_cache.is_contiguous(),
              "the caches must be contiguous float32 or bfloat16 (1, kv_heads, max_len, head_dim)");
  TORCH_CHECK(positions.numel() == 1 && positions.scalar_type() == at::kLong, "position must be one int64 value");
  const int64_t position = positions.item<int64_t>();
  TORCH_CHECK(position >= 0 && position < k_cache.size(2), "position ", position, " is outside the cache");
  const BlockWeights w{attn_norm, ffn_norm, qkv, wo, gate_up, down, n_heads, k_cache.size(1), k_cache.size(3), eps};
  return run_block(x, w, cos, sin, [&](const at::Tensor& projected) {
    store_heads(projected.data_ptr<float>(), n_heads, w.kv_heads, w.dim, k_cache, v_cache,
                k_cache.stride(2) * position, k_cache.stride(1));
    const at::Tensor queries = projected.narrow(1, 0, n_heads * w.dim).view({1, n_heads, w.dim});
    return ember::decode_attention(queries, k_cache.narrow(2, 0, position + 1), v_cache.narrow(2, 0, position + 1),
                                   1.0 / std::sqrt(static_cast<double>(w.dim)));
  });
}

// Many sequences: row r of x (R, d) is written to pool slot slots[r] and attends over the
// key_counts[r] keys its block table blocks[r] lists; k_pool, v_pool (blocks, block_size, Hkv, D).
at::Tensor paged_decode_block(const at::Tensor& x, const at::Tensor& attn_norm, const at::Tensor& ffn_norm,
                              at::TensorList qkv, at::TensorList wo, at::TensorList gate_up, at::TensorList down,
                              const at::Tensor& k_pool, const at::Tensor& v_pool, const at::Tensor& cos,
                              const at::Tensor& sin, const at::Tensor& slots, const at::Tensor& blocks,
                              const at::Tensor& key_counts, int64_t n_heads, double eps) {
  TORCH_CHECK(k_pool.dim() == 4 && k_pool.sizes() == v_pool.sizes() && is_cache_dtype(k_pool) &&
                  v_pool.scalar_type() == k_pool.scalar_type() && k_pool.is_contiguous() && v_pool.is_contiguous(),
              "the pools must be contiguous float32 or bfloat16 (blocks, block_size, kv_heads, head_dim)");
  const int64_t rows = x.size(0), pool_slots = k_pool.size(0) * k_pool.size(1);
  TORCH_CHECK(slots.numel() == rows && slots.scalar_type() == at::kLong, "slots must be int64 (rows,)");
  const at::Tensor slot_ids = slots.contiguous();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t slot = slot_ids.data_ptr<int64_t>()[r];
    TORCH_CHECK(slot >= 0 && slot < pool_slots, "row ", r, " writes slot ", slot, ", outside the pool");
  }
  const BlockWeights w{attn_norm, ffn_norm, qkv, wo, gate_up, down, n_heads, k_pool.size(2), k_pool.size(3), eps};
  return run_block(x, w, cos, sin, [&](const at::Tensor& projected) {
    const int64_t width = projected.size(1);
    for (int64_t r = 0; r < rows; ++r) {
      store_heads(projected.data_ptr<float>() + r * width, n_heads, w.kv_heads, w.dim, k_pool, v_pool,
                  slot_ids.data_ptr<int64_t>()[r] * k_pool.stride(1), k_pool.stride(2));
    }
    const at::Tensor queries = projected.narrow(1, 0, n_heads * w.dim).view({rows, n_heads, w.dim});
    return ember::paged_decode_attention(queries, k_pool, v_pool, blocks, key_counts,
                                         1.0 / std::sqrt(static_cast<double>(w.dim)));
  });
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
  m.def(
      "paged_decode_block(Tensor x, Tensor attn_norm, Tensor ffn_norm, Tensor[] qkv, Tensor[] wo, "
      "Tensor[] gate_up, Tensor[] down, Tensor(a!) k_pool, Tensor(b!) v_pool, Tensor cos, Tensor sin, "
      "Tensor slots, Tensor blocks, Tensor key_counts, int n_heads, float eps) -> Tensor");
}
TORCH_LIBRARY_IMPL(ember_kernels, CPU, m) {
  m.impl("decode_block", decode_block);
  m.impl("paged_decode_block", paged_decode_block);
}
TORCH_LIBRARY_IMPL(ember_kernels, Meta, m) { m.impl("decode_block", decode_block_meta); }
