"""CPU time per ``POST /v1/valuations``, in process: the app driven through ASGI, no network.

Builds the app as ``imovsp serve`` does (``create_app``, its lifespan run, prediction log and
access log on), then sends it ``--requests`` valuations of the old deployment's apartment
(``benchmarks/api.py``'s body), ``--concurrency`` at a time, as a loaded worker has them in
flight. Prints the process's CPU time per request (``time.process_time``: every thread, the
prediction log's writer included, and robust to other load on the machine, unlike req/s).
The access log goes to ``/dev/null``.

    nice uv run --locked python benchmarks/request_cpu.py --requests 20000 --runs 3

``--profile FILE`` writes a cProfile of the measured requests (the writer thread not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from api import REALISTIC

from imovsp.server import create_app
from imovsp.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BODY = orjson.dumps(REALISTIC)  # the seed request's apartment, as benchmarks/api.py sends it
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/v1/valuations",
    "raw_path": b"/v1/valuations",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"localhost"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def _one(app: Any, state: dict[str, Any]) -> bytes:
    """One request through the app; its answer's body (checked to be a 200)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({**SCOPE, "state": dict(state)}, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"status {sent[0]['status']}: {sent[-1].get('body')!r}")
    return b"".join(m.get("body", b"") for m in sent[1:])


async def _load(app: Any, state: dict[str, Any], *, requests: int, concurrency: int) -> None:
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await _one(app, state)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def _run(args: argparse.Namespace, settings: Settings) -> list[float]:
    app = create_app(settings)
    state: dict[str, Any] = {}
    out = []
    async with app.router.lifespan_context(app) as found:
        state.update(found or {})
        recorder = app.state.recorder
        await _load(app, state, requests=2_000, concurrency=args.concurrency)  # warm-up
        await asyncio.to_thread(recorder.flush, 60)
        for _ in range(args.runs):
            profile = cProfile.Profile() if args.profile else None
            started = time.process_time()
            if profile:
                profile.enable()
            await _load(app, state, requests=args.requests, concurrency=args.concurrency)
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            # The writer thread's share: wait until it has written what it was given.
            await asyncio.to_thread(recorder.flush, 60)
            out.append((time.process_time() - started) / args.requests * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--no-prediction-log", action="store_true")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            models_dir=args.models_dir,
            database_url=f"sqlite:///{tmp}/log.db",
            prediction_log=not args.no_prediction_log,
            log_buffer_size=10 * args.requests,  # none dropped, however fast the requests go
        )
        real_stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the access log's lines, dropped
        try:
            per_request = asyncio.run(_run(args, settings))
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
    print(" ".join(f"{us:.1f}" for us in per_request), "CPU µs per request")


if __name__ == "__main__":
    main()
