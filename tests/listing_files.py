"""Listing files for the batch tests: raw rows with known bad ones, written and read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from imovsp import formats
from imovsp.synthetic import synthetic_listings

BAD_ROWS = {3: "Size must be > 0", 11: "unknown district 'Atlantis'", 40: "Rooms is not a number"}


def raw_rows(n: int = 60, *, seed: int = 41) -> pd.DataFrame:
    """Listings as strings, with a few rows that cannot be valued."""
    rows = synthetic_listings(n, seed=seed).astype(str)
    rows.loc[3, "Size"] = "-10"
    rows.loc[11, "District"] = "Atlantis/São Paulo"
    rows.loc[40, "Rooms"] = "three"
    rows.loc[50, "Condo"] = ""  # empty fee: unknown, still valued
    return rows


def write(frame: pd.DataFrame, path: Path) -> Path:
    fmt = formats.output_format(path)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, compression="gzip" if fmt == "csv.gz" else None)
    return path


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as the string a CSV holds ("" where missing)."""
    return pd.DataFrame(
        {c: [("" if pd.isna(v) else str(v)) for v in frame[c]] for c in frame.columns},
        dtype=object,
    )


def read(path: Path) -> pd.DataFrame:
    """An output back as strings, whatever its format."""
    if formats.input_format(path) == "parquet":
        tables = [pq.read_table(f) for f in formats.parquet_files(path)]
        frames = [t.to_pandas(types_mapper=pd.ArrowDtype) for t in tables]
        return as_text(pd.concat(frames, ignore_index=True))
    return pd.read_csv(path, dtype=str, keep_default_na=False).astype(object)
