"""The ladder's datasets as (texts, labels) splits, k-per-class samples, and TSV files fmkit reads.

  sst2       train.tsv -> dev.tsv (872)
  ag_news    dev.tsv (10,001, the AG News train sample) -> test.tsv (7,600; --test-rows subsamples, stratified)
  banking77  train.csv -> test.csv (3,080)
  twitter_fin  sent_train.csv -> sent_valid.csv (2,388)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import SHARED, WORK


@dataclass
class Split:
    texts: list[str]
    labels: list[str]

    def take(self, idx: np.ndarray) -> Split:
        return Split([self.texts[i] for i in idx], [self.labels[i] for i in idx])


def _read(path: Path, sep: str, header: bool, text_col: int | str, label_col: int | str) -> Split:
    import pandas as pd

    df = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                     quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL)
    texts = df[text_col] if isinstance(text_col, str) else df.iloc[:, text_col]
    labels = df[label_col] if isinstance(label_col, str) else df.iloc[:, label_col]
    return Split([str(t) for t in texts], [str(y) for y in labels])


def load(name: str) -> tuple[Split, Split]:
    if name == "sst2":
        return (_read(SHARED / "sst2/SST-2/train.tsv", "\t", True, "sentence", "label"),
                _read(SHARED / "sst2/SST-2/dev.tsv", "\t", True, 1, 0))
    if name == "ag_news":
        return (_read(SHARED / "ag_news/dev.tsv", "\t", False, 0, 1), _read(SHARED / "ag_news/test.tsv", "\t", False, 0, 1))
    if name == "banking77":
        return (_read(SHARED / "banking77/train.csv", ",", True, "text", "category"),
                _read(SHARED / "banking77/test.csv", ",", True, "text", "category"))
    if name == "twitter_fin":
        return (_read(SHARED / "twitter_financial_news_sentiment/sent_train.csv", ",", True, "text", "label"),
                _read(SHARED / "twitter_financial_news_sentiment/sent_valid.csv", ",", True, "text", "label"))
    raise ValueError(name)


def per_class(split: Split, k: int, seed: int) -> Split:
    """k examples of every class (all of a class with fewer), deterministic in seed."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(split.labels)
    idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c in sorted(set(split.labels))])
    return split.take(rng.permutation(idx))


def stratified_rows(split: Split, n: int | None, seed: int = 0) -> Split:
    if n is None or n >= len(split.texts):
        return split
    labels = np.asarray(split.labels)
    classes = sorted(set(split.labels))
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: n // len(classes)] for c in classes])
    return split.take(np.sort(idx))


def write_tsv(split: Split, name: str) -> Path:
    WORK.mkdir(exist_ok=True)
    path = WORK / f"{name}.tsv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["text", "label"])
        for text, label in zip(split.texts, split.labels, strict=True):
            writer.writerow([text.replace("\t", " ").replace("\n", " "), label])
    return path
