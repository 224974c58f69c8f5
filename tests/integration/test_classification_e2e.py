"""End to end with the bundled MiniLM on small slices of ../shared/data: train, eval, predict, doctor, API.

Slices are written to a temporary folder by each test run (never into the repository).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

import fmkit
from tests.conftest import run_cli, shared

pytestmark = pytest.mark.slow


def write_slice(df: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    df.to_csv(path, sep=sep, index=False, quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE)
    return path


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)


def train_cli(*args: str) -> dict[str, object]:
    proc = run_cli("train", *args, "--quiet", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = Path(args[list(args).index("--output") + 1])
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def sst2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sst2")
    train = write_slice(read_tsv(shared("sst2", "SST-2", "train.tsv")).head(600), root / "train.tsv", sep="\t")
    dev = write_slice(read_tsv(shared("sst2", "SST-2", "dev.tsv")).head(200), root / "dev.tsv", sep="\t")
    run = root / "run"
    metrics = train_cli("--data", str(train), "--eval", str(dev), "--epochs", "1", "--output", str(run))
    assert metrics["num_examples"] == 200
    return {"train": train, "dev": dev, "run": run}


def test_sst2_trains_well_above_chance(sst2: dict[str, Path]) -> None:
    run = sst2["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.75, metrics  # chance is 0.5; 600 rows, one epoch
    assert metrics["macro_f1"] >= 0.7
    assert metrics["train_examples"] == 600
    for name in ("config.yaml", "data.json", "env.json", "run.json", "history.jsonl", "classification_report.txt",
                 "confusion_matrix.csv", "confusion_matrix.png", "eval_predictions.jsonl", "model/model.safetensors",
                 "model/head.safetensors", "model/config.json", "model/fmkit.json", "model/tokenizer.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"} and config["label2id"] == {"0": 0, "1": 1}
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    # The saved body loads as a plain Hugging Face encoder.
    from transformers import AutoModel

    assert AutoModel.from_pretrained(str(run / "model")).config.hidden_size == 384


def test_eval_reproduces_the_run_metrics(sst2: dict[str, Path]) -> None:
    proc = run_cli("eval", str(sst2["run"] / "model"), "--data", str(sst2["dev"]), "--json")
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads(proc.stdout)
    metrics = json.loads((sst2["run"] / "metrics.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"], abs=1 / 200)
    assert evaluated["num_examples"] == 200


def test_predict_file_stdin_and_api_agree(sst2: dict[str, Path], tmp_path: Path) -> None:
    texts = [*read_tsv(sst2["dev"])["content"].tolist()[:40], "a gorgeous , witty , seductive movie .",
             "the worst film of the year ."]
    text_file = tmp_path / "new.txt"
    text_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "predictions.jsonl"
    from_file = run_cli("predict", str(sst2["run"] / "model"), str(text_file), "--output", str(out))
    assert from_file.returncode == 0, from_file.stderr
    file_records = [json.loads(line) for line in out.read_text().splitlines()]
    from_stdin = run_cli("predict", str(sst2["run"] / "model"), "-", input_text="\n".join(texts) + "\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    stdin_records = [json.loads(line) for line in from_stdin.stdout.splitlines()]
    api_records = fmkit.load(sst2["run"] / "model").predict(texts)
    assert len(file_records) == len(stdin_records) == len(api_records) == len(texts)
    assert [r["label"] for r in file_records] == [r["label"] for r in stdin_records] == [r["label"] for r in api_records]
    assert [r["text"] for r in file_records] == [r["text"] for r in stdin_records] == texts
    for a, b in zip(file_records, api_records, strict=True):
        assert set(a) == {"text", "label", "scores"}
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
    assert file_records[-2]["label"] == "1" and file_records[-1]["label"] == "0"
    # --precision overrides the one the model was evaluated in: close scores either way.
    fp32 = run_cli("predict", str(sst2["run"] / "model"), str(text_file), "--precision", "fp32")
    assert fp32.returncode == 0, fp32.stderr
    for a, b in zip([json.loads(line) for line in fp32.stdout.splitlines()], api_records, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=0.05)


def test_doctor_reports_counts_lengths_truncation_and_model_files(sst2: dict[str, Path]) -> None:
    proc = run_cli("doctor", "--data", str(sst2["train"]), "--eval", str(sst2["dev"]), "--max-length", "32")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "600 rows" in out and "200 rows" in out
    counts = read_tsv(sst2["train"])["label"].value_counts()
    for label, count in counts.items():
        assert any(line.split()[:2] == [str(label), str(count)] for line in out.splitlines()), (label, count, out)
    assert "token lengths: mean" in out
    assert "1-16" in out and ">32 (truncated)" in out
    assert "truncated at max_length=32:" in out
    assert "all files present for offline use" in out
    facts = json.loads(run_cli("doctor", "--data", str(sst2["train"]), "--max-length", "32", "--json").stdout)
    histogram = facts["tokens"]["histogram"]
    assert sum(h["count"] for h in histogram) == facts["train"]["rows"]  # the split's train part, every text once
    assert facts["tokens"]["truncated_share"] == pytest.approx(histogram[-1]["count"] / facts["train"]["rows"])
    assert facts["model"]["offline_ready"] is True and facts["model"]["missing_files"] == []


def test_banking77_few_classes(tmp_path: Path) -> None:
    train = pd.read_csv(shared("banking77", "train.csv"), dtype=str, keep_default_na=False)
    test = pd.read_csv(shared("banking77", "test.csv"), dtype=str, keep_default_na=False)
    classes = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "pin_blocked"]
    train = train[train["category"].isin(classes)].groupby("category").head(40)
    test = test[test["category"].isin(classes)]
    metrics = train_cli("--data", str(write_slice(train, tmp_path / "train.csv")), "--eval",
                        str(write_slice(test, tmp_path / "test.csv")), "--epochs", "1", "--max-length", "64",
                        "--set", "strategy.name=full", "--output", str(tmp_path / "run"))
    assert metrics["accuracy"] >= 0.8, metrics  # chance is 0.2
    assert sorted(metrics["labels"]) == sorted(classes)  # type: ignore[arg-type]


def test_twitter_financial_news_sentiment(tmp_path: Path) -> None:
    train = pd.read_csv(shared("twitter_financial_news_sentiment", "sent_train.csv"), dtype=str, keep_default_na=False)
    valid = pd.read_csv(shared("twitter_financial_news_sentiment", "sent_valid.csv"), dtype=str, keep_default_na=False)
    train = train.groupby("label").head(150)  # 150 per class: 450 rows
    valid = valid.head(300)
    metrics = train_cli("--data", str(write_slice(train, tmp_path / "train.csv")), "--eval",
                        str(write_slice(valid, tmp_path / "valid.csv")), "--epochs", "1", "--max-length", "64",
                        "--set", "strategy.name=full", "--output", str(tmp_path / "run"))
    majority = valid["label"].value_counts(normalize=True).max()
    assert metrics["accuracy"] > majority + 0.05, (metrics, majority)
    assert metrics["macro_f1"] >= 0.55, metrics  # always-neutral would score about 0.27
