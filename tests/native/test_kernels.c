/* The kernel library against reference vectors (make_vectors.py), through
 * its C ABI, on the ISA it selected (OPENTRANSFORMER_ISA forces one; a
 * request it could not honour fails the run rather than test another ISA).
 *
 * Outputs are poisoned first (NaN, or 0xA5 bytes) and every element is
 * checked: exactly where the x86 tests check exactly, else max |got - want|
 * within rtol of the largest |want|. Matmuls are also run row by row and on
 * one thread, and must give the same bits: results may not depend on the
 * tile shape or the thread count.
 *
 * Usage: test_kernels VECTORS_FILE. Exits non-zero if any case fails.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ot_kernels.h"

#define MAXN 16

struct vcase {
    char name[160], op[32];
    double rtol;
    int nint, nflt, narr;
    int64_t i[MAXN];
    double f[MAXN];
    const uint8_t *a[MAXN];
    size_t len[MAXN];
};

struct reader {
    const uint8_t *p, *end;
};

static int take(struct reader *r, void *dst, size_t n) {
    if ((size_t)(r->end - r->p) < n)
        return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    return 0;
}

static int take_text(struct reader *r, char *dst, size_t cap) {
    uint32_t n;
    if (take(r, &n, 4) || n >= cap || take(r, dst, n))
        return -1;
    dst[n] = 0;
    return 0;
}

static int take_count(struct reader *r, int *n) {
    uint32_t v;
    if (take(r, &v, 4) || v > MAXN)
        return -1;
    *n = (int)v;
    return 0;
}

/* 0 and the next case, 1 at the end of the file, -1 if malformed. */
static int read_case(struct reader *r, struct vcase *c) {
    if (r->p == r->end)
        return 1;
    if (take_text(r, c->name, sizeof c->name) || take_text(r, c->op, sizeof c->op) || take(r, &c->rtol, 8) ||
        take_count(r, &c->nint) || take(r, c->i, 8 * (size_t)c->nint) || take_count(r, &c->nflt) ||
        take(r, c->f, 8 * (size_t)c->nflt) || take_count(r, &c->narr))
        return -1;
    for (int k = 0; k < c->narr; k++) {
        uint64_t n;
        if (take(r, &n, 8) || (uint64_t)(r->end - r->p) < n)
            return -1;
        c->a[k] = r->p;
        c->len[k] = (size_t)n;
        r->p += n;
    }
    return 0;
}

/* --- checks ---------------------------------------------------------------- */

static char why[512];

static float *poisoned(size_t n) {
    float *p = malloc(n * sizeof(float) + 1);
    for (size_t j = 0; j < n; j++)
        p[j] = NAN;
    return p;
}

static void *copy_of(const void *src, size_t n) {
    void *p = malloc(n + 1);
    memcpy(p, src, n);
    return p;
}

static int close_to(const char *what, const float *got, const double *want, size_t n, double rtol) {
    double err = 0.0, top = 1e-30;
    for (size_t j = 0; j < n; j++) {
        if (!isfinite(got[j])) {
            snprintf(why, sizeof why, "%s: element %zu not written or not finite (%g)", what, j, got[j]);
            return 0;
        }
        err = fmax(err, fabs((double)got[j] - want[j]));
        top = fmax(top, fabs(want[j]));
    }
    if (err / top > rtol) {
        snprintf(why, sizeof why, "%s: max error %.2e relative to the largest value exceeds %.0e", what, err / top,
                 rtol);
        return 0;
    }
    return 1;
}

static int same_bytes(const char *what, const void *got, const void *want, size_t n) {
    const uint8_t *g = got, *w = want;
    for (size_t j = 0; j < n; j++)
        if (g[j] != w[j]) {
            snprintf(why, sizeof why, "%s: byte %zu is 0x%02x, expected 0x%02x", what, j, g[j], w[j]);
            return 0;
        }
    return 1;
}

/* The case's arrays must hold the bytes its sizes imply. */
static int sized(const struct vcase *c, int k, size_t n) {
    if (k < c->narr && c->len[k] == n)
        return 1;
    snprintf(why, sizeof why, "vector array %d holds %zu bytes, expected %zu", k, k < c->narr ? c->len[k] : 0, n);
    return 0;
}

#define F(k) ((const float *)c->a[k])
#define D(k) ((const double *)c->a[k])

/* --- ops ------------------------------------------------------------------- */

