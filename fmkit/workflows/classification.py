"""Text classification runs: train, evaluate a saved model, and the pre-flight doctor."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.data.fingerprint import fingerprint
from fmkit.data.label_sets import (
    UNKNOWN_LABEL_FLAGS,
    label_set_difference,
    multilabel_hint,
    shown_counts,
    unknown_labels_message,
)
from fmkit.data.labeled import LabeledTexts, read_labeled
from fmkit.data.long_text import EncodedDocuments, LongTextPolicy, aggregate_probabilities
from fmkit.data.tasks.classification import (
    LabelMap,
    class_weights,
)
from fmkit.data.validate import stratified_split, validate_classification
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.abstention import abstention_metrics, tune_abstain_threshold
from fmkit.evaluation.artifacts import write_evaluation, write_predictions
from fmkit.evaluation.metrics import UNKNOWN_LABEL, classification_metrics, headline
from fmkit.training import LoopResult
from fmkit.training.budget import Deadline
from fmkit.utils.clock import command_started
from fmkit.utils.io import atomic_directory, atomic_write_json
from fmkit.workflows.auto import announce_default_budget, choice_record, choose_strategy, run_budget
from fmkit.workflows.head_task import fit_and_export, loop_summary
from fmkit.workflows.long_documents import (
    cache_keys,
    encode_split,
    long_text_facts,
    long_text_policy,
    text_objective,
)
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import FitContext
from fmkit.workflows.task_run import TaskRun, cache_texts, load_backbone, warn


def load_datasets(cfg: RunConfig, unseen_eval_labels: Literal["error", "allow"] = "error"
                  ) -> tuple[LabeledTexts, LabeledTexts, list[str]]:
    """Read, validate and (without an eval file) split the data. Raises DataError before anything is written.

    `unseen_eval_labels` "allow" (doctor): eval labels absent from training are the caller's to report."""
    if cfg.data.train is None:
        raise DataError("No training data: pass --data FILE (CSV, TSV, JSONL or Parquet with text and label columns).")
    train = read_labeled(cfg.data.train, cfg.data.text_column, cfg.data.label_column)
    evaluation = None
    if cfg.data.eval is not None:
        # A pair model needs pairs in the eval file too: it is read with the training file's two text columns.
        # A single text column is found in each file on its own (SST-2's train and dev name it differently).
        columns = cfg.data.text_column or (",".join(train.columns) if train.pairs is not None else None)
        evaluation = read_labeled(cfg.data.eval, columns, cfg.data.label_column)
    report = validate_classification(train.examples(), evaluation.examples() if evaluation is not None else None,
                                     unseen_eval_labels=unseen_eval_labels)
    if evaluation is None:
        train, evaluation = stratified_split(train, cfg.data.eval_fraction, cfg.train.seed)
    return train, evaluation, report.warnings


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    """Fine-tune a classifier as `cfg` says and write a complete run directory.

    `strategy.time_budget` is a deadline for the whole command, from its start (the CLI's or the API's
    entry) to the saved model and report: the loop stops in time and strategy.json says what was cut.
    """
    started = command_started()
    budget_s, _ = run_budget(cfg.strategy)
    deadline = None if budget_s is None else Deadline(started, budget_s)
    train_data, eval_data, warnings = load_datasets(cfg)
    for message in warnings:
        warn(message)
    if train_data.pairs is not None and cfg.strategy.name in PAIR_UNSUITED:
        raise ConfigError(f"--strategy {cfg.strategy.name} compares single texts with each other or with label "
                          "names; a text-pair classifier trains with full, lora or linear-probe.")
    policy = long_text_policy(cfg.data, pairs=train_data.pairs is not None)
    model_path, tokenizer, max_length = load_backbone(cfg, texts=[*train_data.texts, *(train_data.pairs or [])],
                                                      warnings=warnings)
    labels = LabelMap.from_labels(train_data.labels)
    # data.long_text: one row per text, or (chunk) one row per window of a text, each with its text's label.
    train_docs = encode_split(tokenizer, train_data, max_length, policy, labels)
    eval_docs = encode_split(tokenizer, eval_data, max_length, policy, labels)
    train_enc, eval_enc = train_docs.rows, eval_docs.rows
    eval_labels = labels.encode(eval_data.labels, eval_data.source)  # one per eval text, however many rows

    data_info = {"train": fingerprint(train_data, cfg.data.train), "eval": fingerprint(eval_data, cfg.data.eval),
                 "eval_is_split_of_train": cfg.data.eval is None, "max_length": max_length, "warnings": warnings,
                 **long_text_facts(policy, train_docs, eval_docs, max_length)}
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite, started=started) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        # Class frequencies of the texts (a chunked text's windows already share one text's weight).
        weights = (class_weights(labels.encode(train_data.labels, train_data.source), len(labels))
                   if cfg.task.class_weights == "auto" else None)
        ctx = FitContext(cfg=run.cfg, model_path=model_path, tokenizer=tokenizer, labels=labels,
                         train_texts=cache_keys(policy, train_docs, cache_texts(train_data.texts, train_data.pairs)),
                         eval_texts=cache_keys(policy, eval_docs, cache_texts(eval_data.texts, eval_data.pairs)),
                         train_enc=train_enc, eval_enc=eval_enc, max_length=max_length, run_dir=run.dir,
                         tracker=run.tracker, class_weights=weights, deadline=deadline,
                         pair_sep_id=tokenizer.sep_token_id if train_data.pairs is not None else None,
                         objective=text_objective(policy, labels, weights, train_docs, eval_docs, eval_labels),
                         train_text_labels=labels.encode(train_data.labels, train_data.source) if policy.chunked else None)
        strategy_name = resolve_strategy(ctx, run.resume)
        ctx.resume = run.resume and strategy_name in ("full", "lora")  # the others re-run in seconds
        fitted = fit_and_export(ctx, strategy_name)
        if fitted is None:  # another process of a data-parallel run: the main one evaluates and writes
            return RunResult(run_dir=run.dir, metrics={}, warnings=warnings)
        # Final metrics of exactly the model that is saved (LoRA: merged), so `fmkit eval` reproduces them.
        model, logits, outcome = fitted
        if train_data.pairs is not None:
            model.info = {"pair_input": True, "text_columns": list(train_data.columns)}
        model.info = {**model.info, "long_text": policy.to_meta()}  # predict, serve and export read it from fmkit.json
        probs = document_probabilities(torch.softmax(logits, dim=-1).numpy(), eval_docs, policy)
        full = classification_metrics(eval_labels, probs.argmax(1), labels.labels)
        metrics: dict[str, Any] = {
            **headline(full), "per_class": full["per_class"], "labels": full["labels"],
            "confusion_matrix": full["confusion_matrix"], "eval_source": eval_data.source,
            "train_examples": len(train_data), **loop_summary(ctx, outcome, strategy_name),
            "peak_memory_mb": peak_memory_mb(),
        }
        abstention = tune_abstention(cfg.eval.target_precision, np.asarray(eval_labels), probs, model)
        if abstention is not None:
            metrics["abstention"] = abstention
        budget_record = record_budget(run.dir, outcome.result)
        if budget_record is not None:
            metrics["budget"] = budget_record
        with atomic_directory(run.dir / "model") as tmp:
            model.save_pretrained(tmp, tokenizer)
        write_evaluation(run.dir, full)
        write_predictions(run.dir / "eval_predictions.jsonl", eval_data.texts, eval_data.labels, probs, labels.labels)
        if budget_record is not None:
            # To here: what is left is writing metrics.json and the process exit.
            budget_record["wall_seconds"] = round(time.perf_counter() - started, 2)
            update_strategy_record(run.dir, {"budget": budget_record})
        run.finish(metrics, headline(metrics))
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=warnings)


