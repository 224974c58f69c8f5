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

from fmkit.config.schema import ENCODER_LORA_TARGETS
from fmkit.errors import ConfigError
from fmkit.models.classifier import TextClassifier
from fmkit.models.heads import ClassificationHead, pool

ADAPTERS_DIR = "adapters"


class Strategy(Protocol):
    name: str

    def prepare(self, model: TextClassifier) -> None:
        """Make `model` ready for the loop: freeze, add adapters, change pooling."""

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        """The model to save as RUN_DIR/model (and any extra files the strategy keeps)."""


class FullStrategy:
    name = "full"

    def prepare(self, model: TextClassifier) -> None:
        model.encoder.requires_grad_(True)

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        return model


class LinearProbeStrategy:
    """Unit-length mean vectors: what sentence encoders are trained to compare, and a scale the
    regularised logistic regression treats the same for every backbone (AG News: 87.9% vs 87.2% raw)."""

    name = "linear-probe"

    def prepare(self, model: TextClassifier) -> None:
        if model.pooling == "mean":
            model.pooling = "mean_norm"
        model.encoder.requires_grad_(False)

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        return model


class FewshotStrategy:
    """Cosine similarity on unit vectors is what the pair phase trains, so the head reads unit vectors too."""

    name = "fewshot"

    def prepare(self, model: TextClassifier) -> None:
        model.pooling = "mean_norm"
        model.encoder.requires_grad_(True)

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        return model


class ZeroshotStrategy:
    name = "zeroshot"

    def prepare(self, model: TextClassifier) -> None:
        model.pooling = "mean_norm"
        model.encoder.requires_grad_(False)

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        return model


class LoraStrategy:
    """peft LoRA on the encoder; the head stays a normal trainable module."""

    name = "lora"

    def __init__(self, r: int = 8, alpha: int = 16, dropout: float = 0.0,
                 target_modules: list[str] | None = None, top_layers: int | None = None) -> None:
        self.r, self.alpha, self.dropout, self.top_layers = r, alpha, dropout, top_layers
        self.target_modules = list(target_modules or ENCODER_LORA_TARGETS)

    def prepare(self, model: TextClassifier) -> None:
        from peft import LoraConfig, get_peft_model

        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.encoder.named_modules() if isinstance(m, nn.Linear)})
        layers = adapted_layers(model.encoder, self.top_layers)
        targets: list[str] | str = self.target_modules
        if targets == ["all-linear"]:
            # peft takes a layer subset only with module names: every Linear inside the chosen layers.
            targets = names if layers is not None else "all-linear"
        try:
            config = LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets,
                                bias="none", layers_to_transform=layers)
            model.encoder = get_peft_model(model.encoder, config)
        except ValueError as exc:
            raise ConfigError(
                f"strategy.lora_target_modules={self.target_modules}: {exc}. Linear layers of this model: "
                f"{', '.join(names)} (or ['all-linear'])."
            ) from None
        for module in model.encoder.modules():
            # peft casts a bf16 input up to the adapter's fp32 before autocast casts it back down: two copies of
            # every adapted activation for the same values. The encoder's own weights are fp32, so outside
            # autocast inputs already match and there is nothing to cast.
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = False

    def export(self, model: TextClassifier, run_dir: Path) -> TextClassifier:
        """Adapters alone go to RUN_DIR/adapters; model/ gets the merged encoder, so predict needs no peft."""
        encoder = model.encoder
        if hasattr(encoder, "merge_and_unload"):
            encoder.save_pretrained(str(Path(run_dir) / ADAPTERS_DIR))
            model.encoder = encoder.merge_and_unload()
        return model


def adapted_layers(encoder: nn.Module, top_layers: int | None) -> list[int] | None:
    """Indices of the top `top_layers` transformer layers (None: all of them, peft's default)."""
    if top_layers is None:
        return None
    total = getattr(getattr(encoder, "config", None), "num_hidden_layers", None)
    if not isinstance(total, int):
        raise ConfigError("strategy.lora_layers: this model's config has no num_hidden_layers; leave lora_layers unset.")
    if top_layers >= total:
        return None
    return list(range(total - top_layers, total))


def build_strategy(name: str, cfg: Any) -> Strategy:
    """`cfg` is the StrategyConfig section."""
    if name == "full":
        return FullStrategy()
    if name == "linear-probe":
        return LinearProbeStrategy()
    if name == "lora":
        return LoraStrategy(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules, cfg.lora_layers)
    if name == "fewshot":
        return FewshotStrategy()
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
    "PairEncoder", "Strategy", "ZeroshotStrategy", "adapted_layers", "build_strategy", "zeroshot_head_",
]
