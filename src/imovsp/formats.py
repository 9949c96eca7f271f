"""Listing files read and written in chunks: CSV, gzip-compressed CSV and Parquet.

Whatever the format, the validator sees each chunk as strings (``""`` where a value is
missing), exactly as it sees a CSV. Parquet rows also keep their stored types, so a Parquet
file scored into Parquet comes out with the columns it went in with.

Outputs are written under a temporary name beside the target and renamed into place only when
complete (:func:`atomic_output`), so an interrupted run never leaves a file, or a partitioned
Parquet directory, that looks finished.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias, get_args

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imovsp.data import DataError

Format = Literal["csv", "csv.gz", "parquet"]
FORMATS: tuple[Format, ...] = get_args(Format)
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
# gzip's own default; Python's (9) is several times slower for a few percent smaller files.
GZIP_LEVEL = 6
# Errors that mean "this is not a readable listings file", whichever reader meets them.
READ_ERRORS = (
    UnicodeDecodeError,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    pa.ArrowException,
    EOFError,
    OSError,
    zlib.error,
)


@dataclass
class Chunk:
    """Consecutive rows of an input file."""

    raw: pd.DataFrame  # every value as a string ("" where missing), as the validator reads them
    table: pa.Table | None = None  # the same rows with their stored types (Parquet input)

    def __len__(self) -> int:
        return len(self.raw)


def output_format(path: Path, given: str | None = None) -> Format:
    """The format to write ``path`` in: ``given``, else from its extension, else CSV."""
    if given is not None:
        if given not in FORMATS:
            raise DataError(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    name = path.name.lower()
    if name.endswith(".gz"):
        return "csv.gz"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def input_format(path: Path) -> Format:
    """What ``path`` holds, from its first bytes (a directory is a Parquet dataset)."""
    if path.is_dir():
        return "parquet"
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == PARQUET_MAGIC:
        return "parquet"
    if head[:2] == GZIP_MAGIC:
        return "csv.gz"
    return "csv"


def parquet_files(path: Path) -> list[Path]:
    """``path`` itself, or the Parquet files of a dataset directory in their natural order."""
    if not path.is_dir():
        return [path]

    def natural(p: Path) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p.relative_to(path)))]

    files = [
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    ]
    if not files:
        raise DataError(f"{path} is a directory with no Parquet files in it")
    return sorted(files, key=natural)


def read_chunks(path: Path, *, chunk_rows: int) -> Iterator[Chunk]:
    """The rows of ``path`` in chunks of at most ``chunk_rows``; ``DataError`` if unreadable."""
    fmt = input_format(path)
    try:
        if fmt == "parquet":
            for file in parquet_files(path):
                for batch in pq.ParquetFile(file).iter_batches(batch_size=chunk_rows):
                    yield chunk_from_table(pa.Table.from_batches([batch]))
        else:
            reader = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8",
                compression="gzip" if fmt == "csv.gz" else None,
                chunksize=chunk_rows,
            )
            with reader:
                for frame in reader:
                    yield Chunk(frame)
    except READ_ERRORS as exc:
        what = "a Parquet file" if fmt == "parquet" else f"a listings {fmt.upper()} file"
        raise DataError(f"cannot read {path} as {what}: {one_line(exc)}") from exc


def count_rows(path: Path) -> int | None:
    """Rows in a Parquet file or dataset, from its footers; ``None`` for CSV (unknown)."""
    if input_format(path) != "parquet":
        return None
    try:
        return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in parquet_files(path))
    except READ_ERRORS:
        return None  # read_chunks will say what is wrong with it


def chunk_from_table(table: pa.Table) -> Chunk:
    """A typed table as a chunk: its values as strings for the validator, its types kept."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_boolean(column.type):  # flags stored as booleans read as 0/1
            column = column.cast(pa.int8())
        try:
            text = column.cast(pa.string())
        except pa.ArrowNotImplementedError as exc:
            raise DataError(f"column {name!r} holds {column.type}, not plain values") from exc
        columns[name] = text.fill_null("").to_numpy(zero_copy_only=False)
    raw = pd.DataFrame(columns, dtype=object) if columns else pd.DataFrame(index=range(len(table)))
    return Chunk(raw, table)


