"""`fmkit train --task regression`: a number per text, or per text pair (a cross-encoder), through THE loop.

    fmkit train --task regression --data sts-train.tsv --eval sts-dev.tsv --text-column sentence1,sentence2 \
        --label-column score

The model is the same body + linear head as a classifier with one output, trained on standardised targets
(MSE) by the same strategies (full, lora, linear-probe = ridge regression on frozen vectors); Spearman picks
the best checkpoint unless eval.primary_metric names another (rmse and mae: smaller is better). Two text
columns make a pair model: the texts go through the tokenizer together, and predict/serve take pairs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.config import RunConfig
from fmkit.data.tasks.classification import LabelMap
from fmkit.data.tasks.regression import ScoredTexts, TargetScaling, random_split, read_scored, validate_scored
from fmkit.data.tokenized import encode_texts
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.metrics import format_regression, regression_metrics
from fmkit.training.budget import Deadline
from fmkit.utils.clock import command_started
from fmkit.utils.io import atomic_directory, atomic_write_text
from fmkit.workflows.auto import run_budget
from fmkit.workflows.head_task import fit_and_export, loop_summary, resolve_head_strategy
from fmkit.workflows.objectives import Regression
from fmkit.workflows.pair_biencoder import fit_biencoder
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import FitContext
from fmkit.workflows.task_run import TaskRun, cache_texts, load_backbone, warn


def load_scored(cfg: RunConfig) -> tuple[ScoredTexts, ScoredTexts, list[str]]:
    """Read, check and (without an eval file) split; raises DataError before anything is written."""
    if cfg.data.train is None:
        raise DataError("No training data: pass --data FILE (CSV, TSV, JSONL or Parquet with a text column, or two "
                        "for pairs, and a numeric target column).")
    train = read_scored(cfg.data.train, cfg.data.text_column, cfg.data.label_column)
    evaluation = None
    if cfg.data.eval is not None:
        # Pairs: the training file's two text columns; a single text column is found in each file on its own.
        columns = cfg.data.text_column or (",".join(train.columns) if train.pairs is not None else None)
        evaluation = read_scored(cfg.data.eval, columns, cfg.data.label_column or train.target_column)
    warnings = validate_scored(train, evaluation)
    if evaluation is None:
        train, evaluation = random_split(train, cfg.data.eval_fraction, cfg.train.seed)
    return train, evaluation, warnings


def doctor_data(cfg: RunConfig) -> dict[str, Any]:
    """What `fmkit doctor` reads of regression data: the targets' spread (workflows/doctor.py adds the rest)."""
    train_data, eval_data, warnings = load_scored(cfg)

    def spread(data: ScoredTexts) -> dict[str, Any]:
        t = data.targets
        return {"source": data.source, "rows": len(data), "columns": list(data.columns),
                "target": {"name": data.target_column, "mean": float(t.mean()), "std": float(t.std()),
                           "min": float(t.min()), "max": float(t.max()), "distinct": len(np.unique(t))}}

    return {"train": spread(train_data), "eval": spread(eval_data), "eval_is_split_of_train": cfg.data.eval is None,
            "warnings": warnings, "texts": train_data.texts, "pairs": train_data.pairs}


def pair_encoding(requested: str, model_path: Path) -> str:
    """`auto`: a sentence-embedding backbone (sentence-transformers' files beside its weights) was trained to
    compare texts by cosine, so a bi-encoder starts from what it knows; any other encoder reads pairs better
    as one sequence."""
    if requested != "auto":
        return requested
    return "bi" if (model_path / "sentence_bert_config.json").is_file() else "cross"


