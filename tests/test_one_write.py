"""The server's HTTP protocol: each response's head and body in one write, the same bytes as
uvicorn's own protocol writes in two."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.lifespan.off import LifespanOff
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from imovsp.server.one_write import OneWriteProtocol

BODY = b'{"price":988000.0}'
POST = (
    b"POST /v1/valuations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n{}"
)


class Transport:
    """What the protocol writes, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name)

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(app: Any, request: bytes, protocol: type[HttpToolsProtocol]) -> Transport:
    """The writes of ``protocol`` serving ``app`` one request on a fresh connection."""
    config = Config(app=app, http=protocol, lifespan="off", access_log=False)
    config.load()
    server = protocol(  # type: ignore[call-arg]
        config=config,
        server_state=ServerState(),
        app_state=LifespanOff(config).state,
        _loop=asyncio.get_running_loop(),
    )
    transport = Transport()
    server.connection_made(transport)  # type: ignore[arg-type]
    server.data_received(request)
    while server.tasks:
        await asyncio.gather(*server.tasks, return_exceptions=True)
    server.connection_lost(None)
    return transport


def both(app: Any, request: bytes = POST) -> tuple[list[bytes], list[bytes]]:
    """The writes of uvicorn's protocol and of imovsp's for the same request."""

    async def run() -> tuple[list[bytes], list[bytes]]:
        stock = await answer(app, request, HttpToolsProtocol)
        ours = await answer(app, request, OneWriteProtocol)
        assert ours.closed == stock.closed
        return stock.writes, ours.writes

    return asyncio.run(run())


async def read_body(receive: Any) -> None:
    more = True
    while more:
        more = (await receive()).get("more_body", False)


async def whole(scope: Any, receive: Any, send: Any) -> None:
    """A response whose length is declared, as every imovsp response but a streamed one."""
    await read_body(receive)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def test_a_response_of_known_length_goes_out_in_one_write_with_the_same_bytes() -> None:
    stock, ours = both(whole)
    assert len(stock) == 2  # uvicorn: the head, then the body
    assert ours == [b"".join(stock)]
    assert ours[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert ours[0].endswith(b"\r\n\r\n" + BODY)


def test_a_closing_response_is_written_whole_before_the_connection_closes() -> None:
    request = POST.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    stock, ours = both(whole, request)
    assert ours == [b"".join(stock)]
    assert b"connection: close" in ours[0].lower()


async def in_parts(scope: Any, receive: Any, send: Any) -> None:
    await read_body(receive)
    headers = [(b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY[:5], "more_body": True})
    await send({"type": "http.response.body", "body": BODY[5:]})


def test_a_body_sent_in_parts_carries_the_head_with_its_first_part() -> None:
    stock, ours = both(in_parts)
    assert ours == [stock[0] + stock[1], stock[2]]


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    """No length declared: uvicorn sends it chunked."""
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"a", "more_body": True})
    await send({"type": "http.response.body", "body": b"b"})


def test_a_streamed_response_sends_its_head_at_once_as_uvicorn_does() -> None:
    stock, ours = both(streamed)
    assert ours == stock
    assert b"transfer-encoding: chunked" in ours[0]


def test_a_head_request_is_answered_as_uvicorn_answers_it() -> None:
    stock, ours = both(whole, POST.replace(b"POST", b"HEAD", 1))
    assert ours == stock == [stock[0]]


async def fails_after_the_head(scope: Any, receive: Any, send: Any) -> None:
    await read_body(receive)
    headers = [(b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    raise RuntimeError("boom")


def test_a_head_held_when_the_app_fails_is_written_before_the_connection_closes() -> None:
    stock, ours = both(fails_after_the_head)
    assert ours == stock
    assert len(ours) == 1


@pytest.mark.parametrize("app", [whole, streamed])
def test_100_continue_goes_out_alone_before_the_answer(app: Any) -> None:
    request = POST.replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n")
    stock, ours = both(app, request)
    assert ours[0] == stock[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert b"".join(ours) == b"".join(stock)
