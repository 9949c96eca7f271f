"""LightGBM's trees compiled to machine code, giving LightGBM's numbers to the bit.

LightGBM walks its trees as data: for each row and tree, a loop reads a node's feature,
threshold and children until it reaches a leaf. lleaves turns each tree into code, one branch
per node, and the same comparisons run several times faster: a valuation's trees took a third
of the time LightGBM took, and real listings' a quarter (docs/benchmarks.md, session 14).

The compiled trees are summed in LightGBM's order (one block of all of them: lleaves' default
blocks sum them in another order, which moves the last bit), so their outputs are LightGBM's to
the bit. Each booster is checked at load on rows that reach its leaves in many ways, and a
booster whose compiled output differs in any bit, or which fails to compile, is run by LightGBM
(said in the log): compiling can only change how fast a valuation is, never its numbers.

Compiling takes ~3 s per 500 trees, about 35 s for a whole model. The machine code is kept in
a cache directory (``IMOVSP_TREES_CACHE``), one file per booster, named by a hash of its model
text, the compiler's versions and settings and the CPU it was compiled for: each machine
compiles a model once. Processes that load a model at once (a server's workers) share the work:
each compiles the boosters no other one is compiling (a lock per file), then loads the rest.
A file is written under a temporary name and renamed, and is loaded only if its SHA-256 matches
the one written beside it. The files are machine code that imovsp runs, so the cache directory
must be writable only by the account that runs imovsp, like its virtualenv.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import logging
import multiprocessing
import os
import shutil
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
FINLINE = False
CHECK_ROWS = 512
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


class CompiledTrees:
    """One booster's trees as machine code: :meth:`predict` for rows, :meth:`row_predictor`
    for one row at a time. The compiled function keeps no state, so threads may share it."""

    def __init__(self, model: Any, n_features: int) -> None:
        self._model = model  # an lleaves Model: it keeps the machine code alive
        self._func = model._c_entry_func  # (rows, out, first row, end row); drops the GIL
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
    are kept (``None``: nothing compiled)."""
    plain = {name: lgb.Booster(model_str=text) for name, text in texts.items()}
    if cache is None:
        return plain
    started = time.perf_counter()
    try:
        compiled = _Compiler(cache).all(texts, plain)
    except Exception as exc:  # lleaves missing or broken on this machine: LightGBM runs all
        log.warning({"event": "trees_not_compiled", "error": f"{type(exc).__name__}: {exc}"})
        return plain
    out: dict[str, lgb.Booster] = {}
    for name, text in texts.items():
        trees = compiled.get(name)
        out[name] = plain[name] if trees is None else CompiledBooster(text, trees)
    log.info(
        {
            "event": "trees_compiled",
            "compiled": sum(isinstance(b, CompiledBooster) for b in out.values()),
            "boosters": len(out),
            "seconds": round(time.perf_counter() - started, 2),
            "cache": str(cache),
        }
    )
    return out


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
        compiler = _Compiler(cache)
    except Exception as exc:
        log.warning({"event": "trees_not_compiled", "error": f"{type(exc).__name__}: {exc}"})
        return 0
    missing = [text for text in texts.values() if not compiler.cached(text)]
    if not missing:
        return 0
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(missing)))
    say(
        f"compiling the model's trees to machine code ({len(missing)} boosters, {jobs} at a "
        "time), once for this model on this machine"
    )
    started, done = time.perf_counter(), 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(_compile_into, cache, text) for text in missing]
        for future in as_completed(futures):
            try:
                future.result()
                done += 1
            except Exception as exc:
                log.warning(
                    {"event": "trees_not_compiled", "error": f"{type(exc).__name__}: {exc}"[:500]}
                )
            say(f"  {done}/{len(missing)} compiled ({time.perf_counter() - started:.0f} s)")
    return done


def _compile_into(cache: Path, text: str) -> None:
    """In a process of :func:`warm`'s pool: compile ``text`` into ``cache`` unless another
    process did."""
    compiler = _Compiler(cache)
    with compiler.lock(text, wait=True):
        if not compiler.cached(text):
            compiler.compile(text, lgb.Booster(model_str=text))


