/* Vision kernels, written once against GCC vector extensions and compiled
 * once per ISA: generic/vision.c (SSE2 baseline, 4 lanes), x86/avx2_vision.c
 * (8 lanes), x86/avx512_vision.c (16 lanes). The including file defines
 *   OT_VW      floats per vector
 *   OT_MR      rows of the GEMM microkernel (accumulators: OT_MR * 32 / OT_VW)
 *   OT_ATT_QB  query rows per attention block
 *   OT_ATT_JB  key vectors per attention block
 *   OT_VFN(n)  the ISA-specific name of kernel n
 * so the arithmetic is the same everywhere and only the register blocking
 * changes. Products and sums contract to FMA where the ISA has it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ot_internal.h"

typedef float vf __attribute__((vector_size(OT_VW * 4)));
typedef int32_t vi __attribute__((vector_size(OT_VW * 4)));
/* Same vector, 4-byte aligned: unaligned loads and stores. */
typedef float vf_u __attribute__((vector_size(OT_VW * 4), aligned(4)));

#define OT_NV (OT_GEMM_NR / OT_VW) /* vectors per packed panel row */
#define OT_ALWAYS_INLINE static inline __attribute__((always_inline))

OT_ALWAYS_INLINE vf vload(const float *p) { return *(const vf_u *)p; }
OT_ALWAYS_INLINE void vstore(float *p, vf v) { *(vf_u *)p = v; }
OT_ALWAYS_INLINE vf vset1(float s) { return (vf){0} + s; }
OT_ALWAYS_INLINE vf vsel(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
OT_ALWAYS_INLINE vf vmin(vf a, vf b) { return vsel(a < b, a, b); }
OT_ALWAYS_INLINE vf vmax(vf a, vf b) { return vsel(a > b, a, b); }

/* All ones in the lanes below `cols`. */
OT_ALWAYS_INLINE vi vlanes_below(int64_t cols) {
    vi lane;
    for (int i = 0; i < OT_VW; i++)
        lane[i] = i;
    return lane < (vi){0} + (int32_t)(cols < OT_VW ? cols : OT_VW);
}

/* The first `cols` lanes of p (cols <= OT_VW); the rest read as 0. */
OT_ALWAYS_INLINE vf vload_part(const float *p, int64_t cols) {
    if (cols >= OT_VW)
        return vload(p);
    vf v = {0};
    memcpy(&v, p, (size_t)cols * sizeof(float));
    return v;
}

OT_ALWAYS_INLINE void vstore_part(float *p, vf v, int64_t cols) {
    if (cols >= OT_VW)
        vstore(p, v);
    else
        memcpy(p, &v, (size_t)cols * sizeof(float));
}

OT_ALWAYS_INLINE float vsum(vf v) {
    float s = 0.0f;
    for (int i = 0; i < OT_VW; i++)
        s += v[i];
    return s;
}

OT_ALWAYS_INLINE float vhmax(vf v) {
    float m = v[0];
    for (int i = 1; i < OT_VW; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* exp(x) for x <= 0 (softmax arguments): Cody-Waite reduction by ln 2 and a
 * degree-6 polynomial, within 2 ulp of expf; flushes to 0 below -87. */
OT_ALWAYS_INLINE vf vexp_nonpos(vf x) {
    const vf lo = vset1(-87.0f);
    x = vmax(x, lo);
    const vf shifter = vset1(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    vf n = (x * vset1(1.44269504088896341f) + shifter) - shifter;
    vf r = x - n * vset1(0.693359375f);
    r = r - n * vset1(-2.12194440e-4f);
    vf p = vset1(1.9875691500e-4f);
    p = p * r + vset1(1.3981999507e-3f);
    p = p * r + vset1(8.3334519073e-3f);
    p = p * r + vset1(4.1665795894e-2f);
    p = p * r + vset1(1.6666665459e-1f);
    p = p * r + vset1(5.0000001201e-1f);
    p = p * (r * r) + r + vset1(1.0f);
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    return p * (vf)e;
}

/* erf(x): rational approximation on [-4, 4] (beyond, erf is +-1 in float),
 * odd numerator of degree 13 over even denominator of degree 8. */
OT_ALWAYS_INLINE vf verf(vf x) {
    x = vmin(vmax(x, vset1(-4.0f)), vset1(4.0f));
    vf x2 = x * x;
    vf p = vset1(-2.72614225801306e-10f);
    p = p * x2 + vset1(2.77068142495902e-08f);
    p = p * x2 + vset1(-2.10102402082508e-06f);
    p = p * x2 + vset1(-5.69250639462346e-05f);
    p = p * x2 + vset1(-7.34990630326855e-04f);
    p = p * x2 + vset1(-2.95459980854025e-03f);
    p = p * x2 + vset1(-1.60960333262415e-02f);
    p = p * x;
    vf q = vset1(-1.45660718464996e-05f);
    q = q * x2 + vset1(-2.13374055278905e-04f);
    q = q * x2 + vset1(-1.68282697438203e-03f);
    q = q * x2 + vset1(-7.37332916720468e-03f);
    q = q * x2 + vset1(-1.42647390514189e-02f);
    return p / q;
}

/* Exact (erf) GELU: x/2 * (1 + erf(x/sqrt 2)), as torch's default GELU. */
OT_ALWAYS_INLINE vf vgelu(vf x) {
    return x * vset1(0.5f) * (vset1(1.0f) + verf(x * vset1(0.70710678118654752f)));
}

/* y = act(acc + bias) (+ y when accumulating), for the first `cols` lanes. */
OT_ALWAYS_INLINE void epilogue(vf acc, const float *bias, int64_t cols, int act, int accumulate, float *y) {
    if (bias)
        acc += vload_part(bias, cols);
    if (act == OT_ACT_GELU)
        acc = vgelu(acc);
    if (accumulate)
        acc += vload_part(y, cols);
    vstore_part(y, acc, cols);
}

/* --- GEMM ---------------------------------------------------------------- */

/* One tile: `rows` rows of x times one packed panel (k x OT_GEMM_NR), written
 * to the first `cols` columns of y. x is one packed strip: element p of row r
 * at xs[p * OT_MR + r]. Inlined with a constant `rows`, so the accumulators
 * live in registers. */
OT_ALWAYS_INLINE void gemm_tile(int rows, const float *xs, int64_t k, const float *panel, const float *bias,
                                int64_t cols, int act, int accumulate, float *y, int64_t ldy) {
    vf acc[OT_MR][OT_NV];
#pragma GCC unroll 32
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
        for (int v = 0; v < OT_NV; v++)
            acc[r][v] = (vf){0};
    for (int64_t p = 0; p < k; p++) {
        vf b[OT_NV];
#pragma GCC unroll 8
        for (int v = 0; v < OT_NV; v++)
            b[v] = vload(panel + p * OT_GEMM_NR + v * OT_VW);
#pragma GCC unroll 32
        for (int r = 0; r < rows; r++) {
            vf a = vset1(xs[p * OT_MR + r]);
#pragma GCC unroll 8
            for (int v = 0; v < OT_NV; v++)
                acc[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < OT_NV && v * OT_VW < cols; v++)
            epilogue(acc[r][v], bias ? bias + v * OT_VW : NULL, cols - v * OT_VW, act, accumulate,
                     y + r * ldy + v * OT_VW);
}

/* The m % OT_MR rows left over, each count with its own unrolled tile. */
static void gemm_tail(int rows, const float *xs, int64_t k, const float *panel, const float *bias, int64_t cols,
                      int act, int accumulate, float *y, int64_t ldy) {
    switch (rows) {
#define OT_TAIL_CASE(r)                                                                                           \
    case r:                                                                                                       \
        if (r < OT_MR)                                                                                            \
            gemm_tile(r, xs, k, panel, bias, cols, act, accumulate, y, ldy);                                       \
        break;
        OT_TAIL_CASE(1) OT_TAIL_CASE(2) OT_TAIL_CASE(3) OT_TAIL_CASE(4) OT_TAIL_CASE(5) OT_TAIL_CASE(6)
        OT_TAIL_CASE(7) OT_TAIL_CASE(8) OT_TAIL_CASE(9) OT_TAIL_CASE(10) OT_TAIL_CASE(11) OT_TAIL_CASE(12)
        OT_TAIL_CASE(13) OT_TAIL_CASE(14) OT_TAIL_CASE(15)
#undef OT_TAIL_CASE
    }
}

_Static_assert(OT_MR <= 16, "gemm_tail covers tails of up to 15 rows");

struct gemm_job {
    const float *packed, *bias, *x;
    float *xs, *y; /* xs: x packed in strips of OT_MR rows */
    int64_t n, k, m, mtiles;
    int act, accumulate;
};

/* Strips t0 .. t1 - 1 of x: row r of strip t at xs[t * k * OT_MR + p * OT_MR + r], rows past m zero.
 * A tile then reads one contiguous stream instead of OT_MR rows k floats apart (which, for k a
 * multiple of 1024, all fall in one L1 set). */
static void pack_x_range(void *p, int64_t t0, int64_t t1) {
    const struct gemm_job *g = p;
    const int64_t k = g->k;
    for (int64_t t = t0; t < t1; t++) {
        float *strip = g->xs + t * k * OT_MR;
        for (int r = 0; r < OT_MR; r++) {
            const int64_t row = t * OT_MR + r;
            if (row < g->m) {
                const float *xr = g->x + row * k;
                for (int64_t i = 0; i < k; i++)
                    strip[i * OT_MR + r] = xr[i];
            } else {
                for (int64_t i = 0; i < k; i++)
                    strip[i * OT_MR + r] = 0.0f;
            }
        }
    }
}

/* Units in panel-major order: consecutive units of a range share one panel
 * of W, which stays in L2 while the strips of x stream past it. */
static void gemm_range(void *p, int64_t u0, int64_t u1) {
    const struct gemm_job *g = p;
    const int64_t n = g->n, k = g->k;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t pn = u / g->mtiles, t = u % g->mtiles, i = t * OT_MR, j = pn * OT_GEMM_NR;
        const int64_t rows = g->m - i < OT_MR ? g->m - i : OT_MR;
        const int64_t cols = n - j < OT_GEMM_NR ? n - j : OT_GEMM_NR;
        const float *panel = g->packed + pn * k * OT_GEMM_NR, *xs = g->xs + t * k * OT_MR;
        const float *b = g->bias ? g->bias + j : NULL;
        if (rows == OT_MR)
            gemm_tile(OT_MR, xs, k, panel, b, cols, g->act, g->accumulate, g->y + i * n + j, n);
        else
            gemm_tail((int)rows, xs, k, panel, b, cols, g->act, g->accumulate, g->y + i * n + j, n);
    }
}

int OT_VFN(gemm_f32)(const float *packed, const float *bias, int64_t n, int64_t k, const float *x, int64_t m,
                     float *y, int act, int accumulate) {
    const int64_t npanel = (n + OT_GEMM_NR - 1) / OT_GEMM_NR, mtiles = (m + OT_MR - 1) / OT_MR;
    float *xs = malloc((size_t)(mtiles * OT_MR) * (size_t)k * sizeof(float));
    if (!xs)
        return -1;
    struct gemm_job g = {packed, bias, x, xs, y, n, k, m, mtiles, act, accumulate};
    ot_parallel_for(mtiles, m * k, pack_x_range, &g);
    ot_parallel_for(npanel * mtiles, m * n * k, gemm_range, &g);
    free(xs);
    return 0;
}

struct bias_act_job {
    const float *x, *bias;
    float *y;
    int64_t n;
    int act, accumulate;
};

static void bias_act_range(void *p, int64_t r0, int64_t r1) {
    const struct bias_act_job *c = p;
    const int64_t n = c->n;
    for (int64_t i = r0; i < r1; i++)
        for (int64_t j = 0; j < n; j += OT_VW)
            epilogue(vload_part(c->x + i * n + j, n - j), c->bias ? c->bias + j : NULL, n - j, c->act,
                     c->accumulate, c->y + i * n + j);
}

void OT_VFN(bias_act)(const float *x, const float *bias, int64_t m, int64_t n, int act, int accumulate, float *y) {
    struct bias_act_job c = {x, bias, y, n, act, accumulate};
    ot_parallel_for(m, m * n, bias_act_range, &c);
}

/* --- LayerNorm ------------------------------------------------------------ */

struct layernorm_job {
    const float *x, *w, *b;
    float *out;
    int64_t n;
    float eps;
};

static void layernorm_range(void *p, int64_t r0, int64_t r1) {
    const struct layernorm_job *c = p;
    const float *x = c->x, *w = c->w, *b = c->b;
    float *out = c->out;
    const int64_t n = c->n;
    const float eps = c->eps;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * n;
        float *o = out + r * n;
        vf s = {0};
        for (int64_t j = 0; j < n; j += OT_VW)
            s += vload_part(xr + j, n - j);
        const float mean = vsum(s) / (float)n;
        /* Two passes: the variance of centred values does not cancel. */
        const vf vm = vset1(mean);
        vf ss = {0};
        for (int64_t j = 0; j < n; j += OT_VW) {
            const vf d = vsel(vlanes_below(n - j), vload_part(xr + j, n - j) - vm, (vf){0});
            ss += d * d;
        }
        const float var = vsum(ss) / (float)n;
        const float rstd = 1.0f / sqrtf(var + eps);
        const vf vr = vset1(rstd);
        for (int64_t j = 0; j < n; j += OT_VW) {
            const int64_t cols = n - j;
            vf v = (vload_part(xr + j, cols) - vm) * vr * vload_part(w + j, cols) + vload_part(b + j, cols);
            vstore_part(o + j, v, cols);
        }
    }
}

void OT_VFN(layernorm)(const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps,
                       float *out) {
    struct layernorm_job c = {x, w, b, out, n, eps};
    ot_parallel_for(rows, rows * n, layernorm_range, &c);
}

/* --- attention over all tokens -------------------------------------------- */

#define OT_ATT_KB (OT_ATT_JB * OT_VW) /* keys per score block */

/* s[r][j0 .. j0+OT_ATT_KB) = q_r . k_j for OT_ATT_QB query rows, from the
 * transposed keys kt[head_dim][tpad]: no horizontal sums. */
OT_ALWAYS_INLINE void score_block(const float *const *q, const float *kt, int64_t head_dim, int64_t tpad,
                                  int64_t j0, float *s) {
    vf acc[OT_ATT_QB][OT_ATT_JB];
#pragma GCC unroll 8
    for (int r = 0; r < OT_ATT_QB; r++)
#pragma GCC unroll 8
        for (int c = 0; c < OT_ATT_JB; c++)
            acc[r][c] = (vf){0};
    for (int64_t d = 0; d < head_dim; d++) {
        vf k[OT_ATT_JB];
#pragma GCC unroll 8
        for (int c = 0; c < OT_ATT_JB; c++)
            k[c] = vload(kt + d * tpad + j0 + c * OT_VW);
#pragma GCC unroll 8
        for (int r = 0; r < OT_ATT_QB; r++) {
            const vf a = vset1(q[r][d]);
#pragma GCC unroll 8
            for (int c = 0; c < OT_ATT_JB; c++)
                acc[r][c] += a * k[c];
        }
    }
    for (int r = 0; r < OT_ATT_QB; r++)
        for (int c = 0; c < OT_ATT_JB; c++)
            vstore(s + r * tpad + j0 + c * OT_VW, acc[r][c]);
}

/* row[0 .. ntok) <- softmax(row * scale), as torch: scale, subtract the max,
 * exponentiate, divide by the sum. row holds whole vectors past ntok. */
OT_ALWAYS_INLINE void softmax_scaled(float *row, int64_t ntok, float scale) {
    const vf vs = vset1(scale);
    vf mx = vset1(-INFINITY);
    for (int64_t j = 0; j < ntok; j += OT_VW)
        mx = vmax(mx, vsel(vlanes_below(ntok - j), vload(row + j) * vs, vset1(-INFINITY)));
    const vf vm = vset1(vhmax(mx));
    vf sum = {0};
    for (int64_t j = 0; j < ntok; j += OT_VW) {
        const vf e = vsel(vlanes_below(ntok - j), vexp_nonpos(vload(row + j) * vs - vm), (vf){0});
        vstore(row + j, e);
        sum += e;
    }
    const vf inv = vset1(1.0f / vsum(sum));
    for (int64_t j = 0; j < ntok; j += OT_VW)
        vstore(row + j, vload(row + j) * inv);
}

/* out_r[c0 .. c0 + hv vectors) = sum_j p[r][j] v_j for OT_ATT_QB rows; the
 * last vector holds last_cols values. Null output rows are padding. */
OT_ALWAYS_INLINE void pv_block(int hv, int64_t last_cols, const float *p, int64_t tpad, const float *v, int64_t ld,
                               int64_t ntok, float *const *out) {
    vf acc[OT_ATT_QB][OT_ATT_HV];
#pragma GCC unroll 8
    for (int r = 0; r < OT_ATT_QB; r++)
#pragma GCC unroll 8
        for (int c = 0; c < hv; c++)
            acc[r][c] = (vf){0};
    for (int64_t j = 0; j < ntok; j++) {
        vf x[OT_ATT_HV] = {{0}};
#pragma GCC unroll 8
        for (int c = 0; c < hv; c++)
            x[c] = vload_part(v + j * ld + c * OT_VW, c == hv - 1 ? last_cols : OT_VW);
#pragma GCC unroll 8
        for (int r = 0; r < OT_ATT_QB; r++) {
            const vf a = vset1(p[r * tpad + j]);
#pragma GCC unroll 8
            for (int c = 0; c < hv; c++)
                acc[r][c] += a * x[c];
        }
    }
    for (int r = 0; r < OT_ATT_QB; r++)
        if (out[r])
            for (int c = 0; c < hv; c++)
                vstore_part(out[r] + c * OT_VW, acc[r][c], c == hv - 1 ? last_cols : OT_VW);
}

/* Attention of one (batch, head) pair; kt and s are this thread's scratch.
 * probs0, when not null, receives this head's probabilities [ntok][ntok]. */
static void attend_head(const float *q0, const float *k0, const float *v0, int64_t ld, int64_t ntok,
                        int64_t head_dim, float scale, const float *zero_row, float *kt, int64_t tpad, float *s,
                        float *out0, int64_t ldo, float *probs0) {
    for (int64_t j = 0; j < ntok; j++)
        for (int64_t d = 0; d < head_dim; d++)
            kt[d * tpad + j] = k0[j * ld + d];
    for (int64_t i0 = 0; i0 < ntok; i0 += OT_ATT_QB) {
        const float *q[OT_ATT_QB];
        float *o[OT_ATT_QB];
        for (int r = 0; r < OT_ATT_QB; r++) {
            const int valid = i0 + r < ntok;
            q[r] = valid ? q0 + (i0 + r) * ld : zero_row;
            o[r] = valid ? out0 + (i0 + r) * ldo : NULL;
        }
        for (int64_t j0 = 0; j0 < tpad; j0 += OT_ATT_KB)
            score_block(q, kt, head_dim, tpad, j0, s);
        for (int r = 0; r < OT_ATT_QB && i0 + r < ntok; r++) {
            softmax_scaled(s + r * tpad, ntok, scale);
            if (probs0)
                memcpy(probs0 + (i0 + r) * ntok, s + r * tpad, (size_t)ntok * sizeof(float));
        }
        /* Whole chunks of OT_ATT_HV vectors unrolled, then the rest. */
        const int64_t chunk = OT_ATT_HV * OT_VW;
        int64_t c0 = 0;
        for (; c0 + chunk <= head_dim; c0 += chunk) {
            float *oc[OT_ATT_QB];
            for (int r = 0; r < OT_ATT_QB; r++)
                oc[r] = o[r] ? o[r] + c0 : NULL;
            pv_block(OT_ATT_HV, OT_VW, s, tpad, v0 + c0, ld, ntok, oc);
        }
        if (c0 < head_dim) {
            const int64_t rest = head_dim - c0;
            float *oc[OT_ATT_QB];
            for (int r = 0; r < OT_ATT_QB; r++)
                oc[r] = o[r] ? o[r] + c0 : NULL;
            pv_block((int)((rest + OT_VW - 1) / OT_VW), rest - (rest - 1) / OT_VW * OT_VW, s, tpad, v0 + c0, ld,
                     ntok, oc);
        }
    }
}

struct attention_job {
    const float *qkv;
    float *out, *probs, *scratch; /* scratch: scratch_floats per thread */
    int64_t n_head, head_dim, ntok, tpad;
    size_t scratch_floats;
    float scale;
};

static void attention_range(void *p, int64_t u0, int64_t u1) {
    const struct attention_job *c = p;
    const int64_t n_head = c->n_head, head_dim = c->head_dim, ntok = c->ntok, tpad = c->tpad;
    const int64_t dim = n_head * head_dim, ld = 3 * dim;
    /* This thread's K^T of one head, OT_ATT_QB rows of scores, a zero query. */
    float *kt = c->scratch + (size_t)ot_thread_index() * c->scratch_floats;
    float *s = kt + head_dim * tpad, *zero_row = s + OT_ATT_QB * tpad;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t b = u / n_head, h = u % n_head;
        const float *q0 = c->qkv + b * ntok * ld + h * head_dim;
        attend_head(q0, q0 + dim, q0 + 2 * dim, ld, ntok, head_dim, c->scale, zero_row, kt, tpad, s,
                    c->out + b * ntok * dim + h * head_dim, dim,
                    c->probs ? c->probs + (b * n_head + h) * ntok * ntok : NULL);
    }
}

int OT_VFN(attention_full)(const float *qkv, int64_t batch, int64_t ntok, int64_t n_head, int64_t head_dim,
                           float scale, float *out, float *probs) {
    const int64_t tpad = (ntok + OT_ATT_KB - 1) / OT_ATT_KB * OT_ATT_KB;
    const size_t per_thread = (size_t)(head_dim * tpad + OT_ATT_QB * tpad + head_dim);
    float *scratch = calloc((size_t)ot_nthreads() * per_thread, sizeof(float));
    if (!scratch)
        return -1;
    struct attention_job c = {qkv, out, probs, scratch, n_head, head_dim, ntok, tpad, per_thread, scale};
    /* One (image, head) pair is ~4 ntok^2 head_dim flops: always worth a thread. */
    ot_parallel_for(batch * n_head, OT_PARALLEL_MIN, attention_range, &c);
    free(scratch);
    return 0;
}
