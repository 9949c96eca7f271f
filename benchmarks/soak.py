"""Soak and worker-kill test of ``imovsp serve`` at saturating load (not run in CI).

    uv run python benchmarks/soak.py [--duration 300] [--kill-duration 60] [--workers 2]

1. Soak: wrk with 256 connections on ``POST /v1/valuations`` (500 real listings in turn) for
   ``--duration`` seconds after a ``--warmup``. Passes with zero errors (connect, read, write,
   timeout, non-2xx), the same worker processes at the end (none died), resident memory of
   each worker grown by at most 10% between the end of the warm-up and the end, and, when the
   prediction log exists (``imovsp.monitoring``), exactly one record in it per valuation the
   server answered (its ``imovsp_valuations_total``), read after a graceful stop (SIGTERM
   writes what is buffered).
2. Kill: a fresh server under the same load; after ``--kill-after`` seconds one worker gets
   SIGKILL. Reports wrk's errors (the requests the dead worker held), checks that the
   supervisor started a replacement and that the server answers afterwards.

Uses the current model of ``IMOVSP_MODELS_DIR`` (``models``), as ``imovsp serve`` does.
Prints a table, writes the figures as JSON (``--json``). Exit code 1 if a check fails.
Needs ``wrk`` (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import free_port, real_bodies, rss_mb, server, workers_of, wrk


def _has_prediction_log() -> bool:
    try:
        return importlib.util.find_spec("imovsp.monitoring.store") is not None
    except ModuleNotFoundError:  # no imovsp.monitoring package at all
        return False


HAS_PREDICTION_LOG = _has_prediction_log()
RSS_GROWTH_LIMIT = 0.10


def scrape(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
        return str(r.read().decode())


def valuations_answered(metrics: str) -> int:
    """Valuations the whole server answered, from its own counter (all workers)."""
    pattern = re.compile(r"^imovsp_valuations_total\{[^}]*\} ([0-9.e+]+)$", re.M)
    return int(sum(float(v) for v in pattern.findall(metrics)))


def logged(database: Path) -> int | None:
    """Records in the prediction log (``None`` if this imovsp has none)."""
    if not HAS_PREDICTION_LOG:
        return None
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM valuations")).scalar_one())


class Sampler(threading.Thread):
    """Resident memory of each worker every few seconds while the load runs."""

    def __init__(self, supervisor: int, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.supervisor, self.every = supervisor, every
        self.samples: list[dict[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.samples.append({pid: rss_mb(pid) for pid in workers_of(self.supervisor)})


def soak(args: argparse.Namespace, env: dict[str, str], logs: Path) -> dict[str, Any]:
    bodies = real_bodies(500)
    database = logs / "soak.db"
    env = {**env, "IMOVSP_DATABASE_URL": f"sqlite:///{database}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "imovsp", "serve", "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    out: dict[str, Any] = {"duration_s": args.duration, "warmup_s": args.warmup}
    with server(cmd, ready=f"{base}/readyz", env=env, log=logs / "soak.log") as pid:
        out["warmup"] = load(base, bodies, args, args.warmup)
        workers = workers_of(pid)
        before = {w: rss_mb(w) for w in workers}
        sampler = Sampler(pid)
        sampler.start()
        out["run"] = load(base, bodies, args, args.duration)
        sampler.stop.set()
        after = {w: rss_mb(w) for w in workers_of(pid)}
        time.sleep(1)  # requests wrk gave up on at its end finish on the server
        out["answered"] = valuations_answered(scrape(base))
    # The server stopped with SIGTERM: the prediction log has every buffered record now.
    out["logged"] = logged(database)
    out["workers_replaced"] = sorted(set(workers) ^ set(after))
    out["rss_mb"] = {
        str(w): {"after_warmup": round(before[w], 1), "end": round(after.get(w, 0), 1)}
        for w in workers
    }
    out["rss_samples_mb"] = [[round(v, 1) for v in s.values()] for s in sampler.samples]
    growth = [(after[w] - before[w]) / before[w] for w in workers if w in after]
    out["rss_growth_max"] = max(growth) if growth else float("inf")
    return out


def kill(args: argparse.Namespace, env: dict[str, str], logs: Path) -> dict[str, Any]:
    bodies = real_bodies(500)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "imovsp", "serve", "--port", str(port)]
    cmd += ["--workers", str(args.workers)]
    env = {**env, "IMOVSP_DATABASE_URL": f"sqlite:///{logs / 'kill.db'}"}
    out: dict[str, Any] = {"duration_s": args.kill_duration, "kill_after_s": args.kill_after}
    with server(cmd, ready=f"{base}/readyz", env=env, log=logs / "kill.log") as pid:
        load(base, bodies, args, 5)  # warm
        before = workers_of(pid)
        victim = before[0]

        def strike() -> None:
            time.sleep(args.kill_after)
            held = psutil.Process(victim).net_connections(kind="tcp")
            out["victim_connections"] = sum(c.status == psutil.CONN_ESTABLISHED for c in held)
            os.kill(victim, signal.SIGKILL)

        threading.Thread(target=strike, daemon=True).start()
        out["run"] = load(base, bodies, args, args.kill_duration)
        deadline = time.monotonic() + 120
        while len(workers_of(pid)) < args.workers and time.monotonic() < deadline:
            time.sleep(0.5)
        after = workers_of(pid)
        out["killed"] = victim
        out["replacement"] = sorted(set(after) - set(before))
        out["after"] = load(base, bodies, args, 5)
    return out


def load(base: str, bodies: list[bytes], args: argparse.Namespace, seconds: int) -> Any:
    return wrk(
        f"{base}/v1/valuations",
        bodies,
        connections=args.connections,
        seconds=seconds,
        threads=args.threads,
    )


def report(r: dict[str, Any]) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    if "soak" in r:
        s = r["soak"]
        run = s["run"]
        print(
            f"soak: {run['requests']:,} valuations in {run['seconds']:.0f} s "
            f"({run['rps']:.0f}/s, p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, "
            f"max {run['max_ms']:.0f} ms), errors {run['errors']} "
            f"(warm-up: {s['warmup']['requests']:,}, errors {s['warmup']['errors']})"
        )
        print(f"  worker RSS MB after warm-up → end: {s['rss_mb']}")
        print(f"  largest growth {100 * s['rss_growth_max']:+.1f}%")
        print(f"  valuations answered (server count) {s['answered']:,}, logged {s['logged']}")
        checks["soak: no errors"] = run["errors"] == 0 and s["warmup"]["errors"] == 0
        checks["soak: no worker replaced"] = not s["workers_replaced"]
        checks["soak: RSS growth <= 10%"] = s["rss_growth_max"] <= RSS_GROWTH_LIMIT
        if s["logged"] is not None:
            checks["soak: one log record per valuation"] = s["logged"] == s["answered"]
    if "kill" in r:
        k = r["kill"]
        run = k["run"]
        print(
            f"kill: worker {k['killed']} killed after {k['kill_after_s']} s of "
            f"{k['duration_s']} s; {run['requests']:,} requests, errors {run['errors']} "
            f"(connect {run['connect']}, read {run['read']}, write {run['write']}, "
            f"timeout {run['timeout']}, non-2xx {run['non_2xx']}); the killed worker held "
            f"{k.get('victim_connections')} of the {r['connections']} connections; replacement "
            f"{k['replacement']}; afterwards {k['after']['requests']:,} requests, "
            f"errors {k['after']['errors']}"
        )
        checks["kill: a replacement worker started"] = len(k["replacement"]) == 1
        checks["kill: no errors afterwards"] = k["after"]["errors"] == 0
    for check, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {check}")
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=300, help="soak seconds after warm-up")
    parser.add_argument("--warmup", type=int, default=30, help="seconds before RSS is taken")
    parser.add_argument("--kill-duration", type=int, default=60, help="seconds of the kill run")
    parser.add_argument("--kill-after", type=int, default=20, help="SIGKILL a worker after")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--only", choices=["soak", "kill"], help="run one of the two")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    logs = Path(tempfile.mkdtemp(prefix="imovsp-soak-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results: dict[str, Any] = {"workers": args.workers, "connections": args.connections}
    print(f"prediction log check: {'on' if HAS_PREDICTION_LOG else 'off (no imovsp.monitoring)'}")
    if args.only in (None, "soak"):
        results["soak"] = soak(args, env, logs)
    if args.only in (None, "kill"):
        results["kill"] = kill(args, env, logs)
    results["checks"] = report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    passed = all(results["checks"].values())
    if passed:  # access logs of minutes at full load are large: kept only to look into a failure
        for log in logs.glob("*.log"):
            log.unlink()
    print(f"server logs and prediction logs in {logs}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
