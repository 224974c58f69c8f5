"""Every strategy end to end through the CLI on small slices of real data: it must learn (well above chance)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli, shared

pytestmark = pytest.mark.slow


def write_slice(df: pd.DataFrame, path: Path) -> Path:
    df[["text", "label"]].to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE, escapechar="\\")
    return path


def sst2(tmp_path: Path, n_train: int, n_eval: int = 200) -> tuple[Path, Path]:
    train = pd.read_csv(shared("sst2", "SST-2", "train.tsv"), sep="\t", quoting=3, dtype=str, keep_default_na=False)
    dev = pd.read_csv(shared("sst2", "SST-2", "dev.tsv"), sep="\t", quoting=3, dtype=str, keep_default_na=False)
    train = train.rename(columns={"sentence": "text"}).sample(n=n_train, random_state=0)
    dev = dev.rename(columns={"content": "text"}).sample(n=n_eval, random_state=0)
    return write_slice(train, tmp_path / "train.tsv"), write_slice(dev, tmp_path / "dev.tsv")


def ag_news(tmp_path: Path, per_class: int, n_eval: int = 200) -> tuple[Path, Path]:
    names = ["text", "label"]
    train = pd.read_csv(shared("ag_news", "dev.tsv"), sep="\t", header=None, names=names, quoting=3, dtype=str)
    test = pd.read_csv(shared("ag_news", "test.tsv"), sep="\t", header=None, names=names, quoting=3, dtype=str)
    train = train.groupby("label").sample(n=per_class, random_state=0)
    test = test.groupby("label").sample(n=n_eval // 4, random_state=0)
    return write_slice(train, tmp_path / "train.tsv"), write_slice(test, tmp_path / "test.tsv")


def train(tmp_path: Path, data: Path, eval_file: Path, strategy: str, *extra: str) -> dict[str, float]:
    out = tmp_path / f"run-{strategy}"
    proc = run_cli("train", "--data", str(data), "--eval", str(eval_file), "--strategy", strategy, "--output", str(out),
                   "--quiet", *extra, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics: dict[str, float] = json.loads((out / "metrics.json").read_text())
    return metrics


def test_linear_probe_sst2(tmp_path: Path) -> None:
    data, dev = sst2(tmp_path, 1000)
    assert train(tmp_path, data, dev, "linear-probe")["accuracy"] >= 0.7  # chance 0.5


def test_fewshot_ag_news_8_per_class(tmp_path: Path) -> None:
    data, test = ag_news(tmp_path, 8)
    metrics = train(tmp_path, data, test, "fewshot")
    assert metrics["accuracy"] >= 0.6, metrics  # chance 0.25
    assert (tmp_path / "run-fewshot/model/fmkit.json").is_file()


def test_zeroshot_ag_news_label_names(tmp_path: Path) -> None:
    data, test = ag_news(tmp_path, 2)
    descriptions = tmp_path / "labels.json"
    descriptions.write_text(json.dumps({"World": "world politics news", "Sports": "sports news",
                                        "Business": "business and economy news", "Sci/Tech": "science and technology news"}))
    metrics = train(tmp_path, data, test, "zeroshot", "--label-descriptions", str(descriptions))
    assert metrics["accuracy"] >= 0.45, metrics  # chance 0.25, no training at all
    proc = run_cli("predict", str(tmp_path / "run-zeroshot/model"), "-", input_text="The team won the cup final\n")
    assert json.loads(proc.stdout)["label"] == "Sports"


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_full_and_lora_sst2(tmp_path: Path, strategy: str) -> None:
    data, dev = sst2(tmp_path, 600)
    metrics = train(tmp_path, data, dev, strategy, "--epochs", "1")
    assert metrics["accuracy"] >= 0.7, metrics
    if strategy == "lora":
        assert (tmp_path / "run-lora/adapters/adapter_config.json").is_file()
    proc = run_cli("eval", str(tmp_path / f"run-{strategy}/model"), "--data", str(dev), "--json")
    assert proc.returncode == 0 and abs(json.loads(proc.stdout)["accuracy"] - metrics["accuracy"]) < 1e-6


def test_auto_follows_data_size_and_budget(tmp_path: Path) -> None:
    data, test = ag_news(tmp_path, 8)
    few = train(tmp_path, data, test, "auto", "--time-budget", "10m")
    chosen = json.loads((tmp_path / "run-auto/strategy.json").read_text())
    assert chosen["strategy"] == "fewshot" and few["accuracy"] >= 0.6, chosen
    more = tmp_path / "more"
    more.mkdir()
    data, test = ag_news(more, 64)
    # 256 examples: lora/full are estimated at ~18-22 s here (and take that long), the probe at ~7 s.
    train(more, data, test, "auto", "--time-budget", "8s")
    assert json.loads((more / "run-auto/strategy.json").read_text())["strategy"] in ("linear-probe", "zeroshot")


def test_pretrain_then_fewshot(tmp_path: Path) -> None:
    texts = pd.read_csv(shared("twitter_financial_news_sentiment", "sent_train.csv"), dtype=str)["text"].head(200)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n")
    proc = run_cli("pretrain", "--data", str(corpus), "--output", str(tmp_path / "pre"), "--quiet", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "pre/metrics.json").read_text())
    assert metrics["perplexity"] < metrics["perplexity_before"]
    data, test = ag_news(tmp_path, 8)
    result = train(tmp_path, data, test, "linear-probe", "--model", str(tmp_path / "pre/model"))
    assert result["accuracy"] >= 0.5
