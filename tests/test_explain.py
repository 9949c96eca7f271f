"""Reasons: grouped TreeSHAP effects that, with the baseline, give back the price."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from imovsp import explain, training
from imovsp.features import FEATURES, ROTATED, Property
from imovsp.valuer import Valuer

FLAT = Property(
    "sale",
    "Pinheiros",
    95,
    3,
    2,
    1,
    2,
    condo_fee=900,
    elevator=True,
    latitude=-23.565,
    longitude=-46.69,
)


@pytest.mark.parametrize(
    "flat", [FLAT, replace(FLAT, negotiation="rent"), replace(FLAT, latitude=None, longitude=None)]
)
def test_baseline_and_reasons_add_up_to_the_price(valuer: Valuer, flat: Property) -> None:
    valuation = valuer.value(flat, explain=True)
    assert valuation.reasons is not None
    assert valuation.baseline is not None
    in_brl = valuation.baseline + sum(r.effect_brl for r in valuation.reasons)
    assert in_brl == pytest.approx(valuation.price, rel=1e-9)
    factors = math.prod(1 + r.effect_pct / 100 for r in valuation.reasons)
    assert valuation.baseline * factors == pytest.approx(valuation.price, rel=1e-9)
    # A valuation without reasons has the same price.
    assert valuer.value(flat).price == valuation.price
    assert valuer.value(flat).reasons is None


@pytest.mark.parametrize("negotiation", ["sale", "rent"])
def test_the_baseline_is_the_typical_apartments_price(
    valuer: Valuer, trained: training.TrainResult, negotiation: str
) -> None:
    # The per-area member learns log price per m²; its log size must go to the size reason
    # and the training rows' mean log size to the bias, or the baseline is off by ~70 m² times.
    valuation = valuer.value(replace(FLAT, negotiation=negotiation), explain=True)
    assert valuation.baseline is not None
    bias = math.log(valuation.baseline / valuer.scale[negotiation])
    _, prices = trained.oof[negotiation]
    assert bias == pytest.approx(float(np.mean(np.log(prices))), abs=0.05)


def test_reasons_read_as_a_person_would_say_them(valuer: Valuer) -> None:
    valuation = valuer.value(FLAT, explain=True)
    assert valuation.reasons is not None
    names = [r.feature for r in valuation.reasons]
    assert names.count("location") == 1
    assert not {"x_km", "district", "nn5_log_price_m2", "condo_per_m2"} & set(names)
    assert len(names) == len(set(names)) == len(explain.GROUPS)
    effects = [abs(r.effect_brl) for r in valuation.reasons]
    sizes = [abs(math.log1p(r.effect_pct / 100)) for r in valuation.reasons]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    assert effects[0] > 0
    values = {r.feature: r.value for r in valuation.reasons}
    assert values["size_m2"] == "95 m²"
    assert values["condo_fee"] == "R$ 900/month"
    assert values["elevator"] == "yes"
    assert values["location"].startswith("Pinheiros (")


def test_every_feature_belongs_to_one_group() -> None:
    groups = {f: explain.group_of(f) for f in FEATURES}
    location = {f for f, g in groups.items() if g == "location"}
    coordinates = {"district", "x_km", "y_km", "location_estimated", *ROTATED}
    assert coordinates | {"similar1_distance"} <= location
    assert all(f.startswith(("nn", "similar", "other_nn")) for f in location - coordinates)
    assert groups["condo_per_m2"] == groups["condo_fee"] == "condo_fee"
    assert groups["size_m2"] == "size_m2"


def test_effects_telescope_from_the_baseline() -> None:
    log_effects = {"a": 0.1, "b": -0.3, "c": 0.02}
    out = explain.effects(1000.0, log_effects)
    assert [g for g, _, _ in out] == ["b", "a", "c"]
    assert out[0][1] == pytest.approx(100 * (math.exp(-0.3) - 1))
    assert out[0][2] == pytest.approx(1000 * (math.exp(-0.3) - 1))
    total = 1000 + sum(brl for _, _, brl in out)
    assert total == pytest.approx(1000 * math.exp(sum(log_effects.values())))


def test_grouped_refuses_a_row_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="expected"):
        explain.grouped(np.zeros(3))
