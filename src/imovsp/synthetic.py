"""Synthetic listings in the raw schema, for tests, demos and benchmarks.

Prices follow a plausible São Paulo pattern: a per-district price per m² (from
``districts.csv``, aggregate figures only), scaled by size, amenities and noise. The generator
also writes a few of the raw file's known quirks (zero or swapped coordinates, zero condo fees)
so the data stage is exercised the way the real file exercises it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from imovsp.data import CITY_SUFFIX, RAW_COLUMNS


@dataclass(frozen=True, slots=True)
class DistrictReference:
    name: str
    latitude: float
    longitude: float
    sale_price_m2: float
    rent_price_m2: float


@cache
def district_reference() -> tuple[DistrictReference, ...]:
    """The 96 districts with a centre and typical prices per m² (April 2019 medians)."""
    text = resources.files("imovsp").joinpath("districts.csv").read_text(encoding="utf-8")
    rows = []
    for r in csv.DictReader(text.splitlines()):
        sale = float(r["sale_price_m2"])
        rent = float(r["rent_price_m2"]) if r["rent_price_m2"] else sale * 0.0055
        rows.append(
            DistrictReference(
                r["district"], float(r["latitude"]), float(r["longitude"]), sale, rent
            )
        )
    return tuple(rows)


def synthetic_listings(
    n: int, *, seed: int = 0, quirks: bool = True, districts: int | None = None
) -> pd.DataFrame:
    """``n`` listings in the raw published schema (column names, ``Name/São Paulo`` districts)."""
    rng = np.random.default_rng(seed)
    ref = district_reference()[:districts] if districts else district_reference()
    which = rng.integers(0, len(ref), n)
    sale = rng.random(n) < 0.47
    size = np.clip(np.round(rng.lognormal(np.log(70), 0.45, n)), 25, 600)
    rooms = np.clip(np.round(size / 35 + rng.normal(0, 0.6, n)), 1, 6)
    suites = np.clip(np.round(rng.normal(size / 90, 0.6, n)), 0, rooms)
    toilets = np.clip(suites + np.round(rng.random(n) + size / 150), 1, 8)
    parking = np.clip(np.round(size / 60 + rng.normal(0, 0.6, n)), 0, 6)
    elevator = (rng.random(n) < 0.4).astype(int)
    furnished = (rng.random(n) < 0.15).astype(int)
    pool = (rng.random(n) < np.clip(size / 200, 0.2, 0.8)).astype(int)
    new = (rng.random(n) < 0.02).astype(int)

    sale_m2 = np.array([r.sale_price_m2 for r in ref])[which]
    rent_m2 = np.array([r.rent_price_m2 for r in ref])[which]
    per_m2 = np.where(sale, sale_m2, rent_m2)
    effect = (
        (size / 70) ** -0.12
        * 1.04**parking
        * 1.03**suites
        * np.where(furnished & ~sale, 1.25, 1.0)
        * np.where(pool == 1, 1.05, 1.0)
        * np.where(new == 1, 1.08, 1.0)
    )
    price = per_m2 * size * effect * rng.lognormal(0, 0.18, n)
    price = np.where(sale, np.round(price, -3), np.round(price, -1)).clip(min=100)
    condo = np.round(size * rng.uniform(6, 14, n), -1)
    lat = np.array([r.latitude for r in ref])[which] + rng.normal(0, 0.008, n)
    lon = np.array([r.longitude for r in ref])[which] + rng.normal(0, 0.008, n)

    if quirks:
        condo[rng.random(n) < 0.15] = 0
        zero = rng.random(n) < 0.06
        lat[zero], lon[zero] = 0.0, 0.0
        swap = rng.random(n) < 0.01
        lat[swap], lon[swap] = lon[swap], lat[swap]

    frame = pd.DataFrame(
        {
            "Price": price.astype(np.int64),
            "Condo": condo.astype(np.int64),
            "Size": size.astype(np.int64),
            "Rooms": rooms.astype(np.int64),
            "Toilets": toilets.astype(np.int64),
            "Suites": suites.astype(np.int64),
            "Parking": parking.astype(np.int64),
            "Elevator": elevator,
            "Furnished": furnished,
            "Swimming Pool": pool,
            "New": new,
            "District": [ref[i].name + CITY_SUFFIX for i in which],
            "Negotiation Type": np.where(sale, "sale", "rent"),
            "Property Type": "apartment",
            "Latitude": np.round(lat, 6),
            "Longitude": np.round(lon, 6),
        }
    )
    return frame[list(RAW_COLUMNS)]


def write_synthetic(path: Path | str, n: int, *, seed: int = 0, chunk: int = 500_000) -> Path:
    """Write ``n`` synthetic rows to a CSV in chunks, so millions of rows fit in little memory."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        for start in range(0, n, chunk):
            part = synthetic_listings(min(chunk, n - start), seed=seed + start)
            part.to_csv(f, index=False, header=start == 0)
    return path