static int run_dequantize(const struct vcase *c) {
    const int type = (int)c->i[0];
    const int64_t rows = c->i[1], n = c->i[2];
    const size_t count = (size_t)(rows * n);
    if (!sized(c, 0, rows * ot_row_bytes(type, n)) || !sized(c, 1, count * 4))
        return 0;
    float *out = poisoned(count);
    ot_dequantize(type, c->a[0], rows, n, out);
    const int ok = same_bytes("dequantize", out, c->a[1], count * 4);
    free(out);
    return ok;
}

static int run_bytes_out(const struct vcase *c, int weights) {
    const int type = (int)c->i[0];
    const int64_t rows = c->i[1], n = c->i[2];
    const size_t bytes = rows * ot_row_bytes(type, n);
    if (!sized(c, 0, (size_t)(rows * n) * 4) || !sized(c, 1, bytes))
        return 0;
    uint8_t *out = malloc(bytes + 1);
    memset(out, 0xA5, bytes);
    if (weights && ot_quantize_weights(type, F(0), rows, n, out) != 0) {
        snprintf(why, sizeof why, "ot_quantize_weights refused the case");
        free(out);
        return 0;
    }
    if (!weights)
        ot_quantize_activations(type, F(0), rows, n, out);
    const int ok = same_bytes(weights ? "quantize_weights" : "quantize_activations", out, c->a[1], bytes);
    free(out);
    return ok;
}

static void matmul_once(const struct vcase *c, const float *x, int64_t m, float *y) {
    const int type = (int)c->i[0];
    const int64_t n = c->i[1], k = c->i[2];
    void *scratch = malloc(ot_matmul_scratch_bytes(type, m, k) + 1);
    ot_matmul(type, c->a[0], n, k, x, m, y, scratch);
    free(scratch);
}

static int run_matmul(const struct vcase *c) {
    const int type = (int)c->i[0];
    const int64_t n = c->i[1], k = c->i[2], m = c->i[3];
    const size_t count = (size_t)(m * n);
    if (!sized(c, 0, n * ot_row_bytes(type, k)) ||
        !sized(c, 1, (size_t)(m * k) * 4) || !sized(c, 2, count * 8))
        return 0;
    float *y = poisoned(count), *row = poisoned((size_t)n), *one = poisoned(count);
    matmul_once(c, F(1), m, y);
    int ok = close_to("matmul", y, D(2), count, c->rtol);
    for (int64_t r = 0; ok && r < m; r++) {
        matmul_once(c, F(1) + r * k, 1, row);
        ok = same_bytes("one activation row alone vs the batch", row, y + r * n, (size_t)n * 4);
    }
    if (ok) {
        const int threads = ot_threads();
        ot_set_threads(1);
        matmul_once(c, F(1), m, one);
        ot_set_threads(threads);
        ok = same_bytes("one thread vs several", one, y, count * 4);
    }
    free(y);
    free(row);
    free(one);
    return ok;
}

/* llama.cpp's arithmetic: equal to the reference bit for bit (rtol 0). */
static int run_llamacpp_matmul(const struct vcase *c) {
    const int type = (int)c->i[0];
    const int64_t n = c->i[1], k = c->i[2], m = c->i[3];
    const size_t count = (size_t)(m * n);
    if (!sized(c, 0, n * ot_row_bytes(type, k)) || !sized(c, 1, (size_t)(m * k) * 4) || !sized(c, 2, count * 8))
        return 0;
    float *y = poisoned(count);
    void *scratch = malloc(ot_matmul_scratch_bytes(type, m, k) + 1);
    int ok = ot_llamacpp_matmul(type, c->a[0], n, k, F(1), m, y, scratch) == 0;
    if (!ok)
        snprintf(why, sizeof why, "ot_llamacpp_matmul refused the case");
    ok = ok && close_to("llamacpp_matmul", y, D(2), count, c->rtol);
    free(scratch);
    free(y);
    return ok;
}

static int run_rmsnorm(const struct vcase *c) {
    const int64_t rows = c->i[0], n = c->i[1];
    const size_t count = (size_t)(rows * n);
    if (!sized(c, 0, count * 4) || !sized(c, 1, (size_t)n * 4) || !sized(c, 2, count * 8))
        return 0;
    float *out = poisoned(count), *x = copy_of(F(0), count * 4);
    ot_rmsnorm(F(0), F(1), rows, n, (float)c->f[0], out);
    ot_rmsnorm(x, F(1), rows, n, (float)c->f[0], x);
    const int ok = close_to("rmsnorm", out, D(2), count, c->rtol) && close_to("rmsnorm in place", x, D(2), count, c->rtol);
    free(out);
    free(x);
    return ok;
}

