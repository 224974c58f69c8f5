"""Choosing the recommender's weights on a validation split of the training histories, and ranking metrics.

The validation split is the evaluation protocol applied once more inside the training data: each
user's latest training item is the validation target and everything before it the history. EASE's
L2 weight, the recency decay and the blend weights are picked on it by nDCG@k (recall@k breaks ties),
then the model is refitted on the whole training histories. The test items are never looked at.

Cold items: a random COLD_SHARE of the items is removed from the validation histories (COLD_DRAWS
independent draws, pooled), so they are cold in the model fitted there while some users' validation
item is one of them. On those (user, candidate)
pairs two logistic regressions estimate the chance that a candidate is the user's next item: one for
warm items from their fused score, one for cold items from their text evidence (borrowed behaviour,
text cosine). Equating the two gives the cold line of `recommend_models` on the warm score's scale,
so a cold item enters a user's top k exactly when it is estimated likelier to be next than the warm item
it displaces; warm items keep their order. The neighbour count is then chosen by validation nDCG@k over
all users, warm and cold targets together.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from fmkit.apps.recommend_models import Ease, FusionModel, FusionSettings, Histories

# Candidate values; the whole grid costs one EASE fit per L2 value plus cheap re-blends.
EASE_L2 = (100.0, 300.0, 1000.0)
RECENCY_ITEMS = (0.0, 3.0, 5.0, 10.0)
TEXT_WEIGHTS = (0.0, 0.1, 0.3)
POPULARITY_WEIGHTS = (0.0, 0.1, 0.3)
COLD_NEIGHBOURS = (5, 20)
COLD_SHARE = 0.1  # items held out of the validation histories to choose the cold-item knobs on
COLD_DRAWS = 3  # independent held-out draws, pooled
MIN_CALIBRATION_TARGETS = 20  # validation targets each group needs before the calibration is trusted
CALIBRATION_PAIRS = 4_000_000  # (user, candidate) pairs per group the cold calibration is fitted on, at most


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

    The cold-item knobs come last, with the others fixed: a random COLD_SHARE of the items is removed
    from the validation histories, the cold line is calibrated there (module docstring) for each
    neighbour count, and the count with the best nDCG@k over all validation users wins (so recommending
    cold items must not cost more on the warm targets than it gains on the cold ones)."""
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
    # Several draws of held-out items: one leaves only ~70 cold validation targets on MovieLens small.
    rng = np.random.default_rng(seed)
    held_outs = [rng.random(n_items) < COLD_SHARE for _ in range(COLD_DRAWS)]
    kept = [Histories([items[~held[items]] for items in split.histories.items],
                      [times[~held[items]] for items, times in zip(split.histories.items, split.histories.times,
                                                                    strict=True)]) for held in held_outs]
    fitted = [FusionModel.fit(settings, histories, vectors) for histories in kept]
    targets = np.concatenate([split.targets] * COLD_DRAWS)
    cold_users = np.concatenate([held[split.targets] for held in held_outs])
    candidates = []
    for neighbours in COLD_NEIGHBOURS:
        models = [model.with_settings(replace(settings, cold_neighbours=neighbours)) for model in fitted]
        offset, weight, text_weight = calibrate_cold_items(list(zip(models, kept, strict=True)), split.targets, seed)
        calibrated = replace(models[0].settings, cold_offset=offset, cold_weight=weight, cold_text_weight=text_weight)
        tops = [ranked(model.with_settings(calibrated).scores(histories), histories, k)
                for model, histories in zip(models, kept, strict=True)]
        top = np.concatenate(tops)
        cold_recall = rank_metrics(top[cold_users], targets[cold_users], n_items, k)[f"recall@{k}"]
        cold_slots = float(np.mean([(~model.warm[t]).mean() for model, t in zip(models, tops, strict=True)]))
        candidates.append((rank_metrics(top, targets, n_items, k), calibrated, cold_recall, cold_slots))
    held_metrics, settings, cold_recall, cold_slots = max(candidates, key=lambda c: _score(c[0], k))
    return settings, {**metrics, "validation_users": len(split.targets),
                      "held_out_validation_targets": int(cold_users.sum()),
                      f"held_out_items_recall@{k}": cold_recall,
                      f"held_out_items_top{k}_share": round(cold_slots, 4),
                      f"with_held_out_items_ndcg@{k}": held_metrics[f"ndcg@{k}"]}


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-4, steps: int = 50) -> np.ndarray:
    """[intercept, coefficients...] of an L2-regularised logistic regression, by Newton's method."""
    x = np.column_stack([np.ones(len(features)), features]).astype(np.float64)
    y = labels.astype(np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def calibration_pairs(model: FusionModel, histories: Histories, targets: np.ndarray, seed: int = 0,
                      max_pairs: int = CALIBRATION_PAIRS) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(warm features, labels), (cold features, labels) over the unseen candidates of each user: warm items
    by their fused score, cold items by (borrowed behaviour, text cosine); label 1 for the user's next item.
    Negatives are sampled at one rate for both groups, which shifts both intercepts alike, so the
    comparison between the groups is unchanged; every positive is kept."""
    cold = np.zeros(model.n_items, dtype=bool)
    cold[model.cold_items] = True
    n_candidates = len(histories) * model.n_items
    rate = min(1.0, max_pairs / max(n_candidates, 1))
    rng = np.random.default_rng(seed)
    warm_x: list[np.ndarray] = []
    warm_y: list[np.ndarray] = []
    cold_x: list[np.ndarray] = []
    cold_y: list[np.ndarray] = []
    for start in range(0, len(histories), 256):
        rows = slice(start, start + 256)
        chunk = Histories(histories.items[rows], histories.times[rows])
        behaviour, text = model.behaviour_scores(chunk), model.text_scores(chunk)
        fused = model.blend(behaviour, text, model.popularity_scores(chunk) if model.settings.popularity_weight else None)
        positive = np.zeros(fused.shape, dtype=bool)
        positive[np.arange(len(chunk)), targets[rows]] = True
        keep = (rng.random(fused.shape) < rate) | positive
        for row, items in enumerate(chunk.items):
            keep[row, items] = False  # seen items are never candidates
        for group, xs, ys, columns in ((~cold, warm_x, warm_y, (fused,)), (cold, cold_x, cold_y, (behaviour, text))):
            mask = keep & group[None, :]
            xs.append(np.column_stack([c[mask] for c in columns]))
            ys.append(positive[mask])
    return (np.concatenate(warm_x), np.concatenate(warm_y)), (np.concatenate(cold_x), np.concatenate(cold_y))


def calibrate_cold_items(draws: Sequence[tuple[FusionModel, Histories]], targets: np.ndarray,
                         seed: int = 0) -> tuple[float, float, float]:
    """(cold_offset, cold_weight, cold_text_weight) that put a cold item's evidence on the warm score's
    scale (see the module docstring), from the pairs of every (model, histories) draw pooled; `targets`
    are the histories' next items. With fewer than MIN_CALIBRATION_TARGETS next items in either group (a
    fit on a handful is noise: it can push a cold film at users of another genre), or a warm score that
    does not rise with the chance of being next, cold items keep the uncalibrated line (offset 0, weight 1)."""
    pairs = [calibration_pairs(model, histories, targets, seed + d, CALIBRATION_PAIRS // len(draws))
             for d, (model, histories) in enumerate(draws)]
    warm_x, warm_y = (np.concatenate([p[0][i] for p in pairs]) for i in (0, 1))
    cold_x, cold_y = (np.concatenate([p[1][i] for p in pairs]) for i in (0, 1))
    text_weight = draws[0][0].settings.text_weight
    if min(warm_y.sum(), cold_y.sum()) < MIN_CALIBRATION_TARGETS:
        return 0.0, 1.0, text_weight
    warm = fit_logistic(warm_x, warm_y)
    cold = fit_logistic(cold_x, cold_y)
    if warm[1] <= 0:
        return 0.0, 1.0, text_weight
    # logit_warm(s) = a + b s equals logit_cold = c0 + c1 borrowed + c2 text at s = (c0 - a + c1 borrowed + c2 text) / b.
    return (round(float((cold[0] - warm[0]) / warm[1]), 6), round(float(cold[1] / warm[1]), 6),
            round(float(cold[2] / warm[1]), 6))
