"""Versioned model directories that load without running code.

A model directory ``<models_dir>/<version>/`` holds:

- ``model-<name>.txt.gz``: each LightGBM booster in LightGBM's own text format, gzipped (a
  quarter of the size: the text is mostly numbers written to 17 digits), named in the
  metadata's ``models`` list (``sale``, ``sale-extra`` and ``sale-per-area`` value a sale;
  ``sale-spread`` and ``rent-spread`` size the price ranges);
- ``arrays.npz``: numeric arrays (loaded with ``allow_pickle=False``);
- ``metadata.json``: everything else, including the sha256 of every other file.

Loading refuses, with a message that says which and why, a directory whose schema version is
unknown, whose files are missing or differ from their checksums, or that was written by an
incompatible LightGBM. ``<models_dir>/CURRENT`` names the version that commands use by default;
``<models_dir>/HISTORY`` records every change of it, one JSON object a line (see
:mod:`imovsp.rollout`, which promotes and rolls back).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

# 2: spread models, range calibration and comparables; 3: a per-area member, gzipped model text;
# 4: trained on masked copies (fields not given are unknown), ranges calibrated per class of fields
SCHEMA_VERSION = 4
METADATA = "metadata.json"
ARRAYS = "arrays.npz"
CURRENT = "CURRENT"
HISTORY = "HISTORY"
LOCK = ".lock"
VERSION_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
MODEL_NAME = re.compile(r"^[a-z]+(-[a-z]+)*$")
LIBRARIES = ("lightgbm", "numpy", "scikit-learn", "pandas")


class ArtifactError(Exception):
    """A model directory that is missing, corrupt, tampered with or incompatible."""


@dataclass
class Artifact:
    """The parts of a model directory, in memory."""

    metadata: dict[str, Any]
    models: dict[str, str]  # model name (e.g. "sale", "sale-spread") -> LightGBM model text
    arrays: dict[str, np.ndarray]
    path: Path | None = None

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover - all are deps
            versions[name] = "absent"
    try:
        versions["imovsp"] = importlib_metadata.version("imovsp")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from source
        versions["imovsp"] = "source"
    return versions


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_file(name: str) -> str:
    return f"model-{name}.txt.gz"


def save(artifact: Artifact, models_dir: Path, *, make_current: bool = True) -> Path:
    """Write ``artifact`` to ``models_dir/<version>/`` atomically; return that directory."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / artifact.version
    if target.exists():
        raise ArtifactError(f"model version {artifact.version} already exists in {models_dir}")
    bad = [name for name in artifact.models if not MODEL_NAME.match(name)]
    if bad:
        raise ArtifactError(f"model names must be lowercase words joined by '-', not {bad}")
    staging = Path(tempfile.mkdtemp(prefix=f".{artifact.version}-", dir=models_dir))
    try:
        for name, text in artifact.models.items():
            # mtime 0: the same model gives the same bytes, and the same checksum.
            (staging / _model_file(name)).write_bytes(gzip.compress(text.encode(), mtime=0))
        np.savez_compressed(staging / ARRAYS, **artifact.arrays)  # type: ignore[arg-type]
        files = sorted(p.name for p in staging.iterdir())
        meta = {
            **artifact.metadata,
            "models": list(artifact.models),
            "schema_version": SCHEMA_VERSION,
            "libraries": library_versions(),
            "files": {name: _sha256(staging / name) for name in files},
        }
        (staging / METADATA).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=False), encoding="utf-8"
        )
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    artifact.metadata, artifact.path = meta, target
    if make_current:
        set_current(models_dir, artifact.version, action="save")
    return target


