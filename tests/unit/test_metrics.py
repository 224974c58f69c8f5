"""Classification metrics equal scikit-learn's: accuracy, macro/weighted P/R/F1, per class, confusion matrix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk

from fmkit.evaluation.metrics import classification_metrics, format_confusion, format_report, headline

CASES = [
    # (y_true, y_pred, number of labels)
    ([0, 1, 2, 2, 1, 0, 0], [0, 2, 2, 2, 1, 1, 0], 3),
    ([0, 0, 0, 0], [0, 0, 0, 0], 2),  # a label never seen nor predicted
    ([0, 1, 1, 1], [1, 1, 1, 1], 2),  # a class never predicted: precision 0 (zero_division=0)
    ([2, 2, 2], [0, 1, 2], 3),  # classes predicted but absent from y_true
]


def random_case(seed: int, n: int = 500, k: int = 7) -> tuple[list[int], list[int], int]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, size=n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, size=n))
    return y_true.tolist(), y_pred.tolist(), k


@pytest.mark.parametrize(("y_true", "y_pred", "k"), [*CASES, random_case(0), random_case(1, n=50, k=12)])
def test_equal_to_scikit_learn(y_true: list[int], y_pred: list[int], k: int) -> None:
    names = [f"class_{i}" for i in range(k)]
    ours = classification_metrics(np.array(y_true), np.array(y_pred), names)
    present = sorted(set(y_true) | set(y_pred))  # sklearn averages over labels that occur
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(y_true, y_pred, labels=present, average=average, zero_division=0)
        assert ours[f"{average}_precision"] == pytest.approx(p), average
        assert ours[f"{average}_recall"] == pytest.approx(r), average
        assert ours[f"{average}_f1"] == pytest.approx(f), average
    assert ours["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0))
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=list(range(k)), zero_division=0)
    for i, name in enumerate(names):
        row = ours["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]
    assert ours["confusion_matrix"] == sk.confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist()
    assert ours["num_examples"] == len(y_true)
    assert ours["labels"] == names


def test_headline_keeps_scalars_only() -> None:
    metrics = classification_metrics(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    head = headline({**metrics, "stopped_early": True, "note": "x"})
    assert set(head) == {"accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
                         "weighted_recall", "weighted_f1", "num_examples"}


def test_report_and_confusion_tables() -> None:
    metrics = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), ["negative", "positive"])
    report = format_report(metrics)
    assert "negative" in report and "macro avg" in report and "weighted avg" in report
    assert "0.6667" in report  # accuracy 2/3
    table = format_confusion(metrics).splitlines()
    assert table[1].split() == ["negative", "1", "0"] and table[2].split() == ["positive", "1", "1"]


def test_confusion_png_is_drawn_without_pyplot(tmp_path: Path) -> None:
    # pyplot keeps a process-wide figure registry and switches backends: a server or UI thread writing a
    # report must not touch it. A fresh interpreter, so no other test's imports hide a pyplot import.
    png = tmp_path / "cm.png"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from fmkit.evaluation.artifacts import write_confusion_png
        write_confusion_png({{"labels": ["neg", "pos"], "confusion_matrix": [[5, 1], [0, 4]]}}, Path({str(png)!r}))
        print("matplotlib.pyplot" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
