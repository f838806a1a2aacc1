/* Vision kernels for any CPU: the shared implementation at the SSE2 baseline
 * width, plus weight packing, which is the same for every ISA. */
#define OT_VW 4
#define OT_MR 1
#define OT_ATT_QB 2
#define OT_ATT_JB 4
#define OT_ATT_HV 4
#define OT_VFN(name) ot_vision_##name##_generic
#include "ot_vision_impl.h"

size_t ot_gemm_packed_floats(int64_t n, int64_t k) {
    return (size_t)((n + OT_GEMM_NR - 1) / OT_GEMM_NR) * (size_t)k * OT_GEMM_NR;
}

struct pack_job {
    const float *w;
    float *packed;
    int64_t n, k;
};

static void pack_range(void *p, int64_t p0, int64_t p1) {
    const struct pack_job *c = p;
    const int64_t n = c->n, k = c->k;
    for (int64_t pn = p0; pn < p1; pn++) {
        float *panel = c->packed + pn * k * OT_GEMM_NR;
        for (int64_t i = 0; i < k; i++)
            for (int64_t col = 0; col < OT_GEMM_NR; col++) {
                const int64_t row = pn * OT_GEMM_NR + col;
                panel[i * OT_GEMM_NR + col] = row < n ? c->w[row * k + i] : 0.0f;
            }
    }
}

void ot_gemm_pack(const float *w, int64_t n, int64_t k, float *packed) {
    struct pack_job c = {w, packed, n, k};
    ot_parallel_for((n + OT_GEMM_NR - 1) / OT_GEMM_NR, n * k, pack_range, &c);
}
