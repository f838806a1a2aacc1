/* Weight quantizers: float32 rows to GGML blocks, run once when a model is
 * converted, so portable C is fast enough and threads split the rows.
 *
 * Q8_0, Q4_0 and Q4_1 round exactly as the gguf package's numpy quantizers
 * (and llama.cpp's reference ones). Q4_K and Q6_K follow llama.cpp's
 * quantize_row_q4_K_ref / quantize_row_q6_K_ref, the quantizers it uses
 * without an importance matrix: a small search per sub-block for the scale
 * (and min) of least weighted squared error, then the scales themselves
 * quantized to 6 or 8 bits. Every float operation is written in the order
 * the numpy references (formats/quants.py) perform it, and never fused into
 * an FMA, so the two agree bit for bit. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>
#include <math.h>

#include "ot_internal.h"

void ot_register_generic_quants(struct ot_kernels *t);

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* --- 32-element blocks --------------------------------------------------- */

static void quantize_q4_0(const float *x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float amax = 0.0f, max = 0.0f; /* the value of largest magnitude, sign kept */
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        /* max maps to -8, the end of the range with one more step. */
        const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ot_fp32_to_fp16(d);
        for (int j = 0; j < QK / 2; j++) {
            const int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + QK / 2] * id + 8.5f);
            y[i].qs[j] = (uint8_t)(clampi(lo, 0, 15) | clampi(hi, 0, 15) << 4);
        }
    }
}

static void quantize_q4_1(const float *x, void *dst, int64_t n) {
    block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            min = x[j] < min ? x[j] : min;
            max = x[j] > max ? x[j] : max;
        }
        const float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ot_fp32_to_fp16(d);
        y[i].m = ot_fp32_to_fp16(min);
        for (int j = 0; j < QK / 2; j++) {
            const int lo = (int)((x[j] - min) * id + 0.5f), hi = (int)((x[j + QK / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)(clampi(lo, 0, 15) | clampi(hi, 0, 15) << 4);
        }
    }
}

/* --- K-quant helpers ----------------------------------------------------- */

/* Scale and min for n values at levels 0..nmax, weighted: start from the
 * range, then try nstep+1 scales around it and keep the least weighted
 * squared error, refitting scale and min by least squares for each
 * candidate rounding. Returns the scale; *neg_min = -min >= 0. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                           float rmin, float rdelta, int nstep) {
    uint8_t Laux[32];
    float min = x[0], max = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0.0f)
        min = 0.0f;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min), scale = 1.0f / iscale, best = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(ot_nearest_int(iscale * (x[i] - min)), 0, nmax);
        const float diff = scale * (float)L[i] + min - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(ot_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0.0f))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0.0f) {
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * (float)Laux[i] + this_min - x[i];
            err += w[i] * (diff * diff);
        }
        if (err < best) {
            memcpy(L, Laux, (size_t)n);
            best = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* Signed scale for n values at levels -nmax..nmax-1, weighted by x^2: the
 * largest magnitude maps to -nmax, then 18 nearby scales are tried and the
 * one of least weighted squared error kept. L gets levels + nmax. */
