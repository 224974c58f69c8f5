"""RUN_DIR/report.html (self-contained: inline SVG, no scripts, opens from disk) and RUN_DIR/MODEL_CARD.md.

Built only from what the run directory holds (config.yaml, metrics.json, history.jsonl, data.json,
env.json, run.json, eval_predictions.jsonl, model/), so `fmkit report RUN_DIR` regenerates it at any time.

Task-aware: every report has an overview, learning curves, data statistics, the config and usage;
the metric sections come from TASK_SECTIONS[task] (classification here; NER, retrieval and others
register theirs with `register_sections`). A task without its own sections gets a generic table of
its metrics, so no run is left without a report.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import yaml

from fmkit.evaluation import svg
from fmkit.evaluation.display import (
    format_duration,
    format_metric,
    format_number,
    phase_title,
    strategy_choice,
    strategy_text,
)
from fmkit.utils.io import atomic_write_text

# --- what a run directory holds --------------------------------------------------------------------


def _json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _jsonl(path: Path, limit: int = 200_000) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    out.append(json.loads(line))
                if len(out) >= limit:
                    break
    except (OSError, ValueError):
        pass
    return out


@dataclass
class RunFiles:
    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    data: dict[str, Any]
    env: dict[str, Any]
    status: dict[str, Any]
    predictions: list[dict[str, Any]]

    @classmethod
    def load(cls, run_dir: Path) -> RunFiles:
        run_dir = Path(run_dir)
        try:
            config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            config = {}
        return cls(run_dir=run_dir, config=config, metrics=_json(run_dir / "metrics.json", {}),
                   history=_jsonl(run_dir / "history.jsonl"), data=_json(run_dir / "data.json", {}),
                   env=_json(run_dir / "env.json", {}), status=_json(run_dir / "run.json", {}),
                   predictions=_jsonl(run_dir / "eval_predictions.jsonl"))

    @property
    def task(self) -> str:
        return str((self.config.get("task") or {}).get("type") or "classification")


@dataclass
class Section:
    """One part of the report, in both HTML (for report.html) and Markdown (for the model card)."""

    title: str
    html: str
    markdown: str = ""
    card: bool = True  # also in MODEL_CARD.md
    anchor: str = field(default="")

    def __post_init__(self) -> None:
        self.anchor = self.anchor or "".join(c if c.isalnum() else "-" for c in self.title.lower())


SectionFn = Callable[[RunFiles], list[Section]]
TASK_SECTIONS: dict[str, list[SectionFn]] = {}


def register_sections(task: str, fn: SectionFn) -> SectionFn:
    """Add a section builder for runs of `task` (used as a decorator by task modules)."""
    TASK_SECTIONS.setdefault(task, []).append(fn)
    return fn


# --- small HTML/Markdown helpers -----------------------------------------------------------------


fmt = format_number  # table cells; callers pass already formatted text (durations) as str


def html_table(header: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i >= numeric_from else ""}">{escape(fmt(v))}</td>'
                         for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# --- sections every run has ----------------------------------------------------------------------

_HEADLINE_KEYS = ("accuracy", "macro_f1", "weighted_f1", "micro_f1", "f1", "precision", "recall", "token_accuracy",
                  "recall@1",
                  "recall@10", "mrr", "mrr@10", "ndcg@10", "map", "perplexity", "spearman", "pearson", "rmse", "mae",
                  "r2", "samples_f1", "subset_accuracy", "hamming_loss", "num_examples")


def overview(run: RunFiles) -> Section:
    m = scalar_metrics(run.metrics)
    headline = {k: m[k] for k in _HEADLINE_KEYS if k in m} or dict(list(m.items())[:8])
    facts = [
        ["task", run.task], ["model", (run.config.get("model") or {}).get("name", "?")],
        ["strategy", ran_strategy(run)],
        ["status", run.status.get("status", "?")],
        ["started", time.strftime("%Y-%m-%d %H:%M", time.localtime(run.status["started"])) if run.status.get("started") else "?"],
        ["train examples", (run.data.get("train") or {}).get("rows", run.metrics.get("train_examples", "?"))],
        ["eval examples", (run.data.get("eval") or {}).get("rows", m.get("num_examples", "?"))],
        ["train time", format_duration(m["train_seconds"]) if "train_seconds" in m else "?"],
        ["steps", m.get("steps", "?")],
    ]
    if run.metrics.get("eval_precision"):
        facts.append(["evaluated in", run.metrics["eval_precision"]])  # what `fmkit predict` runs in by default
    cards = "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{escape(format_metric(k, v))}</div>'
                    "</div>" for k, v in headline.items())
    html = f'<div class="cards">{cards}</div>' + html_table(["", ""], facts, numeric_from=9)
    md = (md_table(["metric", "value"], [[k, format_metric(k, v)] for k, v in headline.items()]) + "\n\n"
          + md_table(["fact", "value"], facts))
    return Section("Overview", html, md)


def ran_strategy(run: RunFiles) -> str:
    """The strategy that ran (`auto → full` when `auto` chose it), from strategy.json, metrics or config."""
    choice = strategy_choice(run.run_dir)
    requested = choice.get("requested") or (run.config.get("strategy") or {}).get("name")
    return strategy_text(requested, run.metrics.get("strategy") or choice.get("strategy"))


def learning_curves(run: RunFiles) -> Section:
    """Train loss and eval metrics against the optimizer step, one chart per phase of the run."""
    charts, notes = [], []
    phases = list(dict.fromkeys(str(r.get("phase", "")) for r in run.history))
    for phase in phases:
        rows = [r for r in run.history if str(r.get("phase", "")) == phase]
        train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and "loss" in r]
        evals = [r for r in rows if r.get("kind") == "eval"]
        names = [k for k in (evals[0] if evals else {}) if k.startswith("eval_") and k != "eval_num_examples"
                 and isinstance(evals[0][k], (int, float))]
        label = f": {phase_title(phase)}" if phase else ""
        if train:
            charts.append(svg.line_chart({"train loss": train}, title=f"Training loss{label}", ylabel="loss",
                                         integer_x=True))
        if evals and names:
            series = {n.removeprefix("eval_"): [(r["step"], r[n]) for r in evals if n in r] for n in names[:6]}
            charts.append(svg.line_chart(series, title=f"Evaluation{label}", ylabel="score", markers=True,
                                         integer_x=True))
        if train:
            notes.append(f"{phase_title(phase) or 'training'}: {len(train)} loss points, final loss {train[-1][1]:.4f}")
    if not charts:
        return Section("Learning curves", "<p>No training history (history.jsonl is empty or missing).</p>",
                       "No training history.")
    return Section("Learning curves", '<div class="charts">' + "".join(charts) + "</div>",
                   "\n".join(f"- {n}" for n in notes) + "\n\nSee report.html for the charts.")


def time_budget_section(run: RunFiles) -> Section | None:
    """auto on a budget: the primary metric against wall time (what stopping earlier would have kept) and
    what `auto` would have trained within other budgets (strategy.json `by_budget`, the doctor's table)."""
    choice = strategy_choice(run.run_dir)
    by_budget, budget = choice.get("by_budget") or [], choice.get("time_budget_s")
    if not by_budget and budget is None:
        return None
    started = float(run.status.get("started") or 0.0)
    primary = f"eval_{(run.config.get('eval') or {}).get('primary_metric') or 'accuracy'}"
    evals = [r for r in run.history if started and r.get("kind") == "eval" and primary in r and "time" in r]
    # The probe phase's evaluations (its head's epochs, all within seconds) are summed up by full's first one.
    evals = [r for r in evals if r.get("phase") != "probe"] or evals
    points = [(float(r["time"]) - started, float(r[primary])) for r in evals]
    parts_html, parts_md = [], []
    if budget is not None:
        ended = run.status.get("ended")
        used = f", the command ended at {float(ended) - started:.0f}s" if ended and started else ""
        text = f"Time budget {float(budget):.0f}s{used}; {choice.get('reason', '')}"
        parts_html.append(f"<p>{escape(text)}</p>")
        parts_md.append(text)
    if points:
        name = primary.removeprefix("eval_")
        parts_html.append(svg.line_chart({name: points}, title=f"{name} against wall time", xlabel="seconds",
                                         ylabel=name, markers=True))
        parts_md.append("Evaluations (seconds since the start, " + name + "): "
                        + ", ".join(f"{x:.0f}s {y:.4f}" for x, y in points))
    if by_budget:
        header = ["budget", "auto would train", "epochs", "estimated end"]
        rows = [[f"{r['budget_s'] / 60:g} min", r["strategy"], "-" if r.get("epochs") is None else f"{r['epochs']:g}",
                 f"{r['estimated_s']:.0f}s"] for r in by_budget]
        parts_html.append("<p>What other budgets buy on this data and machine (the same rule and "
                          "measurements; `fmkit doctor --budgets` prints this before a run):</p>"
                          + html_table(header, rows, numeric_from=2))
        parts_md.append(md_table(header, rows))
    return Section("Time budget", "".join(parts_html), "\n\n".join(parts_md))


def data_statistics(run: RunFiles) -> Section:
    parts, md = [], []
    for split in ("train", "eval"):
        info = run.data.get(split) or {}
        # class_counts: one label per text; label_counts: multi-label (a text counts once per label it has).
        counts = info.get("class_counts") or info.get("label_counts") or {}
        if counts:
            items = sorted(counts.items(), key=lambda kv: -kv[1])
            total = sum(counts.values()) or 1
            parts.append(svg.bar_chart([k for k, _ in items], [v for _, v in items],
                                       title=f"{split}: class balance ({info.get('rows', total):,} rows)"))
            md.append(f"**{split}** ({info.get('source', '?')}): {info.get('rows', total):,} rows, {len(counts)} classes, "
                      f"largest {items[0][0]} {items[0][1] / total:.1%}, smallest {items[-1][0]} {items[-1][1] / total:.1%}")
    lengths = token_lengths(run)
    max_length = run.data.get("max_length")
    if lengths:
        edges = [0, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]
        if max_length:
            edges = sorted({*(e for e in edges if e < max_length), int(max_length)})
        bins = [f"{lo + 1}-{hi}" for lo, hi in itertools.pairwise(edges)]
        counts_ = [sum(lo < n <= hi for n in lengths) for lo, hi in itertools.pairwise(edges)]
        bins.append(f">{edges[-1]} (truncated)" if max_length else f">{edges[-1]}")
        counts_.append(sum(n > edges[-1] for n in lengths))
        parts.append(svg.bar_chart(bins, counts_, title=f"Token lengths of {len(lengths):,} eval texts"))
        share = sum(n > (max_length or 10**9) for n in lengths) / len(lengths)
        md.append(f"Eval token lengths: median {sorted(lengths)[len(lengths) // 2]}, max {max(lengths)}; "
                  f"{share:.1%} longer than max_length={max_length}")
    if "truncated_train_share" in run.data:
        policy = (run.data.get("long_text") or {}).get("mode", "truncate")
        cut = "cut to head + tail" if policy == "head_tail" else "truncated"
        md.append(f"Training texts {cut} at max_length={max_length}: {run.data['truncated_train_share']:.1%}")
    md.extend(chunk_lines(run.data.get("long_text") or {}))
    if not parts:  # tasks without class counts (NER, retrieval): show what data.json records
        for split in ("train", "eval"):
            info = run.data.get(split) or {}
            facts = [[k, v] for k, v in info.items() if isinstance(v, (int, float, str, bool)) and v is not None]
            if facts:
                md.append(f"**{split}**: " + ", ".join(f"{k} {fmt(v)}" for k, v in facts))
    if not parts and not md:
        return Section("Data", "<p>No data statistics recorded (data.json is missing).</p>", "No data statistics.")
    html = '<div class="charts">' + "".join(parts) + "</div>" + "".join(f"<p>{escape(line).replace('**', '')}</p>" for line in md)
    return Section("Data", html, "\n".join(f"- {line}" for line in md))


def chunk_lines(long_text: dict[str, Any]) -> list[str]:
    """data.long_text=chunk: how many windows the texts became (the histogram data.json records)."""
    lines = []
    for split in ("train", "eval"):
        facts = long_text.get(f"{split}_chunks")
        if facts:
            histogram = ", ".join(f"{count:,} with {windows}" for windows, count in facts["histogram"].items())
            lines.append(f"{split} texts chunked into windows of max_length (stride {long_text.get('stride')}, "
                         f"{long_text.get('aggregate')} of window probabilities): {facts['windows']:,} windows for "
                         f"{facts['texts']:,} texts, {facts['mean']:g} on average, at most {facts['max']}; "
                         f"texts by windows: {histogram}")
    return lines


def token_lengths(run: RunFiles, limit: int = 5000) -> list[int]:
    """Token counts of the eval texts with the run's own tokenizer (empty if either is missing)."""
    texts = [str(p["text"]) for p in run.predictions[:limit] if "text" in p]
    model_dir = run.run_dir / "model"
    if not texts or not (model_dir / "tokenizer_config.json").is_file():
        return []
    try:
        from fmkit.models.backbone import load_tokenizer

        tokenizer = load_tokenizer(model_dir)
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    except Exception:  # an unreadable tokenizer costs the histogram, not the report
        return []


def config_section(run: RunFiles) -> Section:
    text = yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True) if run.config else "(config.yaml missing)"
    env = run.env.get("versions") or {}
    versions = ", ".join(f"{k} {v}" for k, v in env.items())
    host = run.env.get("host") or {}
    html = (f"<details><summary>config.yaml (every field, resolved)</summary><pre>{escape(text)}</pre></details>"
            f"<p class='muted'>Libraries: {escape(versions)}<br>Host: {escape(str(host.get('hostname', '?')))} "
            f"({escape(str(host.get('platform', '')))}, {escape(str(host.get('cpu_count', '?')))} CPUs)</p>")
    return Section("Configuration", html, f"```yaml\n{text}```\n\nLibraries: {versions}")


