"""report.html and MODEL_CARD.md of a regression run: headline reading, scatter, residuals, largest errors."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from fmkit.config.load import write_config
from fmkit.config.schema import RunConfig
from fmkit.evaluation.report import write_report
from fmkit.evaluation.report_regression import Scored, downsample, error_by_range, residual_histogram

SCRIPT = "<script>alert(1)</script> a lovely film"
# (text, text_pair, target, predicted); every error is an exact binary fraction, so the expected numbers are exact
ROWS: list[tuple[str, str | None, float, float]] = [
    (SCRIPT, None, 0.0, 1.0),  # error +1.0, tied with "text 9": file order breaks the tie
    ("text 1", None, 1.0, 1.5),
    ("text 2", None, 2.0, 2.0),
    ("text 3", None, 3.0, 3.5),
    ("text 4", None, 4.0, 4.0),
    ("text 5", None, 5.0, 4.5),
    ("text 6", None, 6.0, 6.0),
    ("text 7", None, 7.0, 6.5),
    ("a man is playing a guitar", "a woman slices an onion", 8.0, 5.0),  # error -3.0: the largest
    ("text 9", None, 9.0, 8.0),
]


def fake_regression_run(run_dir: Path, with_predictions: bool = True) -> Path:
    run_dir.mkdir(parents=True)
    write_config(RunConfig.model_validate({"task": {"type": "regression"}, "model": {"name": "tiny"}}),
                 run_dir / "config.yaml")
    # the values regression_metrics gives for ROWS (rounded), and the training targets' mean/std as the workflow records
    (run_dir / "metrics.json").write_text(json.dumps({
        "spearman": 0.9636, "pearson": 0.9516, "rmse": 1.0954, "mae": 0.7, "r2": 0.8545, "num_examples": len(ROWS),
        "eval_source": "dev.csv", "train_examples": 40, "strategy": "full", "target": {"mean": 4.5, "std": 2.8723},
        "train_seconds": 12.5, "steps": 20}))
    (run_dir / "data.json").write_text(json.dumps({"train": {"path": "train.csv", "rows": 40},
                                                   "eval": {"path": "dev.csv", "rows": len(ROWS)}, "max_length": 32}))
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "started": 1.0}))
    if with_predictions:
        lines = []
        for text, pair, target, predicted in ROWS:
            row: dict[str, object] = {"text": text}
            if pair is not None:
                row["text_pair"] = pair
            row.update(target=target, predicted=predicted)
            lines.append(json.dumps(row) + "\n")
        (run_dir / "eval_predictions.jsonl").write_text("".join(lines))
    return run_dir


def section(html: str, title: str) -> str:
    start = html.index(f">{title}</h2>")
    return html[start:html.index("</section>", start)]


def test_regression_report_sections_and_card(tmp_path: Path) -> None:
    html_path, card_path = write_report(fake_regression_run(tmp_path / "sts"))
    html = html_path.read_text()
    for title in ("Overview", "Regression metrics", "Predicted vs true", "Residuals", "Largest errors", "Data",
                  "Configuration", "How to use this model"):
        assert f">{title}</h2>" in html, title
    assert ">Metrics</h2>" not in html and ">Calibration</h2>" not in html  # regression sections, not the fallback

    headline = section(html, "Regression metrics")
    for label, value in (("Spearman", "0.9636"), ("RMSE", "1.0954"), ("R²", "0.8545"), ("eval examples", "10")):
        assert f'<div class="k">{label}</div><div class="v">{value}</div>' in headline, label
    reading = ("RMSE 1.095 is 0.38× the target's standard deviation (2.872, training targets); a model that always "
               "predicted the mean would have RMSE ≈ 2.872, so typical errors are 62% smaller than that baseline.")
    assert escape(reading) in headline  # the apostrophe is escaped like every other text

    scatter = section(html, "Predicted vs true")
    assert 'class="scatter"' in scatter and 'class="diagonal"' in scatter
    assert scatter.count("<circle") == len(ROWS) and "Predicted vs true, 10 eval examples" in scatter

    residuals = section(html, "Residuals")
    # targets 0..9 in 5 equal-count bins of 2: count, mean target, MAE, bias
    expected = [("0.0000 to 1.0000", "0.5000", "0.7500", "0.7500"), ("2.0000 to 3.0000", "2.5000", "0.2500", "0.2500"),
                ("4.0000 to 5.0000", "4.5000", "0.2500", "-0.2500"), ("6.0000 to 7.0000", "6.5000", "0.2500", "-0.2500"),
                ("8.0000 to 9.0000", "8.5000", "2.0000", "-2.0000")]
    table = residuals[residuals.index("Error by target range"):]
    rows = re.findall(r"<tr><td class=\"\">([^<]*)</td><td class=\"num\">2</td><td class=\"num\">([^<]*)</td>"
                      r"<td class=\"num\">([^<]*)</td><td class=\"num\">([^<]*)</td></tr>", table)
    assert rows == expected
    assert "Mean error (bias) -0.3: predictions are on average below the target; median |error| 0.5; " \
           "90% of errors within ±1." in residuals
    assert "Predictions are pulled toward the mean" in residuals
    assert "Residuals (predicted - target)" in residuals

    worst = section(html, "Largest errors")
    assert "<th>text pair</th>" in worst
    cells = re.findall(r"<tr><td class=\"\">([^<]*)</td>", worst)
    assert cells[:3] == ["a man is playing a guitar", "&lt;script&gt;alert(1)&lt;/script&gt; a lovely film", "text 9"]
    assert len(cells) == 10
    assert "a woman slices an onion</td>" in worst
    assert "<script" not in html  # escaped everywhere, and the report stays script-free

    card = card_path.read_text()
    assert "## Regression metrics" in card and "| RMSE | 1.0954 |" in card and "| Spearman | 0.9636 |" in card
    assert "| eval examples | 10 |" in card and reading in card
    assert "| 8.0000 to 9.0000 | 2 | 8.5000 | 2.0000 | -2.0000 |" in card
    assert "Largest errors" not in card and "<script" not in card  # eval texts stay out of the shareable card


def test_run_without_predictions_still_reports_its_metrics(tmp_path: Path) -> None:
    html = write_report(fake_regression_run(tmp_path / "bare", with_predictions=False))[0].read_text()
    assert ">Regression metrics</h2>" in html and "62% smaller than that baseline" in html
    assert ">Predicted vs true</h2>" not in html and ">Largest errors</h2>" not in html


def test_residual_histogram_bins_are_round_and_cover_every_error() -> None:
    errors = [p - t for _, _, t, p in ROWS]
    assert residual_histogram(errors) == (["-3 to -2", "-2 to -1", "-1 to 0", "0 to 1"], [1, 0, 3, 6])
    assert residual_histogram([0.0, 0.0]) == (["0"], [2])


def test_error_by_range_with_fewer_examples_than_bins() -> None:
    examples = [Scored(0, 2.0, 3.0, "a", None), Scored(1, 1.0, 1.0, "b", None)]
    assert [(r["low"], r["count"], r["bias"]) for r in error_by_range(examples)] == [(1.0, 1, 0.0), (2.0, 1, 1.0)]


def test_downsample_is_deterministic_covers_the_range_and_keeps_the_worst() -> None:
    examples = [Scored(i, float(i % 997), float(i % 997), f"t{i}", None) for i in range(5000)]
    examples[1234] = Scored(1234, 5.0, 500.0, "worst", None)
    shown = downsample(examples, limit=300)
    assert shown == downsample(examples, limit=300)
    assert 300 <= len(shown) <= 310
    assert any(e.text == "worst" for e in shown)
    assert min(e.target for e in shown) == 0.0 and max(e.target for e in shown) == 996.0
    assert [e.index for e in shown] == sorted(e.index for e in shown)
    assert downsample(examples[:10]) == examples[:10]
