/* arm64 LLM kernels, one source compiled three times (CMakeLists.txt):
 * neon (Armv8.0 Advanced SIMD: widening multiplies), neon_dotprod (SDOT)
 * and neon_i8mm (SMMLA on pairs of weight rows x pairs of activation rows,
 * SDOT where a tile has a single row).
 *
 * Every output (weight row r, activation row c) has one float accumulator
 * that takes, block after block in order, the block's exact integer dot
 * product times its scale: acc = fma(total, d_w * d_x, acc). The variants
 * and tile shapes differ only in how they form the integer totals, which are
 * exact, so all three variants give the same bits and no result depends on
 * the tile shape (a token's logits do not depend on which tokens share its
 * step). Lane c of a row's float32x4 accumulator is activation row c.
 */
#include <arm_neon.h>
#include <math.h>

#include "ot_internal.h"

#define FN(name) OT_PASTE(name, OT_ISA_SUFFIX)
#define OT_INLINE static inline __attribute__((always_inline))
#define OT_MAXC 4 /* activation rows per tile: the lanes of one accumulator */

#ifdef __ARM_FEATURE_MATMUL_INT8
#define OT_MMLA 1
#else
#define OT_MMLA 0
#endif

OT_INLINE float half(uint16_t h) {
    __fp16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}

OT_INLINE uint16_t to_half(float f) {
    const __fp16 v = (__fp16)f; /* FCVT: round to nearest even, as ot_fp32_to_fp16 */
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}

/* Four float16 values as floats (FCVTL, exact). */
OT_INLINE float32x4_t load_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

/* acc + a . b over 16 int8 pairs, spread over the four lanes (only the lane
 * total is used). Products of int8 fit int16, so the widening form is exact. */
OT_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#ifdef __ARM_FEATURE_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* The lane totals of four vectors, as the four lanes of one. */
OT_INLINE int32x4_t totals4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

/* --- integer totals of a tile ---------------------------------------------
 *
 * A block is walked in units of 32 elements, two int8x16 halves each, with
 * an integer scale per half (SC_NONE: none; SC_UNIT: one for the unit;
 * SC_HALF: one per half). isum_tot gives, per weight row, the block's totals
 * over activation rows in the lanes. */

enum { SC_NONE, SC_UNIT, SC_HALF };

struct isum {
    int32x4_t s[4][OT_MAXC]; /* per (r, c); with SMMLA per (row pair, column pair), lanes r0c0 r0c1 r1c0 r1c1 */
};

/* SMMLA needs two weight rows and two activation rows; a third activation
 * row is paired with zeros. */
#define USE_MMLA(NR, NC) (OT_MMLA && (NR) % 2 == 0 && (NC) > 1)

OT_INLINE void isum_zero(struct isum *S) {
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < OT_MAXC; c++)
            S->s[r][c] = vdupq_n_s32(0);
}

