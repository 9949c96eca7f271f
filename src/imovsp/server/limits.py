"""A per-client request rate limit (``IMOVSP_RATE_LIMIT``), answered with 429 and Retry-After.

The count uses the ``limits`` library's sliding window counter, kept in this process's memory:
with several workers each worker counts the requests it serves, so a client may get up to
workers × the limit (set the limit per worker accordingly). Clients are told apart by their IP
address, as uvicorn gives it: behind a proxy, trust its X-Forwarded-For with uvicorn's
``FORWARDED_ALLOW_IPS``. Health, readiness and metrics are never limited: probes must get
through.
"""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import Scope

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})


class RateLimiter:
    """Counts each client's requests against one or more limits, e.g. ``10/second;300/minute``."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.items = parse_many(spec)
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def retry_after(self, scope: Scope) -> int | None:
        """``None`` if this request is within the limits (it is counted); else the seconds the
        client should wait."""
        if scope["path"] in EXEMPT:
            return None
        client = scope.get("client")
        key = client[0] if client else "-"
        for item in self.items:
            if not self.limiter.hit(item, key):
                reset = self.limiter.get_window_stats(item, key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    def detail(self, scope: Scope, wait: int) -> str:
        client = scope.get("client")
        who = client[0] if client else "this client"
        return f"too many requests from {who}: the limit is {self.spec}; retry in {wait} s"
