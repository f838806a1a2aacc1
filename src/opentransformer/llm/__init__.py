"""Llama-family language models: config, graph, tokenizer, sampling, generation."""
