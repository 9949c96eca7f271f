"""The hand-built fast path of ``POST /v1/valuations``: the whole route, as one ASGI app.

:class:`imovsp.server.telemetry.Observe` (request id, limits, metrics, access log) hands this
route's requests straight to :func:`value_one`, past FastAPI's middleware, routing, dependency
solving and ``Request``/``Response`` objects, which cost more than the rest of the route did
(docs/benchmarks.md, *HTTP API*). ``routes.create_valuation`` declares the route for the
OpenAPI document; this module answers it, and reads straight down: the body and options in,
the month of the answer, the valuation (computed together with the others of the same turn of
the event loop, see :mod:`imovsp.api.coalesce`), the metrics and the prediction log, the
answer out. Its answers, errors included, are those of the FastAPI route it replaced, byte
for byte: the readers and the renderer are shared with the batch route (:mod:`deps`,
:mod:`dating`), and errors go through the app's own handlers (:func:`errors.respond`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from imovsp import as_of
from imovsp.api import errors
from imovsp.api.dating import valuation_body
from imovsp.api.deps import check_json_media, options_from, parse_json
from imovsp.api.errors import PropertyError
from imovsp.api.schemas import NO_OPTIONS, OptionsIn, PropertyIn
from imovsp.price_index import PriceIndexError

JSON = (b"content-type", b"application/json")


async def _body(receive: Receive) -> bytes:
    """The request body, as ``Request.body`` reads it."""
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] == "http.request":
            more = message.get("more_body", False)
            if chunk := message.get("body", b""):
                chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _content_type(scope: Scope) -> str | None:
    """The ``Content-Type`` header, as ``Request.headers`` finds it (the first one)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            text: str = value.decode("latin-1")
            return text
    return None


def _options(scope: Scope) -> OptionsIn:
    query = scope["query_string"]
    return options_from(QueryParams(query)) if query else NO_OPTIONS


async def value_one(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/valuations``: the price of one apartment, with what was assumed."""
    started = time.perf_counter()
    state = scope["app"].state
    try:
        check_json_media(_content_type(scope))
        item = parse_json(await _body(receive), PropertyIn)
        asked = _options(scope)
        served = state.valuing
        valuer = served.valuer
        try:
            at = as_of.resolve(state.price_index, valuer.data_month, item.negotiation, asked.as_of)
        except PriceIndexError as exc:
            raise PropertyError(str(exc)) from None
        # Computed on the event loop, with the other requests of this turn of the loop: a
        # valuation takes less time than a hop to a thread would.
        try:
            valuation = await served.ask(item, served.options(asked))
        except ValueError as exc:
            raise PropertyError.from_value_error(exc) from None
    except Exception as exc:  # answered as the app's exception handlers would
        response = await errors.respond(Request(scope, receive), exc)
        await response(scope, receive, send)
        return
    rid: str = scope["state"]["request_id"]
    state.recorder.record(
        "api",
        rid,
        item,
        valuation,
        time.perf_counter() - started,
        as_of=at.month,
        index_factor=at.factor,
    )
    body = orjson.dumps(valuation_body(valuation, at, request_id=rid))
    # The head a starlette Response gives it: content-length, then content-type.
    headers: list[Any] = [(b"content-length", b"%d" % len(body)), JSON]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
