"""`ImagePredictor`: a saved image classifier; image paths (a file or a folder) in, label records out."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fmkit.data.images import list_images
from fmkit.data.tasks.image import make_image_loader, resize_center, to_array
from fmkit.models.image_classifier import ImageClassifier, image_logits
from fmkit.models.meta import saved_model_dir

Record = dict[str, Any]


class ImagePredictor:
    task = "image"

    def __init__(self, model: ImageClassifier, batch_size: int = 64, path: Path | None = None) -> None:
        self.model = model.eval()
        self.batch_size = batch_size
        self.path = path
        self.labels: list[str] = list(model.labels)

    @classmethod
    def load(cls, path: Path | str, batch_size: int = 64) -> ImagePredictor:
        path = saved_model_dir(path)
        return cls(ImageClassifier.from_pretrained(path), batch_size=batch_size, path=path)

    def predict_proba(self, paths: Sequence[Path | str]) -> np.ndarray:
        if len(paths) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        files = [Path(p) for p in paths]
        loader = make_image_loader(files, None, self.model.image_size, self.batch_size, 0, shuffle=False,
                                   norm=self.model.norm)
        return torch.softmax(image_logits(self.model, loader, len(files)), dim=-1).numpy()

    def predict(self, paths: Sequence[Path | str]) -> list[Record]:
        probs = self.predict_proba(paths)
        return [self._record(str(p), row) for p, row in zip(paths, probs, strict=True)]

    @torch.inference_mode()
    def predict_images(self, images: Sequence[Image.Image]) -> list[Record]:
        """Decoded RGB images (the server's input) -> the same records as `predict`, without a path. Resized and
        normalised as evaluation does, so a served image scores as the same file does in `fmkit predict`."""
        records: list[Record] = []
        self.model.eval()
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            pixels = np.stack([to_array(resize_center(img, self.model.image_size), self.model.norm) for img in chunk])
            logits = self.model(pixel_values=torch.from_numpy(pixels)).float()
            records.extend(self._record(None, row) for row in torch.softmax(logits, dim=-1).numpy())
        return records

    def predict_stream(self, paths: Iterable[Path | str], chunk_size: int = 512) -> Iterator[Record]:
        iterator = iter(paths)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict(chunk)

    def predict_source(self, source: Path) -> Iterator[Record]:
        """`fmkit predict MODEL PATH`: one image, or every image under a folder."""
        return self.predict_stream(list_images(source))

    def _record(self, path: str | None, row: np.ndarray) -> Record:
        best = int(row.argmax())
        record: Record = {"path": path} if path is not None else {}
        return {**record, "label": self.labels[best],
                "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}}