PAIR_UNSUITED = ("fewshot", "zeroshot")


def document_probabilities(row_probs: np.ndarray, docs: EncodedDocuments, policy: LongTextPolicy) -> np.ndarray:
    """One distribution per text: the rows themselves, or (chunk) its windows' aggregated."""
    return aggregate_probabilities(row_probs, docs.document, docs.documents, policy.aggregate)


def resolve_strategy(ctx: FitContext, resume: bool) -> str:
    """The strategy this run uses; `auto` measures and decides, and RUN_DIR/strategy.json says why."""
    record_path = ctx.run_dir / "strategy.json"
    requested = ctx.cfg.strategy.name
    if resume and record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        follow_plan(ctx, record.get("planned_epochs"))  # a resumed anytime run keeps its plan
        return str(record["strategy"])
    pairs = ctx.pair_sep_id is not None
    if requested != "auto":
        atomic_write_json(record_path, {"requested": requested, "strategy": requested, "reason": "requested explicitly"})
        return requested
    if pairs:  # auto's candidates include fewshot and zeroshot, which read single texts
        atomic_write_json(record_path, {"requested": "auto", "strategy": "full",
                                        "reason": "auto: text pairs are fine-tuned as a cross-encoder ('full')"})
        return "full"
    announce_default_budget(ctx.cfg.strategy)
    choice = choose_strategy(ctx)
    atomic_write_json(record_path, choice_record(choice))
    print(f"strategy: {choice.strategy} ({choice.reason})", file=sys.stderr)
    follow_plan(ctx, choice.planned_epochs)
    return choice.strategy


