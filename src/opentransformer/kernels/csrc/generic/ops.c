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

/* dot_<kv> and axpy_<kv> over a KV cache row of element type T, read through CONV. */
#define KV_ROW_OPS(kv, T, CONV)                                          \
    static inline float dot_##kv(const float *a, const T *b, int64_t n) {  \
        float s = 0.0f;                                                  \
        for (int64_t i = 0; i < n; i++)                                  \
            s += a[i] * CONV(b[i]);                                      \
        return s;                                                        \
    }                                                                    \
    static inline void axpy_##kv(float *y, float a, const T *x, int64_t n) { \
        for (int64_t i = 0; i < n; i++)                                  \
            y[i] += a * CONV(x[i]);                                      \
    }
#define AS_FLOAT(x) (x)
KV_ROW_OPS(f32, float, AS_FLOAT)
KV_ROW_OPS(f16, uint16_t, ot_fp16_to_fp32)

static inline void vscale(float *y, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] *= a;
}

#define OT_SCALE vscale
#define OT_ATTN_FN attention_f32
#define OT_KV_T float
#define OT_DOT dot_f32
#define OT_AXPY axpy_f32
#include "ot_attn_impl.h"
#define OT_ATTN_FN attention_f16
#define OT_KV_T uint16_t
#define OT_DOT dot_f16
#define OT_AXPY axpy_f16
#include "ot_attn_impl.h"

void ot_register_generic_quants(struct ot_kernels *t);
void ot_register_montecarlo_generic(struct ot_kernels *t);
void ot_register_generic_llamacpp(struct ot_kernels *t);
OT_DECLARE_VISION(generic)

void ot_register_generic(struct ot_kernels *t) {
    ot_register_generic_quants(t);
    t->attention_f32 = attention_f32;
    t->attention_f16 = attention_f16;
    t->rmsnorm = rmsnorm_row;
    t->softmax = softmax_row;
    t->silu_mul = silu_mul;
    t->add = add;
    OT_SET_VISION(t, generic);
    ot_register_montecarlo_generic(t);
    ot_register_generic_llamacpp(t);
}
