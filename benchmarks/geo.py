"""What training should do with listings whose coordinates lie far outside the district they name.

    uv run python benchmarks/geo.py [--data CSV] [--splits 1 2 3] [--far-km 3] [--folds 4]

For each split seed: hold out 15% of the de-duplicated listings (as ``imovsp train`` does), then
train the production pipeline (``training.train``, unchanged) on the other 85% three ways:

- ``keep``: as they are;
- ``unknown``: listings whose coordinates lie more than ``--far-km`` outside the official
  district they name (``imovsp.geo``) lose their coordinates (the pipeline then places them as
  it places any listing without a location);
- ``drop``: those listings are left out (but for a district all of whose listings are far
  off: those stay, without coordinates, so that the model still knows the district).

Every variant is scored on the same held-out listings, as they are (their coordinates, right or
wrong, are what a caller would send), and again with their coordinates removed (what a person
who gives only the district gets). Prints MAPE, median APE and the 80% range's coverage per
variant and negotiation type, the mean over the splits, and the held-out subsets: listings far
outside their district, and the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imovsp import data, training
from imovsp.geo import geography
from imovsp.settings import DEV_DATA
from imovsp.valuer import Valuer

VARIANTS = ("keep", "unknown", "drop")


def far_outside(frame: pd.DataFrame, km: float) -> np.ndarray:
    distance = geography().distances_km(
        frame[data.LATITUDE], frame[data.LONGITUDE], frame[data.DISTRICT]
    )
    return np.asarray(distance > km)  # NaN (no coordinates) is not far


def variant(frame: pd.DataFrame, name: str, km: float) -> pd.DataFrame:
    far = far_outside(frame, km)
    if name == "unknown":
        frame = frame.copy()
        frame.loc[far, [data.LATITUDE, data.LONGITUDE]] = np.nan
        return frame
    if name == "drop":
        # A district all of whose listings are far off keeps them, without coordinates: the
        # model must still know the district.
        left = set(frame.loc[~far, data.DISTRICT])
        kept = far & ~frame[data.DISTRICT].isin(left).to_numpy()
        frame = frame.copy()
        frame.loc[kept, [data.LATITUDE, data.LONGITUDE]] = np.nan
        return frame[~far | kept].reset_index(drop=True)
    return frame


def scores(
    actual: np.ndarray, price: np.ndarray, low: np.ndarray, high: np.ndarray
) -> dict[str, float]:
    ape = np.abs(price / actual - 1) * 100
    return {
        "n": len(actual),
        "mape": round(float(np.mean(ape)), 2),
        "median_ape": round(float(np.median(ape)), 2),
        "coverage": round(float(np.mean((actual >= low) & (actual <= high)) * 100), 1),
    }


def evaluate(valuer: Valuer, test: pd.DataFrame, far: np.ndarray) -> dict[str, Any]:
    located = test[data.LATITUDE].notna().to_numpy()
    blanked = test.assign(**{data.LATITUDE: np.nan, data.LONGITUDE: np.nan})
    out: dict[str, Any] = {}
    for label, rows in (("as given", test), ("no coordinates", blanked)):
        price, low, high = valuer.range_frame(rows, level=0.8)
        actual = rows[data.PRICE].to_numpy(float)
        negotiation = rows[data.NEGOTIATION].to_numpy()
        for n in data.NEGOTIATIONS:
            m = negotiation == n
            out[f"{n} {label}"] = scores(actual[m], price[m], low[m], high[m])
            if label == "as given":
                for part, subset in (("far", far), ("near", located & ~far)):
                    s = m & subset
                    out[f"{n} {label}, {part}"] = scores(actual[s], price[s], low[s], high[s])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--far-km", type=float, default=3.0)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    frame, report = data.load_training_data(args.data)
    print(report.summary(), flush=True)
    sha = data.file_sha256(args.data)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for seed in args.splits:
        train_rows, test_rows = training.split(frame, test_size=0.15, seed=seed)
        far_test = far_outside(test_rows, args.far_km)
        far_train = far_outside(train_rows, args.far_km)
        print(
            f"split {seed}: {len(train_rows)} train rows ({int(far_train.sum())} far outside), "
            f"{len(test_rows)} test rows ({int(far_test.sum())} far outside)",
            flush=True,
        )
        for name in VARIANTS:
            rows = variant(train_rows, name, args.far_km)
            result = training.train(rows, seed=seed, folds=args.folds, compare_seed=False)
            valuer = training.to_valuer(
                result, data_sha256=sha, data_report=report, source=str(args.data)
            )
            found = evaluate(valuer, test_rows, far_test)
            runs[name].append(found)
            line = "  ".join(
                f"{k}: {v['mape']:.2f}/{v['median_ape']:.2f}/{v['coverage']:.1f}"
                for k, v in found.items()
                if k.endswith(("as given", "no coordinates"))
            )
            print(f"  {name:8s} {line}   (MAPE/median APE/coverage %)", flush=True)
    mean = {
        name: {
            key: {
                k: round(float(np.mean([r[key][k] for r in found])), 2)
                for k in ("mape", "median_ape", "coverage")
            }
            for key in found[0]
        }
        for name, found in runs.items()
    }
    text = json.dumps({"splits": args.splits, "far_km": args.far_km, "mean": mean}, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
