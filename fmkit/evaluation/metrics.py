"""Classification metrics from label ids: accuracy, precision/recall/F1 (per class, macro, weighted), confusion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """Rows are true labels, columns predicted labels."""
    return np.bincount(y_true * num_labels + y_pred, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
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
