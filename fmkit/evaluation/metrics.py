"""Classification metrics from label ids: accuracy, precision/recall/F1 (per class, macro, weighted), confusion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """Rows are true labels, columns predicted labels."""
    return np.bincount(y_true * num_labels + y_pred, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


UNKNOWN_LABEL = -1  # a y_true id for a row whose label is not among `labels` (`fmkit eval --unknown-labels wrong`)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """A row whose true id is UNKNOWN_LABEL is always an error: it counts in accuracy's denominator and as a
    false positive of the class predicted for it, but in no class's support nor in the confusion matrix."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(labels)
    known = y_true != UNKNOWN_LABEL
    cm = confusion_matrix(y_true[known], y_pred[known], k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = (cm.sum(axis=0) + np.bincount(y_pred[~known], minlength=k)).astype(np.float64)
    # A class never predicted (or absent) has precision (recall) 0, as scikit-learn's zero_division=0.
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0  # macro averages over classes that occur in y_true or y_pred
    present |= predicted > 0
    total = support.sum()
    weights = support / total if total else np.zeros(k)
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_precision": float((precision * weights).sum()),
        "weighted_recall": float((recall * weights).sum()),
        "weighted_f1": float((f1 * weights).sum()),
        "num_examples": len(y_true),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
    }


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics only (what goes into curves and tables)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def format_report(metrics: dict[str, Any]) -> str:
    """A per-class table like scikit-learn's classification_report, plus the headline numbers."""
    labels = metrics["labels"]
    width = max(12, *(len(lab) for lab in labels)) + 2
    lines = [f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label in labels:
        row = metrics["per_class"][label]
        lines.append(f"{label:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}")
    lines.append("")
    n = metrics["num_examples"]
    lines.append(f"{'accuracy':<{width}}{'':>10}{'':>10}{metrics['accuracy']:>10.4f}{n:>10d}")
    lines.append(f"{'macro avg':<{width}}{metrics['macro_precision']:>10.4f}{metrics['macro_recall']:>10.4f}"
                 f"{metrics['macro_f1']:>10.4f}{n:>10d}")
    lines.append(f"{'weighted avg':<{width}}{metrics['weighted_precision']:>10.4f}{metrics['weighted_recall']:>10.4f}"
                 f"{metrics['weighted_f1']:>10.4f}{n:>10d}")
    return "\n".join(lines)


def format_confusion(metrics: dict[str, Any], max_labels: int = 20) -> str:
    labels = metrics["labels"]
    cm = np.asarray(metrics["confusion_matrix"])
    if len(labels) > max_labels:
        return f"(confusion matrix of {len(labels)} classes: see confusion_matrix.csv / .png)"
    short = [lab[:10] for lab in labels]
    width = max(8, *(len(s) for s in short)) + 2
    lines = ["true \\ pred".ljust(width) + "".join(s.rjust(width) for s in short)]
    for label, row in zip(short, cm, strict=True):
        lines.append(label.ljust(width) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE, Pearson, Spearman and R² of predictions against targets (both on the targets' own scale)."""
    from scipy.stats import pearsonr, spearmanr

    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    error = y_pred - y_true
    constant = float(np.ptp(y_pred)) == 0.0 or float(np.ptp(y_true)) == 0.0  # correlations undefined: report 0
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return {
        "spearman": 0.0 if constant else float(spearmanr(y_true, y_pred).statistic),
        "pearson": 0.0 if constant else float(pearsonr(y_true, y_pred).statistic),
        "rmse": float(np.sqrt(np.mean(error ** 2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1.0 - np.sum(error ** 2) / total) if total > 0 else 0.0,
        "num_examples": len(y_true),
    }


def format_regression(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{k}={metrics[k]:.4f}" for k in ("spearman", "pearson", "rmse", "mae", "r2") if k in metrics)


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Micro / macro / samples F1, subset accuracy, Hamming loss and per-label P/R/F1 of 0/1 matrices."""
    truth, pred = np.asarray(y_true) > 0.5, np.asarray(y_pred) > 0.5
    tp = (truth & pred).sum(0).astype(np.float64)
    fp = (~truth & pred).sum(0).astype(np.float64)
    fn = (truth & ~pred).sum(0).astype(np.float64)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=2 * tp + fp + fn > 0)
    row_tp = (truth & pred).sum(1)
    row_total = truth.sum(1) + pred.sum(1)
    # A row with no true and no predicted label is a perfect row (sklearn's zero_division=1 for samples F1).
    samples = np.where(row_total > 0, 2 * row_tp / np.maximum(row_total, 1), 1.0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1.0)
    return {
        "macro_f1": float(f1.mean()) if len(f1) else 0.0,
        "micro_f1": float(micro),
        "samples_f1": float(samples.mean()) if len(samples) else 0.0,
        "subset_accuracy": float((truth == pred).all(1).mean()) if len(truth) else 0.0,
        "hamming_loss": float((truth != pred).mean()) if truth.size else 0.0,
        "num_examples": int(truth.shape[0]),
        "per_label": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for label, p, r, f, s in zip(labels, precision, recall, f1, truth.sum(0), strict=True)},
    }


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 ... 0.95


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """Per label, the threshold on the grid with the best F1 on (y_true, probs); ties go to the one nearest 0.5.

    A label with no positive example keeps 0.5: there is nothing to tune it on."""
    truth = np.asarray(y_true) > 0.5
    thresholds = np.full(truth.shape[1], 0.5)
    candidates = np.asarray(grid, dtype=np.float64)
    order = np.argsort(np.abs(candidates - 0.5), kind="stable")  # nearest 0.5 first, so argmax breaks ties that way
    candidates = candidates[order]
    pred = probs[None, :, :] >= candidates[:, None, None]  # (grid, examples, labels)
    tp = (pred & truth[None]).sum(1)
    fp = (pred & ~truth[None]).sum(1)
    fn = (~pred & truth[None]).sum(1)
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    best = f1.argmax(0)
    has_positives = truth.sum(0) > 0
    thresholds[has_positives] = candidates[best[has_positives]]
    return thresholds


def threshold_curve(y_true: np.ndarray, probs: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID
                    ) -> list[dict[str, float]]:
    """Macro and micro F1 with one threshold for every label, at each grid point (the report's curve)."""
    labels = [str(i) for i in range(np.asarray(y_true).shape[1])]
    out = []
    for t in grid:
        m = multilabel_metrics(y_true, probs >= t, labels)
        out.append({"threshold": float(t), "macro_f1": round(m["macro_f1"], 4), "micro_f1": round(m["micro_f1"], 4)})
    return out
