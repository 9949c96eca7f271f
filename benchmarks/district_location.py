"""Where a valuation without coordinates is placed: accuracy on repeated splits of the dev file.

    uv run python benchmarks/district_location.py [--data CSV] [--splits 1 2 3 4]

A valuation that gives no coordinates is placed at a point that stands for its district
(``FeatureBuilder.centroids_``). For eight districts the median position of their listings
lies outside the district, 1.2–24 km away (see ``geo.Geography.centre``). For each split seed
this trains as ``imovsp train`` does (``training.train``, no seed approach), then refits the
evaluation model on the train rows (``training.fit``: the same model ``train`` scores its test
rows with) and values the held-out listings of those eight districts from each field set a
person may give. It prints the field-set table of all held-out listings (as
``benchmarks/accuracy.py`` does) and the same table for the eight districts' listings alone.
Run it on two commits to compare where the location is assumed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from accuracy import pattern_table

from imovsp import data, evaluation, training
from imovsp.settings import DEV_DATA

# The districts of the dev file whose listings' median position lies more than 1 km outside
# the official district (computed with imovsp.geo; fixed here so that the same rows are
# compared on a commit that places them elsewhere).
MOVED = (
    "Anhanguera",
    "Aricanduva",
    "Iguatemi",
    "Jaraguá",
    "Jardim Helena",
    "Jardim Ângela",
    "Medeiros",
    "Morumbi",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    frame, _ = data.load_training_data(args.data)
    everywhere: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    for seed in args.splits:
        result = training.train(frame, seed=seed, compare_seed=False)
        everywhere.append(result.metrics["patterns"])
        train_rows, test_rows = training.split(frame, test_size=0.15, seed=seed)
        builder, boosters = training.fit(train_rows, result.params)
        rows = test_rows[test_rows[data.DISTRICT].isin(MOVED)]
        moved.append(
            evaluation.pattern_metrics(builder, boosters, result.calibrations, rows, result.params)
        )
        print(f"split {seed}: {len(rows)} held-out listings in the eight districts", flush=True)
    print("All held-out listings:")
    print(pattern_table(everywhere, args.splits))
    print(f"Held-out listings of {', '.join(MOVED)}:")
    print(pattern_table(moved, args.splits))


if __name__ == "__main__":
    main()
