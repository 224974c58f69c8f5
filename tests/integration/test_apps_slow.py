"""The three applications end to end on the shared data with the bundled MiniLM (slow)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from tests.conftest import run_cli, shared

pytestmark = pytest.mark.slow
LABELS = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}


def test_support_on_stackfaq_answers_and_hands_off() -> None:
    from fmkit.apps.support_eval import eval_stackfaq

    result = eval_stackfaq(shared("stackfaq", "stackExchange-FAQ.xml"))
    assert result["hybrid"]["accuracy@1"] >= 0.9 and result["hybrid"]["recall@5"] >= 0.97, result
    assert result["hybrid"]["accuracy@1"] >= result["bm25"]["accuracy@1"]
    assert result["handoff"]["oos_recall"] >= 0.8 and result["handoff"]["oos_precision"] >= 0.6, result


def _tweets(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [(row["text"], LABELS[row["label"]]) for row in csv.DictReader(fh)]


def test_monitor_alerts_on_a_replayed_negative_burst(tmp_path: Path) -> None:
    rng = random.Random(0)
    train = _tweets(shared("twitter_financial_news_sentiment", "sent_train.csv"))
    rng.shuffle(train)
    with open(tmp_path / "train.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(train[:900])
    run = run_cli("train", "--data", str(tmp_path / "train.csv"), "--output", str(tmp_path / "run"), "--epochs", "3",
                  "--max-length", "64", "--quiet", "--set", "strategy.name=linear-probe")
    assert run.returncode == 0, run.stderr
    init = run_cli("app", "monitor", "init", str(tmp_path / "app"), "--model", str(tmp_path / "run" / "model"),
                   "--window", "600")
    assert init.returncode == 0 and "negative label 'Bearish'" in init.stdout, init.stderr

    valid = _tweets(shared("twitter_financial_news_sentiment", "sent_valid.csv"))
    calm = [t for t in valid if t[1] != "Bearish"] + [t for t in valid if t[1] == "Bearish"][:60]
    rng.shuffle(calm)
    bearish = [t for t in valid if t[1] == "Bearish"][60:120]
    t0 = 1_700_000_400  # a multiple of 600: windows line up with the generated times
    lines = [{"text": text, "time": t0 + i * 20, "ticker": "MKT"} for i, (text, _) in enumerate(calm[:720])]  # 24 windows
    burst_start = t0 + 720 * 20
    lines += [{"text": text, "time": burst_start + i * 5, "source": "wire"} for i, (text, _) in enumerate(bearish)]
    lines.append({"text": "Markets close for the day", "time": burst_start + 1200})
    (tmp_path / "news.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    done = run_cli("app", "monitor", "run", str(tmp_path / "app"), str(tmp_path / "news.jsonl"), "--once")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stderr.strip().splitlines()[-1])
    assert stats["items"] == len(lines) == 781
    alerts = [json.loads(line) for line in (tmp_path / "app" / "alerts.jsonl").read_text().splitlines()]
    burst = [a for a in alerts if a["scope"] == "*" and a["kind"] == "negative_share"]
    assert [a["window_start"] for a in burst] == [burst_start], alerts
    status = run_cli("app", "monitor", "status", str(tmp_path / "app"), "--windows", "5")
    assert json.loads(status.stdout)["items"] == 781


def test_recommender_on_movielens_subset_beats_popularity_on_coverage(tmp_path: Path) -> None:
    movies = shared("movielens_latest_small", "movies.csv").read_text(encoding="utf-8").splitlines()
    ratings = shared("movielens_latest_small", "ratings.csv").read_text(encoding="utf-8").splitlines()
    keep = {line.split(",", 1)[0] for line in movies[:1500]}  # the first 1,500 films keep the run short
    (tmp_path / "movies.csv").write_text("\n".join(movies[:1500]) + "\n")
    (tmp_path / "ratings.csv").write_text("\n".join(r for r in ratings if r.split(",")[1] in keep) + "\n")
    result = run_cli("app", "recommend", "eval", "--items", str(tmp_path / "movies.csv"), "--ratings",
                     str(tmp_path / "ratings.csv"), "--popularity-weights", "0", "0.3")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["users"] > 500
    for name in ("popularity", "item_knn", "content", "content+popularity(0.3)"):
        assert 0.0 <= metrics[name]["recall@10"] <= 1.0
    assert metrics["content"]["coverage"] > metrics["popularity"]["coverage"]
    assert metrics["content+popularity(0.3)"]["recall@10"] > metrics["content"]["recall@10"]

    built = run_cli("app", "recommend", "build", "--items", str(tmp_path / "movies.csv"), "--ratings",
                    str(tmp_path / "ratings.csv"), "--output", str(tmp_path / "app"))
    assert built.returncode == 0, built.stderr
    new_user = run_cli("app", "recommend", "for", str(tmp_path / "app"), "--liked", "1", "2", "--json")
    assert new_user.returncode == 0, new_user.stderr
    assert len(new_user.stdout.splitlines()) == 10 and '"1"' not in new_user.stdout
