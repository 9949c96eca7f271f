"""Score a file on a Dask cluster: ``imovsp score IN -o OUT --engine dask [--scheduler ADDRESS]``.

The input is split into partitions (byte ranges of a CSV, row groups of Parquet) that workers
read themselves, so IN and OUT must be on storage every worker sees (a shared volume). Each
partition goes through :func:`imovsp.batch.score_chunk`, the function the local engine calls
on each chunk, so both engines give the same rows.

The model travels to the workers as the files of its artifact directory, never as a pickled
object: a :class:`ModelPlugin` carries their bytes, and each worker writes them to its own
directory and loads them once with :meth:`Valuer.load`, which checks every checksum.

Output: a Parquet dataset directory (``part.00000.parquet``, … in input order), or, for a
CSV OUT or with ``single_file``, one file that this process appends the workers' rendered
partitions to, in order, keeping only a few in flight.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dask.delayed import Delayed, delayed
from distributed import Client, Future, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from imovsp import data, formats
from imovsp.artifact import ArtifactError
from imovsp.batch import CHUNK_ROWS, ScoreSummary, score_chunk
from imovsp.data import DataError
from imovsp.formats import Chunk, Format, Part
from imovsp.valuer import Valuer

CONNECT_TIMEOUT = "30s"
SAMPLE_BYTES = 1 << 20  # read to estimate a CSV's bytes per row, for partition sizes


class ClusterError(Exception):
    """The Dask cluster cannot be reached or cannot run the job."""


class ModelPlugin(WorkerPlugin):
    """Carries a model directory's files to every worker, which loads the model once."""

    def __init__(self, files: dict[str, bytes], version: str) -> None:
        self.files, self.version = files, version
        self.name = plugin_name(version)
        self.valuers: dict[str, Valuer] = {}  # by worker address (in-process workers share us)

    def setup(self, worker: Any) -> None:
        directory = Path(worker.local_directory) / "imovsp-models" / self.version
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (directory / name).write_bytes(content)
        self.valuers[worker.address] = Valuer.load(directory)

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "version": self.version, "name": self.name, "valuers": {}}


def plugin_name(version: str) -> str:
    return f"imovsp-model-{version}"


def model_files(valuer: Valuer) -> dict[str, bytes]:
    """The bytes of every file of ``valuer``'s artifact directory."""
    if valuer.path is None:
        raise ArtifactError("the model has no directory to send to the workers: save it first")
    return {p.name: p.read_bytes() for p in sorted(valuer.path.iterdir()) if p.is_file()}


def worker_valuer(version: str) -> Valuer:
    """The model this worker loaded from the files its :class:`ModelPlugin` brought."""
    worker = get_worker()
    plugin = worker.plugins[plugin_name(version)]
    assert isinstance(plugin, ModelPlugin)
    return plugin.valuers[worker.address]


def score_partition(
    part: pd.DataFrame,
    *,
    version: str,
    index: int,
    typed: bool,
    fmt: Format,
    directory: str | None,
    options: dict[str, Any],
) -> tuple[ScoreSummary, Part | None]:
    """Score one partition on a worker; write it into ``directory``, or return it rendered."""
    if typed:
        chunk = formats.chunk_from_table(pa.Table.from_pandas(part, preserve_index=False))
    else:  # CSV read as strings, in the string dtype the local engine's reader gives
        chunk = Chunk(part.astype(str).reset_index(drop=True))
    scored, produced, summary = score_chunk(worker_valuer(version), chunk, options)
    if directory is None:
        return summary, formats.render(chunk, scored, produced, fmt, header=index == 0)
    table = formats.scored_table(chunk, scored, produced)
    pq.write_table(table, Path(directory) / f"part.{index:05d}.parquet")
    return summary, None


def read_partitions(source: Path, *, chunk_rows: int) -> tuple[dd.DataFrame, bool]:
    """``source`` as a Dask DataFrame of about ``chunk_rows`` rows per partition, and whether
    its columns are typed (Parquet) rather than strings (CSV)."""
    fmt = formats.input_format(source)
    path = str(source.resolve())
    try:
        if fmt == "parquet":
            frame = dd.read_parquet(
                path, split_row_groups=True, dtype_backend="pyarrow", index=False
            )
            return frame, True
        frame = dd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            # gzip cannot be split: one partition per file.
            blocksize=None if fmt == "csv.gz" else _csv_blocksize(source, chunk_rows),
            compression="gzip" if fmt == "csv.gz" else None,
        )
        return frame, False
    except (*formats.READ_ERRORS, ValueError) as exc:
        raise DataError(f"cannot read {source}: {formats.one_line(exc)}") from exc