static int run_softmax(const struct vcase *c) {
    const int64_t rows = c->i[0], n = c->i[1];
    const size_t count = (size_t)(rows * n);
    if (!sized(c, 0, count * 4) || !sized(c, 1, count * 8))
        return 0;
    float *x = copy_of(F(0), count * 4);
    ot_softmax(x, rows, n);
    const int ok = close_to("softmax", x, D(1), count, c->rtol);
    free(x);
    return ok;
}

static int run_elementwise(const struct vcase *c, int silu) {
    const int64_t n = c->i[0];
    if (!sized(c, 0, (size_t)n * 4) || !sized(c, 1, (size_t)n * 4) || !sized(c, 2, (size_t)n * 8))
        return 0;
    void (*op)(const float *, const float *, int64_t, float *) = silu ? ot_silu_mul : ot_add;
    float *out = poisoned((size_t)n), *a = copy_of(F(0), (size_t)n * 4);
    op(F(0), F(1), n, out);
    op(a, F(1), n, a);
    const int ok = close_to(silu ? "silu_mul" : "add", out, D(2), (size_t)n, c->rtol) &&
                   close_to("aliasing its input", a, D(2), (size_t)n, c->rtol);
    free(out);
    free(a);
    return ok;
}

static int run_rope(const struct vcase *c) {
    const int64_t ntok = c->i[0], nhead = c->i[1], hd = c->i[2], rd = c->i[3];
    const size_t count = (size_t)(ntok * nhead * hd);
    if (!sized(c, 0, count * 4) || !sized(c, 1, (size_t)ntok * 4) || !sized(c, 2, (size_t)rd / 2 * 4) ||
        !sized(c, 3, count * 8))
        return 0;
    float *x = copy_of(F(0), count * 4);
    ot_rope(x, (const int32_t *)c->a[1], ntok, nhead, hd, rd, F(2), (float)c->f[0], (int)c->i[4]);
    int ok = close_to("rope", x, D(3), count, c->rtol);
    for (size_t j = 0; ok && j < count; j++)
        if ((int64_t)(j % (size_t)hd) >= rd && x[j] != F(0)[j]) {
            snprintf(why, sizeof why, "rope: element %zu past rope_dim changed", j);
            ok = 0;
        }
    free(x);
    return ok;
}

static int run_attention(const struct vcase *c) {
    const int64_t ntok = c->i[0], nh = c->i[1], nkv = c->i[2], hd = c->i[3], cap = c->i[4], pos0 = c->i[5];
    const int kv_type = (int)c->i[6];
    const size_t count = (size_t)(ntok * nh * hd), cache = (size_t)(nkv * cap * hd) * ot_type_size(kv_type);
    if (!sized(c, 0, count * 4) || !sized(c, 1, cache) || !sized(c, 2, cache) || !sized(c, 3, count * 8))
        return 0;
    float *out = poisoned(count);
    ot_attention(F(0), c->a[1], c->a[2], kv_type, out, ntok, nh, nkv, hd, cap, pos0, (float)c->f[0]);
    const int ok = close_to("attention", out, D(3), count, c->rtol);
    free(out);
    return ok;
}

static int run_gemm_f32(const struct vcase *c) {
    const int64_t m = c->i[0], n = c->i[1], k = c->i[2];
    const int act = (int)c->i[3], accumulate = (int)c->i[4], bias = (int)c->i[5];
    const size_t count = (size_t)(m * n);
    if (!sized(c, 0, (size_t)(n * k) * 4) || !sized(c, 1, (size_t)(m * k) * 4) || !sized(c, 2, (size_t)n * 4) ||
        !sized(c, 3, count * 4) || !sized(c, 4, count * 8))
        return 0;
    float *packed = malloc(ot_gemm_packed_floats(n, k) * sizeof(float));
    ot_gemm_pack(F(0), n, k, packed);
    float *y = accumulate ? copy_of(F(3), count * 4) : poisoned(count);
    const int ok = ot_gemm_f32(packed, bias ? F(2) : NULL, n, k, F(1), m, y, act, accumulate) == 0 &&
                   close_to("gemm_f32", y, D(4), count, c->rtol);
    free(packed);
    free(y);
    return ok;
}

static int run_gemm_pack(const struct vcase *c) {
    const int64_t n = c->i[0], k = c->i[1];
    const size_t count = ot_gemm_packed_floats(n, k);
    if (!sized(c, 0, (size_t)(n * k) * 4) || !sized(c, 1, count * 4))
        return 0;
    float *packed = poisoned(count);
    ot_gemm_pack(F(0), n, k, packed);
    const int ok = same_bytes("gemm_pack", packed, c->a[1], count * 4);
    free(packed);
    return ok;
}

