"""How each learning strategy trains a text classifier, every one through THE loop.

`fit(ctx, name)` returns the trained TextClassifier (plus the loop's result); the caller
(workflows/classification.py) evaluates and saves it the same way whatever the strategy.

  full / lora    head initialised from a quick linear probe (strategy.probe.init), then the loop on texts
  linear-probe   frozen encoder -> cached unit vectors -> logistic regression fitted to convergence (seconds)
  fewshot        phase 1: the loop tunes the body on contrastive pairs (cosine loss);
                 phase 2: logistic regression on the tuned vectors (SetFit's head)
  zeroshot       no loop: head rows = label (description) vectors x temperature
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.config.schema import TrainConfig
from fmkit.data.label_descriptions import label_prompts
from fmkit.data.tasks.classification import LabelMap, make_loader
from fmkit.data.tasks.pairs import make_pair_loader, make_vector_loader, pairs_per_example, sample_pairs
from fmkit.data.tokenized import EncodedTexts, encode_texts
from fmkit.models.classifier import TextClassifier, predict_logits
from fmkit.models.heads import ClassificationHead
from fmkit.models.losses import cosine_pair_loss
from fmkit.models.precision import ResolvedPrecision, resolve_inference_precision
from fmkit.models.strategies import EmbeddingHead, PairEncoder, Strategy, build_strategy, zeroshot_head_
from fmkit.models.vector_cache import EmbeddingCache, cache_key, embed_batches
from fmkit.training import Checkpoints, LoopResult, make_accelerator, train_loop
from fmkit.training.budget import AFTER_LOOP_FIXED_S, FORWARD_SHARE, AfterLoop, Deadline, StepBudget, checkpoint_estimate_s
from fmkit.training.memory_checkpoints import MemoryCheckpoints
from fmkit.training.precision import resolve_mixed_precision
from fmkit.training.tracking import PhaseTracker
from fmkit.utils.progress import Progress
from fmkit.workflows.objectives import Objective, SingleLabel

# A head needs a few hundred Adam steps whatever the data size: few examples -> more epochs.
MIN_HEAD_STEPS = 300


@dataclass
class FitContext:
    """Everything a strategy needs, already validated and tokenized by the workflow."""

    cfg: RunConfig
    model_path: Path
    tokenizer: Any
    labels: LabelMap
    train_texts: Sequence[str]
    eval_texts: Sequence[str]
    train_enc: EncodedTexts
    eval_enc: EncodedTexts
    max_length: int
    run_dir: Path
    tracker: Any
    resume: bool = False
    class_weights: torch.Tensor | None = None
    deadline: Deadline | None = None  # strategy.time_budget, counted from the start of the command
    pair_sep_id: int | None = None  # text pairs: the separator token, whose position starts segment 1
    # auto's anytime plan: the probe-initialised start is evaluated (and kept unless training beats it)
    evaluate_start: bool = False
    # What the head predicts (loss, metrics, closed-form fit); None: one label per text, softmax over `labels`.
    objective: Objective = None  # type: ignore[assignment]
    # One label per training text when train_enc's rows are windows of texts (data.long_text=chunk): what auto
    # counts as examples per class.
    train_text_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.objective is None:
            self.objective = SingleLabel(self.labels, self.class_weights)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)


@dataclass
class FitOutcome:
    model: TextClassifier
    strategy: Strategy
    result: LoopResult | None
    eval_logits: torch.Tensor | None = None  # already computed for the final weights: saves a pass
    details: dict[str, Any] = field(default_factory=dict)


# --- shared pieces -----------------------------------------------------------------------------------

def new_classifier(ctx: FitContext) -> TextClassifier:
    cfg = ctx.cfg
    model = TextClassifier.from_backbone(ctx.model_path, list(ctx.objective.outputs), cfg.model.pooling,
                                         cfg.model.dropout, ctx.max_length, cfg.model.trust_remote_code,
                                         task=ctx.objective.task)
    if ctx.pair_sep_id is not None and int(getattr(model.encoder.config, "type_vocab_size", 0) or 0) >= 2:
        model.pair_sep_id = ctx.pair_sep_id  # only encoders pretrained with two segments (BERT, not XLM-R)
    model.precision = cfg.eval.precision  # saved with it: predict runs in what the metrics were measured in
    return model


def eval_precision(ctx: FitContext) -> ResolvedPrecision:
    """Passes behind reported metrics: eval.precision for this machine (the saved model keeps it, so the
    metrics are what `fmkit predict` gives)."""
    return resolve_inference_precision(ctx.cfg.eval.precision)


def train_precision(ctx: FitContext) -> ResolvedPrecision:
    """Vectors that only train a head: the run's training precision (bf16 where native)."""
    return "bf16" if resolve_mixed_precision(ctx.cfg.train.mixed_precision) == "bf16" else "fp32"


