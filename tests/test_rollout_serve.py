"""The real server (two workers) under load while its model changes and a worker dies.

Clients keep sending valuations on keep-alive connections throughout: a reload must not fail
any of them, a refused model must leave the old one serving, and a worker killed with SIGKILL
must be replaced (the requests it was answering fail: they are counted and reported).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from imovsp import artifact, rollout
from model_versions import A, B, C, corrupt, models_with
from test_api_serve import BIN, ITEM, START_TIMEOUT, free_port, server_env, stop, wait_ready

TOKEN = "admin-token-for-tests-0123"
THREADS = 6


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    models: Path
    log: Path

    @classmethod
    def start(cls, models: Path, tmp: Path, **env: str) -> Server:
        """``imovsp serve`` with two workers on a free port; its output goes to a log in ``tmp``."""
        port = free_port()
        log = tmp / "server.log"
        env = {"IMOVSP_ACCESS_LOG": "false", "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")} | env
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(BIN / "imovsp"), "serve", "--port", str(port), "--workers", "2"],
                env=server_env(models, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        return cls(proc, f"http://127.0.0.1:{port}", models, log)

    def workers(self) -> set[int]:
        """The live worker processes (the supervisor's other child tracks resources)."""
        pids = set()
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "multiprocessing.spawn" in " ".join(child.cmdline()):
                    pids.add(child.pid)
            except psutil.Error:  # gone, or a zombie not yet reaped
                continue
        return pids

    def events(self, name: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if f'"{name}"' in line]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("rollout-serve")
    server = Server.start(models_with(tmp, models_dir, A, B, C), tmp, IMOVSP_ADMIN_TOKEN=TOKEN)
    try:
        wait_ready(server.base, server.proc)
        # /readyz answers once one worker is up; these tests reload running workers, so both
        # must have started (signalling starting workers is tested on its own below).
        deadline = time.monotonic() + START_TIMEOUT
        while len(server.events("model_loaded")) < 2:
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.1)
        yield server
    finally:
        if server.proc.poll() is None:
            stop(server.proc)


@dataclass
class Load:
    """Threads that each send valuations one after another on one keep-alive connection."""

    base: str
    answers: list[list[tuple[int, str]]] = field(default_factory=list)  # per thread
    errors: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(THREADS):
            mine: list[tuple[int, str]] = []
            self.answers.append(mine)
            thread = threading.Thread(target=self._send, args=(mine,), daemon=True)
            thread.start()
            self.threads.append(thread)
        self.wait_for(lambda: all(len(a) >= 3 for a in self.answers), "load to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _send(self, mine: list[tuple[int, str]]) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.done.is_set():
                try:
                    response = client.post("/v1/valuations", json=ITEM)
                    mine.append((response.status_code, response.json().get("model_version", "")))
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def latest(self) -> set[str]:
        return {a[-1][1] for a in self.answers}

    def wait_for(self, condition: object, what: str, timeout: float = 120) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def count(self) -> int:
        return sum(len(a) for a in self.answers)


def test_a_burst_of_connections_is_spread_over_both_workers(server: Server) -> None:
    """Clients that connect at once (a pool, a proxy) end up on both workers: each worker has a
    socket of its own. With one shared socket, the first worker to wake took them all."""
    port = int(server.base.rsplit(":", 1)[1])
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(32)]
    try:
        for client in clients:
            client.connect()
        for client in clients:  # answered, so accepted, and kept open (keep-alive)
            client.request("GET", "/healthz")
            assert client.getresponse().read()
        held = {
            pid: sum(
                c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                for c in psutil.Process(pid).net_connections("tcp")
            )
            for pid in server.workers()
        }
    finally:
        for client in clients:
            client.close()
    assert len(held) == 2, held
    assert sum(held.values()) == 32, held
    assert min(held.values()) >= 4, held  # even: 16 each; 4 or fewer by chance is ~1e-5


