/* The C ABI of the OPENtransformer kernel library.
 *
 * Every op is declared once here. dispatch.c owns a table of function
 * pointers; the generic C implementation fills every slot and each ISA file
 * (x86/avx2.c, x86/avx512.c, arm/neon.c) overrides the slots it accelerates.
 * The Python binding (kernels/_ops.py) calls only the ot_* entry points.
 *
 * Conventions: row-major float32 activations; quantized weights in GGML
 * block layout exactly as stored in a GGUF file (one row = n/blck blocks);
 * sizes are int64_t; no function allocates memory per call unless noted.
 */
#ifndef OT_KERNELS_H
#define OT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Tensor types, numbered as GGML numbers them so GGUF ids pass through. */
enum ot_type {
    OT_F32 = 0,
    OT_F16 = 1,
    OT_Q4_0 = 2,
    OT_Q4_1 = 3,
    OT_Q8_0 = 8,
    OT_Q8_1 = 9,
    OT_Q4_K = 12,
    OT_Q6_K = 14,
    OT_Q8_K = 15,
    OT_BF16 = 30,
};

/* --- runtime configuration ------------------------------------------- */

/* Name of the ISA whose kernels are active: "generic", "avx2", "avx512",
 * "avx512vnni", "neon", "neon_dotprod", "neon_i8mm". */
const char *ot_isa(void);
/* Comma-separated list of the ISAs this CPU can run, best last. */
const char *ot_isa_available(void);
/* Select an ISA by name; returns 0, or -1 if unknown or unsupported here.
 * At load the library honours OPENTRANSFORMER_ISA, else picks the best. */
int ot_set_isa(const char *name);
void ot_set_threads(int n);
int ot_threads(void);

/* --- block formats ------------------------------------------------------ */

/* 1 if the type is one the matmul and dequantize ops accept. */
int ot_type_supported(int type);
/* Elements per block and bytes per block of a type. */
int64_t ot_block_size(int type);
size_t ot_type_size(int type);
/* Bytes of one row of n elements (n must be a multiple of the block size). */
size_t ot_row_bytes(int type, int64_t n);

/* Expand nrows rows of n elements each to float32. */
void ot_dequantize(int type, const void *src, int64_t nrows, int64_t n, float *dst);

/* Quantize float32 activations to the 8-bit block type the weight type's
 * dot product consumes (Q8_0 for Q4_0/Q8_0, Q8_1 for Q4_1, Q8_K for K-quants)
 * -- the same rounding llama.cpp uses. Returns the activation type, or -1. */
int ot_activation_type(int weight_type);
void ot_quantize_activations(int act_type, const float *x, int64_t nrows, int64_t n, void *dst);

/* --- weight quantization -------------------------------------------------- */

/* Quantize nrows rows of n float32 weights to Q8_0, Q4_0, Q4_1 (rounding as
 * the gguf package's numpy quantizers), Q4_K or Q6_K (as llama.cpp's
 * reference quantizers without an importance matrix), in GGML block layout:
 * dst holds nrows * ot_row_bytes(type, n) bytes. Returns 0, or -1 for another
 * type or an n that is not a multiple of the block size. Multi-threaded over
 * rows. */
int ot_quantize_weights(int type, const float *x, int64_t nrows, int64_t n, void *dst);

/* --- matmul --------------------------------------------------------------- */

/* Bytes of scratch ot_matmul needs for m activation rows of length k. */
size_t ot_matmul_scratch_bytes(int type, int64_t m, int64_t k);
/* y[m][n] = x[m][k] . w[n][k]^T, w of the given type in GGML block layout.
 * Quantized types quantize x into scratch first (integer dot products, as
 * llama.cpp computes them); F32/F16/BF16 weights dot with float32 x.
 * Returns 0, or -1 for an unsupported type or a k that is not a multiple of
 * the block size. Multi-threaded over n. */
int ot_matmul(int type, const void *w, int64_t n, int64_t k,
              const float *x, int64_t m, float *y, void *scratch);

/* y = x . w^T for Q8_0 weights with x rounded to 16 bits per 32-element
 * block (d = max|x| / 32767, q = x / d to nearest, ties to even) instead of
 * 8: a prompt's product then stays as close to float32 math as the weights
 * allow, at twice the float32 GEMM's rate. Returns 0, or -1 for another type
 * or an ISA without the kernel (AVX-512 VNNI has it). scratch as ot_matmul's. */
int ot_matmul_a16(int type, const void *w, int64_t n, int64_t k,
                  const float *x, int64_t m, float *y, void *scratch);

/* --- elementwise and normalisation ---------------------------------------- */

/* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for rows of n. out may be x. */
void ot_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *out);
/* In-place row softmax over rows of n. */
void ot_softmax(float *x, int64_t rows, int64_t n);
/* out = silu(gate) * up, n elements. out may alias gate or up. */
void ot_silu_mul(const float *gate, const float *up, int64_t n, float *out);
/* out = a + b, n elements. out may alias a or b. */
void ot_add(const float *a, const float *b, int64_t n, float *out);