def usage_section(run: RunFiles) -> Section:
    model = run.run_dir / "model"
    code = (f"# Python\nimport fmkit\nmodel = fmkit.load(\"{model}\")\nmodel.predict([\"your text here\"])\n\n"
            f"# command line\nfmkit predict {model} texts.txt --output predictions.jsonl\n"
            f"fmkit eval {model} --data labelled.csv\n\n"
            f"# serve and compare\nfmkit serve {model} --port 8000   # HTTP API\n"
            f"fmkit ui --runs {run.run_dir.parent}   # dashboard: compare runs, try the model")
    return Section("How to use this model", f"<pre>{escape(code)}</pre>", f"```bash\n{code}\n```")


def generic_metrics(run: RunFiles) -> list[Section]:
    """For tasks without their own sections: every scalar, and each nested table of metrics."""
    rows: list[list[Any]] = [[k, format_metric(k, v)] for k, v in scalar_metrics(run.metrics).items()]
    sections = [Section("Metrics", html_table(["metric", "value"], rows), md_table(["metric", "value"], rows))]
    for key, value in run.metrics.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns = list(dict.fromkeys(c for v in value.values() for c in v))
            rows = [[name, *[row.get(c, "") for c in columns]] for name, row in value.items()]
            sections.append(Section(key.replace("_", " ").capitalize(), html_table([key, *columns], rows),
                                    md_table([key, *columns], rows)))
    return sections


