/* Causal attention of a group of query heads sharing one KV head, written
 * once and compiled per ISA and per KV cache element type. The including
 * file defines
 *   OT_ATTN_FN       the function's name
 *   OT_KV_T          the cache's element type (float, or uint16_t for float16)
 *   OT_DOT(a, b, n)  dot product of n floats a with n OT_KV_T b
 *   OT_AXPY(y, a, x, n)  y += a * x over n floats, x of OT_KV_T
 *   OT_SCALE(y, a, n)    y *= a over n floats
 * and, where it has faster forms over a block of keys,
 *   OT_DOTS(q, k, nk, hd, s)  s[j] = q . k[j] for nk rows k of hd OT_KV_T
 *   OT_WSUM(y, p, v, nk, hd)  y += sum_j p[j] v[j] over nk rows v of hd OT_KV_T
 *   OT_EXPSUM(s, n, m)        s[j] = exp(s[j] - m) for n scores; returns their sum
 * (otherwise they are built from OT_DOT, OT_AXPY and expf). It may include
 * this file again with other definitions.
 * Online softmax over blocks of keys: the running max and sum rescale the
 * partial output when a larger score arrives, so no buffer sized by the
 * context length is needed and every key and value row is read once per
 * group of query heads.
 */
#include <math.h>

#ifndef OT_DOTS
#define OT_DOTS(q, k, nk, hd, s)                   \
    for (int64_t j_ = 0; j_ < (nk); j_++)          \
    (s)[j_] = OT_DOT(q, (k) + j_ * (hd), hd)
#endif
#ifndef OT_WSUM
#define OT_WSUM(y, p, v, nk, hd)                   \
    for (int64_t j_ = 0; j_ < (nk); j_++)          \
    OT_AXPY(y, (p)[j_], (v) + j_ * (hd), hd)
#endif

#ifndef OT_EXPSUM
#define OT_EXPSUM ot_attn_exp_sum
#endif
#ifndef OT_ATTN_EXP_SUM_DEFINED
#define OT_ATTN_EXP_SUM_DEFINED
static inline float ot_attn_exp_sum(float *s, int64_t n, float m) {
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - m);
        sum += s[j];
    }
    return sum;
}
#endif

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
            for (int64_t h = 0; h < gn; h++) {
                OT_DOTS(qg + h * hd, k + j0 * hd, jn, hd, s[h]);
                float m = mx[h];
                for (int64_t j = 0; j < jn; j++) {
                    s[h][j] *= scale;
                    m = s[h][j] > m ? s[h][j] : m;
                }
                if (m > mx[h]) {
                    const float c = expf(mx[h] - m);
                    sum[h] *= c;
                    OT_SCALE(og + h * hd, c, hd);
                    mx[h] = m;
                }
                sum[h] += OT_EXPSUM(s[h], jn, m);
            }
            for (int64_t h = 0; h < gn; h++)
                OT_WSUM(og + h * hd, s[h], v + j0 * hd, jn, hd);
        }
        for (int64_t h = 0; h < gn; h++)
            OT_SCALE(og + h * hd, 1.0f / sum[h], hd);
    }
}

#undef OT_ATTN_FN
#undef OT_KV_T
#undef OT_DOT
#undef OT_AXPY
#undef OT_DOTS
#undef OT_WSUM
#undef OT_EXPSUM
