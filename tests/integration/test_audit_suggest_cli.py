"""`fmkit audit` and `fmkit suggest` end to end on a small three-topic set written here, with the bundled MiniLM.

The set has two labels flipped on purpose, a near-copy of a flipped row that keeps the right label, and one
text unlike any other; the audit must name exactly those, and the cleaned copy must train."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import fmkit
from tests.integration.test_bad_input import assert_clean_failure, run_in_process

TOPICS = {
    "weather": ["It will rain heavily tomorrow afternoon", "Sunny skies and warm temperatures expected this weekend",
                "A cold front brings snow to the mountains", "Strong winds and thunderstorms forecast tonight",
                "The heatwave continues with record temperatures", "Fog will clear by mid morning",
                "Expect light showers in the evening", "Frost is likely overnight in rural areas",
                "A hurricane is approaching the coast", "Humidity will rise ahead of the storm",
                "Clouds will break up by the afternoon", "Freezing rain makes roads icy this morning"],
    "sports": ["The striker scored twice in the final", "The team won the championship after extra time",
               "She broke the world record in the 100 metres", "The coach was sacked after five straight defeats",
               "The tennis match went to a fifth set", "Our goalkeeper saved a penalty in the last minute",
               "The marathon runner collapsed near the finish line", "The basketball playoffs start next week",
               "He signed a three year contract with the club", "The referee showed two red cards",
               "The cyclist won the mountain stage", "The rugby side lost at home again"],
    "cooking": ["Whisk the eggs with sugar until pale", "Simmer the tomato sauce for twenty minutes",
                "Knead the dough and let it rise overnight", "Roast the chicken with garlic and lemon",
                "Chop the onions finely before frying them", "Season the soup with salt and pepper",
                "Bake the cake at 180 degrees for forty minutes", "Marinate the beef in soy sauce",
                "Grate the cheese over the pasta", "Fold the cream gently into the chocolate",
                "Boil the potatoes until soft then mash them", "Toast the spices in a dry pan"],
}
FLIPPED = {"The striker scored twice in the final": "cooking", "Roast the chicken with garlic and lemon": "weather"}
NEAR_COPY = ("The striker scored twice in the final!", "sports")  # a near-duplicate of a flipped row, labelled right
OUTLIER = ("Ich habe keine Ahnung, was hier passiert ist", "weather")  # German among English texts


def rows() -> list[tuple[str, str, str]]:
    out = []
    for label, texts in TOPICS.items():
        out += [(f"{label[:2]}{i}", text, FLIPPED.get(text, label)) for i, text in enumerate(texts)]
    return [*out, ("copy", *NEAR_COPY), ("odd", *OUTLIER)]


def write_csv(path: Path, data: list[tuple[str, str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label"])
        writer.writerows(data)
    return path


@pytest.fixture(scope="module")
def topics_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("audit") / "topics.csv", rows())


def audit_cli(*args: str) -> tuple[int, str, str]:
    proc = run_in_process(["audit", "--quiet", "--folds", "3", *args])
    return proc.returncode, proc.stdout, proc.stderr


def test_audit_names_the_flipped_rows_first_and_the_outlier_last(topics_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "suspects.jsonl"
    code, stdout, stderr = audit_cli("--data", str(topics_csv), "--output", str(out))
    assert code == 0, stderr
    suspects = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {s["id"]: s for s in suspects}
    assert [s["id"] for s in suspects[:2]] == ["sp0", "co3"] or [s["id"] for s in suspects[:2]] == ["co3", "sp0"]
    assert by_id["sp0"]["suggested"] == "sports" and by_id["sp0"]["label"] == "cooking"
    assert by_id["co3"]["suggested"] == "cooking" and by_id["co3"]["label"] == "weather"
    assert "label_issue" in by_id["sp0"]["reason"] and "conflicting_duplicate" in by_id["sp0"]["reason"]
    assert "copy" not in by_id  # the near-copy carries the right label: only its flipped twin is doubted
    assert suspects[-1]["id"] == "odd" and suspects[-1]["reason"].endswith("outlier")
    assert {s["id"] for s in suspects} == {"sp0", "co3", "odd"}
    assert set(suspects[0]) == {"id", "text", "label", "suggested", "score", "reason", "detail"}
    assert "3 suspects in 38 rows" in stdout and "suspects written to" in stdout


def test_drop_suspects_writes_a_cleaned_copy_that_trains(topics_csv: Path, tmp_path: Path) -> None:
    cleaned = tmp_path / "cleaned.csv"
    code, _, stderr = audit_cli("--data", str(topics_csv), "--drop-suspects", str(cleaned))
    assert code == 0, stderr
    with open(cleaned, newline="", encoding="utf-8") as fh:
        kept = list(csv.reader(fh))
    assert kept[0] == ["id", "text", "label"]
    assert [r[0] for r in kept[1:]] == [r[0] for r in rows() if r[0] not in ("sp0", "co3")]  # the outlier stays
    result = fmkit.train(data=str(cleaned), output=str(tmp_path / "run"),
                         **{"strategy.name": "linear-probe", "train.progress": False})
    assert result.metrics["train_examples"] > 0


def test_relabel_applies_corrections_and_trusts_them(topics_csv: Path, tmp_path: Path) -> None:
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("id,label\nsp0,sports\n", encoding="utf-8")
    cleaned = tmp_path / "cleaned.jsonl"
    jsonl = tmp_path / "topics.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "text": t, "label": y}) + "\n" for i, t, y in rows()), encoding="utf-8")
    code, stdout, stderr = audit_cli("--data", str(jsonl), "--relabel", str(fixes), "--drop-suspects", str(cleaned))
    assert code == 0, stderr
    kept = [json.loads(line) for line in cleaned.read_text().splitlines()]
    assert {"id": "sp0", "text": "The striker scored twice in the final", "label": "sports"} in kept
    suspects = [json.loads(line) for line in stdout.splitlines()]
    doubted = {s["id"] for s in suspects if s["reason"] != "outlier"}
    assert "sp0" not in {s["id"] for s in suspects} and "co3" in doubted
    assert [k["id"] for k in kept] == [r[0] for r in rows() if r[0] not in doubted]  # order and fields kept
    assert "1 rows relabelled" in stderr


def test_suggest_ranks_the_pool_with_reasons(topics_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fmkit.train(data=str(topics_csv), output=str(run), **{"strategy.name": "linear-probe", "train.progress": False})
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(["The goalkeeper was injured in training", "Heavy snow closed the airport",
                               "Stir the risotto until creamy", "The chef watched the match while it rained",
                               "Light rain is expected later", "The goalkeeper was injured in training again",
                               "It will rain heavily tomorrow afternoon"]) + "\n", encoding="utf-8")
    for strategy in ("uncertainty", "diversity", "mix"):
        out = tmp_path / f"next-{strategy}.jsonl"
        proc = run_in_process(["suggest", str(run), "--pool", str(pool), "-n", "3", "--strategy", strategy,
                               "--output", str(out)])
        assert proc.returncode == 0, proc.stderr
        picks = [json.loads(line) for line in out.read_text().splitlines()]
        assert [p["rank"] for p in picks] == [1, 2, 3]
        assert len({p["id"] for p in picks}) == 3
        assert "6" not in {p["id"] for p in picks}  # a text of the training file is already labelled
        assert all(p["guess"] in TOPICS and p["reason"] for p in picks)
        assert "1 skipped as already labelled" in proc.stderr
    uncertain = [json.loads(line) for line in (tmp_path / "next-uncertainty.jsonl").read_text().splitlines()]
    assert [p["score"] for p in uncertain] == sorted((p["score"] for p in uncertain), reverse=True)
    assert uncertain[0]["text"] == "The chef watched the match while it rained"


def test_bad_input_fails_cleanly(topics_csv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    run = tmp_path / "run"
    fmkit.train(data=str(topics_csv), output=str(run), **{"strategy.name": "linear-probe", "train.progress": False})
    assert_clean_failure(["suggest", str(run), "--pool", str(empty)], [str(empty), "one text per line"])
    pretrained = tmp_path / "not-a-classifier"
    (pretrained).mkdir()
    (pretrained / "fmkit.json").write_text(json.dumps({"task": "ner", "labels": ["O"]}), encoding="utf-8")
    assert_clean_failure(["suggest", str(pretrained), "--pool", str(topics_csv)], ["not a classification model",
                                                                                   "fmkit train"])
    small = write_csv(tmp_path / "small.csv", [*rows(), ("rare", "A rare text about chess", "chess"),
                                               ("rare2", "Another chess opening", "chess")])
    assert_clean_failure(["audit", "--data", str(small), "--folds", "5", "--quiet"],
                         ["class 'chess' has 2 example(s)", "--folds 5", "Lower --folds to 2"])
    shuffled = write_csv(tmp_path / "random.csv", [(i, t, ["weather", "sports", "cooking"][k % 3])
                                                   for k, (i, t, _) in enumerate(sorted(rows(), key=lambda r: r[1]))])
    assert_clean_failure(["audit", "--data", str(shuffled), "--folds", "3", "--quiet"],
                         ["labels do not follow the texts", "--label-column"])
    assert_clean_failure(["audit", "--data", str(topics_csv), "--relabel", str(topics_csv)], ["--drop-suspects"])
    assert_clean_failure(["audit", "--data", str(topics_csv), "--drop-suspects", str(topics_csv), "--quiet",
                          "--folds", "3"], ["input file"])
