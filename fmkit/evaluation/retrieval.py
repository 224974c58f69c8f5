"""Retrieval quality: recall@k, MRR and nDCG@k from ranked ids and the ids that are relevant.

Binary relevance. recall@k = |relevant in top k| / |relevant| (for one relevant id per query it
is the hit rate); MRR = mean of 1/rank of the first relevant hit (0 when none is ranked);
nDCG@k = DCG of the ranking / DCG of an ideal ranking, with gain 1/log2(rank + 1).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

DEFAULT_KS = (1, 5, 10)


def retrieval_metrics(ranked: Sequence[Sequence[str]], relevant: Sequence[Collection[str]],
                      ks: Sequence[int] = DEFAULT_KS, ndcg_k: int = 10) -> dict[str, Any]:
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings for {len(relevant)} relevance sets")
    n = len(ranked)
    if n == 0:
        return {"num_queries": 0}
    recall = {k: 0.0 for k in ks}
    mrr = 0.0
    ndcg = 0.0
    for ids, rel in zip(ranked, relevant, strict=True):
        rel_set = set(rel)
        if not rel_set:
            raise ValueError("a query without relevant ids cannot be scored")
        hits = [doc in rel_set for doc in ids]
        for k in ks:
            recall[k] += sum(hits[:k]) / len(rel_set)
        first = next((i for i, h in enumerate(hits) if h), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits[:ndcg_k]) if h)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel_set), ndcg_k)))
        ndcg += dcg / ideal
    metrics: dict[str, Any] = {f"recall@{k}": recall[k] / n for k in ks}
    metrics["mrr"] = mrr / n
    metrics[f"ndcg@{ndcg_k}"] = ndcg / n
    metrics["num_queries"] = n
    return metrics
