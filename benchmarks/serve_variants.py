"""What a setting or another version of the code costs a loaded server, side by side.

    uv run python benchmarks/serve_variants.py [--rounds 3] [--duration 8] \\
        --variant base \\
        --variant nolog IMOVSP_PREDICTION_LOG=false \\
        --variant noaccess IMOVSP_ACCESS_LOG=false \\
        --variant before PYTHON=/path/to/other/checkout/.venv/bin/python

Starts ``imovsp serve --workers 2`` once per variant (its environment plus the variant's
``NAME=value`` settings; ``PYTHON=`` runs another checkout's interpreter, and so its code, on
the same model), all at once, then loads them with wrk in turn, round after round: this
machine's speed drifts over minutes, and variants measured minutes apart differ by the drift.
Each load: ``POST /v1/valuations`` with ``benchmarks/api.py``'s realistic body, 256
connections, a 2 s warm-up, then ``--duration`` seconds. Prints each load's requests per
second and the CPU time the server's processes (supervisor and workers, every thread) spent
per request, from ``/proc``: less moved than req/s by other load on the machine. Then each
variant's median. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from api import REALISTIC, cpu_seconds, free_port, server, workers_of, wrk

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "SETTING"),
        help="a name, then NAME=value settings (PYTHON=... for another interpreter)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args()
    body = [json.dumps(REALISTIC).encode()]
    logs = Path(tempfile.mkdtemp(prefix="imovsp-variants-"))
    rps: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with ExitStack() as stack:
        urls, pids = {}, {}
        for name, *settings in args.variant:
            extra = dict(s.split("=", 1) for s in settings)
            python = extra.pop("PYTHON", sys.executable)
            env = {
                **{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
                "PYTHONUNBUFFERED": "1",
                "IMOVSP_MODELS_DIR": str(args.models_dir.resolve()),
                "IMOVSP_DATABASE_URL": f"sqlite:///{logs / name}.db",
                **extra,
            }
            port = free_port()
            cmd = [python, "-m", "imovsp", "serve", "--port", str(port), "--workers", "2"]
            ready = f"http://127.0.0.1:{port}/readyz"
            log = logs / f"{name}.log"
            pids[name] = stack.enter_context(server(cmd, ready=ready, env=env, log=log, workers=2))
            urls[name] = f"http://127.0.0.1:{port}/v1/valuations"
        for r in range(args.rounds):
            for name, url in urls.items():
                wrk(url, body, connections=args.connections, seconds=2, threads=2)
                processes = [pids[name], *workers_of(pids[name])]
                before = sum(cpu_seconds(p) for p in processes)
                out = wrk(url, body, connections=args.connections, seconds=args.duration, threads=2)
                spent = sum(cpu_seconds(p) for p in processes) - before
                rps.setdefault(name, []).append(out["rps"])
                cpu.setdefault(name, []).append(spent / out["requests"] * 1e6)
                print(
                    f"round {r + 1} {name:18s} {out['rps']:8,.0f} req/s "
                    f"{cpu[name][-1]:6.1f} CPU µs/request, errors {out['errors']}",
                    flush=True,
                )
    print(f"\n{'variant':18s} {'req/s':>8s} {'CPU µs/req':>11s}  (medians of {args.rounds})")
    for name in rps:
        median_rps, median_cpu = statistics.median(rps[name]), statistics.median(cpu[name])
        print(f"{name:18s} {median_rps:8,.0f} {median_cpu:11.1f}")
    print(f"server logs: {logs}")


if __name__ == "__main__":
    main()
