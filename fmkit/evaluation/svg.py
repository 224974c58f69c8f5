"""Hand-written SVG charts for self-contained reports: no JavaScript, no network, readable in any browser.

Each function returns one <svg> element as a string. Values are escaped; sizes are in CSS pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
FONT = 'font-family="system-ui,-apple-system,Segoe UI,sans-serif"'


def _nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high]; `integer` (optimizer steps): whole numbers only, step >= 1."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high - low < 1e-12:
        return [low]
    raw = (high - low) / count
    if integer:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    # 2.5 x 1 is not a whole number: integer axes step 1, 2, 5, 10, 20, 25, 50, ...
    multiples = (1, 2, 5, 10) if integer and magnitude < 10 else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in multiples if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"  # 1,500 steps, not 1.5e+03
    if abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}"


def _title_lines(title: str, width: float, font_px: float = 13) -> list[str]:
    """The title broken at spaces into lines that fit `width` (a generous estimate of glyph widths)."""
    per_line = max(12, int(width / (font_px * 0.62)))
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _title(title: str, x: float, width: float) -> tuple[str, int]:
    """SVG text of a (wrapped) chart title and the height it takes."""
    lines = _title_lines(title, width) if title else []
    spans = "".join(f'<tspan x="{x}" dy="{0 if i == 0 else 16}">{escape(line)}</tspan>' for i, line in enumerate(lines))
    svg = f'<text x="{x}" y="16" font-size="13" font-weight="600">{spans}</text>' if lines else ""
    return svg, 16 * len(lines)


def _fmt_value(value: float) -> str:
    """A data value written next to a lone marker: more digits than a tick label."""
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str = "", xlabel: str = "step",
               ylabel: str = "", width: int = 520, height: int = 280, y_range: tuple[float, float] | None = None,
               markers: bool = False, diagonal: bool = False, integer_x: bool = False) -> str:
    """Several named (x, y) series on shared axes, with a legend.

    `integer_x`: x is a count (optimizer steps): whole-number ticks. A series with a single point is drawn
    as a marker labelled with its value (and, when it is the only x, a tick at exactly that x).
    """
    points = [p for values in series.values() for p in values if math.isfinite(p[1])]
    if not points:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40" {FONT}>'
                f'<text x="8" y="24" font-size="13">{escape(title)}: no data</text></svg>')
    title_svg, title_px = _title(title, 56, width - 56 - 16)
    left, right, top, bottom = 56, 16, 12 + title_px, 40 + 16 * math.ceil(len(series) / 3)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or (min(ys), max(ys))
    single_x = x1 == x0
    if single_x:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.1 or 0.5  # a flat line sits mid-chart with ticks near its value
        y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'{FONT} font-size="11" role="img">']
    out.append(title_svg)
    for tick in _nice_ticks(y0, y1):
        y = sy(tick)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">{_fmt(tick)}</text>')
    x_ticks = [min(xs)] if single_x else _nice_ticks(x0, x1, 6, integer=integer_x)
    for tick in x_ticks:
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
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4.5 if len(pts) == 1 else 3}" fill="{color}"/>'
                       for x, y in pts)
        if len(pts) == 1:  # a lone point is easy to miss: say what it is beside it
            (x, y), (raw_x, raw_y) = pts[0], next(p for p in values if math.isfinite(p[1]))
            anchor, dx = ("end", -8) if x > left + pw * 0.6 else ("start", 8)
            where = f"{xlabel} {_fmt(raw_x)}" if xlabel else _fmt(raw_x)
            label_y = y + 16 if y < top + 18 else y - 6  # below the marker when it sits at the top edge
            out.append(f'<text class="point-label" x="{x + dx:.1f}" y="{label_y:.1f}" text-anchor="{anchor}" '
                       f'fill="{color}" font-weight="600">{escape(_fmt_value(raw_y))} at {escape(where)}</text>')
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
    size = cell * k
    width = max(label_px + 30 + size + 10, 360 if title else 0)  # room for a readable title on small matrices
    title_svg, title_px = _title(title, 4, width - 8)
    left, top = label_px + 30, title_px + 10 + label_px
    height = top + size + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'{FONT} font-size="10" role="img">']
    out.append(title_svg)
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