def follow_plan(ctx: FitContext, planned_epochs: float | None) -> None:
    """auto's anytime plan: `full` for the epochs that fit the budget (its schedule decays within them), its
    starting point evaluated first so the saved model is never worse than the probe."""
    if planned_epochs is None:
        return
    ctx.cfg = ctx.cfg.model_copy(update={"train": ctx.cfg.train.model_copy(update={"epochs": planned_epochs})})
    ctx.evaluate_start = True


def record_budget(run_dir: Path, result: LoopResult | None) -> dict[str, Any] | None:
    """What the time budget allowed and cut, with measured vs estimated throughput (None without a budget
    or a loop); also said on the console, since a cut run is not the run that was asked for."""
    if result is None or result.budget is None:
        return None
    record = {**result.budget, "examples_per_second": round(result.examples_per_second, 2)}
    choice = read_strategy_record(run_dir)
    if "estimates_s" in choice:  # auto measured and estimated (text pairs go to full without measuring)
        record["estimated_seconds"] = choice["estimates_s"][choice["strategy"]]
        record["estimated_examples_per_second"] = choice["throughput"]["train_examples_per_s"]
    if record["cut"]:
        print(f"{record['stop_reason']} (budget {record['budget_s']:g}s; each step took "
              f"{record['step_seconds']['last_steps']}s at the end, the best evaluated weights are kept)",
              file=sys.stderr)
    return record


def read_strategy_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "strategy.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}


def update_strategy_record(run_dir: Path, fields: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "strategy.json", {**read_strategy_record(run_dir), **fields})


