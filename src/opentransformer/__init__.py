"""OPENtransformer: transformer inference on the CPU from quantized model files.

Public API:
    load_llm(ref="default", threads=None, n_ctx=None) -> LLM
    load_classifier(ref, threads=None, weight_type="f32") -> ImageClassifier
"""
from __future__ import annotations

from pathlib import Path

from .errors import (ContextLengthError, InvalidRequestError, ModelFormatError, ModelNotFoundError,
                     OpenTransformerError, UnsupportedModelError)

__version__ = "0.1.0"
__all__ = ["load_llm", "load_classifier", "OpenTransformerError", "ModelNotFoundError", "ModelFormatError",
           "UnsupportedModelError", "ContextLengthError", "InvalidRequestError", "__version__"]


def load_llm(ref: str = "default", threads: int | None = None, n_ctx: int | None = None, arithmetic: str = "own"):
    """Load a Llama-family model: "default", a .gguf path, or a Hugging Face model directory.

    arithmetic="llama.cpp" runs the model with llama.cpp's float operations in its order, so its logits equal
    llama.cpp's CPU backend's bit for bit (slower; Q4_1, Q8_0 and F16 weights)."""
    from .hub.resolve import require_gguf, resolve_model
    from .kernels import ops
    from .llm.model import LLM

    from .settings import load_settings

    threads = threads if threads is not None else load_settings().threads
    if threads is not None:
        if threads < 1:
            raise InvalidRequestError("threads must be >= 1")
        ops.set_threads(threads)
    source = resolve_model(ref)
    if source.kind == "hf_dir":
        return _load_hf_dir(source.path, n_ctx, arithmetic)
    return LLM.from_gguf(require_gguf(source), n_ctx=n_ctx, arithmetic=arithmetic)


def _load_hf_dir(directory, n_ctx: int | None, arithmetic: str):
    """A Hugging Face directory: its weights converted once to an f32 GGUF (cached by content), its
    tokenizer, chat template and EOS ids read from its own files."""
    from .convert.cache import converted_gguf
    from .convert.tokenizer_metadata import read_chat_template
    from .llm.model import LLM
    from .llm.tokenizer import Tokenizer

    return LLM.from_gguf(converted_gguf(directory), n_ctx=n_ctx, tokenizer=Tokenizer.from_hf_dir(directory),
                         chat_template=read_chat_template(directory), arithmetic=arithmetic)


def load_classifier(ref: str, threads: int | None = None, weight_type: str = "f32"):
    """Load a ViT image classifier from a Hugging Face model directory (config.json,
    model.safetensors, preprocessor_config.json). weight_type "q8_0" quantizes the
    encoder's linear layers to 8 bits."""
    from .hub.resolve import resolve_model
    from .kernels import ops
    from .settings import load_settings
    from .vision.classifier import load_hf_classifier, require_hf_dir

    threads = threads if threads is not None else load_settings().threads
    if threads is not None:
        if threads < 1:
            raise InvalidRequestError("threads must be >= 1")
        ops.set_threads(threads)
    source = resolve_model(ref)
    # a downloaded model is named by its repository id, not by its snapshot directory
    name = str(ref) if source.path != Path(str(ref)).expanduser() else None
    return load_hf_classifier(require_hf_dir(source.kind, source.path), weight_type=weight_type, name=name)
