"""The data stage: read raw listings, validate every row, clean, and say what happened.

The raw schema is the published one (see ``../shared/data/README.md``). Nothing is dropped
silently: every rejected row is counted under a reason in the :class:`DataReport`, and the
per-row reasons are kept so batch scoring can put them in an ``error`` column.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imovsp import bounds
from imovsp.bounds import NEGOTIATIONS as NEGOTIATIONS  # the data's too
from imovsp.bounds import PRICE_MAX, PRICE_MIN
from imovsp.geo import geography
from imovsp.price_index import parse_month

if TYPE_CHECKING:
    from imovsp.price_index import PriceIndex

PRICE = "Price"
NEGOTIATION = "Negotiation Type"
DISTRICT = "District"
LATITUDE = "Latitude"
LONGITUDE = "Longitude"
PROPERTY_TYPE = "Property Type"
# Optional: the month a listing is of (YYYY-MM); files without it take one month for all rows.
MONTH = "Month"

COUNT_COLUMNS = ("Rooms", "Toilets", "Suites", "Parking")
FLAG_COLUMNS = ("Elevator", "Furnished", "Swimming Pool", "New")
FEATURE_COLUMNS = (
    "Condo",
    "Size",
    *COUNT_COLUMNS,
    *FLAG_COLUMNS,
    DISTRICT,
    NEGOTIATION,
    LATITUDE,
    LONGITUDE,
)
# Property Type is always "apartment" in this dataset; it is accepted but not required.
REQUIRED_COLUMNS = FEATURE_COLUMNS
RAW_COLUMNS = (PRICE, *FEATURE_COLUMNS[:-2], PROPERTY_TYPE, LATITUDE, LONGITUDE)

# A generous box around the city of São Paulo; points outside it are treated as missing.
CITY_BOUNDS = {"lat": (-24.01, -23.35), "lon": (-46.83, -46.36)}
CITY_SUFFIX = "/São Paulo"


class DataError(ValueError):
    """A listings file that cannot be used at all (unreadable, missing columns)."""


@dataclass
class DataReport:
    """What the data stage read, rejected, changed and kept."""

    rows_read: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    coordinates_swapped: int = 0
    coordinates_missing: int = 0
    rows_kept: int = 0
    # Listings per month (YYYY-MM) and the month their prices were brought to by the price
    # index (see :func:`load_dated_listings`); empty when read without months.
    months: dict[str, int] = field(default_factory=dict)
    base_month: str | None = None
    # Listings with coordinates, by how far they lie outside the official district their
    # District names (training data only; see :func:`outside_district`).
    outside_district: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_rejected": self.rows_rejected}

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.rejected.items())) or "none"
        text = (
            f"{self.rows_read} rows read, {self.rows_rejected} rejected ({reasons}), "
            f"{self.duplicates_removed} exact duplicates removed, "
            f"{self.coordinates_swapped} swapped coordinates fixed, "
            f"{self.coordinates_missing} locations missing (filled from the district), "
            f"{self.rows_kept} kept" + (self._months_summary() if self.months else "")
        )
        if self.outside_district:
            bands = ", ".join(f"{n} {band}" for band, n in self.outside_district.items())
            text += f"; where the coordinates lie against the district named: {bands}"
        return text

    def _months_summary(self) -> str:
        first, last = min(self.months), max(self.months)
        if len(self.months) == 1 and first == self.base_month:
            return f"; listings of {first}"
        return (
            f"; listings of {len(self.months)} month(s) from {first} to {last}, prices brought "
            f"to {self.base_month} by the price index"
        )


@dataclass
class Validated:
    """The outcome of validating a raw frame: clean rows, and a reason for every other row."""

    frame: pd.DataFrame  # the valid rows, cleaned, with their original index
    errors: pd.Series  # one entry per input row: None, or why the row is unusable
    report: DataReport


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_listings(path: Path | str, *, require_price: bool = True) -> pd.DataFrame:
    """Read a raw listings CSV, checking that the columns the model needs are there."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"listings file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {path} as a listings CSV: {exc}") from exc
    check_columns(frame.columns, require_price=require_price, source=str(path))
    return frame


