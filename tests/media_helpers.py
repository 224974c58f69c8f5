"""Builders for the generation / image / speech tests: tiny random models and data written in the test."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }} {{ message['content'] }}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)
LM_WORDS = ["user", "assistant", "system", "what", "colour", "is", "the", "sky", "grass", "snow", "blue", "green", "white",
            "it", "a", "question", "answer", "hello", "?", "."]


def build_tiny_llama(directory: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised Llama causal LM with a word-level tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<|im_start|>", "<|im_end|>"]
    vocab = {token: i for i, token in enumerate([*specials, *LM_WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", pad_token="<|im_end|>")
    fast.add_special_tokens({"additional_special_tokens": specials[1:]})
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(directory))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128, bos_token_id=1,
                         eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(str(directory), safe_serialization=True)
    return directory


def write_colour_jsonl(path: Path, n: int = 24) -> Path:
    """A learnable instruction set: three questions, three fixed answers, two formats mixed."""
    facts = [("what colour is the sky ?", "blue ."), ("what colour is the grass ?", "green ."),
             ("what colour is the snow ?", "white .")]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            question, answer = facts[i % 3]
            if i % 2:
                record = {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
            else:
                record = {"prompt": question, "completion": answer}
            fh.write(json.dumps(record) + "\n")
    return path


def write_colour_images(root: Path, per_class: int = 8, size: int = 32, seed: int = 0) -> Path:
    """Folder per class: reddish vs bluish noisy squares (PNG), easy to separate."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, channel in (("red", 0), ("blue", 2)):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
            arr[..., channel] = rng.integers(170, 256, size=(size, size), dtype=np.uint8)
            Image.fromarray(arr).save(folder / f"{i:03d}.png")
    return root


def espeak(text: str, out: Path) -> Path | None:
    """Speak `text` into a WAV with espeak-ng; None when espeak-ng is not installed."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    subprocess.run([binary, "-w", str(out), text], check=True, capture_output=True)
    return out
