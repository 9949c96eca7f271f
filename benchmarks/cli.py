"""How long CLI commands take from start to exit, this tree against an older commit, side by
side on the same machine (issue 20: every command took 3.5-4 s, --help included).

    uv run python benchmarks/cli.py [--ref 550b6ed] [--repeat 5] [--models-dir models]

The older commit's ``src/`` is extracted to a temporary directory (``git archive``) and run by
the same interpreter and libraries, so only the code differs. Each command runs ``--repeat``
times for each tree, alternating; prints the median and the fastest run in seconds, as JSON
and as a table. ``predict`` needs a model in ``--models-dir`` (``imovsp train``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "models": ["models"],
    "db --help": ["db", "--help"],
    "score --help": ["score", "--help"],
    "predict": ["predict", "--negotiation", "sale", "--district", "Santana", "--size", "130"],
}


def run_once(src: Path, args: list[str], env: dict[str, str]) -> float:
    code = "import sys; from imovsp.cli import main; sys.argv = ['imovsp', *sys.argv[1:]]; main()"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**env, "PYTHONPATH": str(src)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="550b6ed", help="the older commit to compare with")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    options = parser.parse_args()
    env = {**os.environ, "IMOVSP_MODELS_DIR": str(options.models_dir.resolve())}
    commands = dict(COMMANDS)
    if not (options.models_dir / "CURRENT").exists():
        print(f"no model in {options.models_dir}: predict left out", file=sys.stderr)
        commands.pop("predict")
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", options.ref, "src"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        trees = {"this tree": ROOT / "src", options.ref: Path(tmp) / "src"}
        seconds: dict[str, dict[str, list[float]]] = {c: {t: [] for t in trees} for c in commands}
        for name, args in commands.items():
            for _ in range(options.repeat):
                for tree, src in trees.items():
                    seconds[name][tree].append(run_once(src, args, env))
    results = {
        name: {
            tree: {"median_s": round(statistics.median(s), 2), "min_s": round(min(s), 2)}
            for tree, s in by_tree.items()
        }
        for name, by_tree in seconds.items()
    }
    print(json.dumps({"ref": options.ref, "repeat": options.repeat, "results": results}))
    print(f"\n| command | this tree: median (min) | {options.ref}: median (min) |")
    print("|---|---|---|")
    for name, by_tree in results.items():
        cells = [f"{r['median_s']:.2f} s ({r['min_s']:.2f})" for r in by_tree.values()]
        print(f"| `imovsp {name}` | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
