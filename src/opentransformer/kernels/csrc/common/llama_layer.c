/* One Llama-family decoder layer in a single call, so a token step never
 * returns to Python between ops:
 *
 *   n  = RMSNorm(x)                      q, k, v = W_q n (+b), W_k n (+b), W_v n (+b)
 *   q, k = RoPE(q, pos), RoPE(k, pos)    cache[pos] = k, v
 *   x += W_o Attn(q, cache)              m = RMSNorm(x)
 *   x += W_down (SiLU(W_gate m) * W_up m)
 *
 * Every token carries its own KV slot (cache and position), so one call runs
 * a prompt chunk of one sequence or one new token each of several sequences.
 * Projections that read the same input quantize it once and share one
 * parallel region. From OT_PREFILL_ROWS tokens on (a prompt), projections
 * run as GEMMs that repack or expand each weight once per call and reuse it
 * for every token (project_all).
 *
 * The ops come from a table: our kernels' (own_layer_ops) or, for dims with
 * arith = OT_ARITH_LLAMACPP, llama.cpp's arithmetic (llamacpp_arith.c).
 */
#include <string.h>

#include "ot_internal.h"

/* Tokens per call from which projections run as GEMMs (measured for the
 * float32 expansion: at 16 rows it still cost more than it saved). */
#define OT_PREFILL_ROWS 32

/* y_i = x . W_i^T (+ b_i) for projections of one input and one weight type. */
static void project(const struct ot_linear *const *lins, float *const *ys, int count, const float *x, int64_t m,
                    void *scratch, int act16) {
    ot_project(lins, ys, count, x, m, scratch, act16);
    for (int i = 0; i < count; i++)
        if (lins[i]->bias)
            for (int64_t t = 0; t < m; t++)
                ot_active()->add(ys[i] + t * lins[i]->n, lins[i]->bias, lins[i]->n, ys[i] + t * lins[i]->n);
}

struct pack_ctx {
    const struct ot_linear *lin;
    float *packed, *tmp; /* tmp: OT_GEMM_NR rows of k floats per thread */
};

static void pack_range(void *p, int64_t p0, int64_t p1) {
    const struct pack_ctx *c = p;
    const struct ot_linear *lin = c->lin;
    const int64_t k = lin->k, nr = OT_GEMM_NR;
    const size_t rb = ot_row_bytes(lin->type, k);
    float *tmp = c->tmp + (int64_t)ot_thread_index() * nr * k;
    for (int64_t pn = p0; pn < p1; pn++) {
        const int64_t r0 = pn * nr, rows = lin->n - r0 < nr ? lin->n - r0 : nr;
        for (int64_t r = 0; r < rows; r++)
            ot_active()->dequantize[lin->type]((const uint8_t *)lin->w + (r0 + r) * rb, tmp + r * k, k);
        float *panel = c->packed + pn * k * nr;
        for (int64_t i = 0; i < k; i++)
            for (int64_t r = 0; r < nr; r++)
                panel[i * nr + r] = r < rows ? tmp[r * k + i] : 0.0f;
    }
}

/* y[m][n] = x[m][k] . W^T (+ b) through float32 panels of W (see the top); nonzero when the
 * GEMM could not allocate its copy of x. */
static int project_f32(const struct ot_linear *lin, float *y, const float *x, int64_t m, float *wpack) {
    const int64_t npanel = (lin->n + OT_GEMM_NR - 1) / OT_GEMM_NR;
    struct pack_ctx c = {lin, wpack, wpack + ot_gemm_packed_floats(lin->n, lin->k)};
    ot_parallel_for(npanel, OT_PARALLEL_MIN, pack_range, &c);
    return ot_active()->gemm_f32(wpack, lin->bias, lin->n, lin->k, x, m, y, OT_ACT_NONE, 0);
}

size_t ot_llama_wpack_floats(int64_t n, int64_t k) {
    return ot_gemm_packed_floats(n, k) + (size_t)ot_nthreads() * OT_GEMM_NR * (size_t)k;
}

/* Projections of one input, grouped by weight type (a Q4_K_M file mixes
 * them). A prompt's projections run as GEMMs: 8-bit ones where the ISA has
 * them; Q8_0 with 16-bit activations, since rounding them to 8 bits as well
 * moves a q8_0 file's logits 2.6% from float32 on the parity model, past the
 * 2% we promise (llama.cpp itself: 2.59%, benchmarks/results/llamacpp_compat_2026-11-25.json);
 * otherwise float32 panels. */
static void project_all(const struct ot_linear *const *lins, float *const *ys, int count, const float *x, int64_t m,
                        const struct ot_llama_buffers *b) {
    const struct ot_kernels *kt = ot_active();
    for (int i = 0; i < count;) {
        int j = i + 1;
        while (j < count && lins[j]->type == lins[i]->type && lins[j]->k == lins[i]->k)
            j++;
        const int type = lins[i]->type, prompt = m >= OT_PREFILL_ROWS;
        int expand = prompt && b->wpack && (!kt->gemm_q[type] || type == OT_Q8_0);
        for (int r = i; r < j; r++)
            expand = expand && ot_llama_wpack_floats(lins[r]->n, lins[r]->k) <= b->wpack_floats;
        if (prompt && type == OT_Q8_0 && kt->gemm_q8_0_a16) {
            project(lins + i, ys + i, j - i, x, m, b->scratch, 1);
        } else if (expand) {
            /* Out of memory for the GEMM's copy of x: that projection takes the 8-bit path, as when
             * wpack is too small. */
            for (int r = i; r < j; r++)
                if (project_f32(lins[r], ys[r], x, m, b->wpack) != 0)
                    project(lins + r, ys + r, 1, x, m, b->scratch, 0);
        } else {
            project(lins + i, ys + i, j - i, x, m, b->scratch, 0);
        }
        i = j;
    }
}

