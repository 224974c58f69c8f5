"""The monitor's dashboard page: HTML + inline SVG charts, no JavaScript framework (served by monitor_web)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from fmkit.apps.monitor import OVERALL


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def svg_chart(values: list[float | None], title: str, lo: float, hi: float, color: str, bars: bool = False,
              marks: set[int] | None = None, width: int = 900, height: int = 140) -> str:
    """One small chart as inline SVG: a polyline (or bars) scaled to [lo, hi]; red ticks mark alert windows."""
    n = max(len(values), 1)
    step = width / n
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return height - 4 - (height - 8) * (v - lo) / span

    parts = [f'<svg viewBox="0 0 {width} {height + 18}" width="100%" role="img" aria-label="{html.escape(title)}">',
             f'<text x="4" y="12" font-size="12">{html.escape(title)} (max {hi:.2f})</text>',
             f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#bbb"/>']
    for i in sorted(marks or ()):
        parts.append(f'<rect x="{i * step:.1f}" y="14" width="{max(step, 2):.1f}" height="{height - 14}" fill="#fdd"/>')
    if bars:
        for i, v in enumerate(values):
            if v:
                parts.append(f'<rect x="{i * step:.1f}" y="{y(v):.1f}" width="{max(step - 1, 1):.1f}" '
                             f'height="{height - y(v):.1f}" fill="{color}"/>')
    else:
        points = " ".join(f"{(i + 0.5) * step:.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_dashboard(scope: str, series: list[dict[str, Any]], alerts: list[dict[str, Any]], stats: dict[str, Any],
                     window_seconds: int) -> str:
    starts = {int(s["start"]): i for i, s in enumerate(series)}
    marks = {starts[int(a["window_start"])] for a in alerts
             if int(a["window_start"]) in starts and a["scope"] == scope}
    counts: list[float | None] = [float(s["count"]) for s in series]
    top = max([c for c in counts if c is not None] or [1.0])
    neg = [s["negative_share"] for s in series]
    mean = [s["mean_sentiment"] for s in series]
    span = f"{_when(series[0]['start'])} to {_when(series[-1]['start'] + window_seconds)} UTC" if series else "no data yet"
    rows = "".join(
        f"<tr><td>{_when(a['window_start'])}</td><td>{html.escape(a['scope'])}</td><td>{html.escape(a['kind'])}</td>"
        f"<td>{html.escape(a['message'])}</td></tr>" for a in alerts)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>fmkit monitor: {html.escape(scope)}</title>
<meta http-equiv="refresh" content="30">
<style>body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:960px}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;font-size:13px}}</style></head><body>
<h1>News sentiment: {"all tickers" if scope == OVERALL else html.escape(scope)}</h1>
<p>{stats["items"]} items stored, {stats["alerts"]} alerts. Windows of {window_seconds}s, {span}.
<form method="get">Ticker: <input name="scope" value="{html.escape(scope)}" size="8"> <button>show</button></form></p>
{svg_chart(counts, "items per window", 0.0, top, "#4a7bd0", bars=True, marks=marks)}
{svg_chart(neg, "share negative", 0.0, 1.0, "#c0392b", marks=marks)}
{svg_chart(mean, "mean sentiment (P(pos) - P(neg))", -1.0, 1.0, "#27ae60", marks=marks)}
<h2>Recent alerts</h2><table><tr><th>window</th><th>scope</th><th>kind</th><th>message</th></tr>{rows}</table>
</body></html>"""
