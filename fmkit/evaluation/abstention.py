"""Abstention: a classifier answers only when its top probability reaches a threshold, and hands the rest
to a person (a support agent, a reviewer).

The threshold is tuned once, after training, on the eval split for a precision the user asks for
(`eval.target_precision`): the lowest threshold whose accepted eval examples are right at least that often,
so the model keeps as many answers (coverage) as the target allows. It is saved in fmkit.json and applied
by the Predictor wherever the model runs (Python, `fmkit predict`, the server, an ONNX export).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ThresholdTuning:
    """The outcome of tuning; `threshold` None: no threshold reaches the target, and none is saved."""

    target_precision: float
    threshold: float | None
    precision: float | None  # on the accepted eval examples, at `threshold`
    coverage: float | None  # share of eval examples accepted at `threshold`
    accuracy: float  # plain accuracy on every eval example (no abstention)
    best_precision: float  # the highest precision any threshold reaches (what to lower the target to)
    examples: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.threshold is None:
            return (f"no abstain threshold reaches precision {self.target_precision:g} on the {self.examples} eval "
                    f"examples (the best any threshold reaches is {self.best_precision:.4f}; plain accuracy "
                    f"{self.accuracy:.4f}); none was saved: the model answers every input. Lower "
                    "eval.target_precision or improve the model.")
        assert self.precision is not None and self.coverage is not None
        return (f"abstain threshold {self.threshold:.4f} (top probability below it: label null, abstained true): "
                f"precision {self.precision:.4f} on the {self.coverage:.1%} of eval examples it answers "
                f"(target {self.target_precision:g}; plain accuracy {self.accuracy:.4f})")


def tune_abstain_threshold(correct: np.ndarray, top_scores: np.ndarray, target_precision: float) -> ThresholdTuning:
    """The lowest threshold on the top score such that, among the examples at or above it, the share `correct`
    is at least `target_precision`; placed halfway between the lowest accepted score and the highest refused
    one. A model already that precise on every example gets 0.0 (never abstains). Equal scores are accepted
    or refused together."""
    correct = np.asarray(correct, dtype=bool)
    scores = np.asarray(top_scores, dtype=np.float64)
    n = len(scores)
    accuracy = float(correct.mean()) if n else 0.0
    if n == 0:
        return ThresholdTuning(target_precision, None, None, None, accuracy, 0.0, 0)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_correct = scores[order], correct[order]
    # Accepting everything down to position i (inclusive) is only possible at the last of a run of equal
    # scores: a threshold cannot split ties.
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    accepted = np.arange(1, n + 1)[last_of_tie]
    precision = np.cumsum(sorted_correct)[last_of_tie] / accepted
    thresholds = sorted_scores[last_of_tie]
    reaching = np.flatnonzero(precision >= target_precision)
    if len(reaching) == 0:
        return ThresholdTuning(target_precision, None, None, None, accuracy, float(precision.max()), n)
    i = int(reaching[-1])  # the most examples accepted, i.e. the lowest threshold
    # Halfway to the first refused score, not at the last accepted one: the same eval examples are accepted,
    # and a rounding difference elsewhere (bf16, ONNX, int8) does not flip the example on the edge.
    threshold = 0.0 if accepted[i] == n else float((thresholds[i] + sorted_scores[accepted[i]]) / 2)
    return ThresholdTuning(target_precision, threshold, float(precision[i]), float(accepted[i] / n), accuracy,
                           float(precision.max()), n)


def abstention_metrics(correct: np.ndarray, top_scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """What a threshold does on labelled rows: coverage (share answered), accuracy on the answered rows
    (the precision the threshold was tuned for) and the plain accuracy, with the counts."""
    correct = np.asarray(correct, dtype=bool)
    answered = np.asarray(top_scores, dtype=np.float64) >= threshold
    n, kept = len(correct), int(answered.sum())
    return {"threshold": float(threshold), "coverage": kept / n if n else 0.0,
            "accepted_accuracy": float(correct[answered].mean()) if kept else 0.0,
            "accuracy": float(correct.mean()) if n else 0.0, "answered": kept, "abstained": n - kept}
