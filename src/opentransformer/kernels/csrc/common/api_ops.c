/* Entry points for the row ops, rope, attention and the vision ops: shape
 * handling and threading around the active ISA's row kernels. */
#include <math.h>

#include "ot_internal.h"

/* Row ops over a range of rows (or of chunks, for the elementwise ops). */
struct ops_ctx {
    const struct ot_kernels *kt;
    const float *a, *b;
    float *out;
    int64_t n;
    float eps;
};

static void rmsnorm_range(void *p, int64_t r0, int64_t r1) {
    const struct ops_ctx *c = p;
    for (int64_t r = r0; r < r1; r++)
        c->kt->rmsnorm(c->a + r * c->n, c->b, c->n, c->eps, c->out + r * c->n);
}

void ot_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *out) {
    struct ops_ctx c = {ot_active(), x, w, out, n, eps};
    ot_parallel_for(rows, rows * n, rmsnorm_range, &c);
}

static void softmax_range(void *p, int64_t r0, int64_t r1) {
    const struct ops_ctx *c = p;
    for (int64_t r = r0; r < r1; r++)
        c->kt->softmax(c->out + r * c->n, c->n);
}

void ot_softmax(float *x, int64_t rows, int64_t n) {
    struct ops_ctx c = {ot_active(), NULL, NULL, x, n, 0.0f};
    ot_parallel_for(rows, rows * n, softmax_range, &c);
}

/* Elementwise ops split into chunks of OT_CHUNK elements; they are cheap per
 * element, so they go parallel only at four times the usual work. */
#define OT_CHUNK 4096

static int64_t chunk_len(const struct ops_ctx *c, int64_t i) { return c->n - i < OT_CHUNK ? c->n - i : OT_CHUNK; }

static void silu_mul_range(void *p, int64_t c0, int64_t c1) {
    const struct ops_ctx *c = p;
    for (int64_t i = c0 * OT_CHUNK; i < c1 * OT_CHUNK && i < c->n; i += OT_CHUNK)
        c->kt->silu_mul(c->a + i, c->b + i, chunk_len(c, i), c->out + i);
}

void ot_silu_mul(const float *gate, const float *up, int64_t n, float *out) {
    struct ops_ctx c = {ot_active(), gate, up, out, n, 0.0f};
    ot_parallel_for((n + OT_CHUNK - 1) / OT_CHUNK, n / 4, silu_mul_range, &c);
}

static void add_range(void *p, int64_t c0, int64_t c1) {
    const struct ops_ctx *c = p;
    for (int64_t i = c0 * OT_CHUNK; i < c1 * OT_CHUNK && i < c->n; i += OT_CHUNK)
        c->kt->add(c->a + i, c->b + i, chunk_len(c, i), c->out + i);
}

void ot_add(const float *a, const float *b, int64_t n, float *out) {
    struct ops_ctx c = {ot_active(), a, b, out, n, 0.0f};
    ot_parallel_for((n + OT_CHUNK - 1) / OT_CHUNK, n / 4, add_range, &c);
}

struct rope_ctx {
    float *x;
    const int32_t *pos;
    int64_t nhead, head_dim, half;
    const float *inv_freq;
    float mscale;
    int neox;
};

static void rope_range(void *p, int64_t t0, int64_t t1) {
    const struct rope_ctx *c = p;
    const int64_t half = c->half;
    /* neox pairs (i, i + half); normal mode pairs (2i, 2i + 1). */
    const int64_t step = c->neox ? 1 : 2, other = c->neox ? half : 1;
    for (int64_t t = t0; t < t1; t++) {
        float cs[half], sn[half]; /* one angle per pair, shared by every head */
        for (int64_t i = 0; i < half; i++) {
            const float angle = (float)c->pos[t] * c->inv_freq[i];
            cs[i] = cosf(angle) * c->mscale;
            sn[i] = sinf(angle) * c->mscale;
        }
        for (int64_t h = 0; h < c->nhead; h++) {
            float *x = c->x + (t * c->nhead + h) * c->head_dim;
            for (int64_t i = 0; i < half; i++) {
                const float a = x[i * step], b = x[i * step + other];
                x[i * step] = a * cs[i] - b * sn[i];
                x[i * step + other] = a * sn[i] + b * cs[i];
            }
        }
    }
}

void ot_rope(float *x, const int32_t *pos, int64_t ntok, int64_t nhead, int64_t head_dim, int64_t rope_dim,
             const float *inv_freq, float mscale, int neox) {
    struct rope_ctx c = {x, pos, nhead, head_dim, rope_dim / 2, inv_freq, mscale, neox};
    if (c.half > 0)
        ot_parallel_for(ntok, ntok * nhead * head_dim, rope_range, &c);
}

struct attention_job {
    ot_attn_fn attn;
    const float *q;
    const char *k, *v;
    float *out;
    int64_t n_head, group, g, per_tok, head_dim, kv_stride, pos0;
    size_t esize;
    float scale;
};

static void attention_range(void *p, int64_t i0, int64_t i1) {
    const struct attention_job *c = p;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t t = it / c->per_tok, h = (it % c->per_tok) * c->g, kvh = h / c->group;
        const int64_t off = (t * c->n_head + h) * c->head_dim;
        const size_t at = (size_t)(kvh * c->kv_stride * c->head_dim) * c->esize;
        c->attn(c->q + off, c->k + at, c->v + at, c->pos0 + t + 1, c->head_dim, c->g, c->scale, c->out + off);
    }
}

void ot_attention(const float *q, const void *k, const void *v, int kv_type, float *out, int64_t ntok, int64_t n_head,
                  int64_t n_kv_head, int64_t head_dim, int64_t kv_stride, int64_t pos0, float scale) {
    const int nth = ot_nthreads();
    const int64_t group = n_head / n_kv_head;
    /* Query heads of one KV head go together (their keys are read once),
     * unless that leaves too few items to keep every thread busy. */
    const int64_t g = ntok * n_kv_head >= 2 * nth ? group : 1;
    struct attention_job c = {kv_type == OT_F16 ? ot_active()->attention_f16 : ot_active()->attention_f32,
                              q, k, v, out, n_head, group, g, n_head / g, head_dim, kv_stride, pos0,
                              kv_type == OT_F16 ? 2 : 4, scale};
    /* Each item reads a whole KV range: always worth a thread. */
    ot_parallel_for(ntok * c.per_tok, OT_PARALLEL_MIN, attention_range, &c);
}

int ot_gemm_f32(const float *packed, const float *bias, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                int act, int accumulate) {
    return ot_active()->gemm_f32(packed, bias, n, k, x, m, y, act, accumulate);
}

void ot_bias_act(const float *x, const float *bias, int64_t m, int64_t n, int act, int accumulate, float *y) {
    ot_active()->bias_act(x, bias, m, n, act, accumulate, y);
}

void ot_layernorm(const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps, float *out) {
    ot_active()->layernorm(x, w, b, rows, n, eps, out);
}

int ot_attention_full(const float *qkv, int64_t batch, int64_t ntok, int64_t n_head, int64_t head_dim, float scale,
                      float *out, float *probs) {
    return ot_active()->attention_full(qkv, batch, ntok, n_head, head_dim, scale, out, probs);
}
