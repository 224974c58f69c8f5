"""`--strategy auto`: choose a strategy from the examples per class and the time budget.

Throughput is measured here, on this machine, on the run's own first batches (a few
forward+backward steps of the real model, and a few forward-only batches), never assumed, as
padded tokens per second. Each strategy's work is counted in the same unit from the batches it
will really run (length-grouped training batches, length-sorted evaluation batches, the pairs
fewshot draws), which gives its wall time; the rule then takes the first strategy in order of
expected accuracy for this much data that fits the budget:

  <= FEWSHOT_MAX_PER_CLASS examples per class:  fewshot, linear-probe, zeroshot
  more:                                         full, lora, linear-probe, zeroshot

"Examples per class" is the mean, rows / classes: how much data there is to fine-tune on. A median would
call an imbalanced set few-shot (4,478 intents whose largest class has 3,309 rows: median 17) and never
offer `full`; the smallest and largest class and their ratio are recorded and named in the reason.

The budget is a deadline for the whole command: what loading, tokenizing and these measurements
already spent is taken off it before choosing, and the chosen strategy's loop then keeps the rest
(training/budget.py), stopping early if this machine turns out slower than measured.

The choice, the measurements, the estimates and the reason go to RUN_DIR/strategy.json.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from fmkit.config.schema import StrategyConfig, TrainConfig
from fmkit.data.tasks.classification import TRAIN_PAD_MULTIPLE, LengthGroupedBatches, make_loader
from fmkit.data.tasks.pairs import pairs_per_example, sample_pairs
from fmkit.errors import ConfigError
from fmkit.models.cpu_dropout import fast_cpu_dropout
from fmkit.models.losses import classification_loss
from fmkit.models.precision import FrozenLinearWeightsInBf16, bf16_linear_weights, inference_autocast
from fmkit.models.strategies import build_strategy
from fmkit.training.freezing import freeze_word_embeddings
from fmkit.training.precision import resolve_mixed_precision
from fmkit.training.state import build_optimizer
from fmkit.workflows.strategy_runs import FitContext, eval_precision, new_classifier

FEWSHOT_MAX_PER_CLASS = 32
# When LoRA's step was not measured: adapters on every layer back-propagate through all of them, and cost
# about 0.75x full's tokens (loop 0.73-0.77x of full's on banking77/SST-2, BENCHMARKS.md); 0.8 errs on the safe side.
LORA_TIME_FACTOR = 0.8
FIXED_OVERHEAD_S = 5.0  # model load, checkpoints, saving: paid by every strategy that trains


# What `auto` spends when no budget is given: enough for the probe and a good part of `full` on a few
# thousand to tens of thousands of short texts on two cores; `--time-budget none` lifts it.
DEFAULT_AUTO_BUDGET = "10m"


def parse_duration(text: str | None) -> float | None:
    """'90s' / '10m' / '1.5h' / '600' -> seconds; None or 'none' -> no limit."""
    if text is None or text.strip().lower() == "none":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise ConfigError(f"time budget {text!r}: write it like 90s, 10m or 1h.")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def run_budget(strategy: StrategyConfig) -> tuple[float | None, bool]:
    """(seconds, whether that is the default): a budget given wins ('none' = no limit); unset, `auto` gets
    DEFAULT_AUTO_BUDGET and a strategy named explicitly none."""
    if strategy.time_budget is not None:
        return parse_duration(strategy.time_budget), False
    if strategy.name == "auto":
        return parse_duration(DEFAULT_AUTO_BUDGET), True
    return None, False


def announce_default_budget(strategy: StrategyConfig) -> None:
    """Say, once the data is known to be good and before any choice, that auto runs on the default budget."""
    if run_budget(strategy)[1]:
        print(f"note: --strategy auto plans within a {DEFAULT_AUTO_BUDGET} time budget by default "
              "(--time-budget 30m for more, --time-budget none for no limit)", file=sys.stderr)


@dataclass
class Throughput:
    train_tokens_per_s: float     # padded tokens through forward + backward (optimizer-free), all weights trainable
    embed_tokens_per_s: float     # padded tokens through forward only (inference mode, eval precision)
    train_examples_per_s: float   # the same measurements per text, for the record
    embed_examples_per_s: float
    optimizer_step_s: float = 0.0  # gradient clipping + fused AdamW step over every weight, once per step
    lora_train_tokens_per_s: float = 0.0  # the same step with the run's LoRA adapters (0: not measured)
    lora_optimizer_step_s: float = 0.0


@dataclass(frozen=True)
class DataStats:
    """What the rule reads of the training labels (and records in strategy.json)."""

    rows: int
    classes: int
    smallest_class: int
    largest_class: int

    @classmethod
    def of(cls, labels: np.ndarray, num_labels: int) -> DataStats:
        counts = np.bincount(labels, minlength=num_labels)
        present = counts[counts > 0]
        return cls(len(labels), len(present), int(present.min()), int(present.max()))

    @classmethod
    def balanced(cls, per_class: int, classes: int = 2) -> DataStats:
        return cls(per_class * classes, classes, per_class, per_class)

    @property
    def examples_per_class(self) -> float:
        return self.rows / max(1, self.classes)

    @property
    def imbalance(self) -> float:
        return self.largest_class / max(1, self.smallest_class)

    def describe(self) -> str:
        text = f"{self.rows:,} rows in {self.classes} classes ({self.examples_per_class:.4g} per class"
        if self.imbalance >= 2:
            text += (f"; smallest {self.smallest_class:,}, largest {self.largest_class:,}: "
                     f"imbalance {self.imbalance:.0f}x")
        return text + ")"


@dataclass
class Choice:
    strategy: str
    reason: str
    examples_per_class: float
    data: dict[str, Any]
    time_budget_s: float | None
    estimates_s: dict[str, float]
    budget_spent_s: float | None  # of the budget, already gone when choosing (loading, tokenizing, measuring)
    throughput: dict[str, float]
    planned_epochs: float | None = None  # anytime: full trains this many epochs instead of train.epochs
    # What other budgets would have bought on this data and machine (the same rule, the same estimates).
    by_budget: list[dict[str, Any]] = field(default_factory=list)


def time_train_steps(model: torch.nn.Module, loader: Any, cfg: TrainConfig, batches: int,
                     loss_fn: Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor] = classification_loss,
                     ) -> tuple[float, float, float]:
    """(padded tokens/s and texts/s of forward+backward, median seconds of clip + optimizer step) over the first
    `batches` batches after a warm-up one, run as the loop runs them: same loss, precision, dropout kernel,
    optimizer, frozen weights (word embeddings of a large vocabulary; bf16 copies cast once). The optimizer
    step costs the same whatever the batch, so it is timed apart."""
    model.train()
    bf16 = resolve_mixed_precision(cfg.mixed_precision) == "bf16"
    freeze_word_embeddings(model, cfg.freeze_word_embeddings)
    optimizer = build_optimizer(model, cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    seen, tokens, seconds, step_seconds = 0, 0, 0.0, []
    with (fast_cpu_dropout(model, enabled=cfg.fast_cpu_dropout),
          FrozenLinearWeightsInBf16(model, enabled=bf16 and cfg.frozen_weights_bf16)):
        for i, batch in enumerate(loader):
            if i > batches:
                break
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss_fn(logits.float(), batch).backward()
            step_start = time.perf_counter()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i > 0 or len(loader) == 1:
                seen, seconds = seen + len(batch["index"]), seconds + step_start - start
                tokens += batch["input_ids"].numel()
                step_seconds.append(time.perf_counter() - step_start)
    return (tokens / max(seconds, 1e-6), seen / max(seconds, 1e-6),
            float(np.median(step_seconds)) if step_seconds else 0.0)


def measure_throughput(ctx: FitContext, batches: int = 3, lora: bool = True) -> Throughput:
    """Time the real model on the run's first batches (the first batch of each kind is a warm-up): full
    training steps, forward passes, then (if `lora`) the same model with the run's LoRA adapters."""
    model = new_classifier(ctx)
    loader = make_loader(ctx.train_enc, ctx.pad_id, ctx.cfg.train.batch_size, ctx.cfg.train.seed, shuffle=True,
                         group_by_length=False)  # random lengths: a fair sample, not the longest batch first
    train_tokens, train_texts, optimizer_step = time_train_steps(model, loader, ctx.cfg.train, batches,
                                                                 ctx.objective.loss)
    model.eval()
    precision = eval_precision(ctx)
    seen, tokens, seconds = 0, 0, 0.0
    with torch.inference_mode(), bf16_linear_weights(model, enabled=precision == "bf16"):
        for i, batch in enumerate(loader):
            if i > batches:
                break
            start = time.perf_counter()
            with inference_autocast(precision):
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            if i > 0 or len(loader) == 1:
                seen, seconds = seen + len(batch["index"]), seconds + time.perf_counter() - start
                tokens += batch["input_ids"].numel()
    rate = Throughput(train_tokens, tokens / max(seconds, 1e-6), train_texts, seen / max(seconds, 1e-6),
                      optimizer_step)
    if lora:
        # LoRA's step depends on its rank, targets and layers (backward stops below the lowest adapted layer).
        build_strategy("lora", ctx.cfg.strategy).prepare(model)
        rate.lora_train_tokens_per_s, _, rate.lora_optimizer_step_s = time_train_steps(
            model, loader, ctx.cfg.train, batches, ctx.objective.loss)
    return rate


