"""The Dask engine on a real two-worker LocalCluster gives the local engine's rows, row for row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster

from imovsp import batch_dask, formats
from imovsp.artifact import ArtifactError
from imovsp.batch import score_file
from imovsp.cli import cli
from imovsp.data import DataError
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer
from listing_files import raw_rows, write

ROWS = 600
PARTITION_ROWS = 100  # ~6 partitions over 2 workers


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A real two-worker cluster in this process (threads, no spawn: quick and robust)."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
        death_timeout=30,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def listings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(raw_rows(ROWS, seed=61), tmp_path_factory.mktemp("dask") / "listings.csv")


def dataset_table(path: Path) -> pa.Table:
    """A Parquet dataset directory's rows in file order, as one table."""
    return pa.concat_tables([pq.read_table(f) for f in formats.parquet_files(path)])


def local_engine(valuer: Valuer, source: Path, target: Path) -> Path:
    score_file(valuer, source, target, chunk_rows=37)  # other chunk bounds than Dask's
    return target


def test_dask_dataset_equals_the_local_engine_row_for_row(
    valuer: Valuer, scheduler: str, listings_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "scored.parquet"
    parts: list[int] = []
    summary = batch_dask.score_dataset(
        valuer,
        listings_file,
        target,
        scheduler=scheduler,
        chunk_rows=PARTITION_ROWS,
        on_part=parts.append,
    )
    assert target.is_dir()
    files = formats.parquet_files(target)
    assert len(files) >= 4  # really partitioned, over both workers
    assert [f.name for f in files] == [f"part.{i:05d}.parquet" for i in range(len(files))]
    assert sum(parts) == ROWS
    assert (summary.rows, summary.errors) == (ROWS, 3)
    expected = pq.read_table(local_engine(valuer, listings_file, tmp_path / "local.parquet"))
    got = dataset_table(target)
    assert got.schema.equals(expected.schema)
    assert got.equals(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.parquet", "scored.parquet"]


@pytest.mark.parametrize("name", ["scored.csv", "scored.csv.gz"])
def test_dask_single_csv_file_is_byte_for_byte_the_local_engines(
    valuer: Valuer, scheduler: str, listings_file: Path, tmp_path: Path, name: str
) -> None:
    target = tmp_path / name
    batch_dask.score_dataset(
        valuer, listings_file, target, scheduler=scheduler, chunk_rows=PARTITION_ROWS
    )
    expected = local_engine(valuer, listings_file, tmp_path / f"local-{name}")
    if name.endswith(".gz"):  # compressed in independent members, so compare the content
        import gzip

        assert gzip.decompress(target.read_bytes()) == gzip.decompress(expected.read_bytes())
    else:
        assert target.read_bytes() == expected.read_bytes()


def test_dask_typed_parquet_to_a_single_parquet_file_equals_the_local_engine(
    valuer: Valuer, scheduler: str, tmp_path: Path
) -> None:
    source = tmp_path / "typed.parquet"
    typed = synthetic_listings(ROWS, seed=62)
    typed.loc[10, "Condo"] = None
    # Several row groups, so that Dask has partitions to spread.
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), source, row_group_size=90)
    target = tmp_path / "one.parquet"
    batch_dask.score_dataset(valuer, source, target, scheduler=scheduler, single_file=True)
    assert target.is_file()
    expected = pq.read_table(local_engine(valuer, source, tmp_path / "local.parquet"))
    got = pq.read_table(target)
    assert got.equals(expected)
    assert got.schema.field("Condo").type == pa.float64()


