"""Score fusion for the support assistant: how much BM25, the answer text and an intent classifier add to
the question embeddings, learned from calibration queries.

Every FAQ entry gets, per query, up to four scores on comparable 0..1 scales:
  question  cosine similarity of the query to the entry's best phrasing (plain semantic search)
  answer    cosine similarity of the query to the entry's answer text
  bm25      BM25 of the entry's best phrasing, divided by the query's best BM25 over all entries
  intent    the intent classifier's probability of the entry's intent (when the app has a classifier)
and the fused score is `question + w_bm25 * bm25 + w_answer * answer + w_intent * intent`.

Why a learned weighted sum and not reciprocal-rank fusion: RRF gives a weak retriever's ranks the
same say as a strong one's and throws the scores away, so at weight 1 it lowered top-1 accuracy
below embeddings alone on real FAQ queries. Here the weights come from a grid search on labelled
calibration queries, and the default (all extra weights 0 = embeddings alone) is kept unless a
combination answers more calibration queries right by a clear margin (`min_gain`), so fusion is
only switched on where it was shown to help on the user's own data.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Weights tried for each extra score; 0 first so that ties keep the simpler model.
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
INTENT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class FusionWeights:
    bm25: float = 0.0
    answer: float = 0.0
    intent: float = 0.0


@dataclass
class EntryScores:
    """Scores of every entry (columns) for a block of queries (rows); see the module docstring."""

    question: np.ndarray
    bm25: np.ndarray
    answer: np.ndarray | None = None
    intent: np.ndarray | None = None  # -1 where an entry has no intent

    def fused(self, weights: FusionWeights) -> np.ndarray:
        out = self.question.astype(np.float64, copy=True)
        if weights.bm25:
            out += weights.bm25 * self.bm25
        if weights.answer and self.answer is not None:
            out += weights.answer * self.answer
        if weights.intent and self.intent is not None:
            out += weights.intent * np.maximum(self.intent, 0.0)
        return out


def normalise_bm25(raw: np.ndarray) -> np.ndarray:
    """Each row divided by its maximum: BM25's scale depends on the query's length and rare words, so only
    the share of the query's best match is comparable across queries (rows without a match stay 0)."""
    top = raw.max(axis=1, keepdims=True)
    return np.divide(raw, top, out=np.zeros_like(raw, dtype=np.float64), where=top > 0)


@dataclass
class FusionChoice:
    weights: FusionWeights
    queries: int
    top1_embeddings: float
    top1_fused: float
    min_gain: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {**{f"{k}_weight": v for k, v in asdict(self.weights).items()}, "fusion_queries": self.queries,
                "fusion_top1_embeddings_only": self.top1_embeddings, "fusion_top1_fused": self.top1_fused,
                "fusion_min_gain": self.min_gain, "fusion_note": self.note}


def _right_and_rr(fused: np.ndarray, gold: np.ndarray) -> tuple[int, float]:
    """Queries whose gold entry ranks first, and the sum of reciprocal ranks (ties count against the gold)."""
    gold_score = fused[np.arange(len(gold)), gold]
    rank = (fused >= gold_score[:, None]).sum(axis=1)  # >=: a tie with another entry is not a clear win
    return int((rank == 1).sum()), float((1.0 / rank).sum())


def learn_weights(scores: EntryScores, gold: Sequence[int], *, grid: Sequence[float] = WEIGHT_GRID,
                  intent_grid: Sequence[float] = INTENT_GRID, min_gain: int | None = None) -> FusionChoice:
    """The fusion weights answering the most in-scope calibration queries right (top-1), then the best MRR.

    `gold[i]` is the entry index of query i; queries with gold < 0 (out of scope, unknown answer) are
    ignored. The result stays at embeddings alone (all weights 0) unless the best weights answer at
    least `min_gain` more queries right (default: 1% of the queries, at least 1), so noise on a small
    calibration set does not switch fusion on.
    """
    gold_arr = np.asarray(gold, dtype=np.int64)
    keep = gold_arr >= 0
    n = int(keep.sum())
    gain_needed = min_gain if min_gain is not None else max(1, math.ceil(0.01 * n))
    if n == 0:
        return FusionChoice(FusionWeights(), 0, 0.0, 0.0, gain_needed,
                            "no in-scope calibration queries: embeddings alone")
    sub = EntryScores(scores.question[keep], scores.bm25[keep],
                      None if scores.answer is None else scores.answer[keep],
                      None if scores.intent is None else scores.intent[keep])
    g = gold_arr[keep]
    base_right, base_rr = _right_and_rr(sub.fused(FusionWeights()), g)
    best = (base_right, base_rr)
    best_weights = FusionWeights()
    answer_grid = grid if sub.answer is not None else (0.0,)
    intents = intent_grid if sub.intent is not None else (0.0,)
    for wb, wa, wi in itertools.product(grid, answer_grid, intents):
        weights = FusionWeights(wb, wa, wi)
        right, rr = _right_and_rr(sub.fused(weights), g)
        if (right, rr) > best:
            best, best_weights = (right, rr), weights
    if best[0] - base_right < gain_needed:
        chosen, note = FusionWeights(), (f"fusion answered {best[0] - base_right} more of {n} calibration queries "
                                         f"right (needs {gain_needed}): embeddings alone")
        best = (base_right, base_rr)
    else:
        chosen, note = best_weights, f"fusion answered {best[0] - base_right} more of {n} calibration queries right"
    return FusionChoice(chosen, n, round(base_right / n, 4), round(best[0] / n, 4), gain_needed, note)
