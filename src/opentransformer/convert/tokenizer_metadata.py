"""Tokenizer metadata for GGUF from a Hugging Face directory's tokenizer.json,
tokenizer_config.json and chat_template.jinja, in the form llama.cpp writes:
byte-level BPE vocabularies as `tokenizer.ggml.model = gpt2` (with merges and
the pre-tokenizer's name), SentencePiece-style BPE with byte fallback
(Llama 2, TinyLlama) as `llama` (with scores)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from gguf import GGUFWriter, TokenType

from ..errors import ModelFormatError, ModelNotFoundError, UnsupportedModelError

# Pre-tokenizer split patterns, by the name llama.cpp gives the pre-tokenizer that implements them.
_SPLIT_PATTERNS = {
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+",
}
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


@dataclass(frozen=True)
class TokenizerMetadata:
    model: str  # "gpt2" (byte-level BPE) | "llama" (SentencePiece-style BPE)
    tokens: list[str]
    token_types: list[int]
    merges: list[str]  # gpt2 only
    scores: list[float] | None  # llama only: merge priority, higher first
    pre: str
    special_ids: dict[str, int]  # "bos" | "eos" | "unk" | "pad" -> id
    add_bos: bool | None
    add_eos: bool | None
    add_space_prefix: bool | None  # llama only
    chat_template: str | None

    def write(self, w: GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.token_types)
        if self.merges:
            w.add_token_merges(self.merges)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        for kind, token_id in self.special_ids.items():
            getattr(w, f"add_{kind}_token_id")(token_id)
        for key, flag in (("add_bos_token", self.add_bos), ("add_eos_token", self.add_eos),
                          ("add_space_prefix", self.add_space_prefix)):
            if flag is not None:
                w.add_bool(f"tokenizer.ggml.{key}", flag)
        if self.chat_template:
            w.add_chat_template(self.chat_template)


def read_tokenizer_metadata(directory: Path, vocab_size: int, config: dict) -> TokenizerMetadata:
    """`vocab_size` is the model's: ids the tokenizer leaves unused become [PADn] placeholders."""
    tok_path = directory / "tokenizer.json"
    if not tok_path.is_file():
        raise ModelNotFoundError(f"{directory}: tokenizer.json is missing (the converter reads the vocabulary "
                                 "from it)")
    tok = _read_json(tok_path)
    tok_config = _read_json(directory / "tokenizer_config.json") if (directory / "tokenizer_config.json").is_file() \
        else {}
    model = tok.get("model") or {}
    if model.get("type") == "BPE" and _is_byte_level(tok):
        kind = "gpt2"
    elif model.get("type") == "BPE" and model.get("byte_fallback"):
        kind = "llama"
    else:
        raise UnsupportedModelError(f"{tok_path}: only BPE tokenizers, byte-level or with byte fallback, are "
                                    f"supported (this one is {model.get('type')}, pre-tokenizer "
                                    f"{(tok.get('pre_tokenizer') or {}).get('type')})")
    by_id = {i: t for t, i in model["vocab"].items()}
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    by_id.update({i: a["content"] for i, a in added.items()})
    if max(by_id) >= vocab_size:
        raise ModelFormatError(f"{tok_path}: token id {max(by_id)} is outside the model's vocab_size {vocab_size}")
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif i in added and (added[i].get("special") or _looks_special(token)):
            tokens.append(token)
            unknown = kind == "llama" and token == model.get("unk_token")
            types.append(TokenType.UNKNOWN if unknown else TokenType.CONTROL)
        elif i in added:
            tokens.append(token.replace("\u2581", " "))
            types.append(TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(TokenType.BYTE if kind == "llama" and _BYTE_TOKEN.fullmatch(token) else TokenType.NORMAL)
    ids = {t: i for i, t in by_id.items()}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return TokenizerMetadata(
        model=kind, tokens=tokens, token_types=[int(t) for t in types],
        merges=merges if kind == "gpt2" else [],
        scores=_merge_scores(tokens, merges) if kind == "llama" else None,
        pre=_pre_tokenizer_name(tok.get("pre_tokenizer")) if kind == "gpt2" else "default",
        special_ids=_special_ids(tok_config, config, ids),
        add_bos=_flag(tok_config, tok, "add_bos_token", _token_content(tok_config, "bos_token")),
        add_eos=_flag(tok_config, tok, "add_eos_token", _token_content(tok_config, "eos_token"), last=True),
        add_space_prefix=_adds_space_prefix(tok) if kind == "llama" else None,
        chat_template=read_chat_template(directory),
    )


def _merge_scores(tokens: list[str], merges: list[str]) -> list[float]:
    """SentencePiece merges the adjacent pair whose result scores highest. tokenizer.json
    keeps that order as its merge list, so a piece scores minus the rank of its first
    merge; pieces no merge makes (characters, bytes, specials) are never merge results."""
    rank: dict[str, int] = {}
    for r, m in enumerate(merges):
        rank.setdefault(m.replace(" ", "", 1), r)
    return [-float(rank[t]) if t in rank else 0.0 for t in tokens]


def _adds_space_prefix(tok: dict) -> bool:
    """Whether text gets a leading "▁": older files say it in the normalizer, newer in a Metaspace pre-tokenizer."""
    steps = _components(tok.get("normalizer")) + _components(tok.get("pre_tokenizer"))
    return any((s.get("type") == "Prepend" and s.get("prepend") == "\u2581") or
               (s.get("type") == "Metaspace" and s.get("prepend_scheme", "always") != "never") for s in steps)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{path}: not valid JSON ({e})") from None


def _components(node: dict | None) -> list[dict]:
    if not node:
        return []
    if node.get("type") == "Sequence":
        subs = node.get("pretokenizers") or node.get("decoders") or node.get("normalizers") or []
        return [c for sub in subs for c in _components(sub)]
    return [node]


def _is_byte_level(tok: dict) -> bool:
    return any(c.get("type") == "ByteLevel" for c in _components(tok.get("pre_tokenizer")) +
               _components(tok.get("decoder")))


def _pre_tokenizer_name(pre: dict | None) -> str:
    """The llama.cpp pre-tokenizer whose splitting matches this one."""
    parts = _components(pre)
    kinds = [p.get("type") for p in parts]
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds and kinds[0] == "Split":
        pattern = (parts[0].get("pattern") or {}).get("Regex")
        return next((name for name, p in _SPLIT_PATTERNS.items() if p == pattern), "default")
    return "default"


def _looks_special(token: str) -> bool:
    # Some models leave control tokens unmarked; llama.cpp treats <|...|> as control too.
    return token.startswith("<|") and token.endswith("|>")


def _token_content(tok_config: dict, key: str) -> str | None:
    value = tok_config.get(key)
    return value.get("content") if isinstance(value, dict) else value


def _special_ids(tok_config: dict, config: dict, ids: dict[str, int]) -> dict[str, int]:
    out = {}
    for kind in ("bos", "eos", "unk", "pad"):
        token = _token_content(tok_config, f"{kind}_token")
        if token in ids:
            out[kind] = ids[token]
        elif isinstance(config.get(f"{kind}_token_id"), int):
            out[kind] = config[f"{kind}_token_id"]
    return out


def _flag(tok_config: dict, tok: dict, key: str, token: str | None, last: bool = False) -> bool | None:
    """add_bos/add_eos: tokenizer_config.json says it, else tokenizer.json's post-processor template shows it."""
    if isinstance(tok_config.get(key), bool):
        return tok_config[key]
    post = tok.get("post_processor") or {}
    processors = (post.get("processors") or []) if post.get("type") == "Sequence" else [post]
    template = next((p.get("single") for p in processors if p.get("type") == "TemplateProcessing"), None)
    if not template or token is None:
        return None
    edge = template[-1] if last else template[0]
    return (edge.get("SpecialToken") or {}).get("id") == token


def read_chat_template(directory: Path) -> str | None:
    """The chat template: chat_template.jinja (where newer transformers writes it), else tokenizer_config.json's."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config_path = directory / "tokenizer_config.json"
    template = _read_json(config_path).get("chat_template") if config_path.is_file() else None
    if isinstance(template, list):  # named templates: the default one is the chat template
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template
