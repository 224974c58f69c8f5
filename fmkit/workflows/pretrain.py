"""`fmkit pretrain`: continued masked-LM pretraining on unlabelled text, through the one loop.

RUN_DIR/model is a backbone folder: `fmkit train --model RUN_DIR/model` (any strategy) uses
the adapted encoder. Held-out perplexity on a fixed masking is the evaluation.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.config import RunConfig
from fmkit.data.fingerprint import file_sha256
from fmkit.data.readers import iter_texts
from fmkit.data.tasks.mlm import make_mlm_loader
from fmkit.data.tokenized import encode_texts
from fmkit.errors import DataError
from fmkit.models.losses import masked_lm_loss
from fmkit.models.mlm import MaskedLanguageModel
from fmkit.training import Checkpoints, LoopResult, make_accelerator, train_loop
from fmkit.training.memory_checkpoints import MemoryCheckpoints
from fmkit.training.tracking import PhaseTracker
from fmkit.utils.io import atomic_directory
from fmkit.workflows.rundir import RunResult
from fmkit.workflows.task_run import TaskRun, load_backbone

MIN_TEXTS = 20


def read_corpus(path: Path, text_column: str | None) -> list[str]:
    texts = [t.strip() for t in iter_texts(path, text_column)]
    texts = [t for t in texts if t]
    if len(texts) < MIN_TEXTS:
        raise DataError(f"{path}: {len(texts)} non-empty texts; continued pretraining needs at least {MIN_TEXTS} "
                        "(one text per line, or a text column).")
    return texts


@torch.inference_mode()
def held_out_loss(model: torch.nn.Module, loader: Any) -> float:
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       predict_mask=batch["predict_mask"])
        n = int((batch["labels"] != -100).sum())
        if n:
            total += float(masked_lm_loss(logits, batch)) * n
            tokens += n
    model.train(was_training)
    return total / max(tokens, 1)


def warm_up_new_head(model: MaskedLanguageModel, loader: Any, cfg: RunConfig, evaluate: Any,
                     tracker: Any) -> LoopResult | None:
    """Train only the newly initialised head weights first (body frozen), as `full` starts from a probed head.

    Sentence encoders ship without an MLM head: its transform layer starts random, and its first, large
    gradients would flow into a body that already encodes text well.
    """
    epochs = cfg.pretrain.head_warmup_epochs
    if not model.new_weights or epochs <= 0:
        return None
    new = set(model.new_weights)
    trainable = [p for name, p in model.mlm.named_parameters() if name in new]
    if not trainable:
        return None
    for name, p in model.mlm.named_parameters():
        p.requires_grad_(name in new)
    # A head from scratch takes a larger step than a pretrained body; nothing resumable is written.
    head_cfg = cfg.train.model_copy(update={
        "epochs": epochs, "learning_rate": cfg.train.learning_rate * 10, "eval_every_steps": 0,
        "early_stopping_patience": 0, "checkpoint_every_steps": 0,
    })
    result = train_loop(model, loader, cfg=head_cfg, loss_fn=masked_lm_loss, evaluate=evaluate,
                        primary_metric="loss", higher_is_better=False, checkpoints=MemoryCheckpoints(),
                        tracker=PhaseTracker(tracker, "head_warmup"), accelerator=make_accelerator(head_cfg))
    model.requires_grad_(True)
    return result


def train(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> RunResult:
    """`fmkit pretrain` (= `fmkit train --task pretrain`): the shared run frame around the one loop."""
    if cfg.data.train is None:
        raise DataError("No corpus: pass --data FILE (one text per line, or a CSV/TSV/JSONL/Parquet text column).")
    started = time.perf_counter()
    train_texts, eval_texts = split_corpus(read_corpus(Path(cfg.data.train), cfg.data.text_column), cfg)
    model_path, tokenizer, max_length = load_backbone(cfg, text_prompt=False)
    train_enc = encode_texts(tokenizer, train_texts, max_length)
    eval_enc = encode_texts(tokenizer, eval_texts, max_length)
    data_info = {"train": {"path": str(cfg.data.train), "sha256": file_sha256(Path(cfg.data.train)),
                           "texts": len(train_texts)}, "held_out_texts": len(eval_texts), "max_length": max_length}
    with TaskRun(cfg, data_info, model_path, resume_dir, overwrite, started=started, command="pretrain") as run:
        from accelerate.utils import set_seed

        set_seed(cfg.train.seed)
        model = MaskedLanguageModel.from_backbone(model_path, cfg.model.trust_remote_code)
        if model.new_weights and run.main:
            print(f"note: {model_path.name} has no masked-LM head; initialised new: {', '.join(model.new_weights)} "
                  "(output projection tied to the word embeddings)", file=sys.stderr)
        p = cfg.pretrain.mlm_probability
        train_loader = make_mlm_loader(train_enc, tokenizer, cfg.train.batch_size, cfg.train.seed, shuffle=True,
                                       probability=p)
        # A fixed masking of the held-out texts: every evaluation scores the same predictions.
        eval_loader = make_mlm_loader(eval_enc, tokenizer, cfg.eval.batch_size, cfg.train.seed, shuffle=False,
                                      probability=p)
        before = held_out_loss(model, eval_loader)

        def evaluate(current: torch.nn.Module) -> dict[str, Any]:
            loss = held_out_loss(current, eval_loader)
            return {"loss": loss, "perplexity": math.exp(min(loss, 50))}

        # A resumed run's checkpoint already holds the warmed-up head.
        warmup = None if run.resume else warm_up_new_head(model, train_loader, cfg, evaluate, run.tracker)
        accelerator = make_accelerator(cfg.train)
        result = train_loop(model, train_loader, cfg=cfg.train, loss_fn=masked_lm_loss, evaluate=evaluate,
                            primary_metric=cfg.primary_metric, higher_is_better=cfg.higher_is_better,
                            checkpoints=Checkpoints(run.dir / "checkpoints"), tracker=run.tracker,
                            accelerator=accelerator, resume=run.resume)
        if not run.main:  # another process of a data-parallel run: the main one evaluates and writes
            return RunResult(run_dir=run.dir, metrics={}, warnings=[])
        model = accelerator.unwrap_model(model)
        after = held_out_loss(model, eval_loader)
        metrics = {
            "held_out_texts": len(eval_texts), "train_texts": len(train_texts),
            "perplexity_before": round(math.exp(min(before, 50)), 3), "perplexity": round(math.exp(min(after, 50)), 3),
            "loss_before": round(before, 4), "loss": round(after, 4),
            "steps": result.steps, "epochs_completed": result.epochs_completed,
            "train_seconds": round(result.train_seconds, 2), "new_weights": model.new_weights,
            "head_warmup_steps": warmup.steps if warmup else 0,
            "head_warmup_seconds": round(warmup.train_seconds, 2) if warmup else 0.0,
        }
        with atomic_directory(run.dir / "model") as tmp:
            model.save_pretrained(tmp, tokenizer)
        run.finish(metrics, {k: metrics[k] for k in ("perplexity_before", "perplexity")})
    return RunResult(run_dir=run.dir, metrics=metrics, warnings=[])


def split_corpus(texts: list[str], cfg: RunConfig) -> tuple[list[str], list[str]]:
    """(train, held out): a seeded shuffle; a tenth of the texts at most, pretrain.eval_texts at most, held out."""
    order = np.random.default_rng(cfg.train.seed).permutation(len(texts))
    n_eval = max(1, min(cfg.pretrain.eval_texts, len(texts) // 10))
    return [texts[i] for i in order[n_eval:]], [texts[i] for i in order[:n_eval]]


def pretrain(cfg: RunConfig, *, overwrite: bool = False) -> RunResult:
    """The task's workflow under its own command's name (`fmkit pretrain`); a config made for another task is
    re-read as a pretrain one, so its metric defaults are pretraining's (held-out loss)."""
    if cfg.task.type != "pretrain":
        raw = cfg.model_dump()
        raw["task"]["type"], raw["eval"]["primary_metric"] = "pretrain", None
        cfg = RunConfig.model_validate(raw)
    return train(cfg, overwrite=overwrite)


__all__ = ["pretrain", "read_corpus", "split_corpus", "train"]