#if OT_MMLA
/* Rows a and b as the 2 x 8 matrices SMMLA takes: bytes 0..7 then 8..15. */
OT_INLINE void pair_rows(int8x16_t a, int8x16_t b, int8x16_t *lo, int8x16_t *hi) {
    *lo = vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
    *hi = vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
#endif

/* Add one unit: w[r][h] weight halves, x[c][h] activation halves, sc[r][h]. */
OT_INLINE void isum_add(struct isum *S, const int NR, const int NC, const int8x16_t w[][2], const int8x16_t x[][2],
                        const int sc[][2], const int mode) {
#if OT_MMLA
    if (USE_MMLA(NR, NC)) {
        int8x16_t xp[2][2][2]; /* [column pair][half][lo, hi] */
        for (int cp = 0; cp < 2 && 2 * cp < NC; cp++)
            for (int h = 0; h < 2; h++)
                pair_rows(x[2 * cp][h], 2 * cp + 1 < NC ? x[2 * cp + 1][h] : vdupq_n_s8(0), &xp[cp][h][0],
                          &xp[cp][h][1]);
        for (int rp = 0; rp < NR / 2; rp++) {
            int8x16_t wp[2][2];
            for (int h = 0; h < 2; h++)
                pair_rows(w[2 * rp][h], w[2 * rp + 1][h], &wp[h][0], &wp[h][1]);
            for (int cp = 0; cp < 2 && 2 * cp < NC; cp++) {
                int32x4_t *s = &S->s[rp][cp];
                if (mode == SC_NONE) {
                    for (int h = 0; h < 2; h++)
                        for (int j = 0; j < 2; j++)
                            *s = vmmlaq_s32(*s, wp[h][j], xp[cp][h][j]);
                    continue;
                }
                /* scales per lane: r0 r0 r1 r1 */
                int32x4_t t[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
                for (int h = 0; h < 2; h++)
                    for (int j = 0; j < 2; j++)
                        t[mode == SC_HALF ? h : 0] = vmmlaq_s32(t[mode == SC_HALF ? h : 0], wp[h][j], xp[cp][h][j]);
                for (int h = 0; h < (mode == SC_HALF ? 2 : 1); h++)
                    *s = vmlaq_s32(*s, t[h], vcombine_s32(vdup_n_s32(sc[2 * rp][h]), vdup_n_s32(sc[2 * rp + 1][h])));
            }
        }
        return;
    }
#endif
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++) {
            int32x4_t *s = &S->s[r][c];
            if (mode == SC_NONE) {
                *s = dot16(dot16(*s, w[r][0], x[c][0]), w[r][1], x[c][1]);
            } else if (mode == SC_UNIT) {
                const int32x4_t t = dot16(dot16(vdupq_n_s32(0), w[r][0], x[c][0]), w[r][1], x[c][1]);
                *s = vmlaq_n_s32(*s, t, sc[r][0]);
            } else {
                *s = vmlaq_n_s32(*s, dot16(vdupq_n_s32(0), w[r][0], x[c][0]), sc[r][0]);
                *s = vmlaq_n_s32(*s, dot16(vdupq_n_s32(0), w[r][1], x[c][1]), sc[r][1]);
            }
        }
}

OT_INLINE int32x4_t isum_tot(const struct isum *S, const int NR, const int NC, int r) {
#if OT_MMLA
    if (USE_MMLA(NR, NC)) {
        const int64x2_t a = vreinterpretq_s64_s32(S->s[r / 2][0]), b = vreinterpretq_s64_s32(S->s[r / 2][1]);
        return vreinterpretq_s32_s64(r % 2 ? vzip2q_s64(a, b) : vzip1q_s64(a, b));
    }
#endif
    const int32x4_t z = vdupq_n_s32(0);
    return totals4(S->s[r][0], NC > 1 ? S->s[r][1] : z, NC > 2 ? S->s[r][2] : z, NC > 3 ? S->s[r][3] : z);
}

/* --- block kernels ---------------------------------------------------------- */

#define KERNEL_ARGS int64_t k, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, int64_t ldy

#define ACC_DECL(NR)                              \
    float32x4_t acc[4];                           \
    for (int r = 0; r < NR; r++)                  \
        acc[r] = vdupq_n_f32(0.0f)

#define STORE_ACC(NR, NC)                         \
    for (int r = 0; r < NR; r++)                  \
        for (int c = 0; c < NC; c++)              \
            y[c * ldy + r] = acc[r][c];

/* 16 packed bytes -> low nibbles (elements 0..15) and high nibbles (16..31). */
OT_INLINE void nibbles(const uint8_t *qs, int8x16_t out[2], int8_t offset) {
    const uint8x16_t b = vld1q_u8(qs);
    out[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0xF))), vdupq_n_s8(offset));
    out[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), vdupq_n_s8(offset));
}

OT_INLINE void load32(const int8_t *p, int8x16_t out[2]) {
    out[0] = vld1q_s8(p);
    out[1] = vld1q_s8(p + 16);
}

/* Q4_0, Q4_1, Q8_0: one 32-element unit per block. Q4_0 is (q - 8) d;
 * Q4_1 adds m_w s_x per block; Q8_0 takes its bytes as they are. */
