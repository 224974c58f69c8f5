"""Report sections of the regression task (a number per text or text pair); report.py loads this module for those runs.

Built from metrics.json (spearman, pearson, rmse, mae, r2, num_examples, target {mean, std}) and
eval_predictions.jsonl ({"text", optional "text_pair", "target", "predicted"} per eval example):

- Regression metrics: the headline numbers, and what RMSE means against always predicting the mean;
- Predicted vs true: a scatter plot with the y = x diagonal (deterministically thinned when large);
- Residuals: a histogram of predicted - target and the error by target range (equal-count bins);
- Largest errors: the eval examples the model missed by most (report.html only, like the classification
  report's confident mistakes: eval texts stay out of the shareable model card).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from fmkit.evaluation import svg
from fmkit.evaluation.report import RunFiles, Section, fmt, html_table, md_table, register_sections

# metrics.json key -> what a reader calls it, in the order the headline shows them
_HEADLINE = (("spearman", "Spearman"), ("pearson", "Pearson"), ("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²"),
             ("num_examples", "eval examples"))
SCATTER_LIMIT = 1500  # points drawn in the scatter; more make a large file and an unreadable blob
LARGEST_ERRORS = 10
RANGE_BINS = 5


@dataclass(frozen=True)
class Scored:
    """One eval example with a finite target and prediction; `index` is its line in eval_predictions.jsonl."""

    index: int
    target: float
    predicted: float
    text: str
    text_pair: str | None

    @property
    def error(self) -> float:
        return self.predicted - self.target


def scored_examples(predictions: list[dict[str, Any]]) -> list[Scored]:
    """The rows of eval_predictions.jsonl that can be scored (a row without a finite number is skipped, not fatal)."""
    out = []
    for i, p in enumerate(predictions):
        target, predicted = _number(p.get("target")), _number(p.get("predicted"))
        if target is None or predicted is None:
            continue
        pair = p.get("text_pair")
        out.append(Scored(i, target, predicted, str(p.get("text", "")), None if pair is None else str(pair)))
    return out


def _number(value: Any) -> float | None:
    """A finite number as float; None for anything else (null, NaN, a string, a bool)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def target_std(run: RunFiles, examples: list[Scored]) -> tuple[float | None, str]:
    """The target's standard deviation and where it comes from: the training targets (metrics.json, what the
    model standardised by) or, in a run without that record, the eval targets."""
    recorded = (run.metrics.get("target") or {}).get("std")
    if isinstance(recorded, (int, float)) and math.isfinite(recorded) and recorded > 0:
        return float(recorded), "training targets"
    if len(examples) >= 2:
        std = _std([e.target for e in examples])
        if std > 0:
            return std, "eval targets"
    return None, ""


def reading(metrics: dict[str, Any], std: float | None, where: str) -> str:
    """One plain-language line: RMSE against the always-predict-the-mean baseline (whose RMSE is about the std)."""
    rmse = metrics.get("rmse")
    if not isinstance(rmse, (int, float)) or std is None:
        return ""
    ratio = rmse / std
    line = (f"RMSE {rmse:.4g} is {ratio:.2f}× the target's standard deviation ({std:.4g}, {where}); a model that "
            f"always predicted the mean would have RMSE ≈ {std:.4g}, ")
    line += (f"so typical errors are {1 - ratio:.0%} smaller than that baseline." if ratio < 1
             else "so this model is no better than that baseline.")
    r2 = metrics.get("r2")
    if isinstance(r2, (int, float)):
        line += f" R² {r2:.2f}: the share of the eval targets' variance the predictions explain (1 = all, 0 = the mean)."
    return line


def headline_section(run: RunFiles, examples: list[Scored]) -> Section:
    m = run.metrics
    shown = [(label, m[key]) for key, label in _HEADLINE if isinstance(m.get(key), (int, float))]
    if not shown:
        return Section("Regression metrics", "<p>No regression metrics (metrics.json is missing or incomplete).</p>",
                       "No regression metrics.")
    std, where = target_std(run, examples)
    line = reading(m, std, where)
    # the same cards as the overview (report.py's CSS), since the overview's headline keys are classification's
    cards = "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{escape(fmt(v))}</div></div>'
                    for k, v in shown)
    html = f'<div class="cards">{cards}</div>' + (f"<p>{escape(line)}</p>" if line else "")
    md = md_table(["metric", "value"], [[k, v] for k, v in shown]) + (f"\n\n{line}" if line else "")
    return Section("Regression metrics", html, md)


