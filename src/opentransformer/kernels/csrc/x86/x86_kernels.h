/* x86 kernels, written once on 256-bit vectors and compiled per ISA:
 * x86/avx2_kernels.c (AVX2 + FMA + F16C) and x86/avx512_kernels.c (built
 * twice, with and without AVX-512 VNNI). 256-bit vectors are one 32-element
 * block wide, which keeps the block math simple, and on cores that split
 * 512-bit operations in two (Zen 4) they run at the same rate. The AVX-512
 * builds gain 32 vector registers (bigger register tiles) and, with VNNI,
 * vpdpbusd in place of the maddubs/madd pair; there the 32-element block
 * formats also get 512-bit kernels (two rows per vector for decode steps,
 * sixteen-row panels for prompts).
 *
 * A tile kernel computes NR weight rows x NC activation rows with NR * NC
 * float accumulators; it is inlined with constant NR and NC so they live in
 * registers. Integer dot products are exact; only the float combination of
 * the per-block results differs from llama.cpp's order.
 */
#include <immintrin.h>
#include <math.h>

#include "ot_internal.h"

#define FN(name) OT_PASTE(name, OT_ISA_SUFFIX)
#define OT_INLINE static inline __attribute__((always_inline))

#ifdef __AVX512F__
#define OT_MAXC 4 /* activation rows per register tile */
#else
#define OT_MAXC 2 /* 16 registers: a 4 x 2 tile */
#endif

OT_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

OT_INLINE float half(uint16_t h) { return _cvtsh_ss(h); }

/* acc + per 4-byte group sum of u (unsigned bytes) * s (signed bytes). The
 * maddubs form saturates at int16, out of reach for the operand ranges here
 * (|u| <= 128, |s| <= 127 pairs sum to at most 32512). */
OT_INLINE __m256i dot_us(__m256i acc, __m256i u, __m256i s) {
#ifdef __AVX512VNNI__
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

OT_INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 16 bytes of packed nibbles -> 32 values: low nibbles first, as Q4_0/Q4_1
 * order elements 0..15 and 16..31. */
OT_INLINE __m256i nibbles16(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_setr_m128i(b, _mm_srli_epi16(b, 4)), _mm256_set1_epi8(0xF));
}

/* Accumulators acc[r][c], one per (weight row, activation row), each
 * summing its blocks in order: a result does not depend on the tile shape,
 * so a token's logits are the same whichever tokens share its step. */
#define ACC_DECL(NR, NC)                          \
    __m256 acc[4][OT_MAXC];                       \
    for (int r = 0; r < NR; r++)                  \
        for (int c = 0; c < NC; c++)              \
            acc[r][c] = _mm256_setzero_ps()

#define FOR_BLOCKS(nb) for (int64_t i = 0; i < (nb); i++)

#define STORE_ACC(NR, NC, extra)                  \
    for (int r = 0; r < NR; r++)                  \
        for (int c = 0; c < NC; c++)              \
            y[c * ldy + r] = hsum(acc[r][c]) + (extra);

#define KERNEL_ARGS int64_t k, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, int64_t ldy

/* Several weight rows read in lockstep defeat the hardware prefetchers
 * (measured: a 30 MB Q8_0 matrix streamed at 5 GB/s as 4-row tiles against
 * 27 GB/s row by row), so multi-row tiles fetch the same block of the rows
 * OT_PREFETCH_ROWS further on themselves. Single rows stream on their own. */
#define OT_PREFETCH_ROWS 8
#define PREFETCH_AHEAD(NR, a, ws)                                                               \
    if ((NR) > 1)                                                                               \
        for (size_t o_ = 0; o_ < sizeof *(a); o_ += 64)                                         \
            _mm_prefetch((const char *)(a) + OT_PREFETCH_ROWS * (ws) + o_, _MM_HINT_T0)

/* --- Q4_0, Q4_1 and Q8_0 weights against Q8_0 / Q8_1 activations.
 *
 * A block's dot product for one (weight row, activation row) pair is an
 * exact integer. It is reduced to a single lane first; then four pairs at a
 * time are scaled and accumulated in float, one accumulator lane per output,
 * in block order. Every output sees the same float operations whatever the
 * tile shape, so a token's logits do not depend on the tokens sharing its
 * step, and the per-pair float work is a quarter of an 8-lane vector's.
 *
 * Pair j = r * NC + c of a tile sits in lane j % 4 of group j / 4; lanes past
 * the last pair repeat pair 0's scales and add zero. */
#define PAIR_R(NR, NC, j) ((j) < (NR) * (NC) ? (j) / (NC) : 0)
#define PAIR_C(NR, NC, j) ((j) < (NR) * (NC) ? (j) % (NC) : 0)

/* Lanes 0..3: the totals of a, b, c and d, through unpacks (single-uop
 * shuffles, where hadd costs several). */
OT_INLINE __m128i sum4_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    const __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* Lane l: v[i_l] (spreads per-row or per-column scales over a group); vs
 * holds v in memory, so one value for all lanes is a broadcast load rather
 * than a shuffle (shuffles are what these tiles run short of). */
OT_INLINE __m128 spread4(__m256 v, const float *vs, int i0, int i1, int i2, int i3) {
    if (i0 == i1 && i1 == i2 && i2 == i3)
        return _mm_broadcast_ss(vs + i0);
    return _mm256_castps256_ps128(_mm256_permutevar8x32_ps(v, _mm256_setr_epi32(i0, i1, i2, i3, 0, 0, 0, 0)));
}

/* The first two float16 words of up to four blocks (d and m, or d and s)
 * as floats [d0 m0 d1 m1 ...]; absent blocks read as zero. */
OT_INLINE int32_t load32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}
OT_INLINE __m256 head_halves(const uint8_t *p, size_t stride, int n) {
    /* built in registers: a vector loaded from just-stored scalars would
     * stall on store forwarding */
    return _mm256_cvtph_ps(_mm_setr_epi32(load32(p), n > 1 ? load32(p + stride) : 0,
                                          n > 2 ? load32(p + 2 * stride) : 0, n > 3 ? load32(p + 3 * stride) : 0));
}

enum { B32_Q4_0, B32_Q4_1, B32_Q8_0 };

OT_INLINE void block32_kern(KERNEL_ARGS, const int NR, const int NC, const int FMT) {
    enum { NG = 4 }; /* groups of four pairs: NR * NC <= 16 */
    const int ngroups = (NR * NC + 3) / 4;
    const size_t wb = FMT == B32_Q4_0 ? sizeof(block_q4_0) : FMT == B32_Q4_1 ? sizeof(block_q4_1) : sizeof(block_q8_0);
    const size_t xb = FMT == B32_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xoff = FMT == B32_Q4_1 ? 4 : 2; /* the 32 quants after d (and s) */
    __m128 acc[NG], mins[NG];
    for (int g = 0; g < ngroups; g++)
        acc[g] = mins[g] = _mm_setzero_ps();
#ifdef __AVX512VNNI__
    const int offset_q8 = 1; /* vpdpbusd does not saturate: w + 128 is unsigned */
#else
    const int offset_q8 = 0; /* maddubs would saturate on w + 128: signs instead */
#endif
    const int seeded = FMT == B32_Q4_0 || (FMT == B32_Q8_0 && offset_q8);
    const __m256i offset = _mm256_set1_epi8(FMT == B32_Q4_0 ? 8 : (char)0x80);
    FOR_BLOCKS(k / QK) {
        const uint8_t *wi = w + i * wb, *xi = x + i * xb;
        __m256i xq[OT_MAXC], seed[OT_MAXC];
        for (int c = 0; c < NC; c++) {
            xq[c] = load256(xi + c * xs + xoff);
            /* unsigned u = w + o: sum w y = sum u y - o sum y, seeded once per activation block */
            if (seeded)
                seed[c] = _mm256_sub_epi32(_mm256_setzero_si256(), dot_us(_mm256_setzero_si256(), offset, xq[c]));
        }
        __m256i q[4], aq[4];
        for (int r = 0; r < NR; r++) {
            const uint8_t *a = wi + r * ws;
            PREFETCH_AHEAD(NR, a, ws); /* blocks are under a cache line: one fetch each */
            if (FMT == B32_Q8_0 && offset_q8) {
                q[r] = _mm256_xor_si256(load256(a + 2), offset);
            } else if (FMT == B32_Q8_0) { /* signed x signed through |w| and y with w's sign */
                q[r] = load256(a + 2);
                aq[r] = _mm256_sign_epi8(q[r], q[r]);
            } else {
                q[r] = nibbles16(a + (FMT == B32_Q4_1 ? 4 : 2));
            }
        }
        const __m256 wh = head_halves(wi, ws, NR), xh = head_halves(xi, xs, NC);
        float whs[8], xhs[8];
        _mm256_storeu_ps(whs, wh);
        _mm256_storeu_ps(xhs, xh);
        for (int g = 0; g < ngroups; g++) {
            __m256i p[4];
            for (int l = 0; l < 4; l++) {
                const int j = 4 * g + l, r = PAIR_R(NR, NC, j), c = PAIR_C(NR, NC, j);
                if (j >= NR * NC)
                    p[l] = _mm256_setzero_si256();
                else if (seeded)
                    p[l] = dot_us(seed[c], q[r], xq[c]);
                else if (FMT == B32_Q4_1)
                    p[l] = dot_us(_mm256_setzero_si256(), q[r], xq[c]);
                else
                    p[l] = dot_us(_mm256_setzero_si256(), aq[r], _mm256_sign_epi8(xq[c], q[r]));
            }
#define LANES(F, off) 2 * F(NR, NC, 4 * g) + (off), 2 * F(NR, NC, 4 * g + 1) + (off), \
                      2 * F(NR, NC, 4 * g + 2) + (off), 2 * F(NR, NC, 4 * g + 3) + (off)
            const __m128 scale = _mm_mul_ps(spread4(wh, whs, LANES(PAIR_R, 0)), spread4(xh, xhs, LANES(PAIR_C, 0)));
            acc[g] = _mm_fmadd_ps(scale, _mm_cvtepi32_ps(sum4_epi32(p[0], p[1], p[2], p[3])), acc[g]);
            /* Q4_1: + m_w s_x per block */
            if (FMT == B32_Q4_1)
                mins[g] = _mm_fmadd_ps(spread4(wh, whs, LANES(PAIR_R, 1)), spread4(xh, xhs, LANES(PAIR_C, 1)),
                                       mins[g]);
#undef LANES
        }
    }
    for (int g = 0; g < ngroups; g++) {
        float out[4];
        _mm_storeu_ps(out, _mm_add_ps(acc[g], mins[g]));
        for (int l = 0; l < 4 && 4 * g + l < NR * NC; l++)
            y[PAIR_C(NR, NC, 4 * g + l) * ldy + PAIR_R(NR, NC, 4 * g + l)] = out[l];
    }
}

