"""LightGBM's trees compiled to machine code, giving LightGBM's numbers to the bit.

LightGBM walks its trees as data: for each row and tree, a loop reads a node's feature,
threshold and children until it reaches a leaf. lleaves turns each tree into code, one branch
per node, and the same comparisons run several times faster (docs/benchmarks.md, session 14).

The compiled trees are summed in LightGBM's order (one block of all of them: lleaves' default
blocks sum them in another order, which moves the last bit), so their outputs are LightGBM's to
the bit. Each booster is checked at load on rows that reach its leaves in many ways, and a
booster whose compiled output differs in any bit, or which fails to compile, is run by LightGBM
(said in the log): compiling can only change how fast a valuation is, never its numbers.

Compiling takes ~3 s per 500 trees, ~25 s for a whole model on 2 cores, in processes of their
own (:func:`warm`). lleaves compiles a booster to an object file for a generic CPU of the
machine's kind, which the system's linker (``ld``, Debian's binutils) makes a shared library
that ctypes loads. So a server's workers hold the trees' code and nothing of LLVM: loaded by
LLVM itself in each worker, the trees cost ~90 MB a worker, as shared libraries ~10 MB.

The libraries are kept in a cache directory (``IMOVSP_TREES_CACHE``), one per booster, named by
a hash of its model text and of the compiler's versions and settings: a machine compiles a
model once. Processes that compile at once share the work through a lock per file. A library
is written under a temporary name and renamed, and is loaded only if its SHA-256 matches the
one written beside it. It is machine code that imovsp runs, so the cache directory must be
writable only by the account that runs imovsp, like its virtualenv.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import logging
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

log = logging.getLogger(__name__)

# lleaves' settings. fblocksize: one block of all the trees, so that they are summed in
# LightGBM's order (see the module's note); it is set per booster to its number of trees.
# finline=False: compiling took 25 s for 515 trees with inlining and 3.3 s without, and the
# compiled trees ran at 3.6 µs a row either way (one block) against LightGBM's 12.2.
# fcodemodel="small": addresses within 2 GB, which a library of a few MB is; lleaves' default
# ("large") is for code placed anywhere by LLVM's JIT. A valuation's CPU in process: 80 against
# 84.5 µs; the dev listings in a matrix: 42,800 against 37,500 rows/s.
# A generic CPU: the libraries run on any machine of the kind, and ran as fast as for this one.
SETTINGS = {
    "finline": False,
    "fcodemodel": "small",
    "target_cpu": "generic",
    "target_cpu_features": "",
}
ENTRY = "forest_root"  # lleaves' function: (rows, out, first row, end row)
CHECK_ROWS = 512
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


class CompiledTrees:
    """One booster's trees as machine code (a shared library): :meth:`predict` for rows,
    :meth:`row_predictor` for one row at a time. The code keeps no state: threads may share it,
    and ctypes lets go of the GIL while it runs."""

    def __init__(self, library: Path, n_features: int) -> None:
        self._library = ctypes.CDLL(str(library))  # kept: the function lives in it
        func = getattr(self._library, ENTRY)
        func.argtypes = [_DOUBLE_P, _DOUBLE_P, ctypes.c_int, ctypes.c_int]
        func.restype = None
        self._func = func
        self.n_features = n_features

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs of the rows of ``x`` (n × ``n_features``), as ``Booster.predict``'s."""
        rows = np.ascontiguousarray(x, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got {rows.shape}")
        out = np.empty(len(rows), dtype=np.float64)
        if len(rows):
            self._func(rows.ctypes.data_as(_DOUBLE_P), out.ctypes.data_as(_DOUBLE_P), 0, len(rows))
        return out

    def row_predictor(self) -> RowPredictor:
        return RowPredictor(self)


class RowPredictor:
    """One row at a time through compiled trees, with the buffers and pointers made once
    (what :class:`imovsp.single_row.SingleRowPredictor` is for LightGBM)."""

    def __init__(self, trees: CompiledTrees) -> None:
        self.n_features = trees.n_features
        self._func = trees._func
        self._row = np.zeros(trees.n_features, dtype=np.float64)
        self._out = np.zeros(1, dtype=np.float64)
        self._args = (self._row.ctypes.data_as(_DOUBLE_P), self._out.ctypes.data_as(_DOUBLE_P))
        self._lock = threading.Lock()  # the buffers are shared by this object's calls

    def predict(self, row: np.ndarray) -> float:
        """The output for one row of ``n_features`` float64 values."""
        if row.shape != (self.n_features,) and row.shape != (1, self.n_features):
            raise ValueError(f"expected one row of {self.n_features} features, got {row.shape}")
        with self._lock:
            self._row[:] = row
            self._func(*self._args, 0, 1)
            return float(self._out[0])


class CompiledBooster(lgb.Booster):
    """A LightGBM booster whose plain predictions (``predict(rows)``, ``num_threads`` aside)
    run its compiled trees; anything else (contributions, leaf indices, other iterations) is
    LightGBM's."""

    def __init__(self, model_str: str, trees: CompiledTrees) -> None:
        super().__init__(model_str=model_str)
        self.trees = trees

    def predict(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        plain = not args and kwargs.keys() <= {"num_threads"}
        if plain and isinstance(data, np.ndarray) and data.shape[1:] == (self.trees.n_features,):
            return self.trees.predict(data)
        return super().predict(data, *args, **kwargs)


def boosters(texts: Mapping[str, str], cache: Path | None) -> dict[str, lgb.Booster]:
    """A booster per model text: compiled (:class:`CompiledBooster`) where that works and
    gives LightGBM's outputs to the bit, else LightGBM's own. ``cache`` is where compiled trees
    are kept (``None``: nothing compiled); what is not there yet is compiled first."""
    plain = {name: lgb.Booster(model_str=text) for name, text in texts.items()}
    if cache is None:
        return plain
    started = time.perf_counter()
    warm(texts, cache, jobs=1)
    out: dict[str, lgb.Booster] = {}
    for name, text in texts.items():
        trees = _checked(name, cache, text, plain[name])
        out[name] = plain[name] if trees is None else CompiledBooster(text, trees)
    log.info(
        {
            "event": "trees_loaded",
            "compiled": sum(isinstance(b, CompiledBooster) for b in out.values()),
            "boosters": len(out),
            "seconds": round(time.perf_counter() - started, 2),
            "cache": str(cache),
        }
    )
    return out


def _checked(name: str, cache: Path, text: str, booster: lgb.Booster) -> CompiledTrees | None:
    """``text``'s compiled trees if they are in ``cache`` and give ``booster``'s outputs to
    the bit on :func:`check_rows`; else ``None``, said in the log."""
    path = library(cache, text)
    if not cached(path):
        return None  # warm() said why
    try:
        trees = CompiledTrees(path, booster.num_feature())
        rows = check_rows(booster.num_feature())
        same = np.array_equal(trees.predict(rows), booster.predict(rows, num_threads=1))
    except Exception as exc:
        _warn("trees_not_loaded", exc, booster=name)
        return None
    if not same:
        log.warning({"event": "trees_differ", "booster": name, "run_by": "LightGBM"})
        return None
    return trees


def check_rows(n_features: int, n: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """Rows that take many paths through a booster's trees: each value drawn from scales of
    1 to 100,000, signed, rounded or not, zeros and missing values among them."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(0, 6, size=(n, n_features))
    x = rng.normal(size=(n, n_features)) * scale
    x = np.where(rng.random((n, n_features)) < 0.3, np.round(np.abs(x)), x)
    x[rng.random((n, n_features)) < 0.1] = 0.0
    x[rng.random((n, n_features)) < 0.1] = np.nan
    return x


# -- the cache --------------------------------------------------------------------------------


def library(cache: Path, text: str) -> Path:
    """Where ``text``'s compiled trees are (or would be) in ``cache``."""
    stamp = "\n".join(
        [
            f"lleaves {metadata.version('lleaves')}",
            f"llvmlite {metadata.version('llvmlite')}",
            f"settings {sorted(SETTINGS.items())}",
            f"machine {platform.machine()} {platform.system()}",
            text,
        ]
    )
    return cache / f"{hashlib.sha256(stamp.encode()).hexdigest()}.so"


def cached(path: Path) -> bool:
    """Whether the library ``path`` is in the cache, whole (its SHA-256 checked)."""
    try:
        return _sha256(path) == path.with_suffix(".sha256").read_text()
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock file while inside (another process compiling it holds it)."""
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def warm(
    texts: Mapping[str, str],
    cache: Path,
    say: Callable[[str], None] = lambda _: None,
    jobs: int | None = None,
) -> int:
    """Compile into ``cache`` the model texts that are not there yet, ``jobs`` processes at
    a time (default: one per core), saying how far it got; the number compiled. Failures are
    logged, not raised: the boosters concerned will run on LightGBM."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        missing = [text for text in texts.values() if not cached(library(cache, text))]
    except Exception as exc:
        _warn("trees_not_compiled", exc, cache=str(cache))
        return 0
    if not missing:
        return 0
    # In an order of this process's own: workers compiling a new model at once (a reload)
    # then mostly take different boosters, rather than queue for the same locks in turn.
    random.Random(os.getpid()).shuffle(missing)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(missing)))
    say(
        f"compiling the model's trees to machine code ({len(missing)} boosters, {jobs} at a "
        "time), once for this model on this machine"
    )
    started, done = time.perf_counter(), 0
    # Processes of their own: LLVM (~90 MB) never enters the caller, a server's worker.
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(compile_into, cache, text) for text in missing]
            for future in as_completed(futures):
                try:
                    future.result()
                    done += 1
                except Exception as exc:
                    _warn("trees_not_compiled", exc)
                say(f"  {done}/{len(missing)} compiled ({time.perf_counter() - started:.0f} s)")
    except OSError as exc:  # no processes here (no /dev/shm, say): LightGBM runs the rest
        _warn("trees_not_compiled", exc, cache=str(cache))
    return done


