"""Tokenizer metadata from tokenizer.json / tokenizer_config.json, as llama.cpp writes it."""
from __future__ import annotations

import json

import pytest
from gguf import TokenType

from opentransformer.convert.tokenizer_metadata import read_tokenizer_metadata
from opentransformer.errors import ModelNotFoundError, UnsupportedModelError

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")
BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
PRE_TOKENIZERS = {
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, BYTE_LEVEL]},
    "llama-bpe": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
        {**BYTE_LEVEL, "use_regex": False}]},
    "qwen2": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False},
        {**BYTE_LEVEL, "use_regex": False}]},
    "gpt-2": BYTE_LEVEL,
    "default": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\w+|\S"}, "behavior": "Isolated", "invert": False},
        {**BYTE_LEVEL, "use_regex": False}]},
}


def write_tokenizer(directory, pre_tokenizer=BYTE_LEVEL, model_type="BPE", tok_config=None, post_processor=None,
                    merges=(["Ġ", "t"], ["h", "e"])):
    vocab = {"a": 0, "b": 1, "Ġ": 2, "t": 3, "h": 4, "e": 5, "Ġt": 6, "he": 7}
    tok = {"version": "1.0", "added_tokens": [
        {"id": 8, "content": "<|begin_of_text|>", "special": True},
        {"id": 9, "content": "<|eot_id|>", "special": False},  # unmarked, but looks special
        {"id": 10, "content": "<tool>", "special": False}],
        "pre_tokenizer": pre_tokenizer, "post_processor": post_processor, "decoder": {"type": "ByteLevel"},
        "model": {"type": model_type, "vocab": vocab, "merges": [list(m) for m in merges]}}
    (directory / "tokenizer.json").write_text(json.dumps(tok))
    if tok_config is not None:
        (directory / "tokenizer_config.json").write_text(json.dumps(tok_config))
    return directory


@pytest.mark.parametrize("name", list(PRE_TOKENIZERS))
def test_pre_tokenizer_is_recognised_by_its_splitting(tmp_path, name):
    meta = read_tokenizer_metadata(write_tokenizer(tmp_path, PRE_TOKENIZERS[name]), 11, {})
    assert meta.pre == name


def test_tokens_types_merges_and_padding(tmp_path):
    meta = read_tokenizer_metadata(write_tokenizer(tmp_path), 13, {})
    assert meta.tokens[:8] == ["a", "b", "Ġ", "t", "h", "e", "Ġt", "he"]
    assert meta.tokens[8:] == ["<|begin_of_text|>", "<|eot_id|>", "<tool>", "[PAD11]", "[PAD12]"]
    assert meta.token_types == [TokenType.NORMAL] * 8 + [TokenType.CONTROL, TokenType.CONTROL,
                                                         TokenType.USER_DEFINED, TokenType.UNUSED, TokenType.UNUSED]
    assert meta.merges == ["Ġ t", "h e"]


def test_special_ids_and_flags_from_tokenizer_config(tmp_path):
    config = {"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|eot_id|>", "add_bos_token": True,
              "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}
    meta = read_tokenizer_metadata(write_tokenizer(tmp_path, tok_config=config), 11, {"pad_token_id": 1})
    assert meta.special_ids == {"bos": 8, "eos": 9, "pad": 1}
    assert (meta.add_bos, meta.add_eos, meta.chat_template) == (True, None, "D")


def test_add_bos_follows_the_post_processor_template(tmp_path):
    # Llama 3 says it nowhere else: its template starts with <|begin_of_text|>.
    template = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                                         {"Sequence": {"id": "A", "type_id": 0}}]}
    post = {"type": "Sequence", "processors": [{"type": "ByteLevel"}, template]}
    meta = read_tokenizer_metadata(write_tokenizer(tmp_path, tok_config={"bos_token": "<|begin_of_text|>",
                                                                         "eos_token": "<|eot_id|>"},
                                                   post_processor=post), 11, {})
    assert (meta.add_bos, meta.add_eos) == (True, False)


def test_chat_template_file_wins(tmp_path):
    write_tokenizer(tmp_path, tok_config={"chat_template": "old"})
    (tmp_path / "chat_template.jinja").write_text("new")
    assert read_tokenizer_metadata(tmp_path, 11, {}).chat_template == "new"


def write_sentencepiece_tokenizer(directory):
    """TinyLlama's (Llama 2's) layout: BPE with byte fallback, a "▁" prepended by the normalizer."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)},
             "▁": 259, "t": 260, "h": 261, "e": 262, "he": 263, "▁t": 264, "▁the": 265}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for t, i in list(vocab.items())[:3]]
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                               {"type": "Replace", "pattern": {"String": " "},
                                                                "content": "▁"}]},
           "pre_tokenizer": None, "post_processor": None,
           "decoder": {"type": "Sequence", "decoders": [
               {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
               {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                     "vocab": vocab, "merges": ["h e", "▁ t", "▁t he"]}}
    (directory / "tokenizer.json").write_text(json.dumps(tok))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    return directory


def test_sentencepiece_style_vocab_gets_scores_in_merge_order(tmp_path):
    meta = read_tokenizer_metadata(write_sentencepiece_tokenizer(tmp_path), 267, {})
    assert (meta.model, meta.pre, meta.merges, meta.add_space_prefix) == ("llama", "default", [], True)
    assert meta.token_types[:4] == [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.BYTE]
    assert meta.token_types[258:] == [TokenType.BYTE] + [TokenType.NORMAL] * 7 + [TokenType.UNUSED]
    scores = dict(zip(meta.tokens, meta.scores))
    assert scores["he"] > scores["▁t"] > scores["▁the"] and scores["t"] == scores["<0x41>"] == 0.0
    assert meta.special_ids == {"bos": 1, "eos": 2, "unk": 0}
    assert (meta.add_bos, meta.add_eos) == (True, False)


def test_unigram_vocab_is_not_supported(tmp_path):
    write_tokenizer(tmp_path, pre_tokenizer={"type": "Metaspace", "replacement": "▁"}, model_type="Unigram")
    with pytest.raises(UnsupportedModelError, match="only BPE tokenizers"):
        read_tokenizer_metadata(tmp_path, 11, {})


def test_missing_tokenizer_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="tokenizer.json is missing"):
        read_tokenizer_metadata(tmp_path, 11, {})


def test_engine_tokenizer_reads_sentencepiece_scores_like_the_source_tokenizer(tmp_path):
    from gguf import GGUFWriter
    from tokenizers import Tokenizer as HFTokenizer

    from opentransformer.formats.gguf import GGUFFile
    from opentransformer.llm.tokenizer import Tokenizer

    meta = read_tokenizer_metadata(write_sentencepiece_tokenizer(tmp_path), 267, {})
    writer = GGUFWriter(tmp_path / "vocab.gguf", "llama")
    meta.write(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    gguf = GGUFFile(tmp_path / "vocab.gguf")
    ours = Tokenizer.from_gguf(gguf.metadata, str(gguf.path))
    ref = HFTokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in ["the", "the hethe", "tea at three", "héh"]:
        assert ours.encode(text, add_bos=False) == ref.encode(text, add_special_tokens=False).ids, text
