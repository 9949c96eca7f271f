"""The ASGI application: ``create_app(settings)`` builds it; the model loads in the lifespan."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import anyio
from fastapi import FastAPI
from pydantic.json_schema import models_json_schema
from starlette.types import Receive, Scope, Send

from imovsp import artifact, as_of
from imovsp.api import admin, docs, errors, fast_path, feedback, legacy, ops, routes
from imovsp.api.schemas import BatchIn, PropertyIn
from imovsp.monitoring import recorder as prediction_log
from imovsp.server import reloads, telemetry
from imovsp.server.limits import RateLimiter
from imovsp.settings import Settings, get_settings
from imovsp.valuer import Valuer
from imovsp.web import install as install_web

DESCRIPTION = """\
Values apartments in São Paulo: the sale price, or the monthly rent, in BRL.

Send `negotiation`, `district` and `size_m2`, and any other field you know: a field not given is
priced as unknown, the range widens to match, and the answer says which fields would narrow it
most (`sharpen`). `POST /` keeps the old
deployment's one-hot request working. Every error is JSON with a specific `detail`.
"""
TAGS = [
    {"name": "valuations", "description": "Value one property or a batch."},
    {"name": "model", "description": "What the served model is and knows."},
    {"name": "feedback", "description": "Real prices of valued properties, for monitoring."},
    {"name": "operations", "description": "Health, readiness and Prometheus metrics."},
    {"name": "compatibility", "description": "The old deployment's endpoint."},
    {"name": "web page", "description": "The valuation page and district chart (HTML)."},
]


class ModelMissingError(RuntimeError):
    """No model to serve: the models directory has no current version."""


def load_model(settings: Settings) -> Valuer:
    """The model the settings name, else the current one (``ArtifactError`` if untrusted)."""
    path = artifact.resolve(settings.model, settings.models_dir)
    if path is None:
        raise ModelMissingError(
            f"no model in {settings.models_dir}: run `imovsp train`, or `imovsp serve`, which "
            "trains one first"
        )
    return Valuer.load(path, trees_cache=settings.trees_dir())


def _with_request_schemas(app: FastAPI, settings: Settings) -> None:
    """Put the request bodies that the valuation routes read themselves (see :mod:`deps`)
    into the OpenAPI components their documentation refers to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        _, defs = models_json_schema(
            [(PropertyIn, "validation"), (BatchIn, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        defs["$defs"]["BatchIn"]["properties"]["items"]["maxItems"] = settings.batch_max_items
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    try:
        return metadata.version("imovsp")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0+source"


class Service(FastAPI):
    """FastAPI with :class:`telemetry.Observe` in front of everything, FastAPI's own
    middleware included: request ids, limits, metrics and the access log for every HTTP
    request, and ``POST /v1/valuations`` answered from there by :mod:`imovsp.api.fast_path`
    (see ``Observe.hot``). Its own work is smaller than that of the middleware layers it skips
    (docs/benchmarks.md). (Those layers answer other routes' unexpected errors with a JSON
    500; the fast path answers its own.)
    """

    observe: telemetry.Observe | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.observe is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette sets it: routes reach app.state through it
        await self.observe(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every route through FastAPI's middleware and routing."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, valuer: Valuer | None = None) -> FastAPI:
    """The HTTP service. ``valuer`` serves an already loaded model (else it is loaded at start).

    Without arguments (as ``uvicorn --factory imovsp.server:create_app`` calls it) the settings
    come from the environment.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = valuer or load_model(settings)
        as_of.check_model(app.state.price_index, loaded.data_month)
        reloads.serve_model(app, loaded)  # as every reload does after it
        app.state.recorder = prediction_log.create(settings)
        # One batch valued at a time per worker; the others wait their turn holding only their
        # request. Running more at once gains nothing (one core, one GIL per worker) and each
        # holds ~7 MB of items, valuations and rendered answers while it runs.
        app.state.batch_limiter = anyio.CapacityLimiter(1)
        # The libraries and the model are here for good: leave them out of every garbage
        # collection from now on, or full collections walk them and stall requests.
        gc.collect()
        gc.freeze()
        reloads.trim_memory()
        # Under load ~128 requests are in flight per worker, and at the default threshold (700
        # allocations) each young collection walks their live objects again, and promotes them
        # to be walked by older collections too: ~2% of a loaded server's machine time (perf).
        # Requests' objects are freed by reference counting, not by collections; collecting
        # after 20,000 allocations walks the in-flight requests ~30 times less often.
        gc.set_threshold(20_000, *gc.get_threshold()[1:])
        telemetry.log_event(
            "model_loaded",
            version=loaded.version,
            path=str(loaded.path),
            load_seconds=loaded.load_seconds,
            pid=os.getpid(),
        )
        stop_reloads = reloads.listen(app)  # SIGHUP, and IMOVSP_RELOAD_INTERVAL
        yield
        stop_reloads()
        telemetry.flush_access_log()  # the last requests' lines, before the lines that follow
        # After SIGTERM, once requests in flight are answered: write every buffered record.
        await asyncio.to_thread(app.state.recorder.close)
        telemetry.log_event("stopped", pid=os.getpid())

    app = Service(
        title="imovsp",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # /docs is served from the package (imovsp.api.docs); ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.settings = settings
    # The price index that moves valuations to other months (see imovsp.as_of).
    app.state.price_index = settings.index()
    telemetry.access_logger.disabled = not settings.access_log
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(feedback.router)
    app.include_router(legacy.router)
    app.include_router(ops.router)
    install_web(app)
    docs.install(app)
    app.include_router(admin.router)
    app.observe = telemetry.Observe(
        app.serve,
        max_body_bytes=settings.max_body_bytes,
        hot={("POST", "/v1/valuations"): fast_path.value_one},
        limiter=RateLimiter(settings.rate_limit) if settings.rate_limit else None,
        too_large={
            "/v1/valuations/batch": f"send at most {settings.batch_max_items:,} items a "
            "batch, in several requests if need be"
        },
    )
    _with_request_schemas(app, settings)
    return app
