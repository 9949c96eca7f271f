"""Accuracy benchmark: imovsp against the seed approach on repeated honest splits of the dev file.

    uv run python benchmarks/accuracy.py [--data CSV] [--splits 1 2 3 4]

For each split seed, `training.train` holds out 15% of the de-duplicated listings, tunes on the
rest by cross-validation, scores the held-out rows, and fits the seed approach (one-hot +
RandomForest) on the same rows. Prints both models' metrics per split, their means, and the
ratio imovsp / seed, which is what carries over to data neither has seen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from imovsp import data, training
from imovsp.settings import DEV_DATA

KEYS = ("mape", "median_ape", "within_10", "within_20", "r2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    frame, report = data.load_training_data(args.data)
    print(report.summary())
    runs = []
    for seed in args.splits:
        result = training.train(frame, seed=seed)
        test = result.metrics["test"]
        runs.append(test)
        line = "  ".join(
            f"{n}: imovsp {test['imovsp'][n]['mape']:.2f}/{test['imovsp'][n]['median_ape']:.2f} "
            f"seed {test['seed'][n]['mape']:.2f}/{test['seed'][n]['median_ape']:.2f}"
            for n in ("sale", "rent")
        )
        print(f"split {seed}: {line}   (MAPE/median APE %)", flush=True)
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


if __name__ == "__main__":
    main()