static int run_bias_act(const struct vcase *c) {
    const int64_t m = c->i[0], n = c->i[1];
    const int act = (int)c->i[2], accumulate = (int)c->i[3], bias = (int)c->i[4];
    const size_t count = (size_t)(m * n);
    if (!sized(c, 0, count * 4) || !sized(c, 1, (size_t)n * 4) || !sized(c, 2, count * 4) || !sized(c, 3, count * 8))
        return 0;
    float *y = accumulate ? copy_of(F(2), count * 4) : poisoned(count);
    ot_bias_act(F(0), bias ? F(1) : NULL, m, n, act, accumulate, y);
    const int ok = close_to("bias_act", y, D(3), count, c->rtol);
    free(y);
    return ok;
}

/* The erf approximation element by element: within rtol max(|x|, 1). */
static int run_gelu_accuracy(const struct vcase *c) {
    const int64_t n = c->i[0];
    if (!sized(c, 0, (size_t)n * 4) || !sized(c, 1, (size_t)n * 8))
        return 0;
    float *y = poisoned((size_t)n);
    ot_bias_act(F(0), NULL, 1, n, OT_ACT_GELU, 0, y);
    int ok = 1;
    for (int64_t j = 0; ok && j < n; j++) {
        const double x = F(0)[j], err = fabs((double)y[j] - D(1)[j]);
        if (!(err <= c->rtol * fmax(fabs(x), 1.0))) {
            snprintf(why, sizeof why, "gelu(%g) = %.9g, expected %.9g", x, y[j], D(1)[j]);
            ok = 0;
        }
    }
    free(y);
    return ok;
}

static int run_layernorm(const struct vcase *c) {
    const int64_t rows = c->i[0], n = c->i[1];
    const size_t count = (size_t)(rows * n);
    if (!sized(c, 0, count * 4) || !sized(c, 1, (size_t)n * 4) || !sized(c, 2, (size_t)n * 4) ||
        !sized(c, 3, count * 8))
        return 0;
    float *out = poisoned(count), *x = copy_of(F(0), count * 4);
    ot_layernorm(F(0), F(1), F(2), rows, n, (float)c->f[0], out);
    ot_layernorm(x, F(1), F(2), rows, n, (float)c->f[0], x);
    const int ok = close_to("layernorm", out, D(3), count, c->rtol) &&
                   close_to("layernorm in place", x, D(3), count, c->rtol);
    free(out);
    free(x);
    return ok;
}

/* Also: the probabilities output, which leaves the output's bits as they are, and the
 * last image alone gives the same bits as within its batch. */
static int run_attention_full(const struct vcase *c) {
    const int64_t batch = c->i[0], ntok = c->i[1], heads = c->i[2], hd = c->i[3];
    const size_t per_image = (size_t)(ntok * heads * hd), count = (size_t)batch * per_image;
    const size_t nprob = (size_t)(batch * heads * ntok * ntok);
    if (!sized(c, 0, 3 * count * 4) || !sized(c, 1, count * 8) || !sized(c, 2, nprob * 8))
        return 0;
    float *out = poisoned(count), *last = poisoned(per_image), *with_probs = poisoned(count), *probs = poisoned(nprob);
    int ok = ot_attention_full(F(0), batch, ntok, heads, hd, (float)c->f[0], out, NULL) == 0 &&
             close_to("attention_full", out, D(1), count, c->rtol);
    if (ok)
        ok = ot_attention_full(F(0), batch, ntok, heads, hd, (float)c->f[0], with_probs, probs) == 0 &&
             close_to("attention_full probabilities", probs, D(2), nprob, c->rtol) &&
             same_bytes("output with probabilities vs without", with_probs, out, count * 4);
    if (ok && batch > 1) {
        ot_attention_full(F(0) + 3 * (count - per_image), 1, ntok, heads, hd, (float)c->f[0], last, NULL);
        ok = same_bytes("last image alone vs in its batch", last, out + count - per_image, per_image * 4);
    }
    free(out);
    free(last);
    free(with_probs);
    free(probs);
    return ok;
}

/* ints: kind (philox, normals, gbm, heston), seed, first path, paths, blocks
 * or steps; floats: the model's per-step coefficients; array: the expected
 * bytes. Run at the default thread count and on one thread. */
