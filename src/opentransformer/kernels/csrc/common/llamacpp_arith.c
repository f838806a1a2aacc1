/* The decoder's ops with llama.cpp's arithmetic: the float operations of
 * its x86 CPU backend built for AVX-512 (llama-cpp-python 0.3.36, ggml's
 * AVX2 dot products, tinyBLAS, its AVX-512 exp), in the same order, so a
 * model evaluated here gives llama.cpp's logits bit for bit.
 *
 * Why it exists: both engines round every activation to 8 bits before a
 * product, so two correct evaluations that differ in one float addition
 * drift apart by whole quantization steps within a few layers (the parity
 * report measures it). Reproducing the reference's order is the only way to
 * compare against it position by position, and what a user migrating from
 * llama.cpp who needs its exact outputs asks for.
 *
 * How ggml computes, as reproduced here:
 *   - activations: per 32-block, d = max|x| / 127 stored as float16,
 *     q = x * (127 / max|x|) rounded half to even; Q8_1's s = d * sum(q).
 *   - Q4_1 / Q8_0 products: per block, the 32 integer products summed in
 *     8 lanes of 4 consecutive elements; lane l += (d_w * d_x) * isum_l by
 *     fused multiply-add; lanes added pairwise at the end (hsum_float_8);
 *     Q4_1 adds sum(m_w * s_x), accumulated in float.
 *   - float16 products (attention over the float16 cache, F16 weights): the
 *     float32 side (q, the softmax weights, x) rounded to float16; from two
 *     tokens on through tinyBLAS (16 lanes, element i in lane i % 16), a
 *     single token through ggml_vec_dot_f16 (4 x 16 lanes, element i in
 *     register (i / 16) % 4), registers and lanes added pairwise.
 *   - softmax: exp by ggml's AVX-512 polynomial, 16 at a time, each 16
 *     summed pairwise and added in double; weights = exp * (float)(1 / sum).
 *   - RMSNorm: sum of squares in double; RoPE: angles from a running
 *     product theta *= base^(-2/d), rotations with one fused multiply-add.
 *
 * The products run per ISA from the kernel table (llamacpp_rows,
 * llamacpp_dot_f16, llamacpp_axpy_f16: AVX2 lanes in x86/x86_kernels.h, a
 * portable twin in generic/llamacpp.c). This file is compiled without
 * contraction (CMakeLists.txt): every fused multiply-add is an explicit fmaf,
 * every other product rounds on its own. On x86 its loops are also compiled
 * for x86-64-v3, where fmaf is one instruction; elsewhere it is the C
 * library's, exact either way. */
#include <math.h>

#include "ot_internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LC_CLONES
#endif

#define LC_F16_LANES 16 /* lanes of its 512-bit float16 dot products */
#define LC_F16_DOT_REGS 4 /* registers ggml_vec_dot_f16 accumulates in (GGML_F16_ARR) */

/* --- activations and block products ---------------------------------------- */

static void quantize_block(const float *x, int8_t *qs, uint16_t *d16, uint16_t *s16) {
    float amax = 0.0f;
    for (int i = 0; i < QK; i++) {
        const float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int i = 0; i < QK; i++) {
        qs[i] = (int8_t)nearbyintf(x[i] * id); /* the default rounding: half to even */
        sum += qs[i];
    }
    *d16 = ot_fp32_to_fp16(d);
    if (s16)
        *s16 = ot_fp32_to_fp16(d * (float)sum);
}

/* Blocks [b0, b1) of x [m][k] -> the weight type's activation blocks (Q8_1
 * for Q4_1, Q8_0 for Q8_0), with each block's d and s as floats in ds. */
struct quantize_ctx {
    int type;
    const float *x;
    void *dst;
    float *ds;
};