#define LEGACY_KERNEL(name, wblock, xblock, UNPACK, MINS)                                        \
    OT_INLINE void name##_kern(KERNEL_ARGS, const int NR, const int NC) {                        \
        ACC_DECL(NR);                                                                            \
        for (int64_t i = 0; i < k / QK; i++) {                                                   \
            int8x16_t xq[OT_MAXC][2], wq[4][2];                                                  \
            float32x4_t dx = vdupq_n_f32(0.0f);                                                  \
            MINS(float32x4_t sx = vdupq_n_f32(0.0f));                                            \
            for (int c = 0; c < NC; c++) {                                                       \
                const xblock *b = (const xblock *)(x + c * xs) + i;                              \
                load32(b->qs, xq[c]);                                                            \
                dx[c] = half(b->d);                                                              \
                MINS(sx[c] = half(b->s));                                                        \
            }                                                                                    \
            struct isum S;                                                                       \
            isum_zero(&S);                                                                       \
            for (int r = 0; r < NR; r++)                                                         \
                UNPACK(((const wblock *)(w + r * ws) + i), wq[r]);                               \
            isum_add(&S, NR, NC, (const int8x16_t(*)[2])wq, (const int8x16_t(*)[2])xq, NULL, SC_NONE); \
            for (int r = 0; r < NR; r++) {                                                       \
                const wblock *a = (const wblock *)(w + r * ws) + i;                              \
                acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(isum_tot(&S, NR, NC, r)), vmulq_n_f32(dx, half(a->d))); \
                MINS(acc[r] = vfmaq_n_f32(acc[r], sx, half(a->m)));                              \
            }                                                                                    \
        }                                                                                        \
        STORE_ACC(NR, NC);                                                                       \
    }
#define UNPACK_Q4_0(a, out) nibbles((a)->qs, out, 8)
#define UNPACK_Q4_1(a, out) nibbles((a)->qs, out, 0)
#define UNPACK_Q8_0(a, out) load32((a)->qs, out)
#define WITH_MINS(stmt) stmt
#define NO_MINS(stmt)
LEGACY_KERNEL(q4_0, block_q4_0, block_q8_0, UNPACK_Q4_0, NO_MINS)
LEGACY_KERNEL(q4_1, block_q4_1, block_q8_1, UNPACK_Q4_1, WITH_MINS)
LEGACY_KERNEL(q8_0, block_q8_0, block_q8_0, UNPACK_Q8_0, NO_MINS)

/* Q4_K and Q6_K against Q8_K: eight 32-element units per super-block with
 * integer scales folded into the totals; the float part per block follows. */
#define KQUANT_KERNEL(name, wblock, PREPARE, UNPACK, MODE, FINISH)                               \
    OT_INLINE void name##_kern(KERNEL_ARGS, const int NR, const int NC) {                        \
        ACC_DECL(NR);                                                                            \
        for (int64_t i = 0; i < k / QK_K; i++) {                                                 \
            const block_q8_K *b[OT_MAXC];                                                        \
            float32x4_t dx = vdupq_n_f32(0.0f);                                                  \
            for (int c = 0; c < NC; c++) {                                                       \
                b[c] = (const block_q8_K *)(x + c * xs) + i;                                     \
                dx[c] = b[c]->d;                                                                 \
            }                                                                                    \
            const wblock *a[4];                                                                  \
            int sc[4][8][2];                                                                     \
            for (int r = 0; r < NR; r++) {                                                       \
                a[r] = (const wblock *)(w + r * ws) + i;                                         \
                PREPARE(a[r], sc[r]);                                                            \
            }                                                                                    \
            struct isum S;                                                                       \
            isum_zero(&S);                                                                       \
            for (int u = 0; u < 8; u++) {                                                        \
                int8x16_t xq[OT_MAXC][2], wq[4][2];                                              \
                int usc[4][2];                                                                   \
                for (int c = 0; c < NC; c++)                                                     \
                    load32(b[c]->qs + 32 * u, xq[c]);                                            \
                for (int r = 0; r < NR; r++) {                                                   \
                    UNPACK(a[r], u, wq[r]);                                                      \
                    usc[r][0] = sc[r][u][0];                                                     \
                    usc[r][1] = sc[r][u][1];                                                     \
                }                                                                                \
                isum_add(&S, NR, NC, (const int8x16_t(*)[2])wq, (const int8x16_t(*)[2])xq,       \
                         (const int(*)[2])usc, MODE);                                            \
            }                                                                                    \
            for (int r = 0; r < NR; r++) {                                                       \
                const float32x4_t d = vmulq_n_f32(dx, half(a[r]->d));                            \
                acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(isum_tot(&S, NR, NC, r)), d);           \
                FINISH;                                                                          \
            }                                                                                    \
        }                                                                                        \
        STORE_ACC(NR, NC);                                                                       \
    }

/* Q4_K: 6-bit scale and min per unit; unit u is the low (u even) or high
 * nibbles of bytes 32 (u / 2) .. + 31. */
OT_INLINE void q4_K_prepare(const block_q4_K *a, int sc[8][2]) {
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        ot_q4k_scale_min(a->scales, j, &s, &m);
        sc[j][0] = sc[j][1] = s;
    }
}