#ifdef __AVX512VNNI__
/* Eight activation rows at once (VNNI only: vpdpbusd never saturates).
 * Lanes are activation rows: the eight rows' quants are transposed once per
 * block so lane c of xt[j] holds row c's bytes 4j..4j+3, and each weight
 * row's bytes are broadcast four at a time from memory. A block's eight
 * dot products then need no reduction and no shuffle, and each output sees
 * the float operations of block32_kern exactly: the same integer block sum,
 * scaled by the same d_w * d_x, accumulated in block order. */
#define OT_WIDE_NC 8

/* v[j] lane c <- v[c] lane j, for 8 x 8 int32. */
OT_INLINE void transpose8_epi32(__m256i v[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
        v[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
    }
}

/* float16 at byte offset off of eight blocks, stride apart, as floats. */
OT_INLINE __m256 halves8(const uint8_t *p, size_t stride, size_t off) {
    uint16_t h[8];
    for (int c = 0; c < 8; c++)
        memcpy(&h[c], p + c * stride + off, 2);
    return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], (short)h[4],
                                          (short)h[5], (short)h[6], (short)h[7]));
}

/* The eight activation rows of one block, prepared once for every weight
 * row of a tile call. Lanes 2c and 2c + 1 both belong to activation row c
 * (they meet weight rows a and b): lane pair c of xd[j] holds row c's bytes
 * 4j..4j+3; then the Q4_0/Q8_0 offset seed, and d (and s) per row. */
struct wide_block {
    __m512i xd[8];
    __m512i seed;
    __m512 dx, sx;
};

OT_INLINE void wide_prepare(const uint8_t *x, size_t xs, int64_t nb, const int FMT, struct wide_block *out) {
    const size_t xb = FMT == B32_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xoff = FMT == B32_Q4_1 ? 4 : 2;
    const __m256i offset = _mm256_set1_epi8(FMT == B32_Q4_0 ? 8 : (char)0x80);
    const __m512i twice = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xi = x + i * xb;
        struct wide_block *o = &out[i];
        __m256i xt[8];
        for (int c = 0; c < 8; c++)
            xt[c] = load256(xi + c * xs + xoff);
        transpose8_epi32(xt);
        /* unsigned u = w + o: sum w y = sum u y - o sum y */
        __m256i seed = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            if (FMT != B32_Q4_1)
                seed = _mm256_dpbusd_epi32(seed, offset, xt[j]);
            o->xd[j] = _mm512_permutexvar_epi32(twice, _mm512_castsi256_si512(xt[j]));
        }
        o->seed = _mm512_permutexvar_epi32(twice, _mm512_castsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), seed)));
        o->dx = _mm512_permutexvar_ps(twice, _mm512_castps256_ps512(halves8(xi, xs, 0)));
        o->sx = FMT == B32_Q4_1 ? _mm512_permutexvar_ps(twice, _mm512_castps256_ps512(halves8(xi, xs, 2)))
                                : _mm512_setzero_ps();
    }
}

/* The quants of one weight block, unsigned (Q8_0: w + 128), and d (and m). */
OT_INLINE __m256i wide_weight(const uint8_t *a, const int FMT, float *d, float *m) {
    uint16_t dm[2] = {0, 0};
    memcpy(dm, a, FMT == B32_Q4_1 ? 4 : 2);
    *d = half(dm[0]);
    *m = half(dm[1]);
    return FMT == B32_Q8_0 ? _mm256_xor_si256(load256(a + 2), _mm256_set1_epi8((char)0x80))
                           : nibbles16(a + (FMT == B32_Q4_1 ? 4 : 2));
}

/* NR weight rows (4 or 1) against prepared blocks, two rows per 512-bit
 * vector (even lanes row a, odd lanes row b): each pair of the rows' byte
 * groups is one 64-bit broadcast from memory, so the loop runs vpdpbusd on
 * loads alone. vpdpbusd on 512 bits measured nearly the rate of 256 bits
 * here (0.33 vs 0.30 ns). */
OT_INLINE void block32_wide_kern(int64_t nb, const uint8_t *w, size_t ws, const struct wide_block *xb, float *y,
                                 int64_t ldy, const int NR, const int FMT) {
    enum { NP = 2 };
    const int npairs = (NR + 1) / 2;
    const size_t wb = FMT == B32_Q4_0 ? sizeof(block_q4_0) : FMT == B32_Q4_1 ? sizeof(block_q4_1) : sizeof(block_q8_0);
    /* unpacklo/hi of rows a and b leave byte group j's pair in 64-bit slot: */
    static const int slot[8] = {0, 1, 4, 5, 2, 3, 6, 7};
    __m512 acc[NP], mins[NP];
    for (int p = 0; p < npairs; p++)
        acc[p] = mins[p] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const struct wide_block *xi = &xb[i];
        for (int p = 0; p < npairs; p++) {
            const uint8_t *a = w + i * wb + 2 * p * ws, *b = a + ws;
            PREFETCH_AHEAD(NR, a, ws);
            PREFETCH_AHEAD(NR, b, ws);
            float dm[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* da db ma mb */
            const __m256i qa = wide_weight(a, FMT, &dm[0], &dm[2]);
            const __m256i qb = 2 * p + 1 < NR ? wide_weight(b, FMT, &dm[1], &dm[3]) : _mm256_setzero_si256();
            int64_t qs[8];
            _mm256_storeu_si256((__m256i *)qs, _mm256_unpacklo_epi32(qa, qb));
            _mm256_storeu_si256((__m256i *)(qs + 4), _mm256_unpackhi_epi32(qa, qb));
            /* keeps the compiler from turning the broadcast loads below back
             * into shuffles: broadcasts from memory cost no shuffle at all */
            __asm__ volatile("" : : "r"(qs), "r"(dm) : "memory");
            __m512i isum = xi->seed;
            for (int j = 0; j < 8; j++)
                isum = _mm512_dpbusd_epi32(isum, _mm512_set1_epi64(qs[slot[j]]), xi->xd[j]);
            int64_t d2, m2;
            memcpy(&d2, dm, 8);
            memcpy(&m2, dm + 2, 8);
            const __m512 scale = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_set1_epi64(d2)), xi->dx);
            acc[p] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum), acc[p]);
            if (FMT == B32_Q4_1)
                mins[p] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_set1_epi64(m2)), xi->sx, mins[p]);
        }
    }
    for (int p = 0; p < npairs; p++) {
        float out[16];
        _mm512_storeu_ps(out, _mm512_add_ps(acc[p], mins[p]));
        for (int h = 0; h < 2 && 2 * p + h < NR; h++)
            for (int c = 0; c < 8; c++)
                y[c * ldy + 2 * p + h] = out[2 * c + h];
    }
}

/* Sixteen weight rows against NC (1..4) activation rows, for decode steps.
 * block32_kern reduces each block's eight partial sums to one lane through
 * unpacks per group of four outputs and gathers scales row by row; here two
 * rows share a 512-bit vector (Q8_0: [row a | row b]; nibbles: [a lo | b lo
 * | a hi | b hi]), one vpdpbusd covers both, and the sixteen rows' partial
 * sums meet in one tree of unpacks whose last level leaves the totals in
 * the lane order red_order. The rows' scales come in that order from one
 * gather. Each output sees block32_kern's float operations exactly (integer
 * block sum with the offset seed, scale d_w * d_x, fma in block order, mins
 * apart), so single rows and batches still agree bit for bit. */
static const int32_t red_order[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};

OT_INLINE __m512i lanes_total16(const __m512i p[8], const int FMT) {
    __m512i t[4], u[2];
    for (int j = 0; j < 4; j++)
        t[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2 * j], p[2 * j + 1]),
                                _mm512_unpackhi_epi32(p[2 * j], p[2 * j + 1]));
    for (int j = 0; j < 2; j++)
        u[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * j], t[2 * j + 1]),
                                _mm512_unpackhi_epi64(t[2 * j], t[2 * j + 1]));
    /* 128-bit lanes of u: a row pair's halves sit in lanes 0,1 | 2,3 for
     * Q8_0 and 0,2 | 1,3 for the nibble formats */
    if (FMT == B32_Q8_0)
        return _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                            _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
}

/* Rows a and b of one block as unsigned bytes, laid out as lanes_total16
 * expects. */
