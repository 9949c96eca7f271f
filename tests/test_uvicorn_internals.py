"""The uvicorn internals imovsp builds on, pinned: a test of the installed uvicorn's source.

``server/supervisor.py`` subclasses ``Multiprocess`` and starts uvicorn's ``Process`` itself (one
socket per worker slot, a worker's death noticed at once, SIGHUP reloading models), and
``server/one_write.py`` subclasses ``HttpToolsProtocol`` and wraps a ``RequestResponseCycle``'s
transport. None of these is uvicorn's documented API, so an upgrade may change them without
notice. pyproject.toml pins uvicorn to its 0.54 series; this test fails when the source of
those classes changes even within it. When it fails: read the new source against the two
modules above (and their tests: test_supervisor.py, test_api_serve.py, test_one_write.py),
adapt them, and record the new hashes here.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import pytest
import uvicorn
from uvicorn import config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.supervisors.multiprocess import Multiprocess, Process

# sha256 of each one's source (first 16 hex digits), as read in uvicorn 0.54.0.
PINNED: list[tuple[Any, str]] = [
    (Multiprocess, "ea4650ac0ee7c09c"),
    (Process, "c3105a4518e3195a"),
    (HttpToolsProtocol._start_asgi_task, "9c08c2571ae9b038"),
    (RequestResponseCycle, "e67d470d435dcc1c"),
]


def test_uvicorn_is_the_series_the_supervisor_was_written_for() -> None:
    assert uvicorn.__version__.startswith("0.54."), uvicorn.__version__


@pytest.mark.parametrize(
    ("internal", "digest"), PINNED, ids=lambda p: getattr(p, "__qualname__", p)
)
def test_the_internals_it_overrides_are_unchanged(internal: Any, digest: str) -> None:
    source = inspect.getsource(internal)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, internal.__qualname__


def test_what_the_supervisor_calls_is_there() -> None:
    # The names the subclass uses, with the signatures it calls them with.
    for name in ("handle_signals", "terminate_all", "join_all", "signal_queue", "should_exit"):
        assert name in inspect.getsource(Multiprocess), name
    assert list(inspect.signature(Multiprocess.__init__).parameters) == [
        "self",
        "config",
        "sockets",
    ]
    assert list(inspect.signature(Process.__init__).parameters)[:3] == ["self", "config", "sockets"]
    assert config.STARTUP_FAILURE == 3
