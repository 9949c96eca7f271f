"""Model-behaviour tests: the model orders prices the way the market does.

Run on the synthetic model (always) and on a model trained on the real file (when present).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imovsp import data, training
from imovsp.features import Property
from imovsp.valuer import Valuer

BASE = Property("sale", "Vila Mariana", 80, 2, 2, 1, 1, condo_fee=700, elevator=True)


@pytest.fixture(scope="session")
def real_valuer(real_data: Path) -> Valuer:
    frame, report = data.load_training_data(real_data)
    result = training.train(frame, seed=42, compare_seed=False)
    return training.to_valuer(
        result, data_sha256=data.file_sha256(real_data), data_report=report, source=str(real_data)
    )


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)])
def model(request: pytest.FixtureRequest) -> Valuer:
    name = "valuer" if request.param == "synthetic" else "real_valuer"
    return request.getfixturevalue(name)


@pytest.mark.parametrize("negotiation", ["sale", "rent"])
def test_a_larger_apartment_in_the_same_place_is_not_cheaper(
    model: Valuer, negotiation: str
) -> None:
    prices = [
        model.predict_one(replace(BASE, negotiation=negotiation, size_m2=s))
        for s in (40, 60, 80, 110, 150, 220)
    ]
    assert prices == sorted(prices), prices
    assert prices[-1] > 2 * prices[0]


def test_a_sale_is_valued_far_above_a_rent(model: Valuer) -> None:
    sale = model.predict_one(BASE)
    rent = model.predict_one(replace(BASE, negotiation="rent"))
    assert 60 < sale / rent < 600  # São Paulo: roughly 100-300 months of rent
    assert 100_000 < sale < 3_000_000
    assert 800 < rent < 15_000


@pytest.mark.parametrize("negotiation", ["sale", "rent"])
@pytest.mark.parametrize("central", ["Jardim Paulista", "Pinheiros", "Moema"])
@pytest.mark.parametrize("peripheral", ["Cidade Tiradentes", "Lajeado"])
def test_a_central_district_is_valued_above_a_peripheral_one(
    model: Valuer, negotiation: str, central: str, peripheral: str
) -> None:
    flat = replace(BASE, negotiation=negotiation)
    assert model.predict_one(replace(flat, district=central)) > 1.3 * model.predict_one(
        replace(flat, district=peripheral)
    )


def test_spelling_of_the_district_does_not_move_the_price(model: Valuer) -> None:
    a = model.predict_one(replace(BASE, district="Vila Mariana"))
    b = model.predict_one(replace(BASE, district="VILA MARIANA/São Paulo"))
    assert a == b


@pytest.mark.parametrize("negotiation", ["sale", "rent"])
def test_the_range_contains_the_price_and_widens_with_the_level(
    model: Valuer, negotiation: str
) -> None:
    flat = replace(BASE, negotiation=negotiation)
    widths = []
    for level in (0.5, 0.8, 0.9, 0.95):
        v = model.value(flat, level=level)
        assert v.price_low is not None
        assert v.price_high is not None
        assert v.price_low <= v.price <= v.price_high
        assert v.price_low < v.price_high
        widths.append(v.price_high - v.price_low)
    assert widths == sorted(widths)
    assert widths[0] < widths[-1]


def test_ranges_adapt_to_the_property(model: Valuer) -> None:
    """Not one constant ratio for everything: relative widths differ between flats."""
    flats = [
        replace(BASE, size_m2=s, district=d)
        for s in (35, 80, 300)
        for d in ("Moema", "Lajeado", "Vila Mariana")
    ]
    ratios = []
    for flat in flats:
        v = model.value(flat)
        assert v.price_low is not None
        assert v.price_high is not None
        ratios.append((v.price_high - v.price_low) / v.price)
    assert max(ratios) > 1.15 * min(ratios), ratios
