"""Financial sentiment as a score: `--task regression` on twitter_financial_news_sentiment (bearish -1, neutral 0,
bullish +1) against the score a user would derive from a classifier, P(bullish) - P(bearish).

Both are fmkit runs on the bundled all-MiniLM-L6-v2, trained on sent_train.csv (9,543 tweets) and scored on
sent_valid.csv (2,388): Spearman / Pearson / RMSE of the score against -1/0/+1, and the classifier's accuracy.

    .venv/bin/python bench/finance_score.py [--epochs 2]
Writes .bench/finance_score/results.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, machine  # noqa: E402

WORK = REPO / ".bench" / "finance_score"
SCORE = {"0": -1.0, "1": 1.0, "2": 0.0}  # bearish, bullish, neutral
NAMES = {"0": "bearish", "1": "bullish", "2": "neutral"}


def convert(name: str) -> tuple[Path, Path, list[float]]:
    """The split as a score file and as a named-class file; the gold scores in file order."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(SHARED / "twitter_financial_news_sentiment" / name, encoding="utf-8", newline="") as fh:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
    scored, named = WORK / f"score_{name}", WORK / f"class_{name}"
    with open(scored, "w", encoding="utf-8", newline="") as a, open(named, "w", encoding="utf-8", newline="") as b:
        wa, wb = csv.writer(a), csv.writer(b)
        wa.writerow(["text", "score"])
        wb.writerow(["text", "label"])
        for text, label in rows:
            wa.writerow([text, SCORE[label]])
            wb.writerow([text, NAMES[label]])
    return scored, named, [SCORE[label] for _, label in rows]


def fmkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "fmkit", *args], check=True, cwd=REPO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=2)
    args = parser.parse_args()
    import numpy as np
    import torch
    from scipy.stats import pearsonr, spearmanr

    train_score, train_class, _ = convert("sent_train.csv")
    valid_score, valid_class, gold = convert("sent_valid.csv")
    common = ["--strategy", "full", "--epochs", f"{args.epochs:g}", "--overwrite", "--quiet"]
    fmkit("train", "--task", "regression", "--data", str(train_score), "--eval", str(valid_score),
          "--output", str(WORK / "regression"), *common)
    regression = json.loads((WORK / "regression" / "metrics.json").read_text())
    fmkit("train", "--data", str(train_class), "--eval", str(valid_class), "--output", str(WORK / "classifier"), *common)
    classifier = json.loads((WORK / "classifier" / "metrics.json").read_text())
    import fmkit as api

    predictor = api.load(WORK / "classifier")
    with open(valid_class, encoding="utf-8", newline="") as fh:
        texts = [r["text"] for r in csv.DictReader(fh)]
    probs = predictor.predict_proba(texts)
    labels = list(predictor.labels)
    derived = probs[:, labels.index("bullish")] - probs[:, labels.index("bearish")]
    rows: list[dict[str, Any]] = [
        {"name": "fmkit --task regression (score -1/0/+1)", "spearman": round(regression["spearman"], 4),
         "pearson": round(regression["pearson"], 4), "rmse": round(regression["rmse"], 4),
         "train_seconds": regression["train_seconds"]},
        {"name": "fmkit classifier, score = P(bullish) - P(bearish)",
         "spearman": round(float(spearmanr(gold, derived).statistic), 4),
         "pearson": round(float(pearsonr(gold, derived).statistic), 4),
         "rmse": round(float(np.sqrt(np.mean((np.asarray(gold) - derived) ** 2))), 4),
         "accuracy": round(classifier["accuracy"], 4), "train_seconds": classifier["train_seconds"]},
    ]
    result = {"machine": machine(), "threads": torch.get_num_threads(), "epochs": args.epochs, "rows": rows}
    (WORK / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
