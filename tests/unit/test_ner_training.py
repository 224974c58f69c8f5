"""NER end to end on a tiny random model: train (full and LoRA), save, reload, predict entities."""

from __future__ import annotations

import json
import random
from pathlib import Path

import fmkit
from fmkit.inference import load_predictor
from fmkit.inference.ner import NerPredictor

ORG = ["bank", "company"]
PER = ["actor"]
FILLER = ["the", "a", "is", "was", "good", "bad", "movie", "news", "report", "shares", "jump", "fall"]


def write_conll(path: Path, n: int, seed: int) -> Path:
    """Entity identity is in the word itself, so a tiny model can learn it; 'bank company' is one ORG."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(4, 9)):
            r = rng.random()
            if r < 0.15:
                words += ["bank", "company"]
                tags += ["B-ORG", "I-ORG"]
            elif r < 0.3:
                words.append("actor")
                tags.append("B-PER")
            else:
                words.append(rng.choice(FILLER))
                tags.append("O")
        lines += [f"{w}\t{t}" for w, t in zip(words, tags, strict=True)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ner_full_run_and_predictor(tiny_model: Path, tmp_path: Path) -> None:
    train, evaluation = write_conll(tmp_path / "train.conll", 120, 0), write_conll(tmp_path / "dev.conll", 30, 1)
    run = tmp_path / "run"
    fmkit.train(data=str(train), eval=str(evaluation), model=str(tiny_model), epochs=5, output=str(run),
                **{"task.type": "ner", "strategy.name": "full", "train.progress": False, "train.learning_rate": 2e-3,
                   "train.batch_size": 8, "data.max_length": 16})
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["f1"] >= 0.9, metrics
    assert set(metrics["per_type"]) == {"ORG", "PER"} and "token_accuracy" in metrics
    assert (run / "ner_report.txt").read_text().startswith("type")
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["task"] == "ner" and meta["labels"] == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]

    predictor = load_predictor(run)
    assert isinstance(predictor, NerPredictor)
    text = "the bank company was good, actor"
    ents = predictor.predict([text])[0]["entities"]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in ents] == [("ORG", "bank company", 4, 16),
                                                                             ("PER", "actor", 27, 32)]
    assert all(0 < e["score"] <= 1 for e in ents)
    # 60 words > max_length 16: windows, and every entity still comes back with the right offsets
    long_text = " ".join(["the movie was good"] * 14 + ["actor"])
    long_ents = predictor.predict([long_text])[0]["entities"]
    assert [(e["type"], e["start"]) for e in long_ents] == [("PER", long_text.index("actor"))]


def test_ner_lora_run(tiny_model: Path, tmp_path: Path) -> None:
    train = write_conll(tmp_path / "train.conll", 40, 2)
    run = tmp_path / "run"
    result = fmkit.train(data=str(train), model=str(tiny_model), epochs=1, output=str(run),
                         **{"task.type": "ner", "strategy.name": "lora", "train.progress": False,
                            "train.batch_size": 8, "data.max_length": 16})
    assert (run / "adapters").is_dir() and (run / "model" / "model.safetensors").is_file()
    assert result.metrics["strategy"] == "lora" and result.metrics["num_sentences"] == 4  # 10% held out
    assert len(NerPredictor.load(run).predict(["bank company"])) == 1
