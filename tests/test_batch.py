"""Batch scoring on one machine: streaming in chunks, formats, atomic output, bad files."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from imovsp import formats
from imovsp.batch import ERROR, PREDICTED, score_file, score_frame
from imovsp.cli import cli
from imovsp.data import DataError
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer
from listing_files import BAD_ROWS, as_text, raw_rows, read, write


def test_score_file_in_many_chunks_equals_scoring_all_rows_at_once(
    valuer: Valuer, tmp_path: Path
) -> None:
    rows = raw_rows()
    source, target = write(rows, tmp_path / "in.csv"), tmp_path / "out.csv"
    chunks: list[int] = []
    summary = score_file(valuer, source, target, chunk_rows=7, on_chunk=chunks.append)
    assert chunks == [7] * 8 + [4]
    out = read(target)
    pd.testing.assert_frame_equal(out, as_text(score_frame(valuer, rows)))
    pd.testing.assert_frame_equal(out[rows.columns], rows.astype(object))  # all rows, in order
    for i, message in BAD_ROWS.items():
        assert out.loc[i, ERROR] == message
        assert out.loc[i, PREDICTED] == ""
    assert out.loc[50, ERROR] == ""
    assert (summary.rows, summary.errors, summary.scored) == (60, 3, 57)


@pytest.mark.parametrize("source_name", ["in.csv", "in.csv.gz", "in.parquet"])
@pytest.mark.parametrize("target_name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_every_format_in_and_out_gives_the_same_rows(
    valuer: Valuer, tmp_path: Path, source_name: str, target_name: str
) -> None:
    rows = raw_rows()
    source = write(rows, tmp_path / source_name)
    target = tmp_path / target_name
    score_file(valuer, source, target, chunk_rows=16)
    if target_name.endswith(".gz"):
        assert target.read_bytes()[:2] == formats.GZIP_MAGIC
    pd.testing.assert_frame_equal(read(target), as_text(score_frame(valuer, rows)))


def test_format_option_overrides_the_extension(valuer: Valuer, tmp_path: Path) -> None:
    source, target = write(raw_rows(), tmp_path / "in.csv"), tmp_path / "scored.out"
    score_file(valuer, source, target, out_format="parquet")
    assert formats.input_format(target) == "parquet"
    assert pq.read_table(target).num_rows == 60


def test_parquet_keeps_its_column_types_and_reads_nulls_and_booleans(
    valuer: Valuer, tmp_path: Path
) -> None:
    typed = synthetic_listings(40, seed=42)
    typed["Elevator"] = typed["Elevator"].astype(bool)
    typed["Condo"] = typed["Condo"].astype("float64")
    typed.loc[5, "Condo"] = np.nan  # a null fee is unknown, like an empty CSV cell
    typed.loc[6, ["Latitude", "Longitude"]] = np.nan
    source, target = tmp_path / "typed.parquet", tmp_path / "scored.parquet"
    typed.to_parquet(source, index=False)
    score_file(valuer, source, target, chunk_rows=9)
    table = pq.read_table(target)
    input_schema = pq.read_schema(source)
    for field in input_schema:
        assert table.schema.field(field.name).type == field.type
    assert table.schema.field(PREDICTED).type == pa.int64()
    out = table.to_pandas()
    pd.testing.assert_frame_equal(out[typed.columns], typed)
    # The same rows as strings, as a CSV would give them, get the same prices.
    expected = score_frame(valuer, as_text(typed.assign(Elevator=typed["Elevator"].astype(int))))
    assert (out[ERROR] == "").all()
    assert (expected[ERROR] == "").all()
    assert list(out[PREDICTED]) == list(expected[PREDICTED].astype("int64"))


def test_rescoring_a_scored_file_replaces_its_prediction_columns(
    valuer: Valuer, tmp_path: Path
) -> None:
    source = write(raw_rows(), tmp_path / "in.parquet")
    once, twice = tmp_path / "once.parquet", tmp_path / "twice.parquet"
    score_file(valuer, source, once)
    score_file(valuer, once, twice)
    assert pq.read_table(once).equals(pq.read_table(twice))


def test_interrupted_run_leaves_no_output_and_keeps_the_previous_one(
    valuer: Valuer, tmp_path: Path
) -> None:
    source, target = write(raw_rows(), tmp_path / "in.csv"), tmp_path / "out.csv"
    target.write_text("previous complete output\n")

    def interrupt(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(valuer, source, target, chunk_rows=10, on_chunk=interrupt)
    assert target.read_text() == "previous complete output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_interrupted_run_into_a_new_file_leaves_nothing(valuer: Valuer, tmp_path: Path) -> None:
    source, target = write(raw_rows(), tmp_path / "in.csv"), tmp_path / "new.parquet"
    calls = 0

    def interrupt(rows: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(valuer, source, target, chunk_rows=10, on_chunk=interrupt)
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_atomic_output_replaces_a_directory_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "part.0.parquet").write_text("old")

    def fail_halfway() -> None:
        with formats.atomic_output(target) as tmp:
            tmp.mkdir()
            (tmp / "part.0.parquet").write_text("half")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_halfway()
    assert (target / "part.0.parquet").read_text() == "old"
    with formats.atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "part.0.parquet").write_text("new")
    assert (target / "part.0.parquet").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["dataset"]


def test_a_failed_output_is_gone_on_return_though_a_worker_still_writes_into_it(
    tmp_path: Path,
) -> None:
    # A Dask worker cannot be stopped mid-task: after a failure it may go on writing parts
    # into the temporary dataset directory while, and after, it is removed.
    target = tmp_path / "out.parquet"
    started, stop = threading.Event(), threading.Event()
    written: list[int] = []

    def worker(directory: Path) -> None:
        i = 0
        while not stop.is_set():
            try:
                (directory / f"part.{i:05d}.parquet").write_bytes(b"x")
            except FileNotFoundError:  # as pyarrow's writer: no directory, no file
                pass
            else:
                written.append(i)
            i += 1
            if len(written) >= 2000:  # enough that removing them takes a while
                started.set()

    threads: list[threading.Thread] = []

    def fail_while_a_worker_writes() -> None:
        with formats.atomic_output(target) as tmp:
            tmp.mkdir()
            threads.append(threading.Thread(target=worker, args=(tmp,), daemon=True))
            threads[0].start()
            assert started.wait(30)
            raise RuntimeError("a partition failed")

    try:
        with pytest.raises(RuntimeError):
            fail_while_a_worker_writes()
        left = sorted(p.name for p in tmp_path.iterdir())  # at once, the worker still busy
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert written  # the worker did write into the output before the failure
    assert left == []


def test_parquet_dataset_files_are_read_in_natural_order(tmp_path: Path) -> None:
    for i in (10, 2, 1):
        pd.DataFrame({"i": [i]}).to_parquet(tmp_path / f"part.{i}.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    names = [p.name for p in formats.parquet_files(tmp_path)]
    assert names == ["part.1.parquet", "part.2.parquet", "part.10.parquet"]


def test_score_file_on_an_empty_listing_file_says_so(valuer: Valuer, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    raw_rows().iloc[:0].to_csv(source, index=False)
    with pytest.raises(DataError, match="has no rows to score"):
        score_file(valuer, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def runner(env: None) -> CliRunner:
    return CliRunner()


def assert_one_line_error(result, message: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"Error: {lines[0][len('Error: ') :]}"], result.output
    assert message in lines[0], result.output


def ragged(path: Path) -> None:
    text = raw_rows().to_csv(index=False).splitlines()
    text[30] += ",surplus"
    path.write_text("\n".join(text) + "\n")


def truncated_gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(raw_rows().to_csv(index=False).encode())[:300])


def corrupt_parquet(path: Path) -> None:
    path.write_bytes(formats.PARQUET_MAGIC + b"\x00" * 64)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("ragged.csv", ragged, "cannot read"),
        ("binary.csv", lambda p: p.write_bytes(b"\xff\xfe\x00garbage\x9c" * 50), "cannot read"),
        ("empty.csv", lambda p: p.write_text(""), "cannot read"),
        ("cut.csv.gz", truncated_gzip, "cannot read"),
        ("bad.parquet", corrupt_parquet, "as a Parquet file"),
        (
            "columns.parquet",
            lambda p: raw_rows().drop(columns=["District"]).to_parquet(p),
            "missing required column(s): District",
        ),
        (
            "nested.parquet",
            lambda p: raw_rows().assign(Rooms=[[1]] * 60).to_parquet(p),
            "column 'Rooms' holds list<element: int64>",
        ),
    ],
)
def test_score_malformed_file_exits_2_with_one_line_and_writes_nothing(
    runner: CliRunner,
    tmp_path: Path,
    name: str,
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    source = tmp_path / name
    make(source)
    result = runner.invoke(cli, ["score", str(source), "-o", str(tmp_path / "out.csv")])
    assert_one_line_error(result, message)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_score_writes_same_format_by_default_and_reports_rows_per_second(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write(raw_rows(), tmp_path / "listings.parquet")
    result = runner.invoke(cli, ["score", str(source)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "listings.scored.parquet").num_rows == 60
    assert "scored 57 of 60 rows (3 with errors)" in result.output
    assert "rows/s) with model" in result.output


def test_score_shows_a_progress_bar_only_when_asked_or_on_a_terminal(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write(raw_rows(), tmp_path / "in.csv")
    quiet = runner.invoke(cli, ["score", str(source), "--chunk-rows", "10"])
    assert quiet.exit_code == 0, quiet.output
    assert len(quiet.output.strip().splitlines()) == 1  # the summary line, no bar (no TTY)
    shown = runner.invoke(cli, ["score", str(source), "--chunk-rows", "10", "--progress"])
    assert shown.exit_code == 0, shown.output
    bar = shown.output.split("\r")
    assert len(bar) >= 6  # redrawn in place after each of the 6 chunks
    assert "60.0 rows [" in bar[-1]
    assert " rows/s]" in bar[-1]


def test_score_dask_options_need_the_dask_engine(runner: CliRunner, tmp_path: Path) -> None:
    source = write(raw_rows(), tmp_path / "in.csv")
    result = runner.invoke(cli, ["score", str(source), "--scheduler", "tcp://10.0.0.1:8786"])
    assert_one_line_error(result, "--scheduler, --workers and --single-file go with --engine dask")


@pytest.mark.parametrize(
    ("name", "engine", "expected"),
    [
        ("a.csv", "local", "a.scored.csv"),
        ("a.b.csv.gz", "local", "a.b.scored.csv.gz"),
        ("a.parquet", "local", "a.scored.parquet"),
        ("a.csv", "dask", "a.scored.parquet"),
    ],
)
def test_default_output_keeps_the_format_or_is_a_dataset_for_dask(
    tmp_path: Path, name: str, engine: str, expected: str
) -> None:
    from imovsp.cli import default_output

    source = write(raw_rows(5), tmp_path / name)
    assert default_output(source, engine) == tmp_path / expected


def test_score_workers_and_scheduler_together_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    source = write(raw_rows(), tmp_path / "in.csv")
    args = ["--engine", "dask", "--scheduler", "tcp://10.0.0.1:8786", "--workers", "2"]
    result = runner.invoke(cli, ["score", str(source), *args])
    assert_one_line_error(result, "--workers sizes the local cluster")
