// Attention of one new token per row over its cache prefix, for CPU decode (AVX512): a contiguous
// cache, or a paged pool read in place through block tables (continuous batching).
//
// torch's CPU flash-attention kernel handles a single query row poorly (it reads the cache at
// about a third of this machine's bandwidth). Here each (row, kv head, chunk of keys) is one task:
// the query heads that share the kv head (grouped-query attention) read every key and value once,
// and the chunks' partial softmaxes are merged at the end (the flash-decoding split).
//
// The cache is float32 or bfloat16. Decode at a long context is bound by reading the cache (at
// 1,000 tokens SmolLM2's float32 cache is 46 MB a step against 135 MB of int8 weights), so a
// bfloat16 cache is widened to float32 in registers (or, for keys, met by a float32 query split in
// two bfloat16 halves), and sums stay float32.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "vector_math.h"

namespace {

constexpr int64_t kChunk = 256;   // keys per task
constexpr int64_t kMaxGroup = 16; // query heads per kv head
constexpr int64_t kMaxDim = 256;  // head dimension

// One task's partial softmax per query head: its maximum score, sum of e^(score - max), and the
// e^(score - max)-weighted sum of values (group x dim).
struct Partial {
  float* max;
  float* sum;
  float* acc;
};

// Sixteen bfloat16 values as float32 (a bfloat16 is the top half of a float32).
inline __m512 widen(__m256i bits) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16)); }

// Sixteen cache values as float32.
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const at::BFloat16* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

#ifdef __AVX512BF16__
// A query head split into bfloat16 halves, q = hi + lo to about 2^-17, so vdpbf16ps (exact products,
// float32 sums) takes a float32 query against a bfloat16 key: 4 instructions for 64 dimensions instead
// of widening every key element (built where the CPU has AVX512-BF16, as the build flags follow it).
template <int V>
struct SplitQuery {
  __m512bh hi[V / 2], lo[V / 2];
  explicit SplitQuery(const float* q) {
    for (int d = 0; d < V / 2; ++d) {
      const __m512 first = _mm512_loadu_ps(q + d * 32), second = _mm512_loadu_ps(q + d * 32 + 16);
      hi[d] = _mm512_cvtne2ps_pbh(second, first);
      const __m512i bits = (__m512i)hi[d];
      const __m512 first_hi = widen(_mm512_extracti64x4_epi64(bits, 0));
      const __m512 second_hi = widen(_mm512_extracti64x4_epi64(bits, 1));
      lo[d] = _mm512_cvtne2ps_pbh(_mm512_sub_ps(second, second_hi), _mm512_sub_ps(first, first_hi));
    }
  }
  // Lane sums of q . key (to be summed across lanes).
  __m512 dot(const at::BFloat16* key) const {
    __m512 sum = _mm512_setzero_ps();
    for (int d = 0; d < V / 2; ++d) {
      const __m512bh k = (__m512bh)_mm512_loadu_si512(key + d * 32);
      sum = _mm512_dpbf16_ps(_mm512_dpbf16_ps(sum, hi[d], k), lo[d], k);
    }
    return sum;
  }
};
#endif

// Where key i of one (row, kv head) lives: rows of a contiguous cache, or slots of a paged pool
// reached through the row's block table. Values sit at the same offsets in their own tensor.
struct ContiguousKeys {
  int64_t offset, stride;
  int64_t at(int64_t i) const { return offset + i * stride; }
};

struct PagedKeys {
  const int64_t* blocks;  // the row's block table
  int64_t block_size, slot_stride, head_offset;
  int64_t at(int64_t i) const {
    return (blocks[i / block_size] * block_size + i % block_size) * slot_stride + head_offset;
  }
};

