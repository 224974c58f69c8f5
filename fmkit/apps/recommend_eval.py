"""Per-user temporal leave-last-out evaluation of the recommender against popularity and item-kNN.

For every user with at least `min_history + 1` ratings, the latest rating is the test item and
everything before it is the history. Popularity counts and item-kNN co-occurrence are computed from
the histories only, so no method sees a test interaction. Metrics over users: recall@k (the held-out
item is in the top k), nDCG@k (1 / log2(rank + 1) for that item) and catalogue coverage (share of all
items recommended to at least one user).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmkit.apps.recommend import Recommender, RecSettings, embed_items, popularity_vector, read_items, read_ratings, top_k


def leave_last_out(ratings: pd.DataFrame, min_history: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = ratings.sort_values(["user", "ts", "item"], kind="stable")
    last = ordered.groupby("user").tail(1)
    counts = ordered.groupby("user")["item"].transform("size")
    keep = counts > min_history
    test = last[keep.loc[last.index]]
    train = ordered[keep & ~ordered.index.isin(test.index)]
    return train, test


def rank_metrics(top: np.ndarray, targets: np.ndarray, n_items: int, k: int = 10) -> dict[str, float]:
    hits = top[:, :k] == targets[:, None]
    rank = np.where(hits.any(1), hits.argmax(1), -1)
    ndcg = np.where(rank >= 0, 1.0 / np.log2(np.maximum(rank, 0) + 2), 0.0)
    return {f"recall@{k}": round(float((rank >= 0).mean()), 4), f"ndcg@{k}": round(float(ndcg.mean()), 4),
            "coverage": round(len(np.unique(top[:, :k])) / n_items, 4)}


def _mask_seen(scores: np.ndarray, seen: Sequence[Sequence[int]]) -> np.ndarray:
    for u, idx in enumerate(seen):
        scores[u, list(idx)] = -np.inf
    return scores


def evaluate_recommender(items_path: Path | str, ratings_path: Path | str, model: str = "all-MiniLM-L6-v2",
                         k: int = 10, embedder: Any | None = None, popularity_weights: Sequence[float] = (0.0, 0.3),
                         max_users: int | None = None, seed: int = 0, finetune_epochs: float = 0,
                         finetune_pairs: int = 4000, **settings: Any) -> dict[str, Any]:
    items = read_items(items_path)
    ratings = read_ratings(ratings_path)
    index = {str(i): n for n, i in enumerate(items["id"])}
    ratings = ratings[ratings["item"].isin(index)]
    train, test = leave_last_out(ratings)
    users = sorted(test["user"].unique(), key=lambda u: (len(u), u))
    if max_users is not None and len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist(), key=lambda u: (len(u), u))
    n_items = len(items)
    targets = np.array([index[i] for i in test.set_index("user").loc[users, "item"]])
    by_user = {u: g for u, g in train.groupby("user")}
    histories = [[(index[i], float(r), float(t)) for i, r, t in zip(by_user[u]["item"], by_user[u]["rating"],
                                                                     by_user[u]["ts"], strict=True)] for u in users]
    seen = [[h[0] for h in hist] for hist in histories]
    results: dict[str, Any] = {"users": len(users), "items": n_items, "train_ratings": len(train), "k": k,
                               "cold_start_targets": int((popularity_vector(items, train)[targets] == 0).sum())}

    # Popularity: most-rated items in the histories, unseen ones first.
    pop = popularity_vector(items, train)
    scores = _mask_seen(np.tile(pop, (len(users), 1)), seen)
    results["popularity"] = rank_metrics(top_k(scores, k), targets, n_items, k)

    # Item-kNN: cosine between item columns of the (user x item) matrix of the histories, all neighbours.
    start = time.perf_counter()
    train_users = sorted(train["user"].unique())
    uidx = {u: n for n, u in enumerate(train_users)}
    matrix = np.zeros((len(train_users), n_items), dtype=np.float32)
    matrix[[uidx[u] for u in train["user"]], [index[i] for i in train["item"]]] = 1.0
    norms = np.linalg.norm(matrix, axis=0)
    normed = matrix / np.where(norms > 0, norms, 1.0)
    mine = np.stack([matrix[uidx[u]] for u in users])
    scores = _mask_seen((mine @ normed.T) @ normed, seen)
    results["item_knn"] = {**rank_metrics(top_k(scores, k), targets, n_items, k),
                           "seconds": round(time.perf_counter() - start, 1)}

    # The text-based recommender, with each popularity blend weight asked for.
    start = time.perf_counter()
    vectors = embed_items(items, model, embedder)
    results["embed_seconds"] = round(time.perf_counter() - start, 1)
    for weight in popularity_weights:
        rec = Recommender(items, vectors, pop, RecSettings(embedder=model, popularity_weight=weight, **settings))
        name = "content" if weight == 0 else f"content+popularity({weight:g})"
        results[name] = rank_metrics(rec.top_k(histories, k), targets, n_items, k)
    # Cold start: how often a never-rated item reaches a top-k list at all (popularity and kNN never do that).
    rec = Recommender(items, vectors, pop, RecSettings(embedder=model, **settings))
    top = rec.top_k(histories, k)
    results["content_cold_items_recommended_share"] = round(float((pop[top] == 0).mean()), 4)

    if finetune_epochs > 0:
        # The encoder is adapted on pairs from the histories only: the held-out items stay unseen.
        import tempfile

        from fmkit.apps.recommend import finetune_item_encoder

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            tuned = finetune_item_encoder(items, train, model, Path(tmp) / "encoder", finetune_epochs, finetune_pairs, seed)
            tuned_vectors = embed_items(items, str(tuned))
            results["finetune_seconds"] = round(time.perf_counter() - start, 1)
        for weight in popularity_weights:
            rec = Recommender(items, tuned_vectors, pop, RecSettings(embedder=model, popularity_weight=weight, **settings))
            name = "finetuned" if weight == 0 else f"finetuned+popularity({weight:g})"
            results[name] = rank_metrics(rec.top_k(histories, k), targets, n_items, k)
    return results
