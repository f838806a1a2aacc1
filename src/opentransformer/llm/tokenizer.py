"""Text to token ids and back, for the models we run, built on Hugging Face `tokenizers`.

Two vocabulary families, from a GGUF's tokenizer metadata or a Hugging Face
`tokenizer.json`:

- byte-level BPE (GGUF `tokenizer.ggml.model = "gpt2"`: SmolLM2, Llama 3, Qwen2),
  whose pre-tokenizer regexes are chosen by `tokenizer.ggml.pre` as llama.cpp
  chooses them;
- SentencePiece-style BPE with byte fallback (`"llama"`: Llama 2, TinyLlama),
  which llama.cpp tokenizes by repeatedly merging the adjacent pair whose
  concatenation has the highest score. A BPE whose merges are every
  (left, right) pair of vocabulary pieces, ranked by the score of left+right,
  makes the same choices, so `tokenizers` runs that.

Encoding is done by `tokenizers`. Decoding joins each token's bytes, as
llama.cpp's token_to_piece gives them, so that a stream of tokens and a whole
list decode through the same path.
"""
from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from tokenizers import AddedToken, Regex, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE

from ..errors import InvalidRequestError, ModelFormatError, UnsupportedModelError

# GGUF token types (tokenizer.ggml.token_type), as llama.cpp reads them.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Token texts that llama.cpp treats as end of generation (and as control
# tokens) whatever their type says: turn ends, text ends, and the
# fill-in-the-middle pad / repository / file-separator markers.
EOG_TEXTS = frozenset({
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
    "<|file_sep|>",
})

# Pre-tokenizer regexes by `tokenizer.ggml.pre`. llama.cpp applies a list of
# regexes in turn, each splitting the pieces the previous one left (matches and
# the text between them both become pieces); a Sequence of isolating Splits
# does the same.
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = _LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
_PRE_REGEXES = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "gpt2": [_GPT2],
    "llama3": [_LLAMA3],
    "qwen2": [_QWEN2],
    "smollm": [r"\p{N}", _GPT2],
}
_PRE_ALIASES = {
    "": "default", "default": "default",
    "gpt-2": "gpt2", "phi-2": "gpt2", "mpt": "gpt2", "olmo": "gpt2", "jais": "gpt2",
    "llama3": "llama3", "llama-v3": "llama3", "llama-bpe": "llama3", "falcon3": "llama3", "pixtral": "llama3",
    "qwen2": "qwen2", "deepseek-r1-qwen": "qwen2", "megrez": "qwen2", "stablelm2": "qwen2",
    "smollm": "smollm", "starcoder": "smollm", "refact": "smollm", "command-r": "smollm",
    "codeshell": "smollm", "exaone": "smollm", "minerva-7b": "smollm",
}
SUPPORTED_MODELS = ("gpt2", "llama")