# --- classification ------------------------------------------------------------------------------


def calibration(predictions: list[dict[str, Any]], bins: int = 10) -> dict[str, Any]:
    """Reliability bins of top-class confidence vs accuracy, and the expected calibration error."""
    rows = []
    for p in predictions:
        scores = p.get("scores") or {}
        if scores:
            rows.append((max(scores.values()), bool(p.get("correct", p.get("predicted") == p.get("label")))))
    out: dict[str, Any] = {"bins": [], "ece": None, "n": len(rows)}
    if not rows:
        return out
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in rows if (lo < c <= hi) or (b == 0 and c == 0)]
        if not inside:
            continue
        conf = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(rows) * abs(acc - conf)
        out["bins"].append({"low": lo, "high": hi, "count": len(inside), "confidence": conf, "accuracy": acc})
    out["ece"] = ece
    return out


def confident_mistakes(predictions: list[dict[str, Any]], k: int = 10) -> list[dict[str, Any]]:
    wrong = [p for p in predictions if p.get("scores") and not p.get("correct", p.get("predicted") == p.get("label"))]
    return sorted(wrong, key=lambda p: -max(p["scores"].values()))[:k]


def abstention_section(metrics: dict[str, Any]) -> Section | None:
    """eval.target_precision: the threshold tuned on the eval split, what it keeps, or why none was saved."""
    tuning = metrics.get("abstention")
    if not tuning:
        return None
    if tuning.get("threshold") is None:
        text = (f"No abstain threshold reaches precision {tuning['target_precision']:g} on the eval split (the best "
                f"any threshold reaches is {tuning['best_precision']:.4f}); none was saved: the model answers every "
                "input.")
        return Section("Abstention", f"<p>{escape(text)}</p>", text)
    text = (f"Predictions whose top probability is below {tuning['threshold']:.4f} answer label null (abstained "
            f"true): tuned on the eval split for precision {tuning['target_precision']:g}.")
    header = ["", "accuracy (precision)", "coverage"]
    rows = [["answered (at the threshold)", tuning["precision"], tuning["coverage"]],
            ["every example (no abstention)", tuning["accuracy"], 1.0]]
    return Section("Abstention", f"<p>{escape(text)}</p>" + html_table(header, rows), text + "\n\n" + md_table(header, rows))


