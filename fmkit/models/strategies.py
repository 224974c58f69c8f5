"""Learning strategies as small objects that prepare a TextClassifier and say how to export it.

They never train: the one loop (fmkit.training.loop) does, whatever the strategy. Every
strategy ends in the same saved layout (encoder + head + fmkit.json), so eval, predict and
serve do not know which one produced a model.

  full          every weight trains
  linear-probe  the encoder is frozen; only the head trains (on cached vectors)
  lora          low-rank adapters (peft) on the encoder; saved on their own, merged on export
  fewshot       SetFit: the body is tuned on contrastive pairs (PairEncoder), then a head on its vectors
  zeroshot      no training: head rows are label-name (or description) vectors times a temperature
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from fmkit.config.schema import FewshotSection, LoraSection, StrategyConfig, TrainConfig
from fmkit.errors import ConfigError
from fmkit.models.classifier import TextClassifier
from fmkit.models.heads import ClassificationHead, pool
from fmkit.models.lora import ADAPTERS_DIR, add_lora, merge_lora


class Strategy(Protocol):
    name: str

    def prepare(self, model: TextClassifier) -> None:
        """Make `model` ready for the loop: freeze, add adapters, change pooling."""

    def train_config(self, train: TrainConfig) -> TrainConfig:
        """The loop settings this strategy trains with: the one place a strategy changes them."""

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        """The model to save as RUN_DIR/model (and any extra files the strategy keeps)."""


class Unchanged:
    """What most strategies do to the loop settings and the saved model: nothing (one level, no hierarchy)."""

    def train_config(self, train: TrainConfig) -> TrainConfig:
        return train

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        return model


class FullStrategy(Unchanged):
    name = "full"

    def prepare(self, model: TextClassifier) -> None:
        model.encoder.requires_grad_(True)


class LinearProbeStrategy(Unchanged):
    """Unit-length mean vectors: what sentence encoders are trained to compare, and a scale the
    regularised logistic regression treats the same for every backbone (AG News: 87.9% vs 87.2% raw)."""

    name = "linear-probe"

    def prepare(self, model: TextClassifier) -> None:
        if model.pooling == "mean":
            model.pooling = "mean_norm"
        model.encoder.requires_grad_(False)


class FewshotStrategy(Unchanged):
    """Cosine similarity on unit vectors is what the pair phase trains, so the head reads unit vectors too."""

    name = "fewshot"

    def __init__(self, settings: FewshotSection | None = None) -> None:
        self.settings = settings or FewshotSection()

    def prepare(self, model: TextClassifier) -> None:
        model.pooling = "mean_norm"
        model.encoder.requires_grad_(True)

    def train_config(self, train: TrainConfig) -> TrainConfig:
        """The pair phase: short (tens of steps), so no evaluations or checkpoints inside it."""
        f = self.settings
        return train.model_copy(update={
            "epochs": f.epochs, "batch_size": f.batch_size, "learning_rate": f.learning_rate, "grad_accum_steps": 1,
            "eval_every_steps": 0, "early_stopping_patience": 0, "checkpoint_every_steps": 0, "warmup_ratio": 0.1,
        })


class ZeroshotStrategy(Unchanged):
    name = "zeroshot"

    def prepare(self, model: TextClassifier) -> None:
        model.pooling = "mean_norm"
        model.encoder.requires_grad_(False)


class LoraStrategy:
    """peft LoRA on the encoder (fmkit.models.lora); the head stays a normal trainable module."""

    name = "lora"

    def __init__(self, settings: LoraSection | None = None) -> None:
        self.settings = settings or LoraSection()

    def prepare(self, model: TextClassifier) -> None:
        model.encoder = add_lora(model.encoder, self.settings)

    def train_config(self, train: TrainConfig) -> TrainConfig:
        """Adapters learn at strategy.lora.learning_rate; a new head at train.head_learning_rate, else 10x
        train.learning_rate, as with `full`."""
        return train.model_copy(update={"learning_rate": self.settings.learning_rate,
                                        "head_learning_rate": train.head_learning_rate or train.learning_rate * 10})

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        """Adapters alone go to RUN_DIR/adapters; model/ gets the merged encoder, so predict needs no peft."""
        model.encoder = merge_lora(model.encoder, Path(run_dir) / ADAPTERS_DIR)
        return model


def build_strategy(name: str, cfg: StrategyConfig) -> Strategy:
    if name == "full":
        return FullStrategy()
    if name == "linear-probe":
        return LinearProbeStrategy()
    if name == "lora":
        return LoraStrategy(cfg.lora)
    if name == "fewshot":
        return FewshotStrategy(cfg.fewshot)
    if name == "zeroshot":
        return ZeroshotStrategy()
    raise ConfigError(f"strategy '{name}' is not one of full, linear-probe, lora, fewshot, zeroshot.")


# --- modules the loop trains for strategies that are not a plain TextClassifier --------------------

class EmbeddingHead(nn.Module):
    """The head alone, fed cached vectors: the loop calls model(embeddings=...)."""

    def __init__(self, head: ClassificationHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, embeddings: torch.Tensor, **_: Any) -> torch.Tensor:
        return self.head(embeddings)


class PairEncoder(nn.Module):
    """SetFit's body phase: a batch holds 2B texts (A's then B's); the output is cos(A_i, B_i)."""

    encoder: Any

    def __init__(self, encoder: Any, pooling: str = "mean") -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vectors = pool(hidden, attention_mask, self.pooling)
        half = vectors.shape[0] // 2
        return F.cosine_similarity(vectors[:half], vectors[half:], dim=-1)


def zeroshot_head_(head: ClassificationHead, label_vectors: torch.Tensor, temperature: float) -> None:
    """Set the head so logits = temperature * cos(text, label): rows are unit label vectors."""
    with torch.no_grad():
        head.linear.weight.copy_(F.normalize(label_vectors.float(), p=2, dim=-1) * temperature)
        head.linear.bias.zero_()


__all__ = [
    "ADAPTERS_DIR", "EmbeddingHead", "FewshotStrategy", "FullStrategy", "LinearProbeStrategy", "LoraStrategy",
    "PairEncoder", "Strategy", "ZeroshotStrategy", "build_strategy", "zeroshot_head_",
]
