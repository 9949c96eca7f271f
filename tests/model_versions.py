"""Model directories for rollout tests: copies of the session's model under new version names,
and copies made unusable on purpose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from imovsp import artifact

A = "20990101T000000Z-0000000a"
B = "20990101T000000Z-0000000b"
C = "20990101T000000Z-0000000c"


def add_version(models_dir: Path, source: Path, version: str) -> Path:
    """A copy of the model in ``source`` named ``version``: it predicts the same prices, and
    every check passes (the metadata file is not among the checksummed files)."""
    target = models_dir / version
    shutil.copytree(source, target)
    path = target / artifact.METADATA
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["version"] = version
    path.write_text(json.dumps(meta), encoding="utf-8")
    return target


def corrupt(path: Path) -> str:
    """Change one model file after its checksum was taken; the reason loading gives."""
    with (path / "model-sale.txt.gz").open("ab") as handle:
        handle.write(b"\n")
    return f"{path / 'model-sale.txt.gz'} does not match its checksum"


def incompatible(path: Path) -> str:
    """Say the model was written by an artifact format this imovsp does not read."""
    meta_path = path / artifact.METADATA
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["schema_version"] = 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return "has artifact schema version 1"


def models_with(tmp_path: Path, session_models: Path, *versions: str) -> Path:
    """A models directory holding the session's model under each of ``versions``; the first
    one current."""
    directory = tmp_path / "models"
    directory.mkdir()
    source = session_models / str(artifact.current_version(session_models))
    for version in versions:
        add_version(directory, source, version)
    artifact.set_current(directory, versions[0], action="save")
    return directory
