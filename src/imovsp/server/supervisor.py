"""The process that runs several workers: uvicorn's supervisor, with a listening socket per
worker and model reloads.

uvicorn's supervisor binds one socket that every worker accepts from. asyncio accepts every
connection waiting at each turn of its loop, so whichever worker wakes first takes a whole
burst of new connections, and keep-alive clients then stay with it: under the load benchmark
one worker answered everything while the other idled (10.4 and 0.3 CPU seconds over a 10 s run,
half the throughput of a balanced run). :class:`Balanced` binds one socket per worker slot
instead, all to the same address with ``SO_REUSEPORT``, and the kernel spreads new connections
evenly among the sockets that listen. A worker's socket starts listening when the worker starts
serving, after loading its model, so a worker still starting takes no connection.

When a worker dies its socket is closed, and its replacement gets a new one. Kept, the socket
would go on listening and queueing every other new connection for the replacement, seconds away
under load; closed, the live workers take them all meanwhile. The supervisor wakes as soon as a
worker dies (uvicorn's looks every half second), so few connections can queue on the dead
worker's socket before it closes; those are reset.

uvicorn's supervisor starts the workers, replaces any that dies, and on SIGHUP would restart
every worker. Restarting closes the workers' idle keep-alive connections,
and a client that sent its next request on one just then gets no answer; so here SIGHUP means
"serve the current model" instead: the supervisor checks that the current version loads and
values, remembers it for the workers it starts from now on (a replacement after a crash serves
what the others serve), and passes SIGHUP to every worker, which swaps its model in place
(see :mod:`imovsp.server.reloads`). No connection is closed and no request fails.

A worker inherits the supervisor's signal mask, in which SIGHUP is blocked (the supervisor
takes it with ``sigwait`` on a thread of its own). A SIGHUP that reaches a worker while it is
still loading therefore waits, pending, until the worker can reload and unblocks it, instead of
ending it as the default action would.

A supervisor killed with SIGKILL cannot stop its workers: each asks the kernel for SIGTERM when
its supervisor dies (:func:`follow_supervisor`), and stops as on any SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
from multiprocessing import connection
from pathlib import Path

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from imovsp import artifact, rollout
from imovsp.artifact import ArtifactError

SUPERVISOR_ENV = "IMOVSP_SUPERVISOR_PID"  # tells a worker whom to signal (see reloads.py)
MODEL_ENV = "IMOVSP_MODEL"  # the model directory that a starting worker loads
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
log = logging.getLogger("imovsp.api")
uvicorn_log = logging.getLogger("uvicorn.error")


def follow_supervisor() -> None:
    """In a worker: have the kernel send this process SIGTERM when its supervisor ends (Linux;
    elsewhere nothing), and end now if it already has.

    Only for the supervisor's own children: a process that a worker spawned would find another
    parent and end at once.
    """
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor or not sys.platform.startswith("linux"):
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]  # int prctl(int, unsigned long, ...)
    prctl.restype = ctypes.c_int
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        # Logging is not set up yet in a starting worker.
        print(f"imovsp: no parent-death signal: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return
    if os.getppid() != int(supervisor):  # it died before the call above
        sys.exit(0)


def bind(host: str, port: int, *, shared: bool = True) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` that other sockets may share (``SO_REUSEPORT``)
    unless not ``shared``; the connections it accepts send without Nagle's delay.

    asyncio turns ``TCP_NODELAY`` on for an accepted connection only when the listening
    socket's ``proto`` is ``IPPROTO_TCP``; made as ``socket.socket(AF_INET)`` its ``proto`` is 0,
    and every answer on a kept-alive connection then waited for the client's delayed ACK,
    ~40 ms (44 ms a request for one client sending one request after another; 0.4 ms with
    it: docs/benchmarks.md). ``TCP_NODELAY`` on the listening socket too: Linux passes it on
    to the connections accepted from it, whatever event loop accepts them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Balanced(Multiprocess):
    """uvicorn's supervisor with a socket of its own for each worker slot (see the module doc).

    ``OSError`` at construction if the address cannot be bound.
    """

    def __init__(self, config: Config) -> None:
        # SO_REUSEPORT would as well let this server join one already listening on the port
        # (run by the same user) and take half its connections: a plain bind first says
        # whether the port is free. With port 0 it also picks the port that every slot shares.
        with bind(config.host, config.port, shared=False) as probe:
            self.port = probe.getsockname()[1]
        first = bind(config.host, self.port)
        super().__init__(config, [first])
        self.slots: list[socket.socket] = [first]

    def _slot(self, index: int) -> list[socket.socket]:
        while len(self.slots) <= index:
            self.slots.append(bind(self.config.host, self.port))
        return [self.slots[index]]

    def _renew_slot(self, index: int) -> None:
        """A new socket for slot ``index``, whose worker died (see the module doc). Bound before
        the old one closes, so that the port is never free for another process to take; if
        that fails, the replacement keeps the old socket."""
        try:
            fresh = bind(self.config.host, self.port)
        except OSError as exc:
            log.error({"event": "socket_not_renewed", "slot": index, "reason": str(exc)})
            return
        self.slots[index].close()
        self.slots[index] = fresh

    def _start(self, index: int) -> Process:
        process = Process(self.config, self._slot(index))
        process.start()
        # The worker has its own copy of its end of the health-check pipe. Kept open here, it
        # would hide the worker's death from a ping waiting for an answer, which then waits out
        # the whole health-check timeout (60 s by default) while the dead worker's socket
        # queues new connections; closed, the death ends the wait at once.
        process.child_conn.close()
        return process

    # uvicorn's own methods, each worker started with its slot's socket.

    def run(self) -> None:
        uvicorn_log.info("Started parent process [%d]", os.getpid())
        self.init_processes()
        while not self.should_exit.is_set():
            # Up to half a second, as uvicorn's loop (signals are taken at the next turn), but
            # a worker's death wakes it at once (see the module doc).
            ended = connection.wait([p.process.sentinel for p in self.processes], timeout=0.5)
            for process in self.processes:
                if process.process.sentinel in ended:
                    # Its exit is under way but it may not be reaped yet, and until then
                    # is_alive() would ping it and wait out the health-check timeout.
                    process.process.join()
            self.handle_signals()
            self.keep_subprocess_alive()
        self.terminate_all()
        self.join_all()
        uvicorn_log.info("Stopping parent process [%d]", os.getpid())

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            self.processes.append(self._start(index))

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving: every replacement would fail the same way.
                log.error({"event": "worker_failed_to_start", "pid": process.pid})
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info({"event": "worker_died", "pid": process.pid, "exitcode": process.exitcode})
            self._renew_slot(index)
            self.processes[index] = self._start(index)

    def restart_all(self) -> None:
        """SIGHUP for uvicorn: replace each worker, the new one on the old one's socket, serving
        before the old one is retired (:class:`Supervisor` reloads models instead)."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(index)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                log.error({"event": "worker_restart_failed", "pid": new.pid, "kept": old.pid})
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def handle_ttin(self) -> None:
        self.processes_num += 1
        self.processes.append(self._start(len(self.processes)))
        log.info({"event": "workers_added", "workers": self.processes_num})

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        # Out of the group, or the kernel would go on queueing connections on it.
        self.slots.pop().close()
        log.info({"event": "workers_removed", "workers": self.processes_num})


class Supervisor(Balanced):
    """:class:`Balanced`, where SIGHUP brings every worker to the current model."""

    def __init__(self, config: Config, *, models_dir: Path) -> None:
        super().__init__(config)
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
