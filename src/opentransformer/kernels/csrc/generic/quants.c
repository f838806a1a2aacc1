/* Block formats in portable C: dequantization (bit-exact with the gguf
 * package's numpy dequantizers: same float operations in the same order, no
 * contraction), llama.cpp's reference activation quantizers, and the block
 * dot products every ISA falls back to. */
#include <math.h>

#include "ot_internal.h"

/* --- dequantization ------------------------------------------------------- */

static void dequantize_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void dequantize_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = ot_fp16_to_fp32(h[i]);
}

static void dequantize_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = ot_bf16_to_fp32(h[i]);
}

static void dequantize_q4_0(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = ot_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            dst[j] = d * (float)((b[i].qs[j] & 0xF) - 8);
            dst[j + QK / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

static void dequantize_q4_1(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = ot_fp16_to_fp32(b[i].d), m = ot_fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK / 2; j++) {
            dst[j] = d * (float)(b[i].qs[j] & 0xF) + m;
            dst[j + QK / 2] = d * (float)(b[i].qs[j] >> 4) + m;
        }
    }
}

static void dequantize_q8_0(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = ot_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK; j++)
            dst[j] = (float)b[i].qs[j] * d;
    }
}

static void dequantize_q4_K(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = ot_fp16_to_fp32(b[i].d), dmin = ot_fp16_to_fp32(b[i].dmin);
        for (int j = 0; j < 8; j++, dst += 32) {
            uint8_t sc, mn;
            ot_q4k_scale_min(b[i].scales, j, &sc, &mn);
            const float dj = d * (float)sc, mj = dmin * (float)mn;
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++)
                dst[l] = dj * (float)((q[l] >> shift) & 0xF) - mj;
        }
    }
}

/* Element 32 * v + l of a 128-element half: four bits of ql (low or high
 * nibble), two bits of qh, minus 32. */
static inline int q6_value(const uint8_t *ql, const uint8_t *qh, int v, int l) {
    const int lo = (ql[l + 32 * (v & 1)] >> (4 * (v >> 1))) & 0xF;
    const int hi = (qh[l] >> (2 * v)) & 3;
    return (lo | (hi << 4)) - 32;
}

static void dequantize_q6_K(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = ot_fp16_to_fp32(b[i].d);
        for (int half = 0; half < 2; half++)
            for (int v = 0; v < 4; v++, dst += 32)
                for (int l = 0; l < 32; l++) {
                    const float ds = d * (float)b[i].scales[8 * half + 2 * v + l / 16];
                    dst[l] = ds * (float)q6_value(b[i].ql + 64 * half, b[i].qh + 32 * half, v, l);
                }
    }
}

/* --- activation quantization (llama.cpp's reference rounding) ------------- */

/* roundf (half away from zero) for |v| < 2^31 without a libm call: the
 * fraction left after truncation is exact in float. */
static inline int8_t round_away(float v) {
    const int t = (int)v;
    const float f = v - (float)t;
    return (int8_t)(t + (f >= 0.5f) - (f <= -0.5f));
}

static float block_amax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

static void quantize_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        const float d = block_amax(x, QK) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ot_fp32_to_fp16(d);
        for (int j = 0; j < QK; j++)
            y[i].qs[j] = round_away(x[j] * id);
    }
}

static void quantize_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        const float d = block_amax(x, QK) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            y[i].qs[j] = round_away(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = ot_fp32_to_fp16(d);
        y[i].s = ot_fp32_to_fp16((float)sum * d);
    }
}

/* Round half to even through the float adder, as GGML's nearest_int. */
static inline int nearest_int(float f) {
    const uint32_t i = ot_f32_bits(f + 12582912.0f);
    return (int)(i & 0x007FFFFF) - 0x00400000;
}

static void quantize_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(y[i].bsums, 0, sizeof y[i].bsums);
        if (amax == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, QK_K);
            continue;
        }
        /* -127 / max maps the signed extreme to -127 so every q fits int8. */
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
            y[i].bsums[j / 16] += y[i].qs[j];
        }
        y[i].d = 1.0f / iscale;
    }
}

/* --- block dot products --------------------------------------------------- */

static float dot_f32(int64_t k, const uint8_t *w, const uint8_t *x) {
    const float *a = (const float *)w, *b = (const float *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k; i++)
        s += a[i] * b[i];
    return s;
}

static float dot_f16(int64_t k, const uint8_t *w, const uint8_t *x) {
    const uint16_t *a = (const uint16_t *)w;
    const float *b = (const float *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k; i++)
        s += ot_fp16_to_fp32(a[i]) * b[i];
    return s;
}

static float dot_bf16(int64_t k, const uint8_t *w, const uint8_t *x) {
    const uint16_t *a = (const uint16_t *)w;
    const float *b = (const float *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k; i++)
        s += ot_bf16_to_fp32(a[i]) * b[i];
    return s;
}

