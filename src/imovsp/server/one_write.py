"""uvicorn's httptools protocol, sending each response's head and body in one write.

uvicorn writes a response's status line and headers when the app sends
``http.response.start``, and its body when the app sends ``http.response.body``: two
``send`` calls on the socket, and with ``TCP_NODELAY`` two TCP segments. On loopback each
segment is delivered, and the client woken, inside the server's own ``send``: under load the
two writes were the largest item of a worker's profile (docs/benchmarks.md, session 12). Here
the head of a response whose length is declared (``content-length``: every response of
imovsp's but a streamed one) waits for the body's first bytes and goes out with them; a
streamed (chunked) response's head still goes out at once, and so does anything written before
the head (``100 Continue``). Nothing else changes: the same bytes, in the same order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeadWithBody:
    """The transport of one request's response: holds the head until the body's first write.

    Its cycle uses only ``write``, ``close`` and ``is_closing``; the connection's own
    transport (flow control, the keep-alive timer) stays with the protocol.
    """

    __slots__ = ("_cycle", "_head", "_started", "transport")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle
        self.transport: asyncio.Transport = cycle.transport
        self._head: bytes | None = None
        self._started = False  # the head was written (held or sent)

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:  # the body, or its first part: out together with the head
            self._head = None
            self.transport.write(head + data)
        elif not self._started and self._cycle.response_started:
            # The head: uvicorn marks the response started just before writing it. Its
            # ``chunked_encoding`` is False when the head declared a content-length.
            self._started = True
            if self._cycle.chunked_encoding is False:
                self._head = data
            else:
                self.transport.write(data)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Write a head still held (a response that ends without body bytes)."""
        if self._head is not None:
            head, self._head = self._head, None
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class OneWriteProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose responses go out in one write (see the module)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # A HEAD response has no body write to carry its head: it is written as uvicorn does.
        if cycle.scope["method"] != "HEAD":
            cycle.transport = _HeadWithBody(cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)