# --- predicted vs true -----------------------------------------------------------------------------


def downsample(examples: list[Scored], limit: int = SCATTER_LIMIT) -> list[Scored]:
    """At most about `limit` examples, the same ones every time: evenly spaced along the sorted targets (so the
    whole range stays covered), plus the largest errors (the points a reader looks for), in file order."""
    n = len(examples)
    if n <= limit:
        return examples
    by_target = sorted(range(n), key=lambda i: (examples[i].target, i))
    keep = {by_target[round(i * (n - 1) / (limit - 1))] for i in range(limit)}
    keep.update(i for i, _ in sorted(enumerate(examples), key=lambda ie: -abs(ie[1].error))[:LARGEST_ERRORS])
    return [examples[i] for i in sorted(keep)]


def scatter_chart(points: list[tuple[float, float]], *, title: str, xlabel: str = "true", ylabel: str = "predicted",
                  size: int = 420) -> str:
    """Predicted (y) against true (x) on one shared, square scale, so the dashed y = x line is the diagonal and a
    point's vertical distance from it is its error. svg.py has line and bar charts only; this uses its tick,
    number and title helpers so the axes read like every other chart in the report."""
    if not points:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="40" {svg.FONT}>'
                f'<text x="8" y="24" font-size="13">{escape(title)}: no data</text></svg>')
    title_svg, title_px = svg._title(title, 56, size - 56 - 16)
    left, right, top, bottom = 56, 16, 12 + title_px, 40
    plot = size - left - right
    height = top + plot + bottom
    values = [v for p in points for v in p]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.03 or abs(lo) * 0.1 or 0.5  # keep edge points off the frame; a single value still gets a scale
    lo, hi = lo - pad, hi + pad

    def sx(x: float) -> float:
        return left + (x - lo) / (hi - lo) * plot

    def sy(y: float) -> float:
        return top + (1 - (y - lo) / (hi - lo)) * plot

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{height}" viewBox="0 0 {size} {height}" '
           f'{svg.FONT} font-size="11" role="img" class="scatter">', title_svg]
    for tick in svg._nice_ticks(lo, hi):
        y, x = sy(tick), sx(tick)
        out.append(f'<line x1="{left}" x2="{left + plot}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">{svg._fmt(tick)}</text>'
                   f'<text x="{x:.1f}" y="{top + plot + 14}" text-anchor="middle" fill="#4b5563">{svg._fmt(tick)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="none" stroke="#9ca3af"/>')
    out.append(f'<line class="diagonal" x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" '
               'stroke="#9ca3af" stroke-dasharray="4 3"/>')
    # translucent dots: where many overlap the colour darkens, so density shows without binning
    out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{svg.PALETTE[0]}" fill-opacity="0.45"/>'
               for x, y in points)
    out.append(f'<text x="{left + plot / 2}" y="{top + plot + 30}" text-anchor="middle">{escape(xlabel)}</text>'
               f'<text transform="translate(12 {top + plot / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>')
    out.append("</svg>")
    return "".join(out)


def scatter_section(examples: list[Scored]) -> Section:
    shown = downsample(examples)
    thinned = f" ({len(shown):,} of {len(examples):,} shown)" if len(shown) < len(examples) else ""
    chart = scatter_chart([(e.target, e.predicted) for e in shown], title=f"Predicted vs true, {len(examples):,} eval "
                          f"examples{thinned}")
    note = ("<p class='muted'>On the dashed line the prediction equals the target; points above it are "
            "over-predicted, points below under-predicted."
            + (" Thinned evenly along the target range, keeping the largest errors." if thinned else "") + "</p>")
    return Section("Predicted vs true", f'<div class="charts">{chart}</div>{note}',
                   f"{len(examples):,} eval examples; see report.html for the scatter plot.")


# --- residuals -------------------------------------------------------------------------------------


def residual_histogram(errors: list[float]) -> tuple[list[str], list[int]]:
    """Bins of predicted - target on round edges with 0 always an edge (so a bias shows as lopsided bars)."""
    low, high = min(errors), max(errors)
    reach = max(abs(low), abs(high))
    if reach == 0:
        return ["0"], [len(errors)]
    ticks = svg._nice_ticks(-reach, reach, 10)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else reach
    first, last = math.floor(low / step), math.ceil(high / step)
    last = max(last, first + 1)
    counts = [0] * (last - first)
    for e in errors:
        counts[min(max(math.floor(e / step) - first, 0), len(counts) - 1)] += 1
    labels = [f"{svg._fmt((first + i) * step)} to {svg._fmt((first + i + 1) * step)}" for i in range(len(counts))]
    return labels, counts


