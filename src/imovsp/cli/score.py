"""``imovsp score``: value every listing of a file (CSV, gzipped CSV, Parquet) into another."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imovsp.cli.common import (
    CHUNK_ROWS,
    FORMATS,
    as_of_option,
    cli,
    fail,
    level_option,
    load_valuer,
    model_option,
    say,
    settings_of,
    user_errors,
)

if TYPE_CHECKING:
    from imovsp.batch import ScoreSummary
    from imovsp.formats import Format
    from imovsp.settings import Settings
    from imovsp.valuer import Valuer


def default_output(source: Path, engine: str) -> Path:
    """``in.csv`` → ``in.scored.csv`` (same format); a Parquet dataset for the Dask engine."""
    from imovsp import formats

    fmt = "parquet" if engine == "dask" else formats.input_format(source)
    name = source.name
    for extension in (".csv.gz", ".gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
            break
    return source.with_name(f"{name}.scored.{'csv.gz' if fmt == 'csv.gz' else fmt}")


@contextmanager
def progress(total: int | None, *, enabled: bool | None) -> Iterator[Callable[[int], None] | None]:
    """A rows/s progress bar on stderr when it is a terminal (or when asked): yields the
    function that advances it by a number of rows, or ``None`` when there is no bar."""
    from tqdm import tqdm

    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield None
        return
    with tqdm(
        total=total,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0,  # chunks are large: redraw after each one, not on a timer
    ) as bar:

        def advance(rows: int) -> None:
            bar.update(rows)

        yield advance


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output file (default: SOURCE with .scored and the same format). With --engine dask, "
    "a Parquet OUT is a partitioned dataset directory unless --single-file.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(FORMATS),
    help="Output format (default: from OUT's extension, CSV when it has none). Input formats "
    "are recognised from their content.",
)
@model_option
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: stream on this machine in constant memory. dask: partitions on a Dask cluster "
    "(needs the imovsp[dask] extra).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local cluster).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Workers of the local Dask cluster (default: one per CPU core).",
)
@click.option(
    "--single-file",
    is_flag=True,
    help="With --engine dask: write one Parquet file instead of a partitioned dataset.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=CHUNK_ROWS,
    show_default=True,
    help="Rows per chunk (local engine) or per Dask partition.",
)
@click.option(
    "--progress/--no-progress",
    "show_progress",
    default=None,
    help="Show a progress bar with rows/s (default: only on a terminal).",
)
@level_option
@as_of_option
@click.pass_context
def score(
    ctx: click.Context,
    source: Path,
    output: Path | None,
    out_format: Format | None,
    model: Path | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    single_file: bool,
    chunk_rows: int,
    show_progress: bool | None,
    level: float,
    as_of: str | None,
) -> None:
    """Score a listings file (CSV, gzip CSV or Parquet): every row kept, in order, plus
    predicted_price and its range (price_low, price_high) in the money of the as_of month
    (with as_of and index_factor columns), or an error."""
    from imovsp import formats
    from imovsp.batch import score_file

    settings = settings_of(ctx)
    if engine == "local" and (scheduler or workers or single_file):
        fail("--scheduler, --workers and --single-file go with --engine dask")
    if scheduler and workers:
        fail("--workers sizes the local cluster; a --scheduler cluster has its own workers")
    with user_errors():
        if not source.exists():
            fail(f"input file not found: {source}")
        target = output or default_output(source, engine)
        valuer = load_valuer(settings, model, train_if_missing=True)
        months = batch_months(settings, valuer, as_of)
        started = time.perf_counter()
        with progress(formats.count_rows(source), enabled=show_progress) as advance:
            if engine == "dask":
                summary = _score_on_dask(
                    valuer,
                    source,
                    target,
                    out_format=out_format,
                    scheduler=scheduler,
                    workers=workers,
                    single_file=single_file,
                    chunk_rows=chunk_rows,
                    on_part=advance,
                    options={"level": level, "months": months},
                )
            else:
                summary = score_file(
                    valuer,
                    source,
                    target,
                    out_format=out_format,
                    chunk_rows=chunk_rows,
                    on_chunk=advance,
                    options={"level": level, "months": months},
                )
    seconds = time.perf_counter() - started
    rate = summary.rows / seconds if seconds > 0 else 0.0
    say(
        f"scored {summary.scored} of {summary.rows} rows ({summary.errors} with errors) in "
        f"{seconds:.1f}s ({rate:,.0f} rows/s) with model {valuer.version} → {target}"
    )


def batch_months(settings: Settings, valuer: Valuer, asked: str | None) -> dict[str, Any]:
    """Per negotiation type, ``(month, factor)`` for :func:`imovsp.batch.score_frame`, or the
    error its rows get; exit 2 when the month is malformed or in no series."""
    from imovsp import as_of as as_of_module
    from imovsp.price_index import PriceIndexError

    index = settings.index()
    as_of_module.check_model(index, valuer.data_month)
    found = as_of_module.resolve_all(index, valuer.data_month, valuer.negotiations, asked)
    return {
        n: str(at) if isinstance(at, PriceIndexError) else (at.month, at.factor)
        for n, at in found.items()
    }


def _score_on_dask(valuer: Valuer, source: Path, target: Path, **options: Any) -> ScoreSummary:
    """The Dask engine, imported only when asked for (it needs the imovsp[dask] extra)."""
    try:
        from imovsp import batch_dask
    except ImportError as exc:
        fail(f"--engine dask needs Dask: install imovsp[dask] ({exc})")
    try:
        return batch_dask.score_dataset(valuer, source, target, **options)
    except batch_dask.ClusterError as exc:
        fail(str(exc))
