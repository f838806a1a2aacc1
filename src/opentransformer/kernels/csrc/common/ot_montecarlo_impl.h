/* Monte Carlo kernels, written once against GCC vector extensions and
 * compiled once per ISA: generic/montecarlo.c (4 lanes), x86/avx2_montecarlo.c
 * (8), x86/avx512_montecarlo.c (16), arm/neon_montecarlo.c (4). The including
 * file defines
 *   OT_MC_VW    paths per vector (one 32-bit lane each)
 *   OT_MCFN(n)  the ISA-specific name of kernel n
 * and gets ot_register_montecarlo_<suffix>, which fills the Monte Carlo slots.
 *
 * Same seed, same numbers everywhere. Path p's random numbers are a pure
 * function of (seed, p, block index): Philox4x32-10 (Salmon et al. 2011, the
 * constants of Random123) with counter (p mod 2^32, p div 2^32, j, 0) and key
 * (seed mod 2^32, seed div 2^32) gives normals 4j .. 4j+3 of the path. Lanes
 * never mix, so neither the lane a path lands in, nor the thread, nor the
 * vector width changes its numbers. The float math is single precision and
 * uses only operations IEEE 754 rounds exactly (+, -, *, sqrt, conversions of
 * integers below 2^24), in the same order in every variant, with contraction
 * to FMA turned off below, so every ISA gives the same bits (numpy float32
 * replays them: kernels/reference.py). log, sin and cos are polynomials of
 * our own rather than libm calls, whose scalar and vector versions differ.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* An FMA rounds once where a * b + c rounds twice: contracting in one ISA's
 * build and not another's would break bitwise reproducibility. */
#pragma GCC optimize("fp-contract=off")

typedef uint32_t vu __attribute__((vector_size(OT_MC_VW * 4)));
typedef int32_t vi __attribute__((vector_size(OT_MC_VW * 4)));
typedef float vf __attribute__((vector_size(OT_MC_VW * 4)));

#define OT_MC_INLINE static inline __attribute__((always_inline))

/* hi:lo = a * m per lane (32 x 32 -> 64 bits), and lane-wise sqrt: the two
 * operations GCC's vector extensions do not express well. */
