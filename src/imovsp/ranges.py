"""Calibrated price ranges: normalised split-conformal on out-of-fold residuals.

For each negotiation type, from the train rows' out-of-fold log-price predictions (made by fold
models that never saw the row, see :func:`imovsp.training.tune`):

1. the residuals ``r = log(price) - oof`` are computed;
2. a small LightGBM *spread model* learns ``sigma(x) ≈ E|r|`` from the same features, so the
   range is narrow where the model is usually right and wide where it is not. It is cross-fitted:
   each row's ``sigma`` comes from a spread model that did not see that row's residual;
3. the signed normalised scores ``r / sigma(x)`` are kept, sorted;
4. at level ``L`` the range is ``exp(log_median + [lo_L, hi_L] · sigma(x))``: of the misses
   ``1 - L`` allowed, a share ``b`` falls below the range and ``1 - b`` above, so ``lo_L`` is the
   ``floor((n + 1)(1 - L) b)``-th smallest score and ``hi_L`` the ``ceil((n + 1)(1 - (1 - L)
   (1 - b)))``-th (split-conformal's finite-sample rule on each side). The share ``b`` is the one
   of :data:`BELOW_SHARES` that gives the calibration rows' typical sigma the narrowest range *in
   price*: a log-price range of a given length is narrower in BRL lower down, so the range is
   usually shifted down a little (more of its misses are above it). It is then widened if need
   be so that it contains the point estimate (which includes the output ``scale`` factor).

Any level from :data:`MIN_LEVEL` to :data:`MAX_LEVEL` is answered from the stored scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from imovsp.bounds import MAX_LEVEL, MIN_LEVEL
from imovsp.features import CATEGORICAL, FEATURES

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
# Each row's sigma comes from a spread model fitted on the other 9/10 of the rows: closer to the
# final spread model (fitted on all of them) whose sigmas the stored scores are applied to than
# with 4 folds. 10 folds scored rent 80% ranges 0.1 points narrower by nested CV on the helper's
# out-of-fold rows and 0.2-0.4 narrower on the test splits (docs/benchmarks.md).
SPREAD_FOLDS = 10
# sigma is never below this share of the median cross-fitted sigma, so that a row the spread
# model finds unusually easy still gets a range of sensible width.
FLOOR_SHARE = 0.25
EPS = 1e-9
MAX_REMEMBERED_LEVELS = 256
# Candidate shares of the misses that fall below the range (see the module doc).
BELOW_SHARES = tuple(round(b, 2) for b in np.arange(0.1, 0.91, 0.05))


def check_level(level: float) -> float:
    """``level`` as a float, or ``ValueError`` if it is outside what the ranges support."""
    if not (isinstance(level, int | float) and MIN_LEVEL <= level <= MAX_LEVEL):
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, not {level!r}")
    return float(level)


def signed_quantiles(scores: np.ndarray, level: float, below: float) -> tuple[float, float]:
    """The low and high ends, among the sorted signed ``scores``, of a range that misses at most
    ``(1 - level) below`` of new scores below it and ``(1 - level)(1 - below)`` above it (the
    finite-sample ranks, clamped to the smallest and the largest score)."""
    n, miss = len(scores), 1.0 - level
    # The ranks are whole numbers spoilt by rounding (100 * 0.2 * 0.25 = 4.999...): EPS puts
    # them back before they are rounded down and up.
    low_rank = max(math.floor((n + 1) * miss * below + EPS), 1)
    high_rank = min(math.ceil((n + 1) * (1.0 - miss * (1.0 - below)) - EPS), n)
    return float(scores[low_rank - 1]), float(scores[high_rank - 1])


# A calibration class needs at least this many rows for scores of its own (the 95% range's
# ends are the 2.5% and 97.5% ranks); a class with fewer uses the pooled scores of all rows.
MIN_CLASS_ROWS = 200


@dataclass
class ClassScores:
    """One calibration class's sorted signed scores ``r / sigma`` and median sigma."""

    scores: np.ndarray
    typical_sigma: float