OT_INLINE __m512i pair_quants(const uint8_t *a, const uint8_t *b, const int FMT) {
    if (FMT == B32_Q8_0)
        return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(load256(a + 2)), load256(b + 2), 1),
                                _mm512_set1_epi8((char)0x80));
    const size_t off = FMT == B32_Q4_1 ? 4 : 2;
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a + off))),
                                              _mm_loadu_si128((const __m128i *)(b + off)), 1);
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(both, _mm512_set1_epi8(0xF));
}

OT_INLINE void block32_rows16_kern(KERNEL_ARGS, const int NC, const int FMT) {
    const int64_t nb = k / QK;
    const size_t wb = FMT == B32_Q4_0 ? sizeof(block_q4_0) : FMT == B32_Q4_1 ? sizeof(block_q4_1) : sizeof(block_q8_0);
    const size_t xb = FMT == B32_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xoff = FMT == B32_Q4_1 ? 4 : 2;
    const __m512i rows = _mm512_mullo_epi32(_mm512_loadu_si512(red_order), _mm512_set1_epi32((int)ws));
    const __m512i offset = _mm512_set1_epi8(FMT == B32_Q4_0 ? 8 : (char)0x80);
    __m512 acc[OT_MAXC], mins[OT_MAXC];
    for (int c = 0; c < NC; c++)
        acc[c] = mins[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wi = w + i * wb;
        __m512i q[8];
        for (int p = 0; p < 8; p++) {
            const uint8_t *a = wi + 2 * p * ws;
            /* sixteen streams are more than the hardware prefetchers follow:
             * ask for the next sixteen rows' block, into L2 (into L1 it
             * evicted this group's lines: 17 against 27-31 GB/s alone) */
            _mm_prefetch((const char *)a + 16 * ws, _MM_HINT_T1);
            _mm_prefetch((const char *)a + 17 * ws, _MM_HINT_T1);
            q[p] = pair_quants(a, a + ws, FMT);
        }
        /* d (and m) of the sixteen rows, as the first dword of each block */
        const __m512i head = _mm512_i32gather_epi32(rows, wi, 1);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head));
        const __m512 mw = FMT == B32_Q4_1 ? _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(head, 16)))
                                          : _mm512_setzero_ps();
        for (int c = 0; c < NC; c++) {
            const uint8_t *xi = x + c * xs + i * xb;
            const __m256i xq = load256(xi + xoff);
            /* Q8_0 pairs hold [a | b]: each half meets all 32 quants; the
             * nibble formats hold [a lo | b lo | a hi | b hi] */
            const __m512i xv = FMT == B32_Q8_0 ? _mm512_broadcast_i64x4(xq)
                                               : _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                                                          _mm512_castsi256_si512(xq));
            /* unsigned u = w + o: sum w y = sum u y - o sum y, seeded where each part of y meets w */
            const __m512i seed = FMT == B32_Q4_1 ? _mm512_setzero_si512()
                                                 : _mm512_sub_epi32(_mm512_setzero_si512(),
                                                                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, xv));
            __m512i p[8];
            for (int j = 0; j < 8; j++)
                p[j] = _mm512_dpbusd_epi32(seed, q[j], xv);
            uint16_t ds[2] = {0, 0};
            memcpy(ds, xi, FMT == B32_Q4_1 ? 4 : 2);
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(half(ds[0])));
            acc[c] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(lanes_total16(p, FMT)), acc[c]);
            if (FMT == B32_Q4_1)
                mins[c] = _mm512_fmadd_ps(mw, _mm512_set1_ps(half(ds[1])), mins[c]);
        }
    }
    const __m512i order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15); /* red_order's inverse */
    for (int c = 0; c < NC; c++)
        _mm512_storeu_ps(y + c * ldy, _mm512_permutexvar_ps(order, _mm512_add_ps(acc[c], mins[c])));
}

/* The tile entry of a 32-element block format: eight activation rows at a
 * time, prepared once for all the tile's weight rows, through the wide
 * kernel; the rest through block32_kern. */
#define TILE_ENTRY_B32(name, fmt)                                                                           \
    static void name##_tile(int64_t k, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,  \
                            int nx, float *y, int64_t ldy) {                                                \
        const int64_t nb = k / QK;                                                                          \
        int c = 0;                                                                                          \
        if (nx >= OT_WIDE_NC) {                                                                             \
            struct wide_block prep[nb];                                                                     \
            for (; c + OT_WIDE_NC <= nx; c += OT_WIDE_NC) {                                                 \
                wide_prepare(x + c * xs, xs, nb, fmt, prep);                                                \
                int r = 0;                                                                                  \
                for (; r + 4 <= nw; r += 4)                                                                 \
                    block32_wide_kern(nb, w + r * ws, ws, prep, y + c * ldy + r, ldy, 4, fmt);              \
                for (; r < nw; r++)                                                                         \
                    block32_wide_kern(nb, w + r * ws, ws, prep, y + c * ldy + r, ldy, 1, fmt);              \
            }                                                                                               \
        }                                                                                                   \
        if (c < nx)                                                                                         \
            name##_narrow_tile(k, w, ws, nw, x + c * xs, xs, nx - c, y + c * ldy, ldy);                     \
    }
#endif

#ifdef __AVX512VNNI__
/* --- GEMM-shaped products for prompts and image batches (VNNI).
 *
 * The wide tiles above redo each weight block's unpacking for every eight
 * activation rows and spend half their instructions on it. Here a unit's
 * weight rows are repacked once per call into panels of 16 (lanes are weight
 * rows: vector j of block i holds each row's unsigned bytes 4j..4j+3, then
 * the rows' d and m as floats), and every activation row meets a panel
 * through 4-byte broadcasts from its own quantized block: per block and
 * 16 outputs, 8 vpdpbusd and 3 float ops. Each output still sees the float
 * operations of the tiles exactly (integer block sum seeded with the offset
 * correction, scale d_w * d_x, fma in block order, mins apart), so prompts,
 * batches and single rows agree bit for bit. */
#define GQ_LANES 16
#define GQ_NC 8 /* activation rows per register tile */
/* Fewer rows than this take the tiles: packing a unit costs about as much
 * as eight rows of products (measured on the 49152-row output head: 2.2-2.6
 * ms through the wide tiles at 8 rows against 2.8-3.0 packed). Q4_K's
 * single-row tiles are slower than the block formats' wide ones, so its
 * GEMM pays from 8 rows (TinyLlama's shapes at 8 rows: 2.5-2.7 ms packed
 * against 2.8-3.4 through the tiles; at 4 rows the tiles win). */
#define GQ_MIN_ROWS 12
#define GQ_MIN_ROWS_Q4_K 8

struct gq_block {
    __m512i q[8];
    __m512 d, m;
};

/* Q4_0 stores q + 8 and Q8_0 w + 128 (wide_weight): the seed subtracts the
 * offset times the block's sum of activation quants. */
OT_INLINE void gq_xblock(const uint8_t *x, struct ot_xblock *xb, int64_t k, const int FMT) {
    const size_t xs = FMT == B32_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const int offset = FMT == B32_Q4_0 ? 8 : FMT == B32_Q8_0 ? 128 : 0;
    for (int64_t i = 0; i < k / QK; i++) {
        const uint8_t *b = x + i * xs;
        const int8_t *q = (const int8_t *)(b + (FMT == B32_Q4_1 ? 4 : 2));
        uint16_t ds[2] = {0, 0};
        memcpy(ds, b, FMT == B32_Q4_1 ? 4 : 2);
        int32_t sum = 0;
        for (int j = 0; j < QK; j++)
            sum += q[j];
        xb[i] = (struct ot_xblock){half(ds[0]), half(ds[1]), -offset * sum};
    }
}

/* A unit's weight rows are one contiguous region, read block by block
 * across 16 rows at once when packed: too many streams for the hardware
 * prefetchers, so the whole region is requested up front. */
OT_INLINE void prefetch_rows(const uint8_t *w, size_t bytes) {
    for (size_t off = 0; off < bytes; off += 64)
        _mm_prefetch((const char *)w + off, _MM_HINT_T0);
}

/* out[j] lane r <- dword j of v[r], for 16 rows of 32 bytes: two 8 x 8
 * transposes, rows 0..7 into the low halves and 8..15 into the high. */
OT_INLINE void lanes16(__m256i v[GQ_LANES], __m512i out[8]) {
    transpose8_epi32(v);
    transpose8_epi32(v + 8);
    for (int j = 0; j < 8; j++)
        _mm512_store_si512(&out[j], _mm512_inserti64x4(_mm512_castsi256_si512(v[j]), v[8 + j], 1));
}

/* Rows [0, nw) of w (nw <= 16; absent rows are zero) as nb packed blocks. */
OT_INLINE void gq_pack(const uint8_t *w, size_t ws, int nw, int64_t nb, struct gq_block *out, const int FMT) {
    const size_t wb = FMT == B32_Q4_0 ? sizeof(block_q4_0) : FMT == B32_Q4_1 ? sizeof(block_q4_1) : sizeof(block_q8_0);
    for (int64_t i = 0; i < nb; i++) {
        __m256i u[GQ_LANES];
        float d[GQ_LANES], m[GQ_LANES];
        for (int r = 0; r < GQ_LANES; r++) {
            u[r] = _mm256_setzero_si256();
            d[r] = m[r] = 0.0f;
            if (r < nw)
                u[r] = wide_weight(w + r * ws + i * wb, FMT, &d[r], &m[r]);
        }
        lanes16(u, out[i].q);
        out[i].d = _mm512_loadu_ps(d);
        out[i].m = _mm512_loadu_ps(m);
    }
}