def check_columns(columns: Any, *, require_price: bool, source: str = "input") -> None:
    required = ((PRICE,) if require_price else ()) + REQUIRED_COLUMNS
    missing = [c for c in required if c not in set(columns)]
    if missing:
        raise DataError(f"{source} is missing required column(s): {', '.join(missing)}")


# Both run once per row of every batch, over a few hundred distinct names: cached, they cost
# a dictionary look-up instead of Unicode normalisation (~15% of batch scoring time).
@lru_cache(maxsize=4096)
def normalize_district(name: str) -> str:
    """``'Santana/São Paulo'`` → ``'Santana'``; surrounding spaces removed."""
    name = unicodedata.normalize("NFC", str(name)).strip()
    if name.endswith(CITY_SUFFIX):
        name = name[: -len(CITY_SUFFIX)].strip()
    return name


@lru_cache(maxsize=4096)
def fold(name: str) -> str:
    """A key for case- and accent-insensitive matching of district names."""
    decomposed = unicodedata.normalize("NFKD", normalize_district(name))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


def in_city(lat: Any, lon: Any) -> Any:
    (lat_lo, lat_hi), (lon_lo, lon_hi) = CITY_BOUNDS["lat"], CITY_BOUNDS["lon"]
    return (lat >= lat_lo) & (lat <= lat_hi) & (lon >= lon_lo) & (lon <= lon_hi)


def validate(
    raw: pd.DataFrame,
    *,
    require_price: bool = True,
    allow_missing: bool = False,
    months: bool = False,
) -> Validated:
    """Validate and clean raw listings (strings as read), keeping a reason for every rejection.

    With ``allow_missing`` (scoring), an empty count or flag means "not given" and stays NaN,
    and a row must be a property the API would value (:mod:`imovsp.bounds`); training
    listings must have every field. An empty condo fee is unknown either way, as a 0.
    With ``months``, the ``Month`` column (``YYYY-MM``) is checked and kept too.
    """
    check_columns(raw.columns, require_price=require_price)
    report = DataReport(rows_read=len(raw))
    reasons = pd.Series([None] * len(raw), index=raw.index, dtype=object)

    def reject(mask: pd.Series, reason: str) -> None:
        new = mask & reasons.isna()
        reasons[new] = reason

    out = pd.DataFrame(index=raw.index)
    numeric = ["Condo", "Size", *COUNT_COLUMNS, *FLAG_COLUMNS] + ([PRICE] if require_price else [])
    for col in numeric:
        text = raw[col].astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if col == "Condo":  # an empty fee means unknown, as 0 does in the published data
            bad &= text != ""
            values = values.fillna(0.0)
        elif allow_missing and col in (*COUNT_COLUMNS, *FLAG_COLUMNS):
            bad &= ~_empty(text)
        reject(bad, f"{col} is not a number")
        out[col] = values.astype(float)

    if require_price:
        reject(
            ~out[PRICE].between(PRICE_MIN, PRICE_MAX),
            f"Price must be from {PRICE_MIN:,.0f} to {PRICE_MAX:,.0f}",
        )
    reject(out["Size"] <= 0, "Size must be > 0")
    reject(out["Condo"] < 0, "Condo must be ≥ 0")
    for col in COUNT_COLUMNS:
        given = out[col].notna()
        reject(given & ((out[col] < 0) | (out[col] % 1 != 0)), f"{col} must be a whole number ≥ 0")
    for col in FLAG_COLUMNS:
        reject(out[col].notna() & ~out[col].isin([0.0, 1.0]), f"{col} must be 0 or 1")
    if allow_missing:
        _within_bounds(out, reject)

    negotiation = raw[NEGOTIATION].astype(str).str.strip().str.lower()
    reject(~negotiation.isin(NEGOTIATIONS), "Negotiation Type must be sale or rent")
    out[NEGOTIATION] = negotiation
    district = raw[DISTRICT].astype(str).map(normalize_district)
    reject(district == "", "District is empty")
    out[DISTRICT] = district

    lat = pd.to_numeric(raw[LATITUDE].astype(str).str.strip(), errors="coerce")
    lon = pd.to_numeric(raw[LONGITUDE].astype(str).str.strip(), errors="coerce")
    swapped = ~in_city(lat, lon) & in_city(lon, lat)
    lat, lon = lat.where(~swapped, lon), lon.where(~swapped, lat)
    missing = ~in_city(lat, lon)
    out[LATITUDE] = lat.where(~missing)
    out[LONGITUDE] = lon.where(~missing)

    if months:
        month = raw[MONTH].astype(str).str.strip()
        reject(~month.str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])"), "Month is not YYYY-MM")
        out[MONTH] = month

    valid = reasons.isna()
    report.rejected = {str(k): int(v) for k, v in reasons[~valid].value_counts().items()}
    report.coordinates_swapped = int((swapped & valid).sum())
    report.coordinates_missing = int((missing & valid).sum())
    report.rows_kept = int(valid.sum())
    return Validated(frame=out[valid], errors=reasons, report=report)


