"""Load test of the HTTP API against the limit of its server stack and against the old stack.

    uv run python benchmarks/api.py [--duration 15] [--rounds 3] [--connections 256] [--workers 2]

In one run, each server with the same number of workers:

0. unsaturated: one client sending requests one after another on one kept-alive connection
   (a connection pool, ``requests.Session``, a browser), ``--keep-alive`` requests to each
   server: its median and p99 latency. Without ``TCP_NODELAY`` on the server's connections each
   answer waited ~40 ms for the client's delayed ACK (docs/benchmarks.md, DESIGN.md);

then saturated, each loaded by wrk with the same connections, one load at a time. imovsp and
bare are up together and loaded in turn for ``--rounds`` rounds: this machine's speed drifts
over minutes, and measured minutes apart the ratio of the two moved with the drift (see
docs/benchmarks.md). Their figures are pooled over the rounds (requests over seconds; the worst
round's latencies), and each round's ratio is printed beside them.

1. imovsp: ``imovsp serve`` answering ``POST /v1/valuations`` with a realistic body (the old
   deployment's documented apartment, every field given), access log on as in production;
   then the same with 500 different real listings in turn (``rotating``);
2. bare: ``benchmarks/bare_asgi.py`` on the same stack (uvicorn, asyncio loop, httptools,
   imovsp's supervisor);
3. seed: the old stack, ``../shared/bench/seed_stack/run.sh``, with its documented request;
4. reused: imovsp's server with the model taken out (``benchmarks/reused_valuation.py``: each
   worker values the first request and reuses that valuation), which splits the gap between
   imovsp and bare into what the model costs and what the rest of the request path costs.

wrk's timeout is 30 s for every run (its default, 2 s, drops the slow answers from the latency
figures: the old stack's p99 could not be measured at all). Then batch throughput (1,000
properties per ``POST /v1/valuations/batch``) and the resident memory of each imovsp worker.
Prints a table, checks the floors of issues 3 and 19, writes the figures as JSON (``--json``).
Needs ``wrk`` (Debian package ``wrk``). Exit code 1 if a floor is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
SEED_STACK = SHARED / "bench" / "seed_stack" / "run.sh"
SEED_REQUEST = SHARED / "examples" / "seed-request.json"
DATA = SHARED / "data" / "sp-apartments-2019-dev.csv"
# Above this share of the machine's CPU time idle while imovsp was loaded, the connections set
# its throughput, not the server.
IDLE_MAX = 0.1
# The seed request's apartment in the new schema: every field given, as a client would.
REALISTIC = {
    "negotiation": "sale",
    "district": "Santana",
    "size_m2": 130,
    "rooms": 4,
    "toilets": 5,
    "suites": 3,
    "parking": 1,
    "condo_fee": 1310,
    "elevator": True,
    "furnished": False,
    "swimming_pool": True,
    "new": False,
    "latitude": -23.491423,
    "longitude": -46.620248,
}
# wrk script: POST the body (or each of several in turn); print a JSON summary at the end.
LUA = """
local bodies = {%(bodies)s}
local n, i = #bodies, 0
wrk.method = "POST"
wrk.path = "%(path)s"
wrk.headers["Content-Type"] = "application/json"
wrk.body = bodies[1]
if n > 1 then
  -- Only when there are several: wrk's per-request function stalled on the old stack,
  -- which closes the connection after each answer.
  request = function()
    i = i %% n + 1
    return wrk.format(nil, nil, nil, bodies[i])
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %%d, "seconds": %%f, "p50_ms": %%f, "p90_ms": %%f, "p99_ms": %%f,'
    .. ' "max_ms": %%f, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d,'
    .. ' "non_2xx": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"no answer from {url} after {timeout:.0f}s")


def wait_loaded(log: Path, workers: int, timeout: float = 600) -> None:
    """Until ``workers`` workers have logged that their model is loaded: ``/readyz`` answers as
    soon as the first one is, and connections made before the others listen all go to it."""
    deadline = time.monotonic() + timeout
    while log.read_bytes().count(b'"event":"model_loaded"') < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {workers} workers loaded a model after {timeout:.0f}s")
        time.sleep(0.2)


