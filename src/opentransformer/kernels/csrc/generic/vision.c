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

void ot_gemm_pack(const float *w, int64_t n, int64_t k, float *packed) {
    const int64_t npanel = (n + OT_GEMM_NR - 1) / OT_GEMM_NR;
#pragma omp parallel for schedule(static)
    for (int64_t pn = 0; pn < npanel; pn++) {
        float *panel = packed + pn * k * OT_GEMM_NR;
        for (int64_t p = 0; p < k; p++)
            for (int64_t c = 0; c < OT_GEMM_NR; c++) {
                const int64_t row = pn * OT_GEMM_NR + c;
                panel[p * OT_GEMM_NR + c] = row < n ? w[row * k + p] : 0.0f;
            }
    }
}
