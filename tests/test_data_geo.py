"""The data report counts listings whose coordinates lie outside the district they name."""

from __future__ import annotations

import pandas as pd

from imovsp import data
from imovsp.synthetic import synthetic_listings

# (District, Latitude, Longitude) and where that point is against the district named.
PLACES = [
    ("Pinheiros/São Paulo", "-23.5668", "-46.6932"),  # Largo da Batata: inside
    ("Brooklin/São Paulo", "-23.6200", "-46.6700"),  # Campo Belo, where Brooklin lies: inside
    ("Pinheiros/São Paulo", "-23.5503", "-46.6340"),  # Praça da Sé: ~4 km east of Pinheiros
    ("Jardim Ângela/São Paulo", "-23.5453", "-46.4742"),  # Itaquera: > 20 km away
    ("Santana/São Paulo", "0", "0"),  # no coordinates: not counted
    ("Atlantis/São Paulo", "-23.5668", "-46.6932"),  # a name the city's map does not have
]


def listings() -> pd.DataFrame:
    frame = synthetic_listings(len(PLACES), seed=1, quirks=False).astype(str)
    frame[["District", "Latitude", "Longitude"]] = PLACES
    return frame


def test_training_data_report_counts_listings_outside_their_district_by_distance() -> None:
    report = data.prepare_training(listings()).report
    assert report.outside_district == {
        "inside": 2,
        "within 1 km outside": 0,
        "1-3 km outside": 0,
        "3-10 km outside": 1,
        "over 10 km outside": 1,
        "district not on the city's map": 1,
    }
    assert "2 inside, 0 within 1 km outside" in report.summary()
    assert report.to_dict()["outside_district"]["over 10 km outside"] == 1


def test_scoring_validation_does_not_spend_time_on_the_count() -> None:
    assert data.validate(listings(), require_price=False).report.outside_district == {}