def test_model_travels_as_files_and_each_worker_loads_it_once(
    valuer: Valuer,
    scheduler: str,
    listings_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert valuer.path is not None
    sent = batch_dask.model_files(valuer)
    assert sent == {p.name: p.read_bytes() for p in valuer.path.iterdir()}
    loads: list[Path] = []
    load = Valuer.load.__func__  # type: ignore[attr-defined]

    def counting_load(cls: type[Valuer], path: Path) -> Valuer:
        loads.append(path)
        return load(cls, path)  # type: ignore[no-any-return]

    monkeypatch.setattr(Valuer, "load", classmethod(counting_load))
    target = tmp_path / "out.parquet"
    batch_dask.score_dataset(valuer, listings_file, target, scheduler=scheduler, chunk_rows=60)
    assert len(formats.parquet_files(target)) >= 8
    assert len(loads) == 2  # once per worker, not once per partition
    # ...each from the files it was sent, written to its own directory, not the model's.
    assert len(set(loads)) == 2
    assert all("imovsp-models" in str(p) and p != valuer.path for p in loads)


def test_a_model_without_a_directory_cannot_be_sent(
    valuer: Valuer, scheduler: str, listings_file: Path, tmp_path: Path
) -> None:
    unsaved = Valuer(
        valuer.builder,
        valuer.boosters,
        valuer.metadata,
        calibrations=valuer.calibrations,
        listings=valuer.listings,
    )
    with pytest.raises(ArtifactError, match="no directory to send to the workers"):
        batch_dask.score_dataset(
            unsaved, listings_file, tmp_path / "o.parquet", scheduler=scheduler
        )
    assert list(tmp_path.iterdir()) == []


def test_dask_malformed_partition_fails_cleanly_and_writes_nothing(
    valuer: Valuer, scheduler: str, tmp_path: Path
) -> None:
    text = raw_rows(ROWS, seed=63).to_csv(index=False).splitlines()
    text[450] += ",surplus,fields"  # deep inside a later partition
    source = tmp_path / "bad.csv"
    source.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match="cannot read"):
        batch_dask.score_dataset(
            valuer, source, tmp_path / "out.parquet", scheduler=scheduler, chunk_rows=50
        )
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]


def test_dask_missing_columns_is_a_data_error_before_any_work(
    valuer: Valuer, scheduler: str, tmp_path: Path
) -> None:
    source = write(raw_rows().drop(columns=["Size"]), tmp_path / "in.csv")
    with pytest.raises(DataError, match=r"missing required column\(s\): Size"):
        batch_dask.score_dataset(valuer, source, tmp_path / "o.parquet", scheduler=scheduler)


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def runner(env: None) -> CliRunner:
    return CliRunner()


def test_cli_dask_engine_on_a_scheduler_address(
    runner: CliRunner, scheduler: str, listings_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    result = runner.invoke(
        cli,
        [
            "score",
            str(listings_file),
            "-o",
            str(target),
            "--format",
            "parquet",
            "--engine",
            "dask",
            "--scheduler",
            scheduler,
            "--chunk-rows",
            "200",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"scored {ROWS - 3} of {ROWS} rows (3 with errors)" in result.output
    assert dataset_table(target).num_rows == ROWS


def test_cli_unreachable_scheduler_exits_2(
    runner: CliRunner, listings_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_dask, "CONNECT_TIMEOUT", "1s")
    result = runner.invoke(
        cli,
        [
            "score",
            str(listings_file),
            "-o",
            str(tmp_path / "out.parquet"),
            "--engine",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert not (tmp_path / "out.parquet").exists()


def test_client_fixture_cluster_really_has_two_workers(scheduler: str) -> None:
    with Client(scheduler) as client:
        assert len(client.scheduler_info()["workers"]) == 2


def test_model_plugin_pickles_as_files_and_loads_them_on_setup(
    valuer: Valuer, tmp_path: Path
) -> None:
    import pickle
    from types import SimpleNamespace

    files = batch_dask.model_files(valuer)
    shipped = pickle.loads(pickle.dumps(batch_dask.ModelPlugin(files, valuer.version)))
    worker = SimpleNamespace(local_directory=str(tmp_path), address="tcp://worker:1")
    shipped.setup(worker)
    loaded = shipped.valuers[worker.address]
    assert loaded.version == valuer.version
    assert loaded.path == tmp_path / "imovsp-models" / valuer.version
    # Once loaded, the plugin still travels as the files alone, never the model object.
    again = pickle.dumps(shipped)
    assert len(again) < sum(len(b) for b in files.values()) + 1_000
    assert pickle.loads(again).valuers == {}


def test_cli_dask_engine_starts_a_local_cluster_of_worker_processes(
    runner: CliRunner, listings_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "one.csv"
    result = runner.invoke(
        cli,
        ["score", str(listings_file), "-o", str(target), "--engine", "dask", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert f"scored {ROWS - 3} of {ROWS} rows (3 with errors)" in result.output
    assert len(target.read_text().splitlines()) == ROWS + 1
