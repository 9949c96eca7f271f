"""The city's official geography: its 96 districts and its rail stations (``geodata/``).

Where a point is (which official district), how far a point lies from a district, the nearest
metro or train station, and the names: the listings' (and so the model's) district names are
not all the city's. ``geodata/district-names.csv`` maps each official district (``JARDIM
ANGELA``, as the city writes it) to the name people read (``Jardim Ângela``) and to the model's
name for it (``Guaianazes`` for GUAIANASES, ``Medeiros`` for VILA MEDEIROS, empty for the three
districts without listings). Three of the model's names are neighbourhoods inside official
districts (:data:`NEIGHBOURHOODS`). Sources and credits: ``geodata/README.md``.

Point in polygon is a ray cast in numpy: the polygons are 96 simple rings of 5,051 vertices in
all, so a bounding-box test then one ring answers a point in tens of microseconds, and the
module costs the server workers no library (shapely would add ~8 MB of GEOS on disk and its
import; see docs/benchmarks.md for the measurement).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]

NEAR_KM = 1.0  # a listing this near its district counts as in it, for the district's centre
MIN_NEAR_LISTINGS = 5  # fewer such listings than this: the official district's own centre

# Kilometres per degree around the city (equirectangular about its centre: at the city's
# scale, 60 km, the error is well under 1%).
CENTRE_LAT = -23.6
KM_PER_DEG_LAT = 110.57
KM_PER_DEG_LON = 111.32 * math.cos(math.radians(CENTRE_LAT))

# The model's names that are neighbourhoods, not districts, and the official districts they
# lie in (where the listings that name them are: Brooklin's straddle three districts).
NEIGHBOURHOODS: dict[str, tuple[str, ...]] = {
    "Brooklin": ("ITAIM BIBI", "CAMPO BELO", "SANTO AMARO"),
    "Vila Madalena": ("PINHEIROS", "ALTO DE PINHEIROS"),
    "Vila Olimpia": ("ITAIM BIBI",),
}


BANDS = 16  # horizontal bands of a district's box, for :meth:`District.holds`

Edge = tuple[float, float, float, float]  # x1, y1, x2, y2: longitude, latitude


@dataclass(frozen=True, slots=True)
class District:
    """One official district: its names and its boundary (a closed ring of lon, lat)."""

    official: str  # as the city writes it: "JARDIM ANGELA"
    name: str  # as people read it: "Jardim Ângela"
    model: str  # the model's name for it, "" where the listings have none
    ring: Floats = field(repr=False)  # (n, 2) longitude, latitude; first vertex == last
    box: tuple[float, float, float, float] = field(repr=False)  # lon_min, lat_min, lon_max, lat_max
    # The ring's edges by horizontal band of the box: those a ray from a point in the band
    # can cross (see :meth:`holds`).
    bands: tuple[tuple[Edge, ...], ...] = field(init=False, repr=False, compare=False)
    # The ring's edges in km (see :func:`_km`): starts, steps and squared lengths (1 for an
    # edge of length 0), for :meth:`distance_km`.
    edges_km: tuple[Floats, Floats, Floats, Floats, Floats] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        points = self.ring.tolist()
        edges = [(x1, y1, x2, y2) for (x1, y1), (x2, y2) in itertools.pairwise(points)]
        bands: list[list[Edge]] = [[] for _ in range(BANDS)]
        for edge in edges:
            _, y1, _, y2 = edge
            for b in range(self._band(min(y1, y2)), self._band(max(y1, y2)) + 1):
                bands[b].append(edge)
        object.__setattr__(self, "bands", tuple(tuple(b) for b in bands))
        rx, ry = _km(self.ring[:, 1], self.ring[:, 0])
        ax, ay, bx, by = rx[:-1], ry[:-1], rx[1:], ry[1:]
        dx, dy = bx - ax, by - ay
        length2 = np.where(dx * dx + dy * dy > 0, dx * dx + dy * dy, 1.0)
        object.__setattr__(self, "edges_km", (ax, ay, dx, dy, length2))

    def _band(self, lat: float) -> int:
        # Monotonic in lat (each step is), so an edge spanning a latitude is in its band.
        _, lat_min, _, lat_max = self.box
        if lat_max <= lat_min:
            return 0
        return min(BANDS - 1, max(0, int((lat - lat_min) * BANDS / (lat_max - lat_min))))

    def holds(self, lat: float, lon: float) -> bool:
        """Whether one point lies inside: :meth:`contains` for a single point, to the bit,
        in plain floats (numpy's cost per call is most of a one-point ray cast, and the
        location note asks this of every valuation with coordinates: docs/benchmarks.md,
        session 12). Only the edges of the point's band can span its latitude."""
        lon_min, lat_min, lon_max, lat_max = self.box
        if not (lon_min <= lon <= lon_max and lat_min <= lat <= lat_max):
            return False
        inside = False
        for x1, y1, x2, y2 in self.bands[self._band(lat)]:
            # The same test and arithmetic as contains(), in the same order.
            if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    def contains(self, lat: Floats, lon: Floats) -> NDArray[np.bool_]:
        """Which of the points lie inside (even-odd ray cast)."""
        lon_min, lat_min, lon_max, lat_max = self.box
        near = (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)
        inside = np.zeros(lat.shape, dtype=bool)
        if not near.any():
            return inside
        px, py = lon[near][:, None], lat[near][:, None]
        x1, y1 = self.ring[:-1, 0], self.ring[:-1, 1]
        x2, y2 = self.ring[1:, 0], self.ring[1:, 1]
        spans = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross_x = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        crossings = (spans & (px < cross_x)).sum(axis=1)
        inside[near] = crossings % 2 == 1
        return inside

    def distance_km(self, lat: Floats, lon: Floats) -> Floats:
        """Kilometres from each point to the district: 0 inside, else to its boundary."""
        if lat.shape == (1,):  # one point (a valuation's): the same answer without numpy
            inside = np.array([self.holds(float(lat[0]), float(lon[0]))])
        else:
            inside = self.contains(lat, lon)
        out = np.zeros(lat.shape)
        if inside.all():  # most points given with a district lie in it: no distances to take
            return out
        x, y = _km(lat[~inside], lon[~inside])
        ax, ay, dx, dy, length2 = self.edges_km
        t = np.clip(((x[:, None] - ax) * dx + (y[:, None] - ay) * dy) / length2, 0.0, 1.0)
        out[~inside] = np.hypot(x[:, None] - (ax + t * dx), y[:, None] - (ay + t * dy)).min(axis=1)
        return out

    def inside_point(self) -> tuple[float, float]:
        """(lat, lon) of the area centroid if it lies inside, else of the inside point of a
        fine grid nearest to the centroid."""
        x, y = self.ring[:, 0], self.ring[:, 1]
        cross = x[:-1] * y[1:] - x[1:] * y[:-1]
        area = cross.sum() / 2
        cx = float(((x[:-1] + x[1:]) * cross).sum() / (6 * area))
        cy = float(((y[:-1] + y[1:]) * cross).sum() / (6 * area))
        if self.contains(np.array([cy]), np.array([cx]))[0]:
            return cy, cx
        lon_min, lat_min, lon_max, lat_max = self.box
        grid_x, grid_y = np.meshgrid(
            np.linspace(lon_min, lon_max, 60), np.linspace(lat_min, lat_max, 60)
        )
        gx, gy = grid_x.ravel(), grid_y.ravel()
        inside = self.contains(gy, gx)
        best = int(np.argmin(np.where(inside, (gx - cx) ** 2 + (gy - cy) ** 2, np.inf)))
        return float(gy[best]), float(gx[best])