def pair_separator(tokenizer: Any, data: ScoredTexts) -> int | None:
    """The token between the two texts of a pair (None for single texts, or a tokenizer without one)."""
    if data.pairs is None or tokenizer.sep_token_id is None:
        return None
    return int(tokenizer.sep_token_id)


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    started = command_started()
    budget_s, _ = run_budget(cfg.strategy)  # auto: the default budget
    train_data, eval_data, warnings = load_scored(cfg)
    for message in warnings:
        warn(message)
    model_path, tokenizer, max_length = load_backbone(cfg, texts=[*train_data.texts, *(train_data.pairs or [])],
                                                      warnings=warnings)
    scaling = TargetScaling.fit(train_data.targets)
    train_enc = encode_texts(tokenizer, train_data.texts, max_length, scaling.scale(train_data.targets),
                             pairs=train_data.pairs)
    eval_enc = encode_texts(tokenizer, eval_data.texts, max_length, scaling.scale(eval_data.targets),
                            pairs=eval_data.pairs)
    target_name = train_data.target_column
    data_info = {"train": {"source": train_data.source, "rows": len(train_data)},
                 "eval": {"source": eval_data.source, "rows": len(eval_data)},
                 "eval_is_split_of_train": cfg.data.eval is None, "max_length": max_length, "warnings": warnings,
                 "text_columns": list(train_data.columns), "target": {"mean": scaling.mean, "std": scaling.std},
                 "truncated_train_share": float(np.mean(train_enc.lengths >= max_length))}
    bi_encoder = train_data.pairs is not None and pair_encoding(cfg.task.pair_encoding, model_path) == "bi"
    if bi_encoder and cfg.strategy.name not in ("auto", "full"):
        raise ConfigError(f"task.pair_encoding=bi fine-tunes the whole encoder (--strategy full), not "
                          f"'{cfg.strategy.name}'.")
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        ctx = FitContext(cfg=cfg, model_path=model_path, tokenizer=tokenizer, labels=LabelMap((target_name,)),
                         train_texts=cache_texts(train_data.texts, train_data.pairs),
                         eval_texts=cache_texts(eval_data.texts, eval_data.pairs), train_enc=train_enc,
                         eval_enc=eval_enc, max_length=max_length, run_dir=run.dir, tracker=run.tracker,
                         deadline=None if budget_s is None else Deadline(started, budget_s),
                         objective=Regression(scaling, target_name),
                         pair_sep_id=pair_separator(tokenizer, train_data) if not bi_encoder else None)
        ctx.resume = run.resume
        strategy = resolve_head_strategy(ctx, write=run.main)
        info: dict[str, Any] = {"target": {"name": target_name, "mean": scaling.mean, "std": scaling.std},
                                "text_columns": list(train_data.columns), "pair_input": train_data.pairs is not None}
        if bi_encoder:
            model, predicted, outcome, pair_info = fit_biencoder(ctx, train_data, eval_data)
            info.update(pair_info)
            if not run.main:
                return RunResult(run_dir=run.dir, metrics={}, warnings=warnings)
        else:
            fitted = fit_and_export(ctx, strategy)
            if fitted is None:  # another process of a data-parallel run: the main one writes everything
                return RunResult(run_dir=run.dir, metrics={}, warnings=warnings)
            model, logits, outcome = fitted  # metrics below are of exactly what is saved
            predicted = scaling.unscale(logits.float().reshape(-1).numpy())
        model.info = info
        full = regression_metrics(eval_data.targets, predicted)
        with atomic_directory(run.dir / "model") as tmp:
            model.save_pretrained(tmp, tokenizer)
        write_predictions(run.dir / "eval_predictions.jsonl", eval_data, predicted)
        metrics: dict[str, Any] = {**full, "eval_source": eval_data.source, "train_examples": len(train_data),
                                   "target": {"mean": scaling.mean, "std": scaling.std},
                                   "pair_encoding": None if train_data.pairs is None else "bi" if bi_encoder else "cross",
                                   **loop_summary(ctx, outcome, strategy)}
        run.finish(metrics, {k: round(float(full[k]), 4) for k in ("spearman", "pearson", "rmse", "mae", "r2")})
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=warnings)


def write_predictions(path: Path, data: ScoredTexts, predicted: np.ndarray) -> None:
    lines = []
    for i, text in enumerate(data.texts):
        row: dict[str, Any] = {"text": text}
        if data.pairs is not None:
            row["text_pair"] = data.pairs[i]
        row.update(target=float(data.targets[i]), predicted=round(float(predicted[i]), 6))
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    atomic_write_text(path, "".join(lines))


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None = None, label_column: str | None = None,
                   batch_size: int = 64, precision: str | None = None) -> dict[str, Any]:
    """Metrics of a saved regression model on any file with its text column(s) and a numeric target."""
    from fmkit.inference.regression import RegressionPredictor

    predictor = RegressionPredictor.load(model_dir, batch_size=batch_size,
                                         precision=None if precision in (None, "model") else precision)
    columns = text_column or ",".join(predictor.text_columns) or None
    examples = read_scored(data, columns, label_column or predictor.target_name)
    if (examples.pairs is not None) != predictor.pair_input:
        want = "two text columns (a pair)" if predictor.pair_input else "one text column"
        raise DataError(f"{data}: this model reads {want}; name the column(s) with --text-column A,B.")
    predicted = predictor.values(examples.texts, examples.pairs)
    return regression_metrics(examples.targets, predicted)


def print_result(result: RunResult) -> None:
    m = result.metrics
    print(f"run: {result.run_dir}")
    print(f"{format_regression(m)}  on {m['num_examples']} eval examples ({m['train_seconds']:.0f}s, "
          f"{m['train_examples_per_second']:.0f} examples/s)")
    print(f"model saved to {result.run_dir / 'model'}", file=sys.stdout)
