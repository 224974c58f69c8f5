"""Shared by the serving benchmarks: a fine-tuned SST-2 model, trained once and reused.

`ensure_sst2_model()` trains all-MiniLM-L6-v2 for one epoch on the first N rows of SST-2 train
(written to .bench/serving/, never into the repo) with `fmkit train`, unless that run already exists.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "sst2" / "SST-2"
WORK = REPO / ".bench" / "serving"


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    """SST-2 files: header 'label<TAB>sentence' (train) or 'label<TAB>content' (dev/test)."""
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for row in reader:
            labels.append(int(row[0]))
            texts.append(row[1])
    return texts, labels


def ensure_sst2_model(train_rows: int = 4000) -> Path:
    run = WORK / f"sst2-minilm-{train_rows}"
    model = run / "model"
    if (model / "fmkit.json").is_file():
        return model
    WORK.mkdir(parents=True, exist_ok=True)
    texts, labels = read_tsv(SST2 / "train.tsv")
    subset = WORK / f"sst2-train-{train_rows}.csv"
    with open(subset, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for text, label in zip(texts[:train_rows], labels[:train_rows], strict=True):
            writer.writerow([text, "positive" if label == 1 else "negative"])
    dev = WORK / "sst2-dev.csv"
    write_labelled_csv(dev, *read_tsv(SST2 / "dev.tsv"))
    cmd = [sys.executable, "-m", "fmkit", "train", "--data", str(subset), "--eval", str(dev), "--epochs", "1",
           "--max-length", "64", "--output", str(run), "--overwrite", "--quiet"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return model


def write_labelled_csv(path: Path, texts: list[str], labels: list[int]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for text, label in zip(texts, labels, strict=True):
            writer.writerow([text, "positive" if label == 1 else "negative"])
    return path


if __name__ == "__main__":
    print(ensure_sst2_model(int(sys.argv[1]) if len(sys.argv) > 1 else 4000))
