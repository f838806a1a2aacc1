"""Hugging Face checkpoints to GGUF: architecture adapters, tokenizer metadata, quantization."""
from .converter import OUTTYPES, convert_hf_to_gguf

__all__ = ["OUTTYPES", "convert_hf_to_gguf"]
