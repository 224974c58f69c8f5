"""Shared fixtures: a tiny random BERT built in the test (no network), small data files, CLI runner."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_CSV = REPO / "fmkit" / "resources" / "demo" / "financial_headlines.csv"

WORDS = ["good", "great", "excellent", "love", "wonderful", "best", "happy", "fine", "superb", "bad", "awful", "terrible", "hate", "worst", "poor", "sad", "boring", "movie", "film", "plot", "actor", "story", "the", "a", "an", "is", "was", "it", "this", "that", "and", "but", "not", "very", "really", "so", "too", "quite", "shares", "jump", "fall", "profit", "loss", "company", "market", "stock", "rise", "drop", "bank", "news", "report"]


def build_tiny_bert(directory: Path, hidden: int = 32, layers: int = 2, heads: int = 2) -> Path:
    """A randomly initialised BERT with a word-level vocab, saved like a Hugging Face folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
             *list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-$%")]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=hidden * 2, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(directory), safe_serialization=True)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def write_sentiment_csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    """A learnable two-class toy set: positive words vs negative words."""
    rng = random.Random(seed)
    pos = ["good", "great", "excellent", "love", "wonderful", "best", "happy", "superb"]
    neg = ["bad", "awful", "terrible", "hate", "worst", "poor", "sad", "boring"]
    filler = ["the", "movie", "film", "plot", "was", "is", "really", "very", "story", "it"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(n):
            label = "pos" if i % 2 == 0 else "neg"
            words = rng.sample(filler, 4) + rng.sample(pos if label == "pos" else neg, 2)
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])
    return path


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    return write_sentiment_csv(tmp_path / "train.csv")


@pytest.fixture
def sentiment_eval_csv(tmp_path: Path) -> Path:
    return write_sentiment_csv(tmp_path / "eval.csv", n=40, seed=1)


def run_cli(*args: str, input_text: str | None = None, timeout: float = 600, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run `python -m fmkit ...` in a subprocess, as a user would."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fmkit", *args], capture_output=True, text=True, input=input_text,
                          timeout=timeout, env=full_env, cwd=REPO)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset missing: {path}")
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL server on a free localhost port (tests/pg_helpers.py); skips when not installed."""
    from tests.pg_helpers import ThrowawayPostgres, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = ThrowawayPostgres()
    try:
        yield server
    finally:
        server.close()
