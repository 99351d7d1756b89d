"""
The cost chart as SVG, drawn on the server (no script, no CDN: the page works offline; no Airflow import).

Stacked bars, one per day, one colour per endpoint; past ``MAX_SERIES`` endpoints, the cheapest are
one "other endpoints" series. Each bar part has a ``<title>`` (the browser's tooltip).
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

    from airflow_provider_hfep.ui.nights import CostSeries

__all__ = ["MAX_SERIES", "cost_chart"]

#: endpoints drawn in colours of their own; the others share one
MAX_SERIES = 8
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
OTHERS_COLOUR = "#9e9e9e"
OTHERS = "other endpoints"
WIDTH, HEIGHT = 900, 280
LEFT, RIGHT, TOP, BOTTOM = 60, 10, 12, 40


def _nice_ceiling(value: float) -> float:
    """Return the smallest 1, 2, 2.5 or 5 times a power of ten at least ``value`` (the y axis's top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if usd >= 0.01 or usd == 0 else f"${usd:.4f}"


def _series(series: CostSeries) -> list[tuple[str, str, dict[date, float]]]:
    """``(label, colour, day -> USD)`` per drawn series: the costliest endpoints, then the rest as one."""
    drawn = []
    for index, endpoint in enumerate(series.endpoints[:MAX_SERIES]):
        drawn.append(
            (endpoint, PALETTE[index], {d: series.cost.get((endpoint, d), 0.0) for d in series.days})
        )
    rest = series.endpoints[MAX_SERIES:]
    if rest:
        others = {d: sum(series.cost.get((e, d), 0.0) for e in rest) for d in series.days}
        drawn.append((f"{OTHERS} ({len(rest)})", OTHERS_COLOUR, others))
    return drawn


def cost_chart(series: CostSeries) -> str:
    """Draw the cost per night and endpoint as an SVG document fragment (an ``<svg>`` element)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_ceiling(max((series.total(d) for d in series.days), default=0.0))
    slot = plot_w / max(1, len(series.days))
    bar = max(2.0, slot * 0.7)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cost-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" aria-label="Cost per night and endpoint over the last {len(series.days)} days">'
    ]
    for tick in range(5):  # y axis: 0, 1/4 ... top
        usd = top * tick / 4
        y = TOP + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_money(usd))}</text>')
    drawn = _series(series)
    for index, day in enumerate(series.days):
        x = LEFT + index * slot + (slot - bar) / 2
        base = float(TOP + plot_h)
        for label, colour, costs in drawn:
            usd = costs[day]
            if usd <= 0:
                continue
            height = plot_h * usd / top
            base -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{colour}">'
                f"<title>{escape(f'{day.isoformat()} {label}: {_money(usd)}')}</title></rect>"
            )
        if index % 5 == 0 or index == len(series.days) - 1:  # a date label every five days, and the last
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                f"{day.strftime('%m-%d')}</text>"
            )
    if not drawn:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" class="empty">'
            "No cost reported in this period</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{colour}"></span>{escape(label)}</li>'
        for label, colour, _ in drawn
    )
    return "".join(parts) + (f'<ul class="legend">{legend}</ul>' if legend else "")