static float dot_q4_0(int64_t k, const uint8_t *w, const uint8_t *x) {
    const block_q4_0 *a = (const block_q4_0 *)w;
    const block_q8_0 *b = (const block_q8_0 *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK / 2];
        s += (float)sumi * (ot_fp16_to_fp32(a[i].d) * ot_fp16_to_fp32(b[i].d));
    }
    return s;
}

static float dot_q4_1(int64_t k, const uint8_t *w, const uint8_t *x) {
    const block_q4_1 *a = (const block_q4_1 *)w;
    const block_q8_1 *b = (const block_q8_1 *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += (a[i].qs[j] & 0xF) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + QK / 2];
        s += (float)sumi * (ot_fp16_to_fp32(a[i].d) * ot_fp16_to_fp32(b[i].d)) +
             ot_fp16_to_fp32(a[i].m) * ot_fp16_to_fp32(b[i].s);
    }
    return s;
}

static float dot_q8_0(int64_t k, const uint8_t *w, const uint8_t *x) {
    const block_q8_0 *a = (const block_q8_0 *)w;
    const block_q8_0 *b = (const block_q8_0 *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK; j++)
            sumi += a[i].qs[j] * b[i].qs[j];
        s += (float)sumi * (ot_fp16_to_fp32(a[i].d) * ot_fp16_to_fp32(b[i].d));
    }
    return s;
}

static float dot_q4_K(int64_t k, const uint8_t *w, const uint8_t *x) {
    const block_q4_K *a = (const block_q4_K *)w;
    const block_q8_K *b = (const block_q8_K *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            ot_q4k_scale_min(a[i].scales, j, &sc, &mn);
            const uint8_t *q = a[i].qs + 32 * (j / 2);
            const int8_t *y = b[i].qs + 32 * j;
            int dot = 0;
            for (int l = 0; l < 32; l++)
                dot += ((q[l] >> (4 * (j % 2))) & 0xF) * y[l];
            sumi += sc * dot;
            summ += mn * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        s += b[i].d * (ot_fp16_to_fp32(a[i].d) * (float)sumi - ot_fp16_to_fp32(a[i].dmin) * (float)summ);
    }
    return s;
}

static float dot_q6_K(int64_t k, const uint8_t *w, const uint8_t *x) {
    const block_q6_K *a = (const block_q6_K *)w;
    const block_q8_K *b = (const block_q8_K *)x;
    float s = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        int sumi = 0;
        for (int half = 0; half < 2; half++)
            for (int v = 0; v < 4; v++) {
                const int8_t *y = b[i].qs + 128 * half + 32 * v;
                for (int g = 0; g < 2; g++) {
                    int dot = 0;
                    for (int l = 16 * g; l < 16 * g + 16; l++)
                        dot += q6_value(a[i].ql + 64 * half, a[i].qh + 32 * half, v, l) * y[l];
                    sumi += a[i].scales[8 * half + 2 * v + g] * dot;
                }
            }
        s += ot_fp16_to_fp32(a[i].d) * b[i].d * (float)sumi;
    }
    return s;
}

#define GENERIC_TILE(name)                                                                                      \
    static void tile_##name(int64_t k, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs, int nx, \
                            float *y, int64_t ldy) {                                                            \
        for (int c = 0; c < nx; c++)                                                                            \
            for (int r = 0; r < nw; r++)                                                                        \
                y[c * ldy + r] = dot_##name(k, w + r * ws, x + c * xs);                                         \
    }
GENERIC_TILE(f32)
GENERIC_TILE(f16)
GENERIC_TILE(bf16)
GENERIC_TILE(q4_0)
GENERIC_TILE(q4_1)
GENERIC_TILE(q8_0)
GENERIC_TILE(q4_K)
GENERIC_TILE(q6_K)

void ot_register_generic_quants(struct ot_kernels *t) {
    t->tile[OT_F32] = tile_f32;
    t->tile[OT_F16] = tile_f16;
    t->tile[OT_BF16] = tile_bf16;
    t->tile[OT_Q4_0] = tile_q4_0;
    t->tile[OT_Q4_1] = tile_q4_1;
    t->tile[OT_Q8_0] = tile_q8_0;
    t->tile[OT_Q4_K] = tile_q4_K;
    t->tile[OT_Q6_K] = tile_q6_K;
    t->dequantize[OT_F32] = dequantize_f32;
    t->dequantize[OT_F16] = dequantize_f16;
    t->dequantize[OT_BF16] = dequantize_bf16;
    t->dequantize[OT_Q4_0] = dequantize_q4_0;
    t->dequantize[OT_Q4_1] = dequantize_q4_1;
    t->dequantize[OT_Q8_0] = dequantize_q8_0;
    t->dequantize[OT_Q4_K] = dequantize_q4_K;
    t->dequantize[OT_Q6_K] = dequantize_q6_K;
    t->quantize[OT_Q8_0] = quantize_q8_0;
    t->quantize[OT_Q8_1] = quantize_q8_1;
    t->quantize[OT_Q8_K] = quantize_q8_K;
}
