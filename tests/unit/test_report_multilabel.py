"""report.html and MODEL_CARD.md of a multilabel run: tuned vs 0.5 metrics, per-label table, threshold curve,
example mistakes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fmkit.config.load import write_config
from fmkit.config.schema import RunConfig
from fmkit.evaluation.report import write_report
from fmkit.evaluation.report_multilabel import Mistake, curve_points, label_rows, mistakes, worst_mistakes

SCRIPT = "<script>alert(1)</script> refund please"
# the model's label order (metrics.json's per_label keeps it): neither by support nor alphabetical
LABELS = ("spam", "refund", "q&a", "shipping", "billing")
# (text, gold, predicted, top scores); the comment is the size of the gold/predicted symmetric difference
ROWS: list[tuple[str, list[str], list[str], dict[str, float]]] = [
    (SCRIPT, ["refund", "q&a"], ["refund", "shipping"],  # 2: missed q&a, extra shipping
     {"refund": 0.91, "shipping": 0.55, "q&a": 0.3, "billing": 0.1, "spam": 0.05}),
    ("text 1", ["billing", "refund"], ["billing"], {"billing": 0.9, "refund": 0.3}),  # 1
    ("text 2", ["shipping", "q&a"], ["billing", "refund"],  # 4: the largest
     {"billing": 0.7, "refund": 0.6, "shipping": 0.2, "q&a": 0.1, "spam": 0.01}),
    ("text 3", ["billing"], ["billing"], {"billing": 0.95}),  # 0: right, not a mistake
    ("text 4", [], ["spam"], {"spam": 0.52}),  # 1
    ("text 5", ["shipping"], [], {"billing": 0.2}),  # 1, and shipping's score is not among the recorded ones
    ("text 6", ["billing", "shipping"], ["billing", "shipping"], {"billing": 0.8, "shipping": 0.7}),  # 0
    ("text 7", ["billing", "refund", "shipping"], ["billing", "refund", "shipping"],
     {"billing": 0.9, "refund": 0.8, "shipping": 0.6}),  # 0
]
# what multilabel_metrics gives for ROWS (rounded); support = eval texts with the label
PER_LABEL = {
    "spam": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    "refund": {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3},
    "q&a": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2},
    "shipping": {"precision": 0.6667, "recall": 0.5, "f1": 0.5714, "support": 4},
    "billing": {"precision": 0.8, "recall": 1.0, "f1": 0.8889, "support": 4},
}
GRID = [round(0.05 * k, 2) for k in range(1, 20)]
# a curve that peaks at 0.35 for macro F1; at 0.5 it is 0.45 (macro) and 0.65 (micro)
CURVE = [{"threshold": t, "macro_f1": round(0.6 - abs(t - 0.35), 4), "micro_f1": round(0.7 - abs(t - 0.4) / 2, 4)}
         for t in GRID]


def fake_multilabel_run(run_dir: Path, with_predictions: bool = True) -> Path:
    run_dir.mkdir(parents=True)
    write_config(RunConfig.model_validate({"task": {"type": "multilabel"}, "model": {"name": "tiny"}}),
                 run_dir / "config.yaml")
    (run_dir / "metrics.json").write_text(json.dumps({
        "macro_f1": 0.4254, "micro_f1": 0.64, "samples_f1": 0.5208, "subset_accuracy": 0.375, "hamming_loss": 0.225,
        "num_examples": len(ROWS), "per_label": PER_LABEL,
        "thresholds": {"spam": 0.5, "refund": 0.35, "q&a": 0.6, "shipping": 0.45, "billing": 0.5},
        "at_threshold_0.5": {"macro_f1": 0.38, "micro_f1": 0.6, "samples_f1": 0.5, "subset_accuracy": 0.25,
                             "hamming_loss": 0.25},
        "threshold_curve": CURVE, "thresholds_tuned_on": "dev.jsonl", "eval_source": "dev.jsonl",
        "train_examples": 40, "strategy": "full", "train_seconds": 12.5, "steps": 20}))
    (run_dir / "data.json").write_text(json.dumps({
        "train": {"source": "train.jsonl", "rows": 40, "label_counts": {"billing": 20, "refund": 12}},
        "eval": {"source": "dev.jsonl", "rows": len(ROWS)}, "max_length": 32, "labels": list(LABELS)}))
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "started": 1.0}))
    if with_predictions:
        (run_dir / "eval_predictions.jsonl").write_text("".join(
            json.dumps({"text": text, "labels": gold, "predicted": predicted, "scores": scores}) + "\n"
            for text, gold, predicted, scores in ROWS))
    return run_dir


def section(html: str, title: str) -> str:
    start = html.index(f">{title}</h2>")
    return html[start:html.index("</section>", start)]


def test_multilabel_report_sections_and_card(tmp_path: Path) -> None:
    html_path, card_path = write_report(fake_multilabel_run(tmp_path / "tickets"))
    html = html_path.read_text()
    titles = ("Overview", "Multilabel metrics", "Per-label precision, recall and F1", "Threshold curve",
              "Example mistakes", "Data", "Configuration", "How to use this model")
    positions = [html.index(f">{title}</h2>") for title in titles]
    assert positions == sorted(positions)  # every section, in this order
    assert ">Metrics</h2>" not in html and ">Calibration</h2>" not in html  # multilabel sections, not the fallback

    headline = section(html, "Multilabel metrics")
    assert "<th>metric</th><th>tuned thresholds</th><th>threshold 0.5</th>" in headline
    for label, tuned, half in (("macro F1", "0.4254", "0.3800"), ("micro F1", "0.6400", "0.6000"),
                               ("subset accuracy (exact set)", "0.3750", "0.2500"),
                               ("Hamming loss (lower is better)", "0.2250", "0.2500"), ("eval examples", "8", "8")):
        assert (f'<tr><td class="">{label}</td><td class="num">{tuned}</td><td class="num">{half}</td></tr>'
                in headline), label
    assert "tuned for F1 on the eval split (dev.jsonl), the same texts these numbers are measured on" in headline
    assert "For unbiased numbers run `fmkit eval` on another labelled file." in headline

    per_label = section(html, "Per-label precision, recall and F1")
    rows = re.findall(r'<tr><td class="">([^<]*)</td><td class="num">([^<]*)</td>'
                      r'(?:<td class="num">[^<]*</td>){3}<td class="num">([^<]*)</td></tr>', per_label)
    # most support first; billing and shipping tie at 4 and keep the model's order (shipping before billing)
    assert rows == [("shipping", "4", "0.4500"), ("billing", "4", "0.5000"), ("refund", "3", "0.3500"),
                    ("q&amp;a ⚠ F1 0", "2", "0.6000"), ("spam ⚠ F1 0", "0", "0.5000")]
    assert ('<tr><td class="">billing</td><td class="num">4</td><td class="num">0.8000</td><td class="num">1.0000</td>'
            '<td class="num">0.8889</td>') in per_label
    assert "⚠ F1 0 (2 of 5 labels)" in per_label
    assert "never predicted correctly on the eval split although it has examples: q&amp;a" in per_label
    assert "no eval text has the label, so its F1 says nothing and its threshold stayed 0.5: spam" in per_label

    curve = section(html, "Threshold curve")
    assert curve.count("<polyline") == 3  # macro, micro and the vertical line at 0.5
    assert ">threshold 0.5</text>" in curve and ">macro F1</text>" in curve and ">micro F1</text>" in curve
    reading = ("Best single threshold for macro F1: 0.35 (macro F1 0.6000, micro F1 0.6750); at 0.5: macro F1 0.4500, "
               "micro F1 0.6500; per-label thresholds: macro F1 0.4254.")
    assert reading in curve

    worst = section(html, "Example mistakes")
    assert "5 of 8 eval texts got a label set different from the gold one" in worst
    cells = re.findall(r'<tr><td class="">([^<]*)</td><td class="">([^<]*)</td><td class="">([^<]*)</td>'
                       r'<td class="">([^<]*)</td><td class="">([^<]*)</td><td class="num">(\d+)</td></tr>', worst)
    assert cells == [
        ("text 2", "shipping, q&amp;a", "billing, refund", "shipping (0.20), q&amp;a (0.10)",
         "billing (0.70), refund (0.60)", "4"),
        ("&lt;script&gt;alert(1)&lt;/script&gt; refund please", "refund, q&amp;a", "refund, shipping",
         "q&amp;a (0.30)", "shipping (0.55)", "2"),
        ("text 1", "billing, refund", "billing", "refund (0.30)", "—", "1"),  # ties in file order
        ("text 4", "—", "spam", "—", "spam (0.52)", "1"),
        ("text 5", "shipping", "—", "shipping", "—", "1"),
    ]
    assert "<script" not in html  # escaped everywhere, and the report stays script-free

    card = card_path.read_text()
    assert "## Multilabel metrics" in card and "| metric | tuned thresholds | threshold 0.5 |" in card
    assert "| macro F1 | 0.4254 | 0.3800 |" in card and "| eval examples | 8 | 8 |" in card
    assert "optimistic for it" in card
    assert "## Per-label precision, recall and F1" in card and "| q&a ⚠ F1 0 | 2 | 0.0000 | 0.0000 | 0.0000 | 0.6000 |" in card
    assert card.index("| shipping | 4 |") < card.index("| billing | 4 |") < card.index("| refund | 3 |")
    assert "## Threshold curve" in card and reading in card
    assert "Example mistakes" not in card and "<script" not in card and "text 2" not in card  # no eval texts


def test_run_without_predictions_still_reports_its_metrics(tmp_path: Path) -> None:
    html = write_report(fake_multilabel_run(tmp_path / "bare", with_predictions=False))[0].read_text()
    assert ">Multilabel metrics</h2>" in html and ">Per-label precision, recall and F1</h2>" in html
    assert ">Threshold curve</h2>" in html and ">Example mistakes</h2>" not in html


def test_mistakes_rank_by_symmetric_difference_then_file_order() -> None:
    predictions = [{"text": t, "labels": g, "predicted": p, "scores": s} for t, g, p, s in ROWS]
    predictions.append({"text": "no lists", "labels": None, "predicted": "billing"})  # skipped, not fatal
    found = mistakes(predictions)
    assert [m.index for m in found] == [0, 1, 2, 4, 5]
    assert [m.index for m in worst_mistakes(found)] == [2, 0, 1, 4, 5]
    assert [m.index for m in worst_mistakes(found, k=2)] == [2, 0]
    m = Mistake(0, "t", ["a", "b"], ["b", "c", "d"], {})
    assert (m.missed, m.extra, m.wrong) == (["a"], ["c", "d"], 3)


def test_label_rows_and_curve_tolerate_missing_fields() -> None:
    rows = label_rows({"per_label": {"a": {"f1": 0.5, "support": 1}, "b": {"support": 3}}, "thresholds": {"b": 0.3}})
    assert [(r.label, r.support, r.f1, r.threshold, r.zero_f1) for r in rows] == [("b", 3, None, 0.3, False),
                                                                                     ("a", 1, 0.5, None, False)]
    assert label_rows({}) == []
    assert curve_points({"threshold_curve": [{"threshold": 0.9, "macro_f1": 0.1, "micro_f1": 0.2},
                                             {"threshold": 0.1, "macro_f1": None}, "junk",
                                             {"threshold": 0.5, "macro_f1": 0.3, "micro_f1": 0.4}]}) == [
        (0.5, 0.3, 0.4), (0.9, 0.1, 0.2)]
