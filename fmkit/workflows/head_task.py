"""The part every body + linear-head task shares after its data is read: fit, export, final eval logits.

Regression and multi-label runs (and any task whose model is a TextClassifier with its own Objective) call
`fit_and_export` inside their TaskRun, then compute their own metrics and artifacts from the logits:

    model, logits, outcome = fit_and_export(ctx, strategy)
    metrics = {...task metrics from logits..., **loop_summary(outcome)}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from fmkit.data.tasks.classification import make_loader
from fmkit.models.classifier import TextClassifier, predict_logits
from fmkit.utils.io import atomic_write_json
from fmkit.workflows import auto
from fmkit.workflows.strategy_runs import FitContext, FitOutcome, eval_precision, fit


def resolve_head_strategy(ctx: FitContext, default: str = "full", write: bool = True) -> str:
    """The strategy to run and why, in strategy.json (`write`: on the main process only, under data parallel).

    `auto` means `default` (full) planned within the time budget, as classification's anytime plan: full
    for the epochs that fit (its schedule decays within them), its probe-initialised start evaluated first so
    the saved model is never worse than the probe; when not even ANYTIME_MIN_EPOCHS fit, the probe alone."""
    requested = ctx.cfg.strategy.name
    record: dict[str, Any] = {"requested": requested, "strategy": requested, "reason": "requested explicitly"}
    if requested == "auto":
        record = {"requested": "auto", **plan_within_budget(ctx, default)}
    if write:
        atomic_write_json(ctx.run_dir / "strategy.json", record)
    strategy = str(record["strategy"])
    ctx.resume = ctx.resume and strategy in ("full", "lora")  # the others re-run in seconds
    return strategy


def plan_within_budget(ctx: FitContext, default: str) -> dict[str, Any]:
    """What auto runs for a body + head task, with the measurements behind it."""
    task = ctx.objective.task
    if ctx.deadline is None or default != "full" or not ctx.cfg.strategy.probe.init:
        why = "no time budget" if ctx.deadline is None else "no probe-initialised start to fall back on"
        return {"strategy": default, "reason": f"auto: {task} trains '{default}' ({why})"}
    auto.announce_default_budget(ctx.cfg.strategy)
    rate = auto.measure_throughput(ctx, lora=False)
    full = auto.full_cost(ctx, rate)
    spent = ctx.deadline.elapsed()
    budget = ctx.deadline.budget_s
    epochs = ctx.cfg.train.epochs
    planned = min(full.epochs_within(budget - spent), epochs)
    record: dict[str, Any] = {"time_budget_s": budget, "budget_spent_s": round(spent, 1),
                              "estimates_s": {"full": round(full.seconds(epochs), 1)},
                              "throughput": {k: round(v, 2) for k, v in asdict(rate).items()}}
    budget_note = f"budget {budget:.0f}s, {budget - spent:.0f}s left after {spent:.0f}s of loading and measuring"
    if planned < auto.ANYTIME_MIN_EPOCHS:
        return {**record, "strategy": "linear-probe",
                "reason": f"auto: {task}; {budget_note}; not even {auto.ANYTIME_MIN_EPOCHS:g} epochs of full fit, so the "
                          "linear probe alone"}
    ctx.evaluate_start = True
    if planned < epochs:
        ctx.cfg = ctx.cfg.model_copy(update={"train": ctx.cfg.train.model_copy(update={"epochs": planned})})
        what = (f"full for all {epochs:g} epochs (~{full.seconds(epochs):.0f}s) would not fit, so full is planned "
                f"for {planned:g} epochs (~{full.seconds(planned, 1):.0f}s)")
    else:
        what = f"full for {epochs:g} epochs estimated at {full.seconds(epochs, 1):.0f}s"
    return {**record, "strategy": "full", "planned_epochs": planned if planned < epochs else None,
            "reason": f"auto: {task}; {budget_note}; {what}, its probe-initialised start evaluated first and "
                      "kept unless training beats it"}


def fit_and_export(ctx: FitContext, strategy: str) -> tuple[TextClassifier, torch.Tensor, FitOutcome] | None:
    """Train with `strategy`, export (LoRA: merged), and the eval logits of exactly the model that is saved.
    None on the other processes of a data-parallel run, once training is done: the main process saves."""
    outcome = fit(ctx, strategy)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return None
    model = outcome.strategy.export(outcome.model, ctx.run_dir)
    logits = outcome.eval_logits
    if logits is None:
        loader = make_loader(ctx.eval_enc, ctx.pad_id, ctx.cfg.eval.batch_size, ctx.cfg.train.seed, shuffle=False)
        logits = predict_logits(model, loader, len(ctx.eval_enc), eval_precision(ctx))
    return model, logits.float(), outcome


def loop_summary(ctx: FitContext, outcome: FitOutcome, strategy: str) -> dict[str, Any]:
    """What metrics.json says about training, the same keys for every task."""
    result = outcome.result
    return {
        "strategy": strategy, "strategy_details": outcome.details,
        "steps": result.steps if result else 0, "best_step": result.best_step if result else None,
        "epochs_completed": result.epochs_completed if result else 0,
        "stopped_early": result.stopped_early if result else False,
        "stop_reason": result.stop_reason if result else "no training",
        "train_seconds": round(result.train_seconds, 2) if result else 0.0,
        "train_examples_per_second": round(result.examples_per_second, 2) if result else 0.0,
        "eval_precision": eval_precision(ctx),
        "frozen_for_speed": result.frozen if result else None,
    }
