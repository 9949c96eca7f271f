"""Calibrated price ranges: normalised split-conformal on out-of-fold residuals.

For each negotiation type, from the train rows' out-of-fold log-price predictions (made by fold
models that never saw the row, see :func:`imovsp.training.tune`):

1. the residuals ``r = log(price) - oof`` are computed;
2. a small LightGBM *spread model* learns ``sigma(x) ≈ E|r|`` from the same features, so the
   range is narrow where the model is usually right and wide where it is not. It is cross-fitted:
   each row's ``sigma`` comes from a spread model that did not see that row's residual;
3. the normalised scores ``|r| / sigma(x)`` are kept, sorted;
4. at level ``L`` the range is ``exp(log_median ± q_L · sigma(x))``, where ``q_L`` is the
   ``ceil((n + 1) L)``-th smallest score (split-conformal's finite-sample rule), widened if need
   be so that it contains the point estimate (which includes the output ``scale`` factor).

Any level from :data:`MIN_LEVEL` to :data:`MAX_LEVEL` is answered from the stored scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.model_selection import KFold

from imovsp.features import CATEGORICAL, FEATURES

DEFAULT_LEVEL = 0.8
MIN_LEVEL, MAX_LEVEL = 0.5, 0.95
# The levels every evaluation reports (coverage against nominal).
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
SPREAD_PARAMS: dict[str, Any] = {
    "objective": "regression",  # the mean of |r|: a smooth, stable scale
    # Deliberately under-fitted (100 rounds at 0.03): a sigma that follows the noise of |r| more
    # closely makes the normalised scores more spread and the ranges wider (measured on the
    # out-of-fold rows: 0.1 gave median widths 1-2 points wider than 0.02-0.03).
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 40,  # a spread needs many residuals to be estimated
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "cat_smooth": 30.0,
    "verbosity": -1,
    "num_threads": 1,  # as the value model: OpenMP teams spin when the cores are shared
    "deterministic": True,
    "force_row_wise": True,
}
SPREAD_ROUNDS = 100
# sigma is never below this share of the median cross-fitted sigma, so that a row the spread
# model finds unusually easy still gets a range of sensible width.
FLOOR_SHARE = 0.25


def check_level(level: float) -> float:
    """``level`` as a float, or ``ValueError`` if it is outside what the ranges support."""
    if not (isinstance(level, int | float) and MIN_LEVEL <= level <= MAX_LEVEL):
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, not {level!r}")
    return float(level)


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level)``-th smallest of the sorted ``scores`` (the largest if that
    rank is past the end): with exchangeable data, a new score is below it with probability
    at least ``level``."""
    n = len(scores)
    rank = min(math.ceil((n + 1) * level), n)
    return float(scores[rank - 1])


@dataclass
class Calibration:
    """What one negotiation type's ranges need: the spread model and the sorted scores."""

    spread: lgb.Booster
    scores: np.ndarray  # sorted |r| / sigma of the calibration rows
    floor: float  # the smallest sigma ever used

    def sigma(self, x: np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        predicted = self.spread.predict(x, num_threads=num_threads)
        return np.asarray(np.maximum(np.asarray(predicted, dtype=float), self.floor), dtype=float)

    def quantile(self, level: float) -> float:
        return conformal_quantile(self.scores, check_level(level))

    def bounds(
        self, log_median: np.ndarray, sigma: np.ndarray, price: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Low and high prices at ``level``, for the model's (unscaled) ``log_median``, its
        ``sigma`` and the point estimate ``price``."""
        half = self.quantile(level) * sigma
        low = np.minimum(np.exp(log_median - half), price)
        high = np.maximum(np.exp(log_median + half), price)
        return low, high

    def bounds_one(
        self, log_median: float, spread: float, price: float, level: float
    ) -> tuple[float, float]:
        """:meth:`bounds` of one property from its raw ``spread`` model output, without
        building arrays (their overhead is most of the cost for one value)."""
        half = self.quantile(level) * max(spread, self.floor)
        low = float(np.exp(log_median - half))
        high = float(np.exp(log_median + half))
        return min(low, price), max(high, price)

    def summary(self) -> dict[str, Any]:
        return {
            "calibration_rows": len(self.scores),
            "sigma_floor": round(self.floor, 5),
            "q80": round(conformal_quantile(self.scores, 0.8), 4),
            "q90": round(conformal_quantile(self.scores, 0.9), 4),
        }


def _spread_dataset(x: np.ndarray, target: np.ndarray) -> lgb.Dataset:
    return lgb.Dataset(
        x,
        label=target,
        feature_name=list(FEATURES),
        categorical_feature=list(CATEGORICAL),
        params={"verbosity": -1},
    )


def _fit_spread(x: np.ndarray, target: np.ndarray, seed: int) -> lgb.Booster:
    return lgb.train({**SPREAD_PARAMS, "seed": seed}, _spread_dataset(x, target), SPREAD_ROUNDS)


def calibrate(
    x: np.ndarray, log_price: np.ndarray, oof: np.ndarray, *, seed: int, folds: int = 4
) -> Calibration:
    """Fit the spread model and the conformal scores from out-of-fold predictions ``oof`` of
    rows with features ``x`` and actual ``log_price`` (see the module doc)."""
    residual = np.abs(log_price - oof)
    sigma = np.empty(len(residual))
    for fit_rows, held in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = _fit_spread(x[fit_rows], residual[fit_rows], seed)
        sigma[held] = model.predict(x[held])
    floor = FLOOR_SHARE * float(np.median(sigma))
    scores = np.sort(residual / np.maximum(sigma, floor))
    return Calibration(_fit_spread(x, residual, seed), scores, floor)


def range_metrics(
    actual: np.ndarray,
    log_median: np.ndarray,
    sigma: np.ndarray,
    price: np.ndarray,
    calibration: Calibration,
    levels: tuple[float, ...] = LEVELS,
) -> dict[str, dict[str, float]]:
    """Empirical coverage (%) and median width ``(high - low) / price`` (%) at each level."""
    out = {}
    for level in levels:
        low, high = calibration.bounds(log_median, sigma, price, level)
        out[f"{level:.2f}"] = {
            "coverage": round(100 * float(np.mean((actual >= low) & (actual <= high))), 1),
            "median_width": round(100 * float(np.median((high - low) / price)), 1),
        }
    return out