def compile_into(cache: Path, text: str) -> None:
    """Compile ``text`` into ``cache`` unless another process did: lleaves' object file,
    linked by ``ld`` into a shared library, renamed into place (a reader sees the whole file or
    none), then its SHA-256 beside it."""
    path = library(cache, text)
    with _lock(path):
        if cached(path):
            return
        linker = shutil.which("ld")
        if linker is None:
            raise RuntimeError("no linker (`ld`, Debian's binutils) to make the trees a library")
        import lleaves  # here only: LLVM stays out of the processes that load the libraries

        started = time.perf_counter()
        n_trees = lgb.Booster(model_str=text).num_trees()
        with tempfile.TemporaryDirectory(prefix="imovsp-trees-") as tmp:
            model_file, obj, lib = (Path(tmp) / n for n in ("model.txt", "trees.o", "trees.so"))
            model_file.write_text(text)
            model = lleaves.Model(model_file=str(model_file))
            model.compile(cache=str(obj), fblocksize=max(1, n_trees), **SETTINGS)
            subprocess.run(
                [linker, "-shared", "-o", str(lib), str(obj)],
                check=True,
                capture_output=True,
                text=True,
            )
            staged = path.with_name(f".{path.name}.{os.getpid()}")
            shutil.copyfile(lib, staged)
            os.replace(staged, path)
        digest = path.with_suffix(".sha256")
        staged = digest.with_name(f".{digest.name}.{os.getpid()}")
        staged.write_text(_sha256(path))
        os.replace(staged, digest)
        log.info(
            {
                "event": "trees_compiled",
                "trees": n_trees,
                "seconds": round(time.perf_counter() - started, 2),
                "file": path.name,
            }
        )


def _warn(event: str, exc: BaseException, **fields: str) -> None:
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, subprocess.CalledProcessError):
        error += f" {exc.stderr}"
    log.warning({"event": event, **fields, "error": error[:500]})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
