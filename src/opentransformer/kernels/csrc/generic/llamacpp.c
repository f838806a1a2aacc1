/* llama.cpp's Q4_1 / Q8_0 block product in portable C (the x86 kernels
 * compute the same lanes with AVX2): per block, the 32 integer products are
 * summed in 8 lanes of 4 consecutive elements, and lane l += (d_w * d_x) *
 * isum_l by fused multiply-add; the lanes are added pairwise at the end, and
 * Q4_1 adds sum(m_w * s_x), accumulated in float. llamacpp_arith.c says why. */
#include <math.h>

#include "ot_internal.h"

#define LANES 8
#define TOKENS 4 /* activation rows per pass over a weight block */

static void llamacpp_rows(int type, const uint8_t *w, size_t wrow, int64_t r0, int64_t r1, const uint8_t *x,
                          size_t xrow, const float *xds, int64_t m, int64_t k, float *y, int64_t ldy) {
    const int64_t nb = k / QK;
    const int q4_1 = type == OT_Q4_1;
    const size_t xblock = q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * wrow;
        for (int64_t t0 = 0; t0 < m; t0 += TOKENS) {
            const int nt = m - t0 < TOKENS ? (int)(m - t0) : TOKENS;
            float acc[TOKENS][LANES] = {{0}}, summs[TOKENS] = {0};
            for (int64_t b = 0; b < nb; b++) {
                int8_t wq[QK];
                float dw, mw = 0.0f;
                if (q4_1) {
                    const block_q4_1 *wb = (const block_q4_1 *)wr + b;
                    for (int i = 0; i < QK / 2; i++) {
                        wq[i] = (int8_t)(wb->qs[i] & 15);
                        wq[i + QK / 2] = (int8_t)(wb->qs[i] >> 4);
                    }
                    dw = ot_fp16_to_fp32(wb->d);
                    mw = ot_fp16_to_fp32(wb->m);
                } else {
                    const block_q8_0 *wb = (const block_q8_0 *)wr + b;
                    memcpy(wq, wb->qs, QK);
                    dw = ot_fp16_to_fp32(wb->d);
                }
                for (int j = 0; j < nt; j++) {
                    const int8_t *xq = (const int8_t *)(x + (t0 + j) * xrow + b * xblock) + (q4_1 ? 4 : 2);
                    const float *ds = xds + 2 * ((t0 + j) * nb + b);
                    const float dd = dw * ds[0];
                    for (int l = 0; l < LANES; l++) {
                        const int i = 4 * l;
                        const int32_t isum = wq[i] * xq[i] + wq[i + 1] * xq[i + 1] + wq[i + 2] * xq[i + 2] +
                                             wq[i + 3] * xq[i + 3];
                        acc[j][l] = fmaf(dd, (float)isum, acc[j][l]);
                    }
                    if (q4_1)
                        summs[j] += mw * ds[1];
                }
            }
            for (int j = 0; j < nt; j++)
                y[(t0 + j) * ldy + r] = ot_pairwise_total(acc[j], LANES) + summs[j];
        }
    }
}

#define F16_LANES 16
#define F16_MAX_REGS 4

static float dot_f16_row(const float *a, const uint16_t *b, int64_t n, int regs) {
    float acc[F16_MAX_REGS * F16_LANES] = {0};
    const int64_t step = (int64_t)regs * F16_LANES, body = n - n % step;
    for (int64_t i = 0; i < body; i++)
        acc[i % step] = fmaf(a[i], ot_fp16_to_fp32(b[i]), acc[i % step]);
    double total = ot_pairwise_total(acc, (int)step);
    for (int64_t i = body; i < n; i++)
        total += (double)(a[i] * ot_fp16_to_fp32(b[i]));
    return (float)total;
}

static void dot_f16(const float *a, const uint16_t *b, int64_t rows, int64_t n, int regs, float *out) {
    for (int64_t r = 0; r < rows; r++)
        out[r] = dot_f16_row(a, b + r * n, n, regs);
}

static void axpy_f16(float *acc, const uint16_t *v, float p, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        acc[i] = fmaf(ot_fp16_to_fp32(v[i]), p, acc[i]);
}

void ot_register_generic_llamacpp(struct ot_kernels *t) {
    t->llamacpp_rows = llamacpp_rows;
    t->llamacpp_dot_f16 = dot_f16;
    t->llamacpp_axpy_f16 = axpy_f16;
}