OT_INLINE void q4_K_unpack(const block_q4_K *a, int u, int8x16_t out[2]) {
    for (int h = 0; h < 2; h++) {
        const uint8x16_t v = vld1q_u8(a->qs + 32 * (u / 2) + 16 * h);
        out[h] = vreinterpretq_s8_u8(u % 2 ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0xF)));
    }
}

/* The mins term d_x dmin sum_j min_j (bsum_2j + bsum_2j+1), for every c. */
OT_INLINE int32x4_t q4_K_mins(const block_q4_K *a, const block_q8_K *const *b, const int NC) {
    int16_t mn[8];
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        ot_q4k_scale_min(a->scales, j, &s, &m);
        mn[j] = m;
    }
    const int16x8_t mv = vld1q_s16(mn);
    int32x4_t p[OT_MAXC];
    for (int c = 0; c < OT_MAXC; c++) {
        p[c] = vdupq_n_s32(0);
        if (c < NC) {
            /* pair sums of 16-element sums: at most 2 * 16 * 128, int16 */
            const int16x8_t pairs = vpaddq_s16(vld1q_s16(b[c]->bsums), vld1q_s16(b[c]->bsums + 8));
            p[c] = vmlal_high_s16(vmull_s16(vget_low_s16(mv), vget_low_s16(pairs)), mv, pairs);
        }
    }
    return totals4(p[0], p[1], p[2], p[3]);
}

#define Q4_K_FINISH \
    acc[r] = vfmsq_f32(acc[r], vcvtq_f32_s32(q4_K_mins(a[r], b, NC)), vmulq_n_f32(dx, half(a[r]->dmin)))
KQUANT_KERNEL(q4_K, block_q4_K, q4_K_prepare, q4_K_unpack, SC_UNIT, Q4_K_FINISH)

/* Q6_K: int8 scale per 16 elements; unit u = 4 h + v of half h takes four
 * bits of ql (bytes 32 (v % 2) .., low nibbles for v < 2) and bits 2v, 2v+1
 * of qh, less 32. */
OT_INLINE void q6_K_prepare(const block_q6_K *a, int sc[8][2]) {
    for (int u = 0; u < 8; u++) {
        sc[u][0] = a->scales[2 * u];
        sc[u][1] = a->scales[2 * u + 1];
    }
}

OT_INLINE void q6_K_unpack(const block_q6_K *a, int u, int8x16_t out[2]) {
    const int h = u / 4, v = u % 4;
    for (int j = 0; j < 2; j++) {
        const uint8x16_t l = vld1q_u8(a->ql + 64 * h + 32 * (v % 2) + 16 * j);
        const uint8x16_t qh = vld1q_u8(a->qh + 32 * h + 16 * j);
        const uint8x16_t lo = v < 2 ? vandq_u8(l, vdupq_n_u8(0xF)) : vshrq_n_u8(l, 4);
        /* bits 2v, 2v+1 of qh moved to bits 4, 5 */
        const uint8x16_t hi = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(4 - 2 * v))), vdupq_n_u8(0x30));
        out[j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hi)), vdupq_n_s8(32));
    }
}
KQUANT_KERNEL(q6_K, block_q6_K, q6_K_prepare, q6_K_unpack, SC_HALF, (void)0)

/* --- float weights: four weights per step against float32 activations. */
OT_INLINE float32x4_t wload_f32(const uint8_t *p, int64_t i) { return vld1q_f32((const float *)p + i); }
OT_INLINE float32x4_t wload_f16(const uint8_t *p, int64_t i) { return load_f16x4((const uint16_t *)p + i); }
OT_INLINE float32x4_t wload_bf16(const uint8_t *p, int64_t i) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)p + i), 16));
}
OT_INLINE float wat_f32(const uint8_t *p, int64_t i) { return ((const float *)p)[i]; }
OT_INLINE float wat_f16(const uint8_t *p, int64_t i) { return half(((const uint16_t *)p)[i]); }
OT_INLINE float wat_bf16(const uint8_t *p, int64_t i) { return ot_bf16_to_fp32(((const uint16_t *)p)[i]); }

/* One vector accumulator per output, summed across lanes at the end, then a
 * scalar tail for k that is not a multiple of 4. */
