"""Text-pair regression as a bi-encoder (`task.pair_encoding: bi`): each text embedded alone, the target
predicted from the cosine of the two vectors.

Training is sentence-transformers' CosineSimilarityLoss through THE loop: a batch holds the A texts then the B
texts (data/tasks/pairs.py, as in fewshot's pair phase), the loss is the squared error between cos(A, B) and
the target rescaled to [0, 1] over the training range. Prediction undoes that scaling: value = low + (high -
low) * cos. Unlike a cross-encoder, the vectors of a text do not depend on its partner, so a catalogue can be
embedded once and searched; the price is accuracy where the two texts must be read together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fmkit.data.tasks.pairs import Pairs, make_pair_loader
from fmkit.data.tasks.regression import ScoredTexts
from fmkit.data.tokenized import EncodedTexts, encode_texts
from fmkit.evaluation.metrics import headline, regression_metrics
from fmkit.models.classifier import TextClassifier
from fmkit.models.losses import cosine_pair_loss
from fmkit.models.strategies import FullStrategy, PairEncoder
from fmkit.training import Checkpoints, LoopResult, make_accelerator, train_loop
from fmkit.workflows.strategy_runs import FitContext, FitOutcome, new_classifier


def pair_batches_input(tokenizer: Any, data: ScoredTexts, max_length: int, low: float, high: float
                       ) -> tuple[EncodedTexts, Pairs]:
    """All first texts then all second texts, tokenized once; pair i is (i, n + i) with its rescaled target."""
    assert data.pairs is not None
    n = len(data)
    encoded = encode_texts(tokenizer, [*data.texts, *data.pairs], max_length)
    target = ((data.targets - low) / (high - low)).astype(np.float32)
    return encoded, Pairs(first=np.arange(n), second=np.arange(n) + n, target=target)


@torch.inference_mode()
def pair_cosines(body: torch.nn.Module, encoded: EncodedTexts, pairs: Pairs, pad_id: int, batch_size: int) -> np.ndarray:
    was_training = body.training
    body.eval()
    out = np.empty(len(pairs), dtype=np.float64)
    for batch in make_pair_loader(encoded, pairs, pad_id, batch_size, seed=0):
        out[batch["index"].numpy()] = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).numpy()
    body.train(was_training)
    return out


def fit_biencoder(ctx: FitContext, train_data: ScoredTexts, eval_data: ScoredTexts
                  ) -> tuple[TextClassifier, np.ndarray, FitOutcome, dict[str, Any]]:
    """Fine-tune the body on cosine regression; returns the model, its eval predictions (target scale), the
    outcome and what fmkit.json must keep to predict (`info`)."""
    cfg = ctx.cfg
    low, high = float(train_data.targets.min()), float(train_data.targets.max())
    model = new_classifier(ctx)
    strategy = FullStrategy()
    strategy.prepare(model)
    body = PairEncoder(model.encoder, model.pooling)
    train_enc, train_pairs = pair_batches_input(ctx.tokenizer, train_data, ctx.max_length, low, high)
    eval_enc, eval_pairs = pair_batches_input(ctx.tokenizer, eval_data, ctx.max_length, low, high)
    loader = make_pair_loader(train_enc, train_pairs, ctx.pad_id, cfg.train.batch_size, cfg.train.seed)

    def evaluate(current: torch.nn.Module) -> dict[str, Any]:
        cos = pair_cosines(current, eval_enc, eval_pairs, ctx.pad_id, cfg.eval.batch_size)
        return headline(regression_metrics(eval_data.targets, low + (high - low) * cos))

    result: LoopResult = train_loop(
        body, loader, cfg=cfg.train, loss_fn=cosine_pair_loss, evaluate=evaluate, primary_metric=cfg.primary_metric,
        higher_is_better=cfg.higher_is_better, checkpoints=Checkpoints(ctx.run_dir / "checkpoints"),
        tracker=ctx.tracker, accelerator=make_accelerator(cfg.train), resume=ctx.resume)
    cos = pair_cosines(body, eval_enc, eval_pairs, ctx.pad_id, cfg.eval.batch_size)
    info = {"pair_encoding": "bi", "cosine_range": {"low": low, "high": high}}
    return model, low + (high - low) * cos, FitOutcome(model, strategy, result), info
