"""convert_hf_to_gguf on model directories saved by transformers, read back with our GGUF reader."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize

from helpers.hf_models import SMOLLM2_135M, TINYLLAMA_1_1B_CHAT
from opentransformer.convert import convert_hf_to_gguf
from opentransformer.convert.adapters.llama import permute_qk
from opentransformer.errors import InvalidRequestError, ModelFormatError, UnsupportedModelError
from opentransformer.formats.gguf import GGUFFile

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 2048}


@pytest.fixture(scope="module")
def smol(make_hf_model):
    return make_hf_model("smollm2", SMOLLM2_135M, num_hidden_layers=2)


@pytest.fixture(scope="module")
def smol_f32(smol, tmp_path_factory):
    return GGUFFile(convert_hf_to_gguf(smol.path, tmp_path_factory.mktemp("gguf") / "smol.gguf", progress=False))


def hf_weight(hf, name):
    return dict(hf.model.named_parameters())[name].detach().float().numpy()


def test_metadata_describes_the_model(smol, smol_f32):
    g, c = smol_f32, smol.config
    assert g.architecture == "llama"
    expected = {"embedding_length": 576, "block_count": 2, "feed_forward_length": 1536, "attention.head_count": 9,
                "attention.head_count_kv": 3, "attention.key_length": 64, "context_length": 8192,
                "rope.freq_base": 100000.0, "rope.dimension_count": 64, "vocab_size": c["vocab_size"]}
    assert {k: g.get(f"llama.{k}") for k in expected} == expected
    assert g.get("llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-5)
    assert g.get("llama.rope.scaling.type") is None and "rope_freqs.weight" not in g.tensors
    assert g.get("tokenizer.ggml.model") == "gpt2" and g.get("tokenizer.ggml.pre") == "smollm"
    assert len(g.get("tokenizer.ggml.tokens")) == c["vocab_size"]
    assert g.get("tokenizer.ggml.tokens")[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert (g.get("tokenizer.ggml.bos_token_id"), g.get("tokenizer.ggml.eos_token_id")) == (1, 2)
    assert "<|im_start|>" in g.get("tokenizer.chat_template")


def test_f32_tensors_are_the_checkpoint_permuted_where_rope_needs_it(smol, smol_f32):
    g = smol_f32
    assert "output.weight" not in g.tensors  # tied
    np.testing.assert_array_equal(g.tensor("token_embd.weight").data, hf_weight(smol, "model.embed_tokens.weight"))
    np.testing.assert_array_equal(g.tensor("blk.1.ffn_norm.weight").data,
                                  hf_weight(smol, "model.layers.1.post_attention_layernorm.weight"))
    np.testing.assert_array_equal(g.tensor("blk.1.attn_q.weight").data,
                                  permute_qk(hf_weight(smol, "model.layers.1.self_attn.q_proj.weight"), 9))
    np.testing.assert_array_equal(g.tensor("blk.1.attn_k.weight").data,
                                  permute_qk(hf_weight(smol, "model.layers.1.self_attn.k_proj.weight"), 3))
    np.testing.assert_array_equal(g.tensor("blk.1.attn_v.weight").data,
                                  hf_weight(smol, "model.layers.1.self_attn.v_proj.weight"))
    assert all(t.type_name == "F32" for t in g.tensors.values())


@pytest.mark.parametrize("outtype,weight_type,max_rel_err", [("f16", "F16", 1e-3), ("bf16", "BF16", 8e-3),
                                                             ("q8_0", "Q8_0", 1e-2), ("q4_0", "Q4_0", 0.2),
                                                             ("q4_1", "Q4_1", 0.2)])
def test_outtypes_quantize_matrices_and_keep_vectors_f32(smol, tmp_path, outtype, weight_type, max_rel_err):
    g = GGUFFile(convert_hf_to_gguf(smol.path, tmp_path / f"m.{outtype}.gguf", outtype, progress=False))
    # The tied token embedding is the output head: F16 in q8_0, Q6_K in the 4-bit types, which SmolLM2's
    # 576-wide rows turn into Q8_0 (tensor_types.py). Its 3 query heads per KV head are too few for
    # q8_0's GQA rule, so attn_v stays Q8_0.
    embedding = {"q8_0": "F16", "q4_0": "Q8_0", "q4_1": "Q8_0"}.get(outtype, weight_type)
    for t in g.tensors.values():
        expected = embedding if t.name == "token_embd.weight" else weight_type
        assert t.type_name == (expected if len(t.shape) == 2 else "F32"), t.name
    t = g.tensor("blk.0.ffn_down.weight")
    ref = hf_weight(smol, "model.layers.0.mlp.down_proj.weight")
    values = dequantize(np.asarray(t.data), QT[t.type_name]).reshape(ref.shape)
    assert np.abs(values - ref).max() / np.abs(ref).max() < max_rel_err


# SmolLM2's 576-wide rows do not fill 256-element K-quant blocks: Q4_K falls back to Q4_1, Q6_K to Q8_0;
# ffn_down's 1536-wide rows do. In 2 layers, use_more_bits picks layer 1 only.
K_TYPES = {
    "q4_k": {"token_embd": "Q8_0", "blk.0.attn_v": "Q4_1", "blk.0.ffn_down": "Q4_K", "blk.1.ffn_down": "Q4_K"},
    "q6_k": {"token_embd": "Q8_0", "blk.0.attn_v": "Q8_0", "blk.0.ffn_down": "Q6_K", "blk.1.ffn_down": "Q6_K"},
    "q4_k_m": {"token_embd": "Q8_0", "blk.0.attn_v": "Q4_1", "blk.1.attn_v": "Q8_0", "blk.0.ffn_down": "Q4_K",
               "blk.1.ffn_down": "Q6_K", "blk.1.ffn_up": "Q4_1"},
}


@pytest.mark.parametrize("outtype", list(K_TYPES))
def test_k_quant_outtypes(smol, tmp_path, outtype):
    g = GGUFFile(convert_hf_to_gguf(smol.path, tmp_path / "m.gguf", outtype, progress=False))
    assert {name: g.tensor(f"{name}.weight").type_name for name in K_TYPES[outtype]} == K_TYPES[outtype]
    assert g.tensor("blk.0.attn_norm.weight").type_name == "F32"
    t = g.tensor("blk.1.ffn_down.weight")
    ref = hf_weight(smol, "model.layers.1.mlp.down_proj.weight")
    values = dequantize(np.asarray(t.data), QT[t.type_name]).reshape(ref.shape)
    assert np.linalg.norm(values - ref) / np.linalg.norm(ref) < 0.1


def test_unknown_outtype(smol, tmp_path):
    with pytest.raises(InvalidRequestError, match="q3_x"):
        convert_hf_to_gguf(smol.path, tmp_path / "m.gguf", "q3_x", progress=False)


def test_untied_model_keeps_its_head(make_hf_model, tmp_path):
    hf = make_hf_model("tinyllama_1layer", TINYLLAMA_1_1B_CHAT, num_hidden_layers=1, hidden_size=256,
                       intermediate_size=704, num_attention_heads=4, num_key_value_heads=2)
    g = GGUFFile(convert_hf_to_gguf(hf.path, tmp_path / "m.gguf", progress=False))
    np.testing.assert_array_equal(g.tensor("output.weight").data, hf_weight(hf, "lm_head.weight"))
    assert g.get("llama.context_length") == 2048 and g.get("llama.rope.freq_base") == 10000.0


def test_rope_scaling_is_recorded(make_hf_model, tmp_path):
    linear = make_hf_model("rope_linear", SMOLLM2_135M, num_hidden_layers=1,
                           rope_scaling={"rope_type": "linear", "factor": 2.0})
    g = GGUFFile(convert_hf_to_gguf(linear.path, tmp_path / "linear.gguf", progress=False))
    assert (g.get("llama.rope.scaling.type"), g.get("llama.rope.scaling.factor")) == ("linear", 2.0)
    llama3 = make_hf_model("rope_llama3", SMOLLM2_135M, num_hidden_layers=1, rope_scaling=LLAMA3_ROPE)
    g = GGUFFile(convert_hf_to_gguf(llama3.path, tmp_path / "llama3.gguf", progress=False))
    assert g.get("llama.rope.scaling.type") is None
    factors = g.tensor("rope_freqs.weight")
    assert factors.type_name == "F32" and factors.shape == (32,)
    assert factors.data.min() == 1.0 and factors.data.max() == 8.0


def test_sharded_bf16_checkpoint_converts_exactly(make_hf_model, tmp_path):
    hf = make_hf_model("smollm2_bf16_sharded", SMOLLM2_135M, num_hidden_layers=2, dtype="bfloat16",
                       max_shard_size="2MB")
    assert (hf.path / "model.safetensors.index.json").is_file()
    g = GGUFFile(convert_hf_to_gguf(hf.path, tmp_path / "m.gguf", progress=False))
    # The reference model holds the bf16-rounded values that were saved: the F32 file must hold them exactly.
    np.testing.assert_array_equal(g.tensor("blk.1.ffn_up.weight").data,
                                  hf_weight(hf, "model.layers.1.mlp.up_proj.weight"))


def test_checkpoint_missing_tensors_is_refused(smol, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(smol.path, broken)
    config = (broken / "config.json").read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 3')
    (broken / "config.json").write_text(config)
    with pytest.raises(ModelFormatError, match="blk.2.attn_q.weight"):
        convert_hf_to_gguf(broken, tmp_path / "m.gguf", progress=False)
    assert not (tmp_path / "m.gguf").exists() and not (tmp_path / "m.gguf.partial").exists()


def test_pickle_only_directory_is_refused(smol, tmp_path):
    d = tmp_path / "pickled"
    d.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(smol.path / name, d / name)
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(UnsupportedModelError, match="safetensors"):
        convert_hf_to_gguf(d, tmp_path / "m.gguf", progress=False)


TEXTS = ["The quick brown fox jumps over the lazy dog.", "In 2025, 5678 tokens per second on 32 cores!",
         "def forward(self, x):\n    return x  # ok", "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n",
         "unseen wörds, émojis 🚀 and   spaces"]


def test_engine_tokenizer_from_the_file_encodes_like_the_source_tokenizer(smol, smol_f32):
    from tokenizers import Tokenizer as HFTokenizer

    from opentransformer.llm.tokenizer import Tokenizer

    ours = Tokenizer.from_gguf(smol_f32.metadata, str(smol_f32.path))
    ref = HFTokenizer.from_file(str(smol.path / "tokenizer.json"))
    for text in TEXTS:
        assert ours.encode(text, add_bos=False) == ref.encode(text, add_special_tokens=False).ids, text
        assert ours.decode(ref.encode(text, add_special_tokens=False).ids) == text
