"""The supervisor's view of its workers (the whole server under load is in test_rollout_serve)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from uvicorn.config import Config

from imovsp.server.supervisor import Balanced, bind


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A worker's app: the supervisor only needs it to start."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


def stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` has stopped (Linux). ``SIGSTOP`` takes effect
    only once a thread of the process runs to take it: until then the others go on, and the
    worker's health-check thread may still answer a ping."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


def test_a_worker_killed_while_it_is_health_checked_is_found_dead_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The supervisor pings each worker in turn. A worker that dies while a ping waits for its
    answer must end the wait: until the supervisor sees the death, the dead worker's socket
    queues new connections that nobody will answer (this waited out the whole health-check
    timeout, 60 s by default, when a worker was killed under load)."""
    with monkeypatch.context() as patched:
        # uvicorn's supervisor takes over the process's signals: not pytest's.
        patched.setattr(signal, "signal", lambda *args: None)
        supervisor = Balanced(
            Config(f"{__name__}:app", host="127.0.0.1", port=0, workers=1, log_level="warning")
        )
    worker = supervisor._start(0)
    try:
        # One ping, answered (by the worker's health-check thread): none is left unanswered
        # in the pipe for the check below to read.
        assert worker.ping(60), "the worker did not answer"
        os.kill(worker.pid, signal.SIGSTOP)  # it cannot answer: the next ping waits
        deadline = time.monotonic() + 60
        while not stopped(worker.pid):
            assert time.monotonic() < deadline, "the worker did not stop"
            time.sleep(0.01)
        answers: list[bool] = []
        checking = threading.Thread(target=lambda: answers.append(worker.is_alive(timeout=30)))
        started = time.monotonic()
        checking.start()
        time.sleep(0.5)
        assert checking.is_alive(), "the check did not wait for the worker"
        os.kill(worker.pid, signal.SIGKILL)
        checking.join(40)
        waited = time.monotonic() - started
    finally:
        worker.kill()
        worker.join()
        for sock in supervisor.slots:
            sock.close()
    assert answers == [False]
    # Far below the check's 30 s timeout, which is what a supervisor blind to the death waits.
    assert waited < 15, f"the supervisor took {waited:.1f} s to see that the worker died"


@pytest.mark.parametrize("shared", [True, False])
def test_bound_sockets_accept_connections_that_send_without_nagle_delay(shared: bool) -> None:
    """asyncio sets TCP_NODELAY on accepted connections only for a listening socket whose
    ``proto`` is IPPROTO_TCP; without it each answer on a keep-alive connection waited ~40 ms
    for the client's delayed ACK (the whole server is in test_api_connections)."""
    with bind("127.0.0.1", 0, shared=shared) as listener:
        assert listener.proto == socket.IPPROTO_TCP
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_connections_accepted_by_asyncio_from_a_bound_socket_have_tcp_nodelay() -> None:
    asyncio.run(accept_one_with_asyncio())


async def accept_one_with_asyncio() -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        done.set()

    server = await asyncio.start_server(on_connection, sock=bind("127.0.0.1", 0))
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        await asyncio.wait_for(done.wait(), 10)
        writer.close()
    assert len(seen) == 1
    assert seen[0] != 0