@dataclass
class TextVectors:
    """Pooled vectors of some texts and what computing them cost. For the strategies that only fit a head the
    encoder pass is where the time goes, so its throughput, not the head's, is the speed worth reporting."""

    vectors: torch.Tensor
    tokens: int
    seconds: float
    from_cache: bool

    @property
    def texts(self) -> int:
        return int(self.vectors.shape[0])


def text_vectors(ctx: FitContext, model: TextClassifier, enc: EncodedTexts, texts: Sequence[str],
                 cacheable: bool, precision: ResolvedPrecision, name: str) -> TextVectors:
    """Pooled vectors of `texts` under `model`, computed in `precision`; cached on disk when the encoder is
    the untouched backbone. `name` (train, eval, labels) labels the progress lines: `encode train: ...`."""
    start = time.perf_counter()
    tokens = int(enc.lengths.sum())
    cache = EmbeddingCache(enabled=cacheable)
    key = cache_key(ctx.model_path, texts, ctx.max_length, model.pooling, precision, model.pair_sep_id is not None)
    with Progress(f"encode {name}", total=len(enc), unit="texts", enabled=ctx.cfg.train.progress) as progress:
        cached = cache.get(key)
        if cached is not None and cached.shape[0] == len(texts):
            progress.note(f"{len(texts):,} texts from the vector cache")
            return TextVectors(cached, tokens, time.perf_counter() - start, from_cache=True)
        loader = make_loader(enc, ctx.pad_id, ctx.cfg.eval.batch_size, ctx.cfg.train.seed, shuffle=False)
        vectors = embed_batches(model, loader, len(enc), precision, progress)
    seconds = time.perf_counter() - start
    cache.put(key, vectors)
    return TextVectors(vectors, tokens, seconds, from_cache=False)


def encoding_summary(passes: Mapping[str, TextVectors]) -> dict[str, Any]:
    """Throughput of the encoder over the passes that ran it (a cache hit runs no encoder), for metrics.json."""
    ran = [p for p in passes.values() if not p.from_cache]
    seconds = sum(p.seconds for p in ran)
    texts, tokens = sum(p.texts for p in ran), sum(p.tokens for p in ran)
    return {"texts": texts, "tokens": tokens, "seconds": round(seconds, 2),
            "texts_per_second": round(texts / seconds, 2) if seconds > 0 else None,
            "tokens_per_second": round(tokens / seconds, 2) if seconds > 0 else None,
            "from_cache": [name for name, p in passes.items() if p.from_cache]}


def head_on_vectors_result(head: LoopResult, train: TextVectors, encoding: dict[str, Any]) -> LoopResult:
    """The head's result, re-timed as the run the user waited for: the training texts' encoding counts as
    training time, and the speed is the encoder's texts/s (the head's own, ~10^5 examples/s, would say nothing
    about how long the next run takes). All vectors from the cache: no encoder pass, so examples over time."""
    seconds = train.seconds + head.train_seconds
    speed = encoding["texts_per_second"] or train.texts / max(seconds, 1e-9)
    return replace(head, train_seconds=seconds, examples_per_second=speed)