#define FLOAT_KERNEL(name)                                                                          \
    OT_INLINE void name##_kern(KERNEL_ARGS, const int NR, const int NC) {                           \
        float32x4_t fa[4][OT_MAXC];                                                                 \
        for (int r = 0; r < NR; r++)                                                                \
            for (int c = 0; c < NC; c++)                                                            \
                fa[r][c] = vdupq_n_f32(0.0f);                                                       \
        for (int64_t i = 0; i + 4 <= k; i += 4) {                                                   \
            float32x4_t xv[OT_MAXC];                                                                \
            for (int c = 0; c < NC; c++)                                                            \
                xv[c] = vld1q_f32((const float *)(x + c * xs) + i);                                 \
            for (int r = 0; r < NR; r++) {                                                          \
                const float32x4_t wv = wload_##name(w + r * ws, i);                                 \
                for (int c = 0; c < NC; c++)                                                        \
                    fa[r][c] = vfmaq_f32(fa[r][c], wv, xv[c]);                                      \
            }                                                                                       \
        }                                                                                           \
        for (int r = 0; r < NR; r++)                                                                \
            for (int c = 0; c < NC; c++) {                                                          \
                float s = vaddvq_f32(fa[r][c]);                                                     \
                for (int64_t j = k / 4 * 4; j < k; j++)                                             \
                    s += wat_##name(w + r * ws, j) * ((const float *)(x + c * xs))[j];              \
                y[c * ldy + r] = s;                                                                 \
            }                                                                                       \
    }
FLOAT_KERNEL(f32)
FLOAT_KERNEL(f16)
FLOAT_KERNEL(bf16)

/* The tile entry point of a kernel: 4-row tiles, then single rows, each
 * against up to OT_MAXC activation rows. A single activation row (decode)
 * takes weight rows one by one, streaming each row once. */
#define KCALL(name, NR, nc)                                                          \
    switch (nc) {                                                                    \
    case 1: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, 1); break;      \
    case 2: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, 2); break;      \
    case 3: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, 3); break;      \
    default: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, 4); break;     \
    }
#define TILE_ENTRY(name)                                                                                   \
    static void name##_tile(int64_t k, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs, \
                            int nx, float *y, int64_t ldy) {                                               \
        for (int c = 0; c < nx; c += OT_MAXC) {                                                            \
            const int nc = nx - c < OT_MAXC ? nx - c : OT_MAXC;                                            \
            const uint8_t *xc = x + c * xs;                                                                \
            float *yc = y + c * ldy;                                                                       \
            int r = 0;                                                                                     \
            for (; nc > 1 && r + 4 <= nw; r += 4)                                                          \
                KCALL(name, 4, nc)                                                                         \
            for (; r < nw; r++)                                                                            \
                KCALL(name, 1, nc)                                                                         \
        }                                                                                                  \
    }
TILE_ENTRY(q4_0)
TILE_ENTRY(q4_1)
TILE_ENTRY(q8_0)
TILE_ENTRY(q4_K)
TILE_ENTRY(q6_K)
TILE_ENTRY(f32)
TILE_ENTRY(f16)
TILE_ENTRY(bf16)

/* --- activation quantization: the generic C rounding, four lanes at a time.
 * FCVTAS rounds half away from zero (roundf), FCVTNS half to even (GGML's
 * nearest_int); both are exact conversions of the same float products. */

/* Four int32x4 (each lane in int8 range) -> 16 int8 in order. */
OT_INLINE int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b))),
                       vmovn_s16(vcombine_s16(vmovn_s32(c), vmovn_s32(d))));
}

/* One 32-element block as Q8_0 rounds it; returns sum(q) and d. */
OT_INLINE int q8_block(const float *x, int8_t *qs, float *dout) {
    float32x4_t v[8], amax = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; j++) {
        v[j] = vld1q_f32(x + 4 * j);
        amax = vmaxq_f32(amax, vabsq_f32(v[j]));
    }
    const float d = vmaxvq_f32(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t q[8], sum = vdupq_n_s32(0);
    for (int j = 0; j < 8; j++) {
        q[j] = vcvtaq_s32_f32(vmulq_n_f32(v[j], id));
        sum = vaddq_s32(sum, q[j]);
    }
    vst1q_s8(qs, narrow16(q[0], q[1], q[2], q[3]));
    vst1q_s8(qs + 16, narrow16(q[4], q[5], q[6], q[7]));
    *dout = d;
    return vaddvq_s32(sum);
}

static void quantize_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        float d;
        q8_block(x + i * QK, y[i].qs, &d);
        y[i].d = to_half(d);
    }
}

static void quantize_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        float d;
        const int sum = q8_block(x + i * QK, y[i].qs, &d);
        y[i].d = to_half(d);
        y[i].s = to_half((float)sum * d);
    }
}

