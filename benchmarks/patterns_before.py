"""The per-field-set table of benchmarks/accuracy.py for the model *before* issue 18, whose
missing fields took what is typical for the size. It runs against that version's code only:

    git worktree add ../before 550b6ed
    cd ../before && PYTHONPATH=src uv run --project ../main python \\
        ../main/benchmarks/patterns_before.py --splits 1 2 3 4

For each split seed it trains as `imovsp train` does (``training.train``), refits on the 85%,
fills the fields each set leaves out as ``FeatureBuilder.complete`` did (coordinates left out:
the district's median listing position) and scores the same held-out listings as
benchmarks/accuracy.py: MAPE, median APE, the 80% and 90% ranges' coverage, the 80% width.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from imovsp import data, ranges, training
from imovsp.features import FLAGS, frame_columns
from imovsp.settings import DEV_DATA

TYPICAL = ("rooms", "toilets", "suites", "parking", "condo_fee", *FLAGS)
LEFT_OUT: dict[str, tuple[str, ...]] = {
    "complete": (),
    "no_location": ("location",),
    "no_condo_fee": ("condo_fee",),
    "basic": ("condo_fee", *FLAGS, "location"),
    "district_size": (*TYPICAL, "location"),
}


def filled(builder: Any, cols: dict[str, np.ndarray], left_out: tuple[str, ...]) -> dict[str, Any]:
    cols = {k: v.copy() for k, v in cols.items()}
    if "location" in left_out:
        cols["latitude"][:] = np.nan
        cols["longitude"][:] = np.nan
    for i in range(len(cols["size_m2"])):
        typical = builder.typical(float(cols["size_m2"][i]))
        for name in left_out:
            if name != "location":
                cols[name][i] = float(typical[name])
    return cols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    frame, _ = data.load_training_data(DEV_DATA)
    runs = []
    for seed in args.splits:
        result = training.train(frame, seed=seed, compare_seed=False)
        train_rows, test_rows = training.split(frame, test_size=0.15, seed=seed)
        builder, boosters = training.fit(train_rows, result.params)
        cols = frame_columns(test_rows)
        actual = test_rows[data.PRICE].to_numpy(float)
        run: dict[str, dict[str, dict[str, float]]] = {}
        for name, left_out in LEFT_OUT.items():
            given = filled(builder, cols, left_out)
            run[name] = {}
            for n, calibration in result.calibrations.items():
                m = cols["negotiation"] == n
                x = builder.matrix({k: v[m] for k, v in given.items()}, negotiation=n)
                log_median = boosters[n].predict(x)
                price = result.params[n]["scale"] * np.exp(log_median)
                ape = np.abs(price - actual[m]) / actual[m]
                found = ranges.range_metrics(
                    actual[m], log_median, calibration.sigma(x), price, calibration, (0.8, 0.9)
                )
                run[name][n] = {
                    "mape": round(100 * float(ape.mean()), 2),
                    "median_ape": round(100 * float(np.median(ape)), 2),
                    "coverage80": found["0.80"]["coverage"],
                    "width80": found["0.80"]["median_width"],
                    "coverage90": found["0.90"]["coverage"],
                }
            print(seed, name, json.dumps(run[name]), flush=True)
        runs.append(run)
    print(f"means of splits {args.splits}")
    for name in LEFT_OUT:
        for n in ("sale", "rent"):
            keys = runs[0][name][n]
            means = {k: round(float(np.mean([r[name][n][k] for r in runs])), 2) for k in keys}
            print(name, n, means)


if __name__ == "__main__":
    main()
