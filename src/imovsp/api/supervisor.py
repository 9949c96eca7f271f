"""The process that runs several workers: uvicorn's supervisor, with model reloads.

uvicorn's supervisor binds the socket once, starts the workers, replaces any that dies, and on
SIGHUP would restart every worker. Restarting closes the workers' idle keep-alive connections,
and a client that sent its next request on one just then gets no answer; so here SIGHUP means
"serve the current model" instead: the supervisor checks that the current version loads and
values, remembers it for the workers it starts from now on (a replacement after a crash serves
what the others serve), and passes SIGHUP to every worker, which swaps its model in place
(see :mod:`imovsp.api.admin`). No connection is closed and no request fails.

A worker inherits the supervisor's signal mask, in which SIGHUP is blocked (the supervisor
takes it with ``sigwait`` on a thread of its own). A SIGHUP that reaches a worker while it is
still loading therefore waits, pending, until the worker can reload and unblocks it, instead of
ending it as the default action would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
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
        # Before any worker or thread starts: all of them inherit the mask (see the module doc).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        threading.Thread(target=self._take_hups, name="sighup", daemon=True).start()

    def _take_hups(self) -> None:
        """Queue each SIGHUP for the main loop, as uvicorn's own handler would."""
        while True:
            self.signal_queue.append(signal.sigwait({signal.SIGHUP}))

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
            # A worker still starting gets it once it can reload (see the module doc).
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        log.info({"event": "workers_signalled", "version": version, "workers": pids})
