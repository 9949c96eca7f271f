"""Price-range coverage and width on held-out test splits, against the floors and a constant width.

    uv run python benchmarks/ranges.py [--data CSV] [--seeds 42 1 2]

For each seed, trains as ``imovsp train`` does (without the seed-approach comparison) and reads
the coverage and median width (high - low) / price that training measured on its test split
(the model scored there never saw those rows). Beside it, the same test rows with a
constant-width range: the conformal quantile of the train rows' out-of-fold |log residual|,
the same for every property. Prints one row per seed and type, and the mean over seeds.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from imovsp import data, training
from imovsp.settings import get_settings

FLOORS = {"0.80": (77.0, 84.0), "0.90": (87.0, 94.0)}
MAX_WIDTH_80 = {"sale": 40.0, "rent": 55.0}


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level)``-th smallest of the sorted ``scores`` (the largest if that
    rank is past the end): the symmetric split-conformal rule, the baseline's."""
    n = len(scores)
    rank = min(math.ceil((n + 1) * level), n)
    return float(scores[rank - 1])


def constant_width(result: training.TrainResult, n: str, level: float) -> tuple[float, float]:
    """Coverage and median width (%) of a constant-width range on the test rows of type ``n``."""
    oof, actual_train = result.oof[n]
    q = conformal_quantile(np.sort(np.abs(np.log(actual_train) - oof)), level)
    assert result.test is not None
    rows = result.test[result.test[data.NEGOTIATION] == n]
    price = rows["predicted"].to_numpy(float)
    log_median = np.log(price / result.params[n]["scale"])
    low, high = np.minimum(np.exp(log_median - q), price), np.maximum(np.exp(log_median + q), price)
    actual = rows[data.PRICE].to_numpy(float)
    inside = float(np.mean((actual >= low) & (actual <= high)))
    return 100 * inside, 100 * float(np.median((high - low) / price))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="listings CSV (default: IMOVSP_DATA)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    args = parser.parse_args()
    frame, _ = data.load_training_data(args.data or get_settings().data)
    head = f"{'seed':>5} {'type':<5} {'level':>5} {'covered%':>9} {'width%':>7}"
    print(f"{head} {'const covered%':>15} {'const width%':>13} {'test rows':>10}")
    rows: list[tuple[str, str, float, float, float, float]] = []
    for seed in args.seeds:
        result = training.train(frame, seed=seed, compare_seed=False)
        for n, per_level in result.metrics["ranges"].items():
            count = result.metrics["test"]["imovsp"][n]["rows"]
            for level in FLOORS:
                m = per_level[level]
                c_cov, c_width = constant_width(result, n, float(level))
                rows.append((n, level, m["coverage"], m["median_width"], c_cov, c_width))
                print(
                    f"{seed:>5} {n:<5} {level:>5} {m['coverage']:>9.1f} {m['median_width']:>7.1f} "
                    f"{c_cov:>15.1f} {c_width:>13.1f} {count:>10}"
                )
    print("mean over seeds, with the floors:")
    for n in ("sale", "rent"):
        for level, (lo, hi) in FLOORS.items():
            values = np.array([r[2:] for r in rows if r[0] == n and r[1] == level])
            if not len(values):
                continue
            cov, width, c_cov, c_width = values.mean(axis=0)
            limit = f", width ≤ {MAX_WIDTH_80[n]:.0f}" if level == "0.80" else ""
            print(
                f"  {n:<5} {level}: covered {cov:.1f}% (floor {lo:.0f}–{hi:.0f}), width "
                f"{width:.1f}%{limit}; constant width: covered {c_cov:.1f}%, width {c_width:.1f}%"
            )


if __name__ == "__main__":
    main()