def head_details(head: LoopResult) -> dict[str, Any]:
    return {"head_seconds": round(head.train_seconds, 2), "head_examples_per_second": round(head.examples_per_second, 2)}


def head_train_config(ctx: FitContext, n_train: int) -> TrainConfig:
    """Adam on the head alone: big batches, enough steps for few examples, a handful of evaluations."""
    s = ctx.cfg.strategy
    batch = int(min(1024, max(16, 2 ** round(math.log2(max(1, n_train / 16))))))
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = max(s.probe.epochs, math.ceil(MIN_HEAD_STEPS / steps_per_epoch))
    total = steps_per_epoch * epochs
    return ctx.cfg.train.model_copy(update={
        "epochs": epochs, "batch_size": batch, "grad_accum_steps": 1, "learning_rate": s.probe.learning_rate,
        "head_learning_rate": s.probe.learning_rate, "weight_decay": s.probe.weight_decay, "warmup_ratio": 0.0,
        "max_grad_norm": 0.0, "eval_every_steps": max(1, total // 10), "early_stopping_patience": 0,
        "checkpoint_every_steps": 0, "progress": False, "mixed_precision": "no",
    })


def train_head(ctx: FitContext, head: ClassificationHead, train_vecs: torch.Tensor, eval_vecs: torch.Tensor,
               phase: str) -> LoopResult:
    """The objective's loss on cached vectors through the loop; `head` ends with the best evaluated weights."""
    assert ctx.train_enc.labels is not None and ctx.eval_enc.labels is not None
    train_cfg = head_train_config(ctx, len(train_vecs))
    module = EmbeddingHead(head)
    loader = make_vector_loader(train_vecs, ctx.train_enc.labels, train_cfg.batch_size, train_cfg.seed, shuffle=True)
    eval_labels = ctx.eval_enc.labels
    objective = ctx.objective

    def evaluate(current: torch.nn.Module) -> dict[str, Any]:
        current.eval()
        with torch.inference_mode():
            logits = current(embeddings=eval_vecs)
        current.train()
        return objective.metrics(eval_labels, logits)

    # Seconds of work: best weights are kept in memory, nothing resumable is written.
    result = train_loop(module, loader, cfg=train_cfg, loss_fn=objective.loss, evaluate=evaluate,
                        primary_metric=ctx.cfg.primary_metric, higher_is_better=ctx.cfg.higher_is_better,
                        checkpoints=MemoryCheckpoints(),
                        tracker=PhaseTracker(ctx.tracker, phase), accelerator=make_accelerator(train_cfg))
    head.eval()
    return result


def fit_head(ctx: FitContext, head: ClassificationHead, train_vecs: torch.Tensor, eval_vecs: torch.Tensor,
             phase: str) -> tuple[LoopResult, torch.Tensor]:
    """The head as a logistic (or, for regression, ridge) regression on fixed vectors, solved to convergence
    (see training/logistic.py), and its eval logits.

    Unlike `train_head`, nothing is selected on the eval set: the eval metrics are measured once, at the end.
    """
    assert ctx.train_enc.labels is not None and ctx.eval_enc.labels is not None
    tracker = PhaseTracker(ctx.tracker, phase)
    fit_result = ctx.objective.fit_linear(train_vecs, ctx.train_enc.labels, ctx.cfg.strategy.probe.c,
                                          lambda i, loss: tracker.log(i, {"loss": loss}, "train"))
    with torch.no_grad():
        head.linear.weight.copy_(fit_result.weight)
        head.linear.bias.copy_(fit_result.bias)
    head.eval()
    with torch.inference_mode():
        eval_logits = head(eval_vecs)
    metrics = ctx.objective.metrics(ctx.eval_enc.labels, eval_logits)
    metrics["head_iterations"] = fit_result.iterations
    metrics["head_converged"] = fit_result.converged
    tracker.log(fit_result.iterations, {k: v for k, v in metrics.items() if isinstance(v, (int, float))}, "eval")
    seconds = max(fit_result.seconds, 1e-9)
    result = LoopResult(steps=fit_result.iterations, epochs_completed=float(fit_result.iterations),
                        best_step=fit_result.iterations, best_metrics=metrics, stopped_early=False,
                        train_seconds=fit_result.seconds,
                        examples_per_second=len(train_vecs) * fit_result.iterations / seconds)
    return result, eval_logits


def text_evaluator(ctx: FitContext) -> Callable[[torch.nn.Module], dict[str, Any]]:
    eval_loader = make_loader(ctx.eval_enc, ctx.pad_id, ctx.cfg.eval.batch_size, ctx.cfg.train.seed, shuffle=False)
    assert ctx.eval_enc.labels is not None
    eval_labels = ctx.eval_enc.labels
    precision = eval_precision(ctx)
    objective = ctx.objective

    def evaluate(current: torch.nn.Module) -> dict[str, Any]:
        logits = predict_logits(current, eval_loader, len(ctx.eval_enc), precision)  # type: ignore[arg-type]
        return objective.metrics(eval_labels, logits)

    return evaluate


def loop_budget(ctx: FitContext, model: torch.nn.Module, eval_steps_estimate: float,
                after: AfterLoop) -> StepBudget | None:
    """The stop rule for a loop of this run (None without a time budget)."""
    if ctx.deadline is None:
        return None
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return StepBudget(ctx.deadline, eval_steps_estimate=eval_steps_estimate,
                      checkpoint_s_estimate=checkpoint_estimate_s(parameters, trainable), after=after)


def text_eval_steps(ctx: FitContext, steps_per_epoch: int) -> float:
    """One evaluation pass in training steps, from the data size, until the loop has timed one: the eval
    tokens over the (unpadded, so fewer than computed) training tokens of one step, forward only."""
    train_tokens = float(ctx.train_enc.lengths.sum()) or 1.0
    return FORWARD_SHARE * float(ctx.eval_enc.lengths.sum()) * steps_per_epoch / train_tokens


# --- the strategies -----------------------------------------------------------------------------------

def fit_linear_probe(ctx: FitContext) -> FitOutcome:
    strategy = build_strategy("linear-probe", ctx.cfg.strategy)
    model = new_classifier(ctx)
    strategy.prepare(model)
    train = text_vectors(ctx, model, ctx.train_enc, ctx.train_texts, True, train_precision(ctx), "train")
    evaluation = text_vectors(ctx, model, ctx.eval_enc, ctx.eval_texts, True, eval_precision(ctx), "eval")
    head, eval_logits = fit_head(ctx, model.head, train.vectors, evaluation.vectors, "probe")
    encoding = encoding_summary({"train": train, "eval": evaluation})
    return FitOutcome(model, strategy, head_on_vectors_result(head, train, encoding), eval_logits=eval_logits,
                      details={"encoding": encoding, **head_details(head)})


def fit_text_loop(ctx: FitContext, name: str) -> FitOutcome:
    """full and lora: optional probe-initialised head, then the loop over texts."""
    cfg = ctx.cfg
    strategy = build_strategy(name, cfg.strategy)
    model = new_classifier(ctx)
    details: dict[str, Any] = {}
    if cfg.strategy.probe.init and not ctx.resume:
        # A random head on 77 classes sends large, noisy gradients into the body for the first epoch;
        # a head that already separates the classes on frozen vectors does not.
        model.encoder.requires_grad_(False)
        # Only a starting head comes out of these vectors: the run's training precision is fine for both.
        train_vecs = text_vectors(ctx, model, ctx.train_enc, ctx.train_texts, True, train_precision(ctx), "train")
        eval_vecs = text_vectors(ctx, model, ctx.eval_enc, ctx.eval_texts, True, train_precision(ctx), "eval")
        probe = train_head(ctx, model.head, train_vecs.vectors, eval_vecs.vectors, "probe")
        details["probe_init"] = {k: v for k, v in probe.best_metrics.items() if isinstance(v, (int, float))}
    strategy.prepare(model)
    train_cfg = strategy_train_config(cfg, name)
    if name == "lora":
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        details["trainable_parameters"] = int(trainable)
    loader = make_loader(ctx.train_enc, ctx.pad_id, train_cfg.batch_size, train_cfg.seed, shuffle=True,
                         group_by_length=train_cfg.group_by_length)
    # After the loop the workflow evaluates the kept weights once more and writes the model (and LoRA's adapters).
    steps_per_epoch = max(1, math.ceil(len(loader) / train_cfg.grad_accum_steps))
    budget = loop_budget(ctx, model, text_eval_steps(ctx, steps_per_epoch),
                         AfterLoop(evaluations=1, saves=2 if name == "lora" else 1))
    result = train_loop(model, loader, cfg=train_cfg, loss_fn=ctx.objective.loss, evaluate=text_evaluator(ctx),
                        primary_metric=cfg.primary_metric, higher_is_better=cfg.higher_is_better,
                        checkpoints=Checkpoints(ctx.run_dir / "checkpoints"),
                        tracker=ctx.tracker, accelerator=make_accelerator(train_cfg), resume=ctx.resume, budget=budget,
                        evaluate_first=ctx.evaluate_start and "probe_init" in details)
    return FitOutcome(model, strategy, result, details=details)


def strategy_train_config(cfg: RunConfig, strategy: str) -> TrainConfig:
    """The loop settings of `strategy` for any task that trains through the loop (the strategy object's own
    `train_config`: LoRA's learning rate, fewshot's pair phase)."""
    return build_strategy(strategy, cfg.strategy).train_config(cfg.train)


def fit_fewshot(ctx: FitContext) -> FitOutcome:
    """SetFit in two phases: (1) contrastive pairs tune the body, (2) a head on the tuned vectors."""
    assert ctx.train_enc.labels is not None
    cfg = ctx.cfg
    strategy = build_strategy("fewshot", cfg.strategy)
    model = new_classifier(ctx)
    strategy.prepare(model)

    # Phase 1: pairs drawn from the few examples; cosine of each pair regressed to 1 (same class) / 0.
    per_example = pairs_per_example(cfg.strategy.fewshot.pairs_per_example, ctx.train_enc.labels)
    pairs = sample_pairs(ctx.train_enc.labels, per_example, cfg.train.seed)
    pair_cfg = strategy.train_config(cfg.train)
    pair_loader = make_pair_loader(ctx.train_enc, pairs, ctx.pad_id, pair_cfg.batch_size, pair_cfg.seed)
    body = PairEncoder(model.encoder, model.pooling)
    # Held-out check of the pair phase: the cosine loss on a fixed sample of pairs (cheap, no eval texts).
    probe_batch = next(iter(make_pair_loader(ctx.train_enc, pairs, ctx.pad_id, 64, pair_cfg.seed + 1)))

    def evaluate_pairs(current: torch.nn.Module) -> dict[str, Any]:
        current.eval()
        with torch.inference_mode():
            cos = current(input_ids=probe_batch["input_ids"], attention_mask=probe_batch["attention_mask"])
        current.train()
        return {"neg_pair_loss": -float(cosine_pair_loss(cos, probe_batch))}

    # After the pair phase: every train and eval text embedded once (a pair step runs 2 x batch texts forward
    # and back), the head fitted in seconds, the model written (the phase's checkpoints are in memory: untimed).
    texts_per_step = 2 * pair_cfg.batch_size
    budget = loop_budget(ctx, body, FORWARD_SHARE * len(probe_batch["index"]) / pair_cfg.batch_size, AfterLoop(
        evaluations=0, steps=FORWARD_SHARE * (len(ctx.train_enc) + len(ctx.eval_enc)) / texts_per_step, saves=0,
        seconds=AFTER_LOOP_FIXED_S + checkpoint_estimate_s(sum(p.numel() for p in model.parameters()), 0)))
    # The pair phase is short (tens of steps); a disk checkpoint of body + optimizer would cost more than it.
    pair_result = train_loop(body, pair_loader, cfg=pair_cfg, loss_fn=cosine_pair_loss, evaluate=evaluate_pairs,
                             primary_metric="neg_pair_loss", checkpoints=MemoryCheckpoints(),
                             tracker=PhaseTracker(ctx.tracker, "pairs"), accelerator=make_accelerator(pair_cfg),
                             budget=budget)

    # Phase 2: the head on vectors of the tuned body (not cached: these weights exist only in this run).
    train = text_vectors(ctx, model, ctx.train_enc, ctx.train_texts, False, train_precision(ctx), "train")
    evaluation = text_vectors(ctx, model, ctx.eval_enc, ctx.eval_texts, False, eval_precision(ctx), "eval")
    head_result, eval_logits = fit_head(ctx, model.head, train.vectors, evaluation.vectors, "head")
    details = {"pairs": len(pairs), "pairs_per_example": per_example, "pair_steps": pair_result.steps,
               "pair_seconds": round(pair_result.train_seconds, 2),
               "encoding": encoding_summary({"train": train, "eval": evaluation}), **head_details(head_result)}
    # The run's speed is the pair phase's (pairs/s through the loop, the part that trains the body); the time
    # includes encoding the training texts for the head, which a user waits for too.
    merged = LoopResult(steps=pair_result.steps + head_result.steps, epochs_completed=pair_result.epochs_completed,
                        best_step=head_result.best_step, best_metrics=head_result.best_metrics, stopped_early=False,
                        train_seconds=pair_result.train_seconds + train.seconds + head_result.train_seconds,
                        examples_per_second=pair_result.examples_per_second, planned_steps=pair_result.planned_steps,
                        stop_reason=pair_result.stop_reason, budget=pair_result.budget)
    return FitOutcome(model, strategy, merged, eval_logits=eval_logits, details=details)


def fit_zeroshot(ctx: FitContext) -> FitOutcome:
    cfg = ctx.cfg
    strategy = build_strategy("zeroshot", cfg.strategy)
    model = new_classifier(ctx)
    strategy.prepare(model)
    prompts = label_prompts(list(ctx.labels.labels), cfg.strategy.zeroshot.label_descriptions)
    # The label vectors become the head's weights: computed exactly (there are only a few).
    label_vecs = text_vectors(ctx, model, encode_texts(ctx.tokenizer, prompts, ctx.max_length), prompts, True, "fp32",
                              "labels")
    zeroshot_head_(model.head, label_vecs.vectors, cfg.strategy.zeroshot.temperature)
    model.eval()
    return FitOutcome(model, strategy, None, details={"label_prompts": dict(zip(ctx.labels.labels, prompts, strict=True))})


# What each strategy's run is; its model-side parts (prepare, train_config, export) are the object that
# models/strategies.py build_strategy returns under the same name.
FITS: dict[str, Callable[[FitContext], FitOutcome]] = {
    "linear-probe": fit_linear_probe, "fewshot": fit_fewshot, "zeroshot": fit_zeroshot,
    "full": lambda ctx: fit_text_loop(ctx, "full"), "lora": lambda ctx: fit_text_loop(ctx, "lora"),
}


def fit(ctx: FitContext, name: str) -> FitOutcome:
    return FITS[name](ctx)


__all__ = ["FitContext", "FitOutcome", "TextVectors", "encoding_summary", "eval_precision", "fit", "new_classifier",
           "strategy_train_config", "text_vectors"]