def _csv_blocksize(source: Path, chunk_rows: int) -> int:
    with open(source, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    rows = max(sample.count(b"\n") - 1, 1)
    return max(int(len(sample) / rows * chunk_rows), 1 << 12)


@contextmanager
def connect(scheduler: str | None, *, workers: int | None) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of a local cluster started for the job."""
    with ExitStack() as stack:
        try:
            if scheduler:
                client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
            else:
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                    )
                )
                client = stack.enter_context(Client(cluster))
        except (OSError, TimeoutError) as exc:
            where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise ClusterError(f"cannot reach {where}: {formats.one_line(exc)}") from exc
        yield client


def score_dataset(
    valuer: Valuer,
    source: Path,
    target: Path,
    *,
    out_format: Format | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    single_file: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    on_part: Callable[[int], None] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ScoreSummary:
    """Score ``source`` into ``target`` on a Dask cluster (see the module's docstring).

    ``options`` go to :func:`imovsp.batch.score_frame` on the workers.
    """
    fmt = out_format or formats.output_format(target)
    frame, typed = read_partitions(source, chunk_rows=chunk_rows)
    data.check_columns(frame.columns, require_price=False, source=str(source))
    partitions = frame.to_delayed()
    as_dataset = fmt == "parquet" and not single_file
    plugin = ModelPlugin(model_files(valuer), valuer.version)
    with connect(scheduler, workers=workers) as client:
        try:
            client.register_plugin(plugin)
        except ArtifactError as exc:
            raise ClusterError(f"the workers cannot load the model: {exc}") from exc
        with formats.atomic_output(target) as tmp:
            if as_dataset:
                tmp.mkdir()
            tasks = [
                delayed(score_partition, pure=False)(
                    part,
                    version=valuer.version,
                    index=i,
                    typed=typed,
                    fmt=fmt,
                    directory=str(tmp.resolve()) if as_dataset else None,
                    options=dict(options or {}),
                )
                for i, part in enumerate(partitions)
            ]
            try:
                if as_dataset:
                    summary = _run_all(client, tasks, on_part)
                else:
                    with formats.Writer(tmp, fmt) as writer:
                        summary = _run_in_order(client, tasks, writer, on_part)
            except formats.READ_ERRORS as exc:  # raised where a worker read its partition
                raise DataError(f"cannot read {source}: {formats.one_line(exc)}") from exc
            if summary.rows == 0:
                raise DataError(f"{source} has no rows to score")
    return summary


def _run_all(
    client: Client, tasks: list[Delayed], on_part: Callable[[int], None] | None
) -> ScoreSummary:
    futures: list[Future[Any]] = client.compute(tasks)
    summary = ScoreSummary()
    try:
        for future in as_completed(futures):
            part_summary, _ = future.result()
            summary.add(part_summary)
            if on_part:
                on_part(part_summary.rows)
    finally:
        client.cancel(futures)  # on failure, nothing keeps writing into the output
    return summary


def _run_in_order(
    client: Client,
    tasks: list[Delayed],
    writer: formats.Writer,
    on_part: Callable[[int], None] | None,
) -> ScoreSummary:
    """Append partitions in input order, with a few computing ahead of the one being written."""
    window = 2 * max(sum(client.nthreads().values()), 1)
    pending: deque[Future[Any]] = deque()
    queue = iter(tasks)
    summary = ScoreSummary()
    try:
        for task in queue:
            pending.append(client.compute(task))
            if len(pending) >= window:
                break
        while pending:
            future = pending.popleft()
            part_summary, part = future.result()
            future.release()
            writer.append(part)
            summary.add(part_summary)
            if on_part:
                on_part(part_summary.rows)
            following = next(queue, None)
            if following is not None:
                pending.append(client.compute(following))
    finally:
        client.cancel(list(pending))
    return summary
