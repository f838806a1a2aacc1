/* Entry points for the Monte Carlo kernels: paths split into chunks, the
 * chunks over threads. A path's numbers depend only on the seed and its
 * index, so any split gives the same output. */
#include "ot_internal.h"

/* Paths per chunk: a multiple of the paths every ISA's kernels step at once
 * (OT_MC_GROUP x vector width: 64 for AVX-512). */
#define OT_MC_CHUNK 256

enum mc_kind { MC_PHILOX, MC_NORMALS, MC_GBM, MC_HESTON };

struct mc_ctx {
    const struct ot_kernels *kt;
    enum mc_kind kind;
    const void *params;
    uint64_t seed;
    int64_t path0, npaths, n; /* n: blocks per path, or steps */
    void *out;
};

static void mc_range(void *p, int64_t c0, int64_t c1) {
    const struct mc_ctx *c = p;
    const int64_t i0 = c0 * OT_MC_CHUNK, i1 = c1 * OT_MC_CHUNK < c->npaths ? c1 * OT_MC_CHUNK : c->npaths;
    const int64_t first = c->path0 + i0, count = i1 - i0;
    switch (c->kind) {
    case MC_PHILOX:
        c->kt->mc_philox(c->seed, first, count, c->n, (uint32_t *)c->out + i0 * c->n * 4);
        break;
    case MC_NORMALS:
        c->kt->mc_normals(c->seed, first, count, c->n, (float *)c->out + i0 * c->n * 4);
        break;
    case MC_GBM:
        c->kt->mc_gbm(c->params, c->seed, first, count, c->n, (float *)c->out + i0);
        break;
    case MC_HESTON:
        c->kt->mc_heston(c->params, c->seed, first, count, c->n, (float *)c->out + i0);
        break;
    }
}

/* Work per path and unit of n, in the elements of ot_parallel_for's
 * threshold: a Philox block or a path step costs about as much as a few
 * dozen elementwise operations. */
#define OT_MC_WORK 32

static void mc_run(enum mc_kind kind, const void *params, uint64_t seed, int64_t path0, int64_t npaths, int64_t n,
                   void *out) {
    struct mc_ctx c = {ot_active(), kind, params, seed, path0, npaths, n, out};
    ot_parallel_for((npaths + OT_MC_CHUNK - 1) / OT_MC_CHUNK, npaths * n * OT_MC_WORK, mc_range, &c);
}

void ot_philox4x32(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, uint32_t *out) {
    mc_run(MC_PHILOX, NULL, seed, path0, npaths, nblocks, out);
}

void ot_mc_normals(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, float *out) {
    mc_run(MC_NORMALS, NULL, seed, path0, npaths, nblocks, out);
}

void ot_mc_gbm(const struct ot_gbm_params *p, uint64_t seed, int64_t path0, int64_t npaths, int64_t steps,
               float *out) {
    mc_run(MC_GBM, p, seed, path0, npaths, steps, out);
}

void ot_mc_heston(const struct ot_heston_params *p, uint64_t seed, int64_t path0, int64_t npaths, int64_t steps,
                  float *out) {
    mc_run(MC_HESTON, p, seed, path0, npaths, steps, out);
}
