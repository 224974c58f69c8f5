"""`fmkit audit`: which labels of a training file look wrong, and a cleaned copy to train on.

  1. the texts through the frozen encoder once (the same vector cache `linear-probe` uses);
  2. k-fold linear probes (the logistic-regression head fitted to convergence, training/logistic.py): every
     example gets probabilities from a probe that never saw it;
  3. evaluation/label_quality.py ranks the suspects: confident-learning label issues, near-duplicate texts
     with different labels, and outliers (texts unlike any other).

Rows corrected with --relabel are trusted: the audit runs on the corrected labels and never flags those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.data.labeled import LabeledTexts, find_column, read_labeled
from fmkit.data.readers import LABEL_COLUMN_NAMES, read_table
from fmkit.data.records import ID_COLUMN_NAMES
from fmkit.data.tasks.classification import LabelMap
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.label_quality import (
    Neighbours,
    conflicting_duplicates,
    find_label_issues,
    keep_groups_together,
    near_duplicate_groups,
    nearest_neighbours,
    normalized_margin,
    outlier_mask,
    outlier_scores,
    stratified_folds,
    top_other_label,
)
from fmkit.training.logistic import fit_logistic_regression
from fmkit.workflows.frozen_vectors import frozen_vectors

# Neighbours compared for duplicates and outliers; cosine from which two texts count as near-duplicates
# (MiniLM puts rephrasings of one request at 0.8-0.9 and copies differing in case or punctuation above 0.95).
NEIGHBOURS = 10
DUPLICATE_COSINE = 0.95
# More label suspects than this share of the rows: the labels as a whole do not match the texts.
MAX_SUSPECT_SHARE = 0.5

REASONS = ("label_issue", "conflicting_duplicate", "outlier")


@dataclass(frozen=True)
class Suspect:
    """One suspect row: `row` is 0-based in the data, `id` the id column's value (or the 1-based row number)."""

    row: int
    id: str
    text: str
    label: str
    suggested: str
    score: float  # in [0, 1], higher is more suspect (see each reason's detail)
    reason: str  # the REASONS that apply, joined by '+', the strongest first
    detail: str

    def record(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("row")
        out["score"] = round(self.score, 4)
        return out

    @property
    def doubts_label(self) -> bool:
        """Evidence the label is wrong (an outlier alone is an unusual text, its label may be right)."""
        return self.reason != "outlier"


@dataclass
class AuditResult:
    data: LabeledTexts  # with the --relabel corrections applied
    ids: list[str]
    label_column: str
    suspects: list[Suspect]
    out_of_fold_accuracy: float
    folds: int
    corrected: dict[int, str] = field(default_factory=dict)  # row -> corrected label

    def counts(self) -> dict[str, int]:
        return {reason: sum(reason in s.reason.split("+") for s in self.suspects) for reason in REASONS}

    def per_class(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.suspects:
            if s.doubts_label:
                out[s.label] = out.get(s.label, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def kept_rows(self) -> list[int]:
        """Rows a cleaned copy keeps: all but those whose label is doubted."""
        dropped = {s.row for s in self.suspects if s.doubts_label}
        return [i for i in range(len(self.data)) if i not in dropped]


def audit(cfg: RunConfig, folds: int = 5, id_column: str | None = None, relabel: Path | None = None,
          duplicate_cosine: float = DUPLICATE_COSINE) -> AuditResult:
    if cfg.data.train is None:
        raise ConfigError("No data to audit: pass --data FILE (CSV, TSV, JSONL or Parquet with text and label columns).")
    source = Path(cfg.data.train)
    data = read_labeled(source, cfg.data.text_column, cfg.data.label_column)
    if data.pairs is not None:
        raise DataError(f"{source}: fmkit audit reads one text column; name it with --text-column.")
    table = read_table(source)
    label_column = find_column(table, cfg.data.label_column, LABEL_COLUMN_NAMES, "label", source)
    ids = row_ids(table, id_column, data.rows, source)
    corrected = read_corrections(relabel, ids, source) if relabel is not None else {}
    for row, label in corrected.items():
        data.labels[row] = label
    labels = LabelMap.from_labels(data.labels)
    y = labels.encode(data.labels, data.source)
    check_folds(data, folds)

    from fmkit.training import configure_threads

    configure_threads(cfg.train.threads)
    vectors = frozen_vectors(cfg, data.texts, "audit")
    unit = vectors.numpy() / np.maximum(np.linalg.norm(vectors.numpy(), axis=1, keepdims=True), 1e-12)
    neighbours = nearest_neighbours(unit, NEIGHBOURS)
    fold = keep_groups_together(stratified_folds(y, folds, cfg.train.seed),
                                near_duplicate_groups(neighbours, duplicate_cosine))
    probs = out_of_fold_probabilities(vectors, y, len(labels), fold, cfg.strategy.probe.c)
    accuracy = float((probs.argmax(1) == y).mean())
    check_labels_carry_signal(accuracy, y, source)
    suspects = rank_suspects(data, ids, labels, y, probs, neighbours, set(corrected), duplicate_cosine)
    doubted = sum(s.doubts_label for s in suspects)
    if doubted > MAX_SUSPECT_SHARE * len(data):
        raise DataError(f"{source}: {doubted} of {len(data)} labels look wrong, so none can be trusted to clean "
                        "the rest. Check that --label-column names the labels, or label a clean sample first.")
    return AuditResult(data, ids, label_column, suspects, accuracy, folds, corrected)


def row_ids(table: object, id_column: str | None, rows: Sequence[int], source: Path) -> list[str]:
    """Each row's id: the --id-column (or a column named like an id), else its 1-based row number."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    names = [str(c) for c in table.columns]
    if id_column is not None and id_column not in names:
        raise DataError(f"{source}: no id column '{id_column}'. Columns present: {', '.join(names)}.")
    lowered = {n.lower(): n for n in names}
    column = id_column or next((lowered[c] for c in ID_COLUMN_NAMES if c in lowered), None)
    if column is None:
        return [str(r) for r in rows]
    ids = [str(v) for v in table[column].tolist()]
    seen: set[str] = set()
    for row, value in enumerate(ids, start=1):
        if value in seen:
            raise DataError(f"{source}: id '{value}' in column '{column}' repeats (row {row}); ids must be unique, "
                            "or name another column with --id-column.")
        seen.add(value)
    return ids


def read_corrections(path: Path, ids: list[str], source: Path) -> dict[int, str]:
    """--relabel: a table with an id column (`id`, or the data's row number) and a `label` column."""
    table = read_table(path)
    names = [str(c) for c in table.columns]
    lowered = {n.lower(): n for n in names}
    id_name = next((lowered[c] for c in ("id", "row") if c in lowered), None)
    label_name = next((lowered[c] for c in ("label", "corrected_label") if c in lowered), None)
    if id_name is None or label_name is None:
        raise DataError(f"{path}: --relabel needs an 'id' and a 'label' column (columns present: {', '.join(names)}).")
    index = {value: row for row, value in enumerate(ids)}
    corrections: dict[int, str] = {}
    for line, (item, label) in enumerate(zip(table[id_name], table[label_name], strict=True), start=2):
        if str(item) not in index:
            raise DataError(f"{path} row {line - 1}: id '{item}' is not in {source}. Use the ids `fmkit audit` "
                            "wrote (the data's id column, or its row number).")
        if not str(label).strip():
            raise DataError(f"{path} row {line - 1}: no label for id '{item}'. Give the corrected label.")
        corrections[index[str(item)]] = str(label).strip()
    return corrections


def check_folds(data: LabeledTexts, folds: int) -> None:
    if folds < 2:
        raise ConfigError(f"--folds {folds}: at least 2 are needed (each example is scored by a probe trained "
                          "on the other folds).")
    counts = data.class_counts()
    if len(counts) < 2:
        raise DataError(f"{data.source}: every row has the label '{next(iter(counts))}'; an audit compares "
                        "classes, so it needs at least two.")
    smallest, size = min(counts.items(), key=lambda kv: kv[1])
    if size < folds:
        fix = (f"lower --folds to {size}, or add" if size >= 2 else "add")
        raise DataError(f"{data.source}: class '{smallest}' has {size} example(s), fewer than --folds {folds} "
                        f"(each fold holds one out). {fix[0].upper() + fix[1:]} examples of '{smallest}' "
                        "(or remove the class).")


def out_of_fold_probabilities(vectors: torch.Tensor, y: np.ndarray, num_classes: int, fold: np.ndarray,
                              c: float) -> np.ndarray:
    """Probabilities of every example from a logistic-regression probe fitted on the other folds (`fold`: each
    example's fold number)."""
    probs = np.zeros((len(y), num_classes))
    for k in np.unique(fold).tolist():
        held = fold == k
        fit = fit_logistic_regression(vectors[~held], torch.as_tensor(y[~held]), num_classes, c=c)
        logits = vectors[held] @ fit.weight.T + fit.bias
        probs[held] = torch.softmax(logits.double(), dim=-1).numpy()
    return probs


def check_labels_carry_signal(accuracy: float, y: np.ndarray, source: Path) -> None:
    """Everything suspect: a probe no better than always guessing the commonest class (within two standard
    errors) learned nothing from the labels, so it cannot say which of them are wrong."""
    majority = float(np.bincount(y).max() / len(y))
    noise = 2.0 * np.sqrt(majority * (1 - majority) / len(y))
    if accuracy <= majority + noise:
        raise DataError(f"{source}: the labels do not follow the texts (held-out probe accuracy {accuracy:.1%}, "
                        f"always guessing the commonest class {majority:.1%}), so every label is suspect. Check "
                        "that --label-column names the labels and --text-column the texts, or use a model that "
                        "reads this language (--model).")


def rank_suspects(data: LabeledTexts, ids: list[str], labels: LabelMap, y: np.ndarray, probs: np.ndarray,
                  neighbours: Neighbours, trusted: set[int], duplicate_cosine: float) -> list[Suspect]:
    """Suspects most suspect first: rows whose label is doubted (label issues and conflicting duplicates, by
    score), then outliers (by score)."""
    names = labels.labels
    guess = probs.argmax(1)
    reasons: dict[int, list[tuple[str, float, str, str]]] = {}  # row -> (reason, score, suggested, detail)

    def add(row: int, reason: str, score: float, suggested: int, detail: str) -> None:
        if row not in trusted:
            reasons.setdefault(row, []).append((reason, score, names[suggested], detail))

    issues = find_label_issues(y, probs)
    quality = normalized_margin(y, probs)
    other = top_other_label(y, probs)
    for row in np.flatnonzero(issues).tolist():
        add(row, "label_issue", 1.0 - float(quality[row]), int(other[row]),
            f"the probe that never saw it gives '{names[other[row]]}' {probs[row, other[row]]:.2f}, "
            f"'{names[y[row]]}' {probs[row, y[row]]:.2f}")
    for conflict in conflicting_duplicates(y, probs, neighbours, duplicate_cosine):
        add(conflict.example, "conflicting_duplicate", conflict.similarity, conflict.suggested,
            f"near-duplicate (cosine {conflict.similarity:.2f}) of id {ids[conflict.partner]}, labelled "
            f"'{names[y[conflict.partner]]}'")
    scores = outlier_scores(neighbours)
    for row in np.flatnonzero(outlier_mask(scores)).tolist():
        add(row, "outlier", float(scores[row]), int(guess[row]),
            f"unlike the other texts (mean cosine {1 - scores[row]:.2f} to its {neighbours.index.shape[1]} nearest)")
    suspects = []
    for row, found in reasons.items():
        found.sort(key=lambda r: (r[0] == "outlier", -r[1]))  # label evidence before the outlier note
        suspects.append(Suspect(row, ids[row], data.texts[row], data.labels[row], found[0][2], found[0][1],
                                "+".join(r[0] for r in found), "; ".join(r[3] for r in found)))
    suspects.sort(key=lambda s: (not s.doubts_label, -s.score, s.row))
    return suspects


def print_summary(result: AuditResult, out: TextIO) -> None:
    counts = result.counts()
    n = len(result.data)
    doubted = sum(s.doubts_label for s in result.suspects)
    lines = [f"{len(result.suspects)} suspects in {n} rows ({doubted} labels doubted: {counts['label_issue']} label "
             f"issues, {counts['conflicting_duplicate']} conflicting near-duplicates; {counts['outlier']} outliers); "
             f"held-out probe accuracy {result.out_of_fold_accuracy:.1%} over {result.folds} folds"]
    if result.corrected:
        lines.append(f"{len(result.corrected)} rows relabelled from --relabel (trusted, never flagged)")
    per_class = result.per_class()
    if per_class:
        lines.append("labels doubted per class:")
        lines += [f"  {label[:40]:<40} {count:>6}" for label, count in list(per_class.items())[:20]]
        if len(per_class) > 20:
            lines.append(f"  ... and {len(per_class) - 20} more classes")
    print("\n".join(lines), file=out)


__all__ = ["AuditResult", "Suspect", "audit", "out_of_fold_probabilities", "print_summary", "rank_suspects"]
