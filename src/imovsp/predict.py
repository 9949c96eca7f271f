"""Prediction for many rows at once: prices, the ranges' spreads and their bounds.

The matrix path of the model layer, used by :class:`imovsp.valuer.Valuer` for files and by
training and evaluation for held-out rows. Fitting lives in :mod:`imovsp.training`, scoring in
:mod:`imovsp.evaluation`; this module imports neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from imovsp import ranges
from imovsp.bounds import DEFAULT_LEVEL
from imovsp.builder import FeatureBuilder
from imovsp.ensemble import Routed
from imovsp.features import calibration_classes, frame_columns, listed_columns


def estimate(
    builder: FeatureBuilder,
    boosters: dict[str, Routed],
    calibrations: dict[str, ranges.Calibration],
    frame: pd.DataFrame | dict[str, np.ndarray],
    params: dict[str, dict[str, Any]],
) -> dict[str, np.ndarray]:
    """Per row of ``frame`` (listings, or their feature columns): ``price``, the unscaled
    ``log_median``, the range's ``sigma`` and its calibration class ``klass``."""
    cols = frame_columns(frame) if isinstance(frame, pd.DataFrame) else frame
    n_rows = len(cols["size_m2"])
    out = {k: np.full(n_rows, np.nan) for k in ("price", "log_median", "sigma")}
    listed = listed_columns(cols)
    out["klass"] = calibration_classes(cols)
    for negotiation, booster in boosters.items():
        m = cols["negotiation"] == negotiation
        if m.any():
            x = builder.matrix({k: v[m] for k, v in cols.items()}, negotiation=negotiation)
            out["log_median"][m] = booster.predict(x, listed=listed[m])
            out["price"][m] = params[negotiation]["scale"] * np.exp(out["log_median"][m])
            out["sigma"][m] = calibrations[negotiation].sigma(x)
    return out


def bounds(
    negotiation: np.ndarray,
    est: dict[str, np.ndarray],
    calibrations: dict[str, ranges.Calibration],
    level: float = DEFAULT_LEVEL,
) -> tuple[np.ndarray, np.ndarray]:
    """The ranges' low and high ends at ``level`` of :func:`estimate`'s rows (NaN where the
    price is), given each row's negotiation type."""
    low, high = np.full(len(negotiation), np.nan), np.full(len(negotiation), np.nan)
    for n, calibration in calibrations.items():
        m = (negotiation == n) & np.isfinite(est["price"])
        low[m], high[m] = calibration.bounds(
            est["log_median"][m], est["sigma"][m], est["price"][m], level, est["klass"][m]
        )
    return low, high
