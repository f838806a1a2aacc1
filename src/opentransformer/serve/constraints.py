"""Structured output: token masks from llguidance, which compiles a JSON
schema (or plain JSON) into a token-level parser over our vocabulary."""
from __future__ import annotations

import threading
from typing import Any

import llguidance
import numpy as np

from ..llm.tokenizer import Tokenizer
from .errors import APIError


class _VocabularyView:
    """Our tokenizer in the shape llguidance.TokenizerWrapper reads: every token's
    bytes (control tokens marked with a 0xFF prefix, as llguidance expects) and
    an encode function over UTF-8 bytes."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer
        self.eos_token_id = tokenizer.eos_id if tokenizer.eos_id is not None else min(tokenizer.eos_ids)
        self.bos_token_id = tokenizer.bos_id
        self.tokens = []
        self.special_token_ids = []
        for i in range(tokenizer.vocab_size):
            piece = tokenizer.token_to_piece(i)
            if piece and not tokenizer.token_to_piece(i, special=False):
                self.tokens.append(b"\xff" + piece)
                self.special_token_ids.append(i)
            else:
                self.tokens.append(piece)

    def __call__(self, data: bytes) -> list[int]:
        return self._tok.encode(data.decode("utf-8", errors="replace"), add_bos=False, special=False)


class GrammarFactory:
    """Builds matchers for one tokenizer. The llguidance tokenizer takes about a
    second to build, so it is built on first use and kept."""

    def __init__(self, tokenizer: Tokenizer, vocab_size: int):
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._ll: llguidance.LLTokenizer | None = None
        self._lock = threading.Lock()

    def _ll_tokenizer(self) -> llguidance.LLTokenizer:
        with self._lock:
            if self._ll is None:
                wrapper = llguidance.TokenizerWrapper(_VocabularyView(self._tokenizer))
                self._ll = llguidance.LLTokenizer(wrapper, n_vocab=self._vocab_size,
                                                  eos_token=sorted(self._tokenizer.eos_ids))
            return self._ll

    def json(self, schema: dict[str, Any] | None) -> "Constraint":
        """A JSON value matching `schema`; None: any JSON object."""
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            schema if schema is not None else {"type": "object"},
            defaults={"whitespace_flexible": False})
        ll = self._ll_tokenizer()
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, ll)
        if is_error:
            raise APIError(400, f"response_format: the JSON schema cannot be enforced: {messages[0]}",
                           param="response_format")
        return Constraint(llguidance.LLMatcher(ll, grammar, log_level=0), self._vocab_size)


class Constraint:
    """One sequence's grammar state: which tokens may come next, and what came."""

    def __init__(self, matcher: llguidance.LLMatcher, vocab_size: int):
        self._m = matcher
        self._vocab_size = vocab_size

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary."""
        bits = np.frombuffer(self._m.compute_bitmask(), dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little")[:self._vocab_size].astype(bool)

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return np.where(self.allowed(), logits, -np.inf).astype(np.float32)

    def accept(self, token: int) -> None:
        self._m.consume_token(token)

    @property
    def finished(self) -> bool:
        """The grammar is complete and admits nothing more but the end."""
        return self._m.is_stopped()

    @property
    def failed(self) -> str | None:
        return self._m.get_error() if self._m.is_error() else None


def schema_of(response_format) -> tuple[bool, dict[str, Any] | None]:
    """(constrained, schema) from a request's response_format."""
    if response_format is None or response_format.type == "text":
        return False, None
    if response_format.type == "json_object":
        return True, None
    # a json_schema format without a schema asks for any JSON value
    return True, response_format.json_schema.schema_ or {}