def _byte_decoder() -> dict[int, str]:
    """GPT-2's byte-level alphabet reversed, as a str.translate table: each of
    the 256 stand-in characters back to the latin-1 character of its byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[256 + extra] = chr(b)
            extra += 1
    return table


_BYTE_DECODER = _byte_decoder()


def _byte_level_bytes(text: str) -> bytes:
    latin1 = text.translate(_BYTE_DECODER)
    try:
        return latin1.encode("latin-1")
    except UnicodeEncodeError:  # a character outside the byte alphabet stands for itself
        return b"".join(c.encode("latin-1") if ord(c) < 256 else c.encode() for c in latin1)


def _spm_bytes(text: str, token_type: int) -> bytes:
    if token_type == BYTE:
        return bytes([int(text[3:5], 16)])  # "<0xNN>"
    return text.replace("\u2581", " ").encode()


class Tokenizer:
    """Encode text to ids and decode ids to text for one vocabulary.

    Build it with `from_gguf` or `from_hf_dir`. `add_bos` tells whether the
    model wants a BOS token before a prompt; `eos_ids` are all the tokens that
    end a generation.
    """

    def __init__(self, hf: HFTokenizer, pieces: list[bytes], hidden: frozenset[int], *,
                 bos_id: int | None, eos_id: int | None, eos_ids: Iterable[int], add_bos: bool,
                 space_prefix: bool):
        self._hf = hf
        self._hf_plain: HFTokenizer | None = None  # a copy that reads special-token text as text
        self._pieces = pieces
        self._hidden = hidden
        self._space_prefix = space_prefix
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.eos_ids = frozenset(eos_ids)
        self.add_bos = add_bos

    # --- construction -------------------------------------------------------
    @classmethod
    def from_gguf(cls, metadata: Mapping[str, Any], source: str) -> "Tokenizer":
        """From a GGUF file's metadata (`tokenizer.ggml.*`); `source` names the file in errors."""
        model = metadata.get("tokenizer.ggml.model")
        if model not in SUPPORTED_MODELS:
            raise UnsupportedModelError(f"{source}: tokenizer.ggml.model is {model!r}; "
                                        f"supported: {', '.join(SUPPORTED_MODELS)}")
        tokens = _list_field(metadata, "tokenizer.ggml.tokens", str, source)
        n = len(tokens)
        types = metadata.get("tokenizer.ggml.token_type") or [NORMAL] * n
        _check_length(types, n, "tokenizer.ggml.token_type", source)
        types = [CONTROL if t in EOG_TEXTS else k for t, k in zip(tokens, types)]
        bos_id, eos_id = (_token_id(metadata, f"tokenizer.ggml.{k}_token_id", n, source) for k in ("bos", "eos"))
        eos_ids = {i for i, t in enumerate(tokens) if t in EOG_TEXTS}
        for key in ("eos", "eot", "eom"):
            tid = _token_id(metadata, f"tokenizer.ggml.{key}_token_id", n, source)
            if tid is not None:
                eos_ids.add(tid)

        if model == "gpt2":
            pre = metadata.get("tokenizer.ggml.pre", "")
            if pre not in _PRE_ALIASES:
                raise UnsupportedModelError(f"{source}: tokenizer.ggml.pre is {pre!r}; "
                                            f"supported: {', '.join(sorted(k for k in _PRE_ALIASES if k))}")
            pre = _PRE_ALIASES[pre]
            merges = _list_field(metadata, "tokenizer.ggml.merges", str, source)
            hf = _byte_level_bpe(tokens, _split_merges(merges, source), pre)
            space_prefix = False
            add_bos_default = pre == "llama3"  # llama.cpp's default for this family
        else:
            scores = _list_field(metadata, "tokenizer.ggml.scores", (float, int), source)
            _check_length(scores, n, "tokenizer.ggml.scores", source)
            unk_id = _token_id(metadata, "tokenizer.ggml.unknown_token_id", n, source)
            space_prefix = bool(metadata.get("tokenizer.ggml.add_space_prefix", True))
            hf = _sentencepiece_bpe(tokens, scores, types, unk_id, space_prefix)
            add_bos_default = True
        _add_special_tokens(hf, tokens, types)
        return cls(hf, _token_bytes(tokens, types, model == "gpt2"), _hidden(types),
                   bos_id=bos_id, eos_id=eos_id, eos_ids=eos_ids,
                   add_bos=bool(metadata.get("tokenizer.ggml.add_bos_token", add_bos_default)),
                   space_prefix=space_prefix)

    @classmethod
    def from_hf_dir(cls, path: str | Path) -> "Tokenizer":
        """From a Hugging Face model directory: `tokenizer.json`, with BOS/EOS and
        `add_bos_token` from `tokenizer_config.json` and extra EOS ids from
        `generation_config.json` where present."""
        path = Path(path)
        tj_path = path / "tokenizer.json"
        if not tj_path.is_file():
            raise ModelFormatError(f"{path}: no tokenizer.json")
        spec = _read_json(tj_path)
        config = _read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else {}
        gen = _read_json(path / "generation_config.json") if (path / "generation_config.json").is_file() else {}
        try:
            hf = HFTokenizer.from_str(json.dumps(spec))
        except Exception as e:  # the Rust side reports any schema problem as a plain Exception
            raise ModelFormatError(f"{tj_path}: not a tokenizer the tokenizers library reads: {e}") from None

        decoder = json.dumps(spec.get("decoder"))
        byte_level = '"ByteLevel"' in decoder
        if not byte_level and '"ByteFallback"' not in decoder and '"Metaspace"' not in decoder:
            raise UnsupportedModelError(f"{tj_path}: decoder is neither byte-level nor SentencePiece-style "
                                        f"(ByteLevel, ByteFallback or Metaspace): {decoder[:200]}")
        n = hf.get_vocab_size(with_added_tokens=True)
        vocab = hf.get_vocab(with_added_tokens=True)
        tokens = [""] * n
        for text, i in vocab.items():
            tokens[i] = text
        added = {t.content: t.special for t in hf.get_added_tokens_decoder().values()}
        types = [CONTROL if t in EOG_TEXTS or added.get(t) else USER_DEFINED if t in added else NORMAL
                 for t in tokens]
        if not byte_level:
            types = [BYTE if k == NORMAL and len(t) == 6 and t.startswith("<0x") and t.endswith(">") else k
                     for t, k in zip(tokens, types)]

        bos_id = _config_token_id(config, "bos_token", vocab)
        eos_id = _config_token_id(config, "eos_token", vocab)
        gen_eos = gen.get("eos_token_id")
        eos_ids = {i for i, t in enumerate(tokens) if t in EOG_TEXTS}
        eos_ids.update(i for i in ([gen_eos] if isinstance(gen_eos, int) else gen_eos or []) if 0 <= i < n)
        if eos_id is not None:
            eos_ids.add(eos_id)
        add_bos = config.get("add_bos_token")
        if add_bos is None:
            add_bos = bos_id is not None and _template_starts_with(spec.get("post_processor"), tokens[bos_id])
        space_prefix = not byte_level and '"Prepend"' in json.dumps(spec.get("normalizer"))
        return cls(hf, _token_bytes(tokens, types, byte_level), _hidden(types),
                   bos_id=bos_id, eos_id=eos_id, eos_ids=eos_ids, add_bos=bool(add_bos),
                   space_prefix=space_prefix)

    # --- use ----------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def encode(self, text: str, add_bos: bool | None = None, special: bool = True) -> list[int]:
        """Token ids of `text`. `add_bos`: put the BOS token first (None: as the model
        wants, see `add_bos`). `special`: read special-token text such as
        `<|im_start|>` as that one token, as llama.cpp does with parse_special."""
        if not isinstance(text, str):
            raise InvalidRequestError(f"text to tokenize must be a string, not {type(text).__name__}")
        if special:
            hf = self._hf
        else:
            if self._hf_plain is None:
                self._hf_plain = HFTokenizer.from_str(self._hf.to_str())
                self._hf_plain.encode_special_tokens = True
            hf = self._hf_plain
        try:
            ids = hf.encode(text, add_special_tokens=False).ids
        except TypeError:  # what tokenizers raises for a str that UTF-8 cannot encode
            raise InvalidRequestError("text to tokenize holds a lone surrogate, which is not valid Unicode") from None
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids.insert(0, self.bos_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """The text of `ids`. Invalid UTF-8 becomes U+FFFD. A SentencePiece
        vocabulary's prefix space is dropped from the first word, so that
        decode(encode(s)) == s."""
        stream = self.stream(skip_special=skip_special, at_start=True)
        return "".join([stream.feed(i) for i in ids]) + stream.flush()

    def stream(self, skip_special: bool = False, at_start: bool = False) -> "StreamDecoder":
        """A decoder fed one id at a time. `at_start`: the ids begin a text (rather
        than continue a prompt), so a SentencePiece prefix space is dropped as
        `decode` drops it."""
        return StreamDecoder(self, skip_special, at_start)

    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        """The bytes one token stands for; may be part of a UTF-8 character.
        Control tokens give b"" unless `special`."""
        self._check_id(token_id)
        return b"" if not special and token_id in self._hidden else self._pieces[token_id]

    def _check_id(self, token_id: int) -> None:
        if not 0 <= token_id < len(self._pieces):
            raise InvalidRequestError(f"token id {token_id} is outside the vocabulary [0, {len(self._pieces)})")


class StreamDecoder:
    """Text pieces from token ids fed one at a time. A UTF-8 character split
    across tokens is held until complete, and the pieces joined (with `flush()`)
    equal `Tokenizer.decode` of all the ids when the stream is `at_start`."""

    def __init__(self, tokenizer: Tokenizer, skip_special: bool = False, at_start: bool = False):
        self._tok = tokenizer
        self._skip_special = skip_special
        self._strip_space = at_start and tokenizer._space_prefix
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        data = self._tok.token_to_piece(token_id, special=not self._skip_special)
        if data and self._strip_space:
            self._strip_space = False
            if data[:1] == b" " and token_id not in self._tok._hidden:
                data = data[1:]
        return self._utf8.decode(data)

    def flush(self) -> str:
        """Whatever is held back (an incomplete character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)


# --- helpers -----------------------------------------------------------------
def _vocab(tokens: list[str]) -> dict[str, int]:
    # a text listed twice keeps its first id, as llama.cpp's text-to-token map does
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    return vocab


def _byte_level_bpe(tokens: list[str], merges: list[tuple[str, str]], pre: str) -> HFTokenizer:
    # llama.cpp looks a whole Llama 3 word up in the vocabulary before merging
    hf = HFTokenizer(BPE(vocab=_vocab(tokens), merges=merges, ignore_merges=pre == "llama3"))
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), "isolated") for r in _PRE_REGEXES[pre]]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return hf


def _sentencepiece_bpe(tokens: list[str], scores: list[float], types: list[int], unk_id: int | None,
                       space_prefix: bool) -> HFTokenizer:
    hf = HFTokenizer(BPE(vocab=_vocab(tokens), merges=_score_merges(tokens, scores, types),
                         unk_token=tokens[unk_id] if unk_id is not None else None,
                         fuse_unk=True, byte_fallback=True))
    # llama.cpp prefixes a space to every run of text, including runs after a
    # special token; a normalizer runs on each such run, as llama.cpp does
    steps = [normalizers.Prepend("\u2581")] if space_prefix else []
    hf.normalizer = normalizers.Sequence(steps + [normalizers.Replace(" ", "\u2581")])
    return hf


def _split_merges(merges: list[str], source: str) -> list[tuple[str, str]]:
    pairs = []
    for m in merges:
        left, sep, right = m.partition(" ")
        if not sep:
            raise ModelFormatError(f"{source}: tokenizer.ggml.merges entry {m!r} is not 'left right'")
        pairs.append((left, right))
    return pairs


def _token_bytes(tokens: list[str], types: list[int], byte_level: bool) -> list[bytes]:
    """What each token decodes to. Special and user-defined tokens are stored as
    their plain text in both families."""
    if byte_level:
        return [_byte_level_bytes(t) if k == NORMAL else t.encode() for t, k in zip(tokens, types)]
    return [_spm_bytes(t, k) for t, k in zip(tokens, types)]


def _hidden(types: list[int]) -> frozenset[int]:
    """Tokens whose text decode(skip_special=True) leaves out."""
    return frozenset(i for i, k in enumerate(types) if k in (UNKNOWN, CONTROL, UNUSED))


def _score_merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Every split of a normal piece into two normal pieces, best score of the
    whole first: what llama.cpp's SentencePiece merging picks from."""
    normal = {t: i for i, (t, k) in enumerate(zip(tokens, types)) if k == NORMAL}
    ranked = []
    for piece, i in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                ranked.append((-scores[i], i, normal[left], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def _add_special_tokens(hf: HFTokenizer, tokens: list[str], types: list[int]) -> None:
    """Make special-token text parse as one token. User-defined tokens are always
    parsed; control and unknown ones only when encode's `special` is on, as in llama.cpp."""
    hf.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, k in zip(tokens, types) if k in (UNKNOWN, CONTROL)])
    hf.add_tokens([AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == USER_DEFINED])


def _list_field(metadata: Mapping[str, Any], key: str, kind, source: str) -> list:
    value = metadata.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, kind) for v in value):
        raise ModelFormatError(f"{source}: {key} must be a non-empty array of "
                               f"{getattr(kind, '__name__', 'numbers')}, found {type(value).__name__}")
    return value


