"""Per-user temporal leave-last-out evaluation: fmkit's recommender against popularity, item-kNN and EASE.

For every user with at least `min_history + 1` ratings, the latest rating is the test item and
everything before it is the history. Every method is fitted on the histories only (EASE's L2 weight
and fmkit's weights on a validation split inside them), so no method sees a test interaction; all
rank the full catalogue minus the user's history. Metrics over users: recall@k (the held-out item is in
the top k), nDCG@k (1 / log2(rank + 1) for that item) and catalogue coverage (share of all items
recommended to at least one user).

Cold items: a random `cold_share` of the catalogue is also removed from every history, the models are
refitted with the settings already chosen, and the users whose test item is one of them are scored
again. Popularity, item-kNN and EASE cannot rank such an item above a rated one (0 by construction).
One draw leaves few such users (76 on MovieLens small), so `cold_draws` independent draws are pooled:
recall and nDCG over all their users, coverage averaged, and each draw's recall listed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmkit.apps.recommend import Recommender, RecSettings, embed_items, popularity_vector, read_items, read_ratings
from fmkit.apps.recommend_fit import rank_metrics, ranked, top_k, tune_ease_l2, tune_fusion
from fmkit.apps.recommend_models import Ease, FusionModel, FusionSettings, Histories, item_knn_scores

__all__ = ["evaluate_recommender", "leave_last_out", "rank_metrics"]


def leave_last_out(ratings: pd.DataFrame, min_history: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = ratings.sort_values(["user", "ts", "item"], kind="stable")
    last = ordered.groupby("user").tail(1)
    counts = ordered.groupby("user")["item"].transform("size")
    keep = counts > min_history
    test = last[keep.loc[last.index]]
    train = ordered[keep & ~ordered.index.isin(test.index)]
    return train, test


def histories_of(train: pd.DataFrame, users: Sequence[str], index: dict[str, int]) -> Histories:
    """The time-ordered training items of each user (the train frame is already sorted by user, ts)."""
    by_user = {u: g for u, g in train.groupby("user", sort=False)}
    empty = train.iloc[:0]
    groups = [by_user.get(u, empty) for u in users]
    return Histories([g["item"].map(index).to_numpy(dtype=np.int64) for g in groups],
                     [g["ts"].to_numpy(dtype=np.float64) for g in groups])


def _baselines(train: Histories, users: Histories, targets: np.ndarray, n_items: int, k: int,
               ease_l2: float) -> dict[str, dict[str, Any]]:
    matrix = train.binary(n_items)
    mine = users.binary(n_items)
    out: dict[str, dict[str, Any]] = {}
    out["popularity"] = rank_metrics(ranked(np.tile(matrix.sum(0), (len(users), 1)), users, k), targets, n_items, k)
    start = time.perf_counter()
    out["item_knn"] = {**rank_metrics(ranked(item_knn_scores(matrix, mine), users, k), targets, n_items, k),
                       "seconds": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    out["ease"] = {**rank_metrics(ranked(Ease.fit(matrix, ease_l2).scores(mine), users, k), targets, n_items, k),
                   "l2": ease_l2, "seconds": round(time.perf_counter() - start, 1)}
    return out


def _cold_items_draw(train: pd.DataFrame, test: pd.DataFrame, users: list[str], index: dict[str, int],
                     vectors: np.ndarray, settings: FusionSettings, ease_l2: float, cold_share: float, k: int,
                     seed: int) -> dict[str, Any]:
    """One draw of held-out items: every method's metrics on the users whose test item was drawn."""
    n_items = len(vectors)
    rng = np.random.default_rng(seed)
    cold = np.zeros(n_items, dtype=bool)
    cold[rng.choice(n_items, round(cold_share * n_items), replace=False)] = True
    cold_ids = {i for i, n in index.items() if cold[n]}
    targets = test.set_index("user").loc[users, "item"].map(index).to_numpy()
    chosen = [u for u, t in zip(users, targets, strict=True) if cold[t]]
    warm_train = train[~train["item"].isin(cold_ids)]
    train_users = sorted(train["user"].unique())
    fit_on = histories_of(warm_train, train_users, index)
    hist = histories_of(warm_train, chosen, index)
    cold_targets = np.array([index[i] for i in test.set_index("user").loc[chosen, "item"]], dtype=np.int64)
    report: dict[str, Any] = {"held_out_items": int(cold.sum()), "test_users_with_a_held_out_item": len(chosen)}
    if not chosen:
        return report
    report.update(_baselines(fit_on, hist, cold_targets, n_items, k, ease_l2))
    model = FusionModel.fit(settings, fit_on, vectors)
    top = ranked(model.scores(hist), hist, k)
    report["fmkit"] = {**rank_metrics(top, cold_targets, n_items, k),
                       "cold_items_recommended_share": round(float((~model.warm[top]).mean()), 4)}
    return report


def _cold_items_report(train: pd.DataFrame, test: pd.DataFrame, users: list[str], index: dict[str, int],
                       vectors: np.ndarray, settings: FusionSettings, ease_l2: float, cold_share: float, k: int,
                       seed: int, draws: int) -> dict[str, Any]:
    """`draws` held-out draws (seeds seed, seed+1, ...) pooled over their users (module docstring)."""
    reports = [_cold_items_draw(train, test, users, index, vectors, settings, ease_l2, cold_share, k, seed + d)
               for d in range(draws)]
    counts = np.array([r["test_users_with_a_held_out_item"] for r in reports], dtype=np.float64)
    pooled: dict[str, Any] = {"held_out_items": reports[0]["held_out_items"], "draws": draws,
                              "test_users_with_a_held_out_item": int(counts.sum())}
    scored = [(r, n) for r, n in zip(reports, counts, strict=True) if n > 0]
    for method in ("popularity", "item_knn", "ease", "fmkit"):
        if not scored:
            break
        per_draw = [r[method] for r, _ in scored]
        weights = np.array([n for _, n in scored])
        pooled[method] = {name: round(float(np.average([m[name] for m in per_draw], weights=weights)), 4)
                          for name in (f"recall@{k}", f"ndcg@{k}")}
        pooled[method]["coverage"] = round(float(np.mean([m["coverage"] for m in per_draw])), 4)
        if method == "fmkit":
            pooled[method]["cold_items_recommended_share"] = round(float(np.average(
                [m["cold_items_recommended_share"] for m in per_draw], weights=weights)), 4)
            pooled[method][f"recall@{k}_per_draw"] = [m[f"recall@{k}"] for m in per_draw]
    return pooled


