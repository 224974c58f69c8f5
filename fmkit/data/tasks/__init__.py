"""Per-task preprocessing: label maps, tokenization, batching."""
