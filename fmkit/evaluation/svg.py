"""Hand-written SVG charts for self-contained reports: no JavaScript, no network, readable in any browser.

Each function returns one <svg> element as a string. Values are escaped; sizes are in CSS pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
FONT = 'font-family="system-ui,-apple-system,Segoe UI,sans-serif"'


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high - low < 1e-12:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}"


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str = "", xlabel: str = "step",
               ylabel: str = "", width: int = 520, height: int = 280, y_range: tuple[float, float] | None = None,
               markers: bool = False, diagonal: bool = False) -> str:
    """Several named (x, y) series on shared axes, with a legend."""
    points = [p for values in series.values() for p in values if math.isfinite(p[1])]
    if not points:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40" {FONT}>'
                f'<text x="8" y="24" font-size="13">{escape(title)}: no data</text></svg>')
    left, right, top, bottom = 56, 16, 28 if title else 12, 40 + 16 * math.ceil(len(series) / 3)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'{FONT} font-size="11" role="img">']
    if title:
        out.append(f'<text x="{left}" y="16" font-size="13" font-weight="600">{escape(title)}</text>')
    for tick in _nice_ticks(y0, y1):
        y = sy(tick)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">{_fmt(tick)}</text>')
    for tick in _nice_ticks(x0, x1, 6):
        x = sx(tick)
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle" fill="#4b5563">{_fmt(tick)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>')
    if diagonal:
        out.append(f'<line x1="{sx(x0):.1f}" y1="{sy(y0):.1f}" x2="{sx(x1):.1f}" y2="{sy(y1):.1f}" '
                   'stroke="#9ca3af" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 28}" text-anchor="middle">{escape(xlabel)}</text>')
    if ylabel:
        out.append(f'<text transform="translate(12 {top + ph / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>')
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(sx(x), sy(y)) for x, y in values if math.isfinite(y)]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        if markers or len(pts) == 1:
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts)
        lx, ly = left + (i % 3) * (pw / 3), top + ph + 44 + 16 * (i // 3)
        out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14:.1f}" y="{ly}">{escape(name[:40])}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str = "", width: int = 520,
              value_format: str = "{:g}", color: str = PALETTE[0]) -> str:
    """Horizontal bars, one row per label (readable with many classes)."""
    row = 16 if len(labels) > 30 else 20
    left = min(220, 12 + 6.5 * max((len(str(lab)) for lab in labels), default=4))
    top = 26 if title else 6
    height = top + row * len(labels) + 8
    top_value = max((v for v in values), default=0) or 1
    pw = width - left - 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'{FONT} font-size="11" role="img">']
    if title:
        out.append(f'<text x="4" y="16" font-size="13" font-weight="600">{escape(title)}</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        w = max(0.0, value / top_value * pw)
        out.append(f'<text x="{left - 6}" y="{y + row * 0.7:.1f}" text-anchor="end">{escape(str(label)[:34])}</text>'
                   f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="{color}"/>'
                   f'<text x="{left + w + 4:.1f}" y="{y + row * 0.7:.1f}" fill="#374151">'
                   f'{escape(value_format.format(value))}</text>')
    out.append("</svg>")
    return "".join(out)


def heatmap(matrix: Sequence[Sequence[float]], labels: Sequence[str], *, title: str = "",
            xlabel: str = "predicted", ylabel: str = "true") -> str:
    """Row-normalised colour, raw counts written in cells when they fit; a <title> tooltip on every cell."""
    k = len(labels)
    cell = 34 if k <= 12 else 22 if k <= 30 else max(7, int(700 / k))
    label_px = 0 if k > 60 else min(160, 8 + 6 * max((len(str(lab)) for lab in labels), default=4))
    left, top = label_px + 30, (26 if title else 6) + label_px
    size = cell * k
    width, height = left + size + 10, top + size + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'{FONT} font-size="10" role="img">']
    if title:
        out.append(f'<text x="4" y="16" font-size="13" font-weight="600">{escape(title)}</text>')
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            shade = int(255 - 200 * share)
            fill = f"rgb({shade},{min(255, shade + 20)},255)" if count else "#ffffff"
            x, y = left + j * cell, top + i * cell
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#f3f4f6">'
                       f'<title>true {escape(str(labels[i]))} → predicted {escape(str(labels[j]))}: {int(count)}</title></rect>')
            if count and cell >= 20:
                color = "#ffffff" if share > 0.55 else "#111827"
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 3.5}" text-anchor="middle" '
                           f'fill="{color}">{int(count)}</text>')
    if label_px:
        for i, label in enumerate(labels):
            c = top + i * cell + cell / 2 + 3
            out.append(f'<text x="{left - 4}" y="{c}" text-anchor="end">{escape(str(label)[:26])}</text>')
            cx = left + i * cell + cell / 2 + 3
            out.append(f'<text transform="translate({cx} {top - 4}) rotate(-90)">{escape(str(label)[:26])}</text>')
    out.append(f'<text x="{left + size / 2}" y="{top + size + 18}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(12 {top + size / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>')
    out.append("</svg>")
    return "".join(out)
