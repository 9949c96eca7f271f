"""Ensemble shapes at equal and at larger tree budgets: more members, other seeds, fewer trees.

    uv run python benchmarks/members.py [--splits 1 2 3 4]

For each split seed, as ``imovsp train`` does: hold out 15% of the listings, tune on the rest
by cross-validation (which fixes the number of trees R). Then fit five boosters on the train
rows with R trees each: the tuned one (seed s), the same with seed s + 7, and extra-trees
boosters with seeds s + 13 (the current second member), s + 29 and s + 41. Each shape below
averages some of them, each cut to a share of R trees, and is scored on the held-out rows with
the tuned output scale. Prints mean MAPE / median APE % and trees per valuation over the splits.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from imovsp import data, training
from imovsp.features import FeatureBuilder, frame_columns
from imovsp.settings import DEV_DATA

BOOSTERS: dict[str, tuple[dict[str, Any], int]] = {  # name: (parameters over the tuned, seed +)
    "M0": ({}, 0),
    "M7": ({}, 7),
    "E13": ({"extra_trees": True}, 13),
    "E29": ({"extra_trees": True}, 29),
    "E41": ({"extra_trees": True}, 41),
}
SHAPES: dict[str, list[tuple[str, float]]] = {  # name: (booster, share of R trees) averaged
    "now: tuned + extra": [("M0", 1), ("E13", 1)],
    "tuned at 0.8 + extra": [("M0", 0.8), ("E13", 1)],
    "tuned + 2 extra, 0.8/0.6/0.6": [("M0", 0.8), ("E13", 0.6), ("E29", 0.6)],
    "tuned + 2 extra, 0.6 each": [("M0", 0.6), ("E13", 0.6), ("E29", 0.6)],
    "tuned + 2 extra, 0.5 each": [("M0", 0.5), ("E13", 0.5), ("E29", 0.5)],
    "2 tuned + 2 extra, 0.5 each": [("M0", 0.5), ("M7", 0.5), ("E13", 0.5), ("E29", 0.5)],
    "2 tuned + 2 extra, 0.7 each": [("M0", 0.7), ("M7", 0.7), ("E13", 0.7), ("E29", 0.7)],
    "2 tuned + 3 extra, 0.5 each": [(b, 0.5) for b in BOOSTERS],
    "tuned + 2 extra, all trees": [("M0", 1), ("E13", 1), ("E29", 1)],
    "tuned + 3 extra, all trees": [("M0", 1), ("E13", 1), ("E29", 1), ("E41", 1)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    frame, _ = data.load_training_data(args.data)
    scores: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    for seed in args.splits:
        train_rows, test_rows = training.split(frame, test_size=0.15, seed=seed)
        builder = FeatureBuilder().fit(train_rows)
        for n in data.NEGOTIATIONS:
            x, y = training._design(builder, train_rows, n)
            params, _ = training.tune(x, y, seed=seed, folds=4)
            rows = test_rows[test_rows[data.NEGOTIATION] == n]
            x_test = builder.matrix(frame_columns(rows), negotiation=n)
            actual = rows[data.PRICE].to_numpy(float)
            rounds = params["num_rounds"]
            tuned = {k: v for k, v in params.items() if k not in ("num_rounds", "scale")}
            boosters = {
                name: lgb.train(
                    {**tuned, **extra, "seed": tuned["seed"] + shift},
                    training._dataset(x, y),
                    rounds,
                )
                for name, (extra, shift) in BOOSTERS.items()
            }
            for shape, parts in SHAPES.items():
                cuts = [(boosters[b], max(1, round(rounds * share))) for b, share in parts]
                log_price = np.mean([b.predict(x_test, num_iteration=k) for b, k in cuts], axis=0)
                ape = 100 * np.abs(params["scale"] * np.exp(log_price) - actual) / actual
                trees = sum(k for _, k in cuts)
                scores.setdefault((n, shape), []).append(
                    (float(ape.mean()), float(np.median(ape)), trees)
                )
        print(f"split {seed} done", flush=True)
    print(f"{'type':<5} {'shape':<30} {'MAPE':>6} {'median':>7} {'trees':>6}")
    for (n, shape), runs in scores.items():
        mape, median, trees = np.mean(runs, axis=0)
        print(f"{n:<5} {shape:<30} {mape:>6.2f} {median:>7.2f} {trees:>6.0f}")


if __name__ == "__main__":
    main()
