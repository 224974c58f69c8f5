"""report.html and MODEL_CARD.md: binary and 77-class runs, calibration numbers, task-aware sections."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
import yaml

from fmkit.errors import FmkitError
from fmkit.evaluation.report import (
    TASK_SECTIONS,
    RunFiles,
    Section,
    calibration,
    confident_mistakes,
    register_sections,
    write_report,
)


def fake_run(run_dir: Path, labels: list[str], n: int = 40, task: str = "classification", seed: int = 0) -> Path:
    """A run directory with every file a finished classification run writes (no model/)."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"task": {"type": task}, "model": {"name": "tiny"},
                                                         "data": {"max_length": 32}}))
    preds, cm = [], [[0] * len(labels) for _ in labels]
    for i in range(n):
        true = labels[i % len(labels)]
        pred = true if rng.random() < 0.7 else rng.choice(labels)
        cm[labels.index(true)][labels.index(pred)] += 1
        top = rng.uniform(0.5, 1.0)
        rest = (1 - top) / max(1, len(labels) - 1)
        scores = {lab: (top if lab == pred else rest) for lab in labels}
        preds.append({"text": f"text {i}", "label": true, "predicted": pred, "correct": pred == true, "scores": scores})
    (run_dir / "eval_predictions.jsonl").write_text("\n".join(json.dumps(p) for p in preds) + "\n")
    per_class = {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5 + i / 1000, "support": 1} for i, lab in enumerate(labels)}
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.7, "macro_f1": 0.6, "num_examples": n,
                                                      "per_class": per_class, "labels": labels, "confusion_matrix": cm}))
    history = [{"kind": "train", "step": s, "loss": 1 / s, "epoch": s / 10} for s in range(1, 11)]
    history += [{"kind": "eval", "step": 10, "eval_accuracy": 0.7, "eval_macro_f1": 0.6, "epoch": 1.0}]
    (run_dir / "history.jsonl").write_text("\n".join(json.dumps(h) for h in history) + "\n")
    (run_dir / "data.json").write_text(json.dumps({"train": {"rows": 100, "source": "train.csv",
                                                             "class_counts": dict.fromkeys(labels, 3)},
                                                   "max_length": 32, "truncated_train_share": 0.25}))
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "started": 1.0}))
    return run_dir


def test_calibration_bins_and_ece_are_exact() -> None:
    preds = [{"scores": {"a": 0.9, "b": 0.1}, "correct": True}, {"scores": {"a": 0.9, "b": 0.1}, "correct": False},
             {"scores": {"a": 0.35, "b": 0.65}, "correct": True}, {"scores": {"a": 0.35, "b": 0.65}, "correct": True}]
    cal = calibration(preds)
    assert [(b["low"], b["count"]) for b in cal["bins"]] == [(0.6, 2), (0.8, 2)]
    assert cal["bins"][0]["accuracy"] == 1.0 and cal["bins"][1]["accuracy"] == 0.5
    # ECE = 0.5 * |1.0 - 0.65| + 0.5 * |0.5 - 0.9| = 0.175 + 0.2
    assert cal["ece"] == pytest.approx(0.375)
    assert calibration([]) == {"bins": [], "ece": None, "n": 0}


def test_confident_mistakes_are_the_wrong_ones_by_confidence() -> None:
    preds = [{"text": "x", "scores": {"a": 0.6}, "correct": False}, {"text": "y", "scores": {"a": 0.99}, "correct": True},
             {"text": "z", "scores": {"a": 0.95}, "correct": False}]
    assert [p["text"] for p in confident_mistakes(preds)] == ["z", "x"]


def test_binary_report_has_every_section(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "bin", ["neg", "pos"])
    html_path, card_path = write_report(run)
    html = html_path.read_text()
    for title in ("Overview", "Learning curves", "Per-class precision, recall and F1", "Confusion matrix",
                  "Calibration", "Most confidently wrong eval examples", "Data", "Configuration", "How to use this model"):
        assert f">{title}</h2>" in html, title
    assert html.count("<svg") >= 5  # loss, eval, heatmap, reliability, class balance
    assert "<script" not in html and "<link" not in html  # self-contained
    assert "Training texts truncated at max_length=32: 25.0%" in html
    card = card_path.read_text()
    assert card.startswith("# Model card: bin") and "| neg |" in card and "## Limitations" in card
    assert "Most confidently wrong" not in card  # eval texts stay out of the shareable card


def test_77_class_report_draws_every_cell(tmp_path: Path) -> None:
    labels = [f"intent_{i:02d}" for i in range(77)]
    html = write_report(fake_run(tmp_path / "banking", labels, n=231))[0].read_text()
    heatmap = html[html.index("Confusion matrix (colour"):]
    assert len(re.findall(r"<rect [^>]*><title>true ", heatmap)) == 77 * 77
    assert "77 classes: hover a cell" in html
    per_class = html[html.index("Per-class precision, recall and F1</h2>"):html.index("Confusion matrix</h2>")]
    assert per_class.count("<tr>") == 78  # header + 77 classes