@dataclass(frozen=True, slots=True)
class Station:
    name: str
    line: str  # "4", "15"
    line_name: str  # "Amarela"
    latitude: float
    longitude: float


def _km(lat: Floats, lon: Floats) -> tuple[Floats, Floats]:
    return (lon + 46.63) * KM_PER_DEG_LON, (lat - CENTRE_LAT) * KM_PER_DEG_LAT


def _array(values: float | Iterable[float]) -> Floats:
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


class Geography:
    """The official districts and stations, with look-ups by point and by name."""

    def __init__(self, districts: Iterable[District], stations: Iterable[Station]) -> None:
        self.districts = tuple(districts)
        self.stations = tuple(stations)
        self.by_official = {d.official: d for d in self.districts}
        self._by_model: dict[str, tuple[District, ...]] = {}
        for d in self.districts:
            self._by_model[d.model] = (*self._by_model.get(d.model, ()), d)
        for name, officials in NEIGHBOURHOODS.items():
            self._by_model[name] = tuple(self.by_official[o] for o in officials)
        self._boxes = np.array([d.box for d in self.districts])
        self._station_km = np.column_stack(
            _km(
                np.array([s.latitude for s in self.stations]),
                np.array([s.longitude for s in self.stations]),
            )
        )

    def locate(self, lat: float | Iterable[float], lon: float | Iterable[float]) -> list[int]:
        """For each point, the index in :attr:`districts` of the district it lies in, or -1
        (outside the city; on a shared border, the first district found)."""
        lats, lons = _array(lat), _array(lon)
        where = np.full(lats.shape, -1, dtype=np.int64)
        # Only the districts whose box holds a point are ray cast: one or two for one point.
        lon_min, lat_min, lon_max, lat_max = (self._boxes[:, k, None] for k in range(4))
        in_box = (lons >= lon_min) & (lons <= lon_max) & (lats >= lat_min) & (lats <= lat_max)
        for i in np.flatnonzero(in_box.any(axis=1)):
            todo = in_box[i] & (where < 0)
            if todo.any():
                hit = np.zeros(lats.shape, dtype=bool)
                hit[todo] = self.districts[i].contains(lats[todo], lons[todo])
                where[hit] = i
        return [int(i) for i in where]

    def district_at(self, lat: float, lon: float) -> District | None:
        """The official district the point lies in; ``None`` outside the city. As
        :meth:`locate` finds it, for one point: the first district in order that holds it
        (:meth:`District.holds` tests its box first, so most are passed over at once)."""
        for district in self.districts:
            if district.holds(lat, lon):
                return district
        return None

    def official_of(self, model_name: str) -> tuple[District, ...]:
        """The official districts a model's district name stands for: its own, or the
        districts a neighbourhood lies in; none for a name the city does not know."""
        return self._by_model.get(model_name, ())

    def distance_km(
        self, lat: float | Iterable[float], lon: float | Iterable[float], model_name: str
    ) -> Floats:
        """Kilometres from each point to the place a model's district name stands for (0
        inside it); NaN for a name the city does not know."""
        lats, lons = _array(lat), _array(lon)
        places = self.official_of(model_name)
        if not places:
            return np.full(lats.shape, np.nan)
        nearest: Floats = np.minimum.reduce([d.distance_km(lats, lons) for d in places])
        return nearest

    def distances_km(
        self, lat: Iterable[float], lon: Iterable[float], model_names: Iterable[str]
    ) -> Floats:
        """Kilometres from each point to the place its own district name stands for (0
        inside; NaN for a missing point or a name the city does not know)."""
        lats, lons = _array(lat), _array(lon)
        names = np.asarray(list(model_names), dtype=object)
        out = np.full(lats.shape, np.nan)
        located = ~(np.isnan(lats) | np.isnan(lons))
        for name in set(names[located]):
            rows = located & (names == name)
            out[rows] = self.distance_km(lats[rows], lons[rows], str(name))
        return out

    def own_listings(
        self,
        model_name: str,
        lat: Iterable[float],
        lon: Iterable[float],
        *,
        within_km: float = NEAR_KM,
        min_listings: int = MIN_NEAR_LISTINGS,
    ) -> NDArray[np.bool_] | None:
        """Which of a model's district name's listings (given by their coordinates) stand for
        the district: all of them, if the median position of those located lies in the
        district or within ``within_km`` of it; else those that lie that near, when there are
        at least ``min_listings`` and their median does too; else none. The portal named
        listings after streets and landmarks elsewhere: all of Iguatemi's stand in Itaim Bibi,
        Jardim Ângela's in the east zone. ``None`` for a name the city does not know."""
        if not self.official_of(model_name):
            return None
        lats, lons = _array(lat), _array(lon)
        located = ~(np.isnan(lats) | np.isnan(lons))
        near = np.zeros(len(lats), dtype=bool)
        near[located] = self.distance_km(lats[located], lons[located], model_name) <= within_km

        def lies_near(rows: NDArray[np.bool_]) -> bool:
            median = (float(np.median(lats[rows])), float(np.median(lons[rows])))
            return bool(self.distance_km(*median, model_name)[0] <= within_km)

        if located.any() and lies_near(located):
            return np.ones(len(lats), dtype=bool)
        if near.sum() >= min_listings and lies_near(near):
            return near
        return np.zeros(len(lats), dtype=bool)

    def centre(
        self, model_name: str, lat: Iterable[float] = (), lon: Iterable[float] = ()
    ) -> tuple[float, float] | None:
        """The point (lat, lon) a valuation with no coordinates is placed at for a model's
        district name, given the coordinates of that name's listings: the median position of
        :meth:`own_listings`, or where it has none a point inside the official district (its
        area centroid, or the inside point nearest to it; for a neighbourhood, in the first of
        its districts). So never a point in another part of the city, as the median of all a
        name's listings can be. ``None`` for a name the city does not know."""
        lats, lons = _array(lat), _array(lon)
        own = self.own_listings(model_name, lats, lons)
        if own is None:
            return None
        located = own & ~(np.isnan(lats) | np.isnan(lons))
        if located.any():
            return float(np.median(lats[located])), float(np.median(lons[located]))
        return self.official_of(model_name)[0].inside_point()

    def nearest_station_km(
        self,
        lat: float | Iterable[float],
        lon: float | Iterable[float],
        *,
        skip: Collection[str] = (),
    ) -> Floats:
        """Kilometres from each point to the nearest station, leaving out the stations named
        in ``skip`` (e.g. those opened after the listings were collected)."""
        keep = np.array([s.name not in skip for s in self.stations])
        x, y = _km(_array(lat), _array(lon))
        sx, sy = self._station_km[keep, 0], self._station_km[keep, 1]
        result: Floats = np.hypot(x[:, None] - sx, y[:, None] - sy).min(axis=1)
        return result


