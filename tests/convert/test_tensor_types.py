"""Which type each tensor gets: float types, block types with a Q6_K head, the q8_0 and q4_k_m mixtures."""
from gguf import GGMLQuantizationType as QT

from opentransformer.convert.tensor_types import MIXTURES, ModelShape, tensor_type, use_more_bits

TINYLLAMA = ModelShape(n_layers=22, has_output=True, n_gqa=8)
TIED = ModelShape(n_layers=22, has_output=False, n_gqa=8)


def test_use_more_bits_picks_llama_cpp_layers():
    # TinyLlama's 22 layers: the first and last eighth, and every third layer from the third on.
    assert [i for i in range(22) if use_more_bits(i, 22)] == [0, 1, 4, 7, 10, 13, 16, 19, 20, 21]
    assert [i for i in range(30) if use_more_bits(i, 30)] == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]


def q4_k_m(name, shape=(2048, 2048), model=TINYLLAMA):
    return tensor_type(name, shape, QT.Q4_K, model, MIXTURES["q4_k_m"])


def q8_0(name, shape=(2048, 2048), model=TINYLLAMA):
    return tensor_type(name, shape, QT.Q8_0, model, MIXTURES["q8_0"])


def test_q4_k_m_mixture():
    assert q4_k_m("output.weight", (32000, 2048)) == QT.Q6_K
    assert q4_k_m("token_embd.weight", (32000, 2048)) == QT.Q4_K
    assert q4_k_m("token_embd.weight", (32000, 2048), TIED) == QT.Q6_K  # tied: it is the head
    assert q4_k_m("blk.4.attn_v.weight", (256, 2048)) == QT.Q6_K
    assert q4_k_m("blk.5.attn_v.weight", (256, 2048)) == QT.Q4_K
    assert q4_k_m("blk.21.ffn_down.weight", (2048, 5632)) == QT.Q6_K
    assert q4_k_m("blk.5.ffn_down.weight", (2048, 5632)) == QT.Q4_K
    assert q4_k_m("blk.4.attn_q.weight") == QT.Q4_K and q4_k_m("blk.4.ffn_up.weight") == QT.Q4_K


def test_q8_0_mixture_keeps_embedding_head_and_gqa_values_in_f16():
    assert q8_0("token_embd.weight", (32000, 2048)) == QT.F16
    assert q8_0("output.weight", (32000, 2048)) == QT.F16
    assert q8_0("token_embd.weight", (32000, 2048), TIED) == QT.F16
    assert q8_0("blk.3.attn_v.weight", (256, 2048)) == QT.F16
    # Without grouped-query attention attn_v is as large as attn_q: it stays Q8_0.
    assert q8_0("blk.3.attn_v.weight", model=ModelShape(22, True, n_gqa=1)) == QT.Q8_0
    assert q8_0("blk.3.attn_v.weight", (192, 576), ModelShape(30, False, n_gqa=3)) == QT.Q8_0
    for name in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        assert q8_0(f"blk.3.{name}.weight") == QT.Q8_0


def test_plain_block_types_put_the_output_head_in_q6_k():
    for outtype, weight_type in (("q4_0", QT.Q4_0), ("q4_1", QT.Q4_1), ("q4_k", QT.Q4_K), ("q6_k", QT.Q6_K)):
        plain = lambda name, shape=(2048, 2048), model=TINYLLAMA: tensor_type(name, shape, weight_type, model,
                                                                              MIXTURES[outtype])
        assert plain("output.weight", (32000, 2048)) == QT.Q6_K
        assert plain("token_embd.weight", (32000, 2048)) == weight_type
        assert plain("token_embd.weight", (32000, 2048), TIED) == QT.Q6_K
        assert plain("token_embd.weight", (49152, 576), TIED) == QT.Q8_0  # SmolLM2: rows of 576
        for name in ("attn_q", "attn_v", "ffn_down"):
            assert plain(f"blk.4.{name}.weight") == weight_type


def test_rows_that_do_not_fill_blocks_fall_back():
    assert q4_k_m("blk.5.attn_q.weight", (576, 576)) == QT.Q4_1
    assert q4_k_m("output.weight", (49152, 576)) == QT.Q8_0
    assert q4_k_m("blk.5.attn_q.weight", (100, 100)) == QT.F16
    assert tensor_type("blk.0.ffn_up.weight", (64, 48), QT.Q8_0, ModelShape(2, True)) == QT.F16


def test_vectors_stay_f32():
    for weight_type in (QT.Q4_K, QT.Q8_0, QT.F16):
        assert tensor_type("blk.0.attn_norm.weight", (2048,), weight_type, ModelShape(2, True)) == QT.F32
    assert q8_0("blk.0.attn_norm.weight", (2048,)) == QT.F32
