"""`fmkit train --task multilabel`: any number of labels per text, a sigmoid per label, through THE loop.

    fmkit train --task multilabel --data tickets.csv --label-column tags     # tags: billing|refund
    fmkit train --task multilabel --data tickets.jsonl                       # "labels": ["billing", "refund"]

The model is the body + linear head of a classifier with BCE instead of softmax (strategies full, lora,
linear-probe = one-vs-rest logistic regression on frozen vectors). Each label gets its own decision
threshold, tuned for F1 on the eval split at the end and saved with the model; metrics.json gives macro /
micro / samples F1, subset accuracy and Hamming loss at those thresholds and at 0.5. Tuned on the eval split,
the tuned numbers are optimistic for that split: measure on another file with `fmkit eval`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.data.tasks.classification import LabelMap
from fmkit.data.tasks.multilabel import (
    MultiLabeled,
    MultiLabelMap,
    random_split,
    read_multilabeled,
    validate_multilabel,
)
from fmkit.data.tokenized import encode_texts
from fmkit.errors import DataError
from fmkit.evaluation.metrics import multilabel_metrics, threshold_curve, tune_thresholds
from fmkit.training.budget import Deadline
from fmkit.utils.clock import command_started
from fmkit.utils.io import atomic_directory, atomic_write_text
from fmkit.workflows.auto import run_budget
from fmkit.workflows.head_task import fit_and_export, loop_summary, resolve_head_strategy
from fmkit.workflows.objectives import MultiLabel
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import FitContext
from fmkit.workflows.task_run import TaskRun, load_backbone, warn

HEADLINE = ("macro_f1", "micro_f1", "samples_f1", "subset_accuracy", "hamming_loss")


def load_multilabeled(cfg: RunConfig) -> tuple[MultiLabeled, MultiLabeled, list[str]]:
    if cfg.data.train is None:
        raise DataError("No training data: pass --data FILE (a text column and a labels column: 'a|b', a JSON list, "
                        "or one 0/1 column per label named with --label-column a,b,c).")
    read = {"text_column": cfg.data.text_column, "label_column": cfg.data.label_column,
            "separator": cfg.data.label_separator}
    train = read_multilabeled(cfg.data.train, **read)
    evaluation = read_multilabeled(cfg.data.eval, **read) if cfg.data.eval is not None else None
    warnings = validate_multilabel(train, evaluation)
    if evaluation is None:
        train, evaluation = random_split(train, cfg.data.eval_fraction, cfg.train.seed)
    return train, evaluation, warnings


def doctor_data(cfg: RunConfig) -> dict[str, Any]:
    """What `fmkit doctor` reads of multi-label data: counts per label (workflows/doctor.py adds the rest)."""
    train_data, eval_data, warnings = load_multilabeled(cfg)

    def counts(data: MultiLabeled) -> dict[str, Any]:
        return {"source": data.source, "rows": len(data), "label_counts": data.label_counts(),
                "mean_labels_per_text": float(np.mean([len(ls) for ls in data.labels]))}

    return {"train": counts(train_data), "eval": counts(eval_data), "eval_is_split_of_train": cfg.data.eval is None,
            "warnings": warnings, "texts": train_data.texts}


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    started = command_started()
    budget_s, _ = run_budget(cfg.strategy)  # auto: the default budget
    train_data, eval_data, warnings = load_multilabeled(cfg)
    for message in warnings:
        warn(message)
    model_path, tokenizer, max_length = load_backbone(cfg, texts=train_data.texts, warnings=warnings)
    labels = MultiLabelMap.from_labels(train_data.labels)
    train_enc = encode_texts(tokenizer, train_data.texts, max_length, labels.encode(train_data.labels, train_data.source))
    eval_y = labels.encode(eval_data.labels, eval_data.source)
    eval_enc = encode_texts(tokenizer, eval_data.texts, max_length, eval_y)
    data_info = {"train": {"source": train_data.source, "rows": len(train_data), "label_counts": train_data.label_counts()},
                 "eval": {"source": eval_data.source, "rows": len(eval_data)},
                 "eval_is_split_of_train": cfg.data.eval is None, "max_length": max_length, "labels": list(labels.labels),
                 "warnings": warnings,
                 "mean_labels_per_text": float(np.mean([len(ls) for ls in train_data.labels])),
                 "truncated_train_share": float(np.mean(train_enc.lengths >= max_length))}
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        ctx = FitContext(cfg=cfg, model_path=model_path, tokenizer=tokenizer, labels=LabelMap(labels.labels),
                         train_texts=train_data.texts, eval_texts=eval_data.texts, train_enc=train_enc,
                         eval_enc=eval_enc, max_length=max_length, run_dir=run.dir, tracker=run.tracker,
                         resume=run.resume, deadline=None if budget_s is None else Deadline(started, budget_s),
                         objective=MultiLabel(labels))
        strategy = resolve_head_strategy(ctx, write=run.main)
        fitted = fit_and_export(ctx, strategy)
        if fitted is None:  # another process of a data-parallel run: the main one writes everything
            return RunResult(run_dir=run.dir, metrics={}, warnings=warnings)
        model, logits, outcome = fitted
        probs = torch.sigmoid(logits).numpy()
        thresholds = tune_thresholds(eval_y, probs)
        model.info = {"thresholds": [float(t) for t in thresholds]}
        full = multilabel_metrics(eval_y, probs >= thresholds, labels.labels)
        at_half = multilabel_metrics(eval_y, probs >= 0.5, labels.labels)
        with atomic_directory(run.dir / "model") as tmp:
            model.save_pretrained(tmp, tokenizer)
        write_predictions(run.dir / "eval_predictions.jsonl", eval_data, probs, thresholds, labels)
        metrics: dict[str, Any] = {
            **full, "thresholds": dict(zip(labels.labels, model.info["thresholds"], strict=True)),
            "at_threshold_0.5": {k: at_half[k] for k in HEADLINE},
            "threshold_curve": threshold_curve(eval_y, probs), "thresholds_tuned_on": eval_data.source,
            "eval_source": eval_data.source, "train_examples": len(train_data), **loop_summary(ctx, outcome, strategy),
        }
        run.finish(metrics, {k: round(float(full[k]), 4) for k in HEADLINE})
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=warnings)


def write_predictions(path: Path, data: MultiLabeled, probs: np.ndarray, thresholds: np.ndarray,
                      labels: MultiLabelMap) -> None:
    lines = []
    for text, gold, row in zip(data.texts, data.labels, probs, strict=True):
        predicted = [labels.labels[j] for j in np.flatnonzero(row >= thresholds)]
        top = np.argsort(-row)[:5]
        lines.append(json.dumps({"text": text, "labels": gold, "predicted": predicted,
                                 "scores": {labels.labels[j]: round(float(row[j]), 4) for j in top}},
                                ensure_ascii=False) + "\n")
    atomic_write_text(path, "".join(lines))


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None = None, label_column: str | None = None,
                   batch_size: int = 64, precision: str | None = None) -> dict[str, Any]:
    """Metrics of a saved multi-label model at its saved thresholds (and at 0.5) on any labelled file."""
    from fmkit.inference.multilabel import MultiLabelPredictor

    predictor = MultiLabelPredictor.load(model_dir, batch_size=batch_size,
                                         precision=None if precision in (None, "model") else precision)
    examples = read_multilabeled(data, text_column, label_column)
    label_map = MultiLabelMap(tuple(predictor.labels))
    y = label_map.encode(examples.labels, str(data))
    probs = predictor.predict_proba(examples.texts)
    full = multilabel_metrics(y, probs >= predictor.thresholds, predictor.labels)
    at_half = multilabel_metrics(y, probs >= 0.5, predictor.labels)
    return {**full, "at_threshold_0.5": {k: at_half[k] for k in HEADLINE}}


def print_result(result: RunResult) -> None:
    m = result.metrics
    print(f"run: {result.run_dir}")
    print("  ".join(f"{k} {m[k]:.4f}" for k in HEADLINE) + f"  on {m['num_examples']} eval examples "
          f"({m['train_seconds']:.0f}s, {m['train_examples_per_second']:.0f} examples/s)")
    print(f"thresholds tuned per label on {m['thresholds_tuned_on']}; at 0.5: macro_f1 "
          f"{m['at_threshold_0.5']['macro_f1']:.4f}", file=sys.stdout)
    print(f"model saved to {result.run_dir / 'model'}")