def _text(name: str) -> str:
    return resources.files("imovsp").joinpath("geodata", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def geography() -> Geography:
    """The city's geography, read once from the package."""
    names = {r["official"]: r for r in csv.DictReader(_text("district-names.csv").splitlines())}
    districts = []
    for feature in json.loads(_text("sp-distritos.geojson"))["features"]:
        official = feature["properties"]["Distrito"]
        ring = np.asarray(feature["geometry"]["coordinates"][0], dtype=np.float64)
        if not np.array_equal(ring[0], ring[-1]):
            ring = np.vstack([ring, ring[:1]])
        box = (ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max())
        row = names[official]
        districts.append(District(official, row["name"], row["model"], ring, box))
    stations = [
        Station(
            r["station_name"], r["line_number"], r["line_name_pt"], float(r["lat"]), float(r["lon"])
        )
        for r in csv.DictReader(_text("sp-rail-stations.csv").splitlines())
    ]
    return Geography(sorted(districts, key=lambda d: d.official), stations)


FAR_KM = 2.0  # a point further than this outside the named district gets a note


def far_from_district(lat: float | None, lon: float | None, district: str) -> str | None:
    """A note for coordinates that lie far (> :data:`FAR_KM`) outside the district named with
    them, saying where the point is; ``None`` when they are inside or near it, or not given."""
    if lat is None or lon is None:
        return None
    geo = geography()
    if any(d.holds(lat, lon) for d in geo.official_of(district)):
        return None  # inside: most points given with a district are
    km = float(geo.distance_km(lat, lon, district)[0])
    if not km > FAR_KM:  # NaN too: a name the city's map does not have
        return None
    found = geo.district_at(lat, lon)
    where = f"in {found.name}" if found else "outside the city's districts"
    return (
        f"the coordinates ({lat:.5f}, {lon:.5f}) lie {where}, {km:.1f} km outside {district}; "
        "the valuation uses the point"
    )
