"""Hugging Face model directories made from randomly initialised `transformers`
models with the configs of real checkpoints, as `save_pretrained` writes them.

Configs are the published ones, shrunk in depth (and in vocabulary: every
model here uses one small byte-level BPE tokenizer trained on the spot in
SmolLM2's style, so a vocabulary of tens of thousands of random rows does
not dominate test time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

# HuggingFaceTB/SmolLM2-135M-Instruct
SMOLLM2_135M = dict(
    architectures=["LlamaForCausalLM"], hidden_size=576, intermediate_size=1536, num_attention_heads=9,
    num_key_value_heads=3, num_hidden_layers=30, head_dim=64, rms_norm_eps=1e-5, rope_theta=100000.0,
    max_position_embeddings=8192, tie_word_embeddings=True, vocab_size=49152, bos_token_id=1, eos_token_id=2,
    hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.041666666666666664,
)
# TinyLlama/TinyLlama-1.1B-Chat-v1.0
TINYLLAMA_1_1B_CHAT = dict(
    architectures=["LlamaForCausalLM"], hidden_size=2048, intermediate_size=5632, num_attention_heads=32,
    num_key_value_heads=4, num_hidden_layers=22, rms_norm_eps=1e-5, rope_theta=10000.0,
    max_position_embeddings=2048, tie_word_embeddings=False, vocab_size=32000, bos_token_id=1, eos_token_id=2,
    hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.02,
)
# Qwen/Qwen2.5-0.5B-Instruct: biases on q, k and v; 14 query heads sharing 2 KV heads.
QWEN2_5_0_5B_INSTRUCT = dict(
    architectures=["Qwen2ForCausalLM"], hidden_size=896, intermediate_size=4864, num_attention_heads=14,
    num_key_value_heads=2, num_hidden_layers=24, rms_norm_eps=1e-6, rope_theta=1000000.0,
    max_position_embeddings=32768, sliding_window=32768, use_sliding_window=False, max_window_layers=21,
    tie_word_embeddings=True, vocab_size=151936, bos_token_id=151643, eos_token_id=151645, hidden_act="silu",
    initializer_range=0.02,
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
                   "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                   "{% endif %}")
TOKENIZER_VOCAB = 512
_CORPUS = [
    "The quick brown fox jumps over the lazy dog while the cat watches from the window.",
    "Transformers turn a sequence of tokens into a sequence of vectors, one attention layer at a time.",
    "In 2024 the model ran 1234 tokens per second on 16 cores; in 2025, 5678 on 32.",
    "Rotary position embeddings rotate pairs of query and key dimensions by an angle that grows with position.",
    "def forward(self, x):\n    return self.norm(x + self.attention(x))\n",
    "Why is the sky blue? Sunlight scatters off the molecules of the air, and blue light scatters the most.",
    "She sells sea shells by the sea shore; the shells she sells are surely sea shells.",
]


@dataclass
class HFModel:
    """A model directory and the float32, eager-attention model it was saved from."""

    path: Path
    model: object  # transformers.PreTrainedModel
    config: dict


def save_tokenizer(directory: Path) -> int:
    """Train and save a SmolLM2-style tokenizer (digits split, byte-level BPE); returns its vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>", add_bos_token=False)
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(directory)
    return tok.get_vocab_size()


def build_model_dir(directory: Path, base: dict, tokenizer_dir: Path, vocab_size: int, seed: int = 0,
                    dtype: str = "float32", max_shard_size: str | None = None, **overrides) -> HFModel:
    """Save a random model with `base` config (plus overrides) and the tokenizer files to `directory`."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = {**base, "vocab_size": vocab_size, **overrides}
    model_type = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                  "Qwen2ForCausalLM": "qwen2"}[fields["architectures"][0]]
    config = AutoConfig.for_model(model_type, **fields)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32).eval()
    _randomize(model, seed)
    directory.mkdir(parents=True, exist_ok=True)
    saved = model if dtype == "float32" else model.to(getattr(torch, dtype))
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    saved.save_pretrained(directory, safe_serialization=True, **kwargs)
    model = model.to(torch.float32)
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, directory / f.name)
    return HFModel(directory, model, fields)


def _randomize(model, seed: int) -> None:
    """Weights that make every part of the graph matter: unit-scale activations
    (std 1/sqrt(fan_in)), so attention is far from uniform and RoPE errors show,
    and norm gains away from 1, so a misplaced norm shows."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
