"""Hand-written SVG charts (svg.py) and the confusion-matrix PNG: one-point curves, integer step axes, titles."""

from __future__ import annotations

import re

import pytest

from fmkit.evaluation import svg
from fmkit.evaluation.artifacts import confusion_figure


def x_tick_labels(chart: str) -> list[str]:
    """Text of the x-axis tick labels (the middle-anchored grey labels under the plot)."""
    return re.findall(r'text-anchor="middle" fill="#4b5563">([^<]*)</text>', chart)


def test_one_point_curve_is_a_labelled_marker_on_its_own_step() -> None:
    chart = svg.line_chart({"accuracy": [(47, 0.8125)]}, title="Evaluation", integer_x=True)
    assert chart.count("<circle") == 1
    label = re.search(r'class="point-label"[^>]*>([^<]*)<', chart)
    assert label and label.group(1) == "0.8125 at step 47"
    assert x_tick_labels(chart) == ["47"]  # not 46, 46.5, 47, 47.5, 48


def test_step_axis_ticks_are_whole_numbers() -> None:
    chart = svg.line_chart({"loss": [(1, 0.9), (2, 0.7), (3, 0.6)]}, integer_x=True)
    assert x_tick_labels(chart) == ["1", "2", "3"]
    long = svg.line_chart({"loss": [(i, 1 / i) for i in range(1, 1501)]}, integer_x=True)
    assert all(re.fullmatch(r"[\d,]+", t) for t in x_tick_labels(long)) and "1,500" in x_tick_labels(long)


def test_curve_with_many_points_has_no_point_label() -> None:
    chart = svg.line_chart({"loss": [(1, 0.9), (2, 0.7)]}, integer_x=True)
    assert "point-label" not in chart and "<polyline" in chart


def _svg_width(chart: str) -> float:
    match = re.search(r'<svg[^>]* width="(\d+(?:\.\d+)?)"', chart)
    assert match
    return float(match.group(1))


def test_confusion_matrix_title_fits_a_small_matrix() -> None:
    title = "Confusion matrix (colour: share of the true class; numbers: counts)"
    chart = svg.heatmap([[5, 1], [2, 6]], ["neg", "pos"], title=title)
    lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", chart)
    assert " ".join(lines) == title  # every word is drawn
    # 13px bold system-ui glyphs are under 0.62em wide on average: each line fits inside the picture
    assert all(4 + len(line) * 13 * 0.62 <= _svg_width(chart) for line in lines)


def test_confusion_png_title_is_inside_the_figure() -> None:
    for k in (2, 5):
        labels = [f"label_{i}" for i in range(k)]
        fig = confusion_figure({"labels": labels, "confusion_matrix": [[3 if i == j else 1 for j in range(k)]
                                                                       for i in range(k)]})
        fig.canvas.draw()
        box = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1


def test_chinese_labels_get_a_cjk_font_when_one_is_installed(recwarn: pytest.WarningsRecorder) -> None:
    from fmkit.evaluation.artifacts import plot_font_families

    assert plot_font_families(["negative", "positive"]) == ["DejaVu Sans"]
    families = plot_font_families(["负面", "正面"])
    assert families[0] == "DejaVu Sans"
    if len(families) == 1:
        pytest.skip("no CJK font on this machine (.ci/run installs fonts-noto-cjk)")
    import io

    fig = confusion_figure({"labels": ["负面", "正面"], "confusion_matrix": [[3, 1], [0, 4]]})
    fig.savefig(io.BytesIO(), format="png")
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