static void quantize_range(void *p, int64_t b0, int64_t b1) {
    const struct quantize_ctx *c = p;
    for (int64_t b = b0; b < b1; b++) {
        uint16_t d, s = 0;
        if (c->type == OT_Q4_1) {
            block_q8_1 *y = (block_q8_1 *)c->dst + b;
            quantize_block(c->x + b * QK, y->qs, &y->d, &y->s);
            d = y->d, s = y->s;
        } else {
            block_q8_0 *y = (block_q8_0 *)c->dst + b;
            quantize_block(c->x + b * QK, y->qs, &y->d, NULL);
            d = y->d;
        }
        c->ds[2 * b] = ot_fp16_to_fp32(d);
        c->ds[2 * b + 1] = ot_fp16_to_fp32(s);
    }
}

struct matmul_ctx {
    int type;
    const uint8_t *w, *x;
    size_t wrow, xrow;
    const float *xds;
    int64_t n, k, m;
    float *y;
};

static void matmul_range(void *p, int64_t r0, int64_t r1) {
    const struct matmul_ctx *c = p;
    ot_active()->llamacpp_rows(c->type, c->w, c->wrow, r0, r1, c->x, c->xrow, c->xds, c->m, c->k, c->y, c->n);
}

/* float16 weights: ggml rounds x to float16 and hands the product to
 * tinyBLAS from two tokens on (k a multiple of 16, n of 4), else to
 * ggml_vec_dot_f16. Rows go in blocks that stay in cache across tokens. */
#define LC_F16_ROW_BLOCK 64

struct matmul_f16_ctx {
    const uint16_t *w;
    const float *x16;
    int64_t n, k, m;
    int regs;
    float *y;
};

static void matmul_f16_range(void *p, int64_t b0, int64_t b1) {
    const struct matmul_f16_ctx *c = p;
    for (int64_t r0 = b0 * LC_F16_ROW_BLOCK; r0 < c->n && r0 < b1 * LC_F16_ROW_BLOCK; r0 += LC_F16_ROW_BLOCK) {
        const int64_t rows = c->n - r0 < LC_F16_ROW_BLOCK ? c->n - r0 : LC_F16_ROW_BLOCK;
        for (int64_t t = 0; t < c->m; t++)
            ot_active()->llamacpp_dot_f16(c->x16 + t * c->k, c->w + r0 * c->k, rows, c->k, c->regs,
                                          c->y + t * c->n + r0);
    }
}

static inline float f16_round(float x) { return ot_fp16_to_fp32(ot_fp32_to_fp16(x)); }

int ot_llamacpp_supports(int type) { return type == OT_Q4_1 || type == OT_Q8_0 || type == OT_F16; }

/* x as the weight type's products read it, into scratch: float16 values for
 * F16, else 8-bit blocks with their scales as floats (where ot_matmul's
 * scratch keeps a struct ot_xblock per block; 8 of its 12 bytes). */
static float *activation_scales(int type, int64_t m, int64_t k, void *scratch) {
    return (float *)((uint8_t *)scratch + ot_matmul_xblocks_at(type, m, k));
}

static void prepare(int type, const float *x, int64_t m, int64_t k, void *scratch) {
    if (type == OT_F16) {
        float *x16 = scratch;
        for (int64_t i = 0; i < m * k; i++)
            x16[i] = f16_round(x[i]);
        return;
    }
    struct quantize_ctx q = {type, x, scratch, activation_scales(type, m, k, scratch)};
    ot_parallel_for(m * (k / QK), m * k, quantize_range, &q);
}

/* y[m][n] from prepared activations. */
static void products(int type, const void *w, int64_t n, int64_t k, int64_t m, void *scratch, float *y) {
    if (type == OT_F16) {
        const int tiny = m >= 2 && k % LC_F16_LANES == 0 && n % 4 == 0;
        struct matmul_f16_ctx c = {w, scratch, n, k, m, tiny ? 1 : LC_F16_DOT_REGS, y};
        ot_parallel_for((n + LC_F16_ROW_BLOCK - 1) / LC_F16_ROW_BLOCK, n * k * m, matmul_f16_range, &c);
        return;
    }
    const size_t xblock = type == OT_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    struct matmul_ctx c = {type, w, scratch, ot_row_bytes(type, k), (size_t)(k / QK) * xblock,
                           activation_scales(type, m, k, scratch), n, k, m, y};
    ot_parallel_for(n, n * k * m, matmul_range, &c);
}

