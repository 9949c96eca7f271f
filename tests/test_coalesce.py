"""Valuations asked for at the same moment are computed together, and each gets its own answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from imovsp import as_of, price_index
from imovsp.api.coalesce import Coalescer, Options
from imovsp.features import Property
from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.valuer import ROWS_TOGETHER, Valuation, Valuer

DEFAULT = Options(level=0.8)


def flat(valuer: Valuer, i: int, negotiation: str = "sale") -> Property:
    districts = valuer.builder.districts_
    return Property(negotiation, districts[i % len(districts)], 40.0 + 7 * i, 1 + i % 4, 1, 0, 1)


@pytest.fixture
def sizes(monkeypatch: pytest.MonkeyPatch, valuer: Valuer) -> list[int]:
    """How many properties each call of ``valuer.value_many`` was given."""
    seen: list[int] = []
    real = valuer.value_many

    def spy(props: Sequence[Property], **kwargs: Any) -> list[Valuation]:
        seen.append(len(props))
        return real(props, **kwargs)

    monkeypatch.setattr(valuer, "value_many", spy)
    return seen


def test_asks_of_one_turn_are_valued_in_one_call(valuer: Valuer, sizes: list[int]) -> None:
    props = [flat(valuer, i, ("sale", "rent")[i % 2]) for i in range(3 * ROWS_TOGETHER)]

    async def ask_all() -> list[Valuation]:
        coalescer = Coalescer(valuer)
        return list(await asyncio.gather(*(coalescer.value(p, DEFAULT) for p in props)))

    found = asyncio.run(ask_all())
    assert sizes[:1] == [len(props)]
    assert found == [valuer.value(p) for p in props]


def test_a_request_read_in_the_next_turn_joins_the_batch(valuer: Valuer, sizes: list[int]) -> None:
    # A server reads the next requests in the loop's next turn (an I/O callback starts their
    # tasks, which run in the turn after): they are valued with this turn's.
    first, second = flat(valuer, 1), flat(valuer, 2)

    async def ask_both() -> list[Valuation]:
        coalescer = Coalescer(valuer)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[asyncio.Task[Valuation]] = loop.create_future()

        async def ask_second() -> Valuation:
            return await coalescer.value(second, DEFAULT)

        asked = coalescer.value(first, DEFAULT)
        loop.call_soon(lambda: started.set_result(loop.create_task(ask_second())))
        return [await asked, await (await started)]

    found = asyncio.run(ask_both())
    assert sizes == [2]
    assert found == [valuer.value(first), valuer.value(second)]


def test_asks_with_other_options_are_valued_apart(valuer: Valuer, sizes: list[int]) -> None:
    props = [flat(valuer, i) for i in range(4)]
    options = [DEFAULT, Options(level=0.9), DEFAULT, Options(level=0.9, comparables=2)]

    async def ask_all() -> list[Valuation]:
        coalescer = Coalescer(valuer)
        asks = (coalescer.value(p, o) for p, o in zip(props, options, strict=True))
        return list(await asyncio.gather(*asks))

    found = asyncio.run(ask_all())
    assert sorted(sizes) == [1, 1, 2]
    for prop, option, valuation in zip(props, options, found, strict=True):
        assert valuation == valuer.value(prop, level=option.level, comparables=option.comparables)


def test_a_failing_batch_is_logged_and_valued_ask_by_ask(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, valuer: Valuer
) -> None:
    real = valuer.value_many
    broken = flat(valuer, 3)

    def fails_on_broken(props: Sequence[Property], **kwargs: Any) -> list[Valuation]:
        if broken in props:
            raise RuntimeError("a bug in valuing this one")
        return real(props, **kwargs)

    monkeypatch.setattr(valuer, "value_many", fails_on_broken)
    props = [flat(valuer, i) for i in range(6)]

    async def ask_all() -> list[Valuation | BaseException]:
        coalescer = Coalescer(valuer)
        asks = (coalescer.value(p, DEFAULT) for p in props)
        return list(await asyncio.gather(*asks, return_exceptions=True))

    with caplog.at_level(logging.ERROR, logger="imovsp.api.coalesce"):
        found = asyncio.run(ask_all())
    assert [r.msg for r in caplog.records] == [{"event": "valuations_together_failed", "asks": 6}]
    for prop, answer in zip(props, found, strict=True):
        if prop == broken:
            assert isinstance(answer, RuntimeError)
        else:
            assert answer == valuer.value(prop)


def test_every_ask_is_answered_even_when_a_batch_comes_back_short(
    monkeypatch: pytest.MonkeyPatch, valuer: Valuer
) -> None:
    real = valuer.value_many

    def one_short(props: Sequence[Property], **kwargs: Any) -> list[Valuation]:
        return real(props, **kwargs)[:-1]

    monkeypatch.setattr(valuer, "value_many", one_short)
    props = [flat(valuer, i) for i in range(3)]

    async def ask_all() -> list[Valuation | BaseException]:
        coalescer = Coalescer(valuer)
        asks = (coalescer.value(p, DEFAULT) for p in props)
        return list(await asyncio.wait_for(asyncio.gather(*asks, return_exceptions=True), 10))

    found = asyncio.run(ask_all())
    assert all(isinstance(f, Valuation) for f in found[:2])
    assert isinstance(found[2], IndexError)  # an error, not a request left hanging


def test_a_loop_that_ended_before_its_turn_came_does_not_hold_up_another(valuer: Valuer) -> None:
    """A loop that stops with its flush still scheduled (a test client, a tool) takes its asks
    with it; asks on another loop are still valued on that loop's next turn."""
    coalescer = Coalescer(valuer)
    first = asyncio.new_event_loop()

    async def ask_and_stop() -> None:
        coalescer.value(flat(valuer, 1), DEFAULT)
        asyncio.get_running_loop().stop()  # before the turn that would value it

    asked = first.create_task(ask_and_stop())
    first.run_forever()
    first.close()
    assert asked.done()

    async def ask() -> Valuation:
        return await asyncio.wait_for(coalescer.value(flat(valuer, 2), DEFAULT), 10)

    assert asyncio.run(ask()) == valuer.value(flat(valuer, 2))


