"""Recommender (issue 21): RecBole's SASRec and EASE next to fmkit's recommender on fmkit's own split.

fmkit's per-user temporal leave-last-out split of MovieLens latest-small (`leave_last_out` in
fmkit/apps/recommend_eval.py: each user's ratings ordered by (timestamp, item id), the last one is the
test item) is written as RecBole atomic files; RecBole runs in its own virtual environment as a child
process (RecBole 1.2.1 pins ray<=2.6.3, which would replace the ray in fmkit's venv), and fmkit's
evaluation runs in this process, on the same ratings, in the same invocation.

    flock /tmp/fmkit/heavy.lock .venv/bin/python bench/recbole_reference.py \
        --recbole-python /tmp/recbole-venv/bin/python --threads 2 --sasrec-epochs 3

The RecBole venv: `python3.11 -m venv /tmp/recbole-venv; pip install torch==2.13.0` (the CPU wheel) then
`pip install recbole` (1.2.1). How the protocols line up:
- The .inter file holds fmkit's filtered ratings (items in movies.csv; users with >= 2 ratings) with
  `timestamp` = the rating's position in fmkit's (user, timestamp, item) order, so RecBole's sort by
  (user, time) reproduces fmkit's tie-breaking (MovieLens users rate many films in the same second).
  The .item file lists every film in movies.csv, so RecBole ranks the same 9,125-item catalogue.
- `eval_args: split {'LS': 'test_only'}, order TO, group_by user, mode full`: RecBole trains on every
  rating but each user's last and tests on that last one, which is fmkit's test item (the child checks
  this user by user and fails otherwise). `valid_and_test` would also hold out the second-last rating,
  which fmkit's models see, so it is not used; without a validation split SASRec trains a fixed number of
  epochs (no early stopping) and the last epoch is evaluated.
- Two numbers per RecBole model: "RecBole's evaluator" is RecBole's own full-sort evaluation, which
  for sequential models (SASRec) does not remove the user's history from the ranking; "history removed"
  ranks the catalogue minus the user's history from the same model scores, as fmkit's eval does. For EASE
  (a general model) RecBole already removes the history, so the two agree.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATASET = "ml_small_fmkit_split"
K = 10


# --- the child: runs inside RecBole's venv, imports nothing from fmkit ----------------------------------


def _split_from_inter(inter_path: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each user's history items (in order) and test item, read back from the .inter file written."""
    rows: dict[str, list[tuple[int, str]]] = {}
    with inter_path.open() as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for user, item, stamp in reader:
            rows.setdefault(user, []).append((int(stamp), item))
    history, test = {}, {}
    for user, seq in rows.items():
        items = [item for _, item in sorted(seq)]
        history[user], test[user] = items[:-1], items[-1]
    return history, test


def _history_removed_metrics(model: Any, test_data: Any, dataset: Any, history: dict[str, list[str]],
                             expected_test: dict[str, str]) -> dict[str, Any]:
    """recall@K / nDCG@K / coverage ranking the catalogue minus each user's history (fmkit's protocol)."""
    import torch

    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    user_token, item_token = dataset.field2id_token[uid_field], dataset.field2id_token[iid_field]
    item_id = dataset.field2token_id[iid_field]
    hits, gains, recommended, checked = 0, 0.0, set(), 0
    model.eval()
    with torch.no_grad():
        for batch in test_data:
            interaction, _, positive_u, positive_i = batch
            scores = model.full_sort_predict(interaction).view(len(interaction), -1).clone()
            scores[:, 0] = -torch.inf  # RecBole's padding id
            users = interaction[uid_field].tolist()
            targets = {}
            for row, col in zip(positive_u.tolist(), positive_i.tolist(), strict=True):
                targets[row] = col
            for row, uid in enumerate(users):
                user = str(user_token[uid])
                target = str(item_token[targets[row]])
                if target != expected_test[user]:
                    raise SystemExit(f"RecBole's test item for user {user} is {target}, fmkit's is {expected_test[user]}")
                checked += 1
                seen = [item_id[i] for i in history[user]]
                scores[row, seen] = -torch.inf
                top = torch.topk(scores[row], K).indices.tolist()
                recommended.update(top)
                if targets[row] in top:
                    hits += 1
                    gains += 1.0 / float(torch.log2(torch.tensor(top.index(targets[row]) + 2.0)))
    if checked != len(expected_test):
        raise SystemExit(f"RecBole tested {checked} users, fmkit's split has {len(expected_test)}")
    catalogue = len(item_token) - 1  # minus [PAD]
    return {f"recall@{K}": round(hits / checked, 4), f"ndcg@{K}": round(gains / checked, 4),
            "coverage": round(len(recommended) / catalogue, 4), "users": checked, "catalogue": catalogue}


