"""Labelled images: a folder per class or a CSV of path,label; every file checked before training.

Pillow and NumPy only (torchvision cannot live beside the pinned torch). Corrupt, truncated or
unreadable files stop the run with a DataError naming the file, before anything is written.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fmkit.data.readers import check_text_file
from fmkit.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})
PATH_COLUMNS = ("path", "image", "file", "filename", "image_path", "filepath", "img")
LABEL_COLUMNS = ("label", "class", "category", "target", "labels")


@dataclass
class LabeledImages:
    """Image files with their labels (strings), in a fixed order."""

    paths: list[Path]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def subset(self, indices: Sequence[int] | np.ndarray, source: str | None = None) -> LabeledImages:
        return LabeledImages([self.paths[i] for i in indices], [self.labels[i] for i in indices], source or self.source)


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_image_folder(root: Path) -> LabeledImages:
    """ROOT/<label>/<image>: the folder name is the label; sorted, so the order is reproducible."""
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"{root}: no class folders. Put each class's images in its own subfolder (ROOT/cat/1.jpg, ROOT/dog/2.jpg) "
            "or pass a CSV with path and label columns."
        )
    paths: list[Path] = []
    labels: list[str] = []
    for folder in classes:
        files = sorted(p for p in folder.rglob("*") if is_image_file(p))
        paths.extend(files)
        labels.extend([folder.name] * len(files))
    if not paths:
        raise DataError(f"{root}: the class folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return LabeledImages(paths, labels, str(root))


def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, source: Path) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{source}: no column '{wanted}' for the {what}; columns are {', '.join(columns)}.")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"{source}: cannot tell which column holds the {what} (columns: {', '.join(columns)}); "
        f"name it {candidates[0]!r} or pass the column name."
    )


def read_image_csv(path: Path, path_column: str | None = None, label_column: str | None = None) -> LabeledImages:
    """A CSV/TSV with an image path column (relative paths are relative to the CSV) and a label column."""
    check_text_file(path)
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    if not rows:
        raise DataError(f"{path}: no rows under the header.")
    columns = list(rows[0].keys())
    path_col = _pick(columns, path_column, PATH_COLUMNS, "image path", path)
    label_col = _pick(columns, label_column, LABEL_COLUMNS, "label", path)
    paths: list[Path] = []
    labels: list[str] = []
    for line, row in enumerate(rows, start=2):
        raw_path, label = (row.get(path_col) or "").strip(), (row.get(label_col) or "").strip()
        if not raw_path or not label:
            raise DataError(f"{path}, row {line}: empty {'path' if not raw_path else 'label'}; fill it or remove the row.")
        image_path = Path(raw_path).expanduser()
        paths.append(image_path if image_path.is_absolute() else path.parent / image_path)
        labels.append(label)
    return LabeledImages(paths, labels, str(path))


def read_labeled_images(source: Path, path_column: str | None = None, label_column: str | None = None) -> LabeledImages:
    source = Path(source)
    if source.is_dir():
        return read_image_folder(source)
    if source.is_file() and source.suffix.lower() in (".csv", ".tsv"):
        return read_image_csv(source, path_column, label_column)
    if not source.exists():
        raise DataError(f"{source}: not found. Give a folder with one subfolder per class, or a CSV of path,label.")
    raise DataError(f"{source}: image data must be a folder with one subfolder per class, or a CSV of path,label.")


def list_images(source: Path) -> list[Path]:
    """Images to predict: one file, or every image under a folder (sorted)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        found = sorted(p for p in source.rglob("*") if is_image_file(p))
        if not found:
            raise DataError(f"{source}: no image files here ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        return found
    raise DataError(f"{source}: no such image file or folder.")


def load_rgb(path: Path) -> Image.Image:
    """Open an image fully as RGB; any decoding problem becomes a DataError naming the file."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found; fix the path or remove the row.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: unreadable or corrupt image ({exc}); replace or remove this file.") from None


def check_image(path: Path) -> str | None:
    """None when the file decodes completely, else the reason it cannot be used."""
    try:
        load_rgb(path)
    except DataError as exc:
        return exc.message
    return None


def validate_images(data: LabeledImages, threads: int = 8) -> None:
    """Decode every image once (threads: Pillow releases the GIL); report up to five bad files together."""
    if len(data) == 0:
        raise DataError(f"{data.source}: no images.")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = [p for p in pool.map(check_image, data.paths) if p is not None]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DataError(f"{data.source}: {len(problems)} image(s) cannot be used{more}:\n  " + "\n  ".join(problems[:5]))
    counts = data.class_counts()
    if len(counts) < 2:
        raise DataError(f"{data.source}: only one class ({next(iter(counts))}); image classification needs at least two.")


def stratified_image_split(data: LabeledImages, fraction: float, seed: int) -> tuple[LabeledImages, LabeledImages]:
    """Hold out `fraction` of each class (at least one image) with the run's seed."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    held: list[int] = []
    for label in sorted(set(data.labels)):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        take = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        held.extend(idx[:take].tolist())
    held_set = set(held)
    kept = [i for i in range(len(data)) if i not in held_set]
    return data.subset(kept), data.subset(sorted(held), f"{data.source} (held-out split)")
