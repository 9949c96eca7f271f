"""An HTML report on a model's predictions for labelled listings, that opens offline.

Charts are drawn with matplotlib's Agg renderer (no display, no pyplot state) and embedded in
the page as base64 PNG; there are no external scripts, styles or fonts.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from imovsp import data
from imovsp.metrics import pattern_rows

COLOURS = {"sale": "#1f5f8b", "rent": "#c0592b"}
LARGEST = 15  # listings shown in the largest-errors table
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
img{max-width:100%}.note{color:#555;font-size:.9em}
"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{encoded}">'


LABELS = {
    "mape": "MAPE %",
    "median_ape": "median APE %",
    "within_10": "within 10% (%)",
    "within_20": "within 20% (%)",
    "r2": "R²",
    "mae": "MAE (BRL)",
    "coverage": "inside the range (%)",
    "median_width": "median width (%)",
}


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p class=note>nothing to show</p>"
    head = "".join(f"<th>{html.escape(LABELS.get(k, k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        number = float(value)
        if number.is_integer() or abs(number) >= 100:
            return f"{number:,.0f}"
        return f"{number:.3g}" if abs(number) < 1 else f"{number:.1f}"
    return str(value)


def _types(scored: pd.DataFrame) -> list[str]:
    return [n for n in data.NEGOTIATIONS if (scored[data.NEGOTIATION] == n).any()]


def predicted_vs_actual(scored: pd.DataFrame) -> str:
    types = _types(scored)
    fig = Figure(figsize=(5.5 * len(types), 5))
    for i, n in enumerate(types):
        rows = scored[scored[data.NEGOTIATION] == n]
        ax = fig.add_subplot(1, len(types), i + 1)
        ax.scatter(rows[data.PRICE], rows["predicted"], s=4, alpha=0.35, color=COLOURS[n])
        lo, hi = (
            rows[[data.PRICE, "predicted"]].min().min(),
            rows[[data.PRICE, "predicted"]].max().max(),
        )
        ax.plot([lo, hi], [lo, hi], color="#444", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="actual (BRL)", ylabel="predicted (BRL)")
        ax.set_title(f"{n}: {len(rows)} listings")
    return _png(fig)


def error_by_district(scored: pd.DataFrame) -> str:
    types = _types(scored)
    ape = (scored["predicted"] - scored[data.PRICE]).abs() / scored[data.PRICE]
    per = (
        scored.assign(ape=100 * ape)
        .groupby([data.DISTRICT, data.NEGOTIATION])["ape"]
        .median()
        .unstack(data.NEGOTIATION)
        .reindex(columns=types)
    )
    per = per.sort_values(types[0])
    fig = Figure(figsize=(9, max(4.0, 0.16 * len(per))))
    ax = fig.add_subplot()
    y = np.arange(len(per))
    height = 0.8 / len(types)
    for i, n in enumerate(types):
        ax.barh(y + i * height, per[n], height=height, color=COLOURS[n], label=n)
    ax.set_yticks(y + 0.4 - height / 2, per.index, fontsize=7)
    ax.set(xlabel="median absolute error (%)", ylim=(-0.5, len(per)))
    ax.legend()
    return _png(fig)


def coverage_chart(range_metrics: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    fig = Figure(figsize=(10, 4.2))
    cover, width = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for n, per_level in range_metrics.items():
        levels = [100 * float(level) for level in per_level]
        cover.plot(
            levels, [m["coverage"] for m in per_level.values()], "o-", color=COLOURS[n], label=n
        )
        width.plot(
            levels, [m["median_width"] for m in per_level.values()], "o-", color=COLOURS[n], label=n
        )
    cover.plot([50, 95], [50, 95], color="#444", lw=1, ls="--", label="nominal")
    cover.set(xlabel="nominal level (%)", ylabel="listings inside their range (%)")
    width.set(xlabel="nominal level (%)", ylabel="median (high − low) / price (%)")
    cover.legend()
    width.legend()
    return _png(fig)


def largest_errors(scored: pd.DataFrame) -> str:
    rows = scored.assign(error_pct=100 * (scored["predicted"] / scored[data.PRICE] - 1))
    rows = rows.reindex(rows["error_pct"].abs().sort_values(ascending=False).index).head(LARGEST)
    keep = [data.NEGOTIATION, data.DISTRICT, "Size", "Rooms", "Suites", "Parking", "Condo"]
    table = []
    for _, r in rows.iterrows():
        table.append(
            {
                **{k: r[k] for k in keep},
                "actual": float(r[data.PRICE]),
                "predicted": float(r["predicted"]),
                "80% range": f"{r['price_low']:,.0f} – {r['price_high']:,.0f}",
                "error %": f"{r['error_pct']:+.0f}",
            }
        )
    return _table(table)


def comparison(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """The accuracy table of each model (imovsp, seed), and a MAPE chart when there are two."""
    rows = [
        {"model": model, "type": n, **m} for model, per in results.items() for n, m in per.items()
    ]
    out = _table(rows)
    if len(results) > 1:
        fig = Figure(figsize=(6, 3))
        ax = fig.add_subplot()
        models = list(results)
        for i, n in enumerate(data.NEGOTIATIONS):
            values = [results[m].get(n, {}).get("mape", np.nan) for m in models]
            ax.bar(np.arange(len(models)) + 0.4 * i, values, 0.4, color=COLOURS[n], label=n)
        ax.set_xticks(np.arange(len(models)) + 0.2, models)
        ax.set(ylabel="MAPE (%)")
        ax.legend()
        out += _png(fig)
    return out


def render(
    *,
    title: str,
    scored: pd.DataFrame,
    range_metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    notes: str = "",
    patterns: dict[str, dict[str, dict[str, float]]] | None = None,
) -> str:
    """The page, from ``scored`` listings (with ``Price``, ``predicted``, ``price_low`` and
    ``price_high`` at 80%), the range metrics per level and the accuracy of each model."""
    range_rows = [
        {"type": n, "level %": f"{100 * float(level):.0f}", **m}
        for n, per in range_metrics.items()
        for level, m in per.items()
    ]
    sections = [
        ("Accuracy, and the seed approach on the same rows", comparison(results)),
        *(
            []
            if patterns is None
            else [
                (
                    "By the fields a person gives: accuracy, ranges (% covered, width %) and "
                    "the rule of thumb (district median price per m² × size)",
                    _table(pattern_rows(patterns)),
                )
            ]
        ),
        ("Predicted against actual (log scale)", predicted_vs_actual(scored)),
        (
            "Price ranges: coverage and width against the nominal level",
            coverage_chart(range_metrics) + _table(range_rows),
        ),
        (
            "Error by district (few listings each: read the pattern, not one bar)",
            error_by_district(scored),
        ),
        (f"The {LARGEST} largest errors", largest_errors(scored)),
    ]
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class=note>{html.escape(notes)}</p>{body}</body></html>"
    )


def write(path: Path, **parts: Any) -> Path:
    """Render the report (see :func:`render`) to ``path``."""
    path.write_text(render(**parts), encoding="utf-8")
    return path
