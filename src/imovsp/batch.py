"""Score whole files: every input row kept in order, a prediction or an ``error`` for each.

:func:`score_frame` scores one chunk of raw rows; every engine calls it, whether it runs here
(:func:`score_file`, which streams a file chunk by chunk so memory stays flat whatever the file
size) or on a Dask cluster (``imovsp.batch_dask``). Reading and writing CSV, gzip CSV and
Parquet is :mod:`imovsp.formats`' job; outputs are renamed into place only when complete, so an
interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from imovsp import data, formats
from imovsp.bounds import DEFAULT_LEVEL
from imovsp.data import DataError
from imovsp.features import frame_columns, not_given_columns
from imovsp.formats import Chunk, Format
from imovsp.valuer import Valuer

PREDICTED = "predicted_price"
LOW, HIGH = "price_low", "price_high"
ERROR = "error"
# The optional fields a row left empty, priced as unknown: e.g. "condo_fee;location".
NOT_GIVEN = "not_given"
AS_OF, FACTOR = "as_of", "index_factor"
# Every column the scorer writes (ranges once the model has them). An input that already has
# one, e.g. a file scored before, gets it replaced.
SCORE_COLUMNS = (PREDICTED, "price_low", "price_high", NOT_GIVEN, ERROR, AS_OF, FACTOR)
CHUNK_ROWS = 100_000


@dataclass
class ScoreSummary:
    rows: int = 0
    scored: int = 0
    errors: int = 0

    def add(self, other: ScoreSummary) -> None:
        self.rows += other.rows
        self.scored += other.scored
        self.errors += other.errors


def score_frame(
    valuer: Valuer,
    raw: pd.DataFrame,
    *,
    level: float = DEFAULT_LEVEL,
    months: Mapping[str, tuple[str, float] | str] | None = None,
) -> pd.DataFrame:
    """``raw`` (strings as read) plus ``predicted_price``, its range at ``level``
    (``price_low``, ``price_high``), ``not_given``, ``error``, and the month whose money they
    are in and the index factor that moved them there (``as_of``, ``index_factor``). An empty
    cell of an optional field means it was not given: the model prices it as unknown.

    ``months`` gives, per negotiation type, ``(month, factor)`` or the error its rows get
    (see :func:`imovsp.as_of.resolve_all`); without it, prices stay in the model's month.
    """
    validated = data.validate(raw, require_price=False, allow_missing=True)
    errors = validated.errors.copy()
    columns = {name: pd.Series(np.nan, index=raw.index) for name in (PREDICTED, LOW, HIGH)}
    not_given = pd.Series("", index=raw.index, dtype=object)
    as_of = pd.Series(None, index=raw.index, dtype=object)
    factor = pd.Series(np.nan, index=raw.index, dtype=float)
    valid = validated.frame
    if len(valid):
        unknown = valuer.unknown_districts(valid)
        for idx, name in zip(valid.index[unknown], valid[data.DISTRICT][unknown], strict=True):
            errors[idx] = f"unknown district {name!r}"
        ok = valid[~unknown]
        missing = [n for n in ok[data.NEGOTIATION].unique() if n not in valuer.negotiations]
        for n in missing:
            errors[ok.index[ok[data.NEGOTIATION] == n]] = f"this model does not value {n}"
        ok = ok[ok[data.NEGOTIATION].isin(valuer.negotiations)]
        if months is None:
            months = dict.fromkeys(valuer.negotiations, (valuer.data_month, 1.0))
        for n, at in months.items():
            if isinstance(at, str):  # the index has no such month for this type
                errors[ok.index[ok[data.NEGOTIATION] == n]] = at
        ok = ok[[isinstance(months.get(n), tuple) for n in ok[data.NEGOTIATION]]]
        if len(ok):
            found = valuer.range_frame(ok, level=level)
            at_month = [cast(tuple[str, float], months[n]) for n in ok[data.NEGOTIATION]]
            factors = np.array([factor for _, factor in at_month])
            for name, found_values in zip((PREDICTED, LOW, HIGH), found, strict=True):
                columns[name][ok.index] = np.round(found_values * factors, 0)
            missing = not_given_columns(frame_columns(ok))
            not_given.loc[ok.index] = pd.Series([";".join(f) for f in missing], index=ok.index)
            as_of[ok.index] = [month for month, _ in at_month]
            factor[ok.index] = np.round(factors, 6)
    out = raw.copy()
    for name, column in columns.items():
        out[name] = column.astype("Int64")
    out[NOT_GIVEN] = not_given
    out[ERROR] = errors.fillna("")
    out[AS_OF] = as_of.fillna("")
    out[FACTOR] = factor
    return out


def produced_columns(raw: pd.DataFrame, scored: pd.DataFrame) -> list[str]:
    """The columns of ``scored`` that the scorer wrote (the rest are the input's)."""
    return [c for c in scored.columns if c not in raw.columns or c in SCORE_COLUMNS]


def score_chunk(
    valuer: Valuer, chunk: Chunk, options: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, list[str], ScoreSummary]:
    """Score one chunk: the scored rows, which columns the scorer wrote, and the counts.

    ``options`` are keyword arguments for :func:`score_frame` (every engine passes them on).
    """
    scored = score_frame(valuer, chunk.raw, **(options or {}))
    errors = int((scored[ERROR] != "").sum())
    summary = ScoreSummary(rows=len(scored), scored=len(scored) - errors, errors=errors)
    return scored, produced_columns(chunk.raw, scored), summary


def score_file(
    valuer: Valuer,
    source: Path,
    target: Path,
    *,
    out_format: Format | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ScoreSummary:
    """Score ``source`` (CSV, gzip CSV or Parquet) into ``target``, chunk by chunk.

    The output format is ``out_format``, else ``target``'s extension. ``on_chunk`` is called
    with the number of rows after each chunk is written (for progress); ``options`` go to
    :func:`score_frame`.
    """
    fmt = out_format or formats.output_format(target)
    summary = ScoreSummary()
    with formats.atomic_output(target) as tmp, formats.Writer(tmp, fmt) as writer:
        for chunk in formats.read_chunks(source, chunk_rows=chunk_rows):
            if writer.parts == 0:
                data.check_columns(chunk.raw.columns, require_price=False, source=str(source))
            scored, produced, counts = score_chunk(valuer, chunk, options)
            writer.write(chunk, scored, produced)
            summary.add(counts)
            if on_chunk:
                on_chunk(len(chunk))
        if summary.rows == 0:
            raise DataError(f"{source} has no rows to score")
    return summary
