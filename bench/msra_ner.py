"""MSRA Chinese NER (character level, PER/LOC/ORG): fmkit `--task ner` against a character CRF.

Rows, all trained on the same N sentences (a seeded sample of the 50,658 of train.conll.gz) and scored on the
same test sentences (test.conll, 4,631, or --test-sentences of them) with entity-level F1: exact spans,
seqeval's default (conlleval) mode, the metric fmkit reports.
  1. fmkit --task ner --strategy full on multilingual-e5-small (XLM-R vocabulary), 1 epoch by default.
     Target: entity F1 >= 0.88 (the zh-NER-TF character BiLSTM-CRF reached 88.47 on this test file).
  2. fmkit --task ner on the bundled all-MiniLM-L6-v2 (English WordPiece vocabulary: the Chinese characters it
     lacks become [UNK]).
  3. A character CRF (sklearn-crfsuite, L-BFGS): the character, its neighbours at +-1 and +-2, the bigrams
     around it, and whether it is a digit or a Latin letter.
For the fmkit rows also: the test metrics through `fmkit eval`'s code path (CoNLL in, one character per
word), sub-tokens per character, and raw-text F1: each test sentence joined into plain text without spaces,
entities predicted from the text by NerPredictor.predict, and their character offsets compared with gold
(every predicted entity is checked to satisfy text[start:end] == its text).

    .venv/bin/python bench/msra_ner.py [--train-sentences 10000] [--test-sentences N] [--epochs 1] [--threads 1]
                                       [--models multilingual-e5-small,all-MiniLM-L6-v2] [--no-crf] [--write]
Smoke test: --train-sentences 300 --test-sentences 100 --dev 50.
Writes .bench/msra_ner/results.json (and, with --write, a subsection of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import gc
import gzip
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

from bench._common import SHARED, machine, write_subsection  # noqa: E402

DATA = SHARED / "msra_ner_zh"
WORK = REPO / ".bench" / "msra_ner"
SECTION = "## NER and embeddings (issue 4)"
MARKER = "### Chinese NER: MSRA, character level"
TARGET_MODEL, TARGET_F1 = "multilingual-e5-small", 0.88
TEST_FILES = {"test": "test.conll", "original-lines": "test_original_lines.conll"}


def write_conll(path: Path, tokens: list[list[str]], tags: list[list[str]]) -> Path:
    """CoNLL as the MSRA files are written; gzipped when the name ends in .gz (fmkit reads it as is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, ts, strict=True)) + "\n"
                   for ws, ts in zip(tokens, tags, strict=True))
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def split_train(train: Any, n: int, n_dev: int, seed: int) -> tuple[Any, Any]:
    """N training sentences and n_dev other ones (fmkit's per-epoch evaluation), both seeded samples."""
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    n = min(n, len(train) - n_dev)
    return train.subset(sorted(order[:n])), train.subset(sorted(order[n : n + n_dev]))


def raw_text_scores(predictor: Any, test: Any) -> dict[str, Any]:
    """Entity P/R/F1 of predictions on the joined plain text, by character offsets, against the gold spans."""
    from fmkit.evaluation.ner_metrics import get_entities

    texts = ["".join(words) for words in test.tokens]
    gold = set()
    for s, (words, tags) in enumerate(zip(test.tokens, test.tags, strict=True)):
        starts = [0]
        for w in words:
            starts.append(starts[-1] + len(w))
        gold |= {(s, kind, starts[a], starts[b + 1]) for kind, a, b in get_entities(tags)}
    predicted, offsets_exact = set(), 0
    t = time.perf_counter()
    records = predictor.predict(texts)
    seconds = time.perf_counter() - t
    for s, record in enumerate(records):
        for e in record["entities"]:
            offsets_exact += texts[s][e["start"] : e["end"]] == e["text"]
            predicted.add((s, e["type"], e["start"], e["end"]))
    correct = len(gold & predicted)
    p = correct / len(predicted) if predicted else 0.0
    r = correct / len(gold) if gold else 0.0
    return {"raw_text_f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "raw_text_precision": round(p, 4),
            "raw_text_recall": round(r, 4), "raw_text_entities": len(predicted),
            "raw_text_offsets_exact": offsets_exact, "raw_text_predict_seconds": round(seconds, 1)}


def pieces_per_character(tokenizer: Any, test: Any) -> float:
    """Sub-tokens (special tokens left out) per character of the test sentences, as fmkit encodes them."""
    from fmkit.data.tasks.ner import encode_words

    enc = encode_words(tokenizer, test.tokens, 100_000)  # one window per sentence: every sub-token counted once
    pieces = sum(len(ids) for ids in enc.input_ids) - len(enc) * tokenizer.num_special_tokens_to_add()
    return round(pieces / sum(len(w) for ws in test.tokens for w in ws), 4)


