"""OPENtransformer: transformer inference on the CPU from quantized model files.

Public API:
    load_llm(ref="default", threads=None, n_ctx=None) -> LLM
"""
from __future__ import annotations

from .errors import (ContextLengthError, InvalidRequestError, ModelFormatError, ModelNotFoundError,
                     OpenTransformerError, UnsupportedModelError)

__version__ = "0.1.0"
__all__ = ["load_llm", "OpenTransformerError", "ModelNotFoundError", "ModelFormatError",
           "UnsupportedModelError", "ContextLengthError", "InvalidRequestError", "__version__"]


def load_llm(ref: str = "default", threads: int | None = None, n_ctx: int | None = None):
    """Load a Llama-family model: "default", a .gguf path, or a Hugging Face model directory."""
    from .hub.resolve import require_gguf, resolve_model
    from .kernels import ops
    from .llm.model import LLM

    from .settings import load_settings

    threads = threads if threads is not None else load_settings().threads
    if threads is not None:
        if threads < 1:
            raise InvalidRequestError("threads must be >= 1")
        ops.set_threads(threads)
    return LLM.from_gguf(require_gguf(resolve_model(ref)), n_ctx=n_ctx)
