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

/* Row-wise conversions (dequantize or quantize) over a range of rows. */
struct rows_ctx {
    ot_row_fn dequantize; /* one of the two */
    ot_quant_fn quantize;
    const uint8_t *src;
    uint8_t *dst;
    size_t src_stride, dst_stride;
    int64_t n;
};

static void rows_range(void *p, int64_t begin, int64_t end) {
    const struct rows_ctx *c = p;
    for (int64_t r = begin; r < end; r++)
        if (c->dequantize)
            c->dequantize(c->src + r * c->src_stride, (float *)(c->dst + r * c->dst_stride), c->n);
        else
            c->quantize((const float *)(c->src + r * c->src_stride), c->dst + r * c->dst_stride, c->n);
}

void ot_dequantize(int type, const void *src, int64_t nrows, int64_t n, float *dst) {
    const struct type_info t = info(type);
    if (!t.weight || n % t.blck)
        return;
    struct rows_ctx c = {ot_active()->dequantize[type], NULL, src,
                         (uint8_t *)dst, ot_row_bytes(type, n), (size_t)n * sizeof(float), n};
    ot_parallel_for(nrows, nrows * n, rows_range, &c);
}

void ot_quantize_activations(int act_type, const float *x, int64_t nrows, int64_t n, void *dst) {
    const struct type_info t = info(act_type);
    const ot_quant_fn f = t.blck ? ot_active()->quantize[act_type] : NULL;
    if (!f || n % t.blck)
        return;
    struct rows_ctx c = {NULL, f, (const uint8_t *)x, dst,
                         (size_t)n * sizeof(float), ot_row_bytes(act_type, n), n};
    ot_parallel_for(nrows, nrows * n, rows_range, &c);
}

size_t ot_matmul_scratch_bytes(int type, int64_t m, int64_t k) {
    const int act = info(type).act;
    return act < 0 ? 0 : (size_t)m * ot_row_bytes(act, k);
}

/* Weight rows per unit of work: a unit's rows stay in cache while every
 * activation row passes by, OT_TILE_COLS rows at a time. */
#define OT_UNIT_ROWS OT_TILE_ROWS

struct matmul_ctx {
    ot_tile_fn tile;
    const uint8_t *w, *x;
    size_t ws, xs;
    int64_t n, k, m;
    float *y;
};

static void matmul_range(void *p, int64_t u0, int64_t u1) {
    const struct matmul_ctx *c = p;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t r0 = u * OT_UNIT_ROWS;
        const int64_t r1 = r0 + OT_UNIT_ROWS < c->n ? r0 + OT_UNIT_ROWS : c->n;
        for (int64_t j = 0; j < c->m; j += OT_TILE_COLS) {
            const int nx = (int)(c->m - j < OT_TILE_COLS ? c->m - j : OT_TILE_COLS);
            c->tile(c->k, c->w + r0 * c->ws, c->ws, (int)(r1 - r0), c->x + j * c->xs, c->xs, nx, c->y + j * c->n + r0,
                    c->n);
        }
    }
}

int ot_matmul(int type, const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y, void *scratch) {
    const struct type_info t = info(type);
    if (!t.weight || k <= 0 || k % t.blck)
        return -1;
    struct matmul_ctx c = {ot_active()->tile[type], w, (const uint8_t *)x, ot_row_bytes(type, k),
                           (size_t)k * sizeof(float), n, k, m, y};
    if (t.act >= 0) {
        ot_quantize_activations(t.act, x, m, k, scratch);
        c.x = scratch;
        c.xs = ot_row_bytes(t.act, k);
    }
    ot_parallel_for((n + OT_UNIT_ROWS - 1) / OT_UNIT_ROWS, n * k * m, matmul_range, &c);
    return 0;
}