def evaluate_recommender(items_path: Path | str, ratings_path: Path | str, model: str = "all-MiniLM-L6-v2",
                         k: int = 10, embedder: Any | None = None, popularity_weights: Sequence[float] = (0.0, 0.3),
                         max_users: int | None = None, seed: int = 0, finetune_epochs: float = 0,
                         finetune_pairs: int = 4000, cold_share: float = 0.1, cold_draws: int = 5,
                         vectors: np.ndarray | None = None, **settings: Any) -> dict[str, Any]:
    """All methods on one split in one run; `vectors` (the item text vectors) skips embedding."""
    items = read_items(items_path)
    ratings = read_ratings(ratings_path)
    index = {str(i): n for n, i in enumerate(items["id"])}
    ratings = ratings[ratings["item"].isin(index)]
    train, test = leave_last_out(ratings)
    users = sorted(test["user"].unique(), key=lambda u: (len(u), u))
    if max_users is not None and len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist(), key=lambda u: (len(u), u))
    n_items = len(items)
    targets = np.array([index[i] for i in test.set_index("user").loc[users, "item"]], dtype=np.int64)
    train_users = sorted(train["user"].unique())
    all_histories = histories_of(train, train_users, index)  # what every model is fitted on
    histories = histories_of(train, users, index)  # the evaluated users'
    pop = popularity_vector(items, train)
    results: dict[str, Any] = {"users": len(users), "items": n_items, "train_ratings": len(train), "k": k,
                               "cold_start_targets": int((pop[targets] == 0).sum())}

    ease_l2, _ = tune_ease_l2(all_histories, n_items, k)
    results.update(_baselines(all_histories, histories, targets, n_items, k, ease_l2))

    start = time.perf_counter()
    if vectors is None:
        vectors = embed_items(items, model, embedder)
    results["embed_seconds"] = round(time.perf_counter() - start, 1)

    # fmkit: behaviour + text, weights chosen on the validation split of the histories.
    start = time.perf_counter()
    fusion_settings, validation = tune_fusion(all_histories, vectors, k)
    fusion = FusionModel.fit(fusion_settings, all_histories, vectors)
    top = ranked(fusion.scores(histories), histories, k)
    results["fmkit"] = {**rank_metrics(top, targets, n_items, k), "settings": fusion_settings.__dict__,
                        "validation": validation, "seconds": round(time.perf_counter() - start, 1),
                        "cold_items_recommended_share": round(float((pop[top] == 0).mean()), 4)}
    never_rated = pop[targets] == 0  # test items nobody rated in the histories: cold without holding anything out
    if never_rated.any():
        results["fmkit"][f"never_rated_targets_recall@{k}"] = rank_metrics(top[never_rated], targets[never_rated],
                                                                            n_items, k)[f"recall@{k}"]

    # The text-only recommender (no behaviour model), with each popularity blend weight asked for.
    by_user = {u: g for u, g in train.groupby("user", sort=False)}
    legacy = [[(index[i], float(r), float(t)) for i, r, t in zip(by_user[u]["item"], by_user[u]["rating"], by_user[u]["ts"],
                                                                 strict=True)] for u in users]
    for weight in popularity_weights:
        rec = Recommender(items, vectors, pop, RecSettings(embedder=model, popularity_weight=weight, **settings))
        name = "content" if weight == 0 else f"content+popularity({weight:g})"
        results[name] = rank_metrics(top_k(rec.scores(legacy), k), targets, n_items, k)

    if cold_share > 0:
        results["cold_items"] = _cold_items_report(train, test, users, index, vectors, fusion_settings, ease_l2,
                                                   cold_share, k, seed, cold_draws)
    if finetune_epochs > 0:
        results.update(_finetuned(items, train, legacy, targets, pop, model, k, finetune_epochs, finetune_pairs, seed,
                                  popularity_weights, settings))
    return results


def _finetuned(items: pd.DataFrame, train: pd.DataFrame, legacy: list[list[tuple[int, float, float]]],
               targets: np.ndarray, pop: np.ndarray, model: str, k: int, epochs: float, pairs: int, seed: int,
               popularity_weights: Sequence[float], settings: dict[str, Any]) -> dict[str, Any]:
    # The encoder is adapted on pairs from the histories only: the held-out items stay unseen.
    import tempfile

    from fmkit.apps.recommend import finetune_item_encoder

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        tuned = finetune_item_encoder(items, train, model, Path(tmp) / "encoder", epochs, pairs, seed)
        tuned_vectors = embed_items(items, str(tuned))
        out["finetune_seconds"] = round(time.perf_counter() - start, 1)
    for weight in popularity_weights:
        rec = Recommender(items, tuned_vectors, pop, RecSettings(embedder=model, popularity_weight=weight, **settings))
        name = "finetuned" if weight == 0 else f"finetuned+popularity({weight:g})"
        out[name] = rank_metrics(rec.top_k(legacy, k), targets, len(items), k)
    return out