def _within_bounds(out: pd.DataFrame, reject: Callable[[pd.Series, str], None]) -> None:
    """Reject the rows that the API would refuse as properties to value (:mod:`imovsp.bounds`)."""
    low, high = bounds.SIZE_M2
    reject(~out["Size"].between(low, high), f"Size must be from {low} to {high:,} m²")
    for col in COUNT_COLUMNS:
        most = bounds.COUNTS[col.lower()][1]
        reject(out[col] > most, f"{col} must be at most {most}")
    fee, low_fee, high_fee = out["Condo"], bounds.CONDO_FEE_MIN, bounds.CONDO_FEE_MAX
    reject(
        ((fee > 0) & (fee < low_fee)) | (fee > high_fee),
        f"Condo must be 0 (unknown) or from {low_fee:,.0f} to {high_fee:,.0f}",
    )


def fingerprints(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each validated listing, price included: the artifact keeps those of
    its training rows, so that an evaluation can tell the listings the model has seen."""
    return np.sort(fingerprints_unsorted(frame))


def fingerprints_unsorted(frame: pd.DataFrame) -> np.ndarray:
    """:func:`fingerprints` in the rows' order."""
    columns = [PRICE, "Condo", "Size", *COUNT_COLUMNS, *FLAG_COLUMNS, DISTRICT, NEGOTIATION]
    columns += [LATITUDE, LONGITUDE]
    hashed = pd.util.hash_pandas_object(frame[columns], index=False)
    out: np.ndarray = hashed.to_numpy(dtype=np.uint64)
    return out


def _empty(text: pd.Series) -> pd.Series:
    """Cells that hold nothing: empty, or what pandas and Parquet write for a missing value."""
    return text.isin(["", "nan", "NaN", "None", "<NA>"])


def prepare_training(raw: pd.DataFrame, *, months: bool = False) -> Validated:
    """Validate, then remove exact duplicate listings (before any split: they would leak)."""
    validated = validate(raw, require_price=True, months=months)
    frame = validated.frame
    duplicated = raw.loc[frame.index].duplicated()
    validated.report.duplicates_removed = int(duplicated.sum())
    validated.report.rows_kept -= validated.report.duplicates_removed
    validated.frame = frame[~duplicated.to_numpy()]
    validated.report.outside_district = outside_district(validated.frame)
    return validated


def load_training_data(path: Path | str) -> tuple[pd.DataFrame, DataReport]:
    validated = prepare_training(read_listings(path, require_price=True))
    if validated.frame.empty:
        raise DataError(f"no usable rows in {path}: {validated.report.summary()}")
    return validated.frame.reset_index(drop=True), validated.report


def load_dated_listings(
    paths: Sequence[Path | str],
    *,
    default_month: str,
    index: PriceIndex,
    base_month: str | None = None,
) -> tuple[pd.DataFrame, DataReport]:
    """Listings of one or several files, of one month or many, with their prices in the money
    of one base month: ready to train on.

    A row's month is its ``Month`` column (``YYYY-MM``) when the file has one and the cell is
    not empty, else ``default_month``. Each price is moved from its month to ``base_month`` by
    ``index`` (the series of its negotiation type); a row whose month the index does not cover
    is rejected with that reason. ``base_month`` defaults to the latest month of the listings
    (capped at the last month that the index covers for every negotiation type present).
    """
    if not paths:
        raise DataError("no listings file given")
    raws = []
    for path in paths:
        raw = read_listings(path, require_price=True)
        given = raw[MONTH].str.strip() if MONTH in raw.columns else pd.Series("", index=raw.index)
        raws.append(raw.assign(**{MONTH: given.where(given != "", default_month)}))
    combined = pd.concat(raws, ignore_index=True).fillna("")
    source = paths[0] if len(paths) == 1 else f"{len(paths)} files"
    validated = prepare_training(combined, months=True)
    frame, report = validated.frame, validated.report
    outside = pd.Series(False, index=frame.index)
    for n in NEGOTIATIONS:
        rows = frame[NEGOTIATION] == n
        covered = frame[MONTH].map(lambda m, n=n: m in index.values[n])
        for month in sorted(set(frame.loc[rows & ~covered, MONTH])):
            reason = f"Month {month} is outside the {n} price index"
            report.rejected[reason] = int((rows & ~covered & (frame[MONTH] == month)).sum())
        outside |= rows & ~covered
    frame = frame[~outside]
    report.rows_kept -= int(outside.sum())
    if frame.empty:
        raise DataError(f"no usable rows in {source}: {report.summary()}")
    if base_month is not None:
        base_month = "{}-{:02d}".format(*parse_month(base_month))
    else:
        present = frame[NEGOTIATION].unique()
        base_month = min(max(frame[MONTH]), *(index.last(n) for n in present))
    factors = np.ones(len(frame))
    for n in NEGOTIATIONS:
        at = (frame[NEGOTIATION] == n).to_numpy()
        if at.any():
            try:
                base = index.check(n, base_month)
            except ValueError as exc:
                raise DataError(
                    f"cannot bring {n} prices to the base month: {exc} ({index.coverage()})"
                ) from None
            factors[at] = [index.factor(n, m, base) for m in frame.loc[at, MONTH]]
    report.months = {str(k): int(v) for k, v in sorted(frame[MONTH].value_counts().items())}
    report.base_month = base_month
    frame = frame.assign(**{PRICE: frame[PRICE] * factors}).drop(columns=[MONTH])
    return frame.reset_index(drop=True), report


def combined_sha256(hashes: Sequence[str]) -> str:
    """One fingerprint of several files' sha256s, in the order given."""
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


# Bands of distance between a listing's coordinates and the official district it names.
OUTSIDE_BANDS = (
    ("inside", 0.0),
    ("within 1 km outside", 1.0),
    ("1-3 km outside", 3.0),
    ("3-10 km outside", 10.0),
    ("over 10 km outside", math.inf),
)


def outside_district(frame: pd.DataFrame) -> dict[str, int]:
    """How many listings with coordinates lie inside the official district their ``District``
    names, and how many lie outside it by how far (a neighbourhood the listings name, such as
    Brooklin, counts as the districts it lies in; a name the city's map lacks, as unknown)."""
    km = geography().distances_km(frame[LATITUDE], frame[LONGITUDE], frame[DISTRICT])
    located = frame[LATITUDE].notna().to_numpy() & frame[LONGITUDE].notna().to_numpy()
    counts: dict[str, int] = {}
    low = -math.inf
    for band, high in OUTSIDE_BANDS:
        counts[band] = int(((km > low) & (km <= high)).sum())
        low = high
    counts["district not on the city's map"] = int((located & np.isnan(km)).sum())
    return counts
