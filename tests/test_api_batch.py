"""The batch endpoint: one batch valued at a time per worker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from imovsp.features import Property
from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.valuer import Valuation, Valuer


def test_a_worker_values_one_batch_request_at_a_time(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path, valuer: Valuer
) -> None:
    """Batches wait their turn instead of each holding its items and answers in memory."""
    real = valuer.value_many
    running, most = [0], [0]
    lock = threading.Lock()

    def slow(props: Sequence[Property], **kwargs: Any) -> list[Valuation]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # long enough for the other batches' threads to start, if allowed
        try:
            return real(props, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(valuer, "value_many", slow)
    app = create_app(Settings(models_dir=models_dir), valuer=valuer)
    item = {"negotiation": "sale", "district": valuer.builder.districts_[1], "size_m2": 70}

    async def post_all() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://imovsp") as c:
                posts = (
                    c.post("/v1/valuations/batch", json={"items": [item] * 5}) for _ in range(4)
                )
                return list(await asyncio.gather(*posts))

    responses = asyncio.run(post_all())
    assert [r.json()["valued"] for r in responses] == [5, 5, 5, 5]
    assert most[0] == 1
