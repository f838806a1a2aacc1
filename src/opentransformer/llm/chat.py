"""Chat templates: a conversation of {"role", "content"} messages to prompt text.

Templates are the Jinja2 text a model ships (GGUF `tokenizer.chat_template`,
`tokenizer_config.json` "chat_template"), rendered the way Hugging Face's
`apply_chat_template` renders them: a sandboxed, immutable environment with
trim_blocks and lstrip_blocks, the `raise_exception` and `strftime_now`
globals, a `tojson` filter that keeps non-ASCII text, and the BOS/EOS token
texts as `bos_token` / `eos_token`.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InvalidRequestError, ModelFormatError

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

# Used when a model ships no template: ChatML, the format of SmolLM2, Qwen2 and
# many fine-tunes. A model trained on another format will still answer, but
# less well than with its own template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class _TemplateRaised(Exception):
    """What the template's own raise_exception() raises: a message about the conversation."""


def _raise_exception(message: str):
    raise _TemplateRaised(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class ChatTemplate:
    """A compiled chat template. `source` names where the template came from in errors."""

    def __init__(self, template: str, bos_token: str = "", eos_token: str = "", source: str = "chat template"):
        if not isinstance(template, str) or not template.strip():
            raise ModelFormatError(f"{source}: the chat template must be non-empty text")
        try:
            self._template = _environment().from_string(template)
        except jinja2.TemplateSyntaxError as e:
            raise ModelFormatError(f"{source}: the chat template is not valid Jinja2 "
                                   f"(line {e.lineno}: {e.message})") from None
        self.text = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.source = source

    @classmethod
    def for_model(cls, template: str | None, tokenizer: "Tokenizer", source: str = "chat template") -> "ChatTemplate":
        """The model's own template, or ChatML when it has none; BOS/EOS texts from its tokenizer."""
        def text(token_id: int | None) -> str:
            return "" if token_id is None else tokenizer.token_to_piece(token_id).decode("utf-8", "replace")
        return cls(template or CHATML_TEMPLATE, text(tokenizer.bos_id), text(tokenizer.eos_id), source)

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The prompt for `messages`; with add_generation_prompt, ending in the
        header of the assistant's turn so that the model writes the reply."""
        _check_messages(messages)
        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         bos_token=self.bos_token, eos_token=self.eos_token)
        except _TemplateRaised as e:
            raise InvalidRequestError(f"{self.source} refused the conversation: {e}") from None
        except jinja2.TemplateError as e:
            raise InvalidRequestError(f"{self.source} failed to render these messages: {e}") from None


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidRequestError("messages must be a non-empty list of {\"role\": ..., \"content\": ...} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidRequestError(f"messages[{i}] must be an object with \"role\" and \"content\", "
                                      f"not {type(m).__name__}")
        for key in ("role", "content"):
            if not isinstance(m.get(key), str):
                found = "missing" if key not in m else type(m[key]).__name__
                raise InvalidRequestError(f"messages[{i}].{key} must be a string ({found})")
        if not m["role"]:
            raise InvalidRequestError(f"messages[{i}].role must not be empty")