def run_child(data_dir: Path, model_name: str, overrides: dict[str, Any], threads: int) -> dict[str, Any]:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(threads)
    config_dict = {
        "data_path": str(data_dir), "use_gpu": False, "show_progress": False, "state": "WARNING",
        "checkpoint_dir": str(data_dir / "saved"),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id"]},
        "eval_args": {"split": {"LS": "test_only"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"], "topk": [K], "eval_step": 0, **overrides,
    }
    config = Config(model=model_name, dataset=DATASET, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _no_validation, test_data = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    start = time.perf_counter()
    trainer.fit(train_data, None, saved=False, show_progress=False)
    seconds = time.perf_counter() - start
    # load_best_model=False: the model in memory is the last epoch's (no checkpoint is written).
    own = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    history, test = _split_from_inter(data_dir / DATASET / f"{DATASET}.inter")
    removed = _history_removed_metrics(model, test_data, dataset, history, test)
    keys = ("reg_weight",) if model_name == "EASE" else (
        "epochs", "train_batch_size", "learning_rate", "MAX_ITEM_LIST_LENGTH", "hidden_size", "n_layers", "n_heads",
        "hidden_dropout_prob", "attn_dropout_prob", "loss_type", "seed")
    return {"model": model_name, "train_seconds": round(seconds, 1),
            "settings": {key: config[key] for key in keys if config[key] is not None},
            "recbole_evaluator": {name.lower(): round(float(value), 4) for name, value in own.items()},
            "history_removed": removed}


# --- the parent: fmkit's venv ------------------------------------------------------------------------


def write_atomic_files(movies: Path, ratings: Path, out: Path) -> dict[str, int]:
    """fmkit's filtered ratings and catalogue as RecBole .inter / .item files (module docstring)."""
    from fmkit.apps.recommend import read_items, read_ratings
    from fmkit.apps.recommend_eval import leave_last_out

    items = read_items(movies)
    frame = read_ratings(ratings)
    frame = frame[frame["item"].isin(set(items["id"]))]
    train, test = leave_last_out(frame)
    kept = train.index.union(test.index)
    ordered = frame.loc[kept].sort_values(["user", "ts", "item"], kind="stable")  # leave_last_out's order
    folder = out / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{DATASET}.inter").open("w") as fh:
        fh.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for position, (user, item) in enumerate(zip(ordered["user"], ordered["item"], strict=True)):
            fh.write(f"{user}\t{item}\t{position}\n")
    with (folder / f"{DATASET}.item").open("w") as fh:
        fh.write("item_id:token\n")
        fh.writelines(f"{item}\n" for item in items["id"])
    last = ordered.groupby("user").tail(1)
    if not last.set_index("user")["item"].sort_index().equals(test.set_index("user")["item"].sort_index()):
        raise SystemExit("the written order does not end each user on fmkit's test item")
    return {"users": int(test["user"].nunique()), "items": len(items), "history_ratings": len(train)}


def run_fmkit(movies: Path, ratings: Path, vectors_path: Path | None) -> dict[str, Any]:
    import numpy as np

    from fmkit.apps.recommend_eval import evaluate_recommender

    vectors = np.load(vectors_path) if vectors_path is not None else None
    start = time.perf_counter()
    result = evaluate_recommender(movies, ratings, vectors=vectors, cold_share=0.0, popularity_weights=())
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def _row(name: str, metrics: dict[str, Any], note: str = "") -> str:
    return f"| {name} | {metrics[f'recall@{K}']:.4f} | {metrics[f'ndcg@{K}']:.4f} | {metrics.get('coverage', '-')} | {note} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recbole-python", type=Path, help="python of the venv that has recbole (parent mode)")
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads, here and in the child")
    parser.add_argument("--sasrec-epochs", type=int, default=3, help="SASRec training epochs (no early stopping)")
    parser.add_argument("--vectors", type=Path, default=Path(".bench/ml_small_minilm_vectors.npy"),
                        help="fmkit's item text vectors (all-MiniLM-L6-v2, catalogue order); embedded when missing")
    parser.add_argument("--json", type=Path, help="also write every result here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # data dir; runs inside RecBole's venv
    parser.add_argument("--child-model", help=argparse.SUPPRESS)
    parser.add_argument("--child-overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # read by BLAS on import
        os.environ[var] = str(args.threads)
    if args.child is not None:
        print(json.dumps(run_child(args.child, args.child_model, json.loads(args.child_overrides), args.threads)))
        return
    if args.recbole_python is None:
        parser.error("--recbole-python is required")

    from bench._common import SHARED, machine

    data = SHARED / "movielens_latest_small"
    movies, ratings = data / "movies.csv", data / "ratings.csv"
    start = time.perf_counter()
    fmkit = run_fmkit(movies, ratings, args.vectors if args.vectors.exists() else None)
    # train_neg_sample_args None: RecBole requires it for SASRec's default cross-entropy loss over all items.
    # EASE at RecBole's default λ and at the λ fmkit's eval chose on validation (same model, same split: the
    # latter should reproduce fmkit's EASE row); SASRec last, as it is the slow one.
    runs = [("EASE", {}), ("EASE", {"reg_weight": fmkit["ease"]["l2"]}),
            ("SASRec", {"epochs": args.sasrec_epochs, "train_neg_sample_args": None})]
    recbole = []
    with tempfile.TemporaryDirectory(prefix="recbole-ref-") as tmp:
        split = write_atomic_files(movies, ratings, Path(tmp))
        for model_name, overrides in runs:
            # cwd=tmp: RecBole writes its log/ and log_tensorboard/ folders into the working directory.
            proc = subprocess.run([str(args.recbole_python), str(Path(__file__).resolve()), "--child", tmp, "--child-model", model_name,
                                   "--child-overrides", json.dumps(overrides), "--threads", str(args.threads)],
                                  capture_output=True, text=True, check=False, cwd=tmp)
            if proc.returncode != 0:
                raise SystemExit(f"RecBole {model_name} failed:\n{proc.stderr[-4000:]}")
            recbole.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(recbole[-1]), file=sys.stderr, flush=True)  # partial results survive a cut-off run
    result = {"machine": machine(), "threads": args.threads, "seconds": round(time.perf_counter() - start, 1),
              "split": split, "recbole": recbole,
              "fmkit": {name: fmkit[name] for name in ("popularity", "item_knn", "ease", "fmkit")}}
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"\n| method | recall@{K} | nDCG@{K} | coverage | note |\n|---|---|---|---|---|")
    for run in recbole:
        settings = run["settings"]
        extra = f"{settings['epochs']} epochs, {run['train_seconds']} s" if run["model"] == "SASRec" else \
            f"λ = {settings['reg_weight']:g}"
        own = run["recbole_evaluator"]
        print(_row(f"RecBole {run['model']} (history removed)", run["history_removed"], extra))
        print(f"| RecBole {run['model']} (RecBole's evaluator) | {own[f'recall@{K}']:.4f} | {own[f'ndcg@{K}']:.4f} | - | "
              f"{extra} |")
    for name in ("popularity", "item_knn", "ease", "fmkit"):
        print(_row(f"fmkit eval: {name}", fmkit[name], f"λ = {fmkit['ease']['l2']:g}" if name == "ease" else ""))


if __name__ == "__main__":
    main()