def classification_sections(run: RunFiles) -> list[Section]:
    m = run.metrics
    sections = []
    abstention = abstention_section(m)
    if abstention is not None:
        sections.append(abstention)
    per_class = m.get("per_class") or {}
    if per_class:
        rows = [[label, v.get("precision"), v.get("recall"), v.get("f1"), v.get("support")] for label, v in per_class.items()]
        rows.sort(key=lambda r: r[3] if isinstance(r[3], (int, float)) else 0)
        header = ["class", "precision", "recall", "F1", "support"]
        table = html_table(header, rows)
        if len(rows) > 30:  # long label sets scroll inside the section instead of pushing everything down
            table = f'<div class="scroll" style="max-height:520px">{table}</div>'
        sections.append(Section("Per-class precision, recall and F1",
                                "<p class='muted'>Worst F1 first.</p>" + table,
                                md_table(header, rows)))
    if m.get("confusion_matrix") and m.get("labels"):
        labels = m["labels"]
        note = "" if len(labels) <= 60 else f"<p class='muted'>{len(labels)} classes: hover a cell for its labels and count.</p>"
        pairs = sorted(((c, labels[i], labels[j]) for i, row in enumerate(m["confusion_matrix"])
                        for j, c in enumerate(row) if i != j and c), reverse=True)[:10]
        top = html_table(["count", "true", "predicted as"], [[c, t, p] for c, t, p in pairs], numeric_from=9) if pairs else ""
        html = (note + '<div class="scroll">' + svg.heatmap(m["confusion_matrix"], labels,
                title="Confusion matrix (colour: share of the true class; numbers: counts)") + "</div>"
                + ("<h3>Most frequent confusions</h3>" + top if top else ""))
        md = md_table(["count", "true", "predicted as"], [[c, t, p] for c, t, p in pairs]) if pairs else "No confusions."
        sections.append(Section("Confusion matrix", html, "Most frequent confusions:\n\n" + md))
    cal = calibration(run.predictions)
    if cal["bins"]:
        points = [(b["confidence"], b["accuracy"]) for b in cal["bins"]]
        chart = svg.line_chart({"model": points}, title=f"Reliability diagram (ECE {cal['ece']:.3f})",
                               xlabel="confidence (top class)", ylabel="accuracy", y_range=(0, 1), markers=True,
                               diagonal=True)
        rows = [[f"{b['low']:.1f}-{b['high']:.1f}", b["count"], b["confidence"], b["accuracy"]] for b in cal["bins"]]
        html = (f'<div class="charts">{chart}{html_table(["confidence", "examples", "mean confidence", "accuracy"], rows)}</div>'
                f"<p>Expected calibration error: <b>{cal['ece']:.4f}</b> over {cal['n']:,} eval examples "
                "(0 = confidences match accuracy; on the dashed line the model is as sure as it is right).</p>")
        sections.append(Section("Calibration", html, f"Expected calibration error (10 bins): {cal['ece']:.4f} "
                                f"on {cal['n']:,} eval examples."))
    mistakes = confident_mistakes(run.predictions)
    if mistakes:
        rows = [[p["text"][:300], p.get("label"), p.get("predicted"), max(p["scores"].values())] for p in mistakes]
        header = ["text", "true", "predicted", "confidence"]
        sections.append(Section("Most confidently wrong eval examples", html_table(header, rows, numeric_from=3),
                                md_table(header, rows), card=False))
    return sections