@contextmanager
def server(
    cmd: list[str], *, ready: str, env: dict[str, str], log: Path, workers: int = 0
) -> Iterator[int]:
    """Start ``cmd`` in its own process group; yield its pid once ``ready`` answers (and, for
    imovsp, once its ``workers`` workers have loaded the model)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        wait_ready(ready, proc)
        if workers:
            wait_loaded(log, workers)
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk(
    url: str,
    bodies: list[bytes],
    *,
    connections: int,
    seconds: int,
    threads: int,
    timeout: int = 30,
) -> dict[str, Any]:
    path = "/" + url.split("/", 3)[3]
    base = url[: len(url) - len(path) + 1]
    # LuaJIT reads no backslash-u escapes: the bodies go in as UTF-8 text.
    quoted = ", ".join(json.dumps(b.decode(), ensure_ascii=False) for b in bodies)
    lua = LUA % {"bodies": quoted, "path": path}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}s"]
        cmd += ["-s", f.name, base]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout", "non_2xx"))
    return result


def keep_alive(url: str, body: bytes | None, *, requests: int) -> dict[str, Any]:
    """One client, one connection kept alive (re-opened only if the server closes it, as the
    old stack does after every answer), ``requests`` requests one after another after 50 to
    warm up: latency per request as the client sees it, ``http.client`` included."""
    rest = url.removeprefix("http://")
    address, path = rest.split("/", 1)
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"content-type": "application/json"}
    method = "POST" if body is not None else "GET"
    seconds: list[float] = []
    reconnects = errors = 0
    try:
        for i in range(50 + requests):
            if conn.sock is None and i:
                reconnects += 1
            started = time.perf_counter()
            conn.request(method, "/" + path, body, headers)
            response = conn.getresponse()
            response.read()
            if i >= 50:
                seconds.append(time.perf_counter() - started)
                errors += response.status != 200
    finally:
        conn.close()
    ms = sorted(1000 * x for x in seconds)
    return {
        "requests": len(ms),
        "p50_ms": statistics.median(ms),
        "p90_ms": ms[int(0.9 * len(ms))],
        "p99_ms": ms[int(0.99 * len(ms))],
        "max_ms": ms[-1],
        "rps": len(ms) / (sum(ms) / 1000),
        "errors": errors,
        "reconnects": reconnects,
    }


def load(url: str, bodies: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    wrk(url, bodies, connections=args.connections, seconds=3, threads=args.threads)  # warm-up
    return wrk(
        url, bodies, connections=args.connections, seconds=args.duration, threads=args.threads
    )


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several loads of one server as one: requests and errors over all their seconds; the
    worst run's latencies (so a floor on them holds for every run); each run's req/s."""
    out: dict[str, Any] = {
        key: sum(r[key] for r in runs)
        for key in ("requests", "seconds", "connect", "read", "write", "timeout", "non_2xx")
    }
    out["rps"] = out["requests"] / out["seconds"]
    out["errors"] = sum(r["errors"] for r in runs)
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        out[key] = max(r[key] for r in runs)
    out["rps_by_round"] = [round(r["rps"]) for r in runs]
    return out


