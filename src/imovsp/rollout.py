"""Which model is current: promote a version, roll back to the one current before it.

``CURRENT`` names the current version; ``HISTORY`` records every change of it (see
:mod:`imovsp.artifact`). Rolling back undoes the last change that made a version current: the
version current before it becomes current again, and a second rollback goes one step further
back. Neither makes current a model that does not load and value a plain flat: a running server
that reloads (see :mod:`imovsp.server.reloads`) finds only models that passed this check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from imovsp import artifact
from imovsp.artifact import ArtifactError
from imovsp.valuer import Valuer


@dataclass(frozen=True)
class Change:
    """A change of the current model (``previous`` is ``None`` when there was none)."""

    action: str
    version: str
    previous: str | None

    @property
    def changed(self) -> bool:
        return self.version != self.previous


def smoke_test(valuer: Valuer) -> None:
    """Value a plain flat of each negotiation type; ``ArtifactError`` unless each price is a
    finite positive number."""
    for negotiation in valuer.negotiations:
        try:
            price = valuer.predict_one(valuer.plain_flat(negotiation))
        except Exception as exc:  # any failure means the model cannot serve
            raise ArtifactError(f"{valuer.path} fails to value a plain flat: {exc}") from None
        if not (math.isfinite(price) and price > 0):
            raise ArtifactError(
                f"{valuer.path} values a plain {negotiation} flat at {price!r}: refusing it"
            )


def verify(path: Path, *, trees_cache: Path | None = None) -> Valuer:
    """Load the model in ``path`` (its trees compiled into ``trees_cache``, see
    :meth:`Valuer.load`) and check that it values; ``ArtifactError`` says why not."""
    valuer = Valuer.load(path, trees_cache=trees_cache)
    smoke_test(valuer)
    return valuer


def lineage(models_dir: Path) -> list[str]:
    """The versions that were made current and not rolled back, oldest first; the last one is
    the current version."""
    stack: list[str] = []
    for entry in artifact.history(models_dir):
        previous = entry.get("previous")
        # CURRENT may have been set without a record (by hand, or by an older imovsp).
        if isinstance(previous, str) and (not stack or stack[-1] != previous):
            stack.append(previous)
        if entry.get("action") == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1] != entry["version"]:
            stack.append(entry["version"])
    current = artifact.current_version(models_dir)
    if current is not None and (not stack or stack[-1] != current):
        stack.append(current)
    return stack


def _known(models_dir: Path, version: str) -> Path:
    if not artifact.VERSION_PATTERN.match(version) or not (models_dir / version).is_dir():
        found = artifact.versions(models_dir)
        listed = ", ".join(found[-5:]) if found else "none"
        raise ArtifactError(f"no model version {version!r} in {models_dir} (latest: {listed})")
    return models_dir / version


def promote(models_dir: Path, version: str) -> Change:
    """Make ``version`` current after checking that it loads and values."""
    path = _known(models_dir, version)
    current = artifact.current_version(models_dir)
    if version == current:
        return Change("promote", version, current)
    verify(path)
    artifact.set_current(models_dir, version, action="promote", expected=current)
    return Change("promote", version, current)


def rollback(models_dir: Path) -> Change:
    """Make current again the version that was current before the current one."""
    stack = lineage(models_dir)
    if len(stack) < 2:
        raise ArtifactError(
            f"nothing to roll back to in {models_dir}: no version was current before "
            f"{stack[-1] if stack else 'none'}"
        )
    current, target = stack[-1], stack[-2]
    verify(_known(models_dir, target))
    artifact.set_current(models_dir, target, action="rollback", expected=current)
    return Change("rollback", target, current)