register_sections("classification", classification_sections)


# --- assembling ----------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#1f2937;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#d1d5db}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #e5e7eb}nav a{margin-right:14px;color:#2563eb;text-decoration:none}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 18px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px}h3{font-size:14px}table{border-collapse:collapse;margin:6px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:3px 10px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f4f6}.cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:10px}
.card{border:1px solid #e5e7eb;border-radius:6px;padding:6px 12px;min-width:110px}.card .k{color:#6b7280;font-size:12px}
.card .v{font-size:20px;font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.scroll{overflow:auto;max-height:900px}pre{background:#f3f4f6;padding:10px;overflow:auto;border-radius:6px}.muted{color:#6b7280}
"""


def build_sections(run: RunFiles) -> list[Section]:
    task_fns = TASK_SECTIONS.get(run.task)
    task_sections = [s for fn in task_fns for s in fn(run)] if task_fns else generic_metrics(run)
    budget = time_budget_section(run)
    return [overview(run), learning_curves(run), *([budget] if budget else []), *task_sections,
            data_statistics(run), config_section(run), usage_section(run)]


def render_html(run: RunFiles, sections: list[Section]) -> str:
    name = run.run_dir.resolve().name
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>{s.html}</section>' for s in sections)
    subtitle = f"{run.task} · {(run.config.get('model') or {}).get('name', '')} · {run.status.get('status', '')}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fmkit report: {escape(name)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head><body>'
            f"<header><h1>Run report: {escape(name)}</h1><p>{escape(subtitle)}</p></header><nav>{nav}</nav>"
            f"<main>{body}<p class='muted'>Generated by fmkit on {time.strftime('%Y-%m-%d %H:%M')} "
            f"from {escape(str(run.run_dir))}."
            f" Regenerate with <code>fmkit report {escape(str(run.run_dir))}</code>.</p></main></body></html>")


def render_model_card(run: RunFiles, sections: list[Section]) -> str:
    name = run.run_dir.resolve().name
    model = (run.config.get("model") or {}).get("name", "?")
    intro = (f"# Model card: {name}\n\nA {run.task} model fine-tuned by fmkit from `{model}` on "
             f"`{(run.data.get('train') or {}).get('source', '?')}`. The numbers below are on the evaluation set "
             f"`{(run.data.get('eval') or {}).get('source', '?')}`; they say how the model did on data like it, not "
             "on data from elsewhere. The full report with charts is report.html beside this file.\n")
    parts = [intro] + [f"## {s.title}\n\n{s.markdown}\n" for s in sections if s.card and s.markdown]
    parts.append("## Limitations\n\n" + LIMITATIONS.get(run.task, LIMITATIONS["classification"]) + "\n")
    return "\n".join(parts)


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Write RUN_DIR/report.html and RUN_DIR/MODEL_CARD.md; returns their paths."""
    run_dir = Path(run_dir)
    from fmkit.errors import FmkitError

    if not (run_dir / "config.yaml").is_file() and not (run_dir / "metrics.json").is_file():
        raise FmkitError(f"{run_dir}: not a run directory (no config.yaml or metrics.json). Pass a folder made by "
                         "`fmkit train`.")
    run = RunFiles.load(run_dir)
    _load_task_sections(run.task)
    sections = build_sections(run)
    html_path, card_path = run_dir / "report.html", run_dir / "MODEL_CARD.md"
    atomic_write_text(html_path, render_html(run, sections))
    atomic_write_text(card_path, render_model_card(run, sections))
    return html_path, card_path


# What a reader of the model card should keep in mind, per task (classification's is the default).
LIMITATIONS = {
    "classification": "Labels are only those seen in training; texts longer than max_length are truncated; check the "
                      "per-class table and the calibration before trusting a single confidence.",
    "multilabel": "Labels are only those seen in training; each label's threshold was tuned on the eval split, so the "
                  "tuned metrics are optimistic for it (run `fmkit eval` on other data); rare labels get unreliable "
                  "thresholds; texts longer than max_length are truncated; scores are independent per label.",
    "regression": "Predictions rarely leave the range of the training targets; errors grow where training targets "
                  "were scarce (see error by target range); texts longer than max_length are truncated.",
}


def _load_task_sections(task: str) -> None:
    """Import the module the task registry names for the task's report sections (it calls register_sections)."""
    from fmkit.config.tasks import TASKS

    spec = TASKS.get(task)
    module = spec.report if spec is not None else None
    if module and task not in TASK_SECTIONS:
        import importlib

        try:
            importlib.import_module(module)
        except ImportError:
            return


__all__ = ["TASK_SECTIONS", "RunFiles", "Section", "calibration", "register_sections", "write_report", "write_report_safely"]


def write_report_safely(run_dir: Path) -> Path | None:
    """For the end of a training run: a report that cannot be written warns, it never fails the run."""
    try:
        return write_report(run_dir)[0]
    except Exception as exc:
        import sys

        print(f"warning: could not write {Path(run_dir) / 'report.html'}: {type(exc).__name__}: {exc} "
              f"(retry with `fmkit report {run_dir}`)", file=sys.stderr)
        return None
