"""The price per m² by district as horizontal bar charts: the geometry, computed here and
drawn as SVG by ``templates/districts.html`` (no chart library, nothing fetched)."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imovsp.web.brl import number, price_m2

TITLES = {"sale": "Venda", "rent": "Aluguel"}
UNITS = {"sale": "R$ por m²", "rent": "R$ por m² por mês"}
# SVG user units, drawn at about one pixel each: a phone's column (~340 px) shrinks the text
# only a little, and the page caps how far a desktop's column enlarges it.
WIDTH = 360
NAME_WIDTH = 124  # district names, right-aligned before the bars
VALUE_WIDTH = 66  # the value printed after the longest bar
ROW = 19
BAR = 13
TOP = 22  # room for the axis labels


def sort_key(name: str) -> str:
    """Alphabetical order as a Brazilian reads it: accents do not send "Água Rasa" to the end."""
    plain = unicodedata.normalize("NFKD", name)
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold()


def slug(name: str) -> str:
    return "-".join(sort_key(name).replace("'", "").split())


@dataclass(frozen=True, slots=True)
class Bar:
    name: str
    label: str  # the value as printed
    y: float
    width: float
    highlighted: bool


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    negotiation: str
    title: str
    unit: str
    width: int
    height: int
    name_width: int
    bar_height: int
    bars: list[Bar]
    ticks: list[Tick]
    missing: list[str]  # districts without listings of this negotiation type


def nice_step(top: float, count: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` ticks."""
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw))


def tick_label(value: float, step: float) -> str:
    """``0``, ``5 mil``, ``10 mil``: short enough for six labels across a phone's chart."""
    unit, suffix = (1000.0, " mil") if step >= 1000 and value else (1.0, "")
    decimals = 0 if float(value / unit).is_integer() else 1
    return number(value / unit, decimals) + suffix


def bar_chart(
    districts: Sequence[dict[str, Any]], negotiation: str, *, highlight: str | None = None
) -> Chart:
    """One negotiation's median price per m² by district, highest first.

    ``districts`` are the rows of ``GET /v1/districts``; ``highlight`` names one to mark.
    """
    valued = [(d["name"], d["median_price_m2"].get(negotiation)) for d in districts]
    present = sorted(
        ((name, value) for name, value in valued if value is not None), key=lambda r: -r[1]
    )
    missing = sorted((name for name, value in valued if value is None), key=sort_key)
    top = max((value for _, value in present), default=1.0)
    step = nice_step(top)
    axis_top = step * math.ceil(top / step)
    span = WIDTH - NAME_WIDTH - VALUE_WIDTH
    bars = [
        Bar(
            name=name,
            label=price_m2(value, negotiation),
            y=TOP + i * ROW,
            width=round(span * value / axis_top, 1),
            highlighted=name == highlight,
        )
        for i, (name, value) in enumerate(present)
    ]
    intervals = round(axis_top / step)
    every = 2 if intervals > 4 else 1  # gridlines at every step, labels where they fit
    ticks = [
        Tick(
            x=round(NAME_WIDTH + span * k / intervals, 1),
            label=tick_label(k * step, step) if k % every == 0 else "",
        )
        for k in range(intervals + 1)
    ]
    return Chart(
        negotiation=negotiation,
        title=TITLES[negotiation],
        unit=UNITS[negotiation],
        width=WIDTH,
        height=TOP + len(bars) * ROW + 4,
        name_width=NAME_WIDTH,
        bar_height=BAR,
        bars=bars,
        ticks=ticks,
        missing=missing,
    )
