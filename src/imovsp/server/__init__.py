"""The server: assembles the HTTP API and the web page into one app (:func:`create_app`), runs
it under uvicorn with a supervisor, and owns what every request passes through (request ids,
limits, metrics, logs) and model reloads. Above both ``imovsp.api`` and ``imovsp.web``.

``create_app`` is imported on first use, not with the package: ``imovsp serve`` must point
prometheus_client at the workers' shared metrics directory before anything imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imovsp.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from imovsp.server.app import create_app

        return create_app
    raise AttributeError(f"module 'imovsp.server' has no attribute {name!r}")
