"""Data fingerprints recorded with every run: hash, rows, class counts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fmkit.data.labeled import LabeledTexts


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(data: LabeledTexts, path: Path | None = None) -> dict[str, Any]:
    content = hashlib.sha256()
    for text, label in zip(data.texts, data.labels, strict=True):
        content.update(text.encode("utf-8"))
        content.update(b"\x1f")
        content.update(label.encode("utf-8"))
        content.update(b"\x1e")
    info: dict[str, Any] = {
        "source": data.source,
        "rows": len(data),
        "content_sha256": content.hexdigest(),
        "class_counts": data.class_counts(),
    }
    if path is not None and Path(path).is_file():
        info["file_sha256"] = file_sha256(Path(path))
    return info
