"""The city's map on the valuation page: the 96 official districts as SVG paths, drawn here
from the package's GeoJSON (``imovsp.geo``), so the page needs no tiles and fetches nothing.

Each district's shape says which district it is (``data-district``, the name people read),
its official name, and the served model's name for it (``data-model``; empty where the model
has no listings, and then ``data-nearest`` names the nearest district it has). The page's
script turns a click into coordinates with :func:`projection`'s numbers.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from imovsp.geo import CENTRE_LAT, District, geography

WIDTH = 600  # SVG user units across the city (east-west)
MARGIN = 4
DIGITS = 1  # decimals of the path coordinates: 0.1 unit is ~8 m on the ground


@dataclass(frozen=True, slots=True)
class Shape:
    official: str
    name: str
    model: str  # the served model's name for the district, "" where it has none
    nearest: str  # where model is "": the nearest district the model has
    path: str  # SVG path data


@dataclass(frozen=True, slots=True)
class CityMap:
    width: int
    height: int
    shapes: tuple[Shape, ...]
    projection: dict[str, float]
    places: dict[str, list[str]]  # model's name → the official districts it stands for


def projection() -> dict[str, float]:
    """Longitude, latitude ↔ SVG x, y (equirectangular about the city's latitude, north up):
    ``x = (lon - lon0) * kx``, ``y = (lat0 - lat) * ky``."""
    rings = np.vstack([d.ring for d in geography().districts])
    lon0, lat0 = float(rings[:, 0].min()), float(rings[:, 1].max())
    span = float(rings[:, 0].max()) - lon0
    kx = (WIDTH - 2 * MARGIN) / span
    ky = kx / math.cos(math.radians(CENTRE_LAT))
    return {
        "lon0": lon0 - MARGIN / kx,
        "lat0": lat0 + MARGIN / ky,
        "kx": kx,
        "ky": ky,
        "height": round((lat0 - float(rings[:, 1].min())) * ky + 2 * MARGIN),
    }


def _path(district: District, p: dict[str, float]) -> str:
    x = (district.ring[:-1, 0] - p["lon0"]) * p["kx"]
    y = (p["lat0"] - district.ring[:-1, 1]) * p["ky"]
    points = [f"{a:.{DIGITS}f} {b:.{DIGITS}f}" for a, b in zip(x, y, strict=True)]
    # Drop a vertex that rounds onto the one before it: it draws nothing.
    kept = [pt for i, pt in enumerate(points) if i == 0 or pt != points[i - 1]]
    return "M" + "L".join(kept) + "Z"


def _nearest(district: District, known: Collection[str]) -> str:
    """The model's district nearest to ``district`` (from a point inside it)."""
    geo = geography()
    inside = district.ring[:-1].mean(axis=0)
    lon, lat = float(inside[0]), float(inside[1])
    if geo.district_at(lat, lon) is not district:  # a concave district: use a vertex instead
        lon, lat = (float(v) for v in district.ring[0])
    gaps = {name: float(geo.distance_km(lat, lon, name)[0]) for name in known}
    gaps = {n: g for n, g in gaps.items() if not math.isnan(g)}
    return min(gaps, key=lambda n: gaps[n]) if gaps else ""


@lru_cache(maxsize=8)
def city_map(known: frozenset[str]) -> CityMap:
    """The map for a model that knows the districts ``known`` (by its names)."""
    geo = geography()
    p = projection()
    shapes = []
    for d in sorted(geo.districts, key=lambda d: d.official):
        model = d.model if d.model in known else ""
        nearest = "" if model else _nearest(d, known)
        shapes.append(Shape(d.official, d.name, model, nearest, _path(d, p)))
    places = {name: [d.official for d in geo.official_of(name)] for name in sorted(known)}
    return CityMap(
        width=WIDTH,
        height=int(p["height"]),
        shapes=tuple(shapes),
        projection={k: p[k] for k in ("lon0", "lat0", "kx", "ky")},
        places={n: o for n, o in places.items() if o},
    )


def map_config(city: CityMap) -> dict[str, Any]:
    """What the page's script needs: the projection and what each model's name stands for."""
    return {**city.projection, "places": city.places}
