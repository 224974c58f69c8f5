"""Image classification batches: Pillow/NumPy transforms (augmented for training only) and loaders.

Augmentation draws from a generator seeded by (seed, epoch, example), so a run, and a resumed
run, sees exactly the same augmented images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

from fmkit.config.image_generation import AugmentConfig
from fmkit.data.images import load_rgb
from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches

# ImageNet statistics: what the EfficientNet-Lite0 weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BILINEAR = Image.Resampling.BILINEAR


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def resize_center(img: Image.Image, size: int) -> Image.Image:
    """Evaluation transform: shorter side to `size`, then the centre square."""
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), _BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def random_resized_crop(img: Image.Image, size: int, scale_min: float, ratio: tuple[float, float],
                        rng: np.random.Generator) -> Image.Image:
    """A random box covering [scale_min, 1] of the area with a random aspect ratio, resized to size x size."""
    w, h = img.size
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale_min, 1.0)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.resize((size, size), _BILINEAR, box=(left, top, left + cw, top + ch))
    return resize_center(img, size)  # no box fitted (extreme ratio): fall back to the centre


def zoom(img: Image.Image, factor: float) -> Image.Image:
    """Scale the content by `factor` about the centre, keeping the canvas size (>1 zooms in, <1 out)."""
    w, h = img.size
    if abs(factor - 1.0) < 1e-3:
        return img
    cw, ch = w / factor, h / factor
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    # Outside the image (zooming out) PIL's transform fills with black; mean-grey reads better.
    return img.transform((w, h), Image.Transform.EXTENT, box, _BILINEAR, fillcolor=(124, 116, 104))


def augment(img: Image.Image, size: int, cfg: AugmentConfig, rng: np.random.Generator) -> Image.Image:
    """Training transform: random resized crop, rotation, zoom, flip, colour jitter (each configurable)."""
    img = random_resized_crop(img, size, cfg.crop_scale_min, cfg.crop_ratio, rng)
    if cfg.rotation_degrees > 0:
        angle = float(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees))
        img = img.rotate(angle, resample=_BILINEAR, fillcolor=(124, 116, 104))
    if cfg.scale != (1.0, 1.0):
        img = zoom(img, float(rng.uniform(*cfg.scale)))
    if rng.random() < cfg.hflip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if cfg.color_jitter > 0:
        j = cfg.color_jitter
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(float(rng.uniform(1 - j, 1 + j)))
    return img


def to_array(img: Image.Image, norm: Normalization) -> np.ndarray:
    """HWC uint8 -> normalised CHW float32."""
    arr = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    scaled = (arr - np.asarray(norm.mean, dtype=np.float32)) / np.asarray(norm.std, dtype=np.float32)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def pixel_values(paths: Sequence[Path], size: int, norm: Normalization = Normalization()) -> torch.Tensor:
    """Evaluation tensors for a list of files (no augmentation)."""
    return torch.from_numpy(np.stack([to_array(resize_center(load_rgb(p), size), norm) for p in paths]))


class ImageCollator:
    """Indices -> {"pixel_values", "labels", "index"}; augments only when built with an AugmentConfig."""

    def __init__(self, paths: Sequence[Path], labels: np.ndarray | None, size: int, norm: Normalization,
                 augment_cfg: AugmentConfig | None, sampler: LengthGroupedBatches, seed: int) -> None:
        self.paths = list(paths)
        self.labels = labels
        self.size = size
        self.norm = norm
        self.augment_cfg = augment_cfg if augment_cfg is not None and augment_cfg.enabled else None
        self.sampler = sampler  # its epoch seeds the augmentation
        self.seed = seed

    def image(self, i: int) -> np.ndarray:
        img = load_rgb(self.paths[i])
        if self.augment_cfg is None:
            return to_array(resize_center(img, self.size), self.norm)
        rng = np.random.default_rng([self.seed, self.sampler.epoch, i])
        return to_array(augment(img, self.size, self.augment_cfg, rng), self.norm)

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = {"pixel_values": torch.from_numpy(np.stack([self.image(i) for i in indices])),
                 "index": torch.as_tensor(indices, dtype=torch.long)}
        if self.labels is not None:
            batch["labels"] = torch.from_numpy(self.labels[indices])
        return batch


def make_image_loader(paths: Sequence[Path], labels: np.ndarray | None, size: int, batch_size: int, seed: int, *,
                      shuffle: bool, augment_cfg: AugmentConfig | None = None, norm: Normalization = Normalization(),
                      workers: int = 0) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(np.ones(len(paths), dtype=np.int64), batch_size, seed, shuffle=shuffle,
                                   group_by_length=False)
    collator = ImageCollator(paths, labels, size, norm, augment_cfg if shuffle else None, sampler, seed)
    return torch.utils.data.DataLoader(IndexDataset(len(paths)), batch_sampler=sampler, collate_fn=collator,
                                       num_workers=workers, persistent_workers=workers > 0)


class FeatureCollator:
    """Indices -> {"features", "labels", "index"} from a precomputed feature matrix (linear probe)."""

    def __init__(self, features: torch.Tensor, labels: np.ndarray) -> None:
        self.features = features
        self.labels = torch.from_numpy(labels)

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"features": self.features[idx], "labels": self.labels[idx], "index": idx}


def make_feature_loader(features: torch.Tensor, labels: np.ndarray, batch_size: int, seed: int,
                        shuffle: bool) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(np.ones(len(labels), dtype=np.int64), batch_size, seed, shuffle=shuffle,
                                   group_by_length=False)
    return torch.utils.data.DataLoader(IndexDataset(len(labels)), batch_sampler=sampler,
                                       collate_fn=FeatureCollator(features, labels))
