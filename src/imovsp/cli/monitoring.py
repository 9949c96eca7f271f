"""``imovsp db upgrade`` and ``imovsp monitor``: the prediction log from the command line.

SQLAlchemy, Alembic and matplotlib are imported when a command runs, not when the CLI starts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from imovsp.cli.common import fail, settings_of
from imovsp.settings import Settings

EXIT_ALERT = 1


def _store(settings: Settings) -> Any:
    from imovsp.monitoring.store import DatabaseURLError, Store

    try:
        return Store(settings.database_url)
    except DatabaseURLError as exc:
        fail(str(exc))


def _unreachable(store: Any, exc: Exception) -> NoReturn:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    fail(f"cannot use the prediction log at {store.url}: {reason}")


@click.group()
def db() -> None:
    """The prediction log's database (IMOVSP_DATABASE_URL)."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create or migrate the prediction log's tables to this imovsp's newest schema.

    The service also does this when it starts; run it first where several replicas start
    together, or where the service's database user may not change the schema.
    """
    from sqlalchemy.exc import SQLAlchemyError

    store = _store(settings_of(ctx))
    try:
        before = store.revision()
        store.upgrade()
        after = store.revision()
    except SQLAlchemyError as exc:
        _unreachable(store, exc)
    finally:
        store.dispose()
    done = "already there" if before == after else f"from {before or 'an empty database'}"
    click.echo(f"prediction log at {store.url}: schema {after} ({done})")


@db.command()
@click.option(
    "--older-than",
    required=True,
    help="Delete valuations recorded before this long ago (90d, 12w) or this ISO date (UTC).",
)
@click.option(
    "--with-feedback",
    is_flag=True,
    help="Also delete old valuations that have feedback, and their feedback (kept by default: "
    "the live error is measured on them).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.pass_context
def prune(ctx: click.Context, older_than: str, with_feedback: bool, dry_run: bool) -> None:
    """Delete old valuations from the prediction log, which otherwise grows for ever.

    A few thousand rows per transaction, so a running service's writes wait little. (SQLite
    keeps the file's size; new valuations reuse the pages freed.)
    """
    from sqlalchemy.exc import SQLAlchemyError

    from imovsp.monitoring.monitor import parse_since

    try:
        before = parse_since(older_than, datetime.now(UTC).replace(tzinfo=None), "--older-than")
    except ValueError as exc:
        fail(str(exc))
    store = _store(settings_of(ctx))

    def progress(deleted: int) -> None:
        click.echo(f"  {deleted:,} deleted", err=True)

    try:
        deleted, kept = store.prune(
            before, with_feedback=with_feedback, dry_run=dry_run, progress=progress
        )
    except SQLAlchemyError as exc:
        _unreachable(store, exc)
    finally:
        store.dispose()
    verb = "would delete" if dry_run else "deleted"
    what = "valuation" if deleted == 1 else "valuations"
    kept_note = f"; {kept:,} with feedback kept" if kept else ""
    click.echo(
        f"prediction log at {store.url}: {verb} {deleted:,} {what} recorded before "
        f"{before:%Y-%m-%d %H:%M} UTC{kept_note}"
    )


@click.command()
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="Look at valuations since this long ago (30m, 12h, 7d, 2w) or this ISO date/time (UTC).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the HTML report (charts embedded, opens offline) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Model directory or version to judge (default: the current one). Only its "
    "valuations are looked at.",
)
@click.pass_context
def monitor(
    ctx: click.Context, since: str, output: Path | None, as_json: bool, model: Path | None
) -> None:
    """Compare recent valuations with the model's training data (drift) and, where feedback
    came in, their error with the model card's. Exit code 1 when a threshold is crossed."""
    from sqlalchemy.exc import SQLAlchemyError

    from imovsp.monitoring import monitor as judge
    from imovsp.monitoring import page

    settings = settings_of(ctx)
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        start = judge.parse_since(since, now)
    except ValueError as exc:
        fail(str(exc))
    card, reference = _reference(settings, model)
    store = _store(settings)
    try:
        valuations = store.valuations_since(start)
        feedback = store.feedback_since(start)
    except SQLAlchemyError as exc:
        _unreachable(store, exc)
    finally:
        store.dispose()
    summary = judge.summarise(
        valuations=valuations,
        feedback=feedback,
        reference=reference,
        card=card,
        since=start,
        until=now,
        limits=judge.Thresholds.from_settings(settings),
    )
    if output is not None:
        try:
            page.write(output, summary)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
        click.echo(f"wrote the report {output}", err=True)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(judge.text(summary))
    ctx.exit(EXIT_ALERT if summary["alerts"] else 0)


def _reference(settings: Settings, model: Path | None) -> tuple[dict[str, Any], Any]:
    """The model's metadata and training reference, from its artifact (checksums checked)."""
    from imovsp import artifact
    from imovsp.drift import Reference

    path = artifact.resolve(model or settings.model, settings.models_dir)
    if path is None:
        fail(f"no model in {settings.models_dir}: give --model or run `imovsp train`")
    try:
        loaded = artifact.load(path)
    except artifact.ArtifactError as exc:
        fail(str(exc))
    meta = loaded.metadata
    if "reference" not in meta:
        fail(
            f"model {loaded.version} keeps no training reference (it was trained before imovsp "
            "kept one): retrain it with `imovsp train` to monitor it"
        )
    try:
        districts = meta["feature_schema"]["districts"]
        return meta, Reference.from_state(meta["reference"], loaded.arrays, districts)
    except (KeyError, ValueError) as exc:
        fail(f"model {loaded.version}'s training reference cannot be used: {exc}")
