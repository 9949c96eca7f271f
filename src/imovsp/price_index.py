"""The price index that moves a valuation from the model's data month to another month.

The package ships ``fipezap-sp-monthly.csv``: the Índice FipeZAP residential index for the city
of São Paulo, monthly since 2008-01, for all flats (``rooms`` = ``total``) and by number of
rooms, for sale prices and for rents. Source: FIPE's Índice FipeZAP (asking prices of ZAP
Imóveis listings), as compiled in the public repository ``viniciusoike/realestatebr``; index
values © FIPE, credited as :data:`CREDIT` wherever they are shown (see
``fipezap-sp-monthly.README.md`` beside the file).

A deployment can supply a newer file with the same columns (``IMOVSP_PRICE_INDEX``). A file
that is malformed or incomplete (a month missing inside a series, a value that is not a
positive number, no ``total`` rows) is refused whole, with a message that says where: it is
never half used.

imovsp uses the series for all flats: a valuation is an average flat's price movement applied
to one flat. The by-rooms series are read and checked but not used (see the README: on the one
month of the dev data there is nothing to show that they would do better).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

# The month of the listings of models saved before the artifact recorded it: all were trained
# on the dev file, whose listings are of April 2019.
DEFAULT_DATA_MONTH = "2019-04"

SHIPPED_FILE = "fipezap-sp-monthly.csv"
CREDIT = "Índice FipeZAP (FIPE)"
SERIES = "total"  # the rows used: all flats, whatever the number of rooms
NEGOTIATIONS = ("sale", "rent")
REQUIRED = ("month", "rooms", "sale_index", "rent_index")
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MONTHS_PT = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)


class PriceIndexError(ValueError):
    """An index file that cannot be used, or a month the index does not cover."""


def parse_month(text: str) -> tuple[int, int]:
    """``'2019-04'`` → ``(2019, 4)``; :class:`PriceIndexError` if it is not ``YYYY-MM``."""
    found = MONTH.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise PriceIndexError(f"{text!r} is not a month: write YYYY-MM, e.g. 2025-08")
    return int(found[1]), int(found[2])


def next_month(month: str) -> str:
    year, m = parse_month(month)
    return f"{year + m // 12}-{m % 12 + 1:02d}"


def month_pt(month: str) -> str:
    """``'2019-04'`` → ``'abril de 2019'``."""
    year, m = parse_month(month)
    return f"{MONTHS_PT[m - 1]} de {year}"


@dataclass(frozen=True, eq=False)  # hashed by identity: answers about it can be cached
class PriceIndex:
    """One index series per negotiation type: month (``YYYY-MM``) → index value."""

    values: Mapping[str, Mapping[str, float]]
    source: str  # where it was read from: the shipped file, or a deployment's path
    series: str = SERIES

    def months(self, negotiation: str) -> list[str]:
        return sorted(self.values[negotiation])

    def first(self, negotiation: str) -> str:
        return self._ends[negotiation][0]

    def last(self, negotiation: str) -> str:
        return self._ends[negotiation][1]

    @cached_property
    def _ends(self) -> dict[str, tuple[str, str]]:
        return {n: (min(v), max(v)) for n, v in self.values.items()}

    def coverage(self) -> str:
        """``sale 2008-01 to 2025-08, rent 2008-01 to 2025-07``."""
        return ", ".join(f"{n} {self.first(n)} to {self.last(n)}" for n in NEGOTIATIONS)

    def check(self, negotiation: str, month: str) -> str:
        """``month`` as written in the index, if it covers it for ``negotiation``; else
        :class:`PriceIndexError` naming the months it covers."""
        year, m = parse_month(month)
        month = f"{year}-{m:02d}"
        if month not in self.values[negotiation]:
            raise PriceIndexError(f"{month} is outside the {negotiation} price index")
        return month

    def factor(self, negotiation: str, from_month: str, to_month: str) -> float:
        """What a ``negotiation`` price of ``from_month`` is multiplied by to be one of
        ``to_month`` (1 when they are the same month)."""
        series = self.values[negotiation]
        start, end = self.check(negotiation, from_month), self.check(negotiation, to_month)
        return 1.0 if start == end else series[end] / series[start]

    def describe(self) -> dict[str, object]:
        """What the model card and ``imovsp index`` say about the index in use."""
        return {
            "name": CREDIT,
            "series": self.series,
            "source": self.source,
            "months": {n: [self.first(n), self.last(n)] for n in NEGOTIATIONS},
        }


def _number(text: str, where: str) -> float | None:
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise PriceIndexError(f"{where} is not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise PriceIndexError(f"{where} must be a positive number, not {text!r}")
    return value


def parse(text: str, *, source: str) -> PriceIndex:
    """Read and check an index table (the shipped file's columns); refuse it whole if any
    part of it cannot be trusted."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise PriceIndexError(f"{source} is missing column(s): {', '.join(missing)}")
    values: dict[str, dict[str, float]] = {n: {} for n in NEGOTIATIONS}
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(reader, start=2):
        if None in row or any(row.get(c) is None for c in REQUIRED):
            raise PriceIndexError(f"{source} line {line}: wrong number of fields")
        try:
            year, m = parse_month(row["month"])
        except PriceIndexError as exc:
            raise PriceIndexError(f"{source} line {line}: {exc}") from None
        month, rooms = f"{year}-{m:02d}", row["rooms"].strip()
        if (month, rooms) in seen:
            raise PriceIndexError(f"{source} line {line}: {month} rooms={rooms} appears twice")
        seen.add((month, rooms))
        for n in NEGOTIATIONS:
            value = _number(row[f"{n}_index"], f"{source} line {line}: {n}_index")
            if rooms == SERIES and value is not None:
                values[n][month] = value
    for n in NEGOTIATIONS:
        if not values[n]:
            raise PriceIndexError(f"{source} has no {n}_index values for rooms={SERIES}")
        # A hole inside a series would make some months impossible and others wrong.
        month, last = min(values[n]), max(values[n])
        while month != last:
            month = next_month(month)
            if month not in values[n]:
                raise PriceIndexError(
                    f"{source} is incomplete: the {n} index for rooms={SERIES} has no value "
                    f"for {month}"
                )
    return PriceIndex(values=values, source=source)


def shipped_text() -> str:
    return resources.files("imovsp").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def load(path: Path | None = None) -> PriceIndex:
    """The index in ``path``, else the one shipped in the package."""
    if path is None:
        return parse(shipped_text(), source=f"{SHIPPED_FILE} (shipped with imovsp)")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceIndexError(f"cannot read the price index {path}: {exc}") from None
    return parse(text, source=str(path))
