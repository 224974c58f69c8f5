"""What a text head learns, in one object: its outputs, loss, metrics and closed-form fit.

The strategies (workflows/strategy_runs.py) train a body plus a linear head the same way whatever the head
predicts; everything that differs between one label per text and a number per text is here, so no strategy
branches on the task:

  SingleLabel  softmax over the labels, cross-entropy, accuracy/macro-F1, logistic-regression head
  Regression   one output on standardised targets, MSE, Spearman/Pearson/RMSE/MAE/R², ridge-regression head
  MultiLabel   a sigmoid per label, BCE, macro/micro F1 at per-label thresholds, one-vs-rest logistic head
  ChunkedSingleLabel  SingleLabel over the windows of long texts (data.long_text=chunk): weighted loss,
               metrics per text
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from fmkit.data.long_text import aggregate_probabilities
from fmkit.data.tasks.classification import LabelMap
from fmkit.data.tasks.multilabel import MultiLabelMap
from fmkit.data.tasks.regression import TargetScaling
from fmkit.evaluation.metrics import (
    classification_metrics,
    headline,
    multilabel_metrics,
    regression_metrics,
    tune_thresholds,
)
from fmkit.models.losses import classification_loss
from fmkit.training.logistic import LogisticFit, fit_logistic_regression, fit_ridge_regression, fit_sigmoid_regression


class Objective(Protocol):
    task: str  # what the saved model's fmkit.json says it is

    @property
    def outputs(self) -> tuple[str, ...]:
        """One name per head row: the labels, or the target's name."""

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def metrics(self, y_true: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        """The scalar metrics of head outputs against the encoded targets (what the loop selects on)."""

    def fit_linear(self, vectors: torch.Tensor, y: np.ndarray, c: float,
                   on_iteration: Callable[[int, float], None]) -> LogisticFit:
        """The head fitted to convergence on fixed vectors (linear-probe, fewshot's phase 2)."""


@dataclass
class SingleLabel:
    labels: LabelMap
    class_weights: torch.Tensor | None = None
    task: str = "classification"

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.labels.labels

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return classification_loss(logits, batch, self.class_weights)

    def metrics(self, y_true: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        return headline(classification_metrics(y_true, logits.argmax(-1).numpy(), self.labels.labels))

    def fit_linear(self, vectors: torch.Tensor, y: np.ndarray, c: float,
                   on_iteration: Callable[[int, float], None]) -> LogisticFit:
        return fit_logistic_regression(vectors, torch.as_tensor(y), len(self.labels), c=c,
                                       class_weights=self.class_weights, on_iteration=on_iteration)


@dataclass
class Regression:
    """The head predicts the standardised target; metrics are on the target's own scale."""

    scaling: TargetScaling
    target_name: str = "value"
    task: str = "regression"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.target_name,)

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(logits.float().reshape(-1), batch["labels"].float())

    def metrics(self, y_true: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        predicted = self.scaling.unscale(logits.float().reshape(-1).numpy())
        return headline(regression_metrics(self.scaling.unscale(np.asarray(y_true)), predicted))

    def fit_linear(self, vectors: torch.Tensor, y: np.ndarray, c: float,
                   on_iteration: Callable[[int, float], None]) -> LogisticFit:
        fit = fit_ridge_regression(vectors, torch.as_tensor(y))  # its penalty by leave-one-out error, not `c`
        on_iteration(fit.iterations, fit.loss)
        return fit


@dataclass
class MultiLabel:
    """Each label on its own: sigmoid + BCE. The loop selects by macro F1 at thresholds tuned per label on
    the eval split, the thresholds the saved model will use (at a fixed 0.5, rare labels are never predicted
    and macro F1 says little about the checkpoint)."""

    labels: MultiLabelMap
    task: str = "multilabel"

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.labels.labels

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].float())

    def metrics(self, y_true: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        probs = torch.sigmoid(logits.float()).numpy()
        tuned = multilabel_metrics(y_true, probs >= tune_thresholds(y_true, probs), self.labels.labels)
        fixed = multilabel_metrics(y_true, probs >= 0.5, self.labels.labels)
        return {**headline(tuned), "macro_f1_at_0.5": fixed["macro_f1"], "micro_f1_at_0.5": fixed["micro_f1"]}

    def fit_linear(self, vectors: torch.Tensor, y: np.ndarray, c: float,
                   on_iteration: Callable[[int, float], None]) -> LogisticFit:
        return fit_sigmoid_regression(vectors, torch.as_tensor(y), c=c, on_iteration=on_iteration)


@dataclass
class ChunkedSingleLabel:
    """SingleLabel where each row is a window of a text (data.long_text=chunk).

    Training: every window carries its text's label and weighs 1 / (windows of its text) (the rows' weights,
    scaled to mean 1), so a 20-window review counts as much as a one-window one, not twenty times more; the
    weight rides in each batch as `document_weight`. Metrics: window probabilities aggregated per eval text,
    then scored against the texts' labels, so the loop selects on what `fmkit eval` will report."""

    inner: SingleLabel
    train_weights: np.ndarray  # per training window
    eval_document: np.ndarray  # eval window -> its text
    eval_labels: np.ndarray  # one per eval text
    aggregate: str
    task: str = "classification"

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.inner.outputs

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        weight = batch.get("document_weight")
        if weight is None:  # rows without weights (the quick probe's cached vectors): the plain loss
            return self.inner.loss(logits, batch)
        class_weights = self.inner.class_weights
        per_row = F.cross_entropy(logits.float(), batch["labels"], reduction="none",
                                  weight=class_weights.to(logits.device) if class_weights is not None else None)
        return (per_row * weight.to(per_row.device)).mean()

    def document_probabilities(self, logits: torch.Tensor) -> np.ndarray:
        if len(logits) != len(self.eval_document):
            raise ValueError(f"{len(logits)} rows of logits for {len(self.eval_document)} eval windows")
        probs = torch.softmax(logits.float(), dim=-1).numpy()
        return aggregate_probabilities(probs, self.eval_document, len(self.eval_labels), self.aggregate)

    def metrics(self, y_true: np.ndarray, logits: torch.Tensor) -> dict[str, Any]:
        # `y_true` holds the windows' labels; the score is per text, against the texts' own labels.
        documents = self.document_probabilities(logits)
        return self.inner.metrics(self.eval_labels, torch.from_numpy(np.log(np.maximum(documents, 1e-12))))

    def fit_linear(self, vectors: torch.Tensor, y: np.ndarray, c: float,
                   on_iteration: Callable[[int, float], None]) -> LogisticFit:
        # Each window is a row of the logistic regression, weighted like the loop's loss.
        return fit_logistic_regression(vectors, torch.as_tensor(y), len(self.inner.labels), c=c,
                                       class_weights=self.inner.class_weights, on_iteration=on_iteration,
                                       sample_weights=torch.as_tensor(self.train_weights))