/* --- rotary position embedding -------------------------------------------- */

/* Rotate the first rope_dim dims of each head of x[ntok][nhead][head_dim]
 * in place, token t at position pos[t]: angle = pos * inv_freq[i] for pair i
 * (inv_freq has rope_dim/2 entries and already carries any frequency
 * scaling); cos and sin are multiplied by mscale. neox=0 rotates adjacent
 * pairs (x[2i], x[2i+1]) as GGML's normal mode; neox=1 rotates
 * (x[i], x[i + rope_dim/2]) as GGML's NeoX mode and HF's rotate_half. */
void ot_rope(float *x, const int32_t *pos, int64_t ntok, int64_t nhead, int64_t head_dim,
             int64_t rope_dim, const float *inv_freq, float mscale, int neox);

/* --- attention ------------------------------------------------------------ */

/* Causal attention of ntok query tokens at positions pos0 .. pos0+ntok-1
 * over a KV cache that already holds positions 0 .. pos0+ntok-1.
 *   q   [ntok][n_head][head_dim]
 *   k,v [n_kv_head][kv_stride][head_dim]  of kv_type OT_F32 or OT_F16
 *                                         (kv_stride = cache capacity)
 *   out [ntok][n_head][head_dim]
 * Query head h reads KV head h / (n_head / n_kv_head). scores are scaled by
 * scale before the softmax. Multi-threaded over (token, head). */
void ot_attention(const float *q, const void *k, const void *v, int kv_type, float *out,
                  int64_t ntok, int64_t n_head, int64_t n_kv_head, int64_t head_dim,
                  int64_t kv_stride, int64_t pos0, float scale);

/* --- fused Llama-family decoder layer ------------------------------------- */

/* y = x . W^T (+ bias): n rows of k elements in GGML block layout. */
struct ot_linear {
    int32_t type;
    const void *w;
    int64_t n, k;
    const float *bias; /* NULL when the projection has none */
};

struct ot_llama_layer {
    const float *attn_norm, *ffn_norm;
    struct ot_linear wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct ot_llama_dims {
    int64_t dim, n_head, n_kv_head, head_dim, hidden, rope_dim;
    float norm_eps, attn_scale, rope_mscale;
    int32_t neox;
    const float *inv_freq; /* rope_dim / 2 */
    int32_t kv_type;       /* the caches' element type: OT_F32 or OT_F16 */
    /* Which arithmetic runs the layer: OT_ARITH_OWN, or OT_ARITH_LLAMACPP
     * (llamacpp_arith.c: float16 caches, Q4_1 / Q8_0 / F16 weights), which computes
     * its rope angles as llama.cpp does, from these instead of inv_freq. */
    int32_t arith;
    float rope_base, rope_freq_scale;
    const float *rope_freq_factors; /* rope_dim / 2 divisors, or NULL */
};

enum { OT_ARITH_OWN = 0, OT_ARITH_LLAMACPP = 1 };

/* Where one token's keys and values go: its sequence's cache, laid out
 * [n_layers][n_kv_head][capacity][head_dim], and its position there. */
struct ot_kv_slot {
    void *k, *v; /* of the dims' kv_type */
    int64_t capacity, pos;
};

/* Activation buffers for ntok tokens: xn, proj [ntok][dim]; q, att
 * [ntok][n_head * head_dim]; k, v [ntok][n_kv_head * head_dim]; gate, up
 * [ntok][hidden]; pos [ntok]; scratch ot_matmul_scratch_bytes for ntok rows
 * of the widest input of any projection's type; wpack, for prompt chunks,
 * the largest ot_llama_wpack_floats of any projection (NULL: never expand
 * weights to float32). */
struct ot_llama_buffers {
    float *xn, *q, *k, *v, *att, *proj, *gate, *up;
    int32_t *pos;
    void *scratch;
    float *wpack;
    size_t wpack_floats; /* a projection that needs more runs on 8-bit blocks */
};

/* Floats of wpack an n x k projection needs (depends on the thread count). */
size_t ot_llama_wpack_floats(int64_t n, int64_t k);

/* Run decoder layer `layer` over the residual stream x [ntok][dim] in place;
 * token t reads and extends the cache of slots[t] at slots[t].pos, seeing
 * positions 0 .. pos of it. Returns 0, or -1 for a position outside its cache. */
int ot_llama_layer(const struct ot_llama_layer *L, const struct ot_llama_dims *d, int64_t layer, float *x,
                   int64_t ntok, const struct ot_kv_slot *slots, const struct ot_llama_buffers *b);

/* --- llama.cpp's arithmetic ---------------------------------------------------
 *
 * The same ops computed with the float operations of llama.cpp's x86 CPU
 * backend, in its order (llamacpp_arith.c says which and why), so logits
 * equal its own bit for bit. Slower than the kernels above. */

/* 1 for the weight types it reproduces (Q4_1, Q8_0, F16), else 0. */
int ot_llamacpp_supports(int type);
/* As ot_matmul (same scratch); -1 for a type it does not reproduce. */
int ot_llamacpp_matmul(int type, const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                       void *scratch);
/* As ot_rmsnorm. */
void ot_llamacpp_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *out);

