"""Accuracy benchmark: imovsp against the seed approach on repeated honest splits of the dev file.

    uv run python benchmarks/accuracy.py [--data CSV] [--splits 1 2 3 4] [--no-seed]

For each split seed, `training.train` holds out 15% of the de-duplicated listings, tunes on the
rest by cross-validation, scores the held-out rows, and fits the seed approach (one-hot +
RandomForest) on the same rows. Prints both models' metrics per split, their means, and the
ratio imovsp / seed, which is what carries over to data neither has seen. Then, for each field
set a person may give (``imovsp.features.FIELD_SETS``), the held-out listings valued from those
fields only: MAPE, median APE, the 80% and 90% ranges' coverage and median width, and the rule
of thumb (district median price per m² × size) beside them, as means over the splits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from imovsp import data, training
from imovsp.settings import DEV_DATA

KEYS = ("mape", "median_ape", "within_10", "within_20", "r2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--no-seed", action="store_true", help="skip the seed approach")
    args = parser.parse_args()
    frame, report = data.load_training_data(args.data)
    print(report.summary())
    runs, patterns = [], []
    for seed in args.splits:
        result = training.train(frame, seed=seed, compare_seed=not args.no_seed)
        test = result.metrics["test"]
        runs.append(test)
        patterns.append(result.metrics["patterns"])
        line = "  ".join(
            f"{n}: imovsp {test['imovsp'][n]['mape']:.2f}/{test['imovsp'][n]['median_ape']:.2f}"
            + (
                ""
                if args.no_seed
                else f" seed {test['seed'][n]['mape']:.2f}/{test['seed'][n]['median_ape']:.2f}"
            )
            for n in ("sale", "rent")
        )
        print(f"split {seed}: {line}   (MAPE/median APE %)", flush=True)
    print(pattern_table(patterns, args.splits))
    if args.no_seed:
        return
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for model in ("imovsp", "seed"):
        summary[model] = {
            n: {k: round(float(np.mean([r[model][n][k] for r in runs])), 2) for k in KEYS}
            for n in ("sale", "rent")
        }
    summary["ratio"] = {
        n: {
            k: round(summary["imovsp"][n][k] / summary["seed"][n][k], 3)
            for k in ("mape", "median_ape")
        }
        for n in ("sale", "rent")
    }
    print(json.dumps({"splits": args.splits, **summary}, indent=2))


def pattern_table(patterns: list[dict[str, Any]], splits: list[int]) -> str:
    """Means over the splits of :func:`imovsp.evaluation.pattern_metrics`, as a Markdown table."""
    head = (
        f"field set (means of {len(splits)} splits) | type | MAPE | median APE | 80% covers"
        " | 80% width | 90% covers | 90% width | thumb MAPE | thumb median APE\n"
        + "|---" * 10
        + "|"
    )
    lines = [head]
    keys = (
        "mape",
        "median_ape",
        "coverage80",
        "width80",
        "coverage90",
        "width90",
        "thumb_mape",
        "thumb_median_ape",
    )
    for name in patterns[0]:
        for n in ("sale", "rent"):
            means = [float(np.mean([p[name][n][k] for p in patterns])) for k in keys]
            lines.append(f"| {name} | {n} | " + " | ".join(f"{v:.2f}" for v in means) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
