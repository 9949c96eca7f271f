"""``imovsp models``: list the model versions, promote one, roll back, show the history.

Promoting or rolling back moves ``CURRENT``; a running server serves the new current model
after ``SIGHUP`` or ``POST /admin/reload`` (see the README's operations section).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from imovsp import artifact
from imovsp.artifact import ArtifactError
from imovsp.cli.common import UserError, settings_of
from imovsp.price_index import DEFAULT_DATA_MONTH

if TYPE_CHECKING:
    from imovsp import rollout  # loads a model to check it: imported by the commands that do

models_dir_option = click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    help="Models directory (default: IMOVSP_MODELS_DIR).",
)


def _directory(ctx: click.Context, models_dir: Path | None) -> Path:
    if models_dir is not None:
        return models_dir
    return settings_of(ctx.find_root()).models_dir


@click.group(invoke_without_command=True)
@models_dir_option
@click.pass_context
def models(ctx: click.Context, models_dir: Path | None) -> None:
    """List model versions with their test metrics; * marks the current one.

    Subcommands change which version is current.
    """
    ctx.meta["models_dir"] = models_dir
    if ctx.invoked_subcommand is None:
        list_versions(_directory(ctx, models_dir))


def list_versions(directory: Path) -> None:
    found = artifact.versions(directory)
    if not found:
        click.echo(f"no models in {directory}: run `imovsp train`")
        return
    current = artifact.current_version(directory)
    click.echo(f"  {'version':<26} {'sale MAPE%':>10} {'rent MAPE%':>10} {'rows':>7} {'month':>7}")
    for version in found:
        try:
            meta = json.loads((directory / version / artifact.METADATA).read_text("utf-8"))
            test = meta["metrics"]["test"]["imovsp"]
            rows = meta["data"]["rows"]
            cells = [
                f"{test.get(n, {}).get('mape', float('nan')):>10.2f}" for n in ("sale", "rent")
            ]
            # Models saved before the month was recorded were trained on the 2019-04 dev file.
            month = meta["data"].get("month", DEFAULT_DATA_MONTH)
            line = f"{' '.join(cells)} {rows:>7} {month:>7}"
        except (OSError, ValueError, KeyError, TypeError):
            line = "  (unreadable metadata)"
        mark = "*" if version == current else " "
        click.echo(f"{mark} {version:<26} {line}")


def _target(ctx: click.Context, models_dir: Path | None) -> Path:
    """The directory a subcommand works on: its --models-dir, else the group's, else the
    settings'."""
    return _directory(ctx, models_dir or ctx.meta.get("models_dir"))


def _change(
    ctx: click.Context, models_dir: Path | None, make: Callable[[Path], rollout.Change]
) -> None:
    """Make a change of the current model in the directory worked on, and say what changed;
    one line and exit code 2 when it is refused (a model that does not load, a bad pointer)."""
    try:
        change = make(_target(ctx, models_dir))
    except (ArtifactError, OSError) as exc:
        raise UserError(f"refused: {exc}") from None
    if not change.changed:
        click.echo(f"{change.version} is already the current model: nothing changed")
        return
    click.echo(f"current model: {change.version} (was {change.previous or 'none'})")
    click.echo("a running server serves it after SIGHUP or POST /admin/reload", err=True)


@models.command()
@click.argument("version")
@models_dir_option
@click.pass_context
def promote(ctx: click.Context, version: str, models_dir: Path | None) -> None:
    """Make VERSION the current model, once it loads and values a plain flat."""
    from imovsp import rollout

    _change(ctx, models_dir, lambda directory: rollout.promote(directory, version))


@models.command()
@models_dir_option
@click.pass_context
def rollback(ctx: click.Context, models_dir: Path | None) -> None:
    """Make current again the version that was current before this one."""
    from imovsp import rollout

    _change(ctx, models_dir, rollout.rollback)


@models.command()
@models_dir_option
@click.pass_context
def history(ctx: click.Context, models_dir: Path | None) -> None:
    """Every change of the current model, oldest first."""
    directory = _target(ctx, models_dir)
    entries = artifact.history(directory)
    if not entries:
        click.echo(f"no history in {directory} yet")
        return
    for e in entries:
        click.echo(
            f"{e.get('at', '?'):<26} {e.get('action', '?'):<9} {e['version']}"
            f"  (was {e.get('previous') or 'none'})"
        )