class _Compiler:
    """Compiles boosters into ``cache``, or loads what is there (see the module's note)."""

    def __init__(self, cache: Path) -> None:
        import llvmlite.binding as llvm

        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self.stamp = "\n".join(
            [
                f"lleaves {metadata.version('lleaves')}",
                f"llvmlite {metadata.version('llvmlite')}",
                f"finline {FINLINE}",
                f"cpu {llvm.get_host_cpu_name()}",
                f"features {llvm.get_host_cpu_features().flatten()}",
            ]
        )

    def all(
        self, texts: Mapping[str, str], plain: Mapping[str, lgb.Booster]
    ) -> dict[str, CompiledTrees | None]:
        """Each booster's compiled trees, ``None`` where they cannot be used. First those no
        other process is compiling, then the others (loaded once compiled, or compiled here)."""
        found: dict[str, CompiledTrees | None] = {}
        waiting = []
        for name, text in texts.items():
            with self.lock(text, wait=False) as locked:
                if locked:
                    found[name] = self._checked(name, text, plain[name])
                else:
                    waiting.append(name)
        for name in waiting:
            with self.lock(texts[name], wait=True):
                found[name] = self._checked(name, texts[name], plain[name])
        return found

    def _checked(self, name: str, text: str, booster: lgb.Booster) -> CompiledTrees | None:
        """``text``'s compiled trees (compiled now if not cached) if they give ``booster``'s
        outputs to the bit on :func:`check_rows`; else ``None``, said in the log."""
        try:
            trees = self.load(text, booster) if self.cached(text) else self.compile(text, booster)
        except Exception as exc:
            log.warning(
                {
                    "event": "trees_not_compiled",
                    "booster": name,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                }
            )
            return None
        rows = check_rows(booster.num_feature())
        expected = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
        if not np.array_equal(trees.predict(rows), expected):
            log.warning({"event": "trees_differ", "booster": name, "run_by": "LightGBM"})
            return None
        return trees

    def path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self.stamp}\n{text}".encode()).hexdigest()
        return self.cache / f"{key}.o"

    def cached(self, text: str) -> bool:
        """Whether ``text``'s machine code is in the cache, whole (its SHA-256 checked)."""
        path = self.path(text)
        digest = path.with_suffix(".sha256")
        try:
            return _sha256(path) == digest.read_text()
        except FileNotFoundError:
            return False

    @contextlib.contextmanager
    def lock(self, text: str, *, wait: bool) -> Iterator[bool]:
        """Hold ``text``'s lock file while inside; ``False`` (not held) if another process
        holds it and ``wait`` is false."""
        with open(self.path(text).with_suffix(".lock"), "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, text: str, booster: lgb.Booster) -> CompiledTrees:
        """The cached machine code of ``text`` (see :meth:`cached`)."""
        return self._compile(text, booster, self.path(text))

    def compile(self, text: str, booster: lgb.Booster) -> CompiledTrees:
        """Compile ``text`` and put it in the cache, renamed into place: a reader sees the whole
        file or none (and the file before its digest)."""
        path = self.path(text)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="imovsp-trees-") as tmp:
            fresh = Path(tmp) / "trees.o"
            trees = self._compile(text, booster, fresh)
            staged = path.with_name(f".{path.name}.{os.getpid()}")
            shutil.copyfile(fresh, staged)
            os.replace(staged, path)
        digest = path.with_suffix(".sha256")
        staged = digest.with_name(f".{digest.name}.{os.getpid()}")
        staged.write_text(_sha256(path))
        os.replace(staged, digest)
        log.info(
            {
                "event": "trees_compiled_one",
                "trees": booster.num_trees(),
                "seconds": round(time.perf_counter() - started, 2),
                "file": path.name,
            }
        )
        return trees

    @staticmethod
    def _compile(text: str, booster: lgb.Booster, cache_file: Path) -> CompiledTrees:
        """lleaves' compile of ``text``, from ``cache_file`` if it exists, else into it."""
        import lleaves

        with tempfile.TemporaryDirectory(prefix="imovsp-model-") as tmp:
            model_file = Path(tmp) / "model.txt"
            model_file.write_text(text)
            model = lleaves.Model(model_file=str(model_file))
            model.compile(
                cache=str(cache_file), fblocksize=max(1, booster.num_trees()), finline=FINLINE
            )
        return CompiledTrees(model, booster.num_feature())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
