"""The one training loop. Strategies and tasks plug in through `loss_fn` and `evaluate`; nothing forks it.

Read top to bottom: set up -> (resume) -> for each epoch, for each batch: forward, loss,
backward, step -> every so often evaluate, keep the best, checkpoint, maybe stop early.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar, cast

import torch
from torch import nn

from fmkit.config.schema import TrainConfig
from fmkit.models.cpu_dropout import fast_cpu_dropout
from fmkit.models.precision import FrozenLinearWeightsInBf16
from fmkit.training.budget import StepBudget
from fmkit.training.freezing import freeze_word_embeddings
from fmkit.training.precision import resolve_mixed_precision
from fmkit.training.state import Checkpoints, LoopState, build_optimizer, build_scheduler
from fmkit.training.tracking import Tracker
from fmkit.utils.progress import Progress, format_rate

P = ParamSpec("P")
R = TypeVar("R")
LossFn = Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]  # (model outputs, batch) -> scalar
# Batch keys that are targets or bookkeeping, never model inputs.
NON_INPUT_KEYS = frozenset({"labels", "index", "document_weight"})


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """What the model's forward() receives: the batch minus labels and bookkeeping keys."""
    return {k: v for k, v in batch.items() if k not in NON_INPUT_KEYS and not k.startswith("_")}


def batch_size_of(batch: dict[str, Any]) -> int:
    return int(batch["index"].shape[0]) if "index" in batch else int(next(iter(batch.values())).shape[0])
EvaluateFn = Callable[[nn.Module], dict[str, Any]]


@dataclass
class LoopResult:
    steps: int
    epochs_completed: float
    best_step: int | None
    best_metrics: dict[str, Any]
    stopped_early: bool
    train_seconds: float
    examples_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)
    planned_steps: int = 0
    stop_reason: str = "planned steps done"  # or early stopping, or what the time budget cut
    budget: dict[str, Any] | None = None      # StepBudget.record(): planned vs run, measured throughput
    frozen: str | None = None                 # what training/freezing.py kept fixed, if anything


def agreed(accelerator: Any, stop: bool) -> bool:
    """One decision for every process (clocks differ): a process that stops alone would leave the others
    waiting for its gradients."""
    if accelerator.num_processes == 1:
        return stop
    return bool(accelerator.reduce(torch.tensor([float(stop)], device=accelerator.device), reduction="sum").item() > 0)