def _check_length(values: list, n: int, key: str, source: str) -> None:
    if len(values) != n:
        raise ModelFormatError(f"{source}: {key} has {len(values)} entries; tokenizer.ggml.tokens has {n}")


def _token_id(metadata: Mapping[str, Any], key: str, n: int, source: str) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or not 0 <= value < n:
        raise ModelFormatError(f"{source}: {key} is {value!r}; expected a token id in [0, {n})")
    return value


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{path}: not readable JSON: {e}") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object")
    return data


def _template_starts_with(processor: Any, token: str) -> bool:
    """Whether a post-processor template puts `token` first (Llama 3 asks for
    BOS that way rather than with add_bos_token)."""
    if not isinstance(processor, dict):
        return False
    if processor.get("type") == "Sequence":
        return any(_template_starts_with(p, token) for p in processor.get("processors", []))
    single = processor.get("single") if processor.get("type") == "TemplateProcessing" else None
    return bool(single) and single[0].get("SpecialToken", {}).get("id") == token


def _config_token_id(config: dict, key: str, vocab: dict[str, int]) -> int | None:
    """tokenizer_config.json names tokens by text, plain or as {"content": ...}."""
    value = config.get(key)
    if isinstance(value, dict):
        value = value.get("content")
    return vocab.get(value) if isinstance(value, str) else None