/* NC activation rows (c * xs apart) against one packed panel. */
OT_INLINE void gq_kern(int64_t nb, const struct gq_block *pw, const uint8_t *x, size_t xs,
                       const struct ot_xblock *xb, int64_t xbs, float *y, int64_t ldy, __mmask16 lanes,
                       const int NC, const int FMT) {
    const size_t xsz = FMT == B32_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xoff = FMT == B32_Q4_1 ? 4 : 2;
    __m512 acc[GQ_NC], mins[GQ_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = mins[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const struct gq_block *b = &pw[i];
        const uint8_t *xi = x + i * xsz + xoff;
        __m512i isum[GQ_NC];
        for (int c = 0; c < NC; c++)
            isum[c] = _mm512_set1_epi32(xb[c * xbs + i].seed);
        for (int j = 0; j < 8; j++) {
            const __m512i q = _mm512_load_si512(&b->q[j]);
            for (int c = 0; c < NC; c++) {
                int32_t g;
                memcpy(&g, xi + c * xs + 4 * j, 4);
                isum[c] = _mm512_dpbusd_epi32(isum[c], q, _mm512_set1_epi32(g));
            }
        }
        for (int c = 0; c < NC; c++) {
            const struct ot_xblock *a = &xb[c * xbs + i];
            const __m512 scale = _mm512_mul_ps(b->d, _mm512_set1_ps(a->d));
            acc[c] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum[c]), acc[c]);
            if (FMT == B32_Q4_1)
                mins[c] = _mm512_fmadd_ps(b->m, _mm512_set1_ps(a->s), mins[c]);
        }
    }
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(y + c * ldy, lanes, _mm512_add_ps(acc[c], mins[c]));
}

/* CALL(NC) with NC a constant (1 .. GQ_NC), so a kernel's tile stays in
 * registers. */
#define GQ_BY_NC(nc, CALL)                        \
    switch (nc) {                                 \
    case 8: CALL(8); break;                       \
    case 7: CALL(7); break;                       \
    case 6: CALL(6); break;                       \
    case 5: CALL(5); break;                       \
    case 4: CALL(4); break;                       \
    case 3: CALL(3); break;                       \
    case 2: CALL(2); break;                       \
    default: CALL(1); break;                      \
    }

OT_INLINE void gq_strip(int64_t nb, const struct gq_block *pw, const uint8_t *x, size_t xs,
                        const struct ot_xblock *xb, float *y, int64_t ldy, __mmask16 lanes, int nc, const int FMT) {
#define GQ_CALL(NC) gq_kern(nb, pw, x, xs, xb, nb, y, ldy, lanes, NC, FMT)
    GQ_BY_NC(nc, GQ_CALL)
#undef GQ_CALL
}

/* The body of a GEMM entry: a unit of up to OT_UNIT_ROWS weight rows packed
 * once into panels of BLOCK (on the stack, as the wide tiles' prepared blocks
 * are), then every activation row, GQ_NC at a time, against each panel.
 * PACK and STRIP are the format's packer and kernel, QB its block size. */
#define GEMM_UNIT(BLOCK, QB, PACK, STRIP, FMT)                                                                    \
    do {                                                                                                          \
        const int64_t nb = k / (QB);                                                                              \
        const int npanel = (nw + GQ_LANES - 1) / GQ_LANES;                                                        \
        BLOCK *pw = __builtin_alloca_with_align((size_t)npanel * nb * sizeof(BLOCK), 512);                        \
        prefetch_rows(w, (size_t)nw * ws);                                                                        \
        for (int p = 0; p < npanel; p++)                                                                          \
            PACK(w + p * GQ_LANES * ws, ws, nw - p * GQ_LANES, nb, pw + p * nb, FMT);                             \
        for (int64_t c = 0; c < m; c += GQ_NC) {                                                                  \
            const int nc = (int)(m - c < GQ_NC ? m - c : GQ_NC);                                                  \
            for (int p = 0; p < npanel; p++) {                                                                    \
                const int rows = nw - p * GQ_LANES < GQ_LANES ? nw - p * GQ_LANES : GQ_LANES;                     \
                STRIP(nb, pw + p * nb, x + c * xs, xs, xb ? xb + c * nb : NULL, y + c * ldy + p * GQ_LANES, ldy,  \
                      (__mmask16)((1u << rows) - 1), nc, FMT);                                                    \
            }                                                                                                     \
        }                                                                                                         \
    } while (0)

/* The entry of a weight type: fewer than min_rows rows take the tile. */
#define GEMM_Q_ENTRY(name, BLOCK, QB, PACK, STRIP, fmt, min_rows)                                           \
    static void name##_gemm_q(int64_t k, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,  \
                              const struct ot_xblock *xb, int64_t m, float *y, int64_t ldy) {               \
        if (m < (min_rows)) {                                                                               \
            name##_tile(k, w, ws, nw, x, xs, (int)m, y, ldy);                                               \
            return;                                                                                         \
        }                                                                                                   \
        GEMM_UNIT(BLOCK, QB, PACK, STRIP, fmt);                                                             \
    }
#define GQ_XBLOCK(name, fmt) \
    static void name##_xblock(const uint8_t *x, struct ot_xblock *xb, int64_t k) { gq_xblock(x, xb, k, fmt); }
#endif

OT_INLINE void q4_0_kern(KERNEL_ARGS, const int NR, const int NC) { block32_kern(k, w, ws, x, xs, y, ldy, NR, NC, B32_Q4_0); }
OT_INLINE void q4_1_kern(KERNEL_ARGS, const int NR, const int NC) { block32_kern(k, w, ws, x, xs, y, ldy, NR, NC, B32_Q4_1); }
OT_INLINE void q8_0_kern(KERNEL_ARGS, const int NR, const int NC) { block32_kern(k, w, ws, x, xs, y, ldy, NR, NC, B32_Q8_0); }

/* The eight 6-bit scales and mins of a Q4_K super-block as int32 lanes, all
 * at once (ot_q4k_scale_min's layout): scales 0..3 and mins 0..3 are the low
 * six bits of bytes 0..3 and 4..7; scales and mins 4..7 are the low and high
 * nibbles of bytes 8..11 with the top two bits of bytes 0..3 and 4..7 above. */
OT_INLINE void q4_K_scales_mins(const uint8_t *s, __m256i *sc, __m256i *mn) {
    uint32_t u[3];
    memcpy(u, s, sizeof u);
    const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x03030303u;
    const uint32_t sc_hi = (u[2] & low4) | (((u[0] >> 6) & top2) << 4);
    const uint32_t mn_hi = ((u[2] >> 4) & low4) | (((u[1] >> 6) & top2) << 4);
    *sc = _mm256_cvtepu8_epi32(_mm_setr_epi32((int)(u[0] & low6), (int)sc_hi, 0, 0));
    *mn = _mm256_cvtepu8_epi32(_mm_setr_epi32((int)(u[1] & low6), (int)mn_hi, 0, 0));
}

/* The 256 unsigned 6-bit quants of a Q6_K super-block in element order,
 * 32 per vector. */
OT_INLINE void q6_K_quants(const block_q6_K *a, __m256i q[8]) {
    const __m256i lo4 = _mm256_set1_epi8(0xF), hi2 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = load256(a->ql + 64 * h), l1 = load256(a->ql + 64 * h + 32);
        const __m256i qh = load256(a->qh + 32 * h);
        q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, lo4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), hi2));
        q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, lo4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), hi2));
        q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4), _mm256_and_si256(qh, hi2));
        q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), hi2));
    }
}

/* The 256 nibbles of a Q4_K super-block in element order, 32 per vector
 * (sub-block 2j: low nibbles of bytes 32j.., 2j + 1: their high nibbles). */
OT_INLINE void q4_K_quants(const block_q4_K *a, __m256i q[8]) {
    const __m256i lo4 = _mm256_set1_epi8(0xF);
    for (int j = 0; j < 4; j++) {
        const __m256i v = load256(a->qs + 32 * j);
        q[2 * j] = _mm256_and_si256(v, lo4);
        q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
    }
}

/* Lane 0: the total of a's lanes; lane 1: of b's. */
OT_INLINE __m128i sum2_epi32(__m256i a, __m256i b) {
    const __m256i t = _mm256_hadd_epi32(a, b); /* [a01 a23 b01 b23 | a45 a67 b45 b67] */
    const __m256i u = _mm256_hadd_epi32(t, t); /* [a0-3 b0-3 . . | a4-7 b4-7 . .] */
    return _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}

/* K-quant outputs accumulate one float per super-block: the super-block's
 * scaled sub-block sums are totalled exactly in integers first, which is
 * what the GEMM kernels below can do in their lanes too, so both give the
 * same bits. acc += (d_w d_x) * total (and -= (dmin_w d_x) * mins). */
#define KACC_DECL(NR, NC)                         \
    float acc[4][OT_MAXC];                        \
    for (int r = 0; r < NR; r++)                  \
        for (int c = 0; c < NC; c++)              \
            acc[r][c] = 0.0f

#define KACC_STORE(NR, NC)                        \
    for (int r = 0; r < NR; r++)                  \
        for (int c = 0; c < NC; c++)              \
            y[c * ldy + r] = acc[r][c];

/* --- Q4_K x Q8_K: eight 32-element sub-blocks with 6-bit scales and mins.
 * Each sub-block's lane sums meet its scale before any reduction (two
 * sub-blocks per madd, one horizontal sum per super-block: 8-10% faster on
 * one thread than totalling each sub-block first through hadd); the mins
 * term uses the activation's 16-element sums added in pairs. */
