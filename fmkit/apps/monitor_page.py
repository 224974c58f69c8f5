"""The monitor's dashboard page: HTML + inline SVG charts on a UTC time axis, no JavaScript (served by monitor_web).

It looks like the main dashboard (fmkit/ui/static/style.css): the same palette and type, with the few rules it
needs inlined, because the monitor serves no static files. Everything that came from news items (tickers, alert
messages) is escaped, in text and in links.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fmkit.apps.monitor import OVERALL

# The tick maths of the report charts: both dashboards space and write their Y axes alike.
from fmkit.evaluation.svg import FONT, _fmt, _nice_ticks

REFRESH_SECONDS = 30
MOST_TICKERS = 100  # links shown; the box takes any other ticker
# Time-axis tick steps a person reads easily: minutes, hours, days, weeks.
TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
              7 * 86400, 14 * 86400, 28 * 86400)
DAY = 86400

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:0;color:#111827;background:#f9fafb}
header{display:flex;align-items:center;gap:24px;background:#1f2937;color:#fff;padding:10px 24px}
header h1{font-size:18px;margin:0}
header .muted{color:#9ca3af;margin-left:auto;font-size:12px}
main{padding:16px 24px;max-width:1100px}
h2{font-size:17px;margin:0 0 8px}
.scopes{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:4px 0 12px}
.scopes a{padding:3px 10px;border-radius:12px;background:#fff;border:1px solid #e5e7eb;text-decoration:none;color:#1f2937}
.scopes a.active{background:#1f2937;border-color:#1f2937;color:#fff}
.scopes a .n{color:#6b7280;font-size:12px;margin-left:4px}.scopes a.active .n{color:#d1d5db}
.scopes form{margin-left:auto}
input,button{font:inherit;padding:4px 8px;border:1px solid #d1d5db;border-radius:6px;background:#fff}
button{cursor:pointer;background:#2563eb;color:#fff;border-color:#2563eb}
.panel{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 18px;margin-top:16px}
.chart{display:block;margin:4px 0 10px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.when{white-space:nowrap;font-variant-numeric:tabular-nums}
.kind{padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#fee2e2;color:#991b1b}
.muted{color:#6b7280}
.empty{color:#6b7280;font-size:15px;padding:24px 18px}
a{color:#2563eb}
"""


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def window_text(seconds: int) -> str:
    """`1 h`, `10 min`, `90 s`: a window length as the page says it."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def scope_href(scope: str) -> str:
    """The link to one scope's view; the key (when one is needed) travels in the cookie ?token= set."""
    return "?scope=" + quote(scope, safe="")


def time_ticks(begin: float, end: float, most: int = 8) -> tuple[list[int], int]:
    """Round UTC instants (on the hour, at midnight, ...) covering [begin, end], at most `most`, and their step."""
    span = max(end - begin, 1.0)
    step = next((s for s in TIME_STEPS if span / s <= most), 0) or math.ceil(span / most / DAY) * DAY
    first = math.ceil(begin / step) * step
    return list(range(first, math.floor(end) + 1, step)), step


def _tick_label(ts: int, step: int, new_day: bool) -> tuple[str, str]:
    """Two lines under a time tick: the clock, and the date where a day begins (dates only for steps of days)."""
    moment = datetime.fromtimestamp(ts, UTC)
    if step >= DAY:
        return moment.strftime("%b %d"), moment.strftime("%Y") if new_day else ""
    return moment.strftime("%H:%M"), moment.strftime("%Y-%m-%d") if new_day else ""


def _alert_title(alert: dict[str, Any]) -> str:
    return (f"{alert['kind']} alert, {_when(alert['window_start'])}–{_clock(alert['window_end'])} UTC: "
            f"{alert['message']}")


