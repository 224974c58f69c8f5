"""Evaluation outputs on disk: confusion matrix (CSV and PNG), per-class table, eval predictions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.evaluation.metrics import format_report
from fmkit.utils.io import atomic_write_bytes, atomic_write_text


def write_confusion_csv(metrics: dict[str, Any], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["true\\pred", *metrics["labels"]])
    for label, row in zip(metrics["labels"], metrics["confusion_matrix"], strict=True):
        writer.writerow([label, *row])
    atomic_write_text(path, buf.getvalue())


def write_confusion_png(metrics: dict[str, Any], path: Path) -> None:
    fig = confusion_figure(metrics)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


# Fonts with CJK glyphs that Debian/Ubuntu (fonts-noto-cjk, fonts-wqy-*), macOS and Windows ship; matplotlib
# (3.6+) falls back glyph by glyph along a family list, so Latin keeps DejaVu Sans and only CJK uses these.
CJK_FONT_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
                     "WenQuanYi Micro Hei", "Droid Sans Fallback", "PingFang SC", "Hiragino Sans GB",
                     "Microsoft YaHei", "SimHei", "Arial Unicode MS")


def plot_font_families(texts: Sequence[str]) -> list[str]:
    """DejaVu Sans, then the installed CJK fonts when any text needs one (without them Chinese labels would
    render as empty boxes). Only installed families: matplotlib warns for every name it cannot find."""
    if not any("\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uff00" <= ch <= "\uffef"
               for text in texts for ch in str(text)):
        return ["DejaVu Sans"]
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(family for family in CJK_FONT_FAMILIES if family in installed)]


def confusion_figure(metrics: dict[str, Any]) -> Any:
    """The confusion matrix as a matplotlib Figure (row-normalised colour, counts in the cells)."""
    # Figure + the Agg canvas directly, not pyplot: no global figure registry (safe from server threads),
    # and no process-wide backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = metrics["labels"]
    cm = np.asarray(metrics["confusion_matrix"], dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(labels)
    size = min(24.0, max(5.0, 0.28 * k + 3))
    fig = Figure(figsize=(size, size * 0.85))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # Two short lines: one long line is wider than the axes of a small matrix and gets cut at the figure edge.
    ax.set_title("Confusion matrix\n(colour: row-normalised; numbers: counts)", fontsize=10)
    ticks = np.arange(k)
    fontsize = 9 if k <= 20 else max(4, int(9 - k / 20))
    families = plot_font_families(labels)
    ax.set_xticks(ticks, labels=labels, rotation=90, fontsize=fontsize, fontfamily=families)
    ax.set_yticks(ticks, labels=labels, fontsize=fontsize, fontfamily=families)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                            color="white" if normalised[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def write_predictions(path: Path, texts: Sequence[str], true_labels: Sequence[str], probs: np.ndarray,
                      labels: Sequence[str]) -> None:
    """One JSON line per eval example, in input order: text, true label, prediction, probabilities."""
    pred = probs.argmax(axis=1)
    lines = []
    for text, true, p, row in zip(texts, true_labels, pred, probs, strict=True):
        lines.append(json.dumps({
            "text": text, "label": true, "predicted": labels[int(p)], "correct": labels[int(p)] == true,
            "scores": {lab: round(float(s), 6) for lab, s in zip(labels, row, strict=True)},
        }, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_evaluation(directory: Path, metrics: dict[str, Any]) -> None:
    write_confusion_csv(metrics, directory / "confusion_matrix.csv")
    write_confusion_png(metrics, directory / "confusion_matrix.png")
    atomic_write_text(directory / "classification_report.txt", format_report(metrics) + "\n")
