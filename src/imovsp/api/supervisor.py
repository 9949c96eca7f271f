"""The process that runs several workers: uvicorn's supervisor, with model reloads.

uvicorn's supervisor binds the socket once, starts the workers, replaces any that dies, and on
SIGHUP would restart every worker. Restarting closes the workers' idle keep-alive connections,
and a client that sent its next request on one just then gets no answer; so here SIGHUP means
"serve the current model" instead: the supervisor checks that the current version loads and
values, remembers it for the workers it starts from now on (a replacement after a crash serves
what the others serve), and passes SIGHUP to every worker, which swaps its model in place
(see :mod:`imovsp.api.admin`). No connection is closed and no request fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path
from socket import socket

from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import Multiprocess

from imovsp import artifact, rollout
from imovsp.artifact import ArtifactError

SUPERVISOR_ENV = "IMOVSP_SUPERVISOR_PID"  # tells a worker whom to signal (see admin.py)
MODEL_ENV = "IMOVSP_MODEL"  # the model directory that a starting worker loads
log = logging.getLogger("imovsp.api")


class Supervisor(Multiprocess):
    """uvicorn's supervisor, where SIGHUP brings every worker to the current model."""

    def __init__(self, config: Config, sockets: list[socket], *, models_dir: Path) -> None:
        super().__init__(config, sockets)
        self.models_dir = models_dir
        os.environ[SUPERVISOR_ENV] = str(os.getpid())  # inherited by the workers

    def handle_hup(self) -> None:
        version = artifact.current_version(self.models_dir)
        try:
            if version is None:
                raise ArtifactError(f"no current model in {self.models_dir}")
            path = (self.models_dir / version).resolve()
            rollout.verify(path)
        except ArtifactError as exc:
            log.info({"event": "model_refused", "reason": str(exc), "pid": os.getpid()})
            return
        os.environ[MODEL_ENV] = str(path)
        pids = [p.pid for p in self.processes if p.pid is not None]
        for pid in pids:
            # A worker still starting has no handler yet and ends: its replacement starts
            # with the new model.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        log.info({"event": "workers_signalled", "version": version, "workers": pids})
