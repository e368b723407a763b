"""Charts of the console as server-rendered SVG: stacked bars per day, readable at a glance and by a screen
reader (``role="img"`` with a title and a description that says the totals, a tooltip per bar, and the same
figures in a table below each chart). No script, no inline style: colours come from the stylesheet's classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

__all__ = ["Series", "stacked_bars"]

_ids = count(1)
WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 28


@dataclass(frozen=True, slots=True)
class Series:
    key: str
    label: str
    css_class: str


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 25_000, 50_000,
                 100_000, 250_000, 500_000, 1_000_000):
        if value <= step * 4:
            return step * 4
    return value


def stacked_bars(title: str, days: Sequence[str], series: Sequence[Series], values: dict[str, dict[str, int]],
                 describe: Callable[[dict[str, int]], str], day_label: str = "Day") -> Markup:
    """An SVG of one stacked bar per day (``values[series][day]``), with ``describe(totals by series)`` as its
    description; followed by a table of the same figures (hidden from sight, not from screen readers)."""
    uid = next(_ids)
    totals = {s.key: sum(values.get(s.key, {}).values()) for s in series}
    per_day = [sum(values.get(s.key, {}).get(day, 0) for s in series) for day in days]
    top = _nice_max(max(per_day, default=0) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="chart{uid}-t chart{uid}-d" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="chart{uid}-t">{escape(title)}</title>',
             f'<desc id="chart{uid}-d">{escape(describe(totals))}</desc>']
    for tick in range(5):
        value = top * tick // 4
        y = TOP + plot_h - plot_h * tick / 4
        parts.append(f'<line class="grid-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    for i, day in enumerate(days):
        x = LEFT + slot * i + (slot - bar) / 2
        y = TOP + plot_h
        for s in series:
            n = values.get(s.key, {}).get(day, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(f'<rect class="{s.css_class}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                         f'<title>{escape(day)} · {escape(s.label)}: {n}</title></rect>')
        if i % 5 == 0 or i == len(days) - 1:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{escape(day[5:])}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>')
    parts.append("</svg>")
    legend = "".join(f'<li><span class="swatch {s.css_class}" aria-hidden="true"></span>{escape(s.label)}: '
                     f"{totals[s.key]}</li>" for s in series)
    parts.append(f'<ul class="legend">{legend}</ul>')
    head = "".join(f'<th scope="col">{escape(s.label)}</th>' for s in series)
    rows = "".join(
        f'<tr><th scope="row">{escape(day)}</th>'
        + "".join(f"<td>{values.get(s.key, {}).get(day, 0)}</td>" for s in series) + "</tr>"
        for day, total in zip(days, per_day, strict=True) if total)
    parts.append(f'<table class="visually-hidden"><caption>{escape(title)}</caption><thead><tr><th scope="col">'
                 f"{escape(day_label)}</th>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped
