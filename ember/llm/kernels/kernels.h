// The kernels one translation unit calls from another (decode_block.cpp composes the others).
#pragma once

#include <ATen/ATen.h>

namespace ember {

// x (M, K) float32 times int8 weights packed by pack_int8_for_vnni, with per-channel scales.
at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales);

// x (M, K) float32 times 4-bit groupwise weights packed by pack_int4_for_vnni.
at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales,
                       const at::Tensor& mins);

// q (B, Hq, D) over k, v (B, Hkv, L, D): one new token per row attending to its whole cache prefix.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale);

// q (R, Hq, D) over paged pools (blocks, block_size, Hkv, D) through block tables (R, W), row r
// seeing lengths[r] keys.
at::Tensor paged_decode_attention(const at::Tensor& q, const at::Tensor& k_pool, const at::Tensor& v_pool,
                                  const at::Tensor& blocks, const at::Tensor& lengths, double scale);

}  // namespace ember
