"""What to label next (issue 20): a simulation of `fmkit suggest` on AG News and banking77.

Start from 2 labelled examples per class, add 100 per round for 5 rounds, the model a linear probe on frozen
MiniLM vectors (each dataset encoded once; every round and policy reuses the vectors). Policies: uncertainty
(margin), diversity (k-center greedy seeded by the labelled set), mix (k-center among the 5 x 100 most
uncertain), random; 3 seeds. Test accuracy after each round. The pool is the training file (AG News: the
10,001-row train sample; banking77: train), the test set the published one.

    flock /tmp/fmkit/heavy.lock python bench/active_learning.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine
from _strategy_data import load

from fmkit.config import load_config
from fmkit.data.tasks.classification import LabelMap
from fmkit.evaluation.selection import k_center_greedy, margin_uncertainty, mixed_selection, top_uncertain
from fmkit.training.logistic import fit_logistic_regression
from fmkit.workflows.frozen_vectors import frozen_vectors

POLICIES = ("uncertainty", "diversity", "mix", "random")


def pick(policy: str, probs: np.ndarray, unit: np.ndarray, labelled: np.ndarray, unlabelled: np.ndarray, n: int,
         rng: np.random.Generator) -> np.ndarray:
    if policy == "random":
        return rng.choice(unlabelled, size=n, replace=False)
    doubt = margin_uncertainty(probs)
    if policy == "uncertainty":
        chosen = top_uncertain(doubt, n).index
    elif policy == "diversity":
        chosen = k_center_greedy(unit[unlabelled], n, unit[labelled]).index
    else:
        chosen = mixed_selection(unit[unlabelled], doubt, n, unit[labelled]).index
    return unlabelled[chosen]


def run(name: str, cfg: object, rounds: int, per_round: int, seeds: list[int]) -> dict[str, object]:
    train, test = load(name)
    labels = LabelMap.from_labels(train.labels)
    y, y_test = labels.encode(train.labels), labels.encode(test.labels)
    k = len(labels)
    x = frozen_vectors(cfg, train.texts, f"{name} train")  # type: ignore[arg-type]
    x_test = frozen_vectors(cfg, test.texts, f"{name} test")  # type: ignore[arg-type]
    unit = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    c = cfg.strategy.probe.c  # type: ignore[attr-defined]
    curves: dict[str, list[list[float]]] = {p: [] for p in POLICIES}
    sizes: list[int] = []
    for seed in seeds:
        rng0 = np.random.default_rng(seed)
        start = np.concatenate([rng0.permutation(np.flatnonzero(y == cls))[:2] for cls in range(k)])
        for policy in POLICIES:
            rng = np.random.default_rng(seed + 1000)
            labelled = start.copy()
            accs = []
            sizes = []
            for step in range(rounds + 1):
                fit = fit_logistic_regression(x[labelled], torch.as_tensor(y[labelled]), k, c=c)
                accs.append(float(((x_test @ fit.weight.T + fit.bias).argmax(1).numpy() == y_test).mean()))
                sizes.append(len(labelled))
                if step == rounds:
                    break
                unlabelled = np.setdiff1d(np.arange(len(y)), labelled)
                probs = torch.softmax(x[unlabelled] @ fit.weight.T + fit.bias, -1).numpy()
                labelled = np.concatenate([labelled, pick(policy, probs, unit, labelled, unlabelled, per_round, rng)])
            curves[policy].append(accs)
            print(name, seed, policy, [round(a, 4) for a in accs], flush=True)
    mean = {p: np.mean(curves[p], axis=0).tolist() for p in POLICIES}
    std = {p: np.std(curves[p], axis=0).tolist() for p in POLICIES}
    random_final = mean["random"][-1]
    reach: dict[str, object] = {}
    for p in POLICIES:
        first = next((sizes[i] for i, a in enumerate(mean[p]) if a >= random_final), None)
        reach[p] = {"labels": first, "share_of_random": round(first / sizes[-1], 3) if first else None}
    return {"pool": len(y), "test": len(y_test), "classes": k, "labels": sizes, "mean": mean, "std": std,
            "reaches_random_final": reach}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=["ag_news", "banking77"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    cfg = load_config(None, {"train.progress": False})
    results: dict[str, object] = {"machine": machine(), "threads": args.threads}
    for name in args.datasets:
        results[name] = run(name, cfg, args.rounds, args.per_round, args.seeds)
    WORK.mkdir(exist_ok=True)
    (WORK / "active_learning.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
