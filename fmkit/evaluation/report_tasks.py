"""Report sections of the NER and embedding (retrieval) tasks; report.py loads this module for those runs."""

from __future__ import annotations

from html import escape
from typing import Any

from fmkit.evaluation import svg
from fmkit.evaluation.report import RunFiles, Section, html_table, md_table, register_sections


def _entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, start, end) spans from BIO/IOB2/BIOES-like tags; enough to show errors, not to score them."""
    spans, current = [], None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, kind = tag.partition("-")
        if current and (tag == "O" or prefix in ("B", "S", "U") or kind != current[0]):
            spans.append((current[0], current[1], i))
            current = None
        if tag != "O" and current is None:
            current = (kind or prefix, i)
    return spans


def _marked(tokens: list[str], tags: list[str]) -> str:
    """Tokens with entities wrapped as [text](TYPE) (Markdown-ish and readable in HTML alike)."""
    out, spans, i = [], {s: (k, e) for k, s, e in _entities(tags)}, 0
    while i < len(tokens):
        if i in spans:
            kind, end = spans[i]
            out.append(f"[{' '.join(tokens[i:end])}]({kind})")
            i = end
        else:
            out.append(tokens[i])
            i += 1
    return " ".join(out)


def ner_sections(run: RunFiles) -> list[Section]:
    m = run.metrics
    sections = []
    per_type: dict[str, dict[str, Any]] = m.get("per_type") or {}
    if per_type:
        rows: list[list[Any]] = sorted(([k, v.get("precision"), v.get("recall"), v.get("f1"), v.get("support")]
                                        for k, v in per_type.items()),
                      key=lambda r: r[3] or 0)
        rows.append(["overall (micro)", m.get("precision"), m.get("recall"), m.get("f1"), m.get("num_entities")])
        header = ["entity type", "precision", "recall", "F1", "support"]
        chart = svg.bar_chart([r[0] for r in rows[:-1]], [float(r[3] or 0) for r in rows[:-1]],
                              title="Entity F1 by type (exact span match)", value_format="{:.3f}")
        token_acc = m.get("token_accuracy")
        note = f"<p>Token accuracy {token_acc:.4f} (includes O tokens, so it is always high).</p>" if token_acc else ""
        sections.append(Section("Entities by type", f'<div class="charts">{html_table(header, rows)}{chart}</div>{note}',
                                md_table(header, rows)))
    confusions = m.get("worst_confusions") or []
    if confusions:
        rows = [[c["count"], c["gold"], c["predicted"]] for c in confusions]
        sections.append(Section("Most frequent tag confusions", html_table(["tokens", "gold type", "predicted type"], rows,
                                                                           numeric_from=9),
                                md_table(["tokens", "gold type", "predicted type"], rows)))
    wrong = []
    for p in run.predictions:
        tokens, gold, pred = p.get("tokens"), p.get("gold"), p.get("predicted")
        if tokens and gold and pred and len(gold) == len(pred):
            errors = sum(g != q for g, q in zip(gold, pred, strict=True))
            if errors:
                wrong.append((errors, tokens, gold, pred))
    if wrong:
        wrong.sort(key=lambda w: -w[0])
        items = "".join(f"<li><b>{n} wrong tags</b><br>gold: {escape(_marked(t, g))}<br>pred: {escape(_marked(t, q))}</li>"
                        for n, t, g, q in wrong[:8])
        sections.append(Section("Eval sentences with the most errors",
                                f"<p class='muted'>[words](TYPE) marks an entity.</p><ol>{items}</ol>", card=False))
    return sections


def embedding_sections(run: RunFiles) -> list[Section]:
    m = run.metrics
    baseline = m.get("baseline") or {}
    keys = [k for k, v in m.items() if isinstance(v, float) and (k.startswith(("recall@", "ndcg@")) or k in ("mrr", "map"))]
    if not keys:
        return []
    rows = [[k, baseline.get(k), m[k], (m[k] - baseline[k]) if isinstance(baseline.get(k), float) else None] for k in keys]
    header = ["metric", "before training", "after training", "change"]
    chart = svg.line_chart({"before": [(i, float(r[1])) for i, r in enumerate(rows) if isinstance(r[1], float)],
                            "after": [(i, float(r[2])) for i, r in enumerate(rows)]},
                           title="Retrieval quality: " + ", ".join(keys), xlabel="metric (in table order)",
                           y_range=(0, 1), markers=True)
    return [Section("Retrieval quality", f'<div class="charts">{html_table(header, rows)}{chart}</div>'
                    "<p class='muted'>Each eval query ranks every eval document; binary relevance.</p>",
                    md_table(header, rows))]


register_sections("ner", ner_sections)
register_sections("embedding", embedding_sections)