def fmkit_row(model: str, train_file: Path, dev_file: Path, test_file: Path, train: Any, test: Any,
              args: argparse.Namespace) -> dict[str, Any]:
    import fmkit
    from fmkit.inference.ner import NerPredictor
    from fmkit.workflows.ner import evaluate_saved

    run = WORK / f"run_{model}"
    shutil.rmtree(run, ignore_errors=True)  # a fresh run each time
    t = time.perf_counter()
    result = fmkit.train(data=str(train_file), eval=str(dev_file), model=model, epochs=args.epochs, output=str(run),
                         **{"task.type": "ner", "strategy.name": "full", "train.progress": False,
                            "train.threads": args.threads, "train.batch_size": args.batch_size,
                            "train.learning_rate": args.lr, "data.max_length": args.max_length,
                            "train.seed": args.seed, "train.early_stopping_patience": 0})
    wall = time.perf_counter() - t
    t = time.perf_counter()
    m = evaluate_saved(run / "model", test_file, None, None, 64)  # what `fmkit eval RUN --data TEST` computes
    eval_s = time.perf_counter() - t
    predictor = NerPredictor.load(run / "model", batch_size=64)
    row = {"name": f"fmkit --task ner, {model}, {args.epochs:g} epoch(s)", "model": model,
           "test_f1": round(m["f1"], 4), "test_precision": round(m["precision"], 4),
           "test_recall": round(m["recall"], 4), "test_token_accuracy": round(m["token_accuracy"], 4),
           "per_type_f1": {k: round(v["f1"], 4) for k, v in m["per_type"].items()},
           "worst_confusions": m["worst_confusions"][:5],
           "train_seconds": result.metrics["train_seconds"], "wall_seconds": round(wall, 1),
           "train_sentences_per_second": round(len(train) * args.epochs / result.metrics["train_seconds"], 2),
           "train_windows": result.metrics["train_windows"], "test_eval_seconds": round(eval_s, 1),
           "pieces_per_character": pieces_per_character(predictor.tokenizer, test),
           "warnings": result.warnings}
    if not args.no_raw_text:
        row.update(raw_text_scores(predictor, test))
    del predictor
    gc.collect()
    return row


def char_features(chars: list[str], i: int) -> dict[str, Any]:
    def at(k: int) -> str:
        j = i + k
        return chars[j] if 0 <= j < len(chars) else ("<s>" if j < 0 else "</s>")

    c = chars[i]
    return {"bias": 1.0, "c0": c, "c-1": at(-1), "c+1": at(1), "c-2": at(-2), "c+2": at(2),
            "b-1": at(-1) + c, "b+1": c + at(1), "b-2": at(-2) + at(-1), "b+2": at(1) + at(2), "b-1+1": at(-1) + at(1),
            "digit": c.isdigit(), "latin": c.isascii() and c.isalpha()}


def crf_row(train: Any, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    import sklearn_crfsuite

    from fmkit.evaluation.ner_metrics import ner_metrics

    def features(sentences: list[list[str]]) -> list[list[dict[str, Any]]]:
        return [[char_features(s, i) for i in range(len(s))] for s in sentences]

    t = time.perf_counter()
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=args.crf_c1, c2=args.crf_c2, max_iterations=args.crf_iterations,
                               all_possible_transitions=True)
    crf.fit(features(train.tokens), train.tags)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    predicted = [list(p) for p in crf.predict(features(test.tokens))]
    predict_s = time.perf_counter() - t
    m = ner_metrics(test.tags, predicted)
    return {"name": f"character CRF (sklearn-crfsuite, L-BFGS, c1={args.crf_c1:g}, c2={args.crf_c2:g}, "
                    f"{args.crf_iterations} iterations)",
            "test_f1": round(m["f1"], 4), "test_precision": round(m["precision"], 4),
            "test_recall": round(m["recall"], 4), "test_token_accuracy": round(m["token_accuracy"], 4),
            "per_type_f1": {k: round(v["f1"], 4) for k, v in m["per_type"].items()},
            "train_seconds": round(seconds, 1), "train_sentences_per_second": round(len(train) / seconds, 2),
            "test_predict_seconds": round(predict_s, 1)}


