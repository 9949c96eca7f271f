"""The monitoring report: one HTML page that opens offline (charts as embedded PNG, in the
style of the training report, :mod:`imovsp.report`)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from imovsp.report import COLOURS, STYLE
from imovsp.report import _png as png
from imovsp.report import _table as table

LIVE = "#e08a2c"
TRAINING = "#7a7a7a"
TITLES = {
    "size_m2": "size (m²)",
    "rooms": "rooms",
    "toilets": "toilets",
    "suites": "suites",
    "parking": "parking",
    "condo_fee": "condo fee (BRL, when known)",
    "district_tier": "district price tier (0 cheapest)",
    "location_estimated": "location estimated",
    "predicted_price": "predicted price (BRL)",
}


def _labels(edges: Sequence[float | None], name: str) -> list[str]:
    if name == "location_estimated":
        return ["given", "estimated"]
    if name == "district_tier":
        return [*map(str, range(len(edges))), "none"]
    shown = [_short(e) for e in edges]
    if not shown:
        return ["all"]
    return [f"≤{shown[0]}", *(f"≤{b}" for b in shown[1:]), f">{shown[-1]}"]


def _short(value: float | None) -> str:
    if value is None:
        return "?"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:g}"


def drift_chart(negotiation: str, found: Mapping[str, Any]) -> str:
    """Training against live shares per bin, one panel per variable."""
    variables = found["variables"]
    fig = Figure(figsize=(15, 7.5))
    for i, (name, v) in enumerate(variables.items()):
        ax = fig.add_subplot(3, 3, i + 1)
        x = np.arange(len(v["training"]))
        train = np.array(v["training"], dtype=float)
        live = np.array(v["live"], dtype=float)
        if name == "predicted_price":
            prices = np.array(v["training_prices"], dtype=float)
            ax.bar(x - 0.27, prices, 0.27, color="#bbbbbb", label="training prices")
            ax.bar(x, train, 0.27, color=TRAINING, label="out-of-fold predictions")
            ax.bar(x + 0.27, live, 0.27, color=LIVE, label="live predictions")
        else:
            ax.bar(x - 0.2, train, 0.4, color=TRAINING, label="training")
            ax.bar(x + 0.2, live, 0.4, color=LIVE, label="live")
        ax.set_xticks(x, _labels(v["edges"], name), fontsize=7, rotation=45)
        psi = "n/a" if v["psi"] is None else f"{v['psi']:.3f}"
        ax.set_title(f"{TITLES.get(name, name)}: PSI {psi}", fontsize=9, color=_colour(v))
        ax.tick_params(axis="y", labelsize=7)
        if i in (0, len(variables) - 1):
            ax.legend(fontsize=7)
    fig.suptitle(f"{negotiation}: share of listings per bin", color=COLOURS[negotiation])
    fig.tight_layout()
    return png(fig)


def _colour(v: Mapping[str, Any]) -> str:
    return "#b00020" if v["alert"] else "#222"


def error_chart(errors: Mapping[str, Mapping[str, Any]]) -> str:
    """Predicted against actual price for the valuations with feedback."""
    fig = Figure(figsize=(5.5 * len(errors), 5))
    for i, (n, e) in enumerate(errors.items()):
        ax = fig.add_subplot(1, len(errors), i + 1)
        pairs = np.array(e["pairs"], dtype=float).reshape(-1, 2)
        ax.scatter(pairs[:, 1], pairs[:, 0], s=6, alpha=0.5, color=COLOURS.get(n, LIVE))
        lo, hi = float(np.nanmin(pairs)), float(np.nanmax(pairs))
        ax.plot([lo, hi], [lo, hi], color="#444", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="actual (BRL)", ylabel="valued (BRL)")
        ax.set_title(f"{n}: {e['feedback']} with feedback, MAPE {e['mape']}%")
    return png(fig)


def _psi_rows(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "variable": TITLES.get(name, name),
            "valuations": v["rows"],
            "PSI": "n/a" if v["psi"] is None else f"{v['psi']:.3f}",
            "alert": "ALERT" if v["alert"] else "",
        }
        for name, v in found["variables"].items()
    ]


def _error_rows(errors: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for n, e in errors.items():
        card = e["card"]
        rows.append(
            {
                "type": n,
                "feedback": e["feedback"],
                "MAPE % (card)": f"{e['mape']} ({card['mape']})",
                "median APE % (card)": f"{e['median_ape']} ({card['median_ape']})",
                "coverage % (nominal; card)": (
                    f"{e['coverage']} ({e['nominal_coverage']}; {card['coverage']})"
                ),
                "alert": "ALERT" if e["mape_alert"] or e["coverage_alert"] else "",
                "by kind": ", ".join(
                    f"{k}: {v['feedback']}, MAPE {v['mape']}%" for k, v in e["by_kind"].items()
                ),
            }
        )
    return rows


def render(summary: Mapping[str, Any]) -> str:
    """The page for a summary from :func:`imovsp.monitoring.monitor.summarise`."""
    status = summary["status"]
    alerts = "".join(f"<li>{html.escape(a)}</li>" for a in summary["alerts"])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary["notes"])
    limits = summary["thresholds"]
    listed = f"<ul>{alerts}</ul>" if alerts else ""
    listed += f"<ul class=note>{notes}</ul>" if notes else ""
    head = (
        f"<p><b>Status: {html.escape(status.upper())}</b>. {summary['valuations']} valuations "
        f"by model {html.escape(summary['model_version'])} from {summary['since']} to "
        f"{summary['until']}; by source: "
        f"{html.escape(', '.join(f'{k} {v}' for k, v in summary['by_source'].items()) or '-')}."
        f"</p>{listed}"
        f"<p class=note>Alerts: any PSI above {limits['psi']} (with at least "
        f"{limits['min_valuations']} valuations of the type); live MAPE above "
        f"{limits['mape_ratio']} x the model card's, or range coverage more than "
        f"{limits['coverage_points']} points under nominal (with at least "
        f"{limits['min_feedback']} feedback records). PSI below 0.1 reads as stable, 0.1-0.25 "
        "as a moderate shift.</p>"
    )
    if summary["other_versions"]:
        others = ", ".join(f"{v} ({n})" for v, n in summary["other_versions"].items())
        head += f"<p class=note>Left out, served by other models: {html.escape(others)}.</p>"
    sections = [("Summary", head)]
    for n, found in summary["drift"].items():
        estimated = found["location_estimated"]
        defaulted = {k: f"{100 * (v or 0):.0f}%" for k, v in found["defaulted_share"].items()}
        body = (
            table(_psi_rows(found))
            + drift_chart(n, found)
            + f"<p>Locations estimated from the district: {100 * (estimated['live'] or 0):.1f}% "
            f"of valuations, {100 * (estimated['training'] or 0):.1f}% of training listings.</p>"
            + "<p>Fields not given (priced as unknown), share of valuations:</p>"
            + table([defaulted])
            + "<p>Districts whose share moved most (tier 0 is the cheapest tenth):</p>"
            + table(found["districts"])
        )
        sections.append((f"{n}: inputs and predictions against the training data", body))
    if summary["error"]:
        body = (
            "<p>In the money each answer was shown in (its <code>as_of</code> month): the "
            "logged price times the index factor it was shown with.</p>"
            + table(_error_rows(summary["error"]))
            + error_chart(summary["error"])
        )
        sections.append(("Live error, from feedback, against the model card", body))
    else:
        sections.append(("Live error", "<p class=note>no feedback in this period</p>"))
    title = f"imovsp monitoring: model {summary['model_version']}"
    content = "".join(f"<h2>{html.escape(h)}</h2>{c}" for h, c in sections)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{content}"
        "</body></html>"
    )


def write(path: Path, summary: Mapping[str, Any]) -> Path:
    path.write_text(render(summary), encoding="utf-8")
    return path
