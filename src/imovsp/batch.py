"""Score whole files: every input row kept in order, a prediction or an ``error`` for each.

Input is read and written in chunks so memory stays flat whatever the file size; the output is
written under a temporary name and renamed at the end, so an interrupted run never leaves a
file that looks complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imovsp import data
from imovsp.data import DataError
from imovsp.ranges import DEFAULT_LEVEL
from imovsp.valuer import Valuer

PREDICTED = "predicted_price"
LOW, HIGH = "price_low", "price_high"
ERROR = "error"
CHUNK_ROWS = 100_000


@dataclass
class ScoreSummary:
    rows: int = 0
    scored: int = 0
    errors: int = 0


def score_frame(valuer: Valuer, raw: pd.DataFrame, *, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """``raw`` (strings as read) plus ``predicted_price``, its range at ``level``
    (``price_low``, ``price_high``) and ``error`` columns."""
    validated = data.validate(raw, require_price=False)
    errors = validated.errors.copy()
    columns = {name: pd.Series(np.nan, index=raw.index) for name in (PREDICTED, LOW, HIGH)}
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
        if len(ok):
            found = valuer.range_frame(ok, level=level)
            for name, found_values in zip((PREDICTED, LOW, HIGH), found, strict=True):
                columns[name][ok.index] = np.round(found_values, 0)
    out = raw.copy()
    for name, column in columns.items():
        out[name] = column.astype("Int64")
    out[ERROR] = errors.fillna("")
    return out


def _chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)
        yield from reader
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {path} as a listings CSV: {exc}") from exc


def score_file(
    valuer: Valuer,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    level: float = DEFAULT_LEVEL,
) -> ScoreSummary:
    """Score ``source`` CSV into ``target`` CSV, chunk by chunk."""
    if not source.is_file():
        raise DataError(f"input file not found: {source}")
    summary = ScoreSummary()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            for i, chunk in enumerate(_chunks(source, chunk_rows)):
                if i == 0:
                    data.check_columns(chunk.columns, require_price=False, source=str(source))
                scored = score_frame(valuer, chunk, level=level)
                scored.to_csv(f, index=False, header=i == 0)
                summary.rows += len(chunk)
                summary.errors += int((scored[ERROR] != "").sum())
                if on_chunk:
                    on_chunk(len(chunk))
        if summary.rows == 0:
            raise DataError(f"{source} has no rows to score")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    summary.scored = summary.rows - summary.errors
    return summary
