"""The HTTP API over the Valuer (FastAPI): see :func:`create_app`.

``create_app`` is imported on first use, not with the package: ``imovsp serve`` must point
prometheus_client at the workers' shared metrics directory before anything imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imovsp.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from imovsp.api.app import create_app

        return create_app
    raise AttributeError(f"module 'imovsp.api' has no attribute {name!r}")
