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
import socket
import statistics
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

import test_api_serve
from imovsp.server.telemetry import LINGER_SECONDS
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


def post_written_whole(base: str, path: str, body: bytes, **headers: str) -> tuple[int, Any]:
    """POST with urllib, which writes the whole body before it reads anything (as
    ``requests`` does): a server that answers early and closes with the body unread resets
    the connection under it."""
    request = urllib.request.Request(
        f"{base}{path}", body, {"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_clients_that_write_a_whole_oversized_body_first_get_413_not_a_reset(serve: Any) -> None:
    proc, base = serve("--workers", "1", IMOVSP_ACCESS_LOG="false")
    try:
        six_mb = b'{"items": [' + b" " * 6_000_000 + b"]}"
        status, body = post_written_whole(base, "/v1/valuations", six_mb)
        assert status == 413
        assert body["detail"] == (
            f"request body is {len(six_mb):,} bytes; the limit is 1,048,576 bytes"
        )
        batch = json.dumps({"items": [{**ITEM, "condo_fee": 1310.5}] * 20_000}).encode()
        status, body = post_written_whole(base, "/v1/valuations/batch", batch)
        assert status == 413
        assert body["detail"] == (
            f"request body is {len(batch):,} bytes; the limit is 1,048,576 bytes: send at most "
            "1,000 items a batch, in several requests if need be"
        )
        # Every route, also one that refuses the body before reading it (not JSON: 415).
        status, body = post_written_whole(
            base, "/v1/valuations", b"x" * 900_000, **{"content-type": "text/plain"}
        )
        assert status == 415
        # The server is still there for the next client.
        assert post_written_whole(base, "/v1/valuations", json.dumps(ITEM).encode())[0] == 200
    finally:
        stop(proc)


def test_a_streamed_body_over_the_limit_gets_413_before_the_client_reads(serve: Any) -> None:
    """Chunked: no length to refuse up front; the limit is found while reading."""
    proc, base = serve("--workers", "1", IMOVSP_ACCESS_LOG="false")
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = (b" " * 65_536 for _ in range(64))  # 4 MiB, written in full before reading
    try:
        conn.request(
            "POST",
            "/v1/valuations",
            chunks,
            # As urllib: one request per connection, so the server closes it after the answer.
            {"content-type": "application/json", "connection": "close"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["detail"] == (
            "request body is over the limit of 1,048,576 bytes"
        )
    finally:
        conn.close()
        stop(proc)


def test_a_body_far_beyond_what_is_drained_is_refused_at_once(serve: Any) -> None:
    """Up to a bound, an oversized body is read and dropped so that the client can read the
    413; a body declared far beyond it is answered at once, and the connection closed."""
    proc, base = serve("--workers", "1", IMOVSP_ACCESS_LOG="false")
    port = int(base.rsplit(":", 1)[1])
    try:
        # Were the server to wait for the rest, the read below would time out first.
        with socket.create_connection(("127.0.0.1", port), timeout=LINGER_SECONDS / 2) as conn:
            conn.sendall(
                b"POST /v1/valuations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000000000\r\n\r\n" + b" " * 1000
            )
            answer = b""
            while chunk := conn.recv(65_536):  # until the server closes
                answer += chunk
    finally:
        stop(proc)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["detail"].startswith("request body is 10,000,000,000 bytes;")