// Sixteen vectors of partial dot products -> one vector whose lane j is the total of dots[j] (a
// transpose-add: about 3 instructions per key instead of a full horizontal sum each).
inline __m512 sum_sixteen(const __m512* dots) {
  __m512 pairs[8], quads[4], halves[2];
  for (int m = 0; m < 8; ++m)
    pairs[m] = _mm512_add_ps(_mm512_unpacklo_ps(dots[2 * m], dots[2 * m + 1]),
                             _mm512_unpackhi_ps(dots[2 * m], dots[2 * m + 1]));
  for (int m = 0; m < 4; ++m) {
    const __m512d a = _mm512_castps_pd(pairs[2 * m]), b = _mm512_castps_pd(pairs[2 * m + 1]);
    quads[m] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  for (int m = 0; m < 2; ++m)
    halves[m] = _mm512_add_ps(_mm512_shuffle_f32x4(quads[2 * m], quads[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(quads[2 * m], quads[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Softmax-weighted values of keys [first, last) for the `group` query heads in q. The group (G) and
// the head size in vectors of 16 (V) are template arguments for the common shapes (0: any), so
// queries, dot products and value accumulators stay in registers and the loops unroll.
template <int G, int V, class T, class Keys>
void chunk(const float* q, const T* k, const T* v, const Keys& keys, int64_t first, int64_t last,
           int64_t group, int64_t dim, float scale, const Partial& out) {
  if constexpr (G > 0) group = G;
  if constexpr (V > 0) dim = V * 16;
  const int64_t count = last - first;
  const int64_t vectors = dim / 16;
  if (count <= 0) {  // a row shorter than the longest: this chunk holds none of its keys
    std::fill(out.max, out.max + group, -std::numeric_limits<float>::infinity());
    std::fill(out.sum, out.sum + group, 0.f);
    std::fill(out.acc, out.acc + group * dim, 0.f);
    return;
  }
  alignas(64) float scores[kMaxGroup][kChunk];
  const T* rows[kChunk];
  // Keys past `count` up to the next 16 repeat the last one: their scores are computed and never read.
  const int64_t padded = (count + 15) / 16 * 16;
  for (int64_t i = 0; i < count; ++i) rows[i] = k + keys.at(first + i);
  for (int64_t i = count; i < padded; ++i) rows[i] = rows[count - 1];
  for (int64_t i0 = 0; i0 < padded; i0 += 16) {
    for (int64_t g = 0; g < group; ++g) {
      __m512 dots[16];
#ifdef __AVX512BF16__
      if constexpr (V > 0 && V % 2 == 0 && std::is_same_v<T, at::BFloat16>) {
        const SplitQuery<V> query(q + g * dim);
        for (int j = 0; j < 16; ++j) dots[j] = query.dot(rows[i0 + j]);
      } else
#endif
      if constexpr (V > 0) {
        __m512 query[V];
        for (int d = 0; d < V; ++d) query[d] = _mm512_loadu_ps(q + g * dim + d * 16);
        for (int j = 0; j < 16; ++j) {
          __m512 dot = _mm512_mul_ps(query[0], load16(rows[i0 + j]));
          for (int d = 1; d < V; ++d) dot = _mm512_fmadd_ps(query[d], load16(rows[i0 + j] + d * 16), dot);
          dots[j] = dot;
        }
      } else {
        for (int j = 0; j < 16; ++j) {
          __m512 dot = _mm512_setzero_ps();
          for (int64_t d = 0; d < vectors; ++d)
            dot = _mm512_fmadd_ps(_mm512_loadu_ps(q + g * dim + d * 16), load16(rows[i0 + j] + d * 16), dot);
          dots[j] = dot;
        }
      }
      _mm512_store_ps(&scores[g][i0], _mm512_mul_ps(sum_sixteen(dots), _mm512_set1_ps(scale)));
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < count; ++i) top = std::max(top, scores[g][i]);
    __m512 total = _mm512_setzero_ps();
    for (int64_t i = 0; i < count; i += 16) {
      const __mmask16 live = count - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (count - i)) - 1);
      const __m512 s = _mm512_maskz_loadu_ps(live, &scores[g][i]);
      const __m512 p = _mm512_maskz_mov_ps(live, ember::exp_nonpositive(_mm512_sub_ps(s, _mm512_set1_ps(top))));
      _mm512_mask_storeu_ps(&scores[g][i], live, p);
      total = _mm512_add_ps(total, p);
    }
    out.max[g] = top;
    out.sum[g] = _mm512_reduce_add_ps(total);
  }
  for (int64_t i = 0; i < count; ++i) rows[i] = v + keys.at(first + i);
  if constexpr (G > 0 && V > 0 && G * V <= 24) {  // every accumulator in a register: one pass over the values
    // A bfloat16 row is widened 32 values at a time, even and odd dimensions apart (a shift and a
    // mask), and the accumulators are interleaved back once at the end.
    constexpr bool split = std::is_same_v<T, at::BFloat16> && V % 2 == 0;
    __m512 acc[G][V];
    for (int g = 0; g < G; ++g)
      for (int d = 0; d < V; ++d) acc[g][d] = _mm512_setzero_ps();
    for (int64_t i = 0; i < count; ++i) {
      __m512 value[V];
      if constexpr (split) {
        for (int d = 0; d < V / 2; ++d) {
          const __m512i bits = _mm512_loadu_si512(rows[i] + d * 32);
          value[2 * d] = _mm512_castsi512_ps(_mm512_slli_epi32(bits, 16));
          value[2 * d + 1] = _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(0xFFFF0000)));
        }
      } else {
        for (int d = 0; d < V; ++d) value[d] = load16(rows[i] + d * 16);
      }
      for (int g = 0; g < G; ++g) {
        const __m512 weight = _mm512_set1_ps(scores[g][i]);
        for (int d = 0; d < V; ++d) acc[g][d] = _mm512_fmadd_ps(weight, value[d], acc[g][d]);
      }
    }
    for (int g = 0; g < G; ++g) {
      if constexpr (split) {
        const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for (int d = 0; d < V / 2; ++d) {
          const __m512 even = acc[g][2 * d], odd = acc[g][2 * d + 1];
          _mm512_storeu_ps(out.acc + g * dim + d * 32, _mm512_permutex2var_ps(even, low, odd));
          _mm512_storeu_ps(out.acc + g * dim + d * 32 + 16, _mm512_permutex2var_ps(even, high, odd));
        }
      } else {
        for (int d = 0; d < V; ++d) _mm512_storeu_ps(out.acc + g * dim + d * 16, acc[g][d]);
      }
    }
  } else {
    for (int64_t d = 0; d < vectors; ++d) {
      __m512 acc[G > 0 ? G : kMaxGroup];
      for (int64_t g = 0; g < group; ++g) acc[g] = _mm512_setzero_ps();
      for (int64_t i = 0; i < count; ++i) {
        const __m512 value = load16(rows[i] + d * 16);
        for (int64_t g = 0; g < group; ++g) acc[g] = _mm512_fmadd_ps(_mm512_set1_ps(scores[g][i]), value, acc[g]);
      }
      for (int64_t g = 0; g < group; ++g) _mm512_storeu_ps(out.acc + g * dim + d * 16, acc[g]);
    }
  }
}

template <int V, class T, class Keys>
void chunk_for_group(const float* q, const T* k, const T* v, const Keys& keys, int64_t first, int64_t last,
                     int64_t group, int64_t dim, float scale, const Partial& out) {
  switch (group) {
    case 1: return chunk<1, V>(q, k, v, keys, first, last, group, dim, scale, out);
    case 2: return chunk<2, V>(q, k, v, keys, first, last, group, dim, scale, out);
    case 3: return chunk<3, V>(q, k, v, keys, first, last, group, dim, scale, out);
    case 4: return chunk<4, V>(q, k, v, keys, first, last, group, dim, scale, out);
    case 8: return chunk<8, V>(q, k, v, keys, first, last, group, dim, scale, out);
    default: return chunk<0, V>(q, k, v, keys, first, last, group, dim, scale, out);
  }
}

template <class T, class Keys>
void any_chunk(const float* q, const T* k, const T* v, const Keys& keys, int64_t first, int64_t last,
               int64_t group, int64_t dim, float scale, const Partial& out) {
  switch (dim) {
    case 64: return chunk_for_group<4>(q, k, v, keys, first, last, group, dim, scale, out);
    case 128: return chunk_for_group<8>(q, k, v, keys, first, last, group, dim, scale, out);
    default: return chunk_for_group<0>(q, k, v, keys, first, last, group, dim, scale, out);
  }
}

void check_query(const at::Tensor& q, int64_t kv_heads) {
  TORCH_CHECK(q.dim() == 3 && q.scalar_type() == at::kFloat, "q must be float32 (B, Hq, D)");
  const int64_t heads = q.size(1), dim = q.size(2);
  TORCH_CHECK(heads % kv_heads == 0, "query heads ", heads, " are not a multiple of kv heads ", kv_heads);
  TORCH_CHECK(dim % 16 == 0 && dim <= kMaxDim && heads / kv_heads <= kMaxGroup,
              "decode attention needs D a multiple of 16 up to 256 and at most 16 query heads per kv head");
}

// Each (row, kv head, chunk of keys) is one task; `keys_of(b, h)` addresses the keys of row b, head h.
template <class T, class KeysOf>
at::Tensor attend(const at::Tensor& q, const T* k_data, const T* v_data, int64_t kv_heads,
                  const std::vector<int64_t>& lengths, double scale, const KeysOf& keys_of) {
  const at::Tensor query = q.contiguous();
  const int64_t batch = q.size(0), heads = q.size(1), dim = q.size(2), group = heads / kv_heads;
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  const int64_t chunks = (longest + kChunk - 1) / kChunk;
  const int64_t tasks = batch * kv_heads * chunks;
  std::vector<float> maxes(tasks * group), sums(tasks * group), accs(tasks * group * dim);
  auto partial = [&](int64_t task) {
    return Partial{&maxes[task * group], &sums[task * group], &accs[task * group * dim]};
  };
  const float* q_data = query.data_ptr<float>();
  const float softmax_scale = static_cast<float>(scale);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t c = task % chunks, h = (task / chunks) % kv_heads, b = task / (chunks * kv_heads);
      any_chunk(q_data + (b * heads + h * group) * dim, k_data, v_data, keys_of(b, h), c * kChunk,
            std::min(lengths[b], (c + 1) * kChunk), group, dim, softmax_scale, partial(task));
    }
  });
  at::Tensor out = at::empty({batch, heads, dim}, q.options());
  float* o = out.data_ptr<float>();
  for (int64_t bh = 0; bh < batch * kv_heads; ++bh) {
    for (int64_t g = 0; g < group; ++g) {
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < chunks; ++c) top = std::max(top, partial(bh * chunks + c).max[g]);
      float total = 0.f;
      float* row = o + (bh * group + g) * dim;
      std::fill(row, row + dim, 0.f);
      for (int64_t c = 0; c < chunks; ++c) {
        const Partial part = partial(bh * chunks + c);
        const float weight = std::exp(part.max[g] - top);
        total += weight * part.sum[g];
        for (int64_t d = 0; d < dim; ++d) row[d] += weight * part.acc[g * dim + d];
      }
      for (int64_t d = 0; d < dim; ++d) row[d] /= total;
    }
  }
  return out;
}

