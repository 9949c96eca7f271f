"""Batch scoring throughput and memory, against the model's own predict speed (the limit).

    uv run python benchmarks/batch.py [--rows 1000000] [--model DIR] [--memory-rows 5000000]

In one run, on a synthetic file of ``--rows`` listings (written to a temporary directory):

1. the limit: the boosters' raw ``predict`` on feature matrices already built from the file's
   first ``--raw-rows`` rows (no reading, validation, features or writing);
2. ``imovsp score`` end to end, each in its own process (interpreter start and model load
   included): CSV → CSV, Parquet → Parquet, CSV → Parquet, with rows/s, the ratio to the
   limit and the process's peak RSS;
3. the Dask engine on a local cluster (``--workers`` processes), CSV → partitioned Parquet,
   against the local engine's CSV → Parquet;
4. with ``--memory-rows``, a second, larger CSV → CSV run, to show memory stays flat.

The model is ``--model``, else the current one in ``IMOVSP_MODELS_DIR``, else one trained on
``IMOVSP_DATA`` into the temporary directory. Generated files are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from imovsp import artifact, data
from imovsp.features import frame_columns
from imovsp.settings import get_settings
from imovsp.synthetic import write_synthetic
from imovsp.valuer import Valuer

FLOOR = 0.5  # end to end must reach half the raw predict rate


@dataclass
class Run:
    name: str
    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_path(given: Path | None, workdir: Path) -> Path:
    settings = get_settings()
    path = artifact.resolve(given or settings.model, settings.models_dir)
    if path is not None:
        return path
    say(f"no model in {settings.models_dir}: training one on {settings.data}")
    out = workdir / "models"
    subprocess.run(
        [sys.executable, "-m", "imovsp", "train", "--out", str(out), "--no-seed-comparison"],
        check=True,
    )
    resolved = artifact.resolve(None, out)
    assert resolved is not None
    return resolved


def csv_to_parquet(source: Path, target: Path, *, row_group_rows: int = 100_000) -> None:
    """A typed Parquet copy of a CSV (types as pyarrow infers them), streamed."""
    reader = pacsv.open_csv(source)
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch, row_group_size=row_group_rows)


def raw_limit(model: Path, source: Path, rows: int) -> tuple[int, float, float]:
    """(rows, predict seconds, prepare seconds) for the boosters on ready feature matrices."""
    valuer = Valuer.load(model)
    raw = pd.read_csv(source, dtype=str, keep_default_na=False, nrows=rows)
    started = time.perf_counter()
    frame = data.validate(raw, require_price=False).frame
    frame = frame[~valuer.unknown_districts(frame)]
    cols = frame_columns(frame)
    cols["district"] = np.array([valuer.builder.resolve_district(d) for d in cols["district"]])
    matrices = {}
    for negotiation in valuer.boosters:
        m = cols["negotiation"] == negotiation
        matrices[negotiation] = valuer.builder.matrix(
            {k: v[m] for k, v in cols.items()}, negotiation=negotiation
        )
    prepared = time.perf_counter() - started
    started = time.perf_counter()
    for negotiation, booster in valuer.boosters.items():
        booster.predict(matrices[negotiation])
    predicted = time.perf_counter() - started
    return sum(len(x) for x in matrices.values()), predicted, prepared


def score(name: str, rows: int, args: list[str], env: dict[str, str]) -> Run:
    """``imovsp score ARGS`` in a child process: wall time and peak RSS (largest process)."""
    say(f"running {name}: imovsp score {' '.join(args)}")
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "imovsp", "score", *args, "--no-progress"], env=env
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {child.returncode}")
    # Linux: the largest of the child and its waited-for descendants (Dask's worker processes).
    return Run(name, rows, seconds, usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--raw-rows", type=int, default=200_000, help="rows for the limit")
    parser.add_argument("--memory-rows", type=int, default=0, help="also a CSV run this big")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--workers", type=int, default=2, help="Dask local cluster workers")
    parser.add_argument("--no-dask", action="store_true")
    opts = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="imovsp-bench-batch-"))
    try:
        model = model_path(opts.model, workdir)
        env = {**os.environ, "IMOVSP_MODEL": str(model.resolve())}
        csv = workdir / "listings.csv"
        say(f"writing {opts.rows:,} synthetic rows to {csv}")
        write_synthetic(csv, opts.rows, seed=2019)
        parquet = workdir / "listings.parquet"
        csv_to_parquet(csv, parquet)
        out = workdir / "out"
        out.mkdir()

        say(f"limit: raw predict on the first {opts.raw_rows:,} rows' feature matrices")
        limit_rows, predict_s, prepare_s = raw_limit(model, csv, opts.raw_rows)
        limit = limit_rows / predict_s

        runs = [
            score("local CSV → CSV", opts.rows, [str(csv), "-o", str(out / "a.csv")], env),
            score(
                "local Parquet → Parquet",
                opts.rows,
                [str(parquet), "-o", str(out / "b.parquet")],
                env,
            ),
            score("local CSV → Parquet", opts.rows, [str(csv), "-o", str(out / "c.parquet")], env),
        ]
        if not opts.no_dask:
            dask_args = [str(csv), "-o", str(out / "d.parquet"), "--engine", "dask"]
            dask_args += ["--workers", str(opts.workers)]
            runs.append(
                score(
                    f"dask ({opts.workers} workers) CSV → Parquet dataset",
                    opts.rows,
                    dask_args,
                    env,
                )
            )
        for path in out.iterdir():
            (shutil.rmtree if path.is_dir() else Path.unlink)(path)
        if opts.memory_rows:
            big = workdir / "big.csv"
            say(f"writing {opts.memory_rows:,} rows for the memory run")
            csv.unlink()
            write_synthetic(big, opts.memory_rows, seed=2020)
            runs.append(
                score(
                    f"local CSV → CSV, {opts.memory_rows:,} rows",
                    opts.memory_rows,
                    [str(big), "-o", str(out / "big.csv")],
                    env,
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    valuer = Valuer.load(model)
    trees = {n: b.num_trees() for n, b in valuer.boosters.items()}
    print(f"model {valuer.version} ({', '.join(f'{n}: {t} trees' for n, t in trees.items())})")
    print(f"{opts.rows:,} synthetic rows; {os.cpu_count()} CPUs\n")
    print(
        f"limit: raw predict {limit:,.0f} rows/s on {limit_rows:,} prepared rows "
        f"(building those matrices took {prepare_s:.1f}s, {limit_rows / prepare_s:,.0f} rows/s)\n"
    )
    print("| run | rows | seconds | rows/s | vs raw predict | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run.name} | {run.rows:,} | {run.seconds:.1f} | {run.rate:,.0f} | "
            f"{run.rate / limit:.0%} | {run.peak_rss_mb:,.0f} |"
        )
    local = next((r for r in runs if r.name == "local CSV → Parquet"), None)
    dask_run = next((r for r in runs if r.name.startswith("dask")), None)
    if local and dask_run:
        print(f"\ndask / local (CSV → Parquet): {dask_run.rate / local.rate:.2f}x the rows/s")
    first = runs[0]
    verdict = "meets" if first.rate >= FLOOR * limit else "MISSES"
    print(f"CSV → CSV end to end is {first.rate / limit:.0%} of raw predict: {verdict} the floor")


if __name__ == "__main__":
    main()
