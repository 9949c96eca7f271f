"""Price ranges: the conformal rule, adaptivity, and the coverage measured on the test split."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from imovsp import data, ranges, training
from imovsp.features import FEATURES, Property
from imovsp.valuer import Valuer


def test_signed_quantiles_take_the_finite_sample_rank_on_each_side() -> None:
    scores = np.arange(1.0, 100.0)  # 99 sorted scores, n + 1 = 100
    # 20% misses, a quarter below: the 5th smallest and the ceil(100 * 0.85) = 85th.
    assert ranges.signed_quantiles(scores, 0.8, 0.25) == (5.0, 85.0)
    assert ranges.signed_quantiles(scores, 0.8, 0.5) == (10.0, 90.0)
    assert ranges.signed_quantiles(scores[:9], 0.9, 0.5) == (1.0, 9.0)  # clamped to the ends


def test_signed_quantiles_miss_each_side_at_its_share() -> None:
    rng = np.random.default_rng(0)
    calibration = np.sort(rng.standard_t(4, 4000))
    fresh = rng.standard_t(4, 50_000)
    for level, below in ((0.8, 0.3), (0.9, 0.5), (0.5, 0.7)):
        lo, hi = ranges.signed_quantiles(calibration, level, below)
        assert abs(np.mean(fresh < lo) - (1 - level) * below) < 0.01, (level, below)
        assert abs(np.mean(fresh > hi) - (1 - level) * (1 - below)) < 0.01, (level, below)


def test_asymmetric_ends_are_narrower_in_price_at_the_same_coverage() -> None:
    """Symmetric log residuals: the chosen range sits a little low (fewer misses below than
    above), is narrower in price than the symmetric one, and still covers at the level."""
    rng = np.random.default_rng(2)
    sigma = 0.3
    scores = np.sort(rng.normal(size=5000))
    calibration = ranges.Calibration(spread=None, scores=scores, floor=0.01, typical_sigma=sigma)  # type: ignore[arg-type]
    fresh = rng.normal(size=50_000)
    for level in (0.8, 0.9):
        lo, hi = calibration.ends(level)
        assert hi < -lo  # shifted down
        sym_lo, sym_hi = ranges.signed_quantiles(scores, level, 0.5)
        width = np.exp(sigma * hi) - np.exp(sigma * lo)
        assert width < 0.99 * (np.exp(sigma * sym_hi) - np.exp(sigma * sym_lo))
        assert abs(np.mean((fresh >= lo) & (fresh <= hi)) - level) < 0.01


def test_remembered_levels_stay_bounded() -> None:
    calibration = ranges.Calibration(None, np.sort(np.arange(-50.0, 50.0)), 0.05, 0.2)  # type: ignore[arg-type]
    first = calibration.ends(0.8)
    for level in np.linspace(0.5, 0.95, 3 * ranges.MAX_REMEMBERED_LEVELS):
        calibration.ends(float(level))
    assert len(calibration._ends) <= ranges.MAX_REMEMBERED_LEVELS
    assert calibration.ends(0.8) == first


def test_single_row_bounds_match_the_array_bounds() -> None:
    rng = np.random.default_rng(3)
    calibration = ranges.Calibration(None, np.sort(rng.normal(size=500)), 0.05, 0.2)  # type: ignore[arg-type]
    log_median, spread, price = np.log(1000.0), np.array([0.01, 0.2, 0.6]), 960.0
    low, high = calibration.bounds(
        np.full(3, log_median), np.maximum(spread, 0.05), np.full(3, price), 0.85
    )
    for i in range(3):
        one = calibration.bounds_one(log_median, float(spread[i]), price, 0.85)
        assert one == pytest.approx((low[i], high[i]), rel=1e-12)


@pytest.mark.parametrize("level", [0.49, 0.951, 1, "0.8", None, float("nan")])
def test_levels_outside_the_supported_span_are_refused(level: object) -> None:
    with pytest.raises(ValueError, match=re.escape("level must be between 0.5 and 0.95")):
        ranges.check_level(level)  # type: ignore[arg-type]


def test_spread_model_widens_ranges_where_errors_are_larger() -> None:
    """Residuals twice as large for big flats: their ranges are wider, and both kinds of flat
    are covered at about the nominal level (a constant width would over- and under-cover)."""
    rng = np.random.default_rng(1)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        # Only size and district vary: how many other (noise) features there are is not what
        # this tests.
        x = np.zeros((n, len(FEATURES)))
        x[:, FEATURES.index("size_m2")] = rng.normal(size=n)
        x[:, FEATURES.index("district")] = rng.integers(0, 5, n)
        big = x[:, FEATURES.index("size_m2")] > 0
        return x, rng.normal(size=n) * np.where(big, 0.4, 0.1)

    x, residual = draw(3000)
    calibration = ranges.calibrate(x, residual, np.zeros(len(x)), seed=0)
    x_new, residual_new = draw(6000)
    sigma = calibration.sigma(x_new)
    big = x_new[:, FEATURES.index("size_m2")] > 0
    assert np.median(sigma[big]) > 2.5 * np.median(sigma[~big])
    zeros = np.zeros(len(x_new))
    low, high = calibration.bounds(zeros, sigma, np.ones(len(x_new)), 0.8)
    inside = (np.exp(residual_new) >= low) & (np.exp(residual_new) <= high)
    for group in (big, ~big):
        assert 0.75 < inside[group].mean() < 0.86


def test_ranges_contain_the_point_estimate_even_with_a_scale_factor() -> None:
    scores = np.array([-0.3, -0.2, -0.1, 0.1, 0.2, 0.3])
    calibration = ranges.Calibration(spread=None, scores=scores, floor=0.01, typical_sigma=0.2)  # type: ignore[arg-type]
    log_median = np.log(np.array([100.0, 100.0]))
    low, high = calibration.bounds(log_median, np.array([0.01, 0.5]), np.array([92.0, 92.0]), 0.5)
    assert low[0] == 92.0  # the scaled price lies below exp(log_median - q sigma): included
    assert high[0] > 100.0
    assert low[1] < 92.0 < high[1]


def test_training_measures_coverage_and_width_on_the_test_split(
    trained: training.TrainResult,
) -> None:
    measured = trained.metrics["ranges"]
    assert set(measured) == {"sale", "rent"}
    for n, per_level in measured.items():
        assert list(per_level) == [f"{level:.2f}" for level in ranges.LEVELS]
        coverage = [m["coverage"] for m in per_level.values()]
        widths = [m["median_width"] for m in per_level.values()]
        assert widths == sorted(widths), n
        # ~190 test rows per type: allow for sampling noise around the nominal level.
        assert 65 <= per_level["0.80"]["coverage"] <= 92, (n, coverage)
        assert per_level["0.95"]["coverage"] >= 80, (n, coverage)
    test = trained.test
    assert test is not None
    assert len(test) == trained.metrics["split"]["test_rows"]
    assert (
        (test["price_low"] <= test["predicted"]) & (test["predicted"] <= test["price_high"])
    ).all()


def test_range_frame_matches_valuing_one_by_one(valuer: Valuer, listings: pd.DataFrame) -> None:
    frame = data.validate(listings.head(12).astype(str), require_price=False).frame
    price, low, high = valuer.range_frame(frame, level=0.9)
    for i, (_, row) in enumerate(frame.iterrows()):
        prop = Property(
            negotiation=row[data.NEGOTIATION],
            district=row[data.DISTRICT],
            size_m2=float(row["Size"]),
            rooms=int(row["Rooms"]),
            toilets=int(row["Toilets"]),
            suites=int(row["Suites"]),
            parking=int(row["Parking"]),
            condo_fee=float(row["Condo"]),
            elevator=bool(row["Elevator"]),
            furnished=bool(row["Furnished"]),
            swimming_pool=bool(row["Swimming Pool"]),
            new=bool(row["New"]),
            latitude=None if np.isnan(row[data.LATITUDE]) else float(row[data.LATITUDE]),
            longitude=None if np.isnan(row[data.LONGITUDE]) else float(row[data.LONGITUDE]),
        )
        one = valuer.value(prop, level=0.9)
        assert one.price == pytest.approx(price[i], rel=1e-9)
        assert one.price_low == pytest.approx(low[i], rel=1e-9)
        assert one.price_high == pytest.approx(high[i], rel=1e-9)


def test_value_refuses_a_level_outside_the_span(valuer: Valuer) -> None:
    flat = Property("sale", "Moema", 80, 2, 2, 1, 1)
    with pytest.raises(ValueError, match=re.escape("level must be between 0.5 and 0.95, not 0.99")):
        valuer.value(flat, level=0.99)