int ot_llamacpp_matmul(int type, const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                       void *scratch) {
    if (!ot_llamacpp_supports(type) || (type != OT_F16 && k % QK != 0))
        return -1;
    prepare(type, x, m, k, scratch);
    products(type, w, n, k, m, scratch, y);
    return 0;
}

/* --- row ops --------------------------------------------------------------------- */

void ot_llamacpp_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += (double)(xr[i] * xr[i]);
        const float mean = (float)(sum / (double)n);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < n; i++)
            out[r * n + i] = xr[i] * scale * w[i];
    }
}

/* ggml's AVX-512 exp: a degree-5 polynomial on the remainder of x / ln 2,
 * scaled by 2^n; |n| > 192 flushes to 0 or infinity. */
static inline float ggml_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    if (n > 127.0f) /* j > 0 */
        return INFINITY;
    if (n < -126.0f) /* 2^n is no normal float: one rounding, as scalef */
        return ldexpf(j, (int)n);
    return j * ot_bits_f32((uint32_t)((int)n + 127) << 23);
}

/* silu(gate) * up: 16 at a time through ggml_expf, the tail through expf. */
LC_CLONES static void silu_mul(const float *gate, const float *up, int64_t n, float *out) {
    const int64_t body = n - n % LC_F16_LANES;
    for (int64_t i = 0; i < n; i++) {
        const float x = gate[i], e = i < body ? ggml_expf(0.0f - x) : expf(-x);
        out[i] = x / (1.0f + e) * up[i];
    }
}

static void rope(float *x, const int32_t *pos, int64_t ntok, int64_t nhead, const struct ot_llama_dims *d) {
    const int64_t n_dims = d->rope_dim, hd = d->head_dim;
    const float theta_scale = powf(d->rope_base, -2.0f / (float)n_dims);
    for (int64_t t = 0; t < ntok; t++) {
        float theta = (float)pos[t];
        for (int64_t i0 = 0; i0 < n_dims; i0 += 2) {
            const float ff = d->rope_freq_factors ? d->rope_freq_factors[i0 / 2] : 1.0f;
            const float angle = d->rope_freq_scale * (theta / ff);
            const float cs = cosf(angle) * d->rope_mscale, sn = sinf(angle) * d->rope_mscale;
            theta *= theta_scale;
            /* normal mode pairs (i0, i0 + 1); NeoX (i0 / 2, i0 / 2 + n_dims / 2) */
            const int64_t a = d->neox ? i0 / 2 : i0, b = d->neox ? i0 / 2 + n_dims / 2 : i0 + 1;
            for (int64_t h = 0; h < nhead; h++) {
                float *xh = x + (t * nhead + h) * hd;
                const float x0 = xh[a], x1 = xh[b];
                xh[a] = fmaf(x0, cs, -(x1 * sn));
                xh[b] = fmaf(x0, sn, x1 * cs);
            }
        }
    }
}

/* --- attention over float16 caches ------------------------------------------------ */

struct attend_ctx {
    const struct ot_llama_dims *d;
    const struct ot_kv_slot *slots;
    int64_t layer;
    const float *q;
    float *out;
    int kq_regs, kqv_regs; /* 1: a prompt's tinyBLAS; LC_F16_DOT_REGS: a single token's vec_dot */
};

