"""Recommender (issue 21) on MovieLens latest-small (2016): popularity, item-kNN, EASE and fmkit's
behaviour + text model, all fitted on the same per-user temporal leave-last-out histories and ranking
the full catalogue, in one run (`fmkit app recommend eval` is the same call). Also: the users whose
test item was held out of every history (cold items; 10% of the catalogue, five independent draws pooled,
since one draw leaves about 70 such users), and the text-only recommender.

    .venv/bin/python bench/recommend.py --threads 2 > .bench/recommend.json

RecBole (SASRec, EASE) on the same split: bench/recbole_reference.py, run in RecBole's own venv (recbole 1.2.1
pins ray<=2.6.3, which would replace the ray that `fmkit embed --engine ray` uses here).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence encoder for the item texts")
    parser.add_argument("--cold-share", type=float, default=0.1, help="share of items held out of every history")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # numpy's BLAS reads these on import
        os.environ[var] = str(args.threads)
    import torch

    from fmkit.apps.recommend_eval import evaluate_recommender

    torch.set_num_threads(args.threads)
    data = SHARED / "movielens_latest_small"
    start = time.perf_counter()
    result = evaluate_recommender(data / "movies.csv", data / "ratings.csv", model=args.model, cold_share=args.cold_share,
                                  popularity_weights=(0.0, 0.3))
    gain = {}
    for metric in ("recall@10", "ndcg@10"):  # against the best baseline on that metric
        best = max(result[name][metric] for name in ("popularity", "item_knn", "ease"))
        gain[metric] = round(result["fmkit"][metric] / best - 1, 3)
    cold = result.get("cold_items", {})
    cold_recall = {name: cold[name]["recall@10"] for name in ("popularity", "item_knn", "ease", "fmkit") if name in cold}
    print(json.dumps({"machine": machine(), "threads": args.threads, "seconds": round(time.perf_counter() - start, 1),
                      "fmkit_gain_over_best_baseline": gain, "cold_items_recall@10": cold_recall, **result}, indent=1))


if __name__ == "__main__":
    main()
