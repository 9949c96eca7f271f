"""Run the API under uvicorn: one process, or a supervisor with several workers.

uvicorn (httptools parser, asyncio event loop) serves the app directly, each response's head
and body in one write (:mod:`imovsp.server.one_write`); with ``workers > 1``
its supervisor binds a socket per worker, spawns the workers, restarts any that die, and on
SIGTERM passes the signal on and waits: each worker stops accepting, lets the requests in
flight finish (up to ``graceful_timeout`` seconds) and exits; on SIGHUP every worker serves the
current model (see :mod:`imovsp.server.supervisor`). ``benchmarks/api.py`` measures this stack.

Why asyncio and not uvloop: uvloop accepts one new connection per turn of the event loop.
A valuation keeps the loop busy for a while, so under load (256 connections in the benchmark)
new connections waited seconds in the accept queue and clients timed out; asyncio's loop
accepts every waiting connection at each turn, and no request timed out (with a socket per
worker, that greed no longer leaves one worker with every connection).

``imovsp serve`` checks the model, then re-executes itself as ``python -m imovsp.server.main``
(see :func:`main`), so that the server process, and every worker it spawns, starts from this
small module rather than from the whole command line tool.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

if __name__ in ("__main__", "__mp_main__"):  # the server process, or a worker it spawned
    # Serving only predicts. LightGBM imports scikit-learn whenever it is installed (for its
    # own scikit-learn estimators), and scikit-learn brings SciPy's statistics: ~60 MB of each
    # worker's memory for code it never runs. Marked absent here, before anything imports
    # LightGBM, it stays out; imovsp imports it only in the functions that train.
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
    # PyArrow likewise: pandas imports it whenever it is installed (~45 MB a worker), but only
    # Parquet files (`imovsp score --engine dask`) need it, and a server reads none. Without
    # it pandas keeps strings as Python objects, which the few small frames of a server do not
    # notice.
    sys.modules.setdefault("pyarrow", None)  # type: ignore[arg-type]
if __name__ == "__mp_main__":  # a worker
    # Ended with its supervisor, even when that is killed with SIGKILL: orphaned workers
    # would go on serving a port no supervisor owns, and keep the next server from binding it.
    from imovsp.server.supervisor import follow_supervisor

    follow_supervisor()

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from imovsp.server.one_write import OneWriteProtocol
from imovsp.settings import Settings, get_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
# The JSON log lines use none of what logging otherwise looks up for every record (the caller's
# file and line, the thread, the process): off, as logging's documentation suggests for speed
# (https://docs.python.org/3/howto/logging.html#optimization). One access log line per request.
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "imovsp.server.telemetry.JsonLines"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "propagate": False},  # imovsp.access replaces it
        "imovsp": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}


def prepare_metrics_dir(port: int) -> Path:
    """A clean directory for the workers' metric files, put in the environment before any
    worker (or this process) imports prometheus_client.

    One per port, reused from run to run: uvicorn ends by re-raising SIGTERM, so nothing
    would be left to remove a directory made for a single run.
    """
    given = os.environ.get(MULTIPROC_ENV)
    directory = Path(given) if given else Path(tempfile.gettempdir()) / f"imovsp-metrics-{port}"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # counts of an earlier run
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def run(settings: Settings, model: Path, *, host: str, port: int, workers: int) -> None:
    """Serve the model in directory ``model`` until SIGTERM or SIGINT."""
    # Workers load exactly this version, even if CURRENT moves while they (re)start.
    os.environ["IMOVSP_MODEL"] = str(model.resolve())
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        raise RuntimeError("prometheus_client was imported before its directory was set")
    prepare_metrics_dir(port)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "asyncio",
        "http": OneWriteProtocol,  # httptools, each response in one write
        "log_config": LOG_CONFIG,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "timeout_worker_healthcheck": settings.worker_timeout,
    }
    if workers == 1:
        from imovsp.server.app import create_app  # after the metrics directory is set
        from imovsp.server.supervisor import bind

        try:
            sock = bind(host, port, shared=False)
        except OSError as exc:
            refuse(host, port, exc)
        # SIGHUP reloads the model once the app has started (see reloads.py); not fatal before.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        app = create_app(settings.model_copy(update={"model": model}))
        server = uvicorn.Server(uvicorn.Config(app, **common))
        # As uvicorn.run ends: quietly after Ctrl-C (uvicorn re-raises SIGINT once it has
        # stopped), with STARTUP_FAILURE if the app did not start.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        if not server.started:
            sys.exit(STARTUP_FAILURE)
    else:  # each worker builds the app with create_app() and loads its own model
        from imovsp.server.supervisor import Supervisor

        config = uvicorn.Config("imovsp.server:create_app", factory=True, workers=workers, **common)
        try:
            supervisor = Supervisor(config, models_dir=settings.models_dir)
        except OSError as exc:
            refuse(host, port, exc)
        supervisor.run()


def refuse(host: str, port: int, exc: OSError) -> NoReturn:
    """End with one line and exit code 2: the port is taken, the host is not this machine's…"""
    print(f"imovsp serve: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
    sys.exit(2)


def exec_server(model: Path, *, host: str, port: int, workers: int) -> None:
    """Replace this process (same pid: a PaaS's SIGTERM still reaches the server) by
    ``python -m imovsp.server.main``, which calls :func:`run` with the settings of the same
    environment: the workers spawned from it then import only the web stack and the model's
    code, not the command line tool's training, reports and batch engines."""
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "imovsp.server.main", f"--host={host}", f"--port={port}"]
    argv += [f"--workers={workers}", f"--model={model.resolve()}"]
    os.execv(argv[0], argv)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imovsp.server.main", description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    args = parser.parse_args(argv)
    run(get_settings(), args.model, host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