@dataclass
class Calibration:
    """What one negotiation type's ranges need: the spread model and the sorted scores, pooled
    and per calibration class (Mondrian conformal: rows that gave the same groups of fields,
    see :func:`imovsp.features.pattern_class`, are calibrated on their own)."""

    spread: lgb.Booster
    scores: np.ndarray  # sorted r / sigma of all the calibration rows
    floor: float  # the smallest sigma ever used
    # The calibration rows' median sigma, which chooses how the misses are shared between the
    # two sides.
    typical_sigma: float
    classes: dict[int, ClassScores] = field(default_factory=dict)
    _ends: dict[tuple[int, float], tuple[float, float]] = field(default_factory=dict, repr=False)

    def arrays(self, negotiation: str) -> dict[str, np.ndarray]:
        """The scores as the artifact keeps them: the pooled ones, and each class's one after
        another with the classes' counts and typical sigmas (the spread model and the floors
        are saved apart)."""
        klasses = sorted(self.classes)
        return {
            f"{negotiation}_range_signed_scores": self.scores,
            f"{negotiation}_range_classes": np.array(
                [[k, len(self.classes[k].scores)] for k in klasses], dtype=np.int64
            ).reshape(-1, 2),
            f"{negotiation}_range_class_scores": np.concatenate(
                [self.classes[k].scores for k in klasses] or [np.empty(0)]
            ),
            f"{negotiation}_range_class_sigma": np.array(
                [self.classes[k].typical_sigma for k in klasses], dtype=float
            ),
        }

    @classmethod
    def from_state(
        cls,
        spread: lgb.Booster,
        meta: dict[str, Any],
        arrays: Mapping[str, np.ndarray],
        negotiation: str,
    ) -> Calibration:
        """The calibration of ``negotiation`` as saved (:meth:`arrays`, and the artifact's
        ``ranges`` metadata for the floor and typical sigma)."""
        table = np.asarray(arrays[f"{negotiation}_range_classes"], dtype=np.int64).reshape(-1, 2)
        scores = np.asarray(arrays[f"{negotiation}_range_class_scores"], dtype=float)
        sigmas = np.asarray(arrays[f"{negotiation}_range_class_sigma"], dtype=float)
        if int(table[:, 1].sum()) != len(scores) or len(sigmas) != len(table):
            raise ValueError(f"the {negotiation} range classes do not match their scores")
        ends = np.cumsum(table[:, 1])
        classes = {
            int(k): ClassScores(scores[end - count : end], float(sigma))
            for (k, count), end, sigma in zip(table.tolist(), ends.tolist(), sigmas, strict=True)
        }
        return cls(
            spread,
            np.asarray(arrays[f"{negotiation}_range_signed_scores"], dtype=float),
            float(meta["sigma_floor"][negotiation]),
            float(meta["typical_sigma"][negotiation]),
            classes,
        )

    def sigma(self, x: np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        predicted = self.spread.predict(x, num_threads=num_threads)
        return np.asarray(np.maximum(np.asarray(predicted, dtype=float), self.floor), dtype=float)

    def of_class(self, klass: int) -> ClassScores:
        """The scores that class ``klass`` is calibrated on (the pooled ones if it has none)."""
        found = self.classes.get(klass)
        return found if found is not None else ClassScores(self.scores, self.typical_sigma)

    def ends(self, level: float, klass: int = -1) -> tuple[float, float]:
        """The range at ``level`` in units of sigma around the log median, ``(lo, hi)``, for
        calibration class ``klass`` (-1: the pooled scores)."""
        key = (klass, level)
        found = self._ends.get(key)
        if found is None:
            found = self._choose_ends(check_level(level), klass)  # ~0.1 ms, then remembered
            if len(self._ends) >= MAX_REMEMBERED_LEVELS:  # callers choose levels: stay bounded
                self._ends.clear()
            self._ends[key] = found
        return found

    def _choose_ends(self, level: float, klass: int) -> tuple[float, float]:
        chosen = self.of_class(klass)
        s = chosen.typical_sigma
        candidates = [signed_quantiles(chosen.scores, level, b) for b in BELOW_SHARES]
        return min(candidates, key=lambda e: math.exp(s * e[1]) - math.exp(s * e[0]))

    def bounds(
        self,
        log_median: np.ndarray,
        sigma: np.ndarray,
        price: np.ndarray,
        level: float,
        klass: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Low and high prices at ``level``, for the model's (unscaled) ``log_median``, its
        ``sigma``, the point estimate ``price`` and each row's calibration ``klass``."""
        klass = np.full(len(log_median), -1) if klass is None else np.asarray(klass)
        lo, hi = np.empty(len(log_median)), np.empty(len(log_median))
        for k in np.unique(klass):
            m = klass == k
            lo[m], hi[m] = self.ends(level, int(k))
        low = np.minimum(np.exp(log_median + lo * sigma), price)
        high = np.maximum(np.exp(log_median + hi * sigma), price)
        return low, high

    def bounds_one(
        self, log_median: float, spread: float, price: float, level: float, klass: int = -1
    ) -> tuple[float, float]:
        """:meth:`bounds` of one property from its raw ``spread`` model output, without
        building arrays (their overhead is most of the cost for one value)."""
        lo, hi = self.ends(level, klass)
        sigma = max(spread, self.floor)
        low = math.exp(log_median + lo * sigma)
        high = math.exp(log_median + hi * sigma)
        return min(low, price), max(high, price)

    def width(self, sigma: float, level: float, klass: int) -> float:
        """The range's width at ``level`` relative to its centre ``exp(log_median)`` for a row
        of ``sigma`` in class ``klass``."""
        lo, hi = self.ends(level, klass)
        return math.exp(hi * sigma) - math.exp(lo * sigma)

    def width_if(self, sigma: float, level: float, klass: int, other: int) -> float:
        """What :meth:`width` would be in class ``other`` (the row with more fields given): its
        sigma scaled as the two classes' typical sigmas."""
        ratio = self.of_class(other).typical_sigma / self.of_class(klass).typical_sigma
        return self.width(max(sigma * ratio, self.floor), level, other)

    def summary(self) -> dict[str, Any]:
        lo80, hi80 = self.ends(0.8)
        lo90, hi90 = self.ends(0.9)
        return {
            "calibration_rows": len(self.scores),
            "sigma_floor": round(self.floor, 5),
            "typical_sigma": round(self.typical_sigma, 5),
            "ends80": [round(lo80, 4), round(hi80, 4)],
            "ends90": [round(lo90, 4), round(hi90, 4)],
            "classes": {
                str(k): {"rows": len(c.scores), "typical_sigma": round(c.typical_sigma, 5)}
                for k, c in sorted(self.classes.items())
            },
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


def listing_folds(listing: np.ndarray, *, folds: int, seed: int) -> list[tuple[Any, Any]]:
    """K-fold splits of rows that keep every copy of a listing in the same fold (a masked copy
    in the fitting rows would tell the model the price of its held-out original)."""
    from sklearn.model_selection import KFold  # as in imovsp.training: not for servers

    ids = np.unique(listing)
    out = []
    for _, held_ids in KFold(folds, shuffle=True, random_state=seed).split(ids):
        held = np.isin(listing, ids[held_ids])
        out.append((np.flatnonzero(~held), np.flatnonzero(held)))
    return out


def calibrate(
    x: np.ndarray,
    log_price: np.ndarray,
    oof: np.ndarray,
    *,
    seed: int,
    folds: int = SPREAD_FOLDS,
    listing: np.ndarray | None = None,
    klass: np.ndarray | None = None,
) -> Calibration:
    """Fit the spread model and the conformal scores from out-of-fold predictions ``oof`` of
    rows with features ``x`` and actual ``log_price`` (see the module doc). Rows that are
    copies of one ``listing`` are cross-fitted together; ``klass`` gives each row's
    calibration class (see :class:`Calibration`)."""
    listing = np.arange(len(x)) if listing is None else listing
    residual = log_price - oof
    size = np.abs(residual)
    sigma = np.empty(len(residual))
    for fit_rows, held in listing_folds(listing, folds=folds, seed=seed):
        model = _fit_spread(x[fit_rows], size[fit_rows], seed)
        sigma[held] = model.predict(x[held])
    typical = float(np.median(sigma))
    floor = FLOOR_SHARE * typical
    sigma = np.maximum(sigma, floor)
    normalised = residual / sigma
    classes = {}
    if klass is not None:
        for k in np.unique(klass):
            m = klass == k
            if m.sum() >= MIN_CLASS_ROWS:
                classes[int(k)] = ClassScores(np.sort(normalised[m]), float(np.median(sigma[m])))
    return Calibration(_fit_spread(x, size, seed), np.sort(normalised), floor, typical, classes)


def range_metrics(
    actual: np.ndarray,
    log_median: np.ndarray,
    sigma: np.ndarray,
    price: np.ndarray,
    calibration: Calibration,
    levels: tuple[float, ...] = LEVELS,
    klass: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Empirical coverage (%) and median width ``(high - low) / price`` (%) at each level."""
    out = {}
    for level in levels:
        low, high = calibration.bounds(log_median, sigma, price, level, klass)
        out[f"{level:.2f}"] = {
            "coverage": round(100 * float(np.mean((actual >= low) & (actual <= high))), 1),
            "median_width": round(100 * float(np.median((high - low) / price)), 1),
        }
    return out