OT_INLINE void q4_K_kern(KERNEL_ARGS, const int NR, const int NC) {
    KACC_DECL(NR, NC);
    const __m256i ones16 = _mm256_set1_epi16(1);
    FOR_BLOCKS(k / QK_K) {
        const block_q8_K *b[OT_MAXC];
        __m256i bsum[OT_MAXC]; /* per 32-element sub-block */
        for (int c = 0; c < NC; c++) {
            b[c] = (const block_q8_K *)(x + c * xs) + i;
            bsum[c] = _mm256_madd_epi16(load256(b[c]->bsums), ones16);
        }
        for (int r = 0; r < NR; r++) {
            const block_q4_K *a = (const block_q4_K *)(w + r * ws) + i;
            __m256i sc, mn, q[8];
            q4_K_scales_mins(a->scales, &sc, &mn);
            q4_K_quants(a, q);
            const float dw = half(a->d), dmw = half(a->dmin);
            /* scp[g]: sub-block 2g's scale for lanes 0,1,4,5 and 2g + 1's for 2,3,6,7, in both 16-bit
             * halves, where packs puts the pair's lane sums */
            const __m256i scw = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
            __m256i scp[4];
            for (int g = 0; g < 4; g++)
                scp[g] = _mm256_permutevar8x32_epi32(
                    scw, _mm256_setr_epi32(2 * g, 2 * g, 2 * g + 1, 2 * g + 1, 2 * g, 2 * g, 2 * g + 1, 2 * g + 1));
            for (int c = 0; c < NC; c++) {
                __m256i p[8];
                for (int j = 0; j < 8; j++)
                    p[j] = dot_us(_mm256_setzero_si256(), q[j], load256(b[c]->qs + 32 * j));
                /* lane sums of 4 products fit int16 (|p| <= 4 * 15 * 128): two sub-blocks per madd */
                __m256i total = _mm256_setzero_si256();
                for (int g = 0; g < 4; g++)
                    total = _mm256_add_epi32(total, _mm256_madd_epi16(_mm256_packs_epi32(p[2 * g], p[2 * g + 1]), scp[g]));
                const __m128 t = _mm_cvtepi32_ps(sum2_epi32(total, _mm256_mullo_epi32(bsum[c], mn)));
                acc[r][c] = __builtin_fmaf(dw * b[c]->d, _mm_cvtss_f32(t), acc[r][c]);
                acc[r][c] = __builtin_fmaf(-(dmw * b[c]->d), _mm_cvtss_f32(_mm_movehdup_ps(t)), acc[r][c]);
            }
        }
    }
    KACC_STORE(NR, NC);
}

/* --- Q6_K x Q8_K: unsigned 6-bit q with 16-element int8 scales; the -32
 * offset is sum_g scale_g * 32 * bsum_g, from the activation's sums. Two
 * levels of hadd leave the sixteen 16-element group sums in the lane order
 * [0 2 4 6 1 3 5 7 | 8 10 12 14 9 11 13 15], so the scales are shuffled to it. */
OT_INLINE void q6_K_kern(KERNEL_ARGS, const int NR, const int NC) {
    KACC_DECL(NR, NC);
    const __m128i group_order = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    FOR_BLOCKS(k / QK_K) {
        const block_q8_K *b[OT_MAXC];
        for (int c = 0; c < NC; c++)
            b[c] = (const block_q8_K *)(x + c * xs) + i;
        for (int r = 0; r < NR; r++) {
            const block_q6_K *a = (const block_q6_K *)(w + r * ws) + i;
            __m256i q[8];
            q6_K_quants(a, q);
            const __m128i s8 = _mm_loadu_si128((const __m128i *)a->scales);
            const __m128i so = _mm_shuffle_epi8(s8, group_order);
            const __m256i s_lo = _mm256_cvtepi8_epi32(so), s_hi = _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(so, so));
            const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
            const float dw = half(a->d);
            for (int c = 0; c < NC; c++) {
                __m256i p[8];
                for (int v = 0; v < 8; v++)
                    p[v] = dot_us(_mm256_setzero_si256(), q[v], load256(b[c]->qs + 32 * v));
                const __m256i g_lo = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
                const __m256i g_hi = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
                const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(load256(b[c]->bsums), sc16), 5);
                const __m256i isum = _mm256_sub_epi32(
                    _mm256_add_epi32(_mm256_mullo_epi32(g_lo, s_lo), _mm256_mullo_epi32(g_hi, s_hi)), off);
                const __m128 t = _mm_cvtepi32_ps(sum2_epi32(isum, _mm256_setzero_si256()));
                acc[r][c] = __builtin_fmaf(dw * b[c]->d, _mm_cvtss_f32(t), acc[r][c]);
            }
        }
    }
    KACC_STORE(NR, NC);
}

/* --- float weights: 8 weights converted per load, float32 activations. */
OT_INLINE __m256 wload_f32(const uint8_t *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
OT_INLINE __m256 wload_f16(const uint8_t *p, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
OT_INLINE __m256 wload_bf16(const uint8_t *p, int64_t i) {
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
OT_INLINE float wat_f32(const uint8_t *p, int64_t i) { return ((const float *)p)[i]; }
OT_INLINE float wat_f16(const uint8_t *p, int64_t i) { return half(((const uint16_t *)p)[i]); }
OT_INLINE float wat_bf16(const uint8_t *p, int64_t i) { return ot_bf16_to_fp32(((const uint16_t *)p)[i]); }

/* Blocks of 8 weights, then a scalar tail for k that is not a multiple. */
#define FLOAT_KERNEL(name)                                                                              \
    OT_INLINE void name##_kern(KERNEL_ARGS, const int NR, const int NC) {                               \
        ACC_DECL(NR, NC);                                                                               \
        FOR_BLOCKS(k / 8) {                                                                             \
            __m256 xv[OT_MAXC];                                                                         \
            for (int c = 0; c < NC; c++)                                                                \
                xv[c] = _mm256_loadu_ps((const float *)(x + c * xs) + 8 * i);                           \
            for (int r = 0; r < NR; r++) {                                                              \
                const __m256 wv = wload_##name(w + r * ws, 8 * i);                                      \
                for (int c = 0; c < NC; c++)                                                            \
                    acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);                            \
            }                                                                                           \
        }                                                                                               \
        STORE_ACC(NR, NC, 0.0f);                                                                        \
        for (int64_t j = k / 8 * 8; j < k; j++)                                                         \
            for (int r = 0; r < NR; r++)                                                                \
                for (int c = 0; c < NC; c++)                                                            \
                    y[c * ldy + r] += wat_##name(w + r * ws, j) * ((const float *)(x + c * xs))[j];     \
    }
FLOAT_KERNEL(f32)
FLOAT_KERNEL(f16)
FLOAT_KERNEL(bf16)

/* The tile entry point of a kernel: full 4-row tiles, then single rows, each
 * against up to OT_MAXC activation rows at a time. 4-row tiles run from
 * min_nc4 activation rows on (0: never): kernels that fold four rows' dot
 * products into one vector take them for a single row too, the others
 * stream a lone activation row against one weight row at a time. The
 * K-quants never take them: their 4-row tiles ran 1.3-2.4x slower than
 * single rows at 2, 4 and 8 activation rows on every x86 ISA (isolated
 * products of TinyLlama's shapes, alternated runs). */
#define KCALL(name, NR, nc)                                                               \
    switch (nc) {                                                                         \
    case 1: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, 1); break;           \
    case 2: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, OT_MAXC > 1 ? 2 : 1); break; \
    case 3: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, OT_MAXC > 2 ? 3 : 1); break; \
    default: name##_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, NR, OT_MAXC > 3 ? 4 : 1); break; \
    }
/* PRE may take rows first (r counts the rows done). */
#define TILE_BODY(name, min_nc4, PRE)                                                                       \
    for (int c = 0; c < nx; c += OT_MAXC) {                                                                 \
        const int nc = nx - c < OT_MAXC ? nx - c : OT_MAXC;                                                 \
        const uint8_t *xc = x + c * xs;                                                                     \
        float *yc = y + c * ldy;                                                                            \
        int r = 0;                                                                                          \
        PRE;                                                                                                \
        for (; min_nc4 && nc >= min_nc4 && r + 4 <= nw; r += 4)                                             \
            KCALL(name, 4, nc)                                                                              \
        for (; r < nw; r++)                                                                                 \
            KCALL(name, 1, nc)                                                                              \
    }
#define TILE_ARGS int64_t k, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs, int nx, float *y, int64_t ldy
#define TILE_ENTRY(name, min_nc4) \
    static void name##_tile(TILE_ARGS) { TILE_BODY(name, min_nc4, (void)0) }
#ifdef __AVX512VNNI__
/* Fewer activation rows than the wide tiles take: sixteen weight rows at a
 * time while they last (the gather's offsets are 32-bit). */
#define ROWS16(fmt)                                                                                         \
    for (; 16 * ws <= INT32_MAX && r + 16 <= nw; r += 16)                                                   \
        switch (nc) {                                                                                       \
        case 1: block32_rows16_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, 1, fmt); break;                 \
        case 2: block32_rows16_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, 2, fmt); break;                 \
        case 3: block32_rows16_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, 3, fmt); break;                 \
        default: block32_rows16_kern(k, w + r * ws, ws, xc, xs, yc + r, ldy, 4, fmt); break;                \
        }