#if defined(__AVX512F__) && OT_MC_VW == 16
OT_MC_INLINE void mulhilo(vu a, uint32_t m, vu *hi, vu *lo) {
    const __m512i x = (__m512i)a, mm = _mm512_set1_epi64(m), low = _mm512_set1_epi64(0xFFFFFFFF);
    const __m512i even = _mm512_mul_epu32(x, mm), odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mm);
    *hi = (vu)_mm512_or_si512(_mm512_srli_epi64(even, 32), _mm512_andnot_si512(low, odd));
    *lo = (vu)_mm512_or_si512(_mm512_and_si512(even, low), _mm512_slli_epi64(odd, 32));
}
OT_MC_INLINE vf vsqrt(vf x) { return (vf)_mm512_sqrt_ps((__m512)x); }
#elif defined(__AVX2__) && OT_MC_VW == 8
OT_MC_INLINE void mulhilo(vu a, uint32_t m, vu *hi, vu *lo) {
    const __m256i x = (__m256i)a, mm = _mm256_set1_epi64x(m), low = _mm256_set1_epi64x(0xFFFFFFFF);
    const __m256i even = _mm256_mul_epu32(x, mm), odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
    *hi = (vu)_mm256_or_si256(_mm256_srli_epi64(even, 32), _mm256_andnot_si256(low, odd));
    *lo = (vu)_mm256_or_si256(_mm256_and_si256(even, low), _mm256_slli_epi64(odd, 32));
}
OT_MC_INLINE vf vsqrt(vf x) { return (vf)_mm256_sqrt_ps((__m256)x); }
#elif defined(__SSE2__) && OT_MC_VW == 4
OT_MC_INLINE void mulhilo(vu a, uint32_t m, vu *hi, vu *lo) {
    const __m128i x = (__m128i)a, mm = _mm_set1_epi64x(m), low = _mm_set1_epi64x(0xFFFFFFFF);
    const __m128i even = _mm_mul_epu32(x, mm), odd = _mm_mul_epu32(_mm_srli_epi64(x, 32), mm);
    *hi = (vu)_mm_or_si128(_mm_srli_epi64(even, 32), _mm_andnot_si128(low, odd));
    *lo = (vu)_mm_or_si128(_mm_and_si128(even, low), _mm_slli_epi64(odd, 32));
}
OT_MC_INLINE vf vsqrt(vf x) { return (vf)_mm_sqrt_ps((__m128)x); }
#elif defined(__ARM_NEON) && defined(__aarch64__) && OT_MC_VW == 4
OT_MC_INLINE void mulhilo(vu a, uint32_t m, vu *hi, vu *lo) {
    const uint32x4_t x = (uint32x4_t)a;
    const uint32x4_t p01 = vreinterpretq_u32_u64(vmull_n_u32(vget_low_u32(x), m));
    const uint32x4_t p23 = vreinterpretq_u32_u64(vmull_high_n_u32(x, m));
    *hi = (vu)vuzp2q_u32(p01, p23);
    *lo = (vu)vuzp1q_u32(p01, p23);
}
OT_MC_INLINE vf vsqrt(vf x) { return (vf)vsqrtq_f32((float32x4_t)x); }
#else
OT_MC_INLINE void mulhilo(vu a, uint32_t m, vu *hi, vu *lo) {
    for (int i = 0; i < OT_MC_VW; i++) {
        const uint64_t p = (uint64_t)a[i] * m;
        (*hi)[i] = (uint32_t)(p >> 32);
        (*lo)[i] = (uint32_t)p;
    }
}
OT_MC_INLINE vf vsqrt(vf x) {
    for (int i = 0; i < OT_MC_VW; i++)
        x[i] = sqrtf(x[i]);
    return x;
}
#endif