def test_reloads_under_load_fail_no_request(server: Server) -> None:
    with Load(server.base) as load:
        assert load.latest() == {A}
        rollout.promote(server.models, B)
        os.kill(server.proc.pid, signal.SIGHUP)  # as an operator would
        load.wait_for(lambda: load.latest() == {B}, "every worker to serve B after SIGHUP")
        rollout.rollback(server.models)
        reloaded = httpx.post(
            f"{server.base}/admin/reload", headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["model_version"] == A
        assert reloaded.json()["workers_signalled"] is True
        load.wait_for(lambda: load.latest() == {A}, "every connection to be served A")
        # A worker may have no client connection: its log says when it swapped.
        load.wait_for(lambda: len(server.events("model_reloaded")) == 4, "both workers, twice")
        seen_during = load.count()
    assert load.errors == []
    statuses = {status for answers in load.answers for status, _ in answers}
    assert statuses == {200}
    # Each connection saw A, then B, then A again: one swap at a time, never back and forth.
    for answers in load.answers:
        assert [v for v, _ in itertools.groupby(v for _, v in answers)] == [A, B, A]
    swaps = [json.loads(line) for line in server.events("model_reloaded")]
    assert sorted(e["version"] for e in swaps) == [A, A, B, B]
    assert len({e["pid"] for e in swaps}) == 2  # each worker swapped twice
    print(f"\nreloads under load: {seen_during} valuations, 0 failed")


def test_an_unusable_current_model_is_refused_and_the_old_one_keeps_serving(
    server: Server,
) -> None:
    served = httpx.get(f"{server.base}/readyz").json()["model_version"]
    reason = corrupt(server.models / C)
    (server.models / artifact.CURRENT).write_text(C + "\n")  # broken after its promotion
    refused_before = len(server.events("model_refused"))
    with Load(server.base) as load:
        answer = httpx.post(
            f"{server.base}/admin/reload", headers={"authorization": f"Bearer {TOKEN}"}
        )
        os.kill(server.proc.pid, signal.SIGHUP)
        load.wait_for(
            lambda: len(server.events("model_refused")) >= refused_before + 2,
            "the worker and the supervisor to refuse the model",
        )
        time.sleep(0.5)
    assert answer.status_code == 409
    assert reason in answer.json()["detail"]
    assert answer.json()["detail"].endswith(f"still serving {served}")
    assert load.errors == []
    assert {answer for answers in load.answers for answer in answers} == {(200, served)}


def test_a_killed_worker_is_replaced_and_the_failed_requests_are_counted(
    server: Server,
) -> None:
    served = httpx.get(f"{server.base}/readyz").json()["model_version"]
    before = server.workers()
    assert len(before) == 2
    victim = min(before)
    with Load(server.base) as load:
        held = [
            c
            for c in psutil.Process(victim).net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED
        ]
        os.kill(victim, signal.SIGKILL)
        load.wait_for(
            lambda: len(server.workers() - before) == 1 and len(server.workers()) == 2,
            "a replacement worker",
        )
        # Until the replacement has loaded its model, new connections must all go to the live
        # worker: held here before it can load, it must take none (each would wait for it).
        (replacement,) = server.workers() - before
        os.kill(replacement, signal.SIGSTOP)
        try:
            loaded = {json.loads(line)["pid"] for line in server.events("model_loaded")}
            assert replacement not in loaded, "the replacement started before it could be held"
            # One sent to the held worker would wait out the timeout; the live one answers at
            # once, though a busy machine may take seconds to schedule it.
            fresh = [httpx.get(f"{server.base}/readyz", timeout=20).status_code for _ in range(8)]
        finally:
            os.kill(replacement, signal.SIGCONT)
        assert fresh == [200] * 8
        # Served again by both workers: every thread has answers after the kill.
        marks = [len(a) for a in load.answers]
        load.wait_for(
            lambda: all(len(a) > m + 3 for a, m in zip(load.answers, marks, strict=True)),
            "every client to be answered again",
        )
    print(
        f"\nworker killed under load: {len(load.errors)} of {load.count()} requests failed;"
        f" it held {len(held)} connections"
    )
    # Only the killed worker's clients can fail, each at most twice: the request in flight, and
    # a reconnection that lands on the dead worker's socket in the moment before the supervisor
    # closes it. None waits: a timeout means connections queued for a worker that was gone.
    assert len(load.errors) <= 2 * len(held)
    assert not [e for e in load.errors if "Timeout" in e]
    assert {answer for answers in load.answers for answer in answers} == {(200, served)}
    with httpx.Client(base_url=server.base) as fresh:
        versions = {fresh.get("/readyz").json()["model_version"] for _ in range(10)}
    assert versions == {served}  # the replacement serves what the others serve


def test_sighup_reloads_a_single_process_server(tmp_path: Path, models_dir: Path) -> None:
    models = models_with(tmp_path, models_dir, A, B)
    port = free_port()
    env = server_env(
        models, IMOVSP_ACCESS_LOG="false", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics")
    )
    proc = subprocess.Popen(
        [str(BIN / "imovsp"), "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        rollout.promote(models, B)
        proc.send_signal(signal.SIGHUP)  # the server itself: one worker has no supervisor
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/readyz").json()["model_version"] != B:
            assert proc.poll() is None, "SIGHUP ended the server"
            assert time.monotonic() < deadline, "the promoted model was not served"
            time.sleep(0.2)
    finally:
        out = stop(proc) if proc.poll() is None else proc.communicate()[0]
    assert '"event":"model_reloaded"' in out


def test_sighup_while_the_workers_start_reaches_them_once_they_can_reload(
    tmp_path: Path, models_dir: Path
) -> None:
    """A worker still loading its model cannot reload yet: the SIGHUP waits for it (blocked,
    not lost), where by default it would end the worker."""
    models = models_with(tmp_path, models_dir, A, B)
    server = Server.start(models, tmp_path)
    proc = server.proc
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while len(started := server.workers()) < 2:
            assert proc.poll() is None, server.log.read_text()
            assert time.monotonic() < deadline, "the workers were not spawned"
            time.sleep(0.02)
        assert server.events("model_loaded") == []  # the case under test: still loading
        rollout.promote(models, B)
        os.kill(proc.pid, signal.SIGHUP)
        wait_ready(server.base, proc)
        deadline = time.monotonic() + 120
        while len(server.events("model_reloaded")) < 2:
            assert time.monotonic() < deadline, "the workers did not reload"
            time.sleep(0.1)
        assert server.workers() == started  # neither was ended and replaced
        # A new connection each time, so that both workers answer.
        versions = {httpx.get(f"{server.base}/readyz").json()["model_version"] for _ in range(10)}
        assert versions == {B}
    finally:
        if proc.poll() is None:
            stop(proc)
    assert "died" not in server.log.read_text()


def test_the_workers_end_with_a_killed_supervisor(tmp_path: Path, models_dir: Path) -> None:
    """SIGKILL leaves the supervisor no time to stop its workers: the kernel ends them, or they
    would go on serving a port that no supervisor owns, and a new server could not bind it."""
    server = Server.start(models_with(tmp_path, models_dir, A), tmp_path)
    try:
        wait_ready(server.base, server.proc)
        deadline = time.monotonic() + START_TIMEOUT
        while len(workers := server.workers()) < 2:
            assert time.monotonic() < deadline, "the workers were not spawned"
            time.sleep(0.1)
        handles = [psutil.Process(pid) for pid in workers]
    finally:
        server.proc.kill()
        server.proc.wait()
    deadline = time.monotonic() + 30
    while alive := [p for p in handles if running(p)]:
        if time.monotonic() > deadline:
            for process in alive:
                process.kill()
            pytest.fail(f"workers left running: {[p.pid for p in alive]}")
        time.sleep(0.1)
    port = int(server.base.rsplit(":", 1)[1])
    with socket.socket() as again:  # the port is free for the next server
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        again.bind(("127.0.0.1", port))
        again.listen()


def running(process: psutil.Process) -> bool:
    """Not ended (an orphan that has ended may stay a zombie until whoever adopted it reaps it)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
