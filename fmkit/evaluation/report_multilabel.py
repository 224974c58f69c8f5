"""Report sections of the multilabel task (any number of labels per text); report.py loads this module for those runs.

Built from metrics.json (macro_f1, micro_f1, samples_f1, subset_accuracy, hamming_loss, num_examples, per_label,
thresholds, at_threshold_0.5, threshold_curve, thresholds_tuned_on) and eval_predictions.jsonl ({"text",
"labels": [gold], "predicted": [labels above their threshold], "scores": {top-5 label: p}} per eval text):

- Multilabel metrics: the headline numbers at the tuned per-label thresholds beside the same numbers at 0.5, and
  why the tuned ones flatter the eval split they were tuned on;
- Per-label precision, recall and F1: one row per label with its threshold, most frequent first, F1 0 flagged;
- Threshold curve: macro and micro F1 if one threshold served every label, with 0.5 marked;
- Example mistakes: the eval texts whose predicted set is furthest from the gold set (report.html only, like the
  regression report's largest errors: eval texts stay out of the shareable model card).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from fmkit.evaluation import svg
from fmkit.evaluation.report import RunFiles, Section, html_table, md_table, register_sections

# metrics.json key -> what a reader calls it, in the order the headline shows them (the workflow's HEADLINE)
_HEADLINE = (("macro_f1", "macro F1"), ("micro_f1", "micro F1"), ("samples_f1", "samples F1"),
             ("subset_accuracy", "subset accuracy (exact set)"), ("hamming_loss", "Hamming loss (lower is better)"))
AT_HALF = "at_threshold_0.5"
EXAMPLE_MISTAKES = 10
FLAG = "⚠ F1 0"
NONE = "—"  # an empty label set: an empty cell would read as missing data


def _number(value: Any) -> float | None:
    """A finite number as float; None for anything else (null, NaN, a string, a bool)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object, or {} for anything else (a hand-edited or older metrics.json must not break the report)."""
    return value if isinstance(value, dict) else {}


def _cell(value: Any) -> Any:
    """A table cell: a number as fmt writes it, a missing one as a dash rather than 'None'."""
    return NONE if _number(value) is None else value


# --- headline ----------------------------------------------------------------------------------------


def tuned_on(run: RunFiles) -> str:
    """Where the per-label thresholds were tuned (the workflow records the eval split's path)."""
    return str(run.metrics.get("thresholds_tuned_on") or run.metrics.get("eval_source")
               or (run.data.get("eval") or {}).get("source") or "the eval split")


def tuning_note(run: RunFiles) -> str:
    """One plain-language line: the tuned column is measured on the data the thresholds were chosen on."""
    return (f"The per-label thresholds were tuned for F1 on the eval split ({tuned_on(run)}), the same texts these "
            "numbers are measured on, so the tuned column is optimistic for it; the 0.5 column involves no tuning. "
            "For unbiased numbers run `fmkit eval` on another labelled file.")


def headline_section(run: RunFiles) -> Section:
    m = run.metrics
    half = _dict(m.get(AT_HALF))
    rows: list[list[Any]] = [[label, _cell(m.get(key)), _cell(half.get(key))] for key, label in _HEADLINE
                             if _number(m.get(key)) is not None or _number(half.get(key)) is not None]
    if not rows:
        return Section("Multilabel metrics", "<p>No multilabel metrics (metrics.json is missing or incomplete).</p>",
                       "No multilabel metrics.")
    if isinstance(m.get("num_examples"), int):
        rows.append(["eval examples", m["num_examples"], m["num_examples"]])
    header = ["metric", "tuned thresholds", "threshold 0.5"]
    note = tuning_note(run)
    return Section("Multilabel metrics", html_table(header, rows) + f"<p>{escape(note)}</p>",
                   f"{md_table(header, rows)}\n\n{note}")


# --- per label ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    label: str
    support: int
    precision: float | None
    recall: float | None
    f1: float | None
    threshold: float | None

    @property
    def zero_f1(self) -> bool:
        return self.f1 == 0


def label_rows(metrics: dict[str, Any]) -> list[LabelRow]:
    """One row per label of metrics.json's per_label, most eval support first; ties keep the recorded label order
    (the model's), so the table is the same every time."""
    per_label = _dict(metrics.get("per_label"))
    thresholds = _dict(metrics.get("thresholds"))
    rows = []
    for label, v in per_label.items():
        v = _dict(v)
        support = _number(v.get("support"))
        rows.append(LabelRow(str(label), int(support or 0), _number(v.get("precision")), _number(v.get("recall")),
                             _number(v.get("f1")), _number(thresholds.get(label))))
    return sorted(rows, key=lambda r: -r.support)  # sorted() is stable: equal support keeps the recorded order


def zero_f1_note(rows: list[LabelRow]) -> str:
    """Why each flagged label scores 0, since the two causes ask for different fixes (more data vs a better model)."""
    flagged = [r for r in rows if r.zero_f1]
    if not flagged:
        return ""
    never = [r.label for r in flagged if r.support > 0]
    absent = [r.label for r in flagged if r.support == 0]
    parts = []
    if never:
        parts.append(f"never predicted correctly on the eval split although it has examples: {', '.join(never)}")
    if absent:
        parts.append(f"no eval text has the label, so its F1 says nothing and its threshold stayed 0.5: "
                     f"{', '.join(absent)}")
    return (f"{FLAG} ({len(flagged)} of {len(rows)} labels) — " + "; ".join(parts)
            + ". Each still counts in macro F1, pulling it down.")


def per_label_section(rows: list[LabelRow]) -> Section:
    header = ["label", "support", "precision", "recall", "F1", "threshold"]
    # the flag sits in the label cell so it survives both the HTML table and the model card's Markdown
    cells: list[list[Any]] = [[f"{r.label} {FLAG}" if r.zero_f1 else r.label, r.support, _cell(r.precision),
                               _cell(r.recall), _cell(r.f1), _cell(r.threshold)] for r in rows]
    table = html_table(header, cells)
    if len(rows) > 30:  # long label sets scroll inside the section instead of pushing everything down
        table = f'<div class="scroll" style="max-height:520px">{table}</div>'
    note = zero_f1_note(rows)
    html = ("<p class='muted'>Most frequent label first (support: eval texts with the label); threshold: the label's "
            "own decision threshold, tuned for its F1.</p>" + table + (f"<p>{escape(note)}</p>" if note else ""))
    return Section("Per-label precision, recall and F1", html, md_table(header, cells) + (f"\n\n{note}" if note else ""))


# --- threshold curve ---------------------------------------------------------------------------------


def curve_points(metrics: dict[str, Any]) -> list[tuple[float, float, float]]:
    """(threshold, macro F1, micro F1) of metrics.json's threshold_curve, by threshold; unreadable points skipped."""
    out = []
    for point in metrics.get("threshold_curve") or []:
        if not isinstance(point, dict):
            continue
        t, macro, micro = (_number(point.get(k)) for k in ("threshold", "macro_f1", "micro_f1"))
        if t is not None and macro is not None and micro is not None:
            out.append((t, macro, micro))
    return sorted(out)


def curve_reading(points: list[tuple[float, float, float]], metrics: dict[str, Any]) -> str:
    """The best single threshold for macro F1, against 0.5 and against the per-label thresholds: how much the
    per-label tuning adds over one well-chosen global threshold."""
    best = max(points, key=lambda p: (p[1], -abs(p[0] - 0.5)))  # ties go to the threshold nearest 0.5, as tuning does
    line = f"Best single threshold for macro F1: {best[0]:.2f} (macro F1 {best[1]:.4f}, micro F1 {best[2]:.4f})"
    half = next((p for p in points if abs(p[0] - 0.5) < 1e-9), None)
    if half is not None:
        line += f"; at 0.5: macro F1 {half[1]:.4f}, micro F1 {half[2]:.4f}"
    tuned = _number(metrics.get("macro_f1"))
    if tuned is not None:
        line += f"; per-label thresholds: macro F1 {tuned:.4f}"
    return line + "."


def threshold_curve_section(points: list[tuple[float, float, float]], metrics: dict[str, Any]) -> Section:
    lines: dict[str, list[tuple[float, float]]] = {"macro F1": [(t, a) for t, a, _ in points],
                                                   "micro F1": [(t, i) for t, _, i in points]}
    if points[0][0] <= 0.5 <= points[-1][0]:
        # svg.line_chart has no vertical marker: a two-point series from 0 to 1 at x = 0.5 draws one on the same
        # axes (y_range is fixed at 0..1, so it spans the plot) and names itself in the legend
        lines["threshold 0.5"] = [(0.5, 0.0), (0.5, 1.0)]
    chart = svg.line_chart(lines, title="Macro and micro F1 with one threshold for every label",
                           xlabel="threshold (the same for every label)", ylabel="F1", y_range=(0, 1))
    reading = curve_reading(points, metrics)
    note = ("<p class='muted'>Each point applies one threshold to every label; the model itself uses each label's own "
            "threshold (the per-label table). A flat curve means the scores separate well; a sharp peak means the "
            "result depends on the exact threshold.</p>")
    return Section("Threshold curve", f'<div class="charts">{chart}</div><p>{escape(reading)}</p>{note}',
                   f"{reading}\n\nSee report.html for the chart.")


# --- example mistakes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """One eval text whose predicted label set differs from the gold set; `index` is its line in
    eval_predictions.jsonl."""

    index: int
    text: str
    gold: list[str]
    predicted: list[str]
    scores: dict[str, float]

    @property
    def missed(self) -> list[str]:
        return [label for label in self.gold if label not in self.predicted]

    @property
    def extra(self) -> list[str]:
        return [label for label in self.predicted if label not in self.gold]

    @property
    def wrong(self) -> int:
        return len(self.missed) + len(self.extra)  # the size of the symmetric difference of the two sets


def _labels(value: Any) -> list[str] | None:
    """A JSON list of labels as distinct strings in their order; None when the field is not a list."""
    if not isinstance(value, list):
        return None
    return list(dict.fromkeys(str(v) for v in value))


def mistakes(predictions: list[dict[str, Any]]) -> list[Mistake]:
    """Every row of eval_predictions.jsonl whose predicted set is not the gold set (a row without both lists is
    skipped, not fatal), in file order."""
    out = []
    for i, p in enumerate(predictions):
        gold, predicted = _labels(p.get("labels")), _labels(p.get("predicted"))
        if gold is None or predicted is None or set(gold) == set(predicted):
            continue
        scores = {str(k): s for k, v in _dict(p.get("scores")).items() if (s := _number(v)) is not None}
        out.append(Mistake(i, str(p.get("text", "")), gold, predicted, scores))
    return out


def worst_mistakes(found: list[Mistake], k: int = EXAMPLE_MISTAKES) -> list[Mistake]:
    """The k mistakes with the most wrong labels (missed + extra); ties keep file order, so the list is stable."""
    return sorted(found, key=lambda e: (-e.wrong, e.index))[:k]


def _listed(labels: list[str], scores: dict[str, float] | None = None) -> str:
    """Labels joined for a cell; with `scores`, each one's probability where the top-5 scores record it (how near
    its threshold a missed or extra label was)."""
    if not labels:
        return NONE
    if scores is None:
        return ", ".join(labels)
    return ", ".join(f"{label} ({scores[label]:.2f})" if label in scores else label for label in labels)


def mistakes_section(predictions: list[dict[str, Any]]) -> Section:
    found = mistakes(predictions)
    scored = sum(_labels(p.get("labels")) is not None and _labels(p.get("predicted")) is not None for p in predictions)
    if not found:
        return Section("Example mistakes", f"<p>The predicted label set equals the gold set for all {scored:,} eval "
                       "texts.</p>", "No mistakes.", card=False)
    worst = worst_mistakes(found)
    header = ["text", "gold", "predicted", "missed", "extra", "labels wrong"]
    rows: list[list[Any]] = [[e.text[:300], _listed(e.gold), _listed(e.predicted), _listed(e.missed, e.scores),
                              _listed(e.extra, e.scores), e.wrong] for e in worst]
    intro = (f"<p class='muted'>{len(found):,} of {scored:,} eval texts got a label set different from the gold one. "
             f"The {len(worst)} shown differ most (missed + extra labels), most first; a score in brackets is the "
             "model's probability for that label, where the top 5 scores record it.</p>")
    return Section("Example mistakes", intro + html_table(header, rows, numeric_from=len(header) - 1),  # escapes cells
                   md_table(header, rows), card=False)


def multilabel_sections(run: RunFiles) -> list[Section]:
    sections = [headline_section(run)]
    rows = label_rows(run.metrics)
    if rows:
        sections.append(per_label_section(rows))
    points = curve_points(run.metrics)
    if points:
        sections.append(threshold_curve_section(points, run.metrics))
    if run.predictions:  # a run whose eval_predictions.jsonl is missing still gets its metrics
        sections.append(mistakes_section(run.predictions))
    return sections


register_sections("multilabel", multilabel_sections)
