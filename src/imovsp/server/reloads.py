"""Model reloads in a running server: ``POST /admin/reload`` (the route is
:mod:`imovsp.api.admin`), ``SIGHUP``, and (optionally) a look at ``CURRENT`` every
``IMOVSP_RELOAD_INTERVAL`` seconds.

Each worker process swaps its own model. It loads the current version in a thread, checks that
it values a plain flat (:func:`imovsp.rollout.verify`), and only then replaces the served model,
in one step on the event loop: every request is answered by the old model or by the new one.
A model that fails is refused with the reason, and the old one keeps serving.

With several workers (:mod:`imovsp.server.supervisor`), ``SIGHUP`` to the supervisor reaches every
worker, and the worker that answers ``POST /admin/reload`` signals the supervisor, so that all
workers converge on the new model.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter

from imovsp import artifact, rollout
from imovsp.api.admin import ReloadOut, ReloadRefusedError, Status
from imovsp.api.render import Valuing
from imovsp.artifact import ArtifactError
from imovsp.server import telemetry
from imovsp.server.supervisor import SUPERVISOR_ENV
from imovsp.settings import Settings
from imovsp.valuer import Valuer

RELOADS = Counter(
    "imovsp_model_reloads_total",
    "Attempts to serve a new current model, by outcome (reloaded, refused).",
    ["outcome"],
)
for _outcome in ("reloaded", "refused"):  # at zero from the start, so that rate() sees the first
    RELOADS.labels(_outcome)


def trim_memory() -> None:
    """Hand the memory that loading a model used and freed back to the system (glibc's
    ``malloc_trim``): the model's texts, LightGBM's parsing. Left to malloc it stays in the
    heap: 17 MB in one process that loaded the default model (session 14)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def serve_model(app: FastAPI, valuer: Valuer) -> None:
    """Serve ``valuer`` from now on. No ``await`` here: no request sees half a swap."""
    previous: Valuer | None = getattr(app.state, "valuer", None)
    app.state.valuing = Valuing(valuer)
    app.state.valuer = valuer
    if previous is not None and previous.version != valuer.version:
        telemetry.MODEL_INFO.labels(previous.version).set(0)
    telemetry.set_model_info(valuer.version)


async def reload(app: FastAPI, *, trigger: str) -> tuple[Status, Valuer, Valuer]:
    """Serve the models directory's current version; ``(status, old, new)``.

    Raises :class:`ReloadRefusedError` (with the reason) when it cannot be served.
    """
    settings: Settings = app.state.settings
    lock: asyncio.Lock = app.state.reload_lock
    async with lock:
        served: Valuer = app.state.valuer
        version = artifact.current_version(settings.models_dir)
        if version is None:
            raise _refused(f"no current model in {settings.models_dir}", trigger=trigger)
        if version == served.version:
            return "unchanged", served, served
        try:
            # A model new to this machine has its trees compiled first, each worker compiling
            # a booster at a time in a process of its own (imovsp.compiled): ~25 s for a whole
            # model with 2 workers on 2 cores. The old model serves meanwhile.
            loaded = await run_in_threadpool(
                functools.partial(rollout.verify, trees_cache=settings.trees_dir()),
                settings.models_dir / version,
            )
        except ArtifactError as exc:
            raise _refused(f"refused model {version}: {exc}", trigger=trigger) from None
        serve_model(app, loaded)
        gc.freeze()  # as at start: the model stays out of garbage collections
        trim_memory()
    RELOADS.labels("reloaded").inc()
    telemetry.log_event(
        "model_reloaded",
        version=loaded.version,
        previous=served.version,
        load_seconds=loaded.load_seconds,
        trigger=trigger,
        pid=os.getpid(),
    )
    return "reloaded", served, loaded


def _refused(reason: str, *, trigger: str) -> ReloadRefusedError:
    RELOADS.labels("refused").inc()
    telemetry.log_event("model_refused", reason=reason, trigger=trigger, pid=os.getpid())
    return ReloadRefusedError(reason)


def signal_supervisor() -> bool:
    """Ask the supervisor, if this worker has one, to bring every worker to the current model."""
    pid = os.environ.get(SUPERVISOR_ENV, "")
    if not pid.isdigit() or int(pid) != os.getppid():
        return False
    os.kill(int(pid), signal.SIGHUP)
    return True


async def reload_everywhere(app: FastAPI, trigger: str) -> ReloadOut:
    """:func:`reload` this worker's model, then have the supervisor, if there is one, bring
    every other worker to the current model too: what ``POST /admin/reload`` asks for."""
    status, old, new = await reload(app, trigger=trigger)
    return ReloadOut(
        status=status,
        model_version=new.version,
        previous_version=old.version,
        pid=os.getpid(),
        workers_signalled=signal_supervisor(),
    )


def listen(app: FastAPI) -> Callable[[], None]:
    """Reload on SIGHUP (when this is the main thread) and, if the settings say so, every few
    seconds; returns the function that stops both. From now on ``app.state.reload`` (which
    ``POST /admin/reload`` calls) reloads too."""
    settings: Settings = app.state.settings
    app.state.reload_lock = asyncio.Lock()
    app.state.reload = functools.partial(reload_everywhere, app)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coroutine: Coroutine[Any, Any, Any]) -> None:
        task = loop.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def quietly(trigger: str) -> None:
        with contextlib.suppress(ReloadRefusedError):  # logged and counted already
            await reload(app, trigger=trigger)

    async def poll(interval: float) -> None:
        refused: tuple[str | None, float] | None = None
        pointer = settings.models_dir / artifact.CURRENT
        while True:
            await asyncio.sleep(interval)
            try:
                seen = (artifact.current_version(settings.models_dir), pointer.stat().st_mtime)
            except OSError:
                continue
            if seen[0] == app.state.valuer.version or seen == refused:
                continue
            try:
                await reload(app, trigger="interval")
            except ReloadRefusedError:
                refused = seen  # tried again once CURRENT changes

    hup = False
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: spawn(quietly("SIGHUP")))
        hup = True
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests)
        pass
    else:
        # A worker starts with SIGHUP blocked (see imovsp.server.supervisor): one sent while it
        # loaded has waited, and reaches the handler now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    if settings.reload_interval > 0:
        spawn(poll(settings.reload_interval))

    def stop() -> None:
        if hup:
            # Blocked again first: without the handler a SIGHUP would end the process while
            # it finishes the requests in flight.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
            loop.remove_signal_handler(signal.SIGHUP)
        for task in tasks:
            task.cancel()

    return stop