LC_CLONES static void attend_range(void *p, int64_t i0, int64_t i1) {
    const struct attend_ctx *c = p;
    const struct ot_kernels *kt = ot_active();
    const struct ot_llama_dims *d = c->d;
    const int64_t hd = d->head_dim, group = d->n_head / d->n_kv_head;
    const int64_t step = (int64_t)c->kqv_regs * LC_F16_LANES; /* key j goes to lane j % step */
    const float scale = 1.0f / sqrtf((float)hd);
    float q16[hd], acc[step][hd];
    for (int64_t it = i0; it < i1; it++) {
        const int64_t t = it / d->n_head, h = it % d->n_head;
        const struct ot_kv_slot *s = &c->slots[t];
        const size_t base = (size_t)((c->layer * d->n_kv_head + h / group) * s->capacity) * (size_t)hd;
        const uint16_t *K = (const uint16_t *)s->k + base, *V = (const uint16_t *)s->v + base;
        const int64_t nkeys = s->pos + 1;
        const float *q = c->q + (t * d->n_head + h) * hd;
        for (int64_t i = 0; i < hd; i++)
            q16[i] = f16_round(q[i]);

        float w[nkeys], mx = -INFINITY;
        kt->llamacpp_dot_f16(q16, K, nkeys, hd, c->kq_regs, w);
        for (int64_t j = 0; j < nkeys; j++) {
            w[j] *= scale;
            mx = w[j] > mx ? w[j] : mx;
        }
        double sum = 0.0;
        for (int64_t j0 = 0; j0 < nkeys; j0 += LC_F16_LANES) {
            float e[LC_F16_LANES] = {0};
            for (int64_t j = j0; j < nkeys && j < j0 + LC_F16_LANES; j++)
                e[j - j0] = w[j] = ggml_expf(w[j] - mx);
            sum += (double)ot_pairwise_total(e, LC_F16_LANES);
        }
        const float inv = (float)(1.0 / sum);

        memset(acc, 0, sizeof acc);
        for (int64_t j = 0; j < nkeys; j++)
            kt->llamacpp_axpy_f16(acc[j % step], V + j * hd, f16_round(w[j] * inv), hd);
        float *o = c->out + (t * d->n_head + h) * hd;
        for (int64_t i = 0; i < hd; i++) {
            float lanes[LC_F16_DOT_REGS * LC_F16_LANES];
            for (int64_t l = 0; l < step; l++)
                lanes[l] = acc[l][i];
            o[i] = ot_pairwise_total(lanes, (int)step);
        }
    }
}

/* ggml's mul_mat hands a product to tinyBLAS from two tokens on when the
 * shapes suit it (k a multiple of 16, m of 4), else to its vec_dot. The
 * cache's padded length is a multiple of 256, which suits it; keys past the
 * query's position weigh exactly zero and change no sum. */
static void attend(const struct ot_llama_dims *d, int64_t layer, const struct ot_kv_slot *slots, int64_t ntok,
                   const float *q, float *out) {
    const int prompt = ntok >= 2;
    struct attend_ctx c = {d, slots, layer, q, out,
                           prompt && d->head_dim % 16 == 0 ? 1 : LC_F16_DOT_REGS,
                           prompt && d->head_dim % 4 == 0 ? 1 : LC_F16_DOT_REGS};
    ot_parallel_for(ntok * d->n_head, ntok * d->n_head * d->head_dim * (slots[ntok - 1].pos + 1), attend_range, &c);
}

static void project(const struct ot_linear *const *lins, float *const *ys, int count, const float *x, int64_t m,
                    const struct ot_llama_buffers *b) {
    for (int i = 0; i < count; i++) {
        const struct ot_linear *lin = lins[i];
        /* projections of one input and weight type share its preparation */
        if (i == 0 || lin->type != lins[i - 1]->type || lin->k != lins[i - 1]->k)
            prepare(lin->type, x, m, lin->k, b->scratch);
        products(lin->type, lin->w, lin->n, lin->k, m, b->scratch, ys[i]);
        if (lin->bias)
            for (int64_t t = 0; t < m; t++)
                for (int64_t j = 0; j < lin->n; j++)
                    ys[i][t * lin->n + j] += lin->bias[j];
    }
}

const struct ot_layer_ops ot_llamacpp_layer_ops = {ot_llamacpp_rmsnorm, project, rope, attend, silu_mul};