def time_chart(starts: Sequence[int], values: Sequence[float | None], window_seconds: int, *, title: str,
               lo: float, hi: float, color: str, bars: bool = False, zero_line: bool = False,
               alerts: Sequence[dict[str, Any]] = (), tick_format: Callable[[float], str] = _fmt,
               width: int = 900, height: int = 200) -> str:
    """One chart of a per-window series: a UTC time axis with labelled ticks, a Y axis with values, bars
    (`bars`) or a line with a marker per window, a dashed line at 0 (`zero_line`) and one red band per alert,
    whose <title> (the browser's tooltip) names the alert."""
    left, right, top, bottom = 52, 18, 26, 40
    pw, ph = width - left - right, height - top - bottom
    begin, end = float(starts[0]), float(starts[-1] + window_seconds)
    span = (hi - lo) or 1.0

    def sx(t: float) -> float:
        return left + (t - begin) / (end - begin) * pw

    def sy(v: float) -> float:
        return top + (1 - (min(max(v, lo), hi) - lo) / span) * ph

    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
           f'{FONT} font-size="11" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="16" font-size="13" font-weight="600">{html.escape(title)}</text>',
           f'<text x="{width - right}" y="16" text-anchor="end" fill="#6b7280">times in UTC</text>']
    for tick in _nice_ticks(lo, hi, 4, integer=bars):
        y = sy(tick)
        out.append(f'<g class="y-tick"><line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#f3f4f6"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">{tick_format(tick)}</text></g>')
    ticks, step = time_ticks(begin, end)
    last_day = None
    for tick in ticks:
        day = tick // DAY
        clock, date = _tick_label(tick, step, day != last_day)
        last_day = day
        x = sx(tick)
        anchor = "start" if x < left + 30 else "end" if x > left + pw - 30 else "middle"  # labels stay inside
        out.append(f'<g class="x-tick"><line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#9ca3af"/>'
                   f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="{anchor}" fill="#4b5563">{clock}'
                   + (f'<tspan x="{x:.1f}" dy="13" fill="#6b7280">{date}</tspan>' if date else "") + "</text></g>")
    for alert in alerts:  # under the data, so the bars and the line stay readable
        x0, x1 = sx(max(float(alert["window_start"]), begin)), sx(min(float(alert["window_end"]), end))
        out.append(f'<g class="alert-marker"><title>{html.escape(_alert_title(alert))}</title>'
                   f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 2):.1f}" height="{ph}" fill="#fee2e2" opacity="0.8"/>'
                   f'<path d="M{(x0 + x1) / 2 - 5:.1f},{top} h10 l-5,7 z" fill="#dc2626"/></g>')
    if zero_line and lo < 0 < hi:
        out.append(f'<line class="zero-line" x1="{left}" x2="{left + pw}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" '
                   'stroke="#6b7280" stroke-dasharray="5 3"/>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>')
    out.extend(_bars(starts, values, window_seconds, sx, sy, color) if bars
               else _line(starts, values, window_seconds, sx, sy, color, tick_format))
    out.append("</svg>")
    return "".join(out)


def _bars(starts: Sequence[int], values: Sequence[float | None], window_seconds: int, sx: Callable[[float], float],
          sy: Callable[[float], float], color: str) -> list[str]:
    out = []
    for start, value in zip(starts, values, strict=True):
        if value:
            x0, x1, y = sx(start), sx(start + window_seconds), sy(value)
            out.append(f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" height="{sy(0) - y:.1f}" '
                       f'fill="{color}"><title>{_when(start)} UTC: {int(value)} items</title></rect>')
    return out


def _line(starts: Sequence[int], values: Sequence[float | None], window_seconds: int, sx: Callable[[float], float],
          sy: Callable[[float], float], color: str, value_format: Callable[[float], str]) -> list[str]:
    """The line, broken where a window is empty, and a marker per window (a lone window would be invisible)."""
    points = [(start, value, sx(start + window_seconds / 2), sy(value))
              for start, value in zip(starts, values, strict=True) if value is not None]
    segments: list[list[str]] = []
    previous: int | None = None
    for start, _, x, y in points:
        if previous is None or start - previous > window_seconds:
            segments.append([])
        segments[-1].append(f"{x:.1f},{y:.1f}")
        previous = start
    out = [f'<polyline points="{" ".join(segment)}" fill="none" stroke="{color}" stroke-width="2"/>'
           for segment in segments if len(segment) > 1]
    radius = 3 if len(points) <= 120 else 1.5
    out.extend(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}">'
               f'<title>{_when(start)} UTC: {value_format(value)}</title></circle>' for start, value, x, y in points)
    return out


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _signed(value: float) -> str:
    return f"{value:+.1f}" if value else "0"


