"""What every ``imovsp`` command shares: the group, settings, one-line errors, the options
that several commands take, and training or loading a model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError

from imovsp.bounds import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL
from imovsp.settings import Settings, get_settings, variable_names

if TYPE_CHECKING:
    from imovsp.valuer import Valuer

# The CLI starts without the scientific stack (numpy, pandas, LightGBM: seconds to import), so
# that --help, `models` or `db` answer at once: each command imports what it uses. The options'
# bounds come from imovsp.bounds, which imports nothing; these two are copies of constants in
# modules that import pandas, and tests/test_cli.py checks that they still match.
FORMATS = ("csv", "csv.gz", "parquet")  # imovsp.formats.FORMATS
CHUNK_ROWS = 100_000  # imovsp.batch.CHUNK_ROWS


def user_error_types() -> tuple[type[Exception], ...]:
    """The exceptions that are the user's mistakes, not the program's."""
    from imovsp.artifact import ArtifactError
    from imovsp.data import DataError
    from imovsp.features import UnknownDistrictError
    from imovsp.price_index import PriceIndexError

    return (DataError, ArtifactError, UnknownDistrictError, FileNotFoundError, PriceIndexError)


class UserError(click.ClickException):
    """A mistake in what the user asked for: one line, exit code 2."""

    exit_code = 2


def fail(message: str) -> NoReturn:
    raise UserError(message)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if isinstance(exc, user_error_types()):
            fail(str(exc))
        raise


def say(message: str) -> None:
    click.echo(message, err=True)


def stepper() -> Callable[[str], None]:
    started = time.perf_counter()

    def step(message: str) -> None:
        say(f"[{time.perf_counter() - started:6.1f}s] {message}")

    return step


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def train_model(
    settings: Settings,
    data_path: Path | Sequence[Path],
    *,
    seed: int,
    out: Path,
    compare_seed: bool = True,
    data_month: str | None = None,
    base_month: str | None = None,
) -> Valuer:
    """Train on ``data_path`` (one listings file or several) and save the model as the current
    one in ``out``. Rows without a ``Month`` take ``data_month`` (default: the setting); prices
    are brought to ``base_month`` (default: the latest) by the price index first."""
    from imovsp import data, report, training

    paths = [data_path] if isinstance(data_path, Path) else list(data_path)
    step = stepper()
    step(f"reading {', '.join(map(str, paths))}")
    index = settings.index()
    frame, data_report = data.load_dated_listings(
        paths,
        default_month=data_month or settings.data_month,
        index=index,
        base_month=base_month,
    )
    step(data_report.summary())
    result = training.train(frame, seed=seed, compare_seed=compare_seed, progress=step)
    hashes = [data.file_sha256(p) for p in paths]
    several = len(data_report.months) > 1 or data_report.base_month not in data_report.months
    valuer = training.to_valuer(
        result,
        data_sha256=hashes[0] if len(paths) == 1 else data.combined_sha256(hashes),
        data_report=data_report,
        source=", ".join(map(str, paths)),
        data_month=data_report.base_month,
        price_index=index.describe() if several else None,
    )
    data_path = paths[0]
    path = valuer.save(out)
    step(f"saved {path} (current)")
    if result.test is not None:
        page = report.write(
            path / REPORT,
            title=f"imovsp model {valuer.version}",
            scored=result.test,
            range_metrics=result.metrics["ranges"],
            results=result.metrics["test"],
            patterns=result.metrics.get("patterns"),
            notes=(
                f"Held-out test split of {len(result.test)} listings from {data_path}: the "
                "models scored here were fitted on the other rows only; the saved model is "
                "refitted on all rows. Ranges are at 80% unless said otherwise."
            ),
        )
        step(f"wrote the report {page}")
    return valuer


def load_valuer(settings: Settings, model: Path | None, *, train_if_missing: bool) -> Valuer:
    """The model asked for, else the current one; trains one first if there is none."""
    from imovsp import artifact
    from imovsp.valuer import Valuer

    path = artifact.resolve(model or settings.model, settings.models_dir)
    if path is None:
        if not train_if_missing:
            fail(f"no model in {settings.models_dir}: run `imovsp train` first")
        say(f"no model in {settings.models_dir} yet: training one from {settings.data} first")
        return train_model(settings, settings.data, seed=settings.seed, out=settings.models_dir)
    return Valuer.load(path)


REPORT = "report.html"  # written beside the model files; not part of the checksummed artifact
level_option = click.option(
    "--level",
    type=click.FloatRange(MIN_LEVEL, MAX_LEVEL),
    default=DEFAULT_LEVEL,
    show_default=True,
    help="Nominal coverage of the price range, e.g. 0.9 for a 90% range.",
)
as_of_option = click.option(
    "--as-of",
    metavar="YYYY-MM",
    help="Give prices in this month's money, moved from the model's data month by the price "
    "index (default: the latest month the index covers for the negotiation type).",
)
model_option = click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Model directory or version name (default: the current model in the models directory).",
)


class OneLineErrors(click.Group):
    """A group whose commands' usage errors (a bad option value, a missing argument) end with
    one line, as every other user mistake does: click would print the usage and a hint first.
    The hint to ``--help`` stays, on the same line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if exc.ctx is None:
                raise
            where = exc.ctx.command_path
            raise click.UsageError(f"{exc.format_message()} (see '{where} --help')") from None


@click.group(
    cls=OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="imovsp")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """imovsp values apartments in São Paulo: sale price or monthly rent, in BRL.

    Settings come from IMOVSP_* environment variables (see the README).
    """
    try:
        ctx.obj = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{variable_names(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        fail(f"bad setting in the environment: {problems}")