static int run_montecarlo(const struct vcase *c) {
    const int kind = (int)c->i[0];
    const uint64_t seed = (uint64_t)c->i[1];
    const int64_t path0 = c->i[2], npaths = c->i[3], n = c->i[4];
    const size_t count = (size_t)(kind < 2 ? npaths * n * 4 : npaths);
    if (!sized(c, 0, count * 4))
        return 0;
    struct ot_gbm_params g = {0};
    if (kind == 2)
        g = (struct ot_gbm_params){(float)c->f[0], (float)c->f[1]};
    struct ot_heston_params h = {0};
    if (kind == 3) /* the nine coefficients in declaration order, as make_vectors.py lists them */
        h = (struct ot_heston_params){(float)c->f[0], (float)c->f[1], (float)c->f[2], (float)c->f[3],
                                      (float)c->f[4], (float)c->f[5], (float)c->f[6], (float)c->f[7],
                                      (float)c->f[8]};
    const int threads = ot_threads();
    int ok = 1;
    for (int pass = 0; pass < 2 && ok; pass++) {
        ot_set_threads(pass ? 1 : threads);
        float *out = poisoned(count);
        if (kind == 0)
            ot_philox4x32(seed, path0, npaths, n, (uint32_t *)out);
        else if (kind == 1)
            ot_mc_normals(seed, path0, npaths, n, out);
        else if (kind == 2)
            ot_mc_gbm(&g, seed, path0, npaths, n, out);
        else
            ot_mc_heston(&h, seed, path0, npaths, n, out);
        ok = same_bytes(pass ? "montecarlo (1 thread)" : "montecarlo", out, c->a[0], count * 4);
        free(out);
    }
    ot_set_threads(threads);
    return ok;
}

static int run_case(const struct vcase *c) {
    static const struct {
        const char *op;
        int (*run)(const struct vcase *);
    } simple[] = {
        {"dequantize", run_dequantize}, {"matmul", run_matmul},       {"rmsnorm", run_rmsnorm},
        {"llamacpp_matmul", run_llamacpp_matmul},
        {"softmax", run_softmax},       {"rope", run_rope},           {"attention", run_attention},
        {"gemm_f32", run_gemm_f32},     {"gemm_pack", run_gemm_pack}, {"bias_act", run_bias_act},
        {"gelu_accuracy", run_gelu_accuracy}, {"layernorm", run_layernorm}, {"attention_full", run_attention_full},
        {"montecarlo", run_montecarlo},
    };
    why[0] = 0;
    if (!strcmp(c->op, "quantize_act"))
        return run_bytes_out(c, 0);
    if (!strcmp(c->op, "quantize_weights"))
        return run_bytes_out(c, 1);
    if (!strcmp(c->op, "silu_mul"))
        return run_elementwise(c, 1);
    if (!strcmp(c->op, "add"))
        return run_elementwise(c, 0);
    for (size_t j = 0; j < sizeof simple / sizeof simple[0]; j++)
        if (!strcmp(c->op, simple[j].op))
            return simple[j].run(c);
    snprintf(why, sizeof why, "unknown op %s", c->op);
    return 0;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = n > 0 ? malloc((size_t)n) : NULL;
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = data ? (size_t)n : 0;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTORS_FILE\n", argv[0]);
        return 2;
    }
    size_t size;
    uint8_t *data = read_file(argv[1], &size);
    if (!data || size < 4 || memcmp(data, "OTV1", 4)) {
        fprintf(stderr, "%s: missing or not a vectors file (make_vectors.py writes one)\n", argv[1]);
        return 2;
    }
    const char *wanted = getenv("OPENTRANSFORMER_ISA");
    printf("isa %s (available: %s), %d threads\n", ot_isa(), ot_isa_available(), ot_threads());
    int passed = 0, failed = 0;
    if (wanted && *wanted && strcmp(wanted, ot_isa())) {
        printf("FAIL OPENTRANSFORMER_ISA=%s not available: the library selected %s\n", wanted, ot_isa());
        failed++;
    }
    struct reader r = {data + 4, data + size};
    struct vcase c;
    int status;
    while ((status = read_case(&r, &c)) == 0) {
        if (run_case(&c))
            passed++;
        else {
            failed++;
            printf("FAIL %s [%s]: %s\n", c.name, ot_isa(), why);
        }
    }
    if (status < 0) {
        printf("FAIL %s: malformed after %d cases\n", argv[1], passed + failed);
        failed++;
    }
    free(data);
    printf("%s: %d passed, %d failed\n", ot_isa(), passed, failed);
    return failed ? 1 : 0;
}
