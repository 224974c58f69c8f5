"""NER: fmkit `--task ner` against the Hugging Face Trainer token-classification recipe, side by side.

Same model (bundled all-MiniLM-L6-v2), same training sentences, epochs, batch size, learning rate and
warmup; both scored on the full test set with entity-level F1 (seqeval, exact spans). The HF recipe is
the `run_ner.py` one: AutoModelForTokenClassification, labels on first sub-tokens, DataCollatorFor-
TokenClassification, sentences truncated at max_length (fmkit windows them instead).

Also measured: what the uncased model cannot see. On each test set, the share of entity words that are
capitalised vs the share of other words, and the entity-span F1 of a "capitalised run = entity" rule
(untyped), i.e. the signal a cased model gets for free and this one lowercases away.

    .venv/bin/python bench/ner.py [--datasets wnut17,wikiann] [--epochs 2] [--wikiann-train 5000]
Writes .bench/ner/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = REPO.parent / "shared" / "data"
WORK = REPO / ".bench" / "ner"

FILES = {
    "wnut17": ("wnut17/wnut17train.conll", "wnut17/emerging.dev.conll", "wnut17/emerging.test.annotated"),
    "wikiann": ("wikiann_en/train.conll", "wikiann_en/dev.conll", "wikiann_en/test.conll"),
}


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def write_conll(path: Path, tokens: list[list[str]], tags: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, ts, strict=True)) + "\n"
                            for ws, ts in zip(tokens, tags, strict=True)), encoding="utf-8")
    return path


def subsample(data: Any, n: int | None, seed: int = 0) -> Any:
    if n is None or n >= len(data):
        return data
    return data.subset(sorted(random.Random(seed).sample(range(len(data)), n)))


def run_fmkit(name: str, train: Any, dev: Any, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    import fmkit
    from fmkit.evaluation.ner_metrics import ner_metrics
    from fmkit.inference.ner import NerPredictor

    train_file = write_conll(WORK / f"{name}_train.conll", train.tokens, train.tags)
    dev_file = write_conll(WORK / f"{name}_dev.conll", dev.tokens, dev.tags)
    shutil.rmtree(WORK / f"{name}_run", ignore_errors=True)  # a fresh run each time
    t = time.perf_counter()
    result = fmkit.train(data=str(train_file), eval=str(dev_file), epochs=args.epochs, output=str(WORK / f"{name}_run"),
                         **{"task.type": "ner", "strategy.name": "full", "train.progress": False, "train.threads": torch_threads(),
                            "train.batch_size": args.batch_size, "train.learning_rate": args.lr,
                            "data.max_length": args.max_length, "train.early_stopping_patience": 0})
    wall = time.perf_counter() - t
    predictor = NerPredictor.load(WORK / f"{name}_run" / "model", batch_size=64)
    t = time.perf_counter()
    predicted = predictor.predict_tags(test.tokens)
    predict_s = time.perf_counter() - t
    m = ner_metrics(test.tags, predicted)
    return {"test_f1": round(m["f1"], 4), "test_precision": round(m["precision"], 4), "test_recall": round(m["recall"], 4),
            "test_token_accuracy": round(m["token_accuracy"], 4),
            "per_type_f1": {k: round(v["f1"], 4) for k, v in m["per_type"].items()},
            "worst_confusions": m["worst_confusions"][:5],
            "train_seconds": result.metrics["train_seconds"], "wall_seconds": round(wall, 1),
            "train_sentences_per_second": round(len(train) * args.epochs / result.metrics["train_seconds"], 2),
            "test_predict_seconds": round(predict_s, 1), "train_windows": result.metrics["train_windows"]}


def run_hf(name: str, train: Any, test: Any, labels: list[str], args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from datasets import Dataset
    from seqeval.metrics import f1_score, precision_score, recall_score
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from fmkit.models.backbone import bundled_minilm_path

    path = str(bundled_minilm_path())
    tok = AutoTokenizer.from_pretrained(path)
    label_id = {label: i for i, label in enumerate(labels)}

    def encode(tokens: list[list[str]], tags: list[list[str]]) -> Any:
        enc = tok(tokens, is_split_into_words=True, truncation=True, max_length=args.max_length)
        all_labels = []
        for i, sent_tags in enumerate(tags):
            prev, row = None, []
            for wid in enc.word_ids(i):
                row.append(-100 if wid is None or wid == prev else label_id.get(sent_tags[wid], 0))
                prev = wid
            all_labels.append(row)
        return Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                  "labels": all_labels})

    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=len(labels),
                                                            id2label=dict(enumerate(labels)), label2id=label_id)
    targs = TrainingArguments(output_dir=str(WORK / f"{name}_hf"), per_device_train_batch_size=args.batch_size,
                              per_device_eval_batch_size=64, learning_rate=args.lr, num_train_epochs=args.epochs,
                              warmup_steps=int(0.06 * args.epochs * -(-len(train) // args.batch_size)), weight_decay=0.01, save_strategy="no", logging_steps=50,
                              report_to=[], use_cpu=True, seed=42, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=encode(train.tokens, train.tags),
                      data_collator=DataCollatorForTokenClassification(tok))
    t = time.perf_counter()
    out = trainer.train()
    train_s = time.perf_counter() - t
    test_ds = encode(test.tokens, test.tags)
    t = time.perf_counter()
    logits = trainer.predict(test_ds).predictions
    predict_s = time.perf_counter() - t
    pred_tags = []
    for i, sent in enumerate(test.tags):
        ids = np.asarray(logits[i]).argmax(-1)
        word_pred = ["O"] * len(sent)  # words cut off by truncation stay O, as run_ner.py leaves them
        for pos, lab in enumerate(test_ds[i]["labels"]):
            if lab != -100:
                wid = sum(1 for x in test_ds[i]["labels"][:pos] if x != -100)
                word_pred[wid] = labels[int(ids[pos])]
        pred_tags.append(word_pred)
    return {"test_f1": round(f1_score(test.tags, pred_tags), 4),
            "test_precision": round(precision_score(test.tags, pred_tags), 4),
            "test_recall": round(recall_score(test.tags, pred_tags), 4),
            "train_seconds": round(train_s, 1), "train_sentences_per_second": round(out.metrics["train_samples_per_second"], 2),
            "test_predict_seconds": round(predict_s, 1)}


def uncased_analysis(test: Any) -> dict[str, Any]:
    from fmkit.evaluation.ner_metrics import get_entities, ner_metrics

    ent_caps = ent_n = o_caps = o_n = 0
    rule_tags = []
    for words, tags in zip(test.tokens, test.tags, strict=True):
        row = []
        for i, (w, t) in enumerate(zip(words, tags, strict=True)):
            cap = w[:1].isupper()
            if t == "O":
                o_n += 1
                o_caps += cap
            else:
                ent_n += 1
                ent_caps += cap
            inside = cap and i > 0 and w.isalpha()
            row.append(("I-X" if row and row[-1] != "O" else "B-X") if inside else "O")
        rule_tags.append(row)
    untyped_gold = [[("B-X" if t.startswith("B") else "I-X") if t != "O" else "O" for t in tags] for tags in test.tags]
    rule = ner_metrics(untyped_gold, rule_tags)
    return {"entity_words_capitalised": round(ent_caps / max(ent_n, 1), 4),
            "other_words_capitalised": round(o_caps / max(o_n, 1), 4),
            "capitalised_run_rule_untyped_span_f1": round(rule["f1"], 4),
            "gold_entities": len([e for tags in test.tags for e in get_entities(tags)])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="wnut17,wikiann")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--wikiann-train", type=int, default=5000, help="subsample of the 20,000 training sentences")
    ap.add_argument("--dev", type=int, default=500, help="dev sentences fmkit evaluates on each epoch")
    ap.add_argument("--max-train", type=int, default=None, help="subsample every training set to this many sentences")
    ap.add_argument("--max-test", type=int, default=None, help="subsample every test set to this many sentences")
    ap.add_argument("--no-hf", action="store_true", help="skip the Hugging Face Trainer side")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides (see BENCHMARKS.md)")
    args = ap.parse_args()
    import torch

    from fmkit.data.conll import read_ner
    from fmkit.data.tasks.ner import tag_labels

    # Both sides get the same thread count. On the shared machine (load ~15 on 2 cores) two threads spin-wait
    # on each other: a MiniLM forward+backward took 20-30 s with 2 threads and 5 s with 1.
    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"command": " ".join([".venv/bin/python", *sys.argv]), "cores": os.cpu_count(),
                               "torch_threads": args.threads,
                               "load_average_at_start": os.getloadavg()[0]}
    for name in args.datasets.split(","):
        train_path, dev_path, test_path = (SHARED / f for f in FILES[name])
        train, dev, test = read_ner(train_path), read_ner(dev_path), read_ner(test_path)
        full_train = len(train)
        train = subsample(train, args.max_train or (args.wikiann_train if name == "wikiann" else None))
        test = subsample(test, args.max_test, seed=1)
        dev = subsample(dev, args.dev)
        res: dict[str, Any] = {"train_sentences": len(train), "of_train_sentences": full_train,
                               "test_sentences": len(test), "epochs": args.epochs, "batch_size": args.batch_size,
                               "lr": args.lr, "max_length": args.max_length}
        res["fmkit"] = run_fmkit(name, train, dev, test, args)
        print(json.dumps({name: res}, indent=2), flush=True)
        if not args.no_hf:
            res["hf_trainer"] = run_hf(name, train, test, tag_labels(train.entity_types), args)
            res["speed_ratio_fmkit_over_hf"] = round(res["fmkit"]["train_sentences_per_second"]
                                                     / res["hf_trainer"]["train_sentences_per_second"], 3)
        res["uncased"] = uncased_analysis(test)
        results[name] = res
        print(json.dumps({name: res}, indent=2), flush=True)
    results["load_average_at_end"] = os.getloadavg()[0]
    (WORK / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
