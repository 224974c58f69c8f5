"""Image classification runs (`fmkit train --task image`): EfficientNet-Lite0, linear probe or full fine-tuning.

Same run directory, metrics and predict as text classification; the loop is the one loop.
linear-probe: the body is frozen and its pooled features are computed once (no augmentation:
cached features cannot be re-augmented), then the head trains on them. full: every weight
trains on augmented images.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.config.schema import DEFAULT_MODEL
from fmkit.data.images import LabeledImages, read_labeled_images, stratified_image_split, validate_images
from fmkit.data.tasks.classification import LabelMap
from fmkit.data.tasks.image import make_feature_loader, make_image_loader
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.artifacts import write_evaluation, write_predictions
from fmkit.evaluation.metrics import classification_metrics, headline
from fmkit.models.image_classifier import ARCHITECTURE, FeatureHead, ImageClassifier, image_features, image_logits
from fmkit.models.losses import classification_loss
from fmkit.training import Checkpoints, make_accelerator, train_loop
from fmkit.utils.io import atomic_directory
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.task_run import TaskRun


def load_image_datasets(cfg: RunConfig) -> tuple[LabeledImages, LabeledImages]:
    """Read and check every image (decoded once) before anything is written; split without an eval set."""
    if cfg.data.train is None:
        raise DataError("No training images: pass --data FOLDER (one subfolder per class) or a CSV of path,label.")
    train = read_labeled_images(cfg.data.train, cfg.image.path_column, cfg.data.label_column)
    validate_images(train)
    if cfg.data.eval is not None:
        evaluation = read_labeled_images(cfg.data.eval, cfg.image.path_column, cfg.data.label_column)
        validate_images(evaluation)
        unknown = sorted(set(evaluation.labels) - set(train.labels))
        if unknown:
            raise DataError(f"{evaluation.source}: label(s) {', '.join(unknown[:10])} do not occur in the training data.")
        return train, evaluation
    return stratified_image_split(train, cfg.data.eval_fraction, cfg.train.seed)


IMAGE_STRATEGIES = ("full", "linear-probe")


def resolve_image_defaults(cfg: RunConfig) -> RunConfig:
    """Text defaults mean nothing for images: EfficientNet-Lite0, and 'auto' -> linear-probe (the fast one on a
    CPU). Resolved before config.yaml is written, so a resumed run makes the same choice."""
    if cfg.model.name == DEFAULT_MODEL:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": ARCHITECTURE})})
    if cfg.strategy.name == "auto":
        cfg = cfg.model_copy(update={"strategy": cfg.strategy.model_copy(update={"name": "linear-probe"})})
    if cfg.strategy.name not in IMAGE_STRATEGIES:
        raise ConfigError(f"strategy '{cfg.strategy.name}' is not available for images; use 'full' or 'linear-probe'.")
    return cfg


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    cfg = resolve_image_defaults(cfg)
    train_data, eval_data = load_image_datasets(cfg)
    labels = LabelMap.from_labels(train_data.labels)
    y_train = labels.encode(train_data.labels, train_data.source)
    y_eval = labels.encode(eval_data.labels, eval_data.source)
    probe = cfg.strategy.name == "linear-probe"
    warnings: list[str] = []
    if probe and cfg.image.augment.enabled:
        warnings.append("linear-probe caches image features once, so augmentation is not applied.")
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)

    data_info = {
        "train": {"source": train_data.source, "rows": len(train_data), "class_counts": train_data.class_counts()},
        "eval": {"source": eval_data.source, "rows": len(eval_data), "class_counts": eval_data.class_counts()},
        "eval_is_split_of_train": cfg.data.eval is None, "image_size": cfg.image.image_size,
    }
    with TaskRun(cfg, data_info, Path(cfg.model.name), resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        size, seed = cfg.image.image_size, cfg.train.seed
        model = ImageClassifier.from_backbone(cfg.model.name, list(labels.labels), size, cfg.model.dropout)
        eval_images = make_image_loader(eval_data.paths, y_eval, size, cfg.eval.batch_size, seed, shuffle=False)
        feature_seconds = 0.0
        if probe:
            model.freeze_body()
            start = time.perf_counter()
            train_images = make_image_loader(train_data.paths, y_train, size, cfg.eval.batch_size, seed, shuffle=False)
            train_feats = image_features(model, train_images, len(train_data))
            eval_feats = image_features(model, eval_images, len(eval_data))
            feature_seconds = time.perf_counter() - start
            train_loader = make_feature_loader(train_feats, y_train, cfg.train.batch_size, seed, shuffle=True)
            eval_loader = make_feature_loader(eval_feats, y_eval, cfg.eval.batch_size, seed, shuffle=False)
        else:
            train_loader = make_image_loader(train_data.paths, y_train, size, cfg.train.batch_size, seed, shuffle=True,
                                             augment_cfg=cfg.image.augment)
            eval_loader = eval_images

        def loss_fn(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return classification_loss(logits, batch)

        def evaluate(current: torch.nn.Module) -> dict[str, Any]:
            # `model` itself: with a linear probe the loop trains its head (shared) through FeatureHead.
            logits = image_logits(model, eval_loader, len(eval_data))
            return headline(classification_metrics(y_eval, logits.argmax(-1).numpy(), labels.labels))

        trained: torch.nn.Module = FeatureHead(model.head) if probe else model
        result = train_loop(
            trained, train_loader, cfg=cfg.train, loss_fn=loss_fn, evaluate=evaluate,
            primary_metric=cfg.primary_metric, checkpoints=Checkpoints(run.dir / "checkpoints"),
            tracker=run.tracker, accelerator=make_accelerator(cfg.train), resume=run.resume,
        )
        if not run.main:  # another process of a data-parallel run: the main one evaluates and writes
            return RunResult(run_dir=run.dir, metrics={}, warnings=warnings)
        probs = torch.softmax(image_logits(model, eval_loader, len(eval_data)), dim=-1).numpy()
        full = classification_metrics(y_eval, probs.argmax(1), labels.labels)
        metrics = {
            **headline(full), "per_class": full["per_class"], "labels": full["labels"],
            "confusion_matrix": full["confusion_matrix"], "eval_source": eval_data.source,
            "train_examples": len(train_data), "best_step": result.best_step, "steps": result.steps,
            "epochs_completed": result.epochs_completed, "stopped_early": result.stopped_early,
            "train_seconds": round(result.train_seconds + feature_seconds, 2),
            "feature_seconds": round(feature_seconds, 2),
            "train_examples_per_second": round(result.examples_per_second, 2),
            "strategy": cfg.strategy.name, "image_size": size,
        }
        with atomic_directory(run.dir / "model") as tmp:
            model.save_pretrained(tmp)
        write_evaluation(run.dir, full)
        write_predictions(run.dir / "eval_predictions.jsonl", [str(p) for p in eval_data.paths], eval_data.labels,
                          probs, labels.labels)
        run.finish(metrics, headline(metrics))
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=warnings)


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None, label_column: str | None,
                   batch_size: int, precision: str = "auto") -> dict[str, Any]:
    """`fmkit eval` of an image model (the registry's signature): a labelled folder, or a CSV whose path column
    is found like a text column."""
    return evaluate_saved_images(model_dir, data, label_column, text_column, batch_size)


def evaluate_saved_images(model_dir: Path, data: Path, label_column: str | None = None,
                          path_column: str | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a saved image model on a labelled folder or CSV."""
    model = ImageClassifier.from_pretrained(model_dir)
    examples = read_labeled_images(data, path_column, label_column)
    validate_images(examples)
    unknown = sorted(set(examples.labels) - set(model.labels))
    if unknown:
        raise DataError(f"{data}: label(s) {', '.join(unknown[:10])} are not among the model's labels.")
    y = LabelMap(tuple(model.labels)).encode(examples.labels, str(data))
    loader = make_image_loader(examples.paths, y, model.image_size, batch_size, 0, shuffle=False, norm=model.norm)
    logits = image_logits(model, loader, len(examples))
    return classification_metrics(y, np.asarray(logits.argmax(-1)), model.labels)