def test_task_without_sections_gets_generic_metrics_and_tasks_can_register(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "ner", ["O"], task="toy-ner")
    (run / "metrics.json").write_text(json.dumps({"f1": 0.8, "per_type": {"PER": {"f1": 0.9, "support": 3}}}))
    html = write_report(run)[0].read_text()
    assert ">Metrics</h2>" in html and ">Per type</h2>" in html and "0.9000" in html

    def toy_sections(files: RunFiles) -> list[Section]:
        return [Section("Entity F1 by type", f"<p>{files.metrics['f1']}</p>", "entities")]

    register_sections("toy-ner", toy_sections)
    try:
        html = write_report(run)[0].read_text()
        assert ">Entity F1 by type</h2>" in html and ">Metrics</h2>" not in html
    finally:
        TASK_SECTIONS.pop("toy-ner")


def test_not_a_run_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FmkitError, match="not a run directory"):
        write_report(tmp_path)


@pytest.mark.slow
def test_real_77_class_tiny_run_gets_a_report(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.cli import main
    from tests.conftest import WORDS

    rng = random.Random(0)
    path = tmp_path / "intents.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(77 * 3):
            writer.writerow([" ".join(rng.sample(WORDS, 5)), f"intent_{i % 77:02d}"])
    assert main(["train", "--data", str(path), "--eval", str(path), "--model", str(tiny_model), "--output",
                 str(tmp_path / "run"), "--epochs", "1", "--quiet", "--batch-size", "64",
                 "--set", "strategy.name=full", "--set", "strategy.probe.init=false"]) == 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert ">Calibration</h2>" in html and "intent_76" in html
    assert "Eval token lengths" in html  # the run's tokenizer was found and used
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert sum(line.startswith("| intent_") for line in card.splitlines()) == 77  # one per-class row each


@pytest.mark.slow
def test_ner_run_report_shows_entity_sections(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.cli import main
    from tests.unit.test_ner_training import write_conll

    train, dev = write_conll(tmp_path / "train.conll", 60, 0), write_conll(tmp_path / "dev.conll", 20, 1)
    assert main(["train", "--task", "ner", "--data", str(train), "--eval", str(dev), "--model", str(tiny_model),
                 "--output", str(tmp_path / "ner"), "--epochs", "1", "--quiet", "--set", "strategy.name=full",
                 "--set", "train.batch_size=16", "--set", "data.max_length=16"]) == 0
    html = (tmp_path / "ner" / "report.html").read_text()
    assert ">Entities by type</h2>" in html and ">Confusion matrix</h2>" not in html
    metrics = json.loads((tmp_path / "ner" / "metrics.json").read_text())
    table = html[html.index(">Entities by type</h2>"):]
    assert f"{metrics['per_type']['ORG']['f1']:.4f}" in table and "overall (micro)" in table
    card = (tmp_path / "ner" / "MODEL_CARD.md").read_text()
    assert "| ORG |" in card and "| PER |" in card


def test_embedding_report_compares_before_and_after(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "emb", ["x"], task="embedding")
    (run / "metrics.json").write_text(json.dumps({"recall@1": 0.5, "recall@10": 0.9, "mrr": 0.6, "ndcg@10": 0.7,
                                                  "baseline": {"recall@1": 0.25, "recall@10": 0.8, "mrr": 0.4,
                                                               "ndcg@10": 0.5}}))
    html = write_report(run)[0].read_text()
    section = html[html.index(">Retrieval quality</h2>"):]
    assert "<td class=\"num\">0.2500</td><td class=\"num\">0.5000</td><td class=\"num\">0.2500</td>" in section


def test_ner_report_from_run_files(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "ner-fake", ["x"], task="ner")
    (run / "metrics.json").write_text(json.dumps({
        "f1": 0.75, "precision": 0.8, "recall": 0.7, "token_accuracy": 0.95, "num_entities": 4,
        "per_type": {"ORG": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
                     "PER": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 2}},
        "worst_confusions": [{"gold": "ORG", "predicted": "O", "count": 3}]}))
    (run / "eval_predictions.jsonl").write_text(json.dumps(
        {"tokens": ["the", "bank", "company", "actor"], "gold": ["O", "B-ORG", "I-ORG", "B-PER"],
         "predicted": ["O", "B-ORG", "O", "B-PER"]}) + "\n")
    html = write_report(run)[0].read_text()
    assert ">Entities by type</h2>" in html and ">Most frequent tag confusions</h2>" in html
    assert "gold: the [bank company](ORG) [actor](PER)" in html and "pred: the [bank](ORG) company [actor](PER)" in html
    assert ">Confusion matrix</h2>" not in html and ">Calibration</h2>" not in html
