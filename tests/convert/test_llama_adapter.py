"""Llama-family adapter: names, Q/K permutation, RoPE scaling, config checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opentransformer.convert.adapters import adapter_for
from opentransformer.convert.adapters.llama import ARCHITECTURES, llama3_rope_factors, permute_qk
from opentransformer.errors import ModelFormatError, UnsupportedModelError

CONFIG_PATH = Path("/models/m/config.json")
BASE = dict(architectures=["LlamaForCausalLM"], hidden_size=64, intermediate_size=96, num_attention_heads=4,
            num_key_value_heads=2, num_hidden_layers=2, vocab_size=100, max_position_embeddings=512,
            rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)


def adapter(**overrides):
    return adapter_for({**BASE, **overrides}, CONFIG_PATH)


def test_names_map_to_llama_cpp():
    a = adapter()
    expected = {
        "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
        "model.layers.1.input_layernorm.weight": "blk.1.attn_norm.weight",
        "model.layers.1.post_attention_layernorm.weight": "blk.1.ffn_norm.weight",
        "model.layers.1.self_attn.q_proj.weight": "blk.1.attn_q.weight",
        "model.layers.1.self_attn.k_proj.weight": "blk.1.attn_k.weight",
        "model.layers.1.self_attn.v_proj.weight": "blk.1.attn_v.weight",
        "model.layers.1.self_attn.o_proj.weight": "blk.1.attn_output.weight",
        "model.layers.1.mlp.gate_proj.weight": "blk.1.ffn_gate.weight",
        "model.layers.1.mlp.up_proj.weight": "blk.1.ffn_up.weight",
        "model.layers.1.mlp.down_proj.weight": "blk.1.ffn_down.weight",
        "model.layers.0.self_attn.rotary_emb.inv_freq": None,
    }
    assert {hf: a.gguf_name(hf) for hf in expected} == expected
    mapped = {a.gguf_name(hf.replace("layers.1", f"layers.{i}")) for hf in expected for i in range(2)} - {None}
    assert mapped == a.expected_tensors()


def test_tied_embeddings_drop_the_head():
    a = adapter(tie_word_embeddings=True)
    assert a.gguf_name("lm_head.weight") is None
    assert "output.weight" not in a.expected_tensors()


def test_qwen2_keeps_qkv_biases_unpermuted():
    a = adapter(architectures=["Qwen2ForCausalLM"])
    assert a.arch == "qwen2"
    assert a.gguf_name("model.layers.0.self_attn.k_proj.bias") == "blk.0.attn_k.bias"
    assert "blk.1.attn_v.bias" in a.expected_tensors()
    w = np.arange(64 * 4, dtype=np.float32).reshape(64, 4)
    np.testing.assert_array_equal(a.transform("blk.0.attn_q.weight", w), w)


def test_mistral_is_a_llama_and_its_window_caps_the_context():
    a = adapter(architectures=["MistralForCausalLM"], max_position_embeddings=32768, sliding_window=4096)
    assert a.arch == "llama" and a.context_length == 4096
    assert adapter(architectures=["MistralForCausalLM"], sliding_window=None).context_length == 512


@pytest.mark.parametrize("name", ["model.layers.0.self_attn.q_norm.weight", "model.layers.7.mlp.up_proj.weight",
                                  "vision_tower.patch_embed.weight"])
def test_unknown_tensors_are_refused(name):
    with pytest.raises(UnsupportedModelError, match="no place"):
        adapter().gguf_name(name)


def test_unknown_architecture_lists_the_supported_ones():
    with pytest.raises(UnsupportedModelError) as err:
        adapter(architectures=["GPTNeoXForCausalLM"])
    message = str(err.value)
    assert str(CONFIG_PATH) in message and "GPTNeoXForCausalLM" in message
    assert all(a in message for a in ARCHITECTURES)


@pytest.mark.parametrize("overrides,match", [
    (dict(hidden_act="gelu"), "hidden_act"),
    (dict(attention_bias=True), "attention_bias"),
    (dict(num_key_value_heads=3), "multiple"),
    (dict(rope_scaling={"rope_type": "yarn", "factor": 4.0}), "yarn"),
])
def test_configs_we_cannot_run_are_refused(overrides, match):
    with pytest.raises((UnsupportedModelError, ModelFormatError), match=match):
        adapter(**overrides)


def test_missing_field_is_named():
    config = dict(BASE)
    del config["num_hidden_layers"]
    with pytest.raises(ModelFormatError, match="'num_hidden_layers' is missing"):
        adapter_for(config, CONFIG_PATH).n_layers


def rope(x: np.ndarray, pos: int, inv_freq: np.ndarray, adjacent: bool) -> np.ndarray:
    """Rotate each head of x [heads, head_dim]: adjacent pairs (llama.cpp normal mode) or halves (HF)."""
    half = x.shape[-1] // 2
    a, b = (x[:, 0::2], x[:, 1::2]) if adjacent else (x[:, :half], x[:, half:])
    cos, sin = np.cos(pos * inv_freq), np.sin(pos * inv_freq)
    ra, rb = a * cos - b * sin, a * sin + b * cos
    out = np.empty_like(x)
    if adjacent:
        out[:, 0::2], out[:, 1::2] = ra, rb
    else:
        out[:, :half], out[:, half:] = ra, rb
    return out


@pytest.mark.parametrize("n_heads", [1, 3, 4])
def test_permuted_rows_make_adjacent_pair_rope_equal_half_split_rope(n_heads):
    head_dim, dim = 8, 12
    rng = np.random.default_rng(n_heads)
    w, x = rng.standard_normal((n_heads * head_dim, dim)), rng.standard_normal(dim)
    inv_freq = 10000.0 ** (-np.arange(0, head_dim, 2) / head_dim)
    hf = rope((w @ x).reshape(n_heads, head_dim), 5, inv_freq, adjacent=False)
    ours = rope((permute_qk(w, n_heads) @ x).reshape(n_heads, head_dim), 5, inv_freq, adjacent=True)
    # Same values in the same permuted order for Q and K alike, so every q·k dot product is unchanged.
    np.testing.assert_allclose(ours.reshape(-1), permute_qk(hf.reshape(-1), n_heads), rtol=1e-12, atol=1e-12)


def test_permutation_round_trip():
    n_heads, head_dim = 3, 8
    w = np.arange(n_heads * head_dim * 5, dtype=np.float32).reshape(n_heads * head_dim, 5)
    p = permute_qk(w, n_heads)
    assert not np.array_equal(p, w)
    undone = p.reshape(n_heads, head_dim // 2, 2, 5).swapaxes(1, 2).reshape(w.shape)  # llama.cpp's undo_permute
    np.testing.assert_array_equal(undone, w)


def test_linear_rope_scaling_old_and_new_config_styles_agree():
    old = adapter(rope_scaling={"type": "linear", "factor": 2.0}, rope_theta=5e5)
    new = adapter(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}, rope_theta=None)
    for a in (old, new):
        assert (a.rope_type, a.rope_theta) == ("linear", 5e5)
        assert list(a.extra_tensors()) == []


def test_llama3_rope_factors_match_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 256, "rope_theta": 500000.0}
    hf_config = transformers.LlamaConfig(hidden_size=512, num_attention_heads=4, max_position_embeddings=2048,
                                         rope_parameters=rope)
    with torch.no_grad():
        hf_inv_freq = ROPE_INIT_FUNCTIONS["llama3"](hf_config, "cpu")[0].double().numpy()
    factors = llama3_rope_factors(rope, 500000.0, 128, 2048)
    assert factors.min() == 1.0 and factors.max() == 8.0 and np.any((factors > 1) & (factors < 8))
    ours = 500000.0 ** (-np.arange(0, 128, 2) / 128) / factors
    np.testing.assert_allclose(ours, hf_inv_freq, rtol=1e-6)
    a = adapter(rope_parameters=rope, max_position_embeddings=2048)
    [(name, tensor)] = a.extra_tensors()
    assert name == "rope_freqs.weight" and tensor.dtype == np.float32 and tensor.shape == (a.head_dim // 2,)
