"""Pre-flight checks behind `fmkit doctor` and every training run.

Fatal problems raise `DataError`; questionable ones come back as warnings.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fmkit.data.label_sets import label_set_difference, multilabel_hint
from fmkit.data.labeled import LabeledTexts
from fmkit.errors import DataError


@dataclass
class ValidationReport:
    warnings: list[str] = field(default_factory=list)


def validate_classification(
    train: LabeledTexts, evaluation: LabeledTexts | None, imbalance_ratio: float = 10.0,
    unseen_eval_labels: Literal["error", "allow"] = "error",
) -> ValidationReport:
    """`unseen_eval_labels` "allow": the caller reports eval labels absent from training itself (doctor lists
    them with `label_set_difference`) instead of this refusing them."""
    report = ValidationReport()
    counts = Counter(train.labels)
    if len(counts) < 2:
        only = next(iter(counts)) if counts else "none"
        raise DataError(
            f"{train.source}: every row has the same label ('{only}'). A classifier needs at least two "
            "classes; check --label-column or add examples of the other classes."
        )
    if evaluation is not None and unseen_eval_labels == "error":
        unseen = sorted(set(evaluation.labels) - set(counts))
        if unseen:
            first_row = next(r for r, lab in zip(evaluation.rows, evaluation.labels, strict=True) if lab in unseen)
            hint = multilabel_hint(label_set_difference(counts, evaluation.labels))
            raise DataError(
                f"{evaluation.source}: label(s) {', '.join(repr(u) for u in unseen[:10])} never appear in the "
                f"training data {train.source} (first at row {first_row}). Add training examples for them or "
                f"drop those rows from the eval file.{' ' + hint if hint else ''}"
            )

    mixed = mixed_label_spellings(list(counts), train.source)
    if mixed is not None:
        report.warnings.append(mixed)

    # Duplicates and conflicting labels among the training texts.
    by_text: dict[str, set[str]] = defaultdict(set)
    for text, label in zip(train.texts, train.labels, strict=True):
        by_text[text.strip()].add(label)
    duplicates = len(train.texts) - len(by_text)
    if duplicates:
        report.warnings.append(f"{train.source}: {duplicates} duplicate text(s); they weigh more in training.")
    conflicts = [t for t, labs in by_text.items() if len(labs) > 1]
    if conflicts:
        sample = conflicts[0][:60]
        report.warnings.append(
            f"{train.source}: {len(conflicts)} text(s) appear with different labels, e.g. '{sample}'. "
            "Check the labelling."
        )
    most, least = max(counts.values()), min(counts.values())
    if most / least >= imbalance_ratio:
        rare = min(counts, key=lambda k: counts[k])
        report.warnings.append(
            f"{train.source}: classes are imbalanced ({most / least:.0f}:1; '{rare}' has {least} examples). "
            "Consider --class-weights auto."
        )
    if evaluation is not None:
        overlap = len(set(by_text) & {t.strip() for t in evaluation.texts})
        if overlap:
            report.warnings.append(
                f"{evaluation.source}: {overlap} eval text(s) also appear in the training data; "
                "eval metrics will be optimistic."
            )
    return report


_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def mixed_label_spellings(labels: list[str], source: str) -> str | None:
    """A warning when some labels are numbers and others names: usually two exports of one label set.

    "0/1/2" next to "negative/neutral/positive" would train six classes where the user meant three,
    and nothing downstream would notice.
    """
    numbers = sorted((lab for lab in labels if _NUMBER.fullmatch(lab)), key=float)
    names = sorted(lab for lab in labels if not _NUMBER.fullmatch(lab))
    if not numbers or not names:
        return None

    def shown(values: list[str]) -> str:
        return ", ".join(repr(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")

    return (
        f"{source}: the labels mix numbers ({shown(numbers)}) and names ({shown(names)}), so they train "
        f"{len(numbers) + len(names)} classes. If a number and a name mean the same class (for example "
        f"{numbers[0]!r} and {names[0]!r}), write every row with one spelling."
    )


def stratified_split(
    data: LabeledTexts, eval_fraction: float, seed: int
) -> tuple[LabeledTexts, LabeledTexts]:
    """Hold out `eval_fraction` of each class (at least one example of classes with 2+ examples)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels, dtype=object)
    train_idx: list[int] = []
    eval_idx: list[int] = []
    for label in sorted(set(data.labels)):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n_eval = round(len(idx) * eval_fraction)
        n_eval = min(max(n_eval, 1), len(idx) - 1) if len(idx) >= 2 else 0
        eval_idx.extend(idx[:n_eval].tolist())
        train_idx.extend(idx[n_eval:].tolist())
    if not eval_idx:
        raise DataError(f"{data.source}: too few rows to hold out an eval split; give an --eval file.")
    return (
        data.subset(sorted(train_idx), source=f"{data.source} (train split)"),
        data.subset(sorted(eval_idx), source=f"{data.source} (eval split)"),
    )