struct attn_ctx {
    ot_attn_fn attn;
    size_t esize; /* bytes per cache element */
    const struct ot_llama_dims *d;
    const struct ot_kv_slot *slots;
    int64_t layer, g, per_tok;
    const float *q;
    float *out;
};

static void attn_range(void *p, int64_t i0, int64_t i1) {
    const struct attn_ctx *c = p;
    const struct ot_llama_dims *d = c->d;
    const int64_t hd = d->head_dim, group = d->n_head / d->n_kv_head;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t t = it / c->per_tok, h = (it % c->per_tok) * c->g, kvh = h / group;
        const struct ot_kv_slot *s = &c->slots[t];
        const size_t base = (size_t)((c->layer * d->n_kv_head + kvh) * s->capacity * hd) * c->esize;
        const int64_t off = (t * d->n_head + h) * hd;
        c->attn(c->q + off, (const char *)s->k + base, (const char *)s->v + base, s->pos + 1, hd, c->g,
                d->attn_scale, c->out + off);
    }
}

static void store_kv(const struct ot_llama_dims *d, int64_t layer, const struct ot_kv_slot *slots, int64_t ntok,
                     const float *k, const float *v) {
    const int64_t hd = d->head_dim;
    for (int64_t t = 0; t < ntok; t++) {
        const struct ot_kv_slot *s = &slots[t];
        for (int64_t h = 0; h < d->n_kv_head; h++) {
            const int64_t at = ((layer * d->n_kv_head + h) * s->capacity + s->pos) * hd;
            const float *kt = k + (t * d->n_kv_head + h) * hd, *vt = v + (t * d->n_kv_head + h) * hd;
            if (d->kv_type == OT_F16) {
                for (int64_t i = 0; i < hd; i++) {
                    ((uint16_t *)s->k)[at + i] = ot_fp32_to_fp16(kt[i]);
                    ((uint16_t *)s->v)[at + i] = ot_fp32_to_fp16(vt[i]);
                }
            } else {
                memcpy((float *)s->k + at, kt, (size_t)hd * sizeof(float));
                memcpy((float *)s->v + at, vt, (size_t)hd * sizeof(float));
            }
        }
    }
}

static void rope(float *x, const int32_t *pos, int64_t ntok, int64_t nhead, const struct ot_llama_dims *d) {
    ot_rope(x, pos, ntok, nhead, d->head_dim, d->rope_dim, d->inv_freq, d->rope_mscale, d->neox);
}

static void attend(const struct ot_llama_dims *d, int64_t layer, const struct ot_kv_slot *slots, int64_t ntok,
                   const float *q, float *out) {
    const struct ot_kernels *kt = ot_active();
    /* Query heads of one KV head go together (their keys are read once),
     * unless that leaves too few items to keep every thread busy. */
    const int64_t group = d->n_head / d->n_kv_head;
    const int64_t g = ntok * d->n_kv_head >= 2 * ot_nthreads() ? group : 1;
    const int f16 = d->kv_type == OT_F16;
    struct attn_ctx ac = {f16 ? kt->attention_f16 : kt->attention_f32, f16 ? 2 : 4, d, slots, layer, g,
                          d->n_head / g, q, out};
    ot_parallel_for(ntok * ac.per_tok, OT_PARALLEL_MIN, attn_range, &ac);
}

static const struct ot_layer_ops own_layer_ops = {ot_rmsnorm, project_all, rope, attend, ot_silu_mul};

int ot_llama_layer(const struct ot_llama_layer *L, const struct ot_llama_dims *d, int64_t layer, float *x,
                   int64_t ntok, const struct ot_kv_slot *slots, const struct ot_llama_buffers *b) {
    const struct ot_layer_ops *op = d->arith == OT_ARITH_LLAMACPP ? &ot_llamacpp_layer_ops : &own_layer_ops;
    const int64_t dim = d->dim;
    for (int64_t t = 0; t < ntok; t++)
        if (slots[t].pos < 0 || slots[t].pos >= slots[t].capacity)
            return -1;

    /* attention sub-layer */
    op->rmsnorm(x, L->attn_norm, ntok, dim, d->norm_eps, b->xn);
    const struct ot_linear *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *const qkv_out[3] = {b->q, b->k, b->v};
    op->project(qkv, qkv_out, 3, b->xn, ntok, b);
    int32_t *pos = b->pos;
    for (int64_t t = 0; t < ntok; t++)
        pos[t] = (int32_t)slots[t].pos;
    op->rope(b->q, pos, ntok, d->n_head, d);
    op->rope(b->k, pos, ntok, d->n_kv_head, d);
    store_kv(d, layer, slots, ntok, b->k, b->v);
    op->attend(d, layer, slots, ntok, b->q, b->att);
    const struct ot_linear *wo[1] = {&L->wo};
    float *const wo_out[1] = {b->proj};
    op->project(wo, wo_out, 1, b->att, ntok, b);
    ot_add(x, b->proj, ntok * dim, x);

    /* feed-forward sub-layer */
    op->rmsnorm(x, L->ffn_norm, ntok, dim, d->norm_eps, b->xn);
    const struct ot_linear *gate_up[2] = {&L->w_gate, &L->w_up};
    float *const gate_up_out[2] = {b->gate, b->up};
    op->project(gate_up, gate_up_out, 2, b->xn, ntok, b);
    op->silu_mul(b->gate, b->up, ntok * d->hidden, b->gate);
    const struct ot_linear *down[1] = {&L->w_down};
    float *const down_out[1] = {b->proj};
    op->project(down, down_out, 1, b->gate, ntok, b);
    ot_add(x, b->proj, ntok * dim, x);
    return 0;
}
