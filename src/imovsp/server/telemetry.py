"""What the service says about itself: Prometheus metrics, JSON access logs, request ids.

Metrics work across several worker processes with prometheus_client's multiprocess mode:
`imovsp serve` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker
starts, each worker writes its counters there, and ``/metrics`` adds them up, so whichever
worker answers a scrape reports the whole server (:mod:`imovsp.api.prometheus`, where the
routes count valuations).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import re
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from prometheus_client import Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uuid_utils import uuid7

from imovsp.server.limits import RateLimiter

REQUEST_ID_HEADER = "x-request-id"
# An id a client sends is echoed back only if it is short and plain (it goes into logs).
_CLIENT_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
UNMATCHED = "<unmatched>"
RATE_LIMITED = "<rate-limited>"

REQUESTS = Counter(
    "imovsp_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "imovsp_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
MODEL_INFO = Gauge(
    "imovsp_model_info",
    "The model being served (always 1; the version is in the label).",
    ["version"],
    multiprocess_mode="max",  # info metrics do not exist in multiprocess mode
)

access_logger = logging.getLogger("imovsp.access")


# The last second :func:`timestamp` formatted, and its text: a loaded server writes thousands
# of lines a second, and formatting the date and time was most of a timestamp's cost.
_second: tuple[int, str] = (-1, "")


def timestamp(seconds: float) -> str:
    """A log line's time: UTC, to the millisecond (``2026-11-27T01:19:58.267Z``)."""
    global _second
    second = math.floor(seconds)  # the second time.gmtime(seconds) gives
    last, whole = _second  # one read: other threads log too
    if second != last:
        whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (second, whole)
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"


class JsonLines(logging.Formatter):
    """One JSON object per record: the message's dict, or ``{"message": ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.msg if isinstance(record.msg, dict) else {"message": record.getMessage()}
        if record.exc_info:
            fields = {**fields, "exception": self.formatException(record.exc_info)}
        return json_line(record.created, record.levelname.lower(), record.name, fields).decode()


def json_line(seconds: float, level: str, logger: str, fields: dict[str, Any]) -> bytes:
    """A log line's JSON: time, level and logger name, then ``fields``."""
    line = {"ts": timestamp(seconds), "level": level, "logger": logger}
    line.update(fields)
    return orjson.dumps(line, default=str)


# Access lines not yet written: those of the event loop's current turn (see log_access).
_lines: deque[bytes] = deque()


def log_access(fields: dict[str, Any]) -> None:
    """One line of the access log: on stdout, as :class:`JsonLines` writes the other log lines.

    Written straight to stdout rather than through logging's records, handlers and formatter,
    which took about three times as long (docs/benchmarks.md): one line per request is a few
    percent of a loaded worker's time. The ``imovsp.access`` logger still turns it on and off.

    On an event loop, the lines of one turn of it go out together, in one write, at the start
    of its next turn: a loaded worker answers a hundred requests in a turn, and writes their
    lines with one system call instead of a hundred (docs/benchmarks.md, session 13). Outside
    a loop, at once.
    """
    line = json_line(time.time(), "info", access_logger.name, fields)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _lines.append(line)
        flush_access_log()
        return
    if not _lines:
        loop.call_soon(flush_access_log)
    _lines.append(line)


def flush_access_log() -> None:
    """Write the access lines not yet written (see :func:`log_access`)."""
    taken = []
    with contextlib.suppress(IndexError):  # another thread may take the last one first
        while _lines:
            taken.append(_lines.popleft())
    if not taken:
        return
    out = sys.stdout
    # Out at once, as logging's handler flushes each line: block-buffered, a quiet server's
    # lines would wait for kilobytes more, and be lost with the process. A stdout that is gone
    # loses the lines; it must not fail a request.
    with contextlib.suppress(OSError, ValueError):
        out.write(b"\n".join(taken).decode() + "\n")
        if not (getattr(out, "line_buffering", False) or getattr(out, "write_through", False)):
            out.flush()


atexit.register(flush_access_log)  # a loop stopped before its next turn leaves some behind


def _json_error(status: int, detail: str, request_id: str) -> tuple[Message, Message]:
    """A JSON error answer (its ``x-request-id`` header is added on the way out)."""
    body = orjson.dumps({"detail": detail, "request_id": request_id})
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request answered before its body was read (413, 415, 429...) is answered at once, then the
# rest of its body is read and dropped, up to these bounds, before the connection closes: a
# lingering close, as nginx does. Closed with the body unread, the connection is reset, and a
# client that writes its whole body before reading (urllib, requests) sees only the reset.
LINGER_BYTES = 64 * 2**20
LINGER_SECONDS = 10.0
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _observe(template: str, method: str, status: int, seconds: float) -> None:
    key = (template, method if method in METHODS else "OTHER", status)
    children = _children.get(key)
    if children is None:  # labels() costs more than the increment itself: done once per key
        children = _children[key] = (REQUESTS.labels(*key), LATENCY.labels(*key))
    children[0].inc()
    children[1].observe(seconds)