def scored_table(chunk: Chunk, scored: pd.DataFrame, produced: Sequence[str]) -> pa.Table:
    """The scored rows as Arrow: input columns with their stored types, then ``produced``."""
    if chunk.table is None:
        return _arrow(scored)
    extra = _arrow(scored[list(produced)])
    arrays = [
        extra.column(name) if name in produced else chunk.table.column(name)
        for name in scored.columns
    ]
    return pa.table(arrays, names=list(scored.columns))


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as Arrow, text as plain ``string`` whichever string dtype pandas used."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    large = [i for i, f in enumerate(table.schema) if pa.types.is_large_string(f.type)]
    for i in large:
        table = table.set_column(i, table.field(i).name, table.column(i).cast(pa.string()))
    return table


Part: TypeAlias = (
    bytes | pa.Table
)  # a rendered chunk: CSV bytes (gzip members for csv.gz), or a table


def render(
    chunk: Chunk, scored: pd.DataFrame, produced: Sequence[str], fmt: Format, *, header: bool
) -> Part:
    """Scored rows ready to append to an output of format ``fmt`` (see :class:`Writer`)."""
    if fmt == "parquet":
        table: pa.Table = scored_table(chunk, scored, produced)
        return table
    text = scored.to_csv(index=False, header=header).encode("utf-8")
    # Concatenated gzip members are one valid gzip file, so parts compress independently.
    return gzip.compress(text, compresslevel=GZIP_LEVEL) if fmt == "csv.gz" else text


class Writer:
    """Appends rendered parts, in order, to one output file of the given format."""

    def __init__(self, path: Path, fmt: Format) -> None:
        self.path, self.format = path, fmt
        self.parts = 0
        self._file: IO[bytes] | None = None
        self._parquet: pq.ParquetWriter | None = None

    def write(self, chunk: Chunk, scored: pd.DataFrame, produced: Sequence[str]) -> None:
        """Render and append one scored chunk (the first one carries the CSV header)."""
        self.append(render(chunk, scored, produced, self.format, header=self.parts == 0))

    def append(self, part: Part) -> None:
        if isinstance(part, pa.Table):
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, part.schema)
            elif not part.schema.equals(self._parquet.schema):
                # A chunk whose optional column is all empty can infer another type (null).
                part = part.cast(self._parquet.schema)
            self._parquet.write_table(part)
        else:
            if self._file is None:
                self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            self._file.write(part)
        self.parts += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed to it when the block ends without error.

    Works for a file or a directory (a partitioned dataset); whatever ``target`` was before is
    replaced only once the new output is complete, and the temporary one is removed on failure.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unique per run: a Dask worker still busy with a failed run's partition (a running task
    # cannot be stopped) must not write into a later run's output.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        yield tmp
        if not tmp.exists():
            raise DataError(f"nothing was written to {target}")
        if target.is_dir() and not target.is_symlink():
            # A directory cannot be replaced in one rename: move the old one aside first.
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            target.rename(old)
            tmp.rename(target)
            _remove(old)
        else:
            tmp.replace(target)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    """Remove ``path`` completely, even while someone still writes files into it by name."""
    if path.is_dir() and not path.is_symlink():
        # Renamed first, in one step: from then on a write into ``path`` fails for want of the
        # directory, so nothing is added while the tree is removed, and nothing is left.
        removing = path.with_name(f"{path.name}.removing")
        try:
            path.rename(removing)
        except FileNotFoundError:
            return
        except OSError:  # cannot be renamed (an old leftover in the way): removed where it is
            removing = path
        shutil.rmtree(removing, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