def idle_share(before: Any, after: Any) -> float:
    """Share of the machine's CPU time spent idle between two ``psutil.cpu_times()``."""
    total = sum(after) - sum(before)
    return float((after.idle - before.idle) / total) if total > 0 else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss / 2**20)


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes under the supervisor ``pid`` (spawned Python children)."""
    found = []
    for child in psutil.Process(pid).children():
        cmdline = " ".join(child.cmdline())
        if "multiprocessing.spawn" in cmdline and "resource_tracker" not in cmdline:
            found.append(child.pid)
    return found


def real_bodies(n: int) -> list[bytes]:
    """``n`` listings of the development data (or synthetic ones) as request bodies."""
    from imovsp import data
    from imovsp.synthetic import synthetic_listings

    raw = data.read_listings(DATA) if DATA.is_file() else synthetic_listings(n, seed=1).astype(str)
    frame = data.validate(raw).frame.sample(n, random_state=0)
    bodies = []
    for _, r in frame.iterrows():
        body: dict[str, Any] = {
            "negotiation": r[data.NEGOTIATION],
            "district": r[data.DISTRICT],
            "size_m2": float(r["Size"]),
            "rooms": int(r["Rooms"]),
            "toilets": int(r["Toilets"]),
            "suites": int(r["Suites"]),
            "parking": int(r["Parking"]),
            "condo_fee": float(r["Condo"]),
            "elevator": bool(r["Elevator"]),
            "furnished": bool(r["Furnished"]),
            "swimming_pool": bool(r["Swimming Pool"]),
            "new": bool(r["New"]),
        }
        if r[data.LATITUDE] == r[data.LATITUDE]:  # not NaN
            body["latitude"], body["longitude"] = float(r[data.LATITUDE]), float(r[data.LONGITUDE])
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3, help="imovsp and bare loads, in turn")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server processes per stack")
    parser.add_argument("--batch-items", type=int, default=1000)
    parser.add_argument(
        "--keep-alive", type=int, default=2000, help="requests of the one kept-alive client"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    logs = Path(tempfile.mkdtemp(prefix="imovsp-bench-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The prediction log starts empty in each run (unless one is given). Earlier runs wrote to
    # the working directory's, grown by them to 2.9 GB, where its writer thread took 23% of a
    # loaded worker's py-spy samples against 12% with a fresh file: no two runs were alike.
    env.setdefault("IMOVSP_DATABASE_URL", f"sqlite:///{logs / 'prediction-log.db'}")
    py = sys.executable
    results: dict[str, Any] = {"workers": args.workers, "connections": args.connections}
    one = [json.dumps(REALISTIC).encode()]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [py, "-m", "imovsp", "serve", "--port", str(port), "--workers", str(args.workers)]
    ready = f"{base}/readyz"
    bare_port = free_port()
    bare = [py, str(ROOT / "benchmarks" / "bare_asgi.py"), "--port", str(bare_port)]
    bare += ["--workers", str(args.workers)]
    bare_url = f"http://127.0.0.1:{bare_port}/"
    with server(serve, ready=ready, env=env, log=logs / "imovsp.log", workers=args.workers) as pid:
        workers = workers_of(pid)
        before = [cpu_seconds(w) for w in workers]
        rounds: dict[str, list[dict[str, Any]]] = {"imovsp": [], "bare": []}
        # bare idles in epoll while imovsp is loaded, and the other way round.
        with server(bare, ready=bare_url, env=env, log=logs / "bare.log"):
            results["keep_alive"] = {
                "imovsp": keep_alive(f"{base}/v1/valuations", one[0], requests=args.keep_alive),
                "imovsp_healthz": keep_alive(f"{base}/healthz", None, requests=args.keep_alive),
                "bare": keep_alive(bare_url, one[0], requests=args.keep_alive),
            }
            idle = []
            for _ in range(args.rounds):
                started = psutil.cpu_times()
                rounds["imovsp"].append(load(f"{base}/v1/valuations", one, args))
                idle.append(idle_share(started, psutil.cpu_times()))
                rounds["bare"].append(load(bare_url, one, args))
        # How the load was shared: each worker's CPU seconds over warm-ups and runs.
        results["worker_cpu_s"] = [
            round(cpu_seconds(w) - b, 1) for w, b in zip(workers, before, strict=True)
        ]
        results["imovsp"], results["bare"] = pooled(rounds["imovsp"]), pooled(rounds["bare"])
        results["idle_while_loaded"] = round(max(idle), 3)
        results["imovsp_rotating"] = load(f"{base}/v1/valuations", real_bodies(500), args)
        items = [json.loads(b) for b in real_bodies(args.batch_items)]
        batch = json.dumps({"items": items}).encode()
        batch_run = wrk(
            f"{base}/v1/valuations/batch",
            [batch],
            # Enough connections that every worker always has a batch: the kernel spreads
            # connections over the workers at random, and 2 per worker all land on one worker
            # 1 time in 8 (the other then idles, and the run measures half the throughput).
            connections=args.workers * 8,
            seconds=args.duration,
            threads=1,
        )
        batch_run["valuations_per_s"] = batch_run["rps"] * args.batch_items
        results["batch"] = batch_run
        results["rss_mb"] = {
            "workers": [round(rss_mb(w), 1) for w in workers_of(pid)],
            "supervisor": round(rss_mb(pid), 1),
        }

    from imovsp import artifact
    from imovsp.settings import get_settings

    settings = get_settings()
    model = artifact.resolve(settings.model, settings.models_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    reused = [py, str(ROOT / "benchmarks" / "reused_valuation.py"), "--host=127.0.0.1"]
    reused += [f"--port={port}", f"--workers={args.workers}", f"--model={model}"]
    ready = f"{base}/readyz"
    with server(reused, ready=ready, env=env, log=logs / "reused.log", workers=args.workers):
        results["reused"] = load(f"{base}/v1/valuations", one, args)

    port = free_port()
    seed_env = {**env, "SEED_STACK_HOME": os.environ.get("SEED_STACK_HOME", "/tmp/seed-stack")}
    seed = ["bash", str(SEED_STACK), str(port), str(args.workers)]
    seed_body = [SEED_REQUEST.read_bytes()]
    url = f"http://127.0.0.1:{port}/"
    with server(seed, ready=url, env=seed_env, log=logs / "seed.log"):
        results["keep_alive"]["seed"] = keep_alive(url, seed_body[0], requests=args.keep_alive)
        results["seed"] = load(url, seed_body, args)

    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"server logs: {logs}")
    return 0 if all(results["floors"].values()) else 1


def report(r: dict[str, Any]) -> None:
    print("\none client, one kept-alive connection, requests one after another:")
    print(f"{'stack':<18}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'reconnects':>11}")
    for name, x in r["keep_alive"].items():
        print(
            f"{name:<18}{x['rps']:>9.0f}{x['p50_ms']:>9.2f}{x['p90_ms']:>9.2f}{x['p99_ms']:>9.2f}"
            f"{x['reconnects']:>11}"
        )
    print(f"\n{'stack':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}")
    for name in ("imovsp", "imovsp_rotating", "reused", "bare", "seed"):
        x = r[name]
        print(
            f"{name:<18}{x['rps']:>9.0f}{x['p50_ms']:>9.1f}{x['p99_ms']:>9.1f}"
            f"{x['max_ms']:>9.0f}{x['errors']:>8}"
        )
    imovsp, bare, seed = r["imovsp"], r["bare"], r["seed"]
    r["ratios"] = {
        "imovsp_vs_seed": imovsp["rps"] / seed["rps"],
        "imovsp_vs_bare": imovsp["rps"] / bare["rps"],
        "p99_imovsp_vs_seed": imovsp["p99_ms"] / seed["p99_ms"] if seed["p99_ms"] else math.inf,
        "reused_vs_bare": r["reused"]["rps"] / bare["rps"],
    }
    one = r["keep_alive"]
    r["floors"] = {
        "one keep-alive client: median <= 2 ms": one["imovsp"]["p50_ms"] <= 2.0,
        "throughput >= 25x seed": r["ratios"]["imovsp_vs_seed"] >= 25,
        "throughput >= 25% of bare": r["ratios"]["imovsp_vs_bare"] >= 0.25,
        "p99 <= 1/5 of seed's": r["ratios"]["p99_imovsp_vs_seed"] <= 0.2,
        "no errors": imovsp["errors"] == 0
        and r["imovsp_rotating"]["errors"] == 0
        and one["imovsp"]["errors"] == 0,
        "RSS per worker <= 250 MB": max(r["rss_mb"]["workers"] or [float("inf")]) <= 250,
    }
    b = r["batch"]
    by_round = [a / b for a, b in zip(imovsp["rps_by_round"], bare["rps_by_round"], strict=True)]
    r["ratios"]["imovsp_vs_bare_by_round"] = by_round
    print(
        f"\nimovsp / seed {r['ratios']['imovsp_vs_seed']:.1f}x, imovsp / bare "
        f"{100 * r['ratios']['imovsp_vs_bare']:.0f}% (by round: "
        f"{', '.join(f'{100 * x:.0f}%' for x in by_round)}), p99 imovsp / seed "
        f"{r['ratios']['p99_imovsp_vs_seed']:.3f}"
    )
    print(f"req/s by round: imovsp {imovsp['rps_by_round']}, bare {bare['rps_by_round']}")
    # Per request, on the whole machine: what the model adds, and what the rest adds to bare.
    model_us = 1e6 * (1 / imovsp["rps"] - 1 / r["reused"]["rps"])
    rest_us = 1e6 * (1 / r["reused"]["rps"] - 1 / bare["rps"])
    print(
        f"reused valuation / bare {100 * r['ratios']['reused_vs_bare']:.0f}%; machine time per "
        f"request: model {model_us:.0f} µs, the rest of imovsp {rest_us:.0f} µs, server "
        f"stack {1e6 / bare['rps']:.0f} µs"
    )
    print(
        f"batch: {b['valuations_per_s']:.0f} valuations/s ({b['rps']:.2f} batches/s, p50 "
        f"{b['p50_ms']:.0f} ms, errors {b['errors']})"
    )
    print(f"RSS MB: workers {r['rss_mb']['workers']}, supervisor {r['rss_mb']['supervisor']}")
    print(f"CPU seconds of each imovsp worker over the rounds of (1): {r['worker_cpu_s']}")
    idle = r["idle_while_loaded"]
    print(f"machine CPU idle while (1) was loaded: {100 * idle:.0f}% (worst round)")
    if idle > IDLE_MAX:
        print(
            f"  WARNING  imovsp was not saturated ({100 * idle:.0f}% of the CPU idle): the "
            "connections capped its throughput, and the ratios against bare and the old "
            "stack measure that cap. Raise --connections."
        )
    for floor, ok in r["floors"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {floor}")


if __name__ == "__main__":
    sys.exit(main())
