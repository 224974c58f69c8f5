"""Suspect labels (issue 20): fmkit audit's ranking vs cleanlab's find_label_issues vs a loss ranking, on
banking77 train with 10% of the labels flipped (at random, and systematically to each class's most confused
class), all three on the same out-of-fold probabilities of 5-fold linear probes on frozen MiniLM vectors.
Then the linear probe's test accuracy after dropping the suspects, against training on the noisy and on the
clean labels.

    flock /tmp/fmkit/heavy.lock python bench/label_noise.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine
from _strategy_data import load

from fmkit.config import load_config
from fmkit.data.labeled import LabeledTexts
from fmkit.data.tasks.classification import LabelMap
from fmkit.evaluation.label_quality import (
    keep_groups_together,
    near_duplicate_groups,
    nearest_neighbours,
    stratified_folds,
)
from fmkit.training.logistic import fit_logistic_regression
from fmkit.workflows.audit import DUPLICATE_COSINE, NEIGHBOURS, out_of_fold_probabilities, rank_suspects
from fmkit.workflows.frozen_vectors import frozen_vectors

FOLDS = 5


def probe_accuracy(train: torch.Tensor, y: np.ndarray, test: torch.Tensor, y_test: np.ndarray, k: int, c: float) -> float:
    fit = fit_logistic_regression(train, torch.as_tensor(y), k, c=c)
    return float(((test @ fit.weight.T + fit.bias).argmax(1).numpy() == y_test).mean())


def ranking_scores(flipped: np.ndarray, flagged: np.ndarray, ranking: np.ndarray) -> dict[str, float]:
    """precision/recall of the flagged set, and precision@k = recall@k of the ranking at k = number flipped."""
    k = int(flipped.sum())
    hits = flipped[flagged].sum()
    return {"flagged": int(flagged.sum()), "precision": round(float(hits / max(1, flagged.sum())), 4),
            "recall": round(float(hits / k), 4), "precision_at_k": round(float(flipped[ranking[:k]].mean()), 4)}


def full_ranking(flag_order: np.ndarray, score_low_first: np.ndarray, n: int) -> np.ndarray:
    """The flagged examples in their order, then every other example by the score (lowest first)."""
    rest = np.setdiff1d(np.arange(n), flag_order)
    return np.concatenate([flag_order, rest[np.argsort(score_low_first[rest], kind="stable")]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from cleanlab.filter import find_label_issues as cleanlab_find

    cfg = load_config(None, {"train.progress": False})
    c = cfg.strategy.probe.c
    train, test = load("banking77")
    labels = LabelMap.from_labels(train.labels)
    y_clean, y_test = labels.encode(train.labels), labels.encode(test.labels)
    k, n = len(labels), len(y_clean)
    x, x_test = frozen_vectors(cfg, train.texts, "banking77 train"), frozen_vectors(cfg, test.texts, "banking77 test")
    unit = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    neighbours = nearest_neighbours(unit, NEIGHBOURS)
    fold = keep_groups_together(stratified_folds(y_clean, FOLDS, 42), near_duplicate_groups(neighbours, DUPLICATE_COSINE))

    clean_probs = out_of_fold_probabilities(x, y_clean, k, fold, c)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_clean, clean_probs.argmax(1)), 1)
    np.fill_diagonal(confusion, -1)
    partner = confusion.argmax(1)  # each class's most confused other class
    acc_clean = probe_accuracy(x, y_clean, x_test, y_test, k, c)

    rng = np.random.default_rng(0)
    flip_idx = rng.choice(n, size=round(args.rate * n), replace=False)
    scenarios = {}
    random_noisy = y_clean.copy()
    random_noisy[flip_idx] = (y_clean[flip_idx] + rng.integers(1, k, size=len(flip_idx))) % k  # any other class
    scenarios["random"] = random_noisy
    systematic = y_clean.copy()
    systematic[flip_idx] = partner[y_clean[flip_idx]]
    scenarios["systematic"] = systematic

    results: dict[str, object] = {"machine": machine(), "threads": args.threads, "train": n, "test": len(y_test),
                                  "classes": k, "flipped": len(flip_idx), "clean_accuracy": round(acc_clean, 4)}
    for name, noisy in scenarios.items():
        flipped = noisy != y_clean
        start = time.perf_counter()
        probs = out_of_fold_probabilities(x, noisy, k, fold, c)
        probe_seconds = time.perf_counter() - start
        data = LabeledTexts(list(train.texts), [labels.labels[i] for i in noisy], "banking77-noisy")
        start = time.perf_counter()
        suspects = rank_suspects(data, [str(i) for i in range(n)], labels, noisy, probs, neighbours, set(), DUPLICATE_COSINE)
        fm_order = np.array([s.row for s in suspects if s.doubts_label], dtype=np.int64)
        fm_seconds = time.perf_counter() - start
        given_p = probs[np.arange(n), noisy]
        others = probs.copy()
        others[np.arange(n), noisy] = -np.inf
        margin = given_p - others.max(1)
        start = time.perf_counter()
        cl_order = np.asarray(cleanlab_find(noisy, probs, filter_by="prune_by_noise_rate",
                                            return_indices_ranked_by="normalized_margin", n_jobs=1), dtype=np.int64)
        cl_seconds = time.perf_counter() - start
        loss_order = np.argsort(given_p, kind="stable")  # highest cross-entropy loss first
        fm_mask, cl_mask = np.zeros(n, bool), np.zeros(n, bool)
        fm_mask[fm_order], cl_mask[cl_order] = True, True
        loss_mask = np.zeros(n, bool)
        loss_mask[loss_order[: len(fm_order)]] = True  # as many as fmkit flags
        acc_noisy = probe_accuracy(x, noisy, x_test, y_test, k, c)
        dropped = {m: probe_accuracy(x[~mask], noisy[~mask], x_test, y_test, k, c)
                   for m, mask in (("fmkit", fm_mask), ("cleanlab", cl_mask), ("loss", loss_mask))}
        lost = acc_clean - acc_noisy
        results[name] = {
            "oof_accuracy_vs_given": round(float((probs.argmax(1) == noisy).mean()), 4),
            "probe_5fold_seconds": round(probe_seconds, 1),
            "rank_seconds": {"fmkit": round(fm_seconds, 2), "cleanlab": round(cl_seconds, 2)},
            "fmkit": ranking_scores(flipped, fm_mask, full_ranking(fm_order, margin, n)),
            "cleanlab": ranking_scores(flipped, cl_mask, full_ranking(cl_order, margin, n)),
            "loss": ranking_scores(flipped, loss_mask, loss_order),
            "accuracy": {"clean": round(acc_clean, 4), "noisy": round(acc_noisy, 4),
                         **{f"dropped_{m}": round(a, 4) for m, a in dropped.items()}},
            "recovered_share": {m: round((a - acc_noisy) / lost, 3) if lost > 0 else None for m, a in dropped.items()},
        }
        print(name, json.dumps(results[name]), flush=True)
    WORK.mkdir(exist_ok=True)
    (WORK / "label_noise.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