bool is_cache_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16;
}

// Calls attend with the cache's element type: float32 or bfloat16.
template <class KeysOf>
at::Tensor attend_cache(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t kv_heads,
                        const std::vector<int64_t>& lengths, double scale, const KeysOf& keys_of) {
  if (k.scalar_type() == at::kBFloat16)
    return attend(q, k.data_ptr<at::BFloat16>(), v.data_ptr<at::BFloat16>(), kv_heads, lengths, scale, keys_of);
  return attend(q, k.data_ptr<float>(), v.data_ptr<float>(), kv_heads, lengths, scale, keys_of);
}

}  // namespace

namespace ember {

// q (B, Hq, D); k, v (B, Hkv, L, D) with contiguous rows of D. Returns (B, Hq, D).
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  TORCH_CHECK(k.dim() == 4 && v.dim() == 4, "k and v must be (B, Hkv, L, D)");
  TORCH_CHECK(is_cache_dtype(k) && k.scalar_type() == v.scalar_type(),
              "decode_attention takes a float32 or bfloat16 cache, one dtype for k and v");
  TORCH_CHECK(k.sizes() == v.sizes() && k.strides() == v.strides(), "k and v must have one shape and layout");
  check_query(q, k.size(1));
  TORCH_CHECK(k.size(0) == q.size(0) && k.size(3) == q.size(2) && k.size(2) > 0, "q, k and v shapes disagree");
  TORCH_CHECK(k.stride(3) == 1, "k and v rows must be contiguous");
  const std::vector<int64_t> lengths(q.size(0), k.size(2));
  return attend_cache(q, k, v, k.size(1), lengths, scale,
                [&](int64_t b, int64_t h) { return ContiguousKeys{b * k.stride(0) + h * k.stride(1), k.stride(2)}; });
}

