"""Reference vectors for the native kernel harness (tests/native/test_kernels.c).

The cases mirror the x86 kernel tests (tests/kernels, tests/vision): the same
shapes, seeds, inputs and tolerances, with expected outputs from the same
references (kernels/reference.py, the gguf package). The harness runs them on
a cross-built library under qemu, where Python cannot load the library.

Run with the package and the test helpers importable:
    PYTHONPATH=src:tests python tests/native/make_vectors.py OUT_FILE

File format (little endian): b"OTV1", then per case
    u32 len, name; u32 len, op; f64 rtol;
    u32 n, i64 ints[n]; u32 n, f64 floats[n]; u32 n, arrays[n] as (u64 bytes, data).
Expected outputs are float64 where the check is a tolerance, raw bytes where
it is exact.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

from helpers.quant_weights import BLOCK, WEIGHT_TYPES, random_weight
from opentransformer.kernels import reference

F32 = np.float32


class Writer:
    def __init__(self, path: Path):
        self.f = path.open("wb")
        self.f.write(b"OTV1")
        self.count = 0

    def case(self, name: str, op: str, rtol: float, ints=(), floats=(), arrays=()):
        f = self.f
        for text in (name, op):
            data = text.encode()
            f.write(struct.pack("<I", len(data)) + data)
        f.write(struct.pack("<d", rtol))
        f.write(struct.pack(f"<I{len(ints)}q", len(ints), *[int(i) for i in ints]))
        f.write(struct.pack(f"<I{len(floats)}d", len(floats), *[float(v) for v in floats]))
        f.write(struct.pack("<I", len(arrays)))
        for a in arrays:
            data = np.ascontiguousarray(a).tobytes()
            f.write(struct.pack("<Q", len(data)) + data)
        self.count += 1


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


# --- block formats (tests/kernels/test_formats.py, test_quantize.py) ------------

def activations(rng, m, k):
    """As test_formats.activations: a zero block, a negative extreme, equal values, halves."""
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 10, (m, 1))).astype(F32)
    x[0, :32] = 0.0
    if k >= 64:
        x[0, 32:64] = -np.abs(x[0, 32:64])
    if m > 1:
        x[1, :32] = F32(1.5)
        x[1, 32 % k:32 % k + 32] = np.arange(-63.5, 64.5, 4, dtype=F32)
    return x


def awkward_rows(rng, rows, n, block):
    """As test_quantize.awkward_rows: scales 1e-4 .. 1e3, a zero and a constant block, outliers."""
    x = rng.standard_normal((rows, n)).astype(F32)
    x *= (10.0 ** rng.uniform(-4, 3, (rows, 1))).astype(F32)
    x[0, :block] = 0.0
    if rows > 1:
        x[1, :block] = -2.5
    if rows > 2:
        x[2] = np.abs(x[2])
        x[-1, rng.integers(0, n, 3)] *= 50
    return x


def block_formats(w: Writer):
    for qtype in WEIGHT_TYPES:
        for nrows, blocks in [(1, 1), (3, 3), (17, 2)]:
            k = BLOCK.get(qtype, 32) * blocks
            wt = random_weight(np.random.default_rng(nrows * 7 + blocks), qtype, nrows, k)
            want = reference.dequantize(int(qtype), wt, nrows, k)
            w.case(f"dequantize {qtype.name} {nrows}x{k}", "dequantize", 0, [int(qtype), nrows, k], [], [wt, want])
    for qtype in [T.Q4_0, T.Q4_1, T.Q8_0, T.Q4_K, T.Q6_K]:
        for m, blocks in [(1, 1), (2, 3), (5, 2)]:
            k = BLOCK.get(qtype, 32) * blocks
            x = activations(np.random.default_rng(m + blocks), m, k)
            act, want = reference.quantize_activations(int(qtype), x)
            w.case(f"quantize_activations for {qtype.name} {m}x{k}", "quantize_act", 0, [act, m, k], [], [x, want])
    for qtype in [T.Q4_0, T.Q4_1, T.Q4_K]:  # exact ties: the scale is 1, every value ends in .5
        k = BLOCK.get(qtype, 32)
        x = np.tile(np.arange(-k // 2, k // 2, dtype=F32) + F32(0.5), (2, 1))
        x[:, 0] = [127.0, -127.0]
        act, want = reference.quantize_activations(int(qtype), x)
        w.case(f"quantize_activations for {qtype.name}, ties", "quantize_act", 0, [act, 2, k], [], [x, want])
    for qtype in [T.Q8_0, T.Q4_0, T.Q4_1]:
        for rows, n in [(1, 32), (3, 96), (17, 4128)]:
            x = awkward_rows(np.random.default_rng(rows * n), rows, n, 32)
            w.case(f"quantize_weights {qtype.name} {rows}x{n}", "quantize_weights", 0, [int(qtype), rows, n], [],
                   [x, quantize(x, qtype)])


# --- matmul (tests/kernels/test_matmul.py) ---------------------------------------

def matmul_case(qtype, n, m, blocks):
    k = BLOCK.get(qtype, 32) * blocks
    rng = np.random.default_rng(n * 1000 + m * 10 + blocks)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 3, (m, 1))).astype(F32)
    return k, random_weight(rng, qtype, n, k), x


def matmul(w: Writer):
    for qtype in WEIGHT_TYPES:
        for n, m in [(1, 1), (3, 2), (17, 5), (67, 33), (67, 1)]:
            for blocks in [1, 3, 8]:
                k, wt, x = matmul_case(qtype, n, m, blocks)
                want = reference.matmul(int(qtype), wt, n, k, x)
                w.case(f"matmul {qtype.name} n={n} m={m} k={k}", "matmul", 2e-5, [int(qtype), n, k, m], [],
                       [wt, x, f64(want)])
        k, wt, x = matmul_case(qtype, 17, 5, 3)
        want = x.astype(np.float64) @ reference.dequantize(int(qtype), wt, 17, k).astype(np.float64).T
        w.case(f"matmul {qtype.name} vs float math", "matmul", 3e-2, [int(qtype), 17, k, 5], [], [wt, x, want])


# --- llama.cpp's arithmetic (tests/kernels/test_llamacpp_arith.py): bit for bit ------

def llamacpp_matmul(w: Writer):
    for qtype in (T.Q4_1, T.Q8_0, T.F16):
        for n, m, blocks in [(1, 1, 1), (17, 5, 8), (64, 13, 2), (12, 3, 3), (8, 1, 5)]:
            k, wt, x = matmul_case(qtype, n, m, blocks)
            want = reference.llamacpp_matmul(int(qtype), wt, n, k, x)
            w.case(f"llamacpp_matmul {qtype.name} n={n} m={m} k={k}", "llamacpp_matmul", 0.0,
                   [int(qtype), n, k, m], [], [wt, x, f64(want)])


# --- row ops, rope, attention (tests/kernels/test_row_ops.py) --------------------

def row_ops(w: Writer):
    for rows, n in [(1, 1), (3, 17), (5, 576), (33, 2048)]:
        rng = np.random.default_rng(rows + n)
        x, wt = rand(rng, rows, n, scale=3.0), rand(rng, n)
        w.case(f"rmsnorm {rows}x{n}", "rmsnorm", 1e-5, [rows, n], [1e-5], [x, wt, reference.rmsnorm(x, wt, 1e-5)])
    for rows, n in [(1, 1), (2, 7), (9, 100), (3, 49152)]:
        x = rand(np.random.default_rng(n), rows, n, scale=20.0)
        w.case(f"softmax {rows}x{n}", "softmax", 1e-5, [rows, n], [], [x, reference.softmax(x)])
    for n in [1, 7, 1536, 200003]:
        rng = np.random.default_rng(n)
        gate, up = rand(rng, n, scale=4.0), rand(rng, n)
        w.case(f"silu_mul {n}", "silu_mul", 1e-5, [n], [], [gate, up, reference.silu_mul(gate, up)])
        w.case(f"add {n}", "add", 0, [n], [], [gate, up, f64(gate + up)])
    for head_dim, rope_dim in [(64, 64), (48, 48), (48, 32), (64, 16)]:
        for neox in (False, True):
            for ntok, mscale in [(1, 1.0), (5, 0.8), (40, 1.0)]:
                rng = np.random.default_rng(head_dim + rope_dim + ntok)
                nhead = 3
                x = rand(rng, ntok, nhead, head_dim)
                pos = rng.integers(0, 4096, ntok).astype(np.int32)
                inv_freq = (10000.0 ** (-np.arange(0, rope_dim, 2) / rope_dim)).astype(F32)
                want = reference.rope(x, pos, inv_freq, rope_dim, mscale, neox)
                w.case(f"rope hd={head_dim} rd={rope_dim} neox={int(neox)} ntok={ntok}", "rope", 1e-5,
                       [ntok, nhead, head_dim, rope_dim, int(neox)], [mscale], [x, pos, inv_freq, want])
    for head_dim in [64, 48]:
        for ntok, pos0 in [(1, 0), (1, 130), (5, 3), (7, 100), (33, 0)]:
            for n_head, n_kv in [(9, 3), (4, 4)]:
                for kv_dtype, kv_type in [(np.float32, 0), (np.float16, 1)]:
                    rng = np.random.default_rng(head_dim + ntok + pos0 + n_head)
                    capacity = pos0 + ntok + 11  # rows past the causal horizon hold garbage
                    q = rand(rng, ntok, n_head, head_dim, scale=2.0)
                    k_cache = rand(rng, n_kv, capacity, head_dim, scale=2.0).astype(kv_dtype)
                    v_cache = rand(rng, n_kv, capacity, head_dim).astype(kv_dtype)
                    k_cache[:, pos0 + ntok:] = np.inf
                    v_cache[:, pos0 + ntok:] = np.nan
                    scale = head_dim ** -0.5
                    want = reference.attention(q, k_cache, v_cache, pos0, scale)
                    w.case(f"attention {np.dtype(kv_dtype).name} cache hd={head_dim} ntok={ntok} pos0={pos0} "
                           f"heads={n_head}/{n_kv}", "attention", 2e-5,
                           [ntok, n_head, n_kv, head_dim, capacity, pos0, kv_type], [scale],
                           [q, k_cache, v_cache, want])


# --- vision (tests/vision/test_vision_kernels.py) --------------------------------

def vision(w: Writer):
    shapes = [(1, 1, 1), (1, 33, 7), (5, 32, 64), (13, 37, 19), (25, 70, 33), (197, 97, 777), (12, 64, 96),
              (29, 31, 768)]
    for m, n, k in shapes:
        for act in (0, 1):
            for accumulate in (0, 1):
                rng = np.random.default_rng(m * 1000 + n * 10 + k)
                wt, x, b = rand(rng, n, k), rand(rng, m, k), rand(rng, n)
                residual = rand(rng, m, n)
                want = reference.gemm_f32(wt, b, x, act, residual if accumulate else None)
                w.case(f"gemm_f32 m={m} n={n} k={k} act={act} acc={accumulate}", "gemm_f32", 1e-5,
                       [m, n, k, act, accumulate, 1], [], [wt, x, b, residual, want])
    rng = np.random.default_rng(1)
    wt, x = rand(rng, 45, 20), rand(rng, 14, 20)
    w.case("gemm_f32 without bias", "gemm_f32", 1e-5, [14, 45, 20, 0, 0, 0], [],
           [wt, x, np.zeros(45, F32), np.zeros((14, 45), F32), reference.gemm_f32(wt, None, x)])
    wt = np.arange(40 * 3, dtype=F32).reshape(40, 3)
    packed = np.zeros((2, 3, 32), F32)
    packed[0], packed[1, :, :8] = wt[:32].T, wt[32:].T
    w.case("gemm_pack layout", "gemm_pack", 0, [40, 3], [], [wt, packed])
    for m, n in [(1, 1), (3, 5), (7, 16), (9, 3072), (4, 33)]:
        for accumulate in (0, 1):
            rng = np.random.default_rng(n)
            x, b, residual = rand(rng, m, n, scale=4.0), rand(rng, n), rand(rng, m, n)
            want = reference.bias_act(x, b, 1, residual if accumulate else None)
            w.case(f"bias_act gelu {m}x{n} acc={accumulate}", "bias_act", 1e-5, [m, n, 1, accumulate, 1], [],
                   [x, b, residual, want])
    x = np.linspace(-10, 10, 20001, dtype=F32)
    w.case("gelu accuracy", "gelu_accuracy", 2.5e-7, [x.size], [], [x, reference.gelu(x)])
    for rows, n in [(1, 1), (1, 2), (3, 768), (7, 37), (5, 3), (16, 100)]:
        rng = np.random.default_rng(rows * n)
        x = rand(rng, rows, n, scale=3.0) + 5.0  # an offset mean: the variance must not cancel
        wt, b = rand(rng, n), rand(rng, n)
        w.case(f"layernorm {rows}x{n}", "layernorm", 1e-5, [rows, n], [1e-12],
               [x, wt, b, reference.layernorm(x, wt, b, 1e-12)])
    for batch, ntok, heads, head_dim in [(1, 197, 12, 64), (2, 17, 3, 10), (3, 1, 2, 7), (1, 50, 4, 33),
                                         (2, 5, 1, 16), (1, 70, 2, 128)]:
        rng = np.random.default_rng(ntok * heads + head_dim)
        qkv = rand(rng, batch * ntok, 3 * heads * head_dim, scale=2.0)
        scale = head_dim ** -0.5
        w.case(f"attention_full b={batch} t={ntok} h={heads} hd={head_dim}", "attention_full", 1e-5,
               [batch, ntok, heads, head_dim], [scale],
               [qkv, reference.attention_full(qkv, batch, ntok, heads, head_dim, scale),
                reference.attention_probs(qkv, batch, ntok, heads, head_dim, scale)])


# --- Monte Carlo (tests/kernels/test_philox.py, test_mc_paths.py) ------------------
# Exact: the float32 replay in kernels/reference.py gives the kernels' bits on every ISA and architecture.

MC_PHILOX, MC_NORMALS, MC_GBM, MC_HESTON = range(4)
MC_HESTON_COEFFICIENTS = dict(v0=0.04, mu_dt=0.0004, half_dt=0.005, dt=0.01, kappa_dt=0.015, theta=0.04, xi=0.9,
                              rho=-0.7, rho_bar=float(np.sqrt(1 - 0.49)))


def montecarlo(w: Writer):
    for seed, path0, npaths, n in [(0, 0, 1, 1), (2 ** 62 + 12345, 2 ** 32 - 5, 37, 5), (7, 3, 130, 3)]:
        w.case(f"philox {npaths}x{n} from {path0}", "montecarlo", 0, [MC_PHILOX, seed, path0, npaths, n], [],
               [reference.mc_philox(seed, npaths, n, path0)])
        w.case(f"normals {npaths}x{n} from {path0}", "montecarlo", 0, [MC_NORMALS, seed, path0, npaths, n], [],
               [reference.mc_normals(seed, npaths, n, path0)])
    for npaths, path0, steps in [(1, 0, 1), (7, 3, 5), (37, 2 ** 32 - 5, 4), (64 * 5 + 3, 17, 13)]:
        w.case(f"gbm {npaths} paths {steps} steps", "montecarlo", 0, [MC_GBM, 77, path0, npaths, steps],
               [-0.0002, 0.02], [reference.mc_gbm(-0.0002, 0.02, 77, npaths, steps, path0)])
        w.case(f"heston {npaths} paths {steps} steps", "montecarlo", 0, [MC_HESTON, 5, path0, npaths, steps],
               list(MC_HESTON_COEFFICIENTS.values()),
               [reference.mc_heston(MC_HESTON_COEFFICIENTS, 5, npaths, steps, path0)])


def main() -> None:
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    w = Writer(out)
    for part in (block_formats, matmul, llamacpp_matmul, row_ops, vision, montecarlo):
        part(w)
    w.f.close()
    print(f"{w.count} cases -> {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
