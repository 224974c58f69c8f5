"""Recommender on MovieLens (latest-small, 2016): per-user temporal leave-last-out, the text-based
recommender (MiniLM item vectors, with and without a popularity blend) against popularity and
item-kNN computed in the same run.

    .venv/bin/python bench/apps_recommend.py > .bench/apps_recommend.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, machine
from fmkit.apps.recommend_eval import evaluate_recommender


def main() -> None:
    data = SHARED / "movielens_latest_small"
    result = evaluate_recommender(data / "movies.csv", data / "ratings.csv", popularity_weights=(0.0, 0.1, 0.3, 1.0))
    print(json.dumps({"machine": machine(), **result}, indent=1))


if __name__ == "__main__":
    main()