// q (R, Hq, D): one new token per row; k_pool, v_pool (blocks, block_size, Hkv, D); blocks (R, W)
// each row's block table; lengths (R,) how many keys each row sees. Keys are read in place.
at::Tensor paged_decode_attention(const at::Tensor& q, const at::Tensor& k_pool, const at::Tensor& v_pool,
                                  const at::Tensor& blocks, const at::Tensor& lengths, double scale) {
  TORCH_CHECK(k_pool.dim() == 4 && k_pool.sizes() == v_pool.sizes() && is_cache_dtype(k_pool) &&
                  v_pool.scalar_type() == k_pool.scalar_type() && k_pool.is_contiguous() && v_pool.is_contiguous(),
              "k_pool and v_pool must be contiguous float32 or bfloat16 (blocks, block_size, Hkv, D)");
  check_query(q, k_pool.size(2));
  const int64_t rows = q.size(0), block_size = k_pool.size(1);
  TORCH_CHECK(k_pool.size(3) == q.size(2), "q and the pools disagree on the head size");
  TORCH_CHECK(blocks.dim() == 2 && blocks.size(0) == rows && blocks.scalar_type() == at::kLong,
              "blocks must be int64 (rows, max blocks)");
  TORCH_CHECK(lengths.numel() == rows && lengths.scalar_type() == at::kLong, "lengths must be int64 (rows,)");
  const at::Tensor table = blocks.contiguous();
  const int64_t* table_data = table.data_ptr<int64_t>();
  const at::Tensor key_counts = lengths.contiguous();
  const int64_t* length_data = key_counts.data_ptr<int64_t>();
  std::vector<int64_t> counts(length_data, length_data + rows);
  for (int64_t r = 0; r < rows; ++r) {
    TORCH_CHECK(counts[r] > 0 && counts[r] <= table.size(1) * block_size, "row ", r, " sees ", counts[r],
                " keys, outside its block table of ", table.size(1), " blocks");
    for (int64_t i = 0; i < (counts[r] + block_size - 1) / block_size; ++i) {
      const int64_t block = table_data[r * table.size(1) + i];
      TORCH_CHECK(block >= 0 && block < k_pool.size(0), "row ", r, " lists block ", block, ", outside the pool");
    }
  }
  const int64_t slot_stride = k_pool.stride(1), head_stride = k_pool.stride(2);
  return attend_cache(q, k_pool, v_pool, k_pool.size(2), counts, scale,
                [&](int64_t b, int64_t h) {
                  return PagedKeys{table_data + b * table.size(1), block_size, slot_stride, h * head_stride};
                });
}

}  // namespace ember

namespace {

at::Tensor paged_decode_attention_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&, double) {
  return at::empty_like(q);
}

at::Tensor decode_attention_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor&, double) {
  return at::empty_like(q);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ember_kernels, m) {
  m.def("decode_attention(Tensor q, Tensor k, Tensor v, float scale) -> Tensor");
  m.def("paged_decode_attention(Tensor q, Tensor k_pool, Tensor v_pool, Tensor blocks, Tensor lengths, float scale) -> Tensor");
}
TORCH_LIBRARY_IMPL(ember_kernels, CPU, m) {
  m.impl("decode_attention", ember::decode_attention);
  m.impl("paged_decode_attention", ember::paged_decode_attention);
}
TORCH_LIBRARY_IMPL(ember_kernels, Meta, m) {
  m.impl("decode_attention", decode_attention_meta);
  m.impl("paged_decode_attention", paged_decode_attention_meta);
}
