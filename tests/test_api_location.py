"""The API says where a point is when it lies far outside the district named with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imovsp.api.schemas import ValuationOut
from imovsp.geo import FAR_KM, far_from_district, geography
from imovsp.server import create_app
from imovsp.settings import Settings

PINHEIROS = {"negotiation": "sale", "district": "Pinheiros", "size_m2": 70}
LARGO_DA_BATATA = {"latitude": -23.5668, "longitude": -46.6932}  # in Pinheiros
M_BOI_MIRIM = {"latitude": -23.7050, "longitude": -46.7750}  # in Jardim Ângela
NOTE = re.compile(
    r"^the coordinates \(-23\.70500, -46\.77500\) lie in Jardim Ângela, (\d+\.\d) km outside "
    r"Pinheiros; the valuation uses the point$"
)


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c


def notes(client: TestClient, body: dict[str, Any]) -> list[str]:
    response = client.post("/v1/valuations", json=body)
    assert response.status_code == 200, response.text
    return ValuationOut.model_validate(response.json()).notes


def test_point_far_outside_the_named_district_gets_a_note_saying_where_it_is(
    client: TestClient,
) -> None:
    found = notes(client, {**PINHEIROS, **M_BOI_MIRIM})
    assert len(found) == 1
    match = NOTE.match(found[0])
    assert match, found
    expected = geography().distance_km(-23.7050, -46.7750, "Pinheiros")[0]
    assert float(match.group(1)) == pytest.approx(expected, abs=0.05)
    assert expected > 10


def test_point_inside_the_named_district_or_no_point_gets_no_note(client: TestClient) -> None:
    assert notes(client, {**PINHEIROS, **LARGO_DA_BATATA}) == []
    assert notes(client, PINHEIROS) == []


def test_named_neighbourhood_is_near_the_districts_it_lies_in(client: TestClient) -> None:
    # Vila Madalena is a neighbourhood of the official district Pinheiros, not a district.
    assert notes(client, {**PINHEIROS, "district": "Vila Madalena", **LARGO_DA_BATATA}) == []


def test_only_the_far_item_of_a_batch_gets_the_note(client: TestClient) -> None:
    items = [{**PINHEIROS, **LARGO_DA_BATATA}, {**PINHEIROS, **M_BOI_MIRIM}]
    response = client.post("/v1/valuations/batch", json={"items": items})
    assert response.status_code == 200, response.text
    found = [item["valuation"]["notes"] for item in response.json()["items"]]
    assert found[0] == []
    assert len(found[1]) == 1
    assert NOTE.match(found[1][0])


def test_note_only_beyond_the_threshold() -> None:
    # Walk east from Largo da Batata, out of Pinheiros, until the edge is 1 km and then 3 km away.
    near = far = None
    for step in range(1, 400):
        lon = -46.6932 + step * 0.0005
        km = float(geography().distance_km(-23.5668, lon, "Pinheiros")[0])
        if near is None and 0.5 < km < FAR_KM:
            near = lon
        if km > FAR_KM + 0.5:
            far = lon
            break
    assert near is not None
    assert far is not None
    assert far_from_district(-23.5668, near, "Pinheiros") is None
    assert far_from_district(-23.5668, far, "Pinheiros") is not None
    assert far_from_district(None, None, "Pinheiros") is None
    assert far_from_district(-23.7050, -46.7750, "Atlantis") is None  # not on the city's map
