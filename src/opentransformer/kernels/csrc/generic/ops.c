/* Row kernels in portable C, and the generic table that every ISA starts
 * from. */
#include <math.h>

#include "ot_internal.h"

static void rmsnorm_row(const float *x, const float *w, int64_t n, float eps, float *out) {
    double ss = 0.0; /* double: rows of thousands of squares */
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void softmax_row(float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

static void silu_mul(const float *gate, const float *up, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void add(const float *a, const float *b, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static inline float dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline void axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static inline void vscale(float *y, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] *= a;
}

#define OT_ATTN_FN attention_group
#define OT_DOT dot
#define OT_AXPY axpy
#define OT_SCALE vscale
#include "ot_attn_impl.h"

void ot_register_generic_quants(struct ot_kernels *t);
OT_DECLARE_VISION(generic)

void ot_register_generic(struct ot_kernels *t) {
    ot_register_generic_quants(t);
    t->attention = attention_group;
    t->rmsnorm = rmsnorm_row;
    t->softmax = softmax_row;
    t->silu_mul = silu_mul;
    t->add = add;
    OT_SET_VISION(t, generic);
}