/* --- vision (ViT) ---------------------------------------------------------
 *
 * Dense float32 ops for the vision transformer. Weights of ot_gemm_f32 are
 * packed once at load time into panels of OT_GEMM_NR output columns, each
 * panel k rows of OT_GEMM_NR floats (k-major, zero-padded past n), so the
 * microkernel reads one contiguous stream per panel. The packed layout is the
 * same for every ISA. */

#define OT_GEMM_NR 32

enum ot_act { OT_ACT_NONE = 0, OT_ACT_GELU = 1 /* exact GELU, x/2 (1 + erf(x / sqrt 2)) */ };

/* Floats in the packed form of an n x k weight. */
size_t ot_gemm_packed_floats(int64_t n, int64_t k);
/* Pack w[n][k] (row-major, as nn.Linear stores it) for ot_gemm_f32. */
void ot_gemm_pack(const float *w, int64_t n, int64_t k, float *packed);
/* y[m][n] = act(x[m][k] . W[n][k]^T + bias[n]) (+ y[m][n] if accumulate, for
 * a residual added in place). bias may be NULL. Multi-threaded over tiles.
 * Returns 0, or -1 when the copy of x it packs cannot be allocated. */
int ot_gemm_f32(const float *packed, const float *bias, int64_t n, int64_t k, const float *x, int64_t m,
                float *y, int act, int accumulate);
/* The same epilogue on a computed product: y = act(x + bias) (+ y if
 * accumulate), x and y [m][n]; y may be x when not accumulating. */
void ot_bias_act(const float *x, const float *bias, int64_t m, int64_t n, int act, int accumulate, float *y);
/* out[r] = (x[r] - mean) / sqrt(var + eps) * w + b over rows of n (biased
 * variance, as torch.nn.LayerNorm). out may be x. */
void ot_layernorm(const float *x, const float *w, const float *b, int64_t rows, int64_t n, float eps, float *out);
/* Non-causal multi-head attention, every token attending to every token of
 * its own image, softmax fused:
 *   qkv [batch][ntok][3][n_head][head_dim]  (q, k, v of a token side by side,
 *                                            as one fused QKV GEMM writes them)
 *   out [batch][ntok][n_head][head_dim]
 * scores are (q . k) * scale. probs, when not null, receives the attention
 * probabilities (the softmax rows) as [batch][n_head][ntok][ntok]; null costs
 * nothing. Multi-threaded over (batch, head); allocates per-thread scratch of
 * about (head_dim + 4) * ntok floats. Returns 0, or -1 when that allocation fails. */
int ot_attention_full(const float *qkv, int64_t batch, int64_t ntok, int64_t n_head, int64_t head_dim,
                      float scale, float *out, float *probs);

/* --- Monte Carlo -----------------------------------------------------------
 *
 * Path p's random numbers come from Philox4x32-10 with counter
 * (p mod 2^32, p div 2^32, j, 0) and key (seed mod 2^32, seed div 2^32):
 * block j holds four 32-bit words, turned by Box-Muller into normals
 * 4j .. 4j+3 of the path. Results depend on the seed and the path index only,
 * bit for bit: not on the thread count, the split into calls or the ISA.
 * Paths run in float32; every call is multi-threaded over paths. */

/* Precomputed per-step coefficients, float32 as the kernels use them. */
struct ot_gbm_params {
    float drift_dt;    /* (mu - sigma^2 / 2) dt */
    float vol_sqrt_dt; /* sigma sqrt(dt) */
};

struct ot_heston_params {
    float v0, mu_dt, half_dt, dt, kappa_dt, theta, xi, rho, rho_bar; /* mu = r - q; rho_bar = sqrt(1 - rho^2) */
};

/* out[i][j][w] = word w of block j of path path0 + i (npaths x nblocks x 4). */
void ot_philox4x32(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, uint32_t *out);
/* out[i][n] = normal n of path path0 + i, n < 4 nblocks. */
void ot_mc_normals(uint64_t seed, int64_t path0, int64_t npaths, int64_t nblocks, float *out);
/* out[i] = ln(S_T / S_0) of path path0 + i after `steps` log-Euler steps of
 * GBM, step s taking normal s. */
void ot_mc_gbm(const struct ot_gbm_params *p, uint64_t seed, int64_t path0, int64_t npaths, int64_t steps,
               float *out);
/* out[i] = ln(S_T / S_0) of path path0 + i after `steps` full-truncation
 * Euler steps of Heston on the log price, step s taking normals 2s and 2s+1. */
void ot_mc_heston(const struct ot_heston_params *p, uint64_t seed, int64_t path0, int64_t npaths, int64_t steps,
                  float *out);

#ifdef __cplusplus
}
#endif
#endif