#define NARROW_ENTRY_B32(name, fmt) \
    static void name##_narrow_tile(TILE_ARGS) { TILE_BODY(name, 1, ROWS16(fmt)) }
NARROW_ENTRY_B32(q4_0, B32_Q4_0)
NARROW_ENTRY_B32(q4_1, B32_Q4_1)
NARROW_ENTRY_B32(q8_0, B32_Q8_0)
TILE_ENTRY_B32(q4_0, B32_Q4_0)
TILE_ENTRY_B32(q4_1, B32_Q4_1)
TILE_ENTRY_B32(q8_0, B32_Q8_0)
GQ_XBLOCK(q4_0, B32_Q4_0)
GQ_XBLOCK(q4_1, B32_Q4_1)
GQ_XBLOCK(q8_0, B32_Q8_0)
GEMM_Q_ENTRY(q4_0, struct gq_block, QK, gq_pack, gq_strip, B32_Q4_0, GQ_MIN_ROWS)
GEMM_Q_ENTRY(q4_1, struct gq_block, QK, gq_pack, gq_strip, B32_Q4_1, GQ_MIN_ROWS)
GEMM_Q_ENTRY(q8_0, struct gq_block, QK, gq_pack, gq_strip, B32_Q8_0, GQ_MIN_ROWS)
#else
TILE_ENTRY(q4_0, 1)
TILE_ENTRY(q4_1, 1)
TILE_ENTRY(q8_0, 1)
#endif
TILE_ENTRY(q4_K, 0)
TILE_ENTRY(q6_K, 0)
TILE_ENTRY(f32, 2)
TILE_ENTRY(f16, 2)
TILE_ENTRY(bf16, 2)

#ifdef __AVX512VNNI__
/* --- GEMM-shaped K-quant products (VNNI), as gq_* above for 32-element
 * blocks: 16 weight rows in lanes, repacked once per call, activations
 * broadcast from their Q8_K blocks. A super-block's sub-block sums are
 * scaled in integers (one vpmulld per sub-block and 16 outputs) and
 * totalled exactly, then meet the float scales once, as in the tiles.
 * Q4_K has 8 sub-blocks of 32 elements, Q6_K 16 of 16. */
enum { GK_Q4_K, GK_Q6_K };

struct gk_block {
    __m512i q[64];   /* byte group g of the super-block (elements 4g .. 4g + 3) */
    __m512i sc[16];  /* scale of sub-block s, int32 */
    __m512i corr[8]; /* int16 pairs meeting the activation's 16-element sums 2p and 2p + 1: Q4_K the min
                        of sub-block p twice, Q6_K 32 times scales 2p and 2p + 1 (the -32 offset) */
    __m512 d, dmin;
};

OT_INLINE __m512i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Rows [0, nw) of w (nw <= 16; absent rows are zero) as nb packed super-blocks. */
OT_INLINE void gk_pack(const uint8_t *w, size_t ws, int nw, int64_t nb, struct gk_block *out, const int FMT) {
    for (int64_t i = 0; i < nb; i++) {
        __m256i q[GQ_LANES][8];
        int32_t sc[16][GQ_LANES];
        int16_t corr[8][2 * GQ_LANES];
        float d[GQ_LANES], dmin[GQ_LANES];
        memset(sc, 0, sizeof sc);
        memset(corr, 0, sizeof corr);
        for (int r = 0; r < GQ_LANES; r++) {
            d[r] = dmin[r] = 0.0f;
            for (int l = 0; l < 8; l++)
                q[r][l] = _mm256_setzero_si256();
            if (r >= nw)
                continue;
            if (FMT == GK_Q4_K) {
                const block_q4_K *a = (const block_q4_K *)(w + r * ws) + i;
                q4_K_quants(a, q[r]);
                for (int l = 0; l < 8; l++) {
                    uint8_t s6, m6;
                    ot_q4k_scale_min(a->scales, l, &s6, &m6);
                    sc[l][r] = s6;
                    corr[l][2 * r] = corr[l][2 * r + 1] = m6;
                }
                d[r] = half(a->d);
                dmin[r] = half(a->dmin);
            } else {
                const block_q6_K *a = (const block_q6_K *)(w + r * ws) + i;
                q6_K_quants(a, q[r]);
                for (int g = 0; g < 16; g++) {
                    sc[g][r] = a->scales[g];
                    corr[g / 2][2 * r + g % 2] = (int16_t)(32 * a->scales[g]);
                }
                d[r] = half(a->d);
            }
        }
        /* chunk l of 32 elements -> byte groups 8l .. 8l + 7 */
        for (int l = 0; l < 8; l++) {
            __m256i u[GQ_LANES];
            for (int r = 0; r < GQ_LANES; r++)
                u[r] = q[r][l];
            lanes16(u, out[i].q + 8 * l);
        }
        for (int g = 0; g < 16; g++)
            out[i].sc[g] = _mm512_loadu_si512(sc[g]);
        for (int p = 0; p < 8; p++)
            out[i].corr[p] = _mm512_loadu_si512(corr[p]);
        out[i].d = _mm512_loadu_ps(d);
        out[i].dmin = _mm512_loadu_ps(dmin);
    }
}

/* NC activation rows (Q8_K, xs apart) against one packed panel. */
OT_INLINE void gk_kern(int64_t nb, const struct gk_block *pw, const uint8_t *x, size_t xs, float *y, int64_t ldy,
                       __mmask16 lanes, const int NC, const int FMT) {
    const int subs = FMT == GK_Q4_K ? 8 : 16, groups = 64 / subs;
    __m512 acc[GQ_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const struct gk_block *b = &pw[i];
        const block_q8_K *xb[GQ_NC];
        __m512i tot[GQ_NC], corr[GQ_NC];
        for (int c = 0; c < NC; c++) {
            xb[c] = (const block_q8_K *)(x + c * xs) + i;
            tot[c] = corr[c] = _mm512_setzero_si512();
        }
        for (int s = 0; s < subs; s++) {
            __m512i sub[GQ_NC];
            for (int c = 0; c < NC; c++)
                sub[c] = _mm512_setzero_si512();
            for (int j = s * groups; j < (s + 1) * groups; j++) {
                const __m512i q = _mm512_load_si512(&b->q[j]);
                for (int c = 0; c < NC; c++)
                    sub[c] = _mm512_dpbusd_epi32(sub[c], q, bcast32(xb[c]->qs + 4 * j));
            }
            const __m512i sc = _mm512_load_si512(&b->sc[s]);
            for (int c = 0; c < NC; c++)
                tot[c] = _mm512_add_epi32(tot[c], _mm512_mullo_epi32(sub[c], sc));
        }
        for (int c = 0; c < NC; c++) {
            for (int p = 0; p < 8; p++)
                corr[c] = _mm512_dpwssd_epi32(corr[c], _mm512_load_si512(&b->corr[p]), bcast32(xb[c]->bsums + 2 * p));
            const __m512 dx = _mm512_set1_ps(xb[c]->d);
            if (FMT == GK_Q4_K) {
                acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(b->d, dx), _mm512_cvtepi32_ps(tot[c]), acc[c]);
                acc[c] = _mm512_fnmadd_ps(_mm512_mul_ps(b->dmin, dx), _mm512_cvtepi32_ps(corr[c]), acc[c]);
            } else {
                const __m512i isum = _mm512_sub_epi32(tot[c], corr[c]);
                acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(b->d, dx), _mm512_cvtepi32_ps(isum), acc[c]);
            }
        }
    }
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(y + c * ldy, lanes, acc[c]);
}

OT_INLINE void gk_strip(int64_t nb, const struct gk_block *pw, const uint8_t *x, size_t xs,
                        const struct ot_xblock *xb, float *y, int64_t ldy, __mmask16 lanes, int nc, const int FMT) {
    (void)xb; /* the sums a K-quant needs are in its Q8_K blocks */
#define GK_CALL(NC) gk_kern(nb, pw, x, xs, y, ldy, lanes, NC, FMT)
    GQ_BY_NC(nc, GK_CALL)
#undef GK_CALL
}

GEMM_Q_ENTRY(q4_K, struct gk_block, QK_K, gk_pack, gk_strip, GK_Q4_K, GQ_MIN_ROWS_Q4_K)
GEMM_Q_ENTRY(q6_K, struct gk_block, QK_K, gk_pack, gk_strip, GK_Q6_K, GQ_MIN_ROWS)

/* --- Q8_0 weights against 16-bit activations (block_q16), for prompts:
 * vpdpwssd on int16 pairs, the weights sign-extended once per call into
 * 16-row panels (lane r of q[j] holds row r's weights 2j and 2j + 1). Per
 * block and 16 outputs: 16 vpdpwssd and 3 float ops, against 32 FMAs for
 * the same products in float32. Block sums stay below 2^31 (16 pairs of
 * |127 * 32767| products). */
struct ga16_block {
    __m512i q[16];
    __m512 d;
};

OT_INLINE void ga16_pack(const uint8_t *w, size_t ws, int nw, int64_t nb, struct ga16_block *out, int unused) {
    (void)unused;
    for (int64_t i = 0; i < nb; i++) {
        __m256i lo[GQ_LANES], hi[GQ_LANES];
        float d[GQ_LANES];
        for (int r = 0; r < GQ_LANES; r++) {
            lo[r] = hi[r] = _mm256_setzero_si256();
            d[r] = 0.0f;
            if (r >= nw)
                continue;
            const block_q8_0 *a = (const block_q8_0 *)(w + r * ws) + i;
            lo[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a->qs));
            hi[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a->qs + 16)));
            d[r] = half(a->d);
        }
        lanes16(lo, out[i].q);
        lanes16(hi, out[i].q + 8);
        out[i].d = _mm512_loadu_ps(d);
    }
}

