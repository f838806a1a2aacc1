"""Philox4x32-10 and the normals drawn from it, on every ISA.

The generator is checked bit for bit against randomgen's Philox (number=4,
width=32, an independent implementation; numpy's own Philox is the 4x64
variant, a different generator) and against Random123's published
known-answer vectors. The normals must equal the numpy float32 replay of the
kernels' Box-Muller to the bit, and lie within 1e-6 of Box-Muller evaluated
in float64 with numpy's log, cos and sin on the same words (the float32
polynomials are within 4 ulp).
"""
import numpy as np
import pytest

from opentransformer.kernels import ops, reference

randomgen = pytest.importorskip("randomgen")

# Random123's kat_vectors for philox4x32_10: (counter words, key words, output words).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

# (seed, first path, paths, blocks): vector tails, one path, a path index that
# crosses 2^32 inside a vector, seeds of 64 bits.
SHAPES = [(0, 0, 1, 1), (1, 0, 7, 3), (2 ** 64 - 1, 5, 17, 2), (123456789012345, 2 ** 32 - 5, 37, 5),
          (42, 1000, 64 * 3 + 9, 1)]


def randomgen_block(seed: int, p: int, j: int, count: int) -> np.ndarray:
    """Blocks j of paths p .. p + count - 1: randomgen's counter is a 128-bit integer (word 0 lowest), stepped
    by one before each block, so consecutive draws walk the path word."""
    start = (p + (j << 64) - 1) % 2 ** 128
    gen = randomgen.Philox(key=seed, counter=start, number=4, width=32)
    return gen.random_raw(4 * count).astype(np.uint32).reshape(count, 4)


@pytest.mark.parametrize("counter,key,want", KNOWN_ANSWERS)
def test_reference_matches_known_answers(counter, key, want):
    got = reference.philox4x32_10(np.array([counter], dtype=np.uint32), key)
    assert got[0].tolist() == list(want)


def test_kernel_known_answer(isa):
    """The kernel's counter (p lo, p hi, j, 0) with p = 0, j = 0 and key 0 is the first known answer."""
    assert ops.philox4x32(0, 1, 1)[0, 0].tolist() == list(KNOWN_ANSWERS[0][2])


@pytest.mark.parametrize("seed,path0,npaths,nblocks", SHAPES)
def test_philox_bitwise_against_randomgen(isa, seed, path0, npaths, nblocks):
    out = np.full((npaths, nblocks, 4), 0xDEADBEEF, dtype=np.uint32)
    ops.philox4x32(seed, npaths, nblocks, path0=path0, out=out)
    for j in range(nblocks):
        np.testing.assert_array_equal(out[:, j], randomgen_block(seed, path0, j, npaths))
    np.testing.assert_array_equal(out, reference.mc_philox(seed, npaths, nblocks, path0))


def float64_box_muller(words: np.ndarray) -> np.ndarray:
    w = words.astype(np.float64)
    u = (np.floor(w[..., 0::2] / 256) + 1) / 2 ** 24
    v = np.floor(w[..., 1::2] / 256) / 2 ** 24
    r = np.sqrt(-2 * np.log(u))
    z = np.empty(words.shape)
    z[..., 0::2], z[..., 1::2] = r * np.cos(2 * np.pi * v), r * np.sin(2 * np.pi * v)
    return z


@pytest.mark.parametrize("seed,path0,npaths,nblocks", SHAPES + [(9, 3, 1000, 40)])
def test_normals(isa, seed, path0, npaths, nblocks):
    out = np.full((npaths, 4 * nblocks), np.nan, dtype=np.float32)
    ops.mc_normals(seed, npaths, nblocks, path0=path0, out=out)
    assert np.isfinite(out).all(), "a normal was not written"
    np.testing.assert_array_equal(out, reference.mc_normals(seed, npaths, nblocks, path0))
    words = reference.mc_philox(seed, npaths, nblocks, path0)
    want = float64_box_muller(words).reshape(npaths, 4 * nblocks)
    assert np.abs(out - want).max() <= 1e-6


def test_normals_are_standard():
    """400k normals: mean, variance, and tail frequency beyond 3 sigma within 5 standard errors."""
    z = ops.mc_normals(2024, 100_000, 1).astype(np.float64).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    p3 = 0.0026997960632601866  # P(|Z| > 3)
    assert abs((np.abs(z) > 3).mean() - p3) < 5 * np.sqrt(p3 * (1 - p3) / n)


@pytest.mark.parametrize("bad", [dict(seed=-1), dict(seed=2 ** 64), dict(path0=-1), dict(nblocks=-1)])
def test_bad_arguments(bad):
    args = dict(seed=1, npaths=4, nblocks=1, path0=0) | bad
    with pytest.raises(ValueError):
        ops.philox4x32(**args)
