"""Choosing the recommender's weights on a validation split of the training histories, and ranking metrics.

The validation split is the evaluation protocol applied once more inside the training data: each
user's latest training item is the validation target and everything before it the history. EASE's
L2 weight, the recency decay and the blend weights are picked on it by nDCG@k (recall@k breaks ties),
then the model is refitted on the whole training histories. The test items are never looked at.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from fmkit.apps.recommend_models import Ease, FusionModel, FusionSettings, Histories

# Candidate values; the whole grid costs one EASE fit per L2 value plus cheap re-blends.
EASE_L2 = (100.0, 300.0, 1000.0)
RECENCY_ITEMS = (0.0, 3.0, 5.0, 10.0)
TEXT_WEIGHTS = (0.0, 0.1, 0.3)
POPULARITY_WEIGHTS = (0.0, 0.1, 0.3)
COLD_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)
COLD_NEIGHBOURS = (5, 20)
COLD_SHARE = 0.1  # items held out of the validation histories to choose the cold-item knobs on


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, 1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, 1)


def rank_metrics(top: np.ndarray, targets: np.ndarray, n_items: int, k: int = 10) -> dict[str, float]:
    """recall@k (the held-out item is in the top k), nDCG@k (1 / log2(rank + 2)), catalogue coverage."""
    hits = top[:, :k] == targets[:, None]
    rank = np.where(hits.any(1), hits.argmax(1), -1)
    ndcg = np.where(rank >= 0, 1.0 / np.log2(np.maximum(rank, 0) + 2), 0.0)
    return {f"recall@{k}": round(float((rank >= 0).mean()) if len(rank) else 0.0, 4),
            f"ndcg@{k}": round(float(ndcg.mean()) if len(rank) else 0.0, 4),
            "coverage": round(len(np.unique(top[:, :k])) / n_items, 4)}


def mask_seen(scores: np.ndarray, histories: Histories) -> np.ndarray:
    for row, items in enumerate(histories.items):
        scores[row, items] = -np.inf
    return scores


def ranked(scores: np.ndarray, histories: Histories, k: int) -> np.ndarray:
    return top_k(mask_seen(scores, histories), k)


@dataclass(frozen=True)
class ValidationSplit:
    """Users with at least two training items: their history minus the last item, and that item."""

    histories: Histories
    targets: np.ndarray


def validation_split(histories: Histories) -> ValidationSplit:
    keep = [u for u, items in enumerate(histories.items) if len(items) >= 2]
    return ValidationSplit(Histories([histories.items[u][:-1] for u in keep], [histories.times[u][:-1] for u in keep]),
                           np.array([histories.items[u][-1] for u in keep], dtype=np.int64))


def _score(metrics: dict[str, float], k: int) -> tuple[float, float]:
    return metrics[f"ndcg@{k}"], metrics[f"recall@{k}"]


def tune_ease_l2(histories: Histories, n_items: int, k: int = 10) -> tuple[float, dict[str, dict[str, float]]]:
    """Plain EASE (the baseline): the L2 weight with the best validation nDCG@k."""
    split = validation_split(histories)
    matrix = split.histories.binary(n_items)
    report = {}
    for l2 in EASE_L2:
        top = ranked(Ease.fit(matrix, l2).scores(matrix), split.histories, k)
        report[f"{l2:g}"] = rank_metrics(top, split.targets, n_items, k)
    best = max(EASE_L2, key=lambda l2: _score(report[f"{l2:g}"], k))
    return best, report


def tune_fusion(histories: Histories, vectors: np.ndarray, k: int = 10,
                seed: int = 0) -> tuple[FusionSettings, dict[str, float]]:
    """Grid search of FusionSettings on the validation split; returns the best and its validation metrics.

    The cold-item knobs are chosen last, with the others fixed: a random COLD_SHARE of the items is
    removed from the validation histories, and the weight and neighbour count with the best nDCG@k over
    all validation users win (so boosting cold items must not cost more on the warm ones than it gains)."""
    n_items = len(vectors)
    split = validation_split(histories)
    best: tuple[tuple[float, float], FusionSettings, dict[str, float]] | None = None
    for l2 in EASE_L2:
        model = FusionModel.fit(FusionSettings(ease_l2=l2), split.histories, vectors)
        for recency in RECENCY_ITEMS:
            model = model.with_settings(replace(model.settings, recency_items=recency))
            parts = (model.behaviour_scores(split.histories), model.text_scores(split.histories),
                     model.popularity_scores(split.histories))
            for text_w, pop_w in itertools.product(TEXT_WEIGHTS, POPULARITY_WEIGHTS):
                top = ranked(parts[0] + text_w * parts[1] + pop_w * parts[2], split.histories, k)
                metrics = rank_metrics(top, split.targets, n_items, k)
                if best is None or _score(metrics, k) > best[0]:
                    best = (_score(metrics, k), replace(model.settings, text_weight=text_w, popularity_weight=pop_w),
                            metrics)
    assert best is not None
    settings, metrics = best[1], best[2]
    held_out = np.random.default_rng(seed).random(n_items) < COLD_SHARE
    kept = Histories([items[~held_out[items]] for items in split.histories.items],
                     [times[~held_out[items]] for items, times in zip(split.histories.items, split.histories.times,
                                                                       strict=True)])
    model = FusionModel.fit(settings, kept, vectors)
    by_knobs = {}
    for weight, neighbours in itertools.product(COLD_WEIGHTS, COLD_NEIGHBOURS):
        tuned = model.with_settings(replace(settings, cold_weight=weight, cold_neighbours=neighbours))
        by_knobs[weight, neighbours] = rank_metrics(ranked(tuned.scores(kept), kept, k), split.targets, n_items, k)
    weight, neighbours = max(by_knobs, key=lambda knobs: _score(by_knobs[knobs], k))
    settings = replace(settings, cold_weight=weight, cold_neighbours=neighbours)
    cold = held_out[split.targets]
    cold_metrics = rank_metrics(ranked(model.with_settings(settings).scores(kept), kept, k)[cold], split.targets[cold],
                                n_items, k)
    return settings, {**metrics, "validation_users": len(split.targets),
                      f"held_out_items_recall@{k}": cold_metrics[f"recall@{k}"]}
