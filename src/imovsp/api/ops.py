"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from imovsp.api.deps import ValuerDep
from imovsp.api.errors import error_response
from imovsp.api.prometheus import metrics_payload
from imovsp.api.routes import JSONBytes
from imovsp.features import Property
from imovsp.valuer import Valuer

router = APIRouter(tags=["operations"])


def canary(valuer: Valuer) -> Property:
    """What readiness asks the model to value: its plain flat."""
    return valuer.plain_flat()


@router.get("/healthz", summary="Liveness")
async def healthz() -> Response:
    """The process is up and answering HTTP."""
    return JSONBytes({"status": "ok"})


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz(request: Request, valuer: ValuerDep) -> Response:
    """The model is loaded and values a property."""
    started = time.perf_counter()
    try:
        price = valuer.predict_one(canary(valuer))
    except Exception as exc:  # any failure here means: do not send traffic
        return error_response(request, 503, f"model not answering: {exc}")
    if not price > 0:
        return error_response(request, 503, f"model answered {price!r} for a plain flat")
    ms = round((time.perf_counter() - started) * 1000, 3)
    return JSONBytes({"status": "ready", "model_version": valuer.version, "canary_ms": ms})


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Requests and latency by route and status, valuations by negotiation, model version."""
    payload, content_type = metrics_payload()
    return Response(payload, media_type=content_type)
