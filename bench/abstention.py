"""Label-set mismatches and abstention (issue 20, items 4 and 5) on CLINC150.

A linear probe on frozen MiniLM is trained on the 150 in-scope intents (train: 15,000 rows), with an abstain
threshold tuned on the in-scope validation split (3,000 rows) for a target precision (`eval.target_precision`).
The test file is what a user would evaluate on: the 4,500 in-scope test rows plus the 1,000 out-of-scope ones,
labelled `oos`, a label the model never saw. `fmkit eval` refuses it by default; for each target the script reports
`--unknown-labels wrong` (oos rows count as errors: the number for the whole file) against `skip` (in-scope
rows only), and what the tuned threshold does on test against no abstention and against a fixed 0.5 cut on
the top probability (what one writes by hand after an HF Trainer run).

    flock /tmp/fmkit/heavy.lock python bench/abstention.py --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, WORK, machine

import fmkit
from fmkit.errors import DataError
from fmkit.evaluation.abstention import abstention_metrics
from fmkit.inference.predictor import Predictor


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def clinc_files(folder: Path) -> tuple[Path, Path, Path]:
    data = json.loads((SHARED / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    return (write_csv(folder / "train.csv", data["train"]), write_csv(folder / "val.csv", data["val"]),
            write_csv(folder / "test_with_oos.csv", data["test"] + data["oos_test"]))


def rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def cut_row(policy: str, cut: float, correct: np.ndarray, top: np.ndarray, in_scope: np.ndarray) -> dict[str, Any]:
    """What answering only at top probability >= cut does on the test file, with and without its oos rows."""
    return {"policy": policy, "threshold": round(cut, 4),
            "with_oos": rounded(abstention_metrics(correct, top, cut)),
            "in_scope": rounded(abstention_metrics(correct[in_scope], top[in_scope], cut)),
            "oos_abstained": round(float((top[~in_scope] < cut).mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.95, 0.98, 0.99])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=WORK / "abstention.json")
    args = parser.parse_args()

    train, val, test = clinc_files(WORK / "clinc150")
    with open(test, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    result: dict[str, Any] = {"machine": machine(), "model": args.model, "strategy": "linear-probe",
                              "train_rows": 15000, "val_rows": 3000, "test_rows": len(rows), "runs": []}
    for target in args.targets:
        run = WORK / f"abstention-run-{target:g}"
        shutil.rmtree(run, ignore_errors=True)  # this script's own scratch run from an earlier invocation
        started = time.perf_counter()
        trained = fmkit.train(data=str(train), eval=str(val), model=args.model, strategy="linear-probe",
                              output=str(run), **{"eval.target_precision": target, "train.threads": args.threads,
                                                  "train.progress": False, "track.tensorboard": False,
                                                  "track.registry": False})
        train_s = time.perf_counter() - started
        if "refusal" not in result:
            try:
                fmkit.evaluate(run, test)
                result["refusal"] = "(no refusal)"
            except DataError as exc:
                result["refusal"] = str(exc)
        wrong = fmkit.evaluate(run, test, unknown_labels="wrong")
        skip = fmkit.evaluate(run, test, unknown_labels="skip")
        # The same test probabilities, for the baselines: no abstention, and a fixed 0.5 cut written by hand.
        predictor = Predictor.load(run)
        probs = predictor.predict_proba([r["text"] for r in rows])
        index = {label: i for i, label in enumerate(predictor.labels)}
        truth = np.array([index.get(r["label"], -1) for r in rows])
        correct, top, in_scope = probs.argmax(1) == truth, probs.max(1), truth >= 0
        cuts = [cut_row("no abstention", 0.0, correct, top, in_scope), cut_row("fixed 0.5", 0.5, correct, top, in_scope)]
        threshold = predictor.abstain_threshold
        if threshold is not None:  # None: no threshold reached the target on val (the tuning record says so)
            cuts.append(cut_row(f"tuned for {target:g}", threshold, correct, top, in_scope))
        result["runs"].append({
            "target_precision": target, "train_seconds": round(train_s, 1),
            "tuning_on_val": trained.metrics.get("abstention"),
            "unknown_labels_wrong": {k: round(wrong[k], 4) for k in ("accuracy", "macro_f1", "num_examples")},
            "unknown_labels_skip": {k: round(skip[k], 4) for k in ("accuracy", "macro_f1", "num_examples")},
            "eval_abstention_wrong": rounded(wrong.get("abstention", {})),
            "eval_abstention_skip": rounded(skip.get("abstention", {})),
            "cuts_on_test": cuts,
        })
        shutil.rmtree(run, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