def error_by_range(examples: list[Scored], bins: int = RANGE_BINS) -> list[dict[str, float]]:
    """Equal-count bins of the target (lowest first): where in the range the model errs, and which way."""
    ordered = sorted(examples, key=lambda e: (e.target, e.index))
    n, bins = len(ordered), min(bins, len(ordered))
    out = []
    for b in range(bins):
        part = ordered[b * n // bins:(b + 1) * n // bins]
        out.append({"low": part[0].target, "high": part[-1].target, "count": len(part),
                    "mean_target": sum(e.target for e in part) / len(part),
                    "mae": sum(abs(e.error) for e in part) / len(part),
                    "bias": sum(e.error for e in part) / len(part)})
    return out


def residuals_section(examples: list[Scored]) -> Section:
    errors = [e.error for e in examples]
    labels, counts = residual_histogram(errors)
    chart = svg.bar_chart(labels, counts, title="Residuals (predicted - target)", value_format="{:,.0f}")
    bias = sum(errors) / len(errors)
    absolute = sorted(abs(e) for e in errors)
    p90 = absolute[math.ceil(0.9 * len(absolute)) - 1]  # the smallest bound that at least 90% of errors stay within
    direction = "above" if bias > 0 else "below" if bias < 0 else "equal to"
    summary = (f"Mean error (bias) {bias:+.4g}: predictions are on average {direction} the target; "
               f"median |error| {absolute[len(absolute) // 2]:.4g}; 90% of errors within ±{p90:.4g}.")
    ranges = error_by_range(examples)
    header = ["target range", "examples", "mean target", "MAE", "bias"]
    rows: list[list[Any]] = [[f"{fmt(r['low'])} to {fmt(r['high'])}", r["count"], r["mean_target"], r["mae"], r["bias"]]
                             for r in ranges]
    note = ""
    if len(ranges) >= 2 and ranges[0]["bias"] > 0 > ranges[-1]["bias"]:
        note = ("Predictions are pulled toward the mean: too high for the lowest targets and too low for the highest "
                "(common for regression models; the extremes are where single predictions deserve least trust).")
    table = html_table(header, rows)
    html = (f'<div class="charts">{chart}<div><h3>Error by target range</h3>{table}'
            f"<p class='muted'>{RANGE_BINS} equal-count bins of the target; bias is the mean of predicted - target.</p>"
            f"</div></div><p>{escape(summary)}</p>" + (f"<p>{escape(note)}</p>" if note else ""))
    md = f"{summary}\n\nError by target range (equal-count bins; bias = mean of predicted - target):\n\n{md_table(header, rows)}"
    return Section("Residuals", html, md + (f"\n\n{note}" if note else ""))


# --- largest errors --------------------------------------------------------------------------------


def largest_errors(examples: list[Scored], k: int = LARGEST_ERRORS) -> list[Scored]:
    """The k examples with the largest |predicted - target|; ties keep file order, so the list is stable."""
    return sorted(examples, key=lambda e: (-abs(e.error), e.index))[:k]


def largest_errors_section(examples: list[Scored]) -> Section:
    worst = largest_errors(examples)
    pairs = any(e.text_pair is not None for e in worst)
    header = ["text", *(["text pair"] if pairs else []), "target", "predicted", "error"]
    rows = [[e.text[:300], *([(e.text_pair or "")[:300]] if pairs else []), e.target, e.predicted, e.error] for e in worst]
    return Section("Largest errors",
                   f"<p class='muted'>The {len(worst)} eval examples with the largest |predicted - target|, largest first.</p>"
                   + html_table(header, rows, numeric_from=len(header) - 3),  # html_table escapes every cell
                   md_table(header, rows), card=False)


def regression_sections(run: RunFiles) -> list[Section]:
    examples = scored_examples(run.predictions)
    sections = [headline_section(run, examples)]
    if examples:  # a run whose eval_predictions.jsonl is missing still gets its metrics
        sections += [scatter_section(examples), residuals_section(examples), largest_errors_section(examples)]
    return sections


register_sections("regression", regression_sections)
