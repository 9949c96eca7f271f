"""Comparables: the most similar training listings of the same kind, kept as plain arrays."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from imovsp import comparables, data
from imovsp.features import Property, project
from imovsp.valuer import Valuer

FLAT = Property("rent", "Moema", 70, 2, 2, 1, 1, latitude=-23.60, longitude=-46.665)


def test_comparables_are_listings_of_the_same_kind_with_their_facts(valuer: Valuer) -> None:
    found = valuer.value(FLAT, comparables=8).comparables
    assert found is not None
    assert len(found) == 8
    rents = valuer.listings["rent"].column("price")
    for c in found:
        assert c.price in rents  # a rent listing, not a sale
        assert c.price_m2 == pytest.approx(c.price / c.size_m2)
        xy = project(np.array([c.latitude, FLAT.latitude]), np.array([c.longitude, FLAT.longitude]))
        assert c.distance_km == pytest.approx(float(np.hypot(*(xy[0] - xy[1]))))
    # Similar in size too: the comparables' median size is near the flat's.
    assert 50 <= np.median([c.size_m2 for c in found]) <= 100
    assert np.median([c.distance_km for c in found]) < 3


def test_a_training_listing_finds_itself_first(valuer: Valuer, listings: pd.DataFrame) -> None:
    frame = data.prepare_training(listings.astype(str)).frame
    row = frame.dropna(subset=[data.LATITUDE]).iloc[5]
    prop = Property(
        row[data.NEGOTIATION],
        row[data.DISTRICT],
        float(row["Size"]),
        int(row["Rooms"]),
        int(row["Toilets"]),
        int(row["Suites"]),
        int(row["Parking"]),
        condo_fee=float(row["Condo"]) or None,
        elevator=bool(row["Elevator"]),
        furnished=bool(row["Furnished"]),
        swimming_pool=bool(row["Swimming Pool"]),
        new=bool(row["New"]),
        latitude=float(row[data.LATITUDE]),
        longitude=float(row[data.LONGITUDE]),
    )
    (first,) = valuer.value(prop, comparables=1).comparables or ()
    assert first.price == row[data.PRICE]
    assert first.distance_km == pytest.approx(0.0, abs=1e-9)
    assert first.district == row[data.DISTRICT]


def test_no_comparables_unless_asked(valuer: Valuer) -> None:
    assert valuer.value(FLAT).comparables is None


@pytest.mark.parametrize("k", [21, -1, 2.5, True])
def test_comparables_count_is_checked(valuer: Valuer, k: object) -> None:
    with pytest.raises(
        ValueError, match=re.escape("comparables must be a whole number from 0 to 20")
    ):
        valuer.value(FLAT, comparables=k)  # type: ignore[arg-type]


def test_listings_without_a_location_are_not_comparables() -> None:
    frame = pd.DataFrame(
        {
            data.PRICE: [1000.0, 2000.0],
            "Condo": [0.0, 300.0],
            "Size": [50.0, 60.0],
            **{c: [1.0, 1.0] for c in data.COUNT_COLUMNS},
            **{c: [0.0, 1.0] for c in data.FLAG_COLUMNS},
            data.DISTRICT: ["Moema", "Moema"],
            data.NEGOTIATION: ["rent", "rent"],
            data.LATITUDE: [np.nan, -23.6],
            data.LONGITUDE: [np.nan, -46.66],
        }
    )
    index = comparables.fit(frame, {"Moema": 0})["rent"]
    assert index.column("price").tolist() == [2000.0]


def test_comparables_round_trip_through_the_artifact(valuer: Valuer, models_dir: object) -> None:
    assert valuer.path is not None
    with np.load(valuer.path / "arrays.npz", allow_pickle=False) as npz:
        table = npz["sale_comparables"]
    assert table.dtype == np.float64
    assert table.shape[1] == len(comparables.COLUMNS)
    again = Valuer.load(valuer.path)
    assert again.value(FLAT, comparables=5) == valuer.value(FLAT, comparables=5)
