"""`fmkit train --task ner`: a token classifier on CoNLL or JSONL-span data, through THE loop.

Without --eval, a random 10% (data.eval_fraction) of the sentences is held out with the run's
seed. Entity F1 (seqeval's exact-span micro F1) picks the best checkpoint. The run directory
has the usual shape plus ner_report.txt (per type, token accuracy, worst confusions) and
eval_predictions.jsonl (words, gold and predicted tags per eval sentence).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.config import RunConfig
from fmkit.data.conll import NerData, read_ner
from fmkit.data.tasks.ner import encode_words, make_ner_loader, tag_labels
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.ner_metrics import format_ner_report, ner_metrics
from fmkit.inference.ner import NerPredictor
from fmkit.models.strategies import LoraStrategy
from fmkit.models.token_classifier import TokenClassifier, token_classification_loss
from fmkit.training import Checkpoints, make_accelerator, train_loop
from fmkit.utils.io import atomic_directory, atomic_write_text
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import strategy_train_config
from fmkit.workflows.task_run import TaskRun, load_backbone, warn

PRIMARY = "f1"


def load_ner_data(cfg: RunConfig) -> tuple[NerData, NerData]:
    if cfg.data.train is None:
        raise DataError("No training data: pass --data FILE (CoNLL 'token<TAB>tag' lines, or JSONL with text + entities).")
    train = read_ner(cfg.data.train)
    for message in train.warnings:
        warn(message)
    if not train.entity_types:
        raise DataError(f"{train.source}: no entity tags at all (every tag is O); nothing to learn.")
    if cfg.data.eval is not None:
        evaluation = read_ner(cfg.data.eval)
        for message in evaluation.warnings:
            warn(message)
        unknown = sorted(set(evaluation.entity_types) - set(train.entity_types))
        if unknown:
            raise DataError(f"{evaluation.source}: entity types {', '.join(unknown)} never occur in the training data "
                            f"({', '.join(train.entity_types)}).")
        return train, evaluation
    if len(train) < 10:
        raise DataError(f"{train.source}: {len(train)} sentences; give at least 10 or an --eval file.")
    rng = np.random.default_rng(cfg.train.seed)
    order = rng.permutation(len(train))
    n_eval = max(1, round(len(train) * cfg.data.eval_fraction))
    return train.subset(sorted(order[n_eval:].tolist())), train.subset(sorted(order[:n_eval].tolist()))


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> Any:
    strategy = "full" if cfg.strategy.name == "auto" else cfg.strategy.name
    if strategy not in ("full", "lora"):
        raise ConfigError(f"--task ner trains with --strategy full or lora, not '{strategy}'.")
    train_data, eval_data = load_ner_data(cfg)
    labels = tag_labels(train_data.entity_types)
    warnings = list(train_data.warnings)
    # The vocabulary check reads sentences: the words of each, joined as they would be written.
    model_path, tokenizer, max_length = load_backbone(cfg, text_prompt=False, warnings=warnings,
                                                      texts=[" ".join(words) for words in train_data.tokens])
    train_enc = encode_words(tokenizer, train_data.tokens, max_length, tags=train_data.tags, labels=labels)
    windowed = int(np.sum(np.bincount(train_enc.sentence) > 1))
    data_info = {"train": {"path": str(cfg.data.train), "sentences": len(train_data), "windows": len(train_enc),
                           "sentences_split_into_windows": windowed, "entity_types": train_data.entity_types},
                 "eval": {"path": str(cfg.data.eval) if cfg.data.eval else None, "sentences": len(eval_data)},
                 "eval_is_split_of_train": cfg.data.eval is None, "max_length": max_length, "labels": labels,
                 "warnings": warnings}
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        model = TokenClassifier.from_backbone(model_path, labels, cfg.model.dropout, max_length,
                                              trust_remote_code=cfg.model.trust_remote_code)
        lora = None
        if strategy == "lora":
            lora = LoraStrategy(cfg.strategy.lora)
            lora.prepare(model)  # type: ignore[arg-type]  # duck-typed: needs only `.encoder`

        def evaluate(current: Any) -> dict[str, Any]:
            predictor = NerPredictor(current, tokenizer, batch_size=cfg.eval.batch_size)
            full = ner_metrics(eval_data.tags, predictor.predict_tags(eval_data.tokens))
            return {k: v for k, v in full.items() if isinstance(v, float)}

        loader = make_ner_loader(train_enc, tokenizer.pad_token_id or 0, cfg.train.batch_size, cfg.train.seed,
                                 shuffle=True)
        train_cfg = strategy_train_config(cfg, strategy)  # lora: strategy.lora.learning_rate
        result = train_loop(model, loader, cfg=train_cfg, loss_fn=token_classification_loss, evaluate=evaluate,
                            primary_metric=PRIMARY, checkpoints=Checkpoints(run.dir / "checkpoints"),
                            tracker=run.tracker, accelerator=make_accelerator(train_cfg), resume=run.resume)
        if not run.main:  # another process of a data-parallel run: the main one evaluates and writes
            return RunResult(run_dir=run.dir, metrics={}, warnings=warnings)
        if lora is not None:
            lora.export(model, run.dir)  # type: ignore[arg-type]  # adapters kept, merged encoder saved
        predictor = NerPredictor(model, tokenizer, batch_size=cfg.eval.batch_size)
        predicted = predictor.predict_tags(eval_data.tokens)
        full = ner_metrics(eval_data.tags, predicted)
        with atomic_directory(run.dir / "model") as tmp:
            model.save_pretrained(tmp, tokenizer)
        atomic_write_text(run.dir / "ner_report.txt", format_ner_report(full))
        atomic_write_text(run.dir / "eval_predictions.jsonl", "".join(
            json.dumps({"tokens": w, "gold": g, "predicted": p}, ensure_ascii=False) + "\n"
            for w, g, p in zip(eval_data.tokens, eval_data.tags, predicted, strict=True)))
        metrics: dict[str, Any] = {**full, "eval_source": eval_data.source, "strategy": strategy,
                                   "train_sentences": len(train_data), "train_windows": len(train_enc),
                                   "steps": result.steps, "best_step": result.best_step,
                                   "epochs_completed": result.epochs_completed, "stopped_early": result.stopped_early,
                                   "train_seconds": round(result.train_seconds, 2),
                                   "train_examples_per_second": round(result.examples_per_second, 2),
                                   "frozen_for_speed": result.frozen}
        headline = {k: round(full[k], 4) for k in ("f1", "precision", "recall", "token_accuracy")}
        run.finish(metrics, headline)
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=warnings)


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None, label_column: str | None,
                   batch_size: int, precision: str = "auto") -> dict[str, Any]:
    """`fmkit eval` of an NER model: entity metrics on a CoNLL or JSONL-spans file (words, not text columns)."""
    evaluation = read_ner(data)
    for message in evaluation.warnings:
        warn(message)
    predictor = NerPredictor.load(model_dir, batch_size=batch_size)
    return ner_metrics(evaluation.tags, predictor.predict_tags(evaluation.tokens))


def print_eval(metrics: dict[str, Any]) -> None:
    print(format_ner_report(metrics), end="")