OT_MC_INLINE vf vset1(float s) { return (vf){0} + s; }
OT_MC_INLINE vf vsel(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

/* --- Philox4x32-10 ---------------------------------------------------------- */

/* Each kernel steps OT_MC_GROUP vectors of paths side by side: one vector's
 * Philox rounds are a chain of dependent multiplies, and interleaved
 * independent chains keep the vector units busy. Heston path steps per second
 * on one core of the development machine (AMD EPYC, AVX-512), groups of
 * 1 / 2 / 4 / 8: generic 138 / 170 / 191 / 189 M,
 * AVX2 291 / 364 / 419 / 431 M, AVX-512 643 / 783 / 930 / 950 M. */
#define OT_MC_GROUP 4
#define OT_MC_PATHS (OT_MC_GROUP * OT_MC_VW) /* paths per kernel iteration */

/* The counter words of each lane, c[g][0..3], in place become its four
 * outputs; the round keys are Philox's Weyl sequence. */
OT_MC_INLINE void philox4x32_10(vu c[OT_MC_GROUP][4], uint64_t seed) {
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        for (int g = 0; g < OT_MC_GROUP; g++) {
            vu hi0, lo0, hi1, lo1;
            mulhilo(c[g][0], 0xD2511F53u, &hi0, &lo0);
            mulhilo(c[g][2], 0xCD9E8D57u, &hi1, &lo1);
            c[g][0] = hi1 ^ c[g][1] ^ k0;
            c[g][1] = lo1;
            c[g][2] = hi0 ^ c[g][3] ^ k1;
            c[g][3] = lo0;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* Counter words 0 and 1 of the OT_MC_PATHS paths from p on. */
OT_MC_INLINE void path_words(int64_t p, vu lo[OT_MC_GROUP], vu hi[OT_MC_GROUP]) {
    for (int g = 0; g < OT_MC_GROUP; g++) {
        uint32_t l[OT_MC_VW], h[OT_MC_VW];
        for (int i = 0; i < OT_MC_VW; i++) {
            const uint64_t path = (uint64_t)(p + g * OT_MC_VW + i);
            l[i] = (uint32_t)path;
            h[i] = (uint32_t)(path >> 32);
        }
        memcpy(&lo[g], l, sizeof l);
        memcpy(&hi[g], h, sizeof h);
    }
}

OT_MC_INLINE void philox_block(const vu plo[OT_MC_GROUP], const vu phi[OT_MC_GROUP], uint32_t j, uint64_t seed,
                               vu c[OT_MC_GROUP][4]) {
    for (int g = 0; g < OT_MC_GROUP; g++) {
        c[g][0] = plo[g];
        c[g][1] = phi[g];
        c[g][2] = (vu){0} + j;
        c[g][3] = (vu){0};
    }
    philox4x32_10(c, seed);
}

/* --- uniform to normal: Box-Muller ------------------------------------------ */

/* ln u for u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m by
 * Cephes' logf polynomial in m - 1, ln 2 split in two so e ln 2 adds
 * exactly; within 2 ulp of the true value. */
OT_MC_INLINE vf vlog_unit(vf u) {
    const vi bits = (vi)u;
    vi e = (bits >> 23) - 126;
    const vf m = (vf)((bits & 0x007FFFFF) | 0x3F000000); /* [0.5, 1) */
    const vi below = m < vset1(0.707106781186547524f);
    e = e + below; /* the mask is -1 where true */
    const vf x = vsel(below, m + m, m) - vset1(1.0f);
    const vf z = x * x;
    vf p = vset1(7.0376836292e-2f);
    p = p * x + vset1(-1.1514610310e-1f);
    p = p * x + vset1(1.1676998740e-1f);
    p = p * x + vset1(-1.2420140846e-1f);
    p = p * x + vset1(1.4249322787e-1f);
    p = p * x + vset1(-1.6668057665e-1f);
    p = p * x + vset1(2.0000714765e-1f);
    p = p * x + vset1(-2.4999993993e-1f);
    p = p * x + vset1(3.3333331174e-1f);
    const vf ef = __builtin_convertvector(e, vf);
    vf y = x * z * p;
    y = y + ef * vset1(-2.12194440e-4f);
    y = y - vset1(0.5f) * z;
    return (x + y) + ef * vset1(0.693359375f);
}

/* (r cos 2 pi v, r sin 2 pi v), r = sqrt(-2 ln u), from 24 bits of a for u in
 * (0, 1] (|z| <= 5.77) and 24 bits of b for v in [0, 1). The angle is reduced
 * to a quarter turn q and t in [-pi/4, pi/4) in integers, exactly; sin t and
 * cos t are Cephes' sinf/cosf polynomials (within 1 ulp there). */
OT_MC_INLINE void box_muller(vu a, vu b, vf *z_cos, vf *z_sin) {
    const vf u = __builtin_convertvector((vi)((a >> 8) + 1), vf) * vset1(0x1p-24f);
    const vf r = vsqrt(vlog_unit(u) * vset1(-2.0f));
    const vi k = (vi)(b >> 8);
    const vi q = (k + (1 << 21)) >> 22; /* nearest quarter turn, 0 .. 4 */
    const vf t = __builtin_convertvector(k - (q << 22), vf) * vset1((float)(6.28318530717958647692 / 16777216.0));
    const vf z = t * t;
    vf sp = vset1(-1.9515295891e-4f);
    sp = sp * z + vset1(8.3321608736e-3f);
    sp = sp * z + vset1(-1.6666654611e-1f);
    const vf s = sp * z * t + t;
    vf cp = vset1(2.443315711809948e-5f);
    cp = cp * z + vset1(-1.388731625493765e-3f);
    cp = cp * z + vset1(4.166664568298827e-2f);
    const vf c = (cp * z * z - vset1(0.5f) * z) + vset1(1.0f);
    /* sin(q pi/2 + t), cos(q pi/2 + t): odd q swaps sin and cos; the sign
     * bit flips for sin when q & 2 and for cos when (q + 1) & 2. */
    const vi odd = (q & 1) != 0;
    const vu sin_sign = (vu)(q & 2) << 30, cos_sign = (vu)((q + 1) & 2) << 30;
    *z_sin = r * (vf)((vu)vsel(odd, c, s) ^ sin_sign);
    *z_cos = r * (vf)((vu)vsel(odd, s, c) ^ cos_sign);
}

/* Normals 4j .. 4j + 3 of each lane's path. */
OT_MC_INLINE void normals4(const vu plo[OT_MC_GROUP], const vu phi[OT_MC_GROUP], uint32_t j, uint64_t seed,
                           vf z[OT_MC_GROUP][4]) {
    vu c[OT_MC_GROUP][4];
    philox_block(plo, phi, j, seed, c);
    for (int g = 0; g < OT_MC_GROUP; g++) {
        box_muller(c[g][0], c[g][1], &z[g][0], &z[g][1]);
        box_muller(c[g][2], c[g][3], &z[g][2], &z[g][3]);
    }
}

/* --- kernels over paths [path0, path0 + npaths) ----------------------------- */

/* Paths of vector g of the iteration at i0 that exist (0 .. OT_MC_VW). */
OT_MC_INLINE int lanes_of(int64_t npaths, int64_t i0, int g) {
    const int64_t left = npaths - i0 - (int64_t)g * OT_MC_VW;
    return left <= 0 ? 0 : left < OT_MC_VW ? (int)left : OT_MC_VW;
}

/* out[i][j][w]: word w of block j of path path0 + i. */
static void OT_MCFN(mc_philox)(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, uint32_t *out) {
    for (int64_t i0 = 0; i0 < npaths; i0 += OT_MC_PATHS) {
        vu plo[OT_MC_GROUP], phi[OT_MC_GROUP];
        path_words(path0 + i0, plo, phi);
        for (int64_t j = 0; j < nblocks; j++) {
            vu c[OT_MC_GROUP][4];
            philox_block(plo, phi, (uint32_t)j, seed, c);
            for (int g = 0; g < OT_MC_GROUP; g++)
                for (int l = 0; l < lanes_of(npaths, i0, g); l++)
                    for (int w = 0; w < 4; w++)
                        out[((i0 + g * OT_MC_VW + l) * nblocks + j) * 4 + w] = c[g][w][l];
        }
    }
}

/* out[i][n]: normal n (< 4 nblocks) of path path0 + i. */
static void OT_MCFN(mc_normals)(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, float *out) {
    for (int64_t i0 = 0; i0 < npaths; i0 += OT_MC_PATHS) {
        vu plo[OT_MC_GROUP], phi[OT_MC_GROUP];
        path_words(path0 + i0, plo, phi);
        for (int64_t j = 0; j < nblocks; j++) {
            vf z[OT_MC_GROUP][4];
            normals4(plo, phi, (uint32_t)j, seed, z);
            for (int g = 0; g < OT_MC_GROUP; g++)
                for (int l = 0; l < lanes_of(npaths, i0, g); l++)
                    for (int w = 0; w < 4; w++)
                        out[((i0 + g * OT_MC_VW + l) * nblocks + j) * 4 + w] = z[g][w][l];
        }
    }
}

OT_MC_INLINE void store_paths(float *out, int64_t npaths, int64_t i0, const vf x[OT_MC_GROUP]) {
    for (int g = 0; g < OT_MC_GROUP; g++)
        memcpy(out + i0 + g * OT_MC_VW, &x[g], (size_t)lanes_of(npaths, i0, g) * sizeof(float));
}

/* Log-Euler (exact for GBM): x += drift_dt + vol_sqrt_dt z, step s taking
 * normal s. out[i] = ln(S_T / S_0) of path path0 + i. */
static void OT_MCFN(mc_gbm)(const struct ot_gbm_params *gp, uint64_t seed, int64_t path0, int64_t npaths,
                            int64_t steps, float *out) {
    const vf drift = vset1(gp->drift_dt), vol = vset1(gp->vol_sqrt_dt);
    for (int64_t i0 = 0; i0 < npaths; i0 += OT_MC_PATHS) {
        vu plo[OT_MC_GROUP], phi[OT_MC_GROUP];
        path_words(path0 + i0, plo, phi);
        vf x[OT_MC_GROUP];
        for (int g = 0; g < OT_MC_GROUP; g++)
            x[g] = vset1(0.0f);
        for (int64_t s = 0; s < steps; s += 4) {
            vf z[OT_MC_GROUP][4];
            normals4(plo, phi, (uint32_t)(s / 4), seed, z);
            const int n = steps - s < 4 ? (int)(steps - s) : 4;
            for (int i = 0; i < n; i++)
                for (int g = 0; g < OT_MC_GROUP; g++)
                    x[g] = x[g] + (drift + vol * z[g][i]);
        }
        store_paths(out, npaths, i0, x);
    }
}

/* Heston, full truncation Euler (Lord, Koekkoek and van Dijk 2010) on the log
 * price, step s taking normals 2s (price) and 2s + 1 (independent part of
 * the variance's shock):
 *   v+ = max(v, 0), d = sqrt(v+ dt)
 *   x += (mu_dt - half_dt v+) + d z1
 *   v += kappa_dt (theta - v+) + xi d (rho z1 + rho_bar z2)
 * out[i] = ln(S_T / S_0) of path path0 + i. */
static void OT_MCFN(mc_heston)(const struct ot_heston_params *h, uint64_t seed, int64_t path0, int64_t npaths,
                               int64_t steps, float *out) {
    const vf mu_dt = vset1(h->mu_dt), half_dt = vset1(h->half_dt), dt = vset1(h->dt);
    const vf kappa_dt = vset1(h->kappa_dt), theta = vset1(h->theta), xi = vset1(h->xi);
    const vf rho = vset1(h->rho), rho_bar = vset1(h->rho_bar), zero = vset1(0.0f);
    for (int64_t i0 = 0; i0 < npaths; i0 += OT_MC_PATHS) {
        vu plo[OT_MC_GROUP], phi[OT_MC_GROUP];
        path_words(path0 + i0, plo, phi);
        vf x[OT_MC_GROUP], v[OT_MC_GROUP];
        for (int g = 0; g < OT_MC_GROUP; g++) {
            x[g] = zero;
            v[g] = vset1(h->v0);
        }
        for (int64_t s = 0; s < steps; s += 2) {
            vf z[OT_MC_GROUP][4];
            normals4(plo, phi, (uint32_t)(s / 2), seed, z);
            const int n = steps - s < 2 ? 1 : 2;
            for (int i = 0; i < n; i++)
                for (int g = 0; g < OT_MC_GROUP; g++) {
                    const vf vp = vsel(v[g] > zero, v[g], zero);
                    const vf d = vsqrt(vp * dt);
                    const vf z1 = z[g][2 * i], z2 = z[g][2 * i + 1];
                    x[g] = x[g] + ((mu_dt - half_dt * vp) + d * z1);
                    v[g] = v[g] + (kappa_dt * (theta - vp) + xi * d * (rho * z1 + rho_bar * z2));
                }
        }
        store_paths(out, npaths, i0, x);
    }
}

void OT_MCFN(ot_register_montecarlo)(struct ot_kernels *t) {
    t->mc_philox = OT_MCFN(mc_philox);
    t->mc_normals = OT_MCFN(mc_normals);
    t->mc_gbm = OT_MCFN(mc_gbm);
    t->mc_heston = OT_MCFN(mc_heston);
}
