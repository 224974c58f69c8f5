"""`fmkit train --task embedding`: fine-tune a sentence encoder on (query, positive[, negative]) pairs.

In-batch negatives (MultipleNegativesRankingLoss, scale 20) through THE loop; evaluation is
retrieval: each eval query against the corpus of every distinct positive (eval and train ones,
so training answers act as distractors), scored by recall@1/5/10, MRR and nDCG@10 (MRR picks the
best checkpoint). metrics.json holds the scores of the model before training too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from fmkit.config import RunConfig
from fmkit.data.tasks.retrieval_pairs import PairData, group_split, make_pair_batches, read_pairs
from fmkit.errors import ConfigError, DataError
from fmkit.evaluation.retrieval import retrieval_metrics
from fmkit.inference.embedder import Embedder
from fmkit.inference.index import VectorIndex
from fmkit.models.contrastive import PairModel, in_batch_negatives_loss
from fmkit.models.sentence_encoder import SentenceEncoder
from fmkit.models.strategies import LoraStrategy
from fmkit.training import Checkpoints, make_accelerator, train_loop
from fmkit.utils.io import atomic_directory
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.strategy_runs import strategy_train_config
from fmkit.workflows.task_run import TaskRun, load_backbone

PRIMARY = "mrr"


def load_pairs(cfg: RunConfig) -> tuple[PairData, PairData]:
    if cfg.data.train is None:
        raise DataError("No training pairs: pass --data FILE with query and positive columns (and optionally negative).")
    train = read_pairs(cfg.data.train, cfg.data.text_column, cfg.data.label_column)
    if cfg.data.eval is not None:
        return train, read_pairs(cfg.data.eval, cfg.data.text_column, cfg.data.label_column)
    return group_split(train, cfg.data.eval_fraction, cfg.train.seed)


def retrieval_evaluator(tokenizer: Any, train: PairData, evaluation: PairData, batch_size: int
                        ) -> Callable[[SentenceEncoder], dict[str, Any]]:
    def evaluate(sentence: SentenceEncoder) -> dict[str, Any]:
        was_training = sentence.training
        scores = retrieval_scores(Embedder(sentence, tokenizer, batch_size=batch_size), evaluation, train.positives)
        sentence.train(was_training)
        return scores

    return evaluate


def retrieval_scores(embedder: Embedder, evaluation: PairData, distractors: Sequence[str] = ()) -> dict[str, Any]:
    """Each query searched against every distinct positive (plus `distractors`): recall@k, MRR, nDCG@10."""
    corpus = sorted(set(evaluation.positives) | set(distractors))
    corpus_ids = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in corpus]
    id_of = dict(zip(corpus, corpus_ids, strict=True))
    relevant = [{id_of[p]} for p in evaluation.positives]
    index = VectorIndex(embedder.dim, backend="exact")
    index.add(corpus_ids, embedder.embed(corpus))
    hits = index.search_many(embedder.embed(evaluation.queries), k=10)
    return retrieval_metrics([[h.id for h in row] for row in hits], relevant)


def evaluate_saved(model_dir: Path, data: Path, text_column: str | None, label_column: str | None,
                   batch_size: int, precision: str = "auto") -> dict[str, Any]:
    """`fmkit eval` of an embedding model: retrieval over the file's (query, positive) pairs, the positives
    being the corpus. `text_column`/`label_column` name the query and positive columns (auto-detected)."""
    evaluation = read_pairs(data, text_column, label_column)
    metrics = retrieval_scores(Embedder.load(model_dir, batch_size=batch_size), evaluation)
    return {**metrics, "num_examples": len(evaluation.queries), "corpus_size": len(set(evaluation.positives))}


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> Any:
    strategy = cfg.strategy.name
    if strategy == "auto":
        strategy = "full"
    if strategy not in ("full", "lora"):
        raise ConfigError(f"--task embedding trains with --strategy full or lora, not '{strategy}'.")
    train_data, eval_data = load_pairs(cfg)
    model_path, tokenizer, max_length = load_backbone(cfg)
    sentence = SentenceEncoder.from_backbone(model_path, pooling=cfg.model.pooling, max_length=max_length,
                                             trust_remote_code=cfg.model.trust_remote_code)
    data_info = {"train": {"path": str(cfg.data.train), "pairs": len(train_data),
                           "distinct_positives": len(set(train_data.positives)),
                           "hard_negatives": train_data.negatives is not None},
                 "eval": {"path": str(cfg.data.eval) if cfg.data.eval else None, "pairs": len(eval_data),
                          "distinct_positives": len(set(eval_data.positives))},
                 "eval_is_split_of_train": cfg.data.eval is None, "max_length": max_length}
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite) as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        evaluate = retrieval_evaluator(tokenizer, train_data, eval_data, cfg.eval.batch_size)
        baseline = evaluate(sentence)
        lora = None
        if strategy == "lora":
            lora = LoraStrategy(cfg.strategy.lora)
            lora.prepare(sentence)  # type: ignore[arg-type]  # duck-typed: needs only `.encoder`
        model = PairModel(sentence)
        loader = make_pair_batches(tokenizer, train_data, max_length, cfg.train.batch_size, cfg.train.seed)
        train_cfg = strategy_train_config(cfg, strategy)  # lora: strategy.lora.learning_rate
        result = train_loop(model, loader, cfg=train_cfg, loss_fn=in_batch_negatives_loss,
                            evaluate=lambda m: evaluate(m.sentence),  # type: ignore[arg-type]
                            primary_metric=PRIMARY, checkpoints=Checkpoints(run.dir / "checkpoints"),
                            tracker=run.tracker, accelerator=make_accelerator(train_cfg), resume=run.resume)
        if not run.main:  # another process of a data-parallel run: the main one evaluates and writes
            return RunResult(run_dir=run.dir, metrics={}, warnings=[])
        if lora is not None:
            lora.export(sentence, run.dir)  # type: ignore[arg-type]  # adapters kept, merged encoder saved
        final = evaluate(sentence)
        with torch.no_grad(), atomic_directory(run.dir / "model") as tmp:
            sentence.save_pretrained(tmp, tokenizer)
        metrics: dict[str, Any] = {**final, "baseline": baseline, "strategy": strategy,
                                   "train_pairs": len(train_data), "steps": result.steps,
                                   "best_step": result.best_step, "epochs_completed": result.epochs_completed,
                                   "stopped_early": result.stopped_early,
                                   "train_seconds": round(result.train_seconds, 2),
                                   "train_examples_per_second": round(result.examples_per_second, 2),
                                   "frozen_for_speed": result.frozen}
        headline = {k: round(v, 4) for k, v in final.items() if isinstance(v, float)}
        run.finish(metrics, headline)
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=[])
