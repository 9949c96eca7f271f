"""``imovsp serve`` for real: the Procfile's line under honcho, graceful SIGTERM, metrics that
add up across workers, and the container files that must start it the same way."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from imovsp import artifact

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_TIMEOUT = 300  # workers import the scientific stack: slow on a busy 2-core machine
ITEM = {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(models_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMOVSP_", "PROMETHEUS"))}
    return {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "IMOVSP_MODELS_DIR": str(models_dir),
        # The prediction log goes beside the test models, not into the working directory.
        "IMOVSP_DATABASE_URL": f"sqlite:///{models_dir.parent / 'serve-log.db'}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read()) if "json" in r.headers["content-type"] else r.read().decode()


def post(url: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.status, json.loads(r.read()), dict(r.headers)


def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited early:\n{proc.communicate()[0]}"
        try:
            get(f"{base}/readyz")
            return
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{base} not ready after {START_TIMEOUT}s:\n{proc.communicate()[0]}")


def unread_bytes(conn: socket.socket) -> int | None:
    """How many bytes sent on ``conn`` wait unread in the server's end of it, from the kernel's
    table of IPv4 TCP sockets (Linux); None while that end is not listed."""
    client_port = conn.getsockname()[1]
    server_port = conn.getpeername()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(end.split(":")[1], 16) for end in fields[1:3])
        if (local, remote) == (server_port, client_port):
            return int(fields[4].split(":")[1], 16)  # tx_queue:rx_queue
    return None


def wait_read_by_server(conn: socket.socket) -> None:
    """Return once the server process has read everything sent on ``conn`` so far."""
    deadline = time.monotonic() + 60
    while unread_bytes(conn) != 0:
        assert time.monotonic() < deadline, "the server did not read the request"
        time.sleep(0.02)


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, as a platform stops a dyno or container; the output once it has exited."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"no exit within 60s of SIGTERM:\n{out}")
    return out


@pytest.fixture
def serve(models_dir: Path, tmp_path: Path) -> Iterator[Any]:
    """Start ``imovsp serve`` with some arguments; the processes are stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, **env: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"), **env}
        proc = subprocess.Popen(
            [str(BIN / "imovsp"), "serve", "--port", str(port), *args],
            env=server_env(models_dir, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        return proc, base

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def procfile_command() -> str:
    lines = (ROOT / "Procfile").read_text().splitlines()
    (web,) = [line for line in lines if line.startswith("web:")]
    return web.removeprefix("web:").strip()


def test_procfile_web_line_serves_valuations_under_honcho(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "honcho"), "start", "-f", str(ROOT / "Procfile"), "-p", str(port), "web"],
        cwd=ROOT,
        env=server_env(models_dir, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        status, body, headers = post(f"http://127.0.0.1:{port}/v1/valuations", ITEM)
        metrics = get(f"http://127.0.0.1:{port}/metrics")
    finally:
        out = stop(proc)
    assert status == 200
    assert body["price"] > 0
    assert body["district"] == "Santana"
    assert f"serving model {body['model_version']} on http://0.0.0.0:{port}" in out
    assert 'imovsp_valuations_total{negotiation="sale"} 1.0' in metrics
    # Counted from zero before anything happens, as Prometheus wants (rate() of a series that
    # appears at 1 misses the first event).
    for outcome in ("reloaded", "refused"):
        assert f'imovsp_model_reloads_total{{outcome="{outcome}"}} 0.0' in metrics
    # The access log line of that request, as JSON, with its request id.
    logged = [json.loads(m) for m in re.findall(r"(\{\"ts\".*\"imovsp.access\".*\})", out)]
    assert any(r["request_id"] == headers["x-request-id"] for r in logged), out


def test_sigterm_lets_the_request_in_flight_finish(serve: Any) -> None:
    proc, base = serve("--workers", "1")
    port = int(base.rsplit(":", 1)[1])
    body = json.dumps(ITEM).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        head = (
            f"POST /v1/valuations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        conn.sendall(head + body[:10])  # the request is in flight: half its body sent
        wait_read_by_server(conn)  # accepted, and being read: not waiting in the backlog
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # shutting down: no new connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.2)
            except OSError:
                break
        else:
            pytest.fail("the server kept accepting connections after SIGTERM")
        conn.sendall(body[10:])
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK"), response[:200]
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["district"] == "Santana"
    out = proc.communicate(timeout=60)[0]
    # uvicorn re-raises the signal once it has shut down, so the exit reads as SIGTERM's.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out


def test_metrics_add_up_across_workers(serve: Any, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    proc, base = serve("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    n = 40
    try:
        # Concurrent connections, so that both workers take some (which worker accepts a
        # connection is the kernel's choice; the totals below must hold either way).
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: post(f"{base}/v1/valuations", ITEM)[0], range(n)))
        assert statuses == [200] * n
        line = 'imovsp_http_requests_total{method="POST",route="/v1/valuations",status="200"}'
        for _ in range(4):  # whichever worker answers the scrape reports the total
            text = get(f"{base}/metrics")
            (count,) = [ln.rsplit(" ", 1)[1] for ln in text.splitlines() if ln.startswith(line)]
            assert float(count) == n
        assert 'imovsp_valuations_total{negotiation="sale"} 40.0' in text
    finally:
        stop(proc)


def test_workers_start_from_the_server_module_without_scikit_learn(serve: Any) -> None:
    """``imovsp serve`` becomes ``python -m imovsp.server.main`` (same pid), and its workers
    never load scikit-learn, PyArrow or LLVM: ~60, ~45 and ~35 MB each that serving does not
    use (docs/benchmarks.md, imovsp.compiled). They still value one property and a batch."""
    proc, base = serve("--workers", "2")
    try:
        assert post(f"{base}/v1/valuations", ITEM)[0] == 200
        status, body, _ = post(f"{base}/v1/valuations/batch", {"items": [ITEM] * 8})
        assert status == 200
        assert body["errors"] == 0
        assert len(body["items"]) == 8
        server = psutil.Process(proc.pid)
        assert server.cmdline()[1:3] == ["-m", "imovsp.server.main"]
        # (multiprocessing's resource tracker is a child too)
        workers = [c for c in server.children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2

        def mapped(worker: psutil.Process) -> list[str]:
            return [m.path for m in worker.memory_maps()]

        # /readyz answered for one worker; the other may still be importing.
        deadline = time.monotonic() + START_TIMEOUT
        while not all(any("lightgbm" in p for p in mapped(w)) for w in workers):
            assert time.monotonic() < deadline, "a worker never loaded LightGBM"
            time.sleep(0.2)
        for worker in workers:
            # LLVM only compiles, in processes of its own (imovsp.compiled).
            unused = ("sklearn", "pyarrow", "llvmlite")
            assert not [path for path in mapped(worker) if any(u in path for u in unused)]
    finally:
        stop(proc)


def test_ctrl_c_stops_a_single_process_server_quietly(serve: Any) -> None:
    proc, _ = serve("--workers", "1")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def serve_refused(models_dir: Path, *args: str, command: tuple[str, ...] = (), **env: str) -> str:
    """``imovsp serve`` (or ``command``) with ``args``, which must end with exit code 2 and no
    traceback; its last line on stderr."""
    result = subprocess.run(
        [*(command or (str(BIN / "imovsp"), "serve")), *args],
        env=server_env(models_dir, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_serve_with_an_unusable_model_exits_2_with_one_line(
    models_dir: Path, tmp_path: Path
) -> None:
    last = serve_refused(models_dir, "--model", str(tmp_path / "nope"), "--port", str(free_port()))
    assert last == f"Error: no model directory at {tmp_path / 'nope'}"


def test_serve_checks_the_port_before_it_trains_a_model(tmp_path: Path) -> None:
    """Without a model, serve trains one first: a taken port is said before that, not after."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        last = serve_refused(
            tmp_path / "no-models-yet",
            *("--port", str(port)),
            IMOVSP_DATA=str(tmp_path / "no-listings.csv"),  # training would fail on it
        )
    assert last == f"imovsp serve: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.parametrize("entry", ["cli", "server"])
@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_serve_on_a_taken_port_exits_2_with_one_line(
    models_dir: Path, tmp_path: Path, reuse_port: bool, workers: str, entry: str
) -> None:
    """Also when the port's holder allows sharing it: the workers' sockets share their port, but
    a second server must not join a first one by mistake. ``imovsp serve`` checks the port
    first; the server process it becomes checks again when it binds (the port may have been
    taken meanwhile, during a model's training for one)."""
    command: tuple[str, ...] = ()
    if entry == "server":
        model = models_dir / str(artifact.current_version(models_dir))
        command = (str(BIN / "python"), "-m", "imovsp.server.main", "--host=127.0.0.1")
        command += (f"--model={model}",)
    with socket.socket() as taken:
        if reuse_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        last = serve_refused(
            models_dir,
            *(f"--port={port}", f"--workers={workers}"),
            command=command,
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        )
    assert last == f"imovsp serve: cannot listen on 127.0.0.1:{port}: Address already in use"


# -- the container files start it as the Procfile does --------------------------------------------


def dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_dockerfile_runs_the_procfile_command_as_a_non_root_user() -> None:
    lines = dockerfile()
    (cmd,) = [json.loads(ln.removeprefix("CMD ")) for ln in lines if ln.startswith("CMD ")]
    assert cmd[:2] == ["sh", "-c"]
    assert cmd[2].removeprefix("exec ") == procfile_command()
    assert len([ln for ln in lines if ln.startswith("FROM ")]) >= 2  # multi-stage
    (user,) = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert user not in ("root", "0")
    env = " ".join(ln for ln in lines if ln.startswith("ENV "))
    port = re.search(r"\bPORT=(\d+)", env)
    assert port is not None
    assert f"EXPOSE {port.group(1)}" in lines
    (check,) = [ln for ln in lines if ln.startswith("HEALTHCHECK ")]
    assert "/healthz" in check


def test_compose_uses_the_image_command_and_its_port() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    assert service["build"] == "."
    assert "command" not in service  # the Dockerfile's, i.e. the Procfile's
    env_port = re.search(r"\bPORT=(\d+)", " ".join(dockerfile()))
    assert env_port is not None
    assert service["environment"]["PORT"] == env_port.group(1)
    (mapping,) = service["ports"]
    assert mapping.split(":")[-1] == env_port.group(1)
    assert any(v.endswith(":/app/models") for v in service["volumes"])


def test_procfile_is_the_documented_command() -> None:
    assert shlex.split(procfile_command())[:2] == ["imovsp", "serve"]
    assert "$PORT" in procfile_command()