def _scope_links(scope: str, tickers: Sequence[tuple[str, int]], total: int) -> str:
    def link(target: str, label: str, count: int) -> str:
        current = ' class="active" aria-current="page"' if target == scope else ""
        return (f'<a href="{html.escape(scope_href(target))}"{current}>{html.escape(label)}'
                f'<span class="n">{count:,}</span></a>')

    links = [link(OVERALL, "all", total), *(link(t, t, n) for t, n in tickers[:MOST_TICKERS])]
    more = f'<span class="muted">and {len(tickers) - MOST_TICKERS:,} more</span>' if len(tickers) > MOST_TICKERS else ""
    typed = "" if scope == OVERALL else scope
    box = (f'<form method="get"><input name="scope" value="{html.escape(typed)}" placeholder="ticker" size="8" '
           'required aria-label="ticker"> '
           '<button>show</button></form>')
    return f'<nav class="scopes" aria-label="tickers">{"".join(links)}{more}{box}</nav>'


def _alerts_table(alerts: Sequence[dict[str, Any]]) -> str:
    if not alerts:
        return '<p class="muted">No alerts yet.</p>'
    def scope_link(scope: str) -> str:
        return f'<a href="{html.escape(scope_href(scope))}">{html.escape("all" if scope == OVERALL else scope)}</a>'

    rows = "".join(
        f'<tr><td class="when">{_when(a["window_start"])}</td><td>{scope_link(a["scope"])}</td>'
        f'<td><span class="kind">{html.escape(a["kind"])}</span></td><td>{html.escape(a["message"])}</td></tr>'
        for a in alerts)
    return f"<table><thead><tr><th>window (UTC)</th><th>scope</th><th>kind</th><th>message</th></tr></thead>{rows}</table>"


def _charts(series: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]], window_seconds: int) -> str:
    starts = [int(s["start"]) for s in series]
    begin, end = starts[0], starts[-1] + window_seconds
    shown = [a for a in alerts if float(a["window_end"]) > begin and float(a["window_start"]) < end]
    counts = [float(s["count"]) for s in series]
    ticks = _nice_ticks(0.0, max([*counts, 1.0]), 4, integer=True)
    count_step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    count_top = math.ceil(max([*counts, 1.0]) / count_step) * count_step  # the top of the axis is a labelled tick
    common: dict[str, Any] = {"alerts": shown}
    return "".join([
        time_chart(starts, counts, window_seconds, title=f"items per {window_text(window_seconds)} window", lo=0.0,
                   hi=count_top, color="#2563eb", bars=True, **common),
        time_chart(starts, [s["negative_share"] for s in series], window_seconds, title="share of negative items",
                   lo=0.0, hi=1.0, color="#dc2626", tick_format=_percent, **common),
        time_chart(starts, [s["mean_sentiment"] for s in series], window_seconds,
                   title="mean sentiment: P(positive) − P(negative), −1 to 1", lo=-1.0, hi=1.0, color="#16a34a",
                   zero_line=True, tick_format=_signed, **common),
    ])


def render_dashboard(scope: str, series: list[dict[str, Any]], alerts: list[dict[str, Any]], stats: dict[str, Any],
                     window_seconds: int, tickers: Sequence[tuple[str, int]] = ()) -> str:
    """The whole page for one scope (OVERALL or a ticker): its windows `series` (oldest first), the recent
    `alerts` (of every scope: this scope's are marked on the charts), and `tickers` seen with their item counts."""
    name = "all tickers" if scope == OVERALL else scope
    in_scope = [a for a in alerts if a["scope"] == scope]
    if series:
        span = f"{_when(series[0]['start'])} to {_when(series[-1]['start'] + window_seconds)} UTC"
        body = f'<section class="panel">{_charts(series, in_scope, window_seconds)}</section>'
    else:
        span = "nothing stored yet"
        body = (f'<section class="panel empty">No data yet{"" if scope == OVERALL else " for " + html.escape(scope)}: '
                "POST items to /v1/items or run <code>fmkit app monitor run</code>.</section>")
    listed = alerts if scope == OVERALL else in_scope
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>fmkit monitor: {html.escape(name)}</title>
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><link rel="icon" href="data:,"><style>{STYLE}</style></head><body>
<header><h1>fmkit monitor</h1><span class="muted">news sentiment · {stats["items"]:,} items · {stats["alerts"]:,} alerts ·
refreshes every {REFRESH_SECONDS} s</span></header>
<main>
{_scope_links(scope, tickers, int(stats["items"]))}
<h2>News sentiment: {html.escape(name)}</h2>
<p class="muted">Windows of {window_text(window_seconds)}, {span}; red bands mark alert windows (hover for the alert).</p>
{body}
<section class="panel"><h2>Recent alerts{"" if scope == OVERALL else ": " + html.escape(scope)}</h2>
{_alerts_table(listed)}</section>
</main></body></html>"""
