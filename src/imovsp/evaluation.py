"""Evaluation: held-out listings scored as a model prices them, and the seed approach beside.

Prices and their ranges' coverage and width per negotiation type, the same per field set a
person may give (:data:`imovsp.features.FIELD_SETS`), against the rule of thumb (the district's
median price per m² times the size); and the seed notebook's approach (pandas one-hot of every
column, ``RandomForestRegressor(random_state=42)``) fitted on the same rows. ``imovsp train``
runs it on its test split (:mod:`imovsp.training`), ``imovsp evaluate`` on a saved model and a
labelled file (:func:`patterns_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imovsp import data, ranges
from imovsp.bounds import DEFAULT_LEVEL
from imovsp.builder import FeatureBuilder
from imovsp.ensemble import Routed
from imovsp.features import FIELD_SETS, OPTIONAL, frame_columns, mask
from imovsp.predict import bounds, estimate

if TYPE_CHECKING:
    from imovsp.valuer import Valuer

# scikit-learn (the seed approach's forest) is imported inside the function that fits it: a
# server worker never loads it (see imovsp.server.main).


def with_ranges(
    frame: pd.DataFrame,
    est: dict[str, np.ndarray],
    calibrations: dict[str, ranges.Calibration],
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """``frame`` plus ``predicted``, ``price_low`` and ``price_high`` columns at ``level``."""
    low, high = bounds(frame[data.NEGOTIATION].to_numpy(), est, calibrations, level)
    return frame.assign(predicted=est["price"], price_low=low, price_high=high)


def range_metrics(
    frame: pd.DataFrame,
    est: dict[str, np.ndarray],
    calibrations: dict[str, ranges.Calibration],
) -> dict[str, dict[str, dict[str, float]]]:
    """Coverage and median width at :data:`imovsp.ranges.LEVELS` per negotiation type."""
    actual = frame[data.PRICE].to_numpy(float)
    negotiation = frame[data.NEGOTIATION].to_numpy()
    return {
        n: ranges.range_metrics(
            actual[m],
            est["log_median"][m],
            est["sigma"][m],
            est["price"][m],
            calibration,
            klass=est["klass"][m],
        )
        for n, calibration in calibrations.items()
        if (m := negotiation == n).any()
    }


def pattern_metrics(
    builder: FeatureBuilder,
    boosters: dict[str, Routed],
    calibrations: dict[str, ranges.Calibration],
    frame: pd.DataFrame,
    params: dict[str, dict[str, Any]],
) -> dict[str, dict[str, dict[str, float]]]:
    """For each field set of :data:`imovsp.features.FIELD_SETS` and negotiation type, the
    listings of ``frame`` valued from those fields only: MAPE, median APE, the 80% and 90%
    ranges' coverage and median width, and beside them the rule of thumb (the district's
    median price per m² in ``builder``'s listings times the size)."""
    cols = frame_columns(frame)
    actual = frame[data.PRICE].to_numpy(float)
    negotiation = cols["negotiation"]
    thumb = np.array(
        [
            (builder.district_price_m2(d, n) or np.nan) * size
            for d, n, size in zip(cols["district"], negotiation, cols["size_m2"], strict=True)
        ]
    )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, given in FIELD_SETS.items():
        masked = mask(cols, [f for f in OPTIONAL if f not in given])
        est = estimate(builder, boosters, calibrations, masked, params)
        out[name] = {}
        for n, calibration in calibrations.items():
            m = negotiation == n
            if not m.any():
                continue
            ape = np.abs(est["price"][m] - actual[m]) / actual[m]
            thumb_ape = np.abs(thumb[m] - actual[m]) / actual[m]
            row = {
                "rows": int(m.sum()),
                "mape": round(100 * float(np.mean(ape)), 2),
                "median_ape": round(100 * float(np.median(ape)), 2),
            }
            found = ranges.range_metrics(
                actual[m],
                est["log_median"][m],
                est["sigma"][m],
                est["price"][m],
                calibration,
                levels=(0.8, 0.9),
                klass=est["klass"][m],
            )
            row |= {
                "coverage80": found["0.80"]["coverage"],
                "width80": found["0.80"]["median_width"],
                "coverage90": found["0.90"]["coverage"],
                "width90": found["0.90"]["median_width"],
                "thumb_mape": round(100 * float(np.nanmean(thumb_ape)), 2),
                "thumb_median_ape": round(100 * float(np.nanmedian(thumb_ape)), 2),
            }
            out[name][n] = row
    return out


def patterns_of(valuer: Valuer, frame: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`pattern_metrics` of a saved model on labelled, validated listings of districts
    it knows."""
    rows = frame.assign(**{data.DISTRICT: [valuer.district(d) for d in frame[data.DISTRICT]]})
    return pattern_metrics(
        valuer.builder, valuer.boosters, valuer.calibrations, rows, valuer.metadata["params"]
    )


def seed_design(frame: pd.DataFrame) -> pd.DataFrame:
    """The seed notebook's design matrix: one-hot of every column (raw coordinates, 0 if absent)."""
    x = frame.drop(columns=[data.PRICE]).fillna({data.LATITUDE: 0.0, data.LONGITUDE: 0.0})
    return pd.get_dummies(x, dtype=float)


def seed_predictions(train: pd.DataFrame, test: pd.DataFrame, *, n_jobs: int = 2) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor  # not at the top: see the note there

    x_train = seed_design(train)
    x_test = seed_design(test).reindex(columns=x_train.columns, fill_value=0.0)
    model = RandomForestRegressor(random_state=42, n_jobs=n_jobs)
    model.fit(x_train, train[data.PRICE])
    return np.asarray(model.predict(x_test))
