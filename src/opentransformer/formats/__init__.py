"""Model file formats: GGUF and safetensors readers. They know files, not models."""
