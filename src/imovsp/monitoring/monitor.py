"""What ``imovsp monitor`` computes: input drift and live error of one model, from the log.

For each negotiation type, the valuations a model served since a time are compared with that
model's training reference (see :mod:`imovsp.drift`): a PSI per numeric field, for the district
mix (price tiers), for the share of estimated locations and for the predicted prices. Where
feedback arrived, the live error (MAPE, median APE, range coverage) is set against what the
model card promised; it is computed in the money each answer was shown in (the logged price,
which is in the model's month, times the ``index_factor`` it was shown with). A threshold
crossed is an alert; the command exits 1 on any alert.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from imovsp import data
from imovsp.drift import NUMERIC, VARIABLES, Reference, psi
from imovsp.features import TYPICAL
from imovsp.settings import Settings

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Thresholds:
    psi: float
    mape_ratio: float
    coverage_points: float
    min_valuations: int
    min_feedback: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            psi=settings.psi_alert,
            mape_ratio=settings.mape_alert_ratio,
            coverage_points=settings.coverage_alert,
            min_valuations=settings.monitor_min_valuations,
            min_feedback=settings.monitor_min_feedback,
        )


def parse_since(text: str, now: datetime, option: str = "--since") -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` before ``now``, or an ISO date or time (UTC); errors
    name the command-line ``option`` it came from."""
    match = DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), UNITS[match.group(2)]
        return now - timedelta(**{unit: amount})
    try:
        since = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is neither a duration (30m, 12h, 7d, 2w) nor an ISO date or time "
            "(2026-11-01, 2026-11-01T08:00)"
        ) from None
    if since.tzinfo is not None:  # the log stores naive UTC
        since = since.astimezone(UTC).replace(tzinfo=None)
    if since > now:
        raise ValueError(f"{option} {text!r} is in the future")
    return since


def _r(value: float, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _columns(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, np.ndarray]:
    return {
        name: np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)
        for name in names
    }


def drift(
    rows: Sequence[Mapping[str, Any]], reference: Reference, negotiation: str, limits: Thresholds
) -> dict[str, Any]:
    """PSI of each variable of ``rows`` (one negotiation type's valuations) against training."""
    cols = _columns(rows, [*NUMERIC, "price"])
    # Each field's drift is of the values that were given; how often one is not given is
    # the "not given" share below.
    values: dict[str, np.ndarray] = {name: cols[name][np.isfinite(cols[name])] for name in NUMERIC}
    fee = values["condo_fee"]
    values["condo_fee"] = fee[fee > 0]
    values["district_tier"] = reference.tier_of(negotiation, [r["district"] for r in rows])
    values["location_estimated"] = np.array([bool(r["location_estimated"]) for r in rows], float)
    values["predicted_price"] = cols["price"]
    judged = len(rows) >= limits.min_valuations
    variables = {}
    for name in VARIABLES:
        bins = reference.binned[negotiation][name]
        counts = bins.counts(values[name])
        index = psi(bins.shares, counts) if counts.sum() else float("nan")
        variables[name] = {
            "psi": _r(index),
            "alert": bool(judged and np.isfinite(index) and index > limits.psi),
            "rows": int(counts.sum()),
            "edges": [_r(e, 2) for e in bins.edges],
            "training": [_r(s) for s in bins.shares],
            "live": [_r(c / max(counts.sum(), 1)) for c in counts],
        }
    variables["predicted_price"]["training_prices"] = [
        _r(s) for s in reference.price[negotiation].shares
    ]
    defaulted = Counter(name for r in rows for name in r["defaulted"])
    return {
        "valuations": len(rows),
        "judged": judged,
        "variables": variables,
        "location_estimated": {
            "training": _r(reference.binned[negotiation]["location_estimated"].shares[1]),
            "live": _r(float(np.mean(values["location_estimated"]))),
        },
        "defaulted_share": {name: _r(defaulted[name] / len(rows)) for name in TYPICAL},
        "districts": _district_changes(rows, reference, negotiation),
    }


def _district_changes(
    rows: Sequence[Mapping[str, Any]], reference: Reference, negotiation: str, top: int = 10
) -> list[dict[str, Any]]:
    """The districts whose share of the traffic moved most from their share of training."""
    live = Counter(r["district"] for r in rows)
    trained = dict(zip(reference.districts, reference.district_shares[negotiation], strict=True))
    names = set(live) | {d for d, s in trained.items() if s > 0}
    moved = sorted(names, key=lambda d: -abs(live[d] / len(rows) - trained.get(d, 0.0)))
    return [
        {
            "district": d,
            "training_pct": _r(100 * trained.get(d, 0.0), 2),
            "live_pct": _r(100 * live[d] / len(rows), 2),
            "tier": int(reference.tier_of(negotiation, [d])[0]),
        }
        for d in moved[:top]
    ]