def configure_threads(threads: int, num_processes: int = 1) -> None:
    """Use every core by default; split them between data-parallel processes."""
    cores = threads or max(1, (os.cpu_count() or 1) // max(1, num_processes))
    torch.set_num_threads(cores)


def _with_fast_cpu_dropout(loop: Callable[P, R]) -> Callable[P, R]:
    """On CPU, torch's dropout masks cost about a fifth of a bf16 step: run the loop with cheaper ones
    (same distribution, same RNG) and hand the model back exactly as it came."""

    @functools.wraps(loop)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        model = cast(nn.Module, args[0] if args else kwargs["model"])
        cfg = cast(TrainConfig, kwargs["cfg"])
        # The model is still on the CPU here (accelerate moves it later): ask where it will train.
        on_cpu = getattr(getattr(kwargs.get("accelerator"), "device", None), "type", "cpu") == "cpu"
        with fast_cpu_dropout(model, enabled=cfg.fast_cpu_dropout and on_cpu):
            return loop(*args, **kwargs)

    return run


@_with_fast_cpu_dropout
def train_loop(
    model: nn.Module,
    loader: torch.utils.data.DataLoader[Any],
    *,
    cfg: TrainConfig,
    loss_fn: LossFn,
    evaluate: EvaluateFn,
    primary_metric: str,
    checkpoints: Checkpoints,
    higher_is_better: bool = True,
    tracker: Tracker,
    accelerator: Any,
    resume: bool = False,
    budget: StepBudget | None = None,
    evaluate_first: bool = False,
) -> LoopResult:
    # --- set up ---------------------------------------------------------------------------------
    sampler: Any = loader.batch_sampler  # ours: deterministic in (seed, epoch), so resume can skip batches
    # Per process: under data parallel each one sees its shard (accelerate evens out the last round).
    batches_per_epoch = math.ceil(len(loader) / accelerator.num_processes)
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.grad_accum_steps))
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    num_epochs = math.ceil(cfg.epochs)
    eval_every = cfg.eval_every_steps or steps_per_epoch

    # Before the optimizer exists, so a frozen matrix gets neither a gradient buffer nor AdamW state.
    frozen_note = freeze_word_embeddings(model, cfg.freeze_word_embeddings)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, total_steps, cfg.warmup_ratio)
    model, optimizer, prepared_loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    unwrapped = accelerator.unwrap_model(model)

    state = LoopState()
    if resume:
        restored = checkpoints.load_last(accelerator)
        if restored is not None:
            state = restored
            rewind = getattr(tracker, "rewind", None)  # drop records of the steps about to be replayed
            if rewind is not None:
                rewind(state.step)

    history: list[dict[str, Any]] = []
    stopped_early = stopped_by_budget = False
    last_eval_step: int | None = None

    def timed(kind: Literal["eval", "checkpoint"]) -> AbstractContextManager[None]:
        """Evaluations and checkpoints, timed for the budget's projection (nothing without a budget)."""
        return budget.measure(kind) if budget is not None else nullcontext()
    # Frozen weights (LoRA's base) are cast to bf16 once, not at every step; evaluations and checkpoints
    # see the fp32 originals. Applied after resume so checkpoints only ever hold fp32.
    frozen_bf16 = FrozenLinearWeightsInBf16(
        unwrapped, enabled=cfg.frozen_weights_bf16 and getattr(accelerator, "mixed_precision", "no") == "bf16")

    # A bar on a terminal, periodic plain lines in a log; a strategy's phase (pairs, probe) names its own.
    progress = Progress(getattr(tracker, "phase", "train"), total=total_steps, unit="steps", initial=state.step,
                        enabled=cfg.progress and accelerator.is_main_process)

    window_start = time.perf_counter()  # bound before run_evaluation (which shifts it); reset when training starts

    def evaluate_and_checkpoint() -> bool:
        """Evaluate, keep the best weights, checkpoint; return True when early stopping says stop."""
        nonlocal window_start, last_eval_step
        eval_start = time.perf_counter()
        with timed("eval"):
            metrics = evaluate(unwrapped)
        last_eval_step = state.step
        eval_time = time.perf_counter() - eval_start
        state.eval_seconds += eval_time
        window_start += eval_time  # the running examples/s measures training only
        checkpoint_start = time.perf_counter()
        score = float(metrics[primary_metric])
        # RMSE, MAE, a loss: smaller is better, and early stopping and the kept weights must go by that.
        improved = state.best_metric is None or (score > state.best_metric if higher_is_better
                                                 else score < state.best_metric)
        if improved:
            state.best_metric, state.best_step = score, state.step
            state.best_metrics = {**metrics, "epoch": round(state.step / steps_per_epoch, 3)}
            state.evals_without_improvement = 0
            if accelerator.is_main_process:
                with timed("checkpoint"):
                    checkpoints.save_best(unwrapped, state)
        else:
            state.evals_without_improvement += 1
        scalars = {f"eval_{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        record = {"epoch": round(state.step / steps_per_epoch, 3), **scalars}
        history.append({"kind": "eval", "step": state.step, **record})
        tracker.log(state.step, record, "eval")
        progress.write(f"step {state.step}: {primary_metric}={score:.4f}" + (" (best)" if improved else ""))
        with timed("checkpoint"):
            checkpoints.save_last(accelerator, state)
        checkpoint_time = time.perf_counter() - checkpoint_start
        state.checkpoint_seconds += checkpoint_time
        window_start += checkpoint_time
        patience = cfg.early_stopping_patience
        return patience > 0 and state.evals_without_improvement >= patience

    def run_evaluation() -> bool:
        with frozen_bf16.fp32():  # evaluation runs in its own precision; checkpoints hold fp32
            return evaluate_and_checkpoint()

    # --- train ----------------------------------------------------------------------------------
    model.train()
    window_loss, window_batches, window_examples, window_start = 0.0, 0, 0, time.perf_counter()
    run_start = time.perf_counter() - state.train_seconds
    done = state.step >= total_steps
    if budget is not None:
        budget.start()
    at_step_start = True  # the next batch begins an optimizer step (several batches under accumulation)
    with frozen_bf16:
        if evaluate_first and state.step == 0 and last_eval_step is None:
            # The starting weights are a candidate too (auto's anytime plan: a probe-initialised head), so the
            # kept model is never worse than where training started, however early the budget cuts it.
            run_evaluation()
        for epoch in range(state.epoch, num_epochs):
            if done or stopped_early:
                break
            state.epoch = epoch
            sampler.set_epoch(epoch)
            if hasattr(prepared_loader, "set_epoch"):
                # Accelerate's loader re-applies its own pass counter to the sampler at each iter(); after a resume that
                # counter restarts at 0, so set it too or later epochs would replay epoch 0's order.
                prepared_loader.set_epoch(epoch)
            epoch_loader = prepared_loader
            if state.batches_in_epoch:
                # Resuming mid-epoch: the order is the same as before the interruption; skip what was seen.
                epoch_loader = accelerator.skip_first_batches(prepared_loader, state.batches_in_epoch)
            for batch in epoch_loader:
                if at_step_start and budget is not None and agreed(accelerator, budget.should_stop()):
                    stopped_by_budget = done = True  # the next step would not leave time to finish
                    break
                at_step_start = False
                with accelerator.accumulate(model):
                    outputs = model(**model_inputs(batch))
                    loss = loss_fn(outputs, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                state.batches_in_epoch += 1
                n = batch_size_of(batch) * accelerator.num_processes
                state.examples_seen += n
                window_examples += n
                window_loss += float(loss.detach())
                window_batches += 1
                if not accelerator.sync_gradients:
                    continue

                # One optimizer step done.
                at_step_start = True
                if budget is not None:
                    budget.step_done()
                state.step += 1
                state.train_seconds = time.perf_counter() - run_start
                if state.step % 10 == 0 or state.step == total_steps:
                    elapsed = time.perf_counter() - window_start
                    record = {
                        "loss": window_loss / max(1, window_batches),
                        "learning_rate": scheduler.get_last_lr()[0],
                        "examples_per_second": window_examples / max(elapsed, 1e-9),
                        "epoch": round(state.step / steps_per_epoch, 3),
                    }
                    history.append({"kind": "train", "step": state.step, **record})
                    tracker.log(state.step, record, "train")
                    progress.status(f"epoch {record['epoch']:g}", f"loss {record['loss']:.4f}",
                                    format_rate(record["examples_per_second"], "examples"))
                    window_loss, window_batches, window_examples, window_start = 0.0, 0, 0, time.perf_counter()
                progress.update(1)

                end_of_epoch = state.batches_in_epoch >= batches_per_epoch
                if state.step >= total_steps:
                    done = True
                if done or state.step % eval_every == 0 or (end_of_epoch and not cfg.eval_every_steps):
                    if end_of_epoch:
                        state.epoch, state.batches_in_epoch = epoch + 1, 0
                    if run_evaluation():
                        stopped_early = True
                elif cfg.checkpoint_every_steps and state.step % cfg.checkpoint_every_steps == 0:
                    checkpoint_start = time.perf_counter()
                    with frozen_bf16.fp32(), timed("checkpoint"):
                        checkpoints.save_last(accelerator, state)
                    checkpoint_time = time.perf_counter() - checkpoint_start
                    state.checkpoint_seconds += checkpoint_time
                    window_start += checkpoint_time  # examples/s measures training only
                if done or stopped_early:
                    break
            if not stopped_by_budget:
                state.batches_in_epoch = 0
        if stopped_by_budget and last_eval_step != state.step:
            # As early stopping does, the best evaluated weights become the model: evaluate the steps taken
            # since the last evaluation (or at all, if none ran yet) so the saved model is never unevaluated.
            run_evaluation()

    progress.close()
    train_seconds = time.perf_counter() - run_start

    # --- finish: the best evaluated weights become the model --------------------------------------
    accelerator.wait_for_everyone()
    if state.best_step is not None and state.best_step != state.step:
        checkpoints.load_best_into(unwrapped)
    stop_reason = "planned steps done"
    budget_record = None
    if stopped_early:
        stop_reason = f"early stopping: no improvement in {cfg.early_stopping_patience} evaluations"
    if budget is not None:
        if stopped_by_budget:
            stop_reason = budget.stop(state.step, total_steps)
        budget_record = budget.record(state.step, total_steps, steps_per_epoch, stop_reason)
        stop = {"planned_steps": total_steps, "steps": state.step, "budget_s": budget.deadline.budget_s,
                "cut": float(stopped_by_budget)}
        history.append({"kind": "stop", "step": state.step, **stop, "reason": stop_reason})
        tracker.log(state.step, stop, "stop")
    return LoopResult(
        steps=state.step,
        epochs_completed=round(state.step / steps_per_epoch, 3),
        best_step=state.best_step,
        best_metrics=state.best_metrics,
        stopped_early=stopped_early,
        train_seconds=train_seconds,
        examples_per_second=state.examples_seen / max(train_seconds - state.eval_seconds - state.checkpoint_seconds, 1e-9),
        history=history,
        planned_steps=total_steps,
        stop_reason=stop_reason,
        budget=budget_record,
        frozen=frozen_note,
    )


def make_accelerator(cfg: TrainConfig, grad_accum_steps: int | None = None) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # Several processes (`accelerate launch --multi_gpu --num_processes 2`, torchrun) on a machine without a GPU:
    # accelerate only forms a gloo process group on CPU when told cpu=True; otherwise each process trains alone.
    cpu_data_parallel = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    # Accelerate keeps one global state per process; several loops in one process (a strategy's phases,
    # tests) may each want their own precision, so each loop starts from a clean state. The process
    # group (PartialState) is kept, so this is safe under data parallel too.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(
        mixed_precision=resolve_mixed_precision(cfg.mixed_precision),
        gradient_accumulation_steps=grad_accum_steps or cfg.grad_accum_steps,
        step_scheduler_with_optimizer=False,
        cpu=cpu_data_parallel,
        # Encoders carry weights a task never uses (BERT's pooler under mean pooling, frozen layers' neighbours):
        # DDP must skip them instead of waiting forever for their gradients. No effect in a single process.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


__all__ = ["LoopResult", "configure_threads", "make_accelerator", "train_loop"]


