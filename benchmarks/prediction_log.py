"""Prediction log benchmark: what recording costs a valuation, and how fast the log is written.

    uv run python benchmarks/prediction_log.py [--model DIR] [--n 20000] [--postgres URL] \
        [--grow 200000]

In one process, on the current model (or ``--model``):

1. the request path's share: ``Recorder.record`` alone, per call, against one valuation;
2. valuations per second with the log off and on (the writer thread running beside them,
   writing to a SQLite file: its GIL and CPU use are what the valuations feel), in
   alternating rounds; afterwards every valuation must be in the log and none dropped;
3. the writer's throughput: rows per second into SQLite (and PostgreSQL with ``--postgres``);
4. the writer's cost per row as a SQLite log grows to ``--grow`` rows, with the API's request
   ids (UUIDv7: time first) and with random ones, in steps of 20,000 rows.

Prints one JSON object and a table. No HTTP: the server's own overhead is `benchmarks/api.py`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from imovsp import artifact, data
from imovsp.api.coalesce import Options
from imovsp.api.render import Valuing
from imovsp.api.schemas import OptionsIn, PropertyIn
from imovsp.monitoring import recorder as prediction_log
from imovsp.monitoring.store import Store, valuations
from imovsp.server import telemetry
from imovsp.settings import Settings
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer

GROW_STEP = 20_000


def requests(n: int) -> list[PropertyIn]:
    frame = data.validate(synthetic_listings(n, seed=5)).frame
    return [
        PropertyIn(
            negotiation=r[data.NEGOTIATION],
            district=r[data.DISTRICT],
            size_m2=float(r["Size"]),
            rooms=int(r["Rooms"]),
        )
        for _, r in frame.iterrows()
    ]


def value_all(served: Valuing, items: list[PropertyIn], options: Options, log: Any) -> float:
    """Value every item as the route does (and record it, if ``log``); valuations per second."""
    started = time.perf_counter()
    for i, item in enumerate(items):
        t = time.perf_counter()
        valuation = served.value(item, options)
        if log is not None:
            log.record("api", f"b{i}", item, valuation, time.perf_counter() - t)
    return len(items) / (time.perf_counter() - started)


def count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(sa.select(sa.func.count()).select_from(valuations)).scalar_one())
    engine.dispose()
    return n


def write_rate(url: str, rows: list[dict[str, Any]], batch: int) -> float:
    store = Store(url)
    store.upgrade()
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        store.insert_valuations(rows[i : i + batch])
    seconds = time.perf_counter() - started
    store.dispose()
    return len(rows) / seconds


def growth(url: str, row: dict[str, Any], new_id: Callable[[], str], n: int) -> list[float]:
    """µs per row to write each successive :data:`GROW_STEP` rows (batches of 500) into a new
    log, the rows alike but for their request ids (which the log indexes)."""
    store = Store(url)
    store.upgrade()
    steps = []
    for _ in range(n // GROW_STEP):
        rows = [{**row, "request_id": new_id()} for _ in range(GROW_STEP)]
        started = time.perf_counter()
        for i in range(0, GROW_STEP, 500):
            store.insert_valuations(rows[i : i + 500])
        steps.append(round((time.perf_counter() - started) / GROW_STEP * 1e6, 1))
    store.dispose()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--n", type=int, default=20_000, help="valuations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="also time writes to this PostgreSQL URL")
    parser.add_argument("--grow", type=int, default=200_000, help="rows of the growing log")
    args = parser.parse_args()
    settings = Settings()
    path = artifact.resolve(args.model or settings.model, settings.models_dir)
    assert path is not None, "no model: train one or give --model"
    valuer = Valuer.load(path)
    served = Valuing(valuer)
    items = requests(args.n)
    results: dict[str, Any] = {"model": valuer.version, "valuations_per_round": len(items)}

    with tempfile.TemporaryDirectory() as tmp:
        # 1. record() alone, into a recorder with no writer.
        idle = prediction_log.Recorder(None, settings.model_copy(update={"log_buffer_size": 10**7}))
        options = served.options(OptionsIn())
        one = served.value(items[0], options)
        t = time.perf_counter()
        for i in range(100_000):
            idle.record("api", "r", items[0], one, 0.001, i)
        results["record_ns"] = round((time.perf_counter() - t) / 100_000 * 1e9)
        t = time.perf_counter()
        for item in items[:2000]:
            served.value(item, options)
        results["valuation_us"] = round((time.perf_counter() - t) / 2000 * 1e6, 1)

        # 2. valuations per second, log off and on, alternating.
        url = f"sqlite:///{Path(tmp) / 'log.db'}"
        log = prediction_log.create(settings.model_copy(update={"database_url": url}))
        off, on = [], []
        for _ in range(args.rounds):
            off.append(value_all(served, items, options, None))
            on.append(value_all(served, items, options, log))
        flushed = log.flush(60)
        log.close()
        written = count(url)
        results |= {
            "off_per_s": round(statistics.median(off)),
            "on_per_s": round(statistics.median(on)),
            "on_over_off": round(statistics.median(on) / statistics.median(off), 3),
            "recorded": args.rounds * len(items),
            "written": written,
            "flushed": flushed,
        }

        # 3. the writer's rows per second.
        rows = [
            prediction_log.row((time.time(), "api", f"w{i}", None, items[0], one, 0.001, None, 1.0))
            for i in range(50_000)
        ]
        results["sqlite_rows_per_s"] = round(
            write_rate(f"sqlite:///{Path(tmp) / 'w.db'}", rows, 500)
        )
        if args.postgres:
            engine = sa.create_engine(args.postgres)
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS feedback, valuations, alembic_version"))
            engine.dispose()
            results["postgres_rows_per_s"] = round(write_rate(args.postgres, rows, 500))

        # 4. as the log grows: the API's ids against random ones.
        for name, new_id in (
            ("uuid7", telemetry.new_request_id),
            ("random", lambda: os.urandom(16).hex()),
        ):
            results[f"grow_us_per_row_{name}_ids"] = growth(
                f"sqlite:///{Path(tmp) / f'grow-{name}.db'}", rows[0], new_id, args.grow
            )

    print(json.dumps(results, indent=2))
    print(f"record() per call          {results['record_ns']:>10} ns")
    print(f"one valuation              {results['valuation_us']:>10} µs")
    print(f"valuations/s, log off      {results['off_per_s']:>10,}")
    print(
        f"valuations/s, log on       {results['on_per_s']:>10,}  ({results['on_over_off']:.3f} x)"
    )
    print(f"recorded / written         {results['recorded']:>10,} / {results['written']:,}")
    print(f"SQLite rows/s written      {results['sqlite_rows_per_s']:>10,}")
    if "postgres_rows_per_s" in results:
        print(f"PostgreSQL rows/s written  {results['postgres_rows_per_s']:>10,}")
    for name in ("uuid7", "random"):
        steps = results[f"grow_us_per_row_{name}_ids"]
        if steps:
            print(
                f"µs/row, {name:>6} ids, log growing to {len(steps) * GROW_STEP:,}: "
                f"first {GROW_STEP:,} {steps[0]}, last {GROW_STEP:,} {steps[-1]}"
            )


if __name__ == "__main__":
    main()
