"""The part every body + linear-head task shares after its data is read: fit, export, final eval logits.

Regression and multi-label runs (and any task whose model is a TextClassifier with its own Objective) call
`fit_and_export` inside their TaskRun, then compute their own metrics and artifacts from the logits:

    model, logits, outcome = fit_and_export(ctx, strategy)
    metrics = {...task metrics from logits..., **loop_summary(outcome)}
"""

from __future__ import annotations

from typing import Any

import torch

from fmkit.data.tasks.classification import make_loader
from fmkit.models.classifier import TextClassifier, predict_logits
from fmkit.utils.io import atomic_write_json
from fmkit.workflows.strategy_runs import FitContext, FitOutcome, eval_precision, fit


def resolve_head_strategy(ctx: FitContext, default: str = "full", write: bool = True) -> str:
    """`auto` means `default` for these tasks (their anytime ladder is issue 24); strategy.json says so
    (`write`: on the main process only, under data parallel)."""
    requested = ctx.cfg.strategy.name
    strategy = default if requested == "auto" else requested
    reason = "requested explicitly" if requested != "auto" else f"auto: {ctx.objective.task} trains '{default}'"
    if write:
        atomic_write_json(ctx.run_dir / "strategy.json", {"requested": requested, "strategy": strategy,
                                                          "reason": reason})
    ctx.resume = ctx.resume and strategy in ("full", "lora")  # the others re-run in seconds
    return strategy


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
