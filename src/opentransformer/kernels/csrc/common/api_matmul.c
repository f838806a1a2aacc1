/* Entry points for block formats and the matmul: size queries, dequantize,
 * activation quantization, and the threaded matmul driver around the active
 * ISA's tile kernel. */
#include "ot_internal.h"

struct type_info {
    int64_t blck;
    size_t size;
    int weight; /* accepted by matmul and dequantize */
    int act;    /* activation type of its dot product, or -1 */
};

static struct type_info info(int type) {
    switch (type) {
    case OT_F32: return (struct type_info){1, 4, 1, -1};
    case OT_F16: return (struct type_info){1, 2, 1, -1};
    case OT_BF16: return (struct type_info){1, 2, 1, -1};
    case OT_Q4_0: return (struct type_info){QK, sizeof(block_q4_0), 1, OT_Q8_0};
    case OT_Q4_1: return (struct type_info){QK, sizeof(block_q4_1), 1, OT_Q8_1};
    case OT_Q8_0: return (struct type_info){QK, sizeof(block_q8_0), 1, OT_Q8_0};
    case OT_Q8_1: return (struct type_info){QK, sizeof(block_q8_1), 0, -1};
    case OT_Q4_K: return (struct type_info){QK_K, sizeof(block_q4_K), 1, OT_Q8_K};
    case OT_Q6_K: return (struct type_info){QK_K, sizeof(block_q6_K), 1, OT_Q8_K};
    case OT_Q8_K: return (struct type_info){QK_K, sizeof(block_q8_K), 0, -1};
    default: return (struct type_info){0, 0, 0, -1};
    }
}

int ot_type_supported(int type) { return info(type).weight; }
int64_t ot_block_size(int type) { return info(type).blck; }
size_t ot_type_size(int type) { return info(type).size; }

size_t ot_row_bytes(int type, int64_t n) {
    const struct type_info t = info(type);
    return t.blck ? (size_t)(n / t.blck) * t.size : 0;
}

int ot_activation_type(int weight_type) { return info(weight_type).act; }

struct dequant_ctx {
    ot_row_fn dequantize;
    const uint8_t *src;
    float *dst;
    size_t src_stride;
    int64_t n;
};

static void dequant_range(void *p, int64_t begin, int64_t end) {
    const struct dequant_ctx *c = p;
    for (int64_t r = begin; r < end; r++)
        c->dequantize(c->src + r * c->src_stride, c->dst + r * c->n, c->n);
}

void ot_dequantize(int type, const void *src, int64_t nrows, int64_t n, float *dst) {
    const struct type_info t = info(type);
    if (!t.weight || n % t.blck)
        return;
    struct dequant_ctx c = {ot_active()->dequantize[type], src, dst, ot_row_bytes(type, n), n};
    ot_parallel_for(nrows, nrows * n, dequant_range, &c);
}

/* Activation rows quantized, and where a GEMM kernel wants them, each row's
 * blocks described as it reads them (ot_xblock). */
struct act_ctx {
    ot_quant_fn quantize;
    ot_xblock_fn xblock; /* NULL when the weight type's GEMM has none */
    const float *x;
    uint8_t *q;
    struct ot_xblock *xb;
    size_t qs;
    int64_t k, nb;
};

static void act_range(void *p, int64_t r0, int64_t r1) {
    const struct act_ctx *c = p;
    for (int64_t r = r0; r < r1; r++) {
        c->quantize(c->x + r * c->k, c->q + r * c->qs, c->k);
        if (c->xblock)
            c->xblock(c->q + r * c->qs, c->xb + r * c->nb, c->k);
    }
}

void ot_quantize_activations(int act_type, const float *x, int64_t nrows, int64_t n, void *dst) {
    const struct type_info t = info(act_type);
    const ot_quant_fn f = t.blck ? ot_active()->quantize[act_type] : NULL;
    if (!f || n % t.blck)
        return;
    struct act_ctx c = {f, NULL, x, dst, NULL, ot_row_bytes(act_type, n), n, n / t.blck};
    ot_parallel_for(nrows, nrows * n, act_range, &c);
}

/* Scratch of a product: the quantized activation rows, then each row's
 * blocks as GEMM kernels read them (ot_xblock). */
static size_t xblocks_offset(int act, int64_t m, int64_t k) {
    const size_t q = (size_t)m * ot_row_bytes(act, k);
    return (q + 63) / 64 * 64;
}

size_t ot_matmul_xblocks_at(int type, int64_t m, int64_t k) { return xblocks_offset(info(type).act, m, k); }

size_t ot_matmul_scratch_bytes(int type, int64_t m, int64_t k) {
    const int act = info(type).act;
    if (type == OT_F16) /* ot_llamacpp_matmul's x, rounded to float16 */
        return (size_t)m * (size_t)k * sizeof(float);
    if (act < 0)
        return 0;
    const size_t blocks = (size_t)m * (size_t)(k / info(act).blck);
    const size_t bytes = xblocks_offset(act, m, k) + blocks * sizeof(struct ot_xblock);
    const size_t a16 = (size_t)m * (size_t)(k / QK) * sizeof(block_q16);
    return type == OT_Q8_0 && a16 > bytes ? a16 : bytes;
}