OT_INLINE void ga16_kern(int64_t nb, const struct ga16_block *pw, const uint8_t *x, size_t xs, float *y,
                         int64_t ldy, __mmask16 lanes, const int NC) {
    __m512 acc[GQ_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const struct ga16_block *b = &pw[i];
        const block_q16 *xb[GQ_NC];
        __m512i isum[GQ_NC];
        for (int c = 0; c < NC; c++) {
            xb[c] = (const block_q16 *)(x + c * xs) + i;
            isum[c] = _mm512_setzero_si512();
        }
        for (int j = 0; j < 16; j++) {
            const __m512i q = _mm512_load_si512(&b->q[j]);
            for (int c = 0; c < NC; c++)
                isum[c] = _mm512_dpwssd_epi32(isum[c], q, bcast32(xb[c]->qs + 2 * j));
        }
        for (int c = 0; c < NC; c++)
            acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(b->d, _mm512_set1_ps(xb[c]->d)), _mm512_cvtepi32_ps(isum[c]),
                                     acc[c]);
    }
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(y + c * ldy, lanes, acc[c]);
}

OT_INLINE void ga16_strip(int64_t nb, const struct ga16_block *pw, const uint8_t *x, size_t xs,
                          const struct ot_xblock *xb, float *y, int64_t ldy, __mmask16 lanes, int nc, int unused) {
    (void)xb;
    (void)unused;
#define GA16_CALL(NC) ga16_kern(nb, pw, x, xs, y, ldy, lanes, NC)
    GQ_BY_NC(nc, GA16_CALL)
#undef GA16_CALL
}

/* Prompts only (at least OT_PREFILL_ROWS rows), so no tile below it. */
static void q8_0_a16_gemm(int64_t k, const uint8_t *w, size_t ws, int nw, const uint8_t *x, size_t xs,
                          const struct ot_xblock *xb, int64_t m, float *y, int64_t ldy) {
    GEMM_UNIT(struct ga16_block, QK, ga16_pack, ga16_strip, 0);
}

/* d = max|x| / 32767 per block, q = x * (1 / d) rounded to nearest even. */
static void quantize_q16(const float *x, void *dst, int64_t n) {
    block_q16 *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK; i++) {
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + i * QK + 8 * j);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 32767.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        for (int j = 0; j < 2; j++) {
            const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(v[2 * j], _mm256_set1_ps(id)));
            const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(v[2 * j + 1], _mm256_set1_ps(id)));
            /* packs interleaves a and b per 128-bit lane; the permute restores element order */
            const __m256i q = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
            _mm256_storeu_si256((__m256i *)(y[i].qs + 16 * j), q);
        }
    }
}
#endif

/* --- activation quantization: the generic C rounding, eight lanes at a time. */

OT_INLINE float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

OT_INLINE __m256 vabs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

/* roundf, exactly: truncate, then step away from zero when the (exact)
 * fraction is at least one half. */
OT_INLINE __m256i round_away8(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(v, t), one = _mm256_set1_ps(1.0f);
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    const __m256 down = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_sub_ps(up, down)));
}

/* Four vectors of eight int32 (each in int8 range) -> 32 int8 in order. */
OT_INLINE void store_i8x32(int8_t *dst, __m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    _mm256_storeu_si256((__m256i *)dst, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

/* One 32-element block as Q8_0 rounds it; returns sum(q) and d. */
OT_INLINE int q8_block(const float *x, int8_t *qs, float *dout) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        amax = _mm256_max_ps(amax, vabs(v[j]));
    }
    const float d = hmax(amax) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    __m256i q[4], sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        q[j] = round_away8(_mm256_mul_ps(v[j], id));
        sum = _mm256_add_epi32(sum, q[j]);
    }
    store_i8x32(qs, q[0], q[1], q[2], q[3]);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    *dout = d;
    return _mm_cvtsi128_si32(s);
}

static void quantize_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        float d;
        q8_block(x + i * QK, y[i].qs, &d);
        y[i].d = _cvtss_sh(d, 0);
    }
}

static void quantize_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        float d;
        const int sum = q8_block(x + i * QK, y[i].qs, &d);
        y[i].d = _cvtss_sh(d, 0);
        y[i].s = _cvtss_sh((float)sum * d, 0);
    }
}

static void quantize_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 amax = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            amax = _mm256_max_ps(amax, vabs(_mm256_loadu_ps(x + j)));
        const float a = hmax(amax);
        memset(y[i].bsums, 0, sizeof y[i].bsums);
        if (a == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, QK_K);
            continue;
        }
        int j = 0; /* the first element of largest magnitude, with its sign */
        while (fabsf(x[j]) != a)
            j++;
        const float iscale = -127.0f / x[j];
        const __m256 sc = _mm256_set1_ps(iscale), top = _mm256_set1_ps(127.0f);
        for (j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int v = 0; v < 4; v++) /* round half to even: the default rounding mode */
                q[v] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * v), sc), top));
            store_i8x32(y[i].qs + j, q[0], q[1], q[2], q[3]);
        }
        for (j = 0; j < QK_K; j++)
            y[i].bsums[j / 16] += y[i].qs[j];
        y[i].d = 1.0f / iscale;
    }
}

/* --- llama.cpp's block product (llamacpp_arith.c) ---------------------------
 *
 * ggml's AVX2 vec_dot_q4_1_q8_1 / tinyBLAS Q8_0 lanes, LLAMACPP_TOKENS
 * activation rows per pass over a weight block: lane l of a block's integer dot product sums
 * elements 4l..4l+3; acc += (d_w * d_x) * lanes by fused multiply-add; hsum
 * adds the lanes pairwise as ggml's hsum_float_8 does. Q8_0 weights are
 * signed: |w| against x with w's sign, as ggml multiplies them. */
#define LLAMACPP_TOKENS (2 * OT_MAXC)
/* One weight row against NT activation rows from xt (NT a constant where inlined). */
OT_INLINE void llamacpp_row_tokens(const uint8_t *wr, int q4_1, const uint8_t *xt, size_t xrow, const float *ds,
                                   int64_t nb, int NT, float *y, int64_t ldy) {
    const size_t xblock = q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0), xoff = q4_1 ? 4 : 2;
    __m256 acc[LLAMACPP_TOKENS];
    float summs[LLAMACPP_TOKENS];
    for (int j = 0; j < NT; j++) {
        acc[j] = _mm256_setzero_ps();
        summs[j] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++, xt += xblock) {
        __m256i wu, wsign;
        float dw, mw = 0.0f;
        if (q4_1) {
            const block_q4_1 *wb = (const block_q4_1 *)wr + b;
            wu = nibbles16(wb->qs);
            wsign = _mm256_set1_epi8(1);
            dw = half(wb->d);
            mw = half(wb->m);
        } else {
            const block_q8_0 *wb = (const block_q8_0 *)wr + b;
            wsign = load256(wb->qs);
            wu = _mm256_sign_epi8(wsign, wsign);
            dw = half(wb->d);
        }
        for (int j = 0; j < NT; j++) {
            const float *d = ds + 2 * (j * nb + b);
            const __m256i xs = _mm256_sign_epi8(load256(xt + j * xrow + xoff), wsign);
            const __m256 lanes = _mm256_cvtepi32_ps(dot_us(_mm256_setzero_si256(), wu, xs));
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[0]), lanes, acc[j]);
            summs[j] += mw * d[1]; /* m and s are float16 values: their product is exact */
        }
    }
    for (int j = 0; j < NT; j++)
        y[j * ldy] = hsum(acc[j]) + summs[j];
}

static void llamacpp_rows(int type, const uint8_t *w, size_t wrow, int64_t r0, int64_t r1, const uint8_t *x,
                          size_t xrow, const float *xds, int64_t m, int64_t k, float *y, int64_t ldy) {
    const int64_t nb = k / QK, full = m - m % LLAMACPP_TOKENS;
    const int q4_1 = type == OT_Q4_1;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * wrow;
        for (int64_t t0 = 0; t0 < full; t0 += LLAMACPP_TOKENS)
            llamacpp_row_tokens(wr, q4_1, x + t0 * xrow, xrow, xds + 2 * t0 * nb, nb, LLAMACPP_TOKENS,
                                y + t0 * ldy + r, ldy);
        if (m - full == 1) /* a decode step: its own unrolled copy */
            llamacpp_row_tokens(wr, q4_1, x + full * xrow, xrow, xds + 2 * full * nb, nb, 1, y + full * ldy + r, ldy);
        else if (full < m)
            llamacpp_row_tokens(wr, q4_1, x + full * xrow, xrow, xds + 2 * full * nb, nb, (int)(m - full),
                                y + full * ldy + r, ldy);
    }
}

/* llama.cpp's float16 products (the lanes of ggml_vec_dot_f16 and tinyBLAS):
 * 16-lane registers as two 8-lane halves, whose pairwise total is
 * hsum(lo + hi). NR rows of b at a time (a constant where inlined) share
 * the loads of a. */