def live_error(
    rows: Sequence[Mapping[str, Any]], card: Mapping[str, Any], negotiation: str, limits: Thresholds
) -> dict[str, Any]:
    """MAPE, median APE and range coverage of valuations with feedback, against the card.

    In the money each answer was shown in: the logged prices (the model's month) times their
    ``index_factor``, since a client's real price is in the money of the answer it saw."""
    cols = _columns(
        rows, ["price", "actual_price", "price_low", "price_high", "level", "index_factor"]
    )
    factor = np.where(np.isfinite(cols["index_factor"]), cols["index_factor"], 1.0)
    actual, price = cols["actual_price"], cols["price"] * factor
    low, high = cols["price_low"] * factor, cols["price_high"] * factor
    ape = np.abs(price - actual) / actual
    ranged = np.isfinite(low) & np.isfinite(high)
    inside = (actual >= low) & (actual <= high)
    coverage = 100 * float(np.mean(inside[ranged])) if ranged.any() else float("nan")
    nominal = 100 * float(np.mean(cols["level"][ranged])) if ranged.any() else float("nan")
    test = card.get("metrics", {}).get("test", {}).get("imovsp", {}).get(negotiation, {})
    level_key = f"{nominal / 100:.2f}" if np.isfinite(nominal) else ""
    card_ranges = card.get("metrics", {}).get("ranges", {}).get(negotiation, {})
    judged = len(rows) >= limits.min_feedback
    mape = 100 * float(np.mean(ape))
    card_mape = test.get("mape")
    mape_alert = bool(judged and card_mape and mape > limits.mape_ratio * card_mape)
    coverage_alert = bool(
        judged and np.isfinite(coverage) and coverage < nominal - limits.coverage_points
    )
    kinds = sorted({r["kind"] for r in rows})
    return {
        "feedback": len(rows),
        "judged": judged,
        "mape": _r(mape, 2),
        "median_ape": _r(100 * float(np.median(ape)), 2),
        "coverage": _r(coverage, 1),
        "nominal_coverage": _r(nominal, 1),
        "card": {
            "mape": card_mape,
            "median_ape": test.get("median_ape"),
            "coverage": card_ranges.get(level_key, {}).get("coverage"),
        },
        "by_kind": {
            k: {
                "feedback": int(sum(r["kind"] == k for r in rows)),
                "mape": _r(100 * float(np.mean(ape[[r["kind"] == k for r in rows]])), 2),
            }
            for k in kinds
        },
        "mape_alert": mape_alert,
        "coverage_alert": coverage_alert,
        "pairs": [[_r(p, 0), _r(a, 0)] for p, a in zip(price, actual, strict=True)][:2000],
    }


def summarise(
    *,
    valuations: Sequence[Mapping[str, Any]],
    feedback: Sequence[Mapping[str, Any]],
    reference: Reference,
    card: Mapping[str, Any],
    since: datetime,
    until: datetime,
    limits: Thresholds,
) -> dict[str, Any]:
    """The monitoring summary of the model ``card`` describes (its metadata): what the JSON
    output and the page show, with the ``alerts`` that decide the exit code."""
    version = str(card["version"])
    ours = [r for r in valuations if r["model_version"] == version]
    others = Counter(str(r["model_version"]) for r in valuations if r["model_version"] != version)
    answered = [r for r in feedback if r["model_version"] == version]
    out: dict[str, Any] = {
        "model_version": version,
        "since": since.isoformat(timespec="seconds") + "Z",
        "until": until.isoformat(timespec="seconds") + "Z",
        "valuations": len(ours),
        "other_versions": dict(others),
        "by_source": dict(Counter(r["source"] for r in ours)),
        "thresholds": asdict(limits),
        "drift": {},
        "error": {},
        "alerts": [],
        "notes": [],
    }
    for n in data.NEGOTIATIONS:
        rows = [r for r in ours if r["negotiation"] == n]
        if n not in reference.rows:
            if rows:
                out["notes"].append(f"{n}: the model has no training reference for it")
            continue
        if rows:
            out["drift"][n] = found = drift(rows, reference, n, limits)
            if not found["judged"]:
                out["notes"].append(
                    f"{n}: {len(rows)} valuations, fewer than {limits.min_valuations}: "
                    "drift shown, not judged"
                )
            for name, v in found["variables"].items():
                if v["alert"]:
                    out["alerts"].append(f"{n}: {name} PSI {v['psi']:.3f} > {limits.psi}")
        with_feedback = [r for r in answered if r["negotiation"] == n]
        if with_feedback:
            out["error"][n] = err = live_error(with_feedback, card, n, limits)
            if not err["judged"]:
                out["notes"].append(
                    f"{n}: {len(with_feedback)} feedback records, fewer than "
                    f"{limits.min_feedback}: error shown, not judged"
                )
            if err["mape_alert"]:
                out["alerts"].append(
                    f"{n}: live MAPE {err['mape']:.1f}% > {limits.mape_ratio} x the card's "
                    f"{err['card']['mape']:.1f}%"
                )
            if err["coverage_alert"]:
                out["alerts"].append(
                    f"{n}: range coverage {err['coverage']:.1f}% < nominal "
                    f"{err['nominal_coverage']:.0f}% - {limits.coverage_points} points"
                )
    if not ours:
        out["notes"].append(f"no valuations by model {version} since {out['since']}")
    out["status"] = "alert" if out["alerts"] else "ok"
    return out


def text(summary: Mapping[str, Any]) -> str:
    """The summary as a few lines for a terminal or a scheduler's log."""
    lines = [
        f"model {summary['model_version']}: {summary['valuations']} valuations since "
        f"{summary['since']} ({', '.join(f'{k} {v}' for k, v in summary['by_source'].items())})"
    ]
    for n, d in summary["drift"].items():
        cells = ", ".join(
            f"{name} {v['psi']:.3f}" for name, v in d["variables"].items() if v["psi"] is not None
        )
        lines.append(f"{n} drift (PSI, {d['valuations']} valuations): {cells}")
    for n, e in summary["error"].items():
        card = e["card"]
        lines.append(
            f"{n} live error ({e['feedback']} feedback, in the money shown): MAPE {e['mape']}%"
            f" (card {card['mape']}%),"
            f" median APE {e['median_ape']}% (card {card['median_ape']}%), coverage "
            f"{e['coverage']}% of nominal {e['nominal_coverage']}%"
        )
    lines += [f"note: {note}" for note in summary["notes"]]
    lines += [f"ALERT: {alert}" for alert in summary["alerts"]]
    lines.append(f"status: {summary['status']}")
    return "\n".join(lines)