def new_request_id() -> str:
    """The id of a request that came without one: a UUIDv7 as 32 hex digits.

    Time first, so the ids the prediction log indexes grow at the end of its index. With
    random ids each insert landed at a random place in it, and the log's cost per row doubled
    as it grew, where with these it stays flat (docs/benchmarks.md, *Prediction log*). Cheaper
    to make than ``os.urandom(16).hex()``, too.
    """
    return uuid7().hex


class Observe:
    """Pure ASGI middleware: request id, body size and rate limits, metrics and the access log.

    ``hot`` maps (method, path) to ASGI apps that answer those requests directly, without
    FastAPI's routing and dependency layers: the valuation route, whose own work is smaller
    than theirs. They are FastAPI routes too, so the OpenAPI document describes them.

    Written against ASGI directly rather than as ``BaseHTTPMiddleware``, which would cost
    the hot path a task and a stream per request.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        hot: Mapping[tuple[str, str], ASGIApp] | None = None,
        limiter: RateLimiter | None = None,
        too_large: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.too_large = dict(too_large or {})  # path → what to do instead, after a 413
        self.hot = dict(hot or {})
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        length: int | None = None
        chunked = awaits_continue = False
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _CLIENT_ID.match(value):
                request_id = value.decode()
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"expect":
                awaits_continue = value.lower() == b"100-continue"
        request_id = request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        limit = self.max_body_bytes
        unread = chunked or bool(length)  # body bytes still on their way
        counted = False  # in the metrics and the access log
        asked = False  # the app asked for the body (a client awaiting 100 Continue got it)

        async def linger() -> None:
            """Read and drop the rest of the body (see ``LINGER_BYTES``)."""
            nonlocal unread
            if (awaits_continue and not asked) or (length or 0) > LINGER_BYTES:
                return  # nothing is coming, or too much to wait for: closed unread
            dropped = 0
            with anyio.move_on_after(LINGER_SECONDS):
                while unread and dropped <= LINGER_BYTES:
                    message = await receive()
                    dropped += len(message.get("body", b""))
                    unread = message["type"] == "http.request" and message.get("more_body", False)

        def record() -> None:
            nonlocal counted
            counted = True
            template = str(
                scope.get("route_template") or getattr(scope.get("route"), "path", UNMATCHED)
            )
            elapsed = time.perf_counter() - started
            method = scope["method"]
            _observe(template, method, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                log_access(
                    {
                        "event": "request",
                        "request_id": request_id,
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": client[0] if client else None,
                    }
                )

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                if unread:  # answered before the body was read: closed after it (linger)
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            elif not message.get("more_body", False):
                # Counted before the answer's last bytes leave: a client that has its answer
                # and then reads /metrics finds its request there.
                if not counted:
                    record()
                if unread:
                    # The whole answer goes out now, for a client that reads early; the
                    # response ends, and the connection closes, once the body is read.
                    await send({**message, "more_body": True})
                    await linger()
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            # An HTTPException passes through FastAPI's body reading untouched, to the
            # exception handlers, which answer it as JSON.
            nonlocal received, unread, asked
            asked = True
            message = await receive()
            unread = message["type"] == "http.request" and message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > limit:
                detail = f"request body is over the limit of {limit:,} bytes"
                if advice := self.too_large.get(scope["path"]):
                    detail += f": {advice}"
                raise HTTPException(413, detail)
            return message

        try:
            if length is not None and length > limit:
                detail = f"request body is {length:,} bytes; the limit is {limit:,} bytes"
                if advice := self.too_large.get(scope["path"]):
                    detail += f": {advice}"
                for message in _json_error(413, detail, request_id):
                    await send_with_id(message)
                return
            if self.limiter is not None and (wait := self.limiter.retry_after(scope)):
                scope["route_template"] = RATE_LIMITED
                start, body = _json_error(429, self.limiter.detail(scope, wait), request_id)
                start["headers"].append((b"retry-after", str(wait).encode()))
                await send_with_id(start)
                await send_with_id(body)
                return
            hot = self.hot.get((scope["method"], scope["path"]))
            if hot is not None:
                scope["route_template"] = scope["path"]
                await hot(scope, receive_limited, send_with_id)
            else:
                await self.app(scope, receive_limited, send_with_id)
        finally:
            if not counted:
                record()


def set_model_info(version: str) -> None:
    MODEL_INFO.labels(version).set(1)


def log_event(event: str, **fields: Any) -> None:
    logging.getLogger("imovsp.api").info({"event": event, **fields})
