"""Inline SVG charts: one row per variant, a dot at the value and interval whiskers.

Plain SVG generated here, with no script or external resource, so a report opens
offline in any browser and prints as it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Sequence

ROW_H = 26
LABEL_W = 150
PLOT_W = 360
VALUE_W = 150
TOP = 22


@dataclass(frozen=True)
class Bar:
    """One row of a chart: a value with an optional interval."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    kind: str = "variant"  # variant | baseline | up | down


def _extent(bars: Sequence[Bar], zero: bool, unit: bool) -> tuple[float, float]:
    points = [b.value for b in bars] + [x for b in bars for x in (b.low, b.high) if x is not None]
    low, high = min(points), max(points)
    if unit and low >= 0 and high <= 1:
        return 0.0, 1.0
    if zero or low >= 0:
        low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high, low = high + 1.0, low - (1.0 if low < 0 else 0.0)
    pad = (high - low) * 0.05
    return (low - pad if low < 0 else low), high + pad


def _label(text: str, x: float, y: float, anchor: str = "end", css: str = "lbl") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(text)}</text>'


def _row(bar: Bar, y: float, scale: "_Scale") -> str:
    cx = scale(bar.value)
    parts = [_label(_short(bar.label), LABEL_W - 8, y + 4)]
    if bar.low is not None and bar.high is not None:
        x1, x2 = scale(bar.low), scale(bar.high)
        parts.append(f'<line class="whisker" x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}"/>')
        for x in (x1, x2):
            parts.append(f'<line class="whisker" x1="{x:.1f}" y1="{y - 6:.1f}" x2="{x:.1f}" y2="{y + 6:.1f}"/>')
    parts.append(f'<circle class="dot {bar.kind}" cx="{cx:.1f}" cy="{y:.1f}" r="5"><title>{escape(_tip(bar))}</title></circle>')
    parts.append(_label(_value_text(bar), LABEL_W + PLOT_W + 10, y + 4, "start", "val"))
    return "".join(parts)


def _short(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _value_text(bar: Bar) -> str:
    signed = bar.kind in ("up", "down")
    value = f"{bar.value:+.3f}" if signed else f"{bar.value:.3f}"
    if bar.low is None or bar.high is None:
        return value
    return f"{value} [{bar.low:.3f}, {bar.high:.3f}]" if not signed else f"{value} [{bar.low:+.3f}, {bar.high:+.3f}]"


def _tip(bar: Bar) -> str:
    return f"{bar.label}: {_value_text(bar)}"


class _Scale:
    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def __call__(self, value: float) -> float:
        return LABEL_W + (value - self.low) / (self.high - self.low) * PLOT_W


def _axis(scale: _Scale, height: float, zero: bool) -> str:
    parts = [f'<line class="axis" x1="{LABEL_W}" y1="{TOP - 8}" x2="{LABEL_W}" y2="{height - 14}"/>']
    for value in (scale.low, (scale.low + scale.high) / 2, scale.high):
        x = scale(value)
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{height - 14}"/>')
        parts.append(_label(f"{value:.3g}", x, height - 2, "middle", "tickl"))
    if zero and scale.low < 0 < scale.high:
        x = scale(0.0)
        parts.append(f'<line class="zero" x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{height - 14}"/>')
    return "".join(parts)


def _better(higher_is_better: bool) -> str:
    """Which way along the axis is better, at the chart's top right (above the values)."""
    text = "higher is better →" if higher_is_better else "← lower is better"
    return _label(text, LABEL_W + PLOT_W + VALUE_W - 4, 13, "end", "better")


def interval_chart(
    title: str, bars: Sequence[Bar], *, higher_is_better: bool, zero: bool = False, unit: bool = False
) -> str:
    """An SVG chart of ``bars`` (empty string when there is nothing to draw); the
    axis grows to the right and a note says on which side better values lie."""
    if not bars:
        return ""
    scale = _Scale(*_extent(bars, zero, unit))
    height = TOP + ROW_H * len(bars) + 16
    width = LABEL_W + PLOT_W + VALUE_W
    rows = "".join(_row(b, TOP + ROW_H * i + ROW_H / 2 - 4, scale) for i, b in enumerate(bars))
    better = "higher" if higher_is_better else "lower"
    return (
        f'<svg class="chart" data-better="{better}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f'{_label(title, 4, 13, "start", "ttl")}{_better(higher_is_better)}{_axis(scale, height, zero)}{rows}</svg>'
    )
