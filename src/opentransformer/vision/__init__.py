"""Vision transformers: preprocessing, the ViT graph, and the image classifier built on them."""
