"""The HTTP API over the Valuer (FastAPI): see :func:`create_app`."""

from imovsp.api.app import create_app

__all__ = ["create_app"]