OT_INLINE void llamacpp_dot_f16_rows(const float *a, const uint16_t *b, int64_t n, int regs, const int NR,
                                     float *out) {
    __m256 lo[4][4], hi[4][4];
    for (int j = 0; j < NR; j++)
        for (int g = 0; g < regs; g++)
            lo[j][g] = hi[j][g] = _mm256_setzero_ps();
    const int64_t body = n - n % (16 * (int64_t)regs);
    for (int64_t i = 0; i < body; i += 16) {
        const int g = (int)((i / 16) % regs);
        const __m256 al = _mm256_loadu_ps(a + i), ah = _mm256_loadu_ps(a + i + 8);
        for (int j = 0; j < NR; j++) {
            const uint16_t *bj = b + j * n + i;
            lo[j][g] = _mm256_fmadd_ps(al, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)bj)), lo[j][g]);
            hi[j][g] = _mm256_fmadd_ps(ah, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(bj + 8))), hi[j][g]);
        }
    }
    for (int j = 0; j < NR; j++) {
        for (int h = regs / 2; h >= 1; h /= 2)
            for (int g = 0; g < h; g++) {
                lo[j][g] = _mm256_add_ps(lo[j][g], lo[j][g + h]);
                hi[j][g] = _mm256_add_ps(hi[j][g], hi[j][g + h]);
            }
        double total = hsum(_mm256_add_ps(lo[j][0], hi[j][0]));
        for (int64_t i = body; i < n; i++)
            total += (double)(a[i] * half(b[j * n + i]));
        out[j] = (float)total;
    }
}

static void llamacpp_dot_f16(const float *a, const uint16_t *b, int64_t rows, int64_t n, int regs, float *out) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
        llamacpp_dot_f16_rows(a, b + r * n, n, regs, 4, out + r);
    for (; r < rows; r++)
        llamacpp_dot_f16_rows(a, b + r * n, n, regs, 1, out + r);
}

static void llamacpp_axpy_f16(float *acc, const uint16_t *v, float p, int64_t n) {
    const __m256 pv = _mm256_set1_ps(p);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), pv,
                                                  _mm256_loadu_ps(acc + i)));
    for (; i < n; i++)
        acc[i] = fmaf(half(v[i]), p, acc[i]);
}

/* --- attention row primitives ------------------------------------------- */

/* 8 float16 values of the KV cache as floats. */
OT_INLINE __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* vdot_<kv> and vaxpy_<kv> over a KV cache row of element type T: LOAD8
 * reads 8 elements as floats, CONV one. */
#define KV_ROW_OPS(kv, T, LOAD8, CONV)                                                              \
    OT_INLINE float vdot_##kv(const float *a, const T *b, int64_t n) {                                \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                                  \
        int64_t i = 0;                                                                              \
        for (; i + 16 <= n; i += 16) {                                                              \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LOAD8(b + i), s0);                         \
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), LOAD8(b + i + 8), s1);                 \
        }                                                                                           \
        for (; i + 8 <= n; i += 8)                                                                  \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LOAD8(b + i), s0);                         \
        float s = hsum(_mm256_add_ps(s0, s1));                                                      \
        for (; i < n; i++)                                                                          \
            s += a[i] * CONV(b[i]);                                                                 \
        return s;                                                                                   \
    }                                                                                               \
    /* Four keys per pass: one query load serves four rows, and the four sums                     \
     * are reduced together instead of one horizontal sum per key. */                             \
    OT_INLINE void vdots_##kv(const float *q, const T *k, int64_t nk, int64_t hd, float *s) {       \
        int64_t j = 0;                                                                              \
        for (; j + 4 <= nk; j += 4) {                                                               \
            const T *k0 = k + j * hd, *k1 = k0 + hd, *k2 = k1 + hd, *k3 = k2 + hd;                  \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                              \
            int64_t i = 0;                                                                          \
            for (; i + 8 <= hd; i += 8) {                                                           \
                const __m256 qv = _mm256_loadu_ps(q + i);                                           \
                a0 = _mm256_fmadd_ps(qv, LOAD8(k0 + i), a0);                                        \
                a1 = _mm256_fmadd_ps(qv, LOAD8(k1 + i), a1);                                        \
                a2 = _mm256_fmadd_ps(qv, LOAD8(k2 + i), a2);                                        \
                a3 = _mm256_fmadd_ps(qv, LOAD8(k3 + i), a3);                                        \
            }                                                                                       \
            const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));        \
            _mm_storeu_ps(s + j, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1))); \
            for (; i < hd; i++) {                                                                   \
                s[j] += q[i] * CONV(k0[i]);                                                         \
                s[j + 1] += q[i] * CONV(k1[i]);                                                     \
                s[j + 2] += q[i] * CONV(k2[i]);                                                     \
                s[j + 3] += q[i] * CONV(k3[i]);                                                     \
            }                                                                                       \
        }                                                                                           \
        for (; j < nk; j++)                                                                         \
            s[j] = vdot_##kv(q, k + j * hd, hd);                                                    \
    }                                                                                               \
    /* y += sum_j p[j] v[j], 64 columns at a time held in eight registers over                     \
     * all the keys: no store and reload of y per key. */                                         \
    OT_INLINE void vwsum_##kv(float *y, const float *p, const T *v, int64_t nk, int64_t hd) {       \
        int64_t i = 0;                                                                              \
        for (; i + 64 <= hd; i += 64) {                                                             \
            __m256 acc[8];                                                                          \
            for (int r = 0; r < 8; r++)                                                             \
                acc[r] = _mm256_loadu_ps(y + i + 8 * r);                                            \
            for (int64_t j = 0; j < nk; j++) {                                                      \
                const __m256 pj = _mm256_set1_ps(p[j]);                                             \
                for (int r = 0; r < 8; r++)                                                         \
                    acc[r] = _mm256_fmadd_ps(pj, LOAD8(v + j * hd + i + 8 * r), acc[r]);             \
            }                                                                                       \
            for (int r = 0; r < 8; r++)                                                             \
                _mm256_storeu_ps(y + i + 8 * r, acc[r]);                                            \
        }                                                                                           \
        for (; i + 8 <= hd; i += 8) {                                                               \
            __m256 acc = _mm256_loadu_ps(y + i);                                                    \
            for (int64_t j = 0; j < nk; j++)                                                        \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), LOAD8(v + j * hd + i), acc);            \
            _mm256_storeu_ps(y + i, acc);                                                           \
        }                                                                                           \
        for (; i < hd; i++)                                                                         \
            for (int64_t j = 0; j < nk; j++)                                                        \
                y[i] += p[j] * CONV(v[j * hd + i]);                                                 \
    }
#define AS_FLOAT(x) (x)
KV_ROW_OPS(f32, float, _mm256_loadu_ps, AS_FLOAT)
KV_ROW_OPS(f16, uint16_t, load_f16x8, half)

/* e^x for the softmax's x <= 0: x = n ln2 + r with |r| <= ln2/2, e^r by
 * Cephes' degree-6 polynomial (within 2 ulp of expf), 2^n through the
 * exponent bits. Inputs below -87 (e^x under FLT_MIN) give e^-87, which the
 * softmax sum cannot tell from 0. */
OT_INLINE __m256 vexp(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 er = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(er, _mm256_castsi256_ps(pow2n));
}

/* out = gate / (1 + e^-gate) * up, eight at a time. e^-gate is clamped to
 * e^88 (finite): below gate = -88 the product is under 1e-36 either way. */
static void silu_mul_vec(const float *gate, const float *up, int64_t n, float *out) {
    const __m256 one = _mm256_set1_ps(1.0f), top = _mm256_set1_ps(88.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = vexp(_mm256_min_ps(_mm256_sub_ps(_mm256_setzero_ps(), g), top));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

OT_INLINE float vexp_sum(float *s, int64_t n, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = vexp(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum(acc);
    for (; j < n; j++) {
        s[j] = expf(s[j] - m);
        sum += s[j];
    }
    return sum;
}

OT_INLINE void vscale(float *y, float a, int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}

#define OT_SCALE vscale
#define OT_ATTN_FN attention_f32
#define OT_KV_T float
#define OT_DOT vdot_f32
#define OT_DOTS vdots_f32
#define OT_WSUM vwsum_f32
#define OT_EXPSUM vexp_sum
#include "ot_attn_impl.h"
#define OT_ATTN_FN attention_f16
#define OT_KV_T uint16_t
#define OT_DOT vdot_f16
#define OT_DOTS vdots_f16
#define OT_WSUM vwsum_f16
#define OT_EXPSUM vexp_sum
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
#ifdef __AVX512VNNI__
    t->gemm_q[OT_Q4_0] = q4_0_gemm_q;
    t->gemm_q[OT_Q4_1] = q4_1_gemm_q;
    t->gemm_q[OT_Q8_0] = q8_0_gemm_q;
    t->gemm_q[OT_Q4_K] = q4_K_gemm_q;
    t->gemm_q[OT_Q6_K] = q6_K_gemm_q;
    t->gemm_q8_0_a16 = q8_0_a16_gemm;
    t->quantize_q16 = quantize_q16;
    t->xblock[OT_Q4_0] = q4_0_xblock;
    t->xblock[OT_Q4_1] = q4_1_xblock;
    t->xblock[OT_Q8_0] = q8_0_xblock;
#endif
    t->quantize[OT_Q8_0] = quantize_q8_0;
    t->quantize[OT_Q8_1] = quantize_q8_1;
    t->quantize[OT_Q8_K] = quantize_q8_K;
    t->attention_f32 = attention_f32;
    t->attention_f16 = attention_f16;
    t->silu_mul = silu_mul_vec;
    t->llamacpp_rows = llamacpp_rows;
    t->llamacpp_dot_f16 = llamacpp_dot_f16;
    t->llamacpp_axpy_f16 = llamacpp_axpy_f16;
    SET_VISION(t, OT_ISA_SUFFIX);
    FN(ot_register_montecarlo)(t);
}
