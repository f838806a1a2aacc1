/* Causal attention of a group of query heads sharing one KV head, written
 * once and compiled per ISA and per KV cache element type. The including
 * file defines
 *   OT_ATTN_FN       the function's name
 *   OT_KV_T          the cache's element type (float, or uint16_t for float16)
 *   OT_DOT(a, b, n)  dot product of n floats a with n OT_KV_T b
 *   OT_AXPY(y, a, x, n)  y += a * x over n floats, x of OT_KV_T
 *   OT_SCALE(y, a, n)    y *= a over n floats
 * and may include this file again with other definitions.
 * Online softmax over blocks of keys: the running max and sum rescale the
 * partial output when a larger score arrives, so no buffer sized by the
 * context length is needed and every key and value row is read once per
 * group of query heads.
 */
#include <math.h>

#ifndef OT_ATTN_KB
#define OT_ATTN_KB 64 /* keys scored per block */
#define OT_ATTN_MAXG 16 /* query heads per group handled in one pass */
#endif

static void OT_ATTN_FN(const float *q, const void *kp, const void *vp, int64_t nkeys, int64_t hd, int64_t g,
                       float scale, float *out) {
    const OT_KV_T *k = kp, *v = vp;
    for (int64_t g0 = 0; g0 < g; g0 += OT_ATTN_MAXG) {
        const int64_t gn = g - g0 < OT_ATTN_MAXG ? g - g0 : OT_ATTN_MAXG;
        const float *qg = q + g0 * hd;
        float *og = out + g0 * hd;
        float s[OT_ATTN_MAXG][OT_ATTN_KB], mx[OT_ATTN_MAXG], sum[OT_ATTN_MAXG];
        for (int64_t h = 0; h < gn; h++) {
            mx[h] = -INFINITY;
            sum[h] = 0.0f;
            memset(og + h * hd, 0, (size_t)hd * sizeof(float));
        }
        for (int64_t j0 = 0; j0 < nkeys; j0 += OT_ATTN_KB) {
            const int64_t jn = nkeys - j0 < OT_ATTN_KB ? nkeys - j0 : OT_ATTN_KB;
            for (int64_t j = 0; j < jn; j++)
                for (int64_t h = 0; h < gn; h++)
                    s[h][j] = OT_DOT(qg + h * hd, k + (j0 + j) * hd, hd) * scale;
            for (int64_t h = 0; h < gn; h++) {
                float m = mx[h];
                for (int64_t j = 0; j < jn; j++)
                    m = s[h][j] > m ? s[h][j] : m;
                if (m > mx[h]) {
                    const float c = expf(mx[h] - m);
                    sum[h] *= c;
                    OT_SCALE(og + h * hd, c, hd);
                    mx[h] = m;
                }
                for (int64_t j = 0; j < jn; j++) {
                    s[h][j] = expf(s[h][j] - m);
                    sum[h] += s[h][j];
                }
            }
            for (int64_t j = 0; j < jn; j++)
                for (int64_t h = 0; h < gn; h++)
                    OT_AXPY(og + h * hd, s[h][j], v + (j0 + j) * hd, hd);
        }
        for (int64_t h = 0; h < gn; h++)
            OT_SCALE(og + h * hd, 1.0f / sum[h], hd);
    }
}

#undef OT_ATTN_FN
#undef OT_KV_T
#undef OT_DOT
#undef OT_AXPY