static void quantize_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t amax = vdupq_n_f32(0.0f);
        for (int j = 0; j < QK_K; j += 4)
            amax = vmaxq_f32(amax, vabsq_f32(vld1q_f32(x + j)));
        const float a = vmaxvq_f32(amax);
        if (a == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int j = 0; /* the first element of largest magnitude, with its sign */
        while (fabsf(x[j]) != a)
            j++;
        const float iscale = -127.0f / x[j];
        for (j = 0; j < QK_K; j += 16) {
            int32x4_t q[4];
            for (int v = 0; v < 4; v++)
                q[v] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4 * v), iscale)), vdupq_n_s32(127));
            const int8x16_t q8 = narrow16(q[0], q[1], q[2], q[3]);
            vst1q_s8(y[i].qs + j, q8);
            y[i].bsums[j / 16] = (int16_t)vaddlvq_s8(q8);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* --- attention row primitives: float queries and outputs against a KV
 * cache row of float32 or float16. */

/* vdot_<kv> and vaxpy_<kv> over a cache row of element type T: LOAD4 reads
 * four elements as floats, CONV one. */
#define KV_ROW_OPS(kv, T, LOAD4, CONV)                                                        \
    OT_INLINE float vdot_##kv(const float *a, const T *b, int64_t n) {                          \
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);                           \
        int64_t i = 0;                                                                        \
        for (; i + 8 <= n; i += 8) {                                                          \
            s0 = vfmaq_f32(s0, vld1q_f32(a + i), LOAD4(b + i));                               \
            s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), LOAD4(b + i + 4));                       \
        }                                                                                     \
        for (; i + 4 <= n; i += 4)                                                            \
            s0 = vfmaq_f32(s0, vld1q_f32(a + i), LOAD4(b + i));                               \
        float s = vaddvq_f32(vaddq_f32(s0, s1));                                              \
        for (; i < n; i++)                                                                    \
            s += a[i] * CONV(b[i]);                                                           \
        return s;                                                                             \
    }                                                                                         \
    OT_INLINE void vaxpy_##kv(float *y, float a, const T *x, int64_t n) {                      \
        int64_t i = 0;                                                                        \
        for (; i + 4 <= n; i += 4)                                                            \
            vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), LOAD4(x + i), a));                 \
        for (; i < n; i++)                                                                    \
            y[i] += a * CONV(x[i]);                                                           \
    }
#define AS_FLOAT(x) (x)
KV_ROW_OPS(f32, float, vld1q_f32, AS_FLOAT)
KV_ROW_OPS(f16, uint16_t, load_f16x4, half)

OT_INLINE void vscale(float *y, float a, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++)
        y[i] *= a;
}

#define OT_SCALE vscale
#define OT_ATTN_FN attention_f32
#define OT_KV_T float
#define OT_DOT vdot_f32
#define OT_AXPY vaxpy_f32
#include "ot_attn_impl.h"
#define OT_ATTN_FN attention_f16
#define OT_KV_T uint16_t
#define OT_DOT vdot_f16
#define OT_AXPY vaxpy_f16
#include "ot_attn_impl.h"

/* --- registration ---------------------------------------------------------- */

#define DECLARE_VISION(isa) OT_DECLARE_VISION(isa)
#define SET_VISION(t, isa) OT_SET_VISION(t, isa)
DECLARE_VISION(OT_ISA_SUFFIX)
void FN(ot_register_montecarlo)(struct ot_kernels *t);

void FN(ot_register)(struct ot_kernels *t) {
    t->tile[OT_Q4_0] = q4_0_tile;
    t->tile[OT_Q4_1] = q4_1_tile;
    t->tile[OT_Q8_0] = q8_0_tile;
    t->tile[OT_Q4_K] = q4_K_tile;
    t->tile[OT_Q6_K] = q6_K_tile;
    t->tile[OT_F32] = f32_tile;
    t->tile[OT_F16] = f16_tile;
    t->tile[OT_BF16] = bf16_tile;
    t->quantize[OT_Q8_0] = quantize_q8_0;
    t->quantize[OT_Q8_1] = quantize_q8_1;
    t->quantize[OT_Q8_K] = quantize_q8_K;
    t->attention_f32 = attention_f32;
    t->attention_f16 = attention_f16;
    SET_VISION(t, OT_ISA_SUFFIX);
    FN(ot_register_montecarlo)(t);
}