def load(path: Path) -> Artifact:
    """Read and check a model directory; raise :class:`ArtifactError` if it cannot be trusted."""
    if not path.is_dir():
        raise ArtifactError(f"no model directory at {path}")
    meta_path = path / METADATA
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is not a model: {METADATA} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{meta_path} is corrupt: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
        found = meta.get("schema_version") if isinstance(meta, dict) else None
        raise ArtifactError(
            f"{path} has artifact schema version {found!r}; this imovsp reads version "
            f"{SCHEMA_VERSION}: retrain it with `imovsp train`"
        )
    _check_files(path, meta)
    _check_libraries(path, meta)
    models = {n: _read_model(path / _model_file(n)) for n in meta["models"]}
    try:
        with np.load(path / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # object arrays would need pickle: refuse them
        raise ArtifactError(f"{path / ARRAYS} cannot be loaded safely: {exc}") from None
    return Artifact(metadata=meta, models=models, arrays=arrays, path=path)


def _read_model(file: Path) -> str:
    # The checksum matched: a file that does not unpack was written broken, not changed since.
    try:
        return gzip.decompress(file.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file} is corrupt: {exc}") from None


def _check_files(path: Path, meta: dict[str, Any]) -> None:
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{path / METADATA} lists no file checksums")
    names = meta.get("models")
    if not isinstance(names, list) or not all(
        isinstance(n, str) and MODEL_NAME.match(n) for n in names
    ):
        raise ArtifactError(f"{path / METADATA} has no valid list of models")
    for name in {*names, *meta.get("negotiations", [])}:
        if _model_file(name) not in files:
            raise ArtifactError(f"{path} lists no {_model_file(name)}")
    for name, expected in files.items():
        file = path / name
        if Path(name).name != name or not file.is_file():
            raise ArtifactError(f"{path} is incomplete: {name} is missing")
        if _sha256(file) != expected:
            raise ArtifactError(
                f"{file} does not match its checksum: the artifact is corrupt or was modified"
            )


def _check_libraries(path: Path, meta: dict[str, Any]) -> None:
    saved = meta.get("libraries", {}).get("lightgbm", "")
    here = library_versions()["lightgbm"]
    if saved.split(".")[:1] != here.split(".")[:1]:
        raise ArtifactError(
            f"{path} was trained with LightGBM {saved or 'unknown'}, which this LightGBM "
            f"{here} may not read the same way: retrain it with `imovsp train`"
        )


def versions(models_dir: Path) -> list[str]:
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if VERSION_PATTERN.match(p.name))


def current_version(models_dir: Path) -> str | None:
    pointer = models_dir / CURRENT
    if not pointer.is_file():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    return version or None


@contextmanager
def locked(models_dir: Path) -> Iterator[None]:
    """Hold the models directory's lock: one change of CURRENT at a time, across processes."""
    with open(models_dir / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_durably(path: Path, text: str) -> None:
    """Replace ``path`` by a file holding ``text``: a reader sees the old file or the new one,
    never half of one, and the new one survives a crash once this returns."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


_ANY = "<any>"


def set_current(
    models_dir: Path, version: str, *, action: str = "set", expected: str | None = _ANY
) -> None:
    """Make ``version`` the current model, and record the change (``action``) in HISTORY.

    With ``expected``, only if the current version is still that one (else ``ArtifactError``):
    a decision taken on what was current is not applied over someone else's change.
    """
    if not VERSION_PATTERN.match(version) or not (models_dir / version).is_dir():
        raise ArtifactError(f"no model version {version} in {models_dir}")
    with locked(models_dir):
        previous = current_version(models_dir)
        if expected != _ANY and previous != expected:
            raise ArtifactError(
                f"the current model changed meanwhile (now {previous}, was {expected}): try again"
            )
        _write_durably(models_dir / CURRENT, version + "\n")
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": action,
            "version": version,
            "previous": previous,
        }
        with open(models_dir / HISTORY, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def history(models_dir: Path) -> list[dict[str, Any]]:
    """Every recorded change of CURRENT, oldest first (lines that cannot be read are skipped)."""
    path = models_dir / HISTORY
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            entries.append(entry)
    return entries


def resolve(model: Path | None, models_dir: Path) -> Path | None:
    """The model directory to use: ``model`` if given (a directory or a version name in
    ``models_dir``), else the current one; ``None`` when there is none yet."""
    if model is not None:
        if model.is_dir() or model.is_absolute() or len(model.parts) > 1:
            return model
        return models_dir / model
    version = current_version(models_dir)
    return models_dir / version if version else None