def test_asks_are_answered_even_when_valuing_is_interrupted(
    monkeypatch: pytest.MonkeyPatch, valuer: Valuer
) -> None:
    def interrupted(props: Sequence[Property], **kwargs: Any) -> list[Valuation]:
        raise KeyboardInterrupt

    monkeypatch.setattr(valuer, "value_many", interrupted)
    coalescer = Coalescer(valuer)
    asked: list[asyncio.Future[Valuation]] = []

    async def ask() -> None:
        asked.append(coalescer.value(flat(valuer, 1), DEFAULT))
        await asyncio.sleep(0.1)

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(ask())
    finally:
        loop.close()
    assert isinstance(asked[0].exception(), RuntimeError)


def test_an_ask_whose_client_went_away_is_not_valued(valuer: Valuer, sizes: list[int]) -> None:
    async def ask_and_cancel() -> Valuation:
        coalescer = Coalescer(valuer)
        gone = coalescer.value(flat(valuer, 1), DEFAULT)
        kept = coalescer.value(flat(valuer, 2), DEFAULT)
        gone.cancel()
        return await kept

    kept = asyncio.run(ask_and_cancel())
    assert sizes == [1]
    assert kept == valuer.value(flat(valuer, 2))


def test_requests_in_flight_together_share_one_valuation_call(
    models_dir: Path, valuer: Valuer, sizes: list[int]
) -> None:
    """Through the whole app: simultaneous requests, good and bad, each get their own answer,
    and the good ones were valued together."""
    app = create_app(Settings(models_dir=models_dir), valuer=valuer)
    good = [
        {"negotiation": p.negotiation, "district": p.district.upper(), "size_m2": p.size_m2}
        for p in (flat(valuer, i) for i in range(2 * ROWS_TOGETHER))
    ]
    bad = [
        {"negotiation": "sale", "district": "Atlantis", "size_m2": 70},
        {"negotiation": "sale", "district": "Moema", "size_m2": 70, "latitude": 0, "longitude": 0},
    ]

    async def post_all() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://imovsp") as c:
                posts = (c.post("/v1/valuations", json=body) for body in [*bad, *good])
                return list(await asyncio.gather(*posts))

    responses = asyncio.run(post_all())
    assert [r.status_code for r in responses[: len(bad)]] == [422, 422]
    assert "Atlantis" in responses[0].json()["detail"]
    assert "outside São Paulo" in responses[1].json()["detail"]
    assert max(sizes) >= ROWS_TOGETHER  # the matrix path served them
    assert sum(sizes) == len(good)
    for body, response in zip(good, responses[len(bad) :], strict=True):
        assert response.status_code == 200, response.text
        alone = valuer.value(valuer.prepare(body))
        # Answered in the index's latest month: the same valuation, moved.
        at = as_of.resolve(price_index.load(), valuer.data_month, body["negotiation"], None)
        moved = as_of.move(alone, at.factor)
        assert response.json()["price_at_data_month"] == round(alone.price, -3)
        assert response.json()["price"] == round(moved.price, -3)
        assert response.json()["price_low"] == round(moved.price_low or 0, -3)