def tune_abstention(target_precision: float | None, truth: np.ndarray, probs: np.ndarray, model: Any
                    ) -> dict[str, Any] | None:
    """eval.target_precision: tune the abstain threshold on the eval split's probabilities and keep it in the
    model's fmkit.json (none is kept when no threshold reaches the target); what was found, for metrics.json."""
    if target_precision is None:
        return None
    tuning = tune_abstain_threshold(probs.argmax(1) == truth, probs.max(1), target_precision)
    if tuning.threshold is None:
        warn(tuning.summary())
    else:
        print(tuning.summary(), file=sys.stderr)
        model.info = {**model.info, "abstain_threshold": tuning.threshold,
                      "abstain_target_precision": target_precision}
    return tuning.as_dict()


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None = None, label_column: str | None = None,
                   batch_size: int = 64, precision: str | None = None, unknown_labels: str = "error") -> dict[str, Any]:
    """Metrics of a saved model on any labelled file.

    `precision` (auto|fp32|bf16): of the forward pass; None or "model": the one the model records.
    `unknown_labels`, for rows whose label the model was never trained on: "error" refuses the file (naming
    the labels and the fix), "wrong" counts those rows as errors (the numbers for the whole file), "skip"
    leaves them out; metrics["unknown_labels"] records the policy and the counts. A model with an abstain
    threshold also gets metrics["abstention"]: coverage and the accuracy on the rows it answers.
    """
    from fmkit.inference.predictor import Predictor

    if unknown_labels not in UNKNOWN_LABEL_FLAGS:
        raise ConfigError(f"--unknown-labels {unknown_labels}: choose one of {', '.join(UNKNOWN_LABEL_FLAGS)}.")
    predictor = Predictor.load(model_dir, batch_size=batch_size,
                               precision=None if precision in (None, "model") else precision)
    examples = read_labeled(data, text_column or ",".join(predictor.text_columns) or None, label_column)
    in_file = len(examples)
    difference = label_set_difference(predictor.labels, examples.labels)
    if difference.unknown and unknown_labels == "error":
        raise DataError(unknown_labels_message(difference, str(data), in_file))
    if (examples.pairs is not None) != predictor.pair_input:
        want = "two text columns (a pair)" if predictor.pair_input else "one text column"
        raise DataError(f"{data}: this model reads {want}; name the column(s) with --text-column A,B.")
    if difference.unknown and unknown_labels == "skip":
        examples = examples.subset([i for i, label in enumerate(examples.labels) if label not in difference.unknown])
        if len(examples) == 0:
            raise DataError(f"{data}: every row has a label the model was never trained on; --unknown-labels skip "
                            "leaves nothing to score. Evaluate a model trained on these labels.")
    index = {label: i for i, label in enumerate(predictor.labels)}
    truth = np.asarray([index.get(label, UNKNOWN_LABEL) for label in examples.labels], dtype=np.int64)
    probs = predictor.predict_proba(examples.texts, examples.pairs)
    predicted = probs.argmax(1)
    metrics = classification_metrics(truth, predicted, predictor.labels)
    if difference.unknown:
        metrics["unknown_labels"] = {"policy": unknown_labels, "rows_in_file": in_file, **difference.as_dict()}
    if predictor.abstain_threshold is not None:
        metrics["abstention"] = abstention_metrics(predicted == truth, probs.max(1), predictor.abstain_threshold)
        if unknown_labels == "wrong" and difference.unknown:
            # The rows no answer could get right: how many the model handed off instead of answering wrongly.
            unknown_rows = truth == UNKNOWN_LABEL
            metrics["abstention"]["unknown_label_rows_abstained"] = int(
                (probs.max(1)[unknown_rows] < predictor.abstain_threshold).sum())
    return metrics


def peak_memory_mb() -> float:
    import resource

    # ru_maxrss is in kilobytes on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def doctor_data(cfg: RunConfig) -> dict[str, Any]:
    """What `fmkit doctor` reads of classification data (workflows/doctor.py adds the model and token checks)."""
    train_data, eval_data, warnings = load_datasets(cfg, unseen_eval_labels="allow")
    facts: dict[str, Any] = {
        "train": {"source": train_data.source, "rows": len(train_data), "class_counts": train_data.class_counts()},
        "eval": {"source": eval_data.source, "rows": len(eval_data), "class_counts": eval_data.class_counts()},
        "eval_is_split_of_train": cfg.data.eval is None, "warnings": warnings,
        "texts": train_data.texts, "pairs": train_data.pairs,
    }
    if cfg.data.eval is not None:
        # Listed rather than refused: the user may be checking a test file for `fmkit eval --unknown-labels`.
        difference = label_set_difference(train_data.labels, eval_data.labels)
        facts["label_sets"] = {"eval_only": difference.unknown, "eval_only_rows": difference.unknown_rows,
                               "train_only": difference.absent,
                               "combined": {label: list(parts) for label, parts in difference.combined.items()}}
        if difference.unknown:
            hint = multilabel_hint(difference)
            warnings.append(f"{eval_data.source}: {len(difference.unknown)} label(s) on {difference.unknown_rows} "
                            f"row(s) never appear in the training data: {shown_counts(difference.unknown)}. "
                            "`fmkit train --eval` refuses them; `fmkit eval --unknown-labels wrong|skip` scores a "
                            f"model on this file anyway.{' ' + hint if hint else ''}")
    return facts


def doctor(cfg: RunConfig) -> dict[str, Any]:
    """`fmkit doctor` for classification data (kept for callers of the old name)."""
    from fmkit.workflows.doctor import doctor as task_doctor

    return task_doctor(cfg)
