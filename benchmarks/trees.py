"""What the ensemble's trees buy: accuracy with each member cut back to a share of its trees.

    uv run python benchmarks/trees.py [--data CSV] [--splits 1 2 3 4]

For each split seed, as ``imovsp train`` does: hold out 15% of the listings, tune on the rest by
cross-validation, fit the ensemble on the train rows. Then score the held-out rows with each
member limited to a share of its trees (LightGBM's ``num_iteration``: the same trees as
training that many rounds). Prints mean MAPE / median APE and tree counts over the splits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from imovsp import data, training
from imovsp.features import FeatureBuilder, frame_columns
from imovsp.settings import DEV_DATA

SHARES = (0.5, 0.67, 0.8, 1.0)  # of each member's trees; 0 drops the second member


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    frame, _ = data.load_training_data(args.data)
    scores: dict[tuple[str, float, float], list[tuple[float, float, int]]] = {}
    for seed in args.splits:
        train_rows, test_rows = training.split(frame, test_size=0.15, seed=seed)
        builder = FeatureBuilder().fit(train_rows)
        params = {}
        for n in data.NEGOTIATIONS:
            x, y = training._design(builder, train_rows, n)
            params[n], _ = training.tune(x, y, seed=seed, folds=4)
        eval_builder, boosters = training.fit(train_rows, params)
        for n in data.NEGOTIATIONS:
            rows = test_rows[test_rows[data.NEGOTIATION] == n]
            x = eval_builder.matrix(frame_columns(rows), negotiation=n)
            actual = rows[data.PRICE].to_numpy(float)
            first, second = boosters[n].members
            for share0 in SHARES:
                k0 = max(1, round(first.num_trees() * share0))
                for share1 in (0.0, *SHARES):
                    k1 = round(second.num_trees() * share1)
                    log_price = first.predict(x, num_iteration=k0)
                    if k1:
                        log_price = (log_price + second.predict(x, num_iteration=k1)) / 2
                    ape = 100 * np.abs(params[n]["scale"] * np.exp(log_price) - actual) / actual
                    scores.setdefault((n, share0, share1), []).append(
                        (float(ape.mean()), float(np.median(ape)), k0 + k1)
                    )
        print(f"split {seed} done", flush=True)
    print(f"{'type':<5} {'tuned':>6} {'extra':>6} {'MAPE':>6} {'median':>7} {'trees':>6}")
    for (n, share0, share1), runs in scores.items():
        mape, median, trees = np.mean(runs, axis=0)
        print(f"{n:<5} {share0:>6} {share1:>6} {mape:>6.2f} {median:>7.2f} {trees:>6.0f}")


if __name__ == "__main__":
    main()