/* A product of at most OT_SHORT_ROWS activation rows and fewer than
 * OT_SHORT_WEIGHTS weights (a decode step's projection, not its output head)
 * streams its weights in a few tens of microseconds in all. */
#define OT_SHORT_ROWS 16
#define OT_SHORT_WEIGHTS (4 << 20)

struct proj_ctx {
    const struct ot_kernels *kt;
    const struct ot_linear *const *lins;
    float *const *ys;
    int64_t units_before[OT_PROJECT_MAX + 1]; /* units of the projections before each */
    int count;
    const uint8_t *x; /* quantized (or float32) input rows */
    const struct ot_xblock *xb;
    size_t xs;
    int64_t m;
    int act16;
};

static void proj_range(void *p, int64_t u0, int64_t u1) {
    const struct proj_ctx *c = p;
    int j = 0;
    for (int64_t u = u0; u < u1; u++) {
        while (j + 1 < c->count && u >= c->units_before[j + 1])
            j++;
        const struct ot_linear *lin = c->lins[j];
        const size_t ws = ot_row_bytes(lin->type, lin->k);
        const int64_t r0 = (u - c->units_before[j]) * OT_UNIT_ROWS;
        const int nw = (int)(r0 + OT_UNIT_ROWS < lin->n ? OT_UNIT_ROWS : lin->n - r0);
        const uint8_t *w = (const uint8_t *)lin->w + r0 * ws;
        float *y = c->ys[j] + r0;
        const ot_gemm_q_fn gemm = c->act16 ? c->kt->gemm_q8_0_a16 : c->kt->gemm_q[lin->type];
        if (gemm) {
            gemm(lin->k, w, ws, nw, c->x, c->xs, c->xb, c->m, y, lin->n);
            continue;
        }
        const ot_tile_fn tile = c->kt->tile[lin->type];
        for (int64_t t = 0; t < c->m; t += OT_TILE_COLS) {
            const int nx = (int)(c->m - t < OT_TILE_COLS ? c->m - t : OT_TILE_COLS);
            tile(lin->k, w, ws, nw, c->x + t * c->xs, c->xs, nx, y + t * lin->n, lin->n);
        }
    }
}

void ot_project(const struct ot_linear *const *lins, float *const *ys, int count, const float *x, int64_t m,
                void *scratch, int act16) {
    const struct ot_kernels *kt = ot_active();
    const int type = lins[0]->type, act = info(type).act;
    const int64_t k = lins[0]->k;
    struct proj_ctx c = {kt, lins, ys, {0}, count, (const uint8_t *)x, NULL, (size_t)k * sizeof(float), m, act16};
    int64_t weights = 0;
    for (int i = 0; i < count; i++) {
        c.units_before[i + 1] = c.units_before[i] + (lins[i]->n + OT_UNIT_ROWS - 1) / OT_UNIT_ROWS;
        weights += lins[i]->n * k;
    }
    if (act16) {
        struct act_ctx a = {kt->quantize_q16, NULL, x, scratch, NULL, (k / QK) * sizeof(block_q16), k, k / QK};
        ot_parallel_for(m, m * k, act_range, &a);
        c.x = scratch;
        c.xs = a.qs;
    } else if (act >= 0) {
        const ot_xblock_fn xblock = kt->gemm_q[type] ? kt->xblock[type] : NULL;
        struct act_ctx a = {kt->quantize[act], xblock, x, scratch,
                            (struct ot_xblock *)((uint8_t *)scratch + xblocks_offset(act, m, k)),
                            ot_row_bytes(act, k), k, k / info(act).blck};
        ot_parallel_for(m, m * k, act_range, &a);
        c.x = scratch;
        c.xs = a.qs;
        c.xb = a.xb;
    }
    /* Short products get one range per thread: each claim moves the shared
     * ticket between cores, which ranges of a few microseconds do not repay.
     * Prompts and the output head keep finer ranges, which even out threads
     * that lose their core. */
    const int short_product = m <= OT_SHORT_ROWS && weights < OT_SHORT_WEIGHTS;
    ot_parallel_ranges(c.units_before[count], weights * m, short_product ? 1 : OT_RANGES_PER_THREAD, proj_range, &c);
}

int ot_matmul(int type, const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y, void *scratch) {
    const struct type_info t = info(type);
    if (!t.weight || k <= 0 || k % t.blck)
        return -1;
    const struct ot_linear lin = {type, w, n, k, NULL};
    const struct ot_linear *lins[1] = {&lin};
    float *const ys[1] = {y};
    ot_project(lins, ys, 1, x, m, scratch, 0);
    return 0;
}

int ot_matmul_a16(int type, const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                  void *scratch) {
    if (type != OT_Q8_0 || !ot_active()->gemm_q8_0_a16 || k <= 0 || k % QK)
        return -1;
    const struct ot_linear lin = {type, w, n, k, NULL};
    const struct ot_linear *lins[1] = {&lin};
    float *const ys[1] = {y};
    ot_project(lins, ys, 1, x, m, scratch, 1);
    return 0;
}
