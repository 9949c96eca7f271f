"""The official geography: which district a point is in, how far from a named one, names."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pytest

from imovsp.geo import NEIGHBOURHOODS, geography

# Points well inside a district (its landmark), checked on the city's own map.
LANDMARKS = [
    ("Largo da Batata", -23.5668, -46.6932, "PINHEIROS"),
    ("Praça da Sé", -23.5503, -46.6340, "SE"),
    ("Estádio do Morumbi", -23.6003, -46.7200, "MORUMBI"),
    ("M'Boi Mirim, Jardim Ângela", -23.7050, -46.7750, "JARDIM ANGELA"),
    ("Arena Corinthians", -23.5453, -46.4742, "ITAQUERA"),
    ("Parque Estadual da Serra do Mar, Marsilac", -23.9000, -46.7000, "MARSILAC"),
]


def test_96_districts_each_with_a_readable_name() -> None:
    districts = geography().districts
    assert len(districts) == 96
    assert len({d.official for d in districts}) == 96
    jardim = geography().by_official["JARDIM ANGELA"]
    assert (jardim.name, jardim.model) == ("Jardim Ângela", "Jardim Ângela")
    assert [d.official for d in districts if not d.model] == ["JAGUARA", "MARSILAC", "PARELHEIROS"]


@pytest.mark.parametrize(
    ("place", "lat", "lon", "official"), LANDMARKS, ids=[x[0] for x in LANDMARKS]
)
def test_landmark_lies_in_its_district(place: str, lat: float, lon: float, official: str) -> None:
    found = geography().district_at(lat, lon)
    assert found is not None, place
    assert found.official == official


def test_points_outside_the_city_are_in_no_district() -> None:
    assert geography().district_at(-23.45, -46.30) is None  # Guarulhos' east, outside
    assert geography().district_at(-22.90, -43.20) is None  # Rio de Janeiro
    assert geography().locate([-23.5668, -23.45], [-46.6932, -46.30])[1] == -1


def test_many_points_locate_as_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(-23.9, -23.4, 300), rng.uniform(-46.8, -46.4, 300)
    together = geography().locate(lat, lon)
    alone = [geography().locate(a, b)[0] for a, b in zip(lat, lon, strict=True)]
    assert together == alone
    assert sum(i >= 0 for i in together) > 100  # most of the box is city


def test_one_point_finds_what_many_points_find() -> None:
    """district_at and distance_km take a shortcut for one point (a valuation's): the same
    district, and the same distance to the bit, as the points taken together."""
    geo = geography()
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(-23.9, -23.4, 400), rng.uniform(-46.8, -46.4, 400)
    located = geo.locate(lat, lon)
    at = [geo.district_at(a, b) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
    assert [geo.districts.index(d) if d else -1 for d in at] == located
    for name in ("Pinheiros", "Brooklin", "Jardim Ângela", "Santana"):
        together = geo.distance_km(lat, lon, name)
        alone = [geo.distance_km(a, b, name)[0] for a, b in zip(lat, lon, strict=True)]
        assert together.tolist() == alone
        assert (together == 0).any()
        assert (together > 0).any()


def test_distance_is_zero_inside_and_grows_away_from_the_district() -> None:
    geo = geography()
    assert geo.distance_km(-23.5668, -46.6932, "Pinheiros")[0] == 0.0
    # Praça da Sé is ~4 km east of Pinheiros' eastern edge, Itaquera's arena ~22 km.
    se = geo.distance_km(-23.5503, -46.6340, "Pinheiros")[0]
    arena = geo.distance_km(-23.5453, -46.4742, "Pinheiros")[0]
    assert 2.0 < se < 6.0
    assert 18.0 < arena < 26.0
    # Jardim Ângela's median listing lies in the east zone, far from the district.
    assert geo.distance_km(-23.5453, -46.4742, "Jardim Ângela")[0] > 20.0


def test_model_names_stand_for_official_districts() -> None:
    geo = geography()
    assert [d.official for d in geo.official_of("Guaianazes")] == ["GUAIANASES"]
    assert [d.official for d in geo.official_of("Medeiros")] == ["VILA MEDEIROS"]
    assert [d.official for d in geo.official_of("Vila Olimpia")] == ["ITAIM BIBI"]
    assert geo.official_of("Atlantis") == ()
    assert np.isnan(geo.distance_km(-23.56, -46.69, "Atlantis")[0])
    # A neighbourhood is near wherever any of its districts is.
    assert geo.distance_km(-23.6200, -46.6700, "Brooklin")[0] == 0.0  # Campo Belo


def test_every_model_district_of_the_package_has_an_official_place() -> None:
    text = resources.files("imovsp").joinpath("districts.csv").read_text(encoding="utf-8")
    names = [r["district"] for r in csv.DictReader(text.splitlines())]
    missing = [n for n in names if not geography().official_of(n)]
    assert missing == []
    assert set(NEIGHBOURHOODS) <= set(names)


def test_nearest_station_and_leaving_stations_out() -> None:
    geo = geography()
    se = geo.nearest_station_km(-23.5503, -46.6340)[0]
    assert se < 0.3  # Sé station is under the square
    without = geo.nearest_station_km(-23.5503, -46.6340, skip={"Sé"})[0]
    assert without > se


def test_every_district_has_a_point_inside_it() -> None:
    geo = geography()
    for district in geo.districts:
        lat, lon = district.inside_point()
        assert geo.district_at(lat, lon) is district, district.official


def test_centre_is_where_the_districts_own_listings_are_or_inside_it() -> None:
    geo = geography()
    east_zone = ([-23.5453, -23.5460, -23.5449, -23.5470, -23.5455], [-46.4742] * 5)
    # Jardim Ângela's listings all lie in the east zone: the official district's own centre.
    lat, lon = geo.centre("Jardim Ângela", *east_zone) or (0.0, 0.0)
    assert geo.district_at(lat, lon).official == "JARDIM ANGELA"  # type: ignore[union-attr]
    # Pinheiros with five listings near Largo da Batata and one far off: the median of all.
    lats = [-23.5668, -23.5670, -23.5665, -23.5672, -23.5661, -23.5453]
    lons = [-46.6932, -46.6930, -46.6935, -46.6929, -46.6940, -46.4742]
    assert geo.centre("Pinheiros", lats, lons) == (np.median(lats), np.median(lons))
    # Five in it and six in the east zone: the median of all lies between, of those in it.
    far_lats, far_lons = lats + [-23.5453] * 5, lons + [-46.4742] * 5
    assert geo.centre("Pinheiros", far_lats, far_lons) == (np.median(lats[:5]), -46.6932)
    # Fewer than five in it (or none, or no coordinates): the official centre.
    inside = geo.centre("Pinheiros", far_lats[:2] + far_lats[6:], far_lons[:2] + far_lons[6:])
    assert inside == geo.centre("Pinheiros") == geo.centre("Pinheiros", [np.nan], [np.nan])
    assert geo.district_at(*inside).official == "PINHEIROS"  # type: ignore[misc,union-attr]
    assert geo.centre("Atlantis") is None


def test_one_point_is_inside_exactly_when_the_ray_cast_of_many_says_so() -> None:
    # District.holds is contains() for one point without numpy: the same answer for points
    # all over each district's box, on its vertices and on the middles of its edges.
    rng = np.random.default_rng(11)
    for d in geography().districts:
        lon_min, lat_min, lon_max, lat_max = d.box
        middles = (d.ring[:-1] + d.ring[1:]) / 2
        lat = np.concatenate(
            [rng.uniform(lat_min - 0.01, lat_max + 0.01, 400), d.ring[:, 1], middles[:, 1]]
        )
        lon = np.concatenate(
            [rng.uniform(lon_min - 0.01, lon_max + 0.01, 400), d.ring[:, 0], middles[:, 0]]
        )
        one_by_one = [d.holds(a, b) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
        assert one_by_one == d.contains(lat, lon).tolist(), d.official
