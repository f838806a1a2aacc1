/* Private to the kernel library: GGML block layouts, half-precision
 * conversion, and the table of kernels that dispatch.c swaps per ISA.
 *
 * Every ISA fills slots of one struct ot_kernels. The generic C code fills
 * all of them; an ISA's ot_register_<isa> overrides the ones it accelerates,
 * applied in order on top of the ISAs below it (generic < avx2 < avx512 <
 * avx512vnni), so a slot left alone keeps the best lower implementation.
 */
#ifndef OT_INTERNAL_H
#define OT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "ot_kernels.h"

/* --- block layouts (GGML's, byte for byte) --------------------------------- */

#define QK 32   /* elements per Q4_0 / Q4_1 / Q8_0 / Q8_1 block */
#define QK_K 256 /* elements per K-quant super-block */

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;             /* (q - 8) * d */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;          /* q * d + m */
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;                  /* q * d */
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1;               /* s = d * sum(q) */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

/* Not GGML's: activations rounded to 16 bits per 32-element block, for Q8_0
 * prompts (ot_matmul_a16). */
typedef struct { float d; int16_t qs[QK]; } block_q16;

_Static_assert(sizeof(block_q16) == 68, "Q16 block");
_Static_assert(sizeof(block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(block_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(block_q8_1) == 36, "Q8_1 block");
_Static_assert(sizeof(block_q4_K) == 144, "Q4_K block");
_Static_assert(sizeof(block_q6_K) == 210, "Q6_K block");
_Static_assert(sizeof(block_q8_K) == 292, "Q8_K block");

/* Scale and min j (0..7) of a Q4_K super-block: six bits each, the low four
 * pairs in the low bits of bytes 0..7, the high four split over bytes 8..11
 * and the top bits of bytes 0..7. */
static inline void ot_q4k_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* --- half precision -------------------------------------------------------- */

static inline uint32_t ot_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float ot_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float ot_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        const float v = (float)mant * 5.9604644775390625e-8f;
        return ot_bits_f32(ot_f32_bits(v) | sign);
    }
    if (exp == 31)
        return ot_bits_f32(sign | 0x7F800000u | (mant << 13));
    return ot_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* Round to nearest even, as numpy's float16 cast and GGML's FP32_TO_FP16. */
static inline uint16_t ot_fp32_to_fp16(float f) {
    uint32_t x = ot_f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7FFFFFFFu;
    if (x >= 0x7F800000u) /* inf or nan */
        return sign | (x > 0x7F800000u ? 0x7E00 : 0x7C00);
    if (x >= 0x477FF000u) /* rounds past 65504 */
        return sign | 0x7C00;
    if (x < 0x38800000u) { /* below 2^-14: adding 0.5 aligns the ulp to 2^-24 */
        const float v = ot_bits_f32(x) + 0.5f;
        return sign | (uint16_t)(ot_f32_bits(v) - 0x3F000000u);
    }
    x += 0xFFF + ((x >> 13) & 1);
    return sign | (uint16_t)((x - 0x38000000u) >> 13);
}

static inline float ot_bf16_to_fp32(uint16_t h) { return ot_bits_f32((uint32_t)h << 16); }

/* a[0] after adding the upper half of a onto the lower until one lane is
 * left (ggml's hsum_float_8, _mm512_reduce_add_ps); n a power of two. */
static inline float ot_pairwise_total(float *a, int n) {
    for (int h = n / 2; h >= 1; h /= 2)
        for (int i = 0; i < h; i++)
            a[i] += a[i + h];
    return a[0];
}

/* Round to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 leaves
 * the integer in the low mantissa bits (GGML's nearest_int). */
static inline int ot_nearest_int(float f) {
    return (int)(ot_f32_bits(f + 12582912.0f) & 0x007FFFFF) - 0x00400000;
}

/* --- the kernel table ------------------------------------------------------ */

/* y[c * ldy + r] = w row r . x row c for r < nw <= OT_TILE_ROWS, c < nx <=
 * OT_TILE_COLS, rows of k elements: weight rows wstride bytes apart, activation
 * rows (quantized, or float32 for float weights) xstride bytes apart. */
typedef void (*ot_tile_fn)(int64_t k, const uint8_t *w, size_t wstride, int nw, const uint8_t *x, size_t xstride,
                           int nx, float *y, int64_t ldy);
typedef void (*ot_row_fn)(const void *src, float *dst, int64_t n);
typedef void (*ot_quant_fn)(const float *src, void *dst, int64_t n);
/* Causal attention of g query heads (g * head_dim floats, side by side)
 * sharing one KV head, over nkeys keys of k, v ([nkeys][head_dim], float32
 * or float16 by the slot: attention_f32 or attention_f16). */
typedef void (*ot_attn_fn)(const float *q, const void *k, const void *v, int64_t nkeys, int64_t head_dim,
                           int64_t g, float scale, float *out);

/* One block of a quantized activation row as GEMM kernels that broadcast
 * activations want it: its scale d and sum term s as floats, and seed, the
 * block's integer offset correction for the weight format (see x86). */
struct ot_xblock {
    float d, s;
    int32_t seed;
};
/* y[c * ldy + r] = w row r . x row c for r < nw <= OT_TILE_ROWS and every
 * c < m: a tile over all activation rows of a call, each with its row of
 * k / block ot_xblock (xb, filled by the type's xblock slot where it has one).
 * Types without the slot run the tile over OT_TILE_COLS rows at a time. */
typedef void (*ot_gemm_q_fn)(int64_t k, const uint8_t *w, size_t wstride, int nw, const uint8_t *x,
                             size_t xstride, const struct ot_xblock *xb, int64_t m, float *y, int64_t ldy);
typedef void (*ot_xblock_fn)(const uint8_t *x, struct ot_xblock *xb, int64_t k);

#define OT_TILE 4
#define OT_TILE_ROWS (8 * OT_TILE) /* weight rows per tile call: one unit of parallel work */
#define OT_TILE_COLS 8 /* activation rows per tile call: x86 VNNI tiles take eight at once */
#define OT_NTYPES 31
/* Weight rows per unit of parallel work in a product: a unit's rows stay in
 * cache while every activation row passes by. */
#define OT_UNIT_ROWS OT_TILE_ROWS

struct ot_kernels {
    ot_tile_fn tile[OT_NTYPES];
    ot_gemm_q_fn gemm_q[OT_NTYPES];
    ot_gemm_q_fn gemm_q8_0_a16;  /* Q8_0 weights against block_q16 rows (xb unused) */
    ot_quant_fn quantize_q16;    /* float32 -> block_q16 */
    ot_xblock_fn xblock[OT_NTYPES]; /* by weight type: the seed depends on it */
    ot_row_fn dequantize[OT_NTYPES];
    ot_quant_fn quantize[OT_NTYPES];
    ot_attn_fn attention_f32, attention_f16;
    /* llama.cpp's product (llamacpp_arith.c) of Q4_1 or Q8_0 weight rows
     * [r0, r1) with m rows of its Q8_1 / Q8_0 activation blocks, whose d and s
     * xds holds as floats ([m][k / 32][2]): y[t * ldy + r]. */
    void (*llamacpp_rows)(int type, const uint8_t *w, size_t wrow, int64_t r0, int64_t r1, const uint8_t *x,
                          size_t xrow, const float *xds, int64_t m, int64_t k, float *y, int64_t ldy);
    /* Its float16 products: out[r] = sum_i a[i] * f32(b[r * n + i]) for r <
     * rows, element i in register (i / 16) % regs, lane i % 16, by fused
     * multiply-add; registers, then lanes, added pairwise; elements past the
     * last whole 16 * regs added in double. And acc[i] += f32(v[i]) * p for
     * i < n (one key's value row into the lanes of its position). */
    void (*llamacpp_dot_f16)(const float *a, const uint16_t *b, int64_t rows, int64_t n, int regs, float *out);
    void (*llamacpp_axpy_f16)(float *acc, const uint16_t *v, float p, int64_t n);
    void (*rmsnorm)(const float *x, const float *w, int64_t n, float eps, float *out);
    void (*softmax)(float *x, int64_t n);
    void (*silu_mul)(const float *gate, const float *up, int64_t n, float *out);
    void (*add)(const float *a, const float *b, int64_t n, float *out);
    int (*gemm_f32)(const float *packed, const float *bias, int64_t n, int64_t k, const float *x, int64_t m,
                    float *y, int act, int accumulate);
    void (*bias_act)(const float *x, const float *bias, int64_t m, int64_t n, int act, int accumulate, float *y);
    void (*layernorm)(const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps, float *out);
    int (*attention_full)(const float *qkv, int64_t batch, int64_t ntok, int64_t n_head, int64_t head_dim,
                          float scale, float *out, float *probs);
    /* Monte Carlo over paths [path0, path0 + npaths), on the calling thread
     * (ot_montecarlo_impl.h; filled by ot_register_montecarlo_<isa>). */
    void (*mc_philox)(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, uint32_t *out);
    void (*mc_normals)(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, float *out);
    void (*mc_gbm)(const struct ot_gbm_params *p, uint64_t seed, int64_t path0, int64_t npaths, int64_t steps,
                   float *out);
    void (*mc_heston)(const struct ot_heston_params *p, uint64_t seed, int64_t path0, int64_t npaths,
                      int64_t steps, float *out);
};

/* The active table and thread count (dispatch.c). */
const struct ot_kernels *ot_active(void);
int ot_nthreads(void);

/* Elements of work below which an op stays on the calling thread: handing
 * ranges to the pool costs about a microsecond. */
#define OT_PARALLEL_MIN 32768

/* fn(ctx, begin, end) over [0, n) in contiguous ranges taken by the threads as they come, or
 * all on the calling thread when work < OT_PARALLEL_MIN. */
typedef void (*ot_range_fn)(void *ctx, int64_t begin, int64_t end);
void ot_parallel_for(int64_t n, int64_t work, ot_range_fn fn, void *ctx);
#define OT_RANGES_PER_THREAD 8 /* ot_parallel_for's: short enough to even out a thread that loses its core */
/* The same in per_thread ranges per thread (ot_parallel_for: OT_RANGES_PER_THREAD), for call
 * sites that know their ranges are short: each claim moves the shared ticket
 * between cores, which a range of a few microseconds does not repay. */
void ot_parallel_ranges(int64_t n, int64_t work, int per_thread, ot_range_fn fn, void *ctx);
/* fn over [0, n) in `ranges` ranges on nth threads (thread_pool.c), and the
 * index (0 .. nth - 1) of the thread running a range. */
void ot_pool_run(int64_t n, int64_t ranges, int nth, ot_range_fn fn, void *ctx);
int ot_thread_index(void);

/* y_i[m][n_i] = x[m][k] . W_i^T for count <= OT_PROJECT_MAX projections of
 * one input and one weight type (biases are the caller's): x is quantized
 * once into scratch (ot_matmul_scratch_bytes for the type, m and k), then one
 * parallel sweep covers all their rows. */
/* Where ot_matmul's scratch for an m x k product of this weight type keeps
 * a struct ot_xblock per activation block, after the quantized rows. */
size_t ot_matmul_xblocks_at(int type, int64_t m, int64_t k);

#define OT_PROJECT_MAX 4
/* act16 rounds x to 16 bits per block instead (Q8_0 weights, where the ISA
 * has gemm_q8_0_a16). */
void ot_project(const struct ot_linear *const *lins, float *const *ys, int count, const float *x, int64_t m,
                void *scratch, int act16);

void ot_register_generic(struct ot_kernels *t);

/* The ops of one decoder layer (llama_layer.c), in one arithmetic or the other. */
struct ot_layer_ops {
    void (*rmsnorm)(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *out);
    void (*project)(const struct ot_linear *const *lins, float *const *ys, int count, const float *x, int64_t m,
                    const struct ot_llama_buffers *b);
    void (*rope)(float *x, const int32_t *pos, int64_t ntok, int64_t nhead, const struct ot_llama_dims *d);
    void (*attend)(const struct ot_llama_dims *d, int64_t layer, const struct ot_kv_slot *slots, int64_t ntok,
                   const float *q, float *out);
    void (*silu_mul)(const float *gate, const float *up, int64_t n, float *out);
};
extern const struct ot_layer_ops ot_llamacpp_layer_ops;

#define OT_PASTE_(a, b) a##_##b
#define OT_PASTE(a, b) OT_PASTE_(a, b)

/* The vision kernels of one ISA (ot_vision_impl.h), named by suffix. */
#define OT_DECLARE_VISION(isa)                                                                                  \
    int ot_vision_gemm_f32_##isa(const float *, const float *, int64_t, int64_t, const float *, int64_t,      \
                                 float *, int, int);                                                          \
    void ot_vision_bias_act_##isa(const float *, const float *, int64_t, int64_t, int, int, float *);         \
    void ot_vision_layernorm_##isa(const float *, const float *, const float *, int64_t, int64_t, float,      \
                                   float *);                                                                  \
    int ot_vision_attention_full_##isa(const float *, int64_t, int64_t, int64_t, int64_t, float, float *,   \
                                       float *);
#define OT_SET_VISION(t, isa)                              \
    do {                                                   \
        (t)->gemm_f32 = ot_vision_gemm_f32_##isa;           \
        (t)->bias_act = ot_vision_bias_act_##isa;           \
        (t)->layernorm = ot_vision_layernorm_##isa;         \
        (t)->attention_full = ot_vision_attention_full_##isa; \
    } while (0)

#endif
