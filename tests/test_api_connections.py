"""``imovsp serve`` as real HTTP clients use it: one keep-alive connection sending request after
request (a connection pool, ``requests.Session``, a browser), and clients that write a whole
oversized body before they read the answer (urllib, ``http.client``, ``requests``).

The latency test is a correctness test for Nagle's algorithm, not a performance test: with
``TCP_NODELAY`` off, each answer on a kept-alive connection waits for the client's delayed ACK,
~40 ms, whatever the machine; with it on, an answer takes a millisecond or so. The bound sits far
between the two, so a loaded CI machine does not fail it.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from typing import Any

import pytest

import test_api_serve
from test_api_serve import ITEM, stop

serve = test_api_serve.serve  # the fixture that starts `imovsp serve`

# Far below the ~44 ms that Nagle and a delayed ACK cost each request, far above the ~1 ms a
# valuation takes on a kept-alive connection (docs/benchmarks.md).
MEDIAN_BOUND_MS = 15.0
REQUESTS = 200


def keep_alive_latencies(base: str, method: str, path: str, body: bytes | None) -> list[float]:
    """Seconds per request, ``REQUESTS`` requests one after another on one connection."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"content-type": "application/json"} if body is not None else {}
    seconds = []
    try:
        conn.connect()
        local = conn.sock.getsockname()
        for _ in range(REQUESTS):
            started = time.perf_counter()
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            response.read()
            seconds.append(time.perf_counter() - started)
            assert response.status == 200
            # The same connection throughout: a reconnect would hide the delay.
            assert conn.sock.getsockname() == local
    finally:
        conn.close()
    return seconds[10:]  # the first requests warm up the worker


@pytest.mark.parametrize("workers", ["1", "2"])
def test_one_keep_alive_client_gets_answers_without_nagle_delay(serve: Any, workers: str) -> None:
    # No access log: nobody reads the server's output pipe here, and it would fill up.
    proc, base = serve("--workers", workers, IMOVSP_ACCESS_LOG="false")
    try:
        valuations = keep_alive_latencies(base, "POST", "/v1/valuations", json.dumps(ITEM).encode())
        health = keep_alive_latencies(base, "GET", "/healthz", None)
    finally:
        stop(proc)
    for name, seconds in (("POST /v1/valuations", valuations), ("GET /healthz", health)):
        median_ms = 1000 * statistics.median(seconds)
        assert median_ms < MEDIAN_BOUND_MS, f"{name}: median {median_ms:.1f} ms per request"