def padded_tokens(lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool, group_by_length: bool = True,
                  multiple: int = 1, per_row: int = 1) -> int:
    """Tokens a pass over `lengths` really computes: every batch padded to its longest (rounded up to `multiple`)."""
    total = 0
    for batch in LengthGroupedBatches(lengths, batch_size, seed, shuffle=shuffle, group_by_length=group_by_length).batches():
        width = int(lengths[batch].max()) if batch else 0
        total += per_row * len(batch) * (-(-width // multiple) * multiple)
    return total


def estimate_seconds(ctx: FitContext, rate: Throughput, full: FullCost | None = None) -> dict[str, float]:
    """Wall time of each strategy on this data at the measured rates (padded tokens of the batches it runs);
    `full`: full_cost(ctx, rate) when the caller has it already (its passes are counted once)."""
    cfg = ctx.cfg
    full = full or full_cost(ctx, rate)
    train_lengths, seed = ctx.train_enc.lengths, cfg.train.seed
    eval_pass, embed_all, epoch_tokens = full.eval_s, full.embed_all_s, full.epoch_tokens
    epochs = cfg.train.epochs
    # LoRA measured (few-shot runs skip it: lora is not a candidate there), else a conservative share of full's.
    lora_rate = rate.lora_train_tokens_per_s or rate.train_tokens_per_s / LORA_TIME_FACTOR
    lora_token_time = epochs * epoch_tokens / lora_rate
    evals = math.ceil(epochs) * eval_pass
    steps = math.ceil(epochs * math.ceil(len(train_lengths) / cfg.train.batch_size) / cfg.train.grad_accum_steps)
    assert ctx.train_enc.labels is not None
    per_example = pairs_per_example(cfg.strategy.fewshot.pairs_per_example, ctx.train_enc.labels)
    pairs = sample_pairs(ctx.train_enc.labels, per_example, seed)
    # Both texts of a pair padded to the longer one, pairs grouped by that length (as make_pair_loader does).
    pair_lengths = np.maximum(train_lengths[pairs.first], train_lengths[pairs.second])
    pair_tokens = padded_tokens(pair_lengths, cfg.strategy.fewshot.batch_size, seed, shuffle=True, per_row=2)
    pair_steps = cfg.strategy.fewshot.epochs * math.ceil(len(pairs) / cfg.strategy.fewshot.batch_size)
    fewshot = (cfg.strategy.fewshot.epochs * pair_tokens / rate.train_tokens_per_s
               + pair_steps * rate.optimizer_step_s + embed_all)
    n_labels = len(ctx.labels)
    label_tokens = n_labels * float(np.median(train_lengths)) if len(train_lengths) else 0.0
    return {
        "zeroshot": round(eval_pass + label_tokens / rate.embed_tokens_per_s + 2.0, 1),
        "linear-probe": round(embed_all + FIXED_OVERHEAD_S, 1),
        "fewshot": round(fewshot + FIXED_OVERHEAD_S, 1),
        "lora": round(full.fixed_s + lora_token_time + steps * rate.lora_optimizer_step_s + evals, 1),
        "full": round(full.seconds(epochs), 1),
    }


@dataclass(frozen=True)
class FullCost:
    """`full`'s estimate in parts, so that a shorter plan can be priced: what every run pays (the probe that
    starts the head, loading, saving), each epoch (steps and optimizer), each evaluation."""

    fixed_s: float
    epoch_s: float
    eval_s: float
    embed_all_s: float = 0.0  # one forward pass over every train and eval text (the probe's, linear-probe's)
    epoch_tokens: float = 0.0  # padded tokens of one training epoch's batches

    def seconds(self, epochs: float, extra_evals: int = 0) -> float:
        return self.fixed_s + epochs * self.epoch_s + (math.ceil(epochs) + extra_evals) * self.eval_s

    def epochs_within(self, seconds: float, extra_evals: int = 1) -> float:
        """The most epochs (in twentieths, evaluations after each whole epoch included) that fit `seconds`."""
        epochs = 0.0
        while self.seconds(epochs + 0.05, extra_evals) <= seconds and epochs < 1000:
            epochs = round(epochs + 0.05, 2)
        return epochs


def full_cost(ctx: FitContext, rate: Throughput) -> FullCost:
    cfg = ctx.cfg
    train_lengths, seed, eval_batch = ctx.train_enc.lengths, cfg.train.seed, cfg.eval.batch_size
    eval_pass = padded_tokens(ctx.eval_enc.lengths, eval_batch, seed, shuffle=False) / rate.embed_tokens_per_s
    embed_all = padded_tokens(train_lengths, eval_batch, seed, shuffle=False) / rate.embed_tokens_per_s + eval_pass
    epoch_tokens = padded_tokens(train_lengths, cfg.train.batch_size, seed, shuffle=True,
                                 group_by_length=cfg.train.group_by_length, multiple=TRAIN_PAD_MULTIPLE)
    steps_per_epoch = math.ceil(len(train_lengths) / cfg.train.batch_size) / cfg.train.grad_accum_steps
    probe = embed_all if cfg.strategy.probe.init else 0.0
    return FullCost(probe + FIXED_OVERHEAD_S, epoch_tokens / rate.train_tokens_per_s
                    + steps_per_epoch * rate.optimizer_step_s, eval_pass, embed_all, epoch_tokens)


def few_shot(data: DataStats) -> bool:
    return data.examples_per_class <= FEWSHOT_MAX_PER_CLASS


class Decision(NamedTuple):
    strategy: str
    reason: str
    epochs: float | None = None  # anytime: `full` planned for this many epochs (what fits), not train.epochs


# The least of an epoch worth planning `full` for when all of it does not fit: below that, the probe stays.
ANYTIME_MIN_EPOCHS = 0.25


def decide(data: DataStats, estimates: dict[str, float], budget_s: float | None, spent_s: float = 0.0,
           full: FullCost | None = None, epochs: float = 3.0) -> Decision:
    """The rule (pure, so it is tested without timing): first preferred strategy that fits what is left of
    the budget once `spent_s` (time the command already took) is taken off. With enough data, when `full`
    does not fit whole, it is planned for the epochs that do fit (its schedule decays within them) as long as
    that is ANYTIME_MIN_EPOCHS or more: it starts from the probe's head, its first evaluation is of that
    start, so the kept model is never worse than the probe (issue 24). That comes before a whole `lora` run:
    on banking77, `full` cut at 120 s (93.2%) beat `lora` run whole (92.9%, 231 s; BENCHMARKS.md)."""
    few = few_shot(data)
    order = ["fewshot", "linear-probe", "zeroshot"] if few else ["full", "lora", "linear-probe", "zeroshot"]
    data_note = (f"{data.describe()}: <= {FEWSHOT_MAX_PER_CLASS} per class, few-shot regime" if few
                 else f"{data.describe()}: > {FEWSHOT_MAX_PER_CLASS} per class, enough to fine-tune")
    limit = math.inf if budget_s is None else budget_s - spent_s
    budget_note = "no time budget" if budget_s is None else f"budget {budget_s:.0f}s"
    if budget_s is not None and spent_s > 0:
        budget_note += f", {limit:.0f}s left after {spent_s:.0f}s of loading and measuring"
    for name in order:
        if not few and name == "lora" and full is not None:
            planned = min(full.epochs_within(limit), epochs)
            if planned >= ANYTIME_MIN_EPOCHS:
                return Decision("full", f"{data_note}; {budget_note}; full for all {epochs:g} epochs (~"
                                f"{estimates['full']:.0f}s) would not fit, so "
                                f"full is planned for {planned:g} epochs (~{full.seconds(planned, 1):.0f}s), its "
                                "probe-initialised start evaluated first and kept unless training beats it", planned)
        if estimates[name] <= limit:
            skipped = [f"{s} (~{estimates[s]:.0f}s)" for s in order[: order.index(name)]]
            why = f"{data_note}; {budget_note}; {name} estimated at {estimates[name]:.0f}s"
            if skipped:
                why += f"; preferred {', '.join(skipped)} would not fit"
            return Decision(name, why)
    return Decision("zeroshot", f"{data_note}; nothing fits the budget of {limit:.0f}s, zeroshot needs no training")


# The budgets `fmkit doctor --budgets` and strategy.json price: the sweep of issue 24 (2, 5, 10, 20 minutes).
SWEEP_BUDGETS_S = (120.0, 300.0, 600.0, 1200.0)


def budget_table(data: DataStats, estimates: dict[str, float], full: FullCost | None, epochs: float,
                 spent_s: float, budgets: tuple[float, ...] = SWEEP_BUDGETS_S) -> list[dict[str, Any]]:
    """For each budget: the strategy `decide` picks, the epochs it plans (full) and its estimated seconds."""
    rows = []
    for budget in budgets:
        name, _, planned = decide(data, estimates, budget, spent_s, full, epochs)
        seconds = full.seconds(planned, 1) if planned is not None and full is not None else estimates[name]
        rows.append({"budget_s": budget, "strategy": name,
                     "epochs": planned if planned is not None else (epochs if name in ("full", "lora") else None),
                     "estimated_s": round(spent_s + seconds, 1)})
    return rows


def format_budget_row(row: dict[str, Any]) -> str:
    what = row["strategy"] + (f" for {row['epochs']:g} epochs" if row["epochs"] is not None else "")
    return f"{row['budget_s'] / 60:g} min: {what} (~{row['estimated_s']:.0f}s)"


def choose_strategy(ctx: FitContext) -> Choice:
    assert ctx.train_enc.labels is not None
    texts = ctx.train_text_labels if ctx.train_text_labels is not None else ctx.train_enc.labels
    data = DataStats.of(texts, len(ctx.labels))
    rate = measure_throughput(ctx, lora=not few_shot(data))  # lora is a candidate only then
    full = full_cost(ctx, rate)
    estimates = estimate_seconds(ctx, rate, full)
    budget = ctx.deadline.budget_s if ctx.deadline is not None else run_budget(ctx.cfg.strategy)[0]
    spent = round(ctx.deadline.elapsed(), 1) if ctx.deadline is not None else None
    anytime = ctx.cfg.strategy.probe.init  # the plan's floor is the probe that starts full's head
    name, reason, planned = decide(data, estimates, budget, spent or 0.0,
                                   full if anytime else None, ctx.cfg.train.epochs)
    data_record = {**asdict(data), "imbalance": round(data.imbalance, 2)}
    table = budget_table(data, estimates, full if anytime else None, ctx.cfg.train.epochs, spent or 0.0)
    return Choice(name, reason, round(data.examples_per_class, 2), data_record, budget, estimates, spent,
                  {k: round(v, 2) for k, v in asdict(rate).items()}, planned_epochs=planned, by_budget=table)


def choice_record(choice: Choice) -> dict[str, Any]:
    return {"requested": "auto", **asdict(choice)}


__all__ = [
    "ANYTIME_MIN_EPOCHS",
    "DEFAULT_AUTO_BUDGET",
    "SWEEP_BUDGETS_S",
    "Choice",
    "DataStats",
    "Decision",
    "FullCost",
    "announce_default_budget",
    "budget_table",
    "choice_record",
    "choose_strategy",
    "decide",
    "estimate_seconds",
    "format_budget_row",
    "full_cost",
    "measure_throughput",
    "parse_duration",
    "run_budget",
]
