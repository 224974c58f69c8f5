"""Texts that stand for each label in zero-shot classification: the label name or a description.

A descriptions file is a JSON object {"label": "description"} or a CSV/TSV with two columns
(label, description; a header row is optional). Labels without a description use their name,
with underscores and dashes read as spaces ("card_arrival" -> "card arrival").
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fmkit.data.readers import check_text_file
from fmkit.errors import DataError


def read_label_descriptions(path: Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--label-descriptions {path}: file not found. Give a JSON object or a CSV/TSV label,description.")
    check_text_file(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise DataError(f'{path}: expected one JSON object mapping each label to a description, e.g. {{"0": "negative"}}.')
        return {str(k): v for k, v in data.items()}
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.splitlines()[0] else ","
    out: dict[str, str] = {}
    for lineno, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise DataError(f"{path}, line {lineno}: expected two columns (label{delimiter}description), got {len(row)}.")
        if lineno == 1 and [c.strip().lower() for c in row[:2]] == ["label", "description"]:
            continue
        out[row[0].strip()] = row[1].strip()
    return out


def label_prompts(labels: list[str], descriptions_file: Path | None = None) -> list[str]:
    """One text per label, in label order."""
    described = read_label_descriptions(descriptions_file) if descriptions_file is not None else {}
    if descriptions_file is not None:
        unknown = sorted(set(described) - set(labels))
        if unknown:
            raise DataError(
                f"{descriptions_file}: label(s) {', '.join(map(repr, unknown[:10]))} are not in the training data "
                f"(its labels: {', '.join(labels[:20])})."
            )
    return [described.get(label) or label.replace("_", " ").replace("-", " ") for label in labels]


__all__ = ["label_prompts", "read_label_descriptions"]