def markdown(result: dict[str, Any], command: str) -> str:
    lines = ["| method | test entity F1 | precision | recall | PER / LOC / ORG F1 | raw-text F1 | sub-tokens per char | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        types = " / ".join(f"{100 * r['per_type_f1'].get(k, 0):.1f}" for k in ("PER", "LOC", "ORG"))
        raw = f"{100 * r['raw_text_f1']:.1f}" if "raw_text_f1" in r else ""
        pieces = f"{r['pieces_per_character']:.3f}" if "pieces_per_character" in r else ""
        lines.append(f"| {r['name']} | **{100 * r['test_f1']:.1f}** | {100 * r['test_precision']:.1f} | "
                     f"{100 * r['test_recall']:.1f} | {types} | {raw} | {pieces} | {r['train_seconds']:.0f} |")
    met = result["target"]
    return (f"Machine: {result['machine']}, {result['threads']} torch thread(s). Command: `{command}`. "
            f"Train: {result['train_sentences']:,} of the 50,658 train.conll.gz sentences (seed {result['seed']}), "
            f"{result['dev_sentences']} others as fmkit's dev set; test: {result['test_sentences']:,} sentences of "
            f"{result['test_file']}; entity F1 with exact spans (seqeval default mode). One run, one seed.\n\n"
            + "\n".join(lines) + f"\n\nTarget entity F1 >= {TARGET_F1} for {TARGET_MODEL}: "
            f"{'met' if met['met'] else 'not met'} ({met['f1']}).\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-sentences", type=int, default=10000, help="of the 50,658 train sentences (seeded sample)")
    ap.add_argument("--test-sentences", type=int, default=None, help="the first N test sentences (default: all)")
    ap.add_argument("--test-file", choices=sorted(TEST_FILES), default="test",
                    help="test: test.conll, cut at 100 characters like train; original-lines: the 4,365 uncut lines")
    ap.add_argument("--dev", type=int, default=500, help="other train sentences fmkit evaluates on after each epoch")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--models", default=f"{TARGET_MODEL},all-MiniLM-L6-v2", help="fmkit rows, comma-separated")
    ap.add_argument("--no-crf", action="store_true", help="skip the CRF baseline")
    ap.add_argument("--crf-c1", type=float, default=0.1)
    ap.add_argument("--crf-c2", type=float, default=0.1)
    ap.add_argument("--crf-iterations", type=int, default=100)
    ap.add_argument("--no-raw-text", action="store_true", help="skip the raw-text prediction pass of the fmkit rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (see BENCHMARKS.md on the shared machine)")
    ap.add_argument("--write", action="store_true", help="put the result table into BENCHMARKS.md")
    args = ap.parse_args()
    if args.dev < 1:
        ap.error("--dev must be at least 1")
    import torch

    from fmkit.data.conll import read_ner

    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    command = " ".join([".venv/bin/python", "bench/msra_ner.py", *sys.argv[1:]])
    full_train = read_ner(DATA / "train.conll.gz")  # read gzipped, as fmkit train --data would
    train, dev = split_train(full_train, args.train_sentences, args.dev, args.seed)
    test = read_ner(DATA / TEST_FILES[args.test_file])
    if args.test_sentences is not None and args.test_sentences < len(test):
        test = test.subset(list(range(args.test_sentences)))
    train_file = write_conll(WORK / f"train_{len(train)}_{args.seed}.conll.gz", train.tokens, train.tags)
    dev_file = write_conll(WORK / f"dev_{len(dev)}_{args.seed}.conll", dev.tokens, dev.tags)
    test_file = write_conll(WORK / f"test_{args.test_file}_{len(test)}.conll", test.tokens, test.tags)
    result: dict[str, Any] = {"machine": machine(), "threads": args.threads, "command": command,
                              "load_average_at_start": round(os.getloadavg()[0], 2), "seed": args.seed,
                              "train_sentences": len(train), "train_characters": sum(map(len, train.tokens)),
                              "dev_sentences": len(dev), "test_file": TEST_FILES[args.test_file],
                              "test_sentences": len(test), "test_characters": sum(map(len, test.tokens)),
                              "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                              "max_length": args.max_length, "rows": []}
    for model in [m for m in args.models.split(",") if m]:
        result["rows"].append(fmkit_row(model, train_file, dev_file, test_file, train, test, args))
        print(json.dumps(result["rows"][-1], indent=2, ensure_ascii=False), flush=True)
    if not args.no_crf:
        result["rows"].append(crf_row(train, test, args))
        print(json.dumps(result["rows"][-1], indent=2, ensure_ascii=False), flush=True)
    target = next((r for r in result["rows"] if r.get("model") == TARGET_MODEL), None)
    result["target"] = {"model": TARGET_MODEL, "f1_at_least": TARGET_F1, "f1": target["test_f1"] if target else None,
                        "met": bool(target and target["test_f1"] >= TARGET_F1)}
    result["load_average_at_end"] = round(os.getloadavg()[0], 2)
    (WORK / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print("\n" + markdown(result, command))
    if target is None:
        print(f"target: no {TARGET_MODEL} row was run")
    else:
        print(f"target entity F1 >= {TARGET_F1} for {TARGET_MODEL}: {'MET' if result['target']['met'] else 'NOT MET'} "
              f"(F1 {target['test_f1']:.4f} on {len(test):,} test sentences, trained on {len(train):,})")
    if args.write:
        write_subsection(SECTION, MARKER, markdown(result, command))


if __name__ == "__main__":
    main()