static float fit_scale_signed(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max, sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clampi(ot_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(ot_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(ot_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* --- 256-element super-blocks -------------------------------------------- */

static void quantize_q4_K(const float *x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        float w[32], scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 8; j++) {
            const float *xj = x + 32 * j;
            float sum_x2 = 0.0f;
            for (int l = 0; l < 32; l++)
                sum_x2 += xj[l] * xj[l];
            /* Weights favour large values, floored by the sub-block's RMS. */
            const float av_x = sqrtf(sum_x2 / 32.0f);
            for (int l = 0; l < 32; l++)
                w[l] = av_x + fabsf(xj[l]);
            scales[j] = fit_scale_min(32, 15, xj, w, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
            max_scale = scales[j] > max_scale ? scales[j] : max_scale;
            max_min = mins[j] > max_min ? mins[j] : max_min;
        }
        const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
        const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
        memset(y[i].scales, 0, sizeof y[i].scales);
        for (int j = 0; j < 8; j++) {
            /* llama.cpp stores the rounded value in a uint8_t before clamping to 63. */
            const uint8_t ls0 = (uint8_t)ot_nearest_int(inv_scale * scales[j]);
            const uint8_t lm0 = (uint8_t)ot_nearest_int(inv_min * mins[j]);
            const uint8_t ls = ls0 < 63 ? ls0 : 63, lm = lm0 < 63 ? lm0 : 63;
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | (lm & 0xF) << 4);
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = ot_fp32_to_fp16(max_scale / 63.0f);
        y[i].dmin = ot_fp32_to_fp16(max_min / 63.0f);
        /* Requantize against the scales as stored, so the rounding sees what dequantization will. */
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            ot_q4k_scale_min(y[i].scales, j, &sc, &mn);
            const float d = ot_fp16_to_fp32(y[i].d) * (float)sc;
            if (d == 0.0f)
                continue;
            const float dm = ot_fp16_to_fp32(y[i].dmin) * (float)mn;
            for (int l = 0; l < 32; l++)
                L[32 * j + l] = (uint8_t)clampi(ot_nearest_int((x[32 * j + l] + dm) / d), 0, 15);
        }
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * j + l] = (uint8_t)(L[64 * j + l] | L[64 * j + 32 + l] << 4);
    }
}

static void quantize_q6_K(const float *x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[QK_K / 16], max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = fit_scale_signed(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs_scale < 1e-15f)
            continue;
        const float iscale = -128.0f / max_scale;
        y[i].d = ot_fp32_to_fp16(1.0f / iscale);
        for (int j = 0; j < QK_K / 16; j++) {
            const int s = ot_nearest_int(iscale * scales[j]);
            y[i].scales[j] = (int8_t)(s < 127 ? s : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = ot_fp16_to_fp32(y[i].d) * (float)y[i].scales[j];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clampi(ot_nearest_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        /* Each 128-element half: low nibbles of values v and v+64 share ql bytes, the two high bits of
         * four values (l, l+32, l+64, l+96) share a qh byte. */
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t *ql = y[i].ql + 64 * h, *qh = y[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | (Lh[l + 64] & 0xF) << 4);
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | (Lh[l + 96] & 0xF) << 4);
                qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 |
                                  (Lh[l + 96] >> 4) << 6);
            }
        }
    }
}

/* --- entry point ------------------------------------------------------------ */

struct quantize_job {
    ot_quant_fn fn;
    const float *x;
    int64_t n;
    size_t row_bytes;
    uint8_t *dst;
};

static void quantize_rows(void *ctx, int64_t begin, int64_t end) {
    const struct quantize_job *job = ctx;
    for (int64_t r = begin; r < end; r++)
        job->fn(job->x + r * job->n, job->dst + (size_t)r * job->row_bytes, job->n);
}

int ot_quantize_weights(int type, const float *x, int64_t nrows, int64_t n, void *dst) {
    ot_quant_fn fn;
    switch (type) {
    case OT_Q4_0: fn = quantize_q4_0; break;
    case OT_Q4_1: fn = quantize_q4_1; break;
    case OT_Q4_K: fn = quantize_q4_K; break;
    case OT_Q6_K: fn = quantize_q6_K; break;
    case OT_Q8_0: {
        /* The generic activation quantizer is llama.cpp's reference Q8_0 rounding; ISA versions may round ties
         * differently, so take it from the generic table, not the active one. */
        struct ot_kernels generic;
        ot_register_generic_quants(&generic);
        fn = generic.quantize[OT_Q8_0];
        break;
    }
    default: return -1;
    }
    if (nrows < 0 || n <= 0 || n % ot_block_size(type))
        return -1;
    struct quantize_job job = {fn, x, n, ot_row_bytes(type, n), dst};
    /* A K-quant row costs about 50 float operations per element: count that as work. */
    ot_parallel_for(nrows, nrows * n * 50, quantize_rows, &job);
    return 0;
}
