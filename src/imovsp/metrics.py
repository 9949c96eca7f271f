"""Accuracy measures reported for every model, per negotiation type."""

from __future__ import annotations

from typing import Any

import numpy as np


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAPE, median APE, share within 10% and 20% (all in %), R² and MAE (BRL)."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if len(actual) == 0:
        return {"rows": 0}
    ape = np.abs(predicted - actual) / actual
    residual = np.sum((actual - predicted) ** 2)
    total = np.sum((actual - actual.mean()) ** 2)
    return {
        "rows": len(actual),
        "mape": round(100 * float(ape.mean()), 2),
        "median_ape": round(100 * float(np.median(ape)), 2),
        "within_10": round(100 * float(np.mean(ape <= 0.10)), 1),
        "within_20": round(100 * float(np.mean(ape <= 0.20)), 1),
        "r2": round(1 - float(residual / total), 4) if total > 0 else float("nan"),
        "mae": round(float(np.mean(np.abs(predicted - actual))), 0),
    }


def by_negotiation(
    actual: np.ndarray, predicted: np.ndarray, negotiation: np.ndarray
) -> dict[str, dict[str, float]]:
    return {
        n: regression_metrics(actual[negotiation == n], predicted[negotiation == n])
        for n in ("sale", "rent")
        if (negotiation == n).any()
    }


def format_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """``{model: {negotiation: metrics}}`` as an aligned text table."""
    head = f"{'model':<10} {'type':<5} {'rows':>6} {'MAPE%':>7} {'medAPE%':>8} "
    head += f"{'≤10%':>6} {'≤20%':>6} {'R²':>7} {'MAE BRL':>12}"
    lines = [head]
    for model, per in results.items():
        for n, m in per.items():
            lines.append(
                f"{model:<10} {n:<5} {m['rows']:>6} {m['mape']:>7.2f} {m['median_ape']:>8.2f} "
                f"{m['within_10']:>6.1f} {m['within_20']:>6.1f} {m['r2']:>7.3f} {m['mae']:>12,.0f}"
            )
    return "\n".join(lines)


def format_ranges(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """``{negotiation: {level: {coverage, median_width}}}`` as an aligned text table."""
    lines = [f"{'type':<5} {'level%':>7} {'covered%':>9} {'median width%':>14}"]
    for n, per_level in results.items():
        for level, m in per_level.items():
            pct = 100 * float(level)
            lines.append(f"{n:<5} {pct:>7.0f} {m['coverage']:>9.1f} {m['median_width']:>14.1f}")
    return "\n".join(lines)


# The columns of :func:`imovsp.evaluation.pattern_metrics`, as the tables show them.
PATTERN_COLUMNS = {
    "rows": "rows",
    "mape": "MAPE%",
    "median_ape": "medAPE%",
    "coverage80": "80% in",
    "width80": "80% w",
    "coverage90": "90% in",
    "width90": "90% w",
    "thumb_mape": "thumb MAPE",
    "thumb_median_ape": "thumb medAPE",
}


def pattern_rows(patterns: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """``{field set: {negotiation: metrics}}`` as one row per field set and type."""
    return [
        {"fields": name, "type": n, **{label: m[key] for key, label in PATTERN_COLUMNS.items()}}
        for name, per in patterns.items()
        for n, m in per.items()
    ]


def format_patterns(patterns: dict[str, dict[str, dict[str, float]]]) -> str:
    """Accuracy and ranges per field set given (see :func:`pattern_rows`) as a text table;
    coverage and width (``w``) in %, and the rule of thumb (district median per m² × size)."""
    head = f"{'fields':<14} {'type':<5}" + "".join(
        f" {label:>12}" for label in PATTERN_COLUMNS.values()
    )
    lines = [head]
    for row in pattern_rows(patterns):
        values = "".join(f" {row[label]:>12}" for label in PATTERN_COLUMNS.values())
        lines.append(f"{row['fields']:<14} {row['type']:<5}{values}")
    return "\n".join(lines)
