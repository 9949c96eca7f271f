"""``imovsp``: one command line for training, scoring, inspecting and serving.

Commands are thin wrappers over the core. A user's mistake ends with one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError

from imovsp.cli_models import models
from imovsp.monitoring.commands import db, monitor
from imovsp.settings import Settings, get_settings, variable_names

if TYPE_CHECKING:
    import pandas as pd

    from imovsp import as_of as as_of_module
    from imovsp.batch import ScoreSummary
    from imovsp.formats import Format
    from imovsp.valuer import Valuation, Valuer

# The CLI starts without the scientific stack (numpy, pandas, LightGBM: seconds to import), so
# that --help, `models` or `db` answer at once: each command imports what it uses. The options
# need a few of the core's constants before that; these are copies, and
# tests/test_cli.py checks that they still match the core's.
NEGOTIATIONS = ("sale", "rent")  # imovsp.data.NEGOTIATIONS
FORMATS = ("csv", "csv.gz", "parquet")  # imovsp.formats.FORMATS
CHUNK_ROWS = 100_000  # imovsp.batch.CHUNK_ROWS
MAX_COMPARABLES = 20  # imovsp.comparables.MAX_COMPARABLES
DEFAULT_LEVEL, MIN_LEVEL, MAX_LEVEL = 0.8, 0.5, 0.95  # imovsp.ranges


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


def _settings(ctx: click.Context) -> Settings:
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
    from imovsp.valuer import Valuer

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
    valuer = Valuer.from_training(
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


@cli.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Training listings CSV (default: IMOVSP_DATA); repeat it to train on several files. "
    "A Month column (YYYY-MM) dates each row.",
)
@click.option(
    "--data-month",
    metavar="YYYY-MM",
    help="Month of the rows without a Month (default: IMOVSP_DATA_MONTH, 2019-04).",
)
@click.option(
    "--base-month",
    metavar="YYYY-MM",
    help="Month whose money prices are brought to before training, by the price index; it "
    "becomes the model's data month (default: the latest month of the listings).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Models directory to write into (default: IMOVSP_MODELS_DIR).",
)
@click.option("--seed", type=int, help="Random seed for the split and the models (default 42).")
@click.option(
    "--no-seed-comparison",
    is_flag=True,
    help="Skip fitting the seed RandomForest for comparison (faster).",
)
@click.pass_context
def train(
    ctx: click.Context,
    data_path: tuple[Path, ...],
    data_month: str | None,
    base_month: str | None,
    out: Path | None,
    seed: int | None,
    no_seed_comparison: bool,
) -> None:
    """Train, tune and evaluate a model; save it as a new current version.

    Listings of several months are brought to one month's money by the price index first.
    """
    from imovsp import price_index
    from imovsp.metrics import format_patterns, format_ranges, format_table

    settings = _settings(ctx)
    with user_errors():
        if data_month is not None:
            data_month = "{}-{:02d}".format(*price_index.parse_month(data_month))
        valuer = train_model(
            settings,
            list(data_path) or settings.data,
            seed=settings.seed if seed is None else seed,
            out=out or settings.models_dir,
            compare_seed=not no_seed_comparison,
            data_month=data_month,
            base_month=base_month,
        )
    metrics = valuer.metadata["metrics"]
    click.echo(f"model {valuer.version}: test split of {metrics['split']['test_rows']} rows")
    click.echo(f"prices in the money of {valuer.data_month} (the model's data month)")
    click.echo(format_table(metrics["test"]))
    click.echo("price ranges on the test split:")
    click.echo(format_ranges(metrics["ranges"]))
    click.echo("by the fields given (test split, each listing valued from those fields only):")
    click.echo(format_patterns(metrics["patterns"]))


@cli.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Listings CSV with prices, in the raw schema.",
)
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write an HTML report (charts, ranges, largest errors) to this file.",
)
@click.pass_context
def evaluate(
    ctx: click.Context, data_path: Path, model: Path | None, as_json: bool, report_path: Path | None
) -> None:
    """Score a labelled listings file; report accuracy and price-range coverage and width per
    negotiation type."""
    from imovsp import data, evaluation, report
    from imovsp.metrics import by_negotiation, format_patterns, format_ranges, format_table

    settings = _settings(ctx)
    with user_errors():
        valuer = load_valuer(settings, model, train_if_missing=False)
        validated = data.validate(data.read_listings(data_path, require_price=True))
        frame = validated.frame
        frame = frame[~valuer.unknown_districts(frame)]
        frame = frame[frame[data.NEGOTIATION].isin(valuer.negotiations)]
        if frame.empty:
            fail(f"{data_path} has no valid listings this model can value")
        seen = valuer.seen(frame)
        results = {}
        if seen is not None and seen.any():
            # Rows the model trained on flatter it: their metrics are shown apart, and the
            # rest of the evaluation is of the rows it did not see (when there are any).
            results["seen"] = _scores(valuer, frame[seen])
            if seen.all():
                say(
                    f"all {len(frame)} rows were in the model's training data: every metric "
                    "below flatters it (evaluate on listings it has not seen)"
                )
            else:
                say(
                    f"{int(seen.sum())} of {len(frame)} rows were in the model's training data: "
                    f"they are shown apart ('seen'); the rest is on the {int((~seen).sum())} "
                    "rows it did not see"
                )
                frame = frame[~seen]
        est = valuer.estimate_frame(frame)
    results = {
        "imovsp": by_negotiation(
            frame[data.PRICE].to_numpy(float), est["price"], frame[data.NEGOTIATION].to_numpy()
        ),
        **results,
    }
    coverage = evaluation.range_metrics(frame, est, valuer.calibrations)
    patterns = evaluation.patterns_of(valuer, frame)
    say(validated.report.summary())
    if report_path is not None:
        training_results = valuer.metadata["metrics"]["test"]
        page = report.write(
            report_path,
            title=f"imovsp model {valuer.version} on {data_path.name}",
            scored=evaluation.with_ranges(frame, est, valuer.calibrations),
            range_metrics=coverage,
            results={
                f"{data_path.name}": results["imovsp"],
                **{f"{m} (training split)": r for m, r in training_results.items()},
            },
            patterns=patterns,
            notes=f"{len(frame)} labelled listings from {data_path}. Ranges are at 80%.",
        )
        say(f"wrote the report {page}")
    if as_json:
        payload = {
            "model": valuer.version,
            "rows": len(frame),
            "seen_in_training": None if seen is None else int(seen.sum()),
            "metrics_seen": results.get("seen"),
            "metrics": results["imovsp"],
            "ranges": coverage,
            "patterns": patterns,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"model {valuer.version} on {data_path}")
        click.echo(format_table(results))
        click.echo("price ranges:")
        click.echo(format_ranges(coverage))
        click.echo("by the fields given (each listing valued from those fields only):")
        click.echo(format_patterns(patterns))


def _scores(valuer: Valuer, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    from imovsp import data
    from imovsp.metrics import by_negotiation

    return by_negotiation(
        frame[data.PRICE].to_numpy(float),
        valuer.predict_frame(frame),
        frame[data.NEGOTIATION].to_numpy(),
    )


def default_output(source: Path, engine: str) -> Path:
    """``in.csv`` → ``in.scored.csv`` (same format); a Parquet dataset for the Dask engine."""
    from imovsp import formats

    fmt = "parquet" if engine == "dask" else formats.input_format(source)
    name = source.name
    for extension in (".csv.gz", ".gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
            break
    return source.with_name(f"{name}.scored.{'csv.gz' if fmt == 'csv.gz' else fmt}")


@contextmanager
def progress(total: int | None, *, enabled: bool | None) -> Iterator[Callable[[int], None] | None]:
    """A rows/s progress bar on stderr when it is a terminal (or when asked): yields the
    function that advances it by a number of rows, or ``None`` when there is no bar."""
    from tqdm import tqdm

    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield None
        return
    with tqdm(
        total=total,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0,  # chunks are large: redraw after each one, not on a timer
    ) as bar:

        def advance(rows: int) -> None:
            bar.update(rows)

        yield advance


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output file (default: SOURCE with .scored and the same format). With --engine dask, "
    "a Parquet OUT is a partitioned dataset directory unless --single-file.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(FORMATS),
    help="Output format (default: from OUT's extension, CSV when it has none). Input formats "
    "are recognised from their content.",
)
@model_option
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: stream on this machine in constant memory. dask: partitions on a Dask cluster "
    "(needs the imovsp[dask] extra).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local cluster).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Workers of the local Dask cluster (default: one per CPU core).",
)
@click.option(
    "--single-file",
    is_flag=True,
    help="With --engine dask: write one Parquet file instead of a partitioned dataset.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=CHUNK_ROWS,
    show_default=True,
    help="Rows per chunk (local engine) or per Dask partition.",
)
@click.option(
    "--progress/--no-progress",
    "show_progress",
    default=None,
    help="Show a progress bar with rows/s (default: only on a terminal).",
)
@level_option
@as_of_option
@click.pass_context
def score(
    ctx: click.Context,
    source: Path,
    output: Path | None,
    out_format: Format | None,
    model: Path | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    single_file: bool,
    chunk_rows: int,
    show_progress: bool | None,
    level: float,
    as_of: str | None,
) -> None:
    """Score a listings file (CSV, gzip CSV or Parquet): every row kept, in order, plus
    predicted_price and its range (price_low, price_high) in the money of the as_of month
    (with as_of and index_factor columns), or an error."""
    from imovsp import formats
    from imovsp.batch import score_file

    settings = _settings(ctx)
    if engine == "local" and (scheduler or workers or single_file):
        fail("--scheduler, --workers and --single-file go with --engine dask")
    if scheduler and workers:
        fail("--workers sizes the local cluster; a --scheduler cluster has its own workers")
    with user_errors():
        if not source.exists():
            fail(f"input file not found: {source}")
        target = output or default_output(source, engine)
        valuer = load_valuer(settings, model, train_if_missing=True)
        months = batch_months(settings, valuer, as_of)
        started = time.perf_counter()
        with progress(formats.count_rows(source), enabled=show_progress) as advance:
            if engine == "dask":
                summary = _score_on_dask(
                    valuer,
                    source,
                    target,
                    out_format=out_format,
                    scheduler=scheduler,
                    workers=workers,
                    single_file=single_file,
                    chunk_rows=chunk_rows,
                    on_part=advance,
                    options={"level": level, "months": months},
                )
            else:
                summary = score_file(
                    valuer,
                    source,
                    target,
                    out_format=out_format,
                    chunk_rows=chunk_rows,
                    on_chunk=advance,
                    options={"level": level, "months": months},
                )
    seconds = time.perf_counter() - started
    rate = summary.rows / seconds if seconds > 0 else 0.0
    say(
        f"scored {summary.scored} of {summary.rows} rows ({summary.errors} with errors) in "
        f"{seconds:.1f}s ({rate:,.0f} rows/s) with model {valuer.version} → {target}"
    )


def batch_months(settings: Settings, valuer: Valuer, asked: str | None) -> dict[str, Any]:
    """Per negotiation type, ``(month, factor)`` for :func:`imovsp.batch.score_frame`, or the
    error its rows get; exit 2 when the month is malformed or in no series."""
    from imovsp import as_of as as_of_module
    from imovsp.price_index import PriceIndexError

    index = settings.index()
    as_of_module.check_model(index, valuer.data_month)
    found = as_of_module.resolve_all(index, valuer.data_month, valuer.negotiations, asked)
    return {
        n: str(at) if isinstance(at, PriceIndexError) else (at.month, at.factor)
        for n, at in found.items()
    }


def _score_on_dask(valuer: Valuer, source: Path, target: Path, **options: Any) -> ScoreSummary:
    """The Dask engine, imported only when asked for (it needs the imovsp[dask] extra)."""
    try:
        from imovsp import batch_dask
    except ImportError as exc:
        fail(f"--engine dask needs Dask: install imovsp[dask] ({exc})")
    try:
        return batch_dask.score_dataset(valuer, source, target, **options)
    except batch_dask.ClusterError as exc:
        fail(str(exc))


cli.add_command(models)


NEGOTIATION = click.Choice(NEGOTIATIONS, case_sensitive=False)


@cli.command()
@click.option("--negotiation", type=NEGOTIATION, help="sale or rent.")
@click.option("--district", help="District name, e.g. 'Santana' (accents and case optional).")
@click.option(
    "--size",
    "size_m2",
    type=click.FloatRange(min=1, max=10_000, min_open=False),
    help="Private area, m².",
)
@click.option("--rooms", type=click.IntRange(0, 30))
@click.option("--toilets", type=click.IntRange(0, 30))
@click.option("--suites", type=click.IntRange(0, 30))
@click.option("--parking", type=click.IntRange(0, 30))
@click.option(
    "--condo-fee",
    type=float,
    callback=lambda _ctx, _param, fee: _condo_fee(fee),
    help="Monthly condo fee, BRL (0: unknown).",
)
@click.option("--elevator/--no-elevator", default=None)
@click.option("--furnished/--no-furnished", default=None)
@click.option("--swimming-pool/--no-swimming-pool", default=None)
@click.option("--new/--not-new", "new", default=None)
@click.option("--latitude", type=click.FloatRange(-90, 90))
@click.option("--longitude", type=click.FloatRange(-180, 180))
@click.option(
    "--file",
    "file_",
    type=click.File("r", encoding="utf-8"),
    help="A JSON object with the same fields (options given also apply).",
)
@model_option
@level_option
@click.option("--explain", is_flag=True, help="Say what moved the price, from a typical flat.")
@click.option(
    "--comparables",
    type=click.IntRange(0, MAX_COMPARABLES),
    default=0,
    help=f"Show this many similar listings from the training data (up to {MAX_COMPARABLES}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the valuation as JSON.")
@as_of_option
@click.pass_context
def predict(
    ctx: click.Context,
    /,
    file_: Any,
    model: Path | None,
    as_json: bool,
    level: float,
    explain: bool,
    comparables: int,
    as_of: str | None,
    **options: Any,
) -> None:
    """Value one property given as options or as a JSON file.

    Only --negotiation, --district and --size are needed; a field not given is priced as
    unknown, and the answer says which fields would narrow the range most.
    """
    from imovsp import as_of as as_of_module
    from imovsp.features import Property

    fields: dict[str, Any] = {}
    if file_ is not None:
        try:
            loaded = json.load(file_)
        except json.JSONDecodeError as exc:
            fail(f"{file_.name} is not valid JSON: {exc}")
        if not isinstance(loaded, dict):
            fail(f"{file_.name} must hold one JSON object")
        fields.update(loaded)
    fields.update({k: v for k, v in options.items() if v is not None})
    for required in ("negotiation", "district", "size_m2"):
        if fields.get(required) in (None, ""):
            fail(f"missing {required}: give --{required.split('_')[0]} or put it in --file")
    known = set(Property.__dataclass_fields__)
    extra = sorted(set(fields) - known)
    if extra:
        fail(f"unknown field(s): {', '.join(extra)}; known: {', '.join(sorted(known))}")
    fee = fields.get("condo_fee")
    if isinstance(fee, int | float) and not isinstance(fee, bool):  # from --file: as the option
        try:
            _condo_fee(float(fee))
        except click.BadParameter as exc:
            fail(f"condo_fee: {exc.message}")
    settings = _settings(ctx)
    with user_errors():
        valuer = load_valuer(settings, model, train_if_missing=False)
        try:
            fields["negotiation"] = str(fields["negotiation"]).lower()
            prop = valuer.prepare(fields)
            valuation = valuer.value(
                prop,
                level=level,
                explain=explain,
                comparables=comparables,
            )
            index = settings.index()
            as_of_module.check_model(index, valuer.data_month)
            at = as_of_module.resolve(index, valuer.data_month, prop.negotiation, as_of)
        except (TypeError, ValueError) as exc:
            fail(str(exc))
    moved = as_of_module.move(valuation, at.factor)
    if as_json:
        found = valuation_json(moved)
        found.update(as_of_module.fields(at, valuation, price=_round))
        for shown, listed in zip(
            found.get("comparables", []), valuation.comparables or (), strict=True
        ):
            shown["price_at_data_month"] = listed.price
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    click.echo("\n".join(valuation_lines(moved)))
    click.echo(as_of_line(at, valuation))
    if valuation.not_given:
        typical = ", ".join(f"{k} {_plain(v)}" for k, v in (valuation.typical or {}).items())
        say(f"not given, priced as unknown: {', '.join(valuation.not_given)}")
        if typical:
            say(f"typical for {valuation.property.size_m2:g} m² (not priced): {typical}")
    width = valuation.width_pct()
    for s in valuation.sharpen:
        say(s.message(width))


def _plain(value: float | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}"


def as_of_line(at: as_of_module.AsOf, original: Valuation) -> str:
    """Which month's money the figures are in, on what basis, and the price in the model's."""
    from imovsp import price_index

    n = original.property.negotiation
    if at.month == at.data_month:
        return f"in the money of {at.month}, the model's data month"
    return (
        f"in the money of {at.month}: the model's {at.data_month} figures × {at.factor:.4f} "
        f"({price_index.CREDIT}, {n}, all flats); in {at.data_month} money "
        f"R$ {_round(original.price, n):,.0f}"
    )


def _condo_fee(fee: float | None) -> float | None:
    """A fee as the API takes it: 0 (unknown) or a monthly fee from R$ 1 to R$ 100,000."""
    from imovsp import data

    if fee is None or fee == 0 or data.CONDO_FEE_MIN <= fee <= data.CONDO_FEE_MAX:
        return fee
    raise click.BadParameter(
        f"{fee:g} is not 0 (unknown) or a monthly fee from {data.CONDO_FEE_MIN:,.0f} to "
        f"{data.CONDO_FEE_MAX:,.0f}"
    )


def _round(price: float, negotiation: str) -> float:
    return round(price, -1 if negotiation == "rent" else -3)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def valuation_json(valuation: Valuation) -> dict[str, Any]:
    prop = valuation.property
    result: dict[str, Any] = {
        "price": _round(valuation.price, prop.negotiation),
        "price_low": _round(valuation.price_low or 0.0, prop.negotiation),
        "price_high": _round(valuation.price_high or 0.0, prop.negotiation),
        "level": valuation.level,
        "price_m2": round(valuation.price_m2, 2),
        "district_median_price_m2": (
            None if (median := valuation.district_median_price_m2) is None else round(median, 2)
        ),
        "negotiation": prop.negotiation,
        "district": prop.district,
        "size_m2": prop.size_m2,
        "not_given": list(valuation.not_given),
        "typical": valuation.typical,
        "width_pct": None if (width := valuation.width_pct()) is None else round(width, 1),
        "sharpen": [
            {"fields": list(s.fields), "width_pct": s.width_pct, "message": s.message(width)}
            for s in valuation.sharpen
        ],
        "location_estimated": valuation.location_estimated,
        "model_version": valuation.model_version,
    }
    if valuation.reasons is not None:
        result["baseline"] = round(valuation.baseline or 0.0, 2)
        result["reasons"] = [dataclasses.asdict(r) for r in valuation.reasons]
    if valuation.comparables is not None:
        result["comparables"] = [dataclasses.asdict(c) for c in valuation.comparables]
    return result


def valuation_lines(valuation: Valuation) -> list[str]:
    prop = valuation.property
    n = prop.negotiation
    per = "/month" if n == "rent" else ""
    lines = [
        f"{prop.district}, {prop.size_m2:g} m², {n}: R$ {_round(valuation.price, n):,.0f}{per}"
        f"  ({100 * (valuation.level or 0):.0f}% range "
        f"R$ {_round(valuation.price_low or 0, n):,.0f} – "
        f"R$ {_round(valuation.price_high or 0, n):,.0f})"
    ]
    median = valuation.district_median_price_m2
    versus = f"; {prop.district} median R$ {median:,.0f}" if median else ""
    lines.append(f"R$ {valuation.price_m2:,.0f} per m²{versus}")
    if valuation.reasons is not None:
        lines.append(f"why, from a typical apartment at R$ {valuation.baseline or 0:,.0f}{per}:")
        for r in valuation.reasons:
            # Rounded first: an effect that rounds to nothing is +0.0%, not -0.0%.
            pct, brl = round(r.effect_pct, 1) + 0.0, round(r.effect_brl) + 0
            lines.append(f"  {r.feature:<14} {r.value:<32} {pct:+7.1f}%  R$ {brl:+,}")
    if valuation.comparables is not None:
        lines.append(f"{len(valuation.comparables)} comparable listings:")
        for c in valuation.comparables:
            lines.append(
                f"  R$ {c.price:>11,.0f}  R$ {c.price_m2:>7,.0f}/m²  {c.distance_km:5.1f} km  "
                f"{c.district}, {c.size_m2:g} m², {_count(c.rooms, 'room')}, "
                f"{_count(c.suites, 'suite')}, {c.parking} parking"
            )
    return lines


@cli.command()
@click.option("--host", help="Address to listen on (default: IMOVSP_HOST, else 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="TCP port (default: IMOVSP_PORT, else PORT, else 8000).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes (default: IMOVSP_WORKERS, else WEB_CONCURRENCY, else 1).",
)
@model_option
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None, model: Path | None
) -> None:
    """Run the HTTP API until SIGTERM or Ctrl-C (requests in flight finish first).

    Without a model in the models directory, trains one from IMOVSP_DATA first.
    Docs at /docs, OpenAPI at /openapi.json.
    """
    from imovsp.api.server import exec_server, refuse  # the web stack loads for this command
    from imovsp.api.supervisor import bind

    settings = _settings(ctx)
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    try:  # before a model is loaded or trained; the server checks again when it binds
        bind(host, port, shared=False).close()
    except OSError as exc:
        refuse(host, port, exc)
    with user_errors():
        # Loaded here once so that a bad model stops the start with one line, not a traceback
        # in every worker; the workers load their own copies.
        served = load_valuer(settings, model, train_if_missing=True)
        from imovsp import as_of as as_of_module

        as_of_module.check_model(settings.index(), served.data_month)
        path = served.path
    assert path is not None
    say(f"serving model {path.name} on http://{host}:{port} with {workers} worker(s)")

    exec_server(path, host=host, port=port, workers=workers)


@cli.command("index")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@click.pass_context
def index_command(ctx: click.Context, as_json: bool) -> None:
    """Show the price index in use (IMOVSP_PRICE_INDEX, else the shipped one): its series and
    the months it covers, and the factor from the current model's data month to the latest."""
    from imovsp import artifact, price_index
    from imovsp.valuer import Valuer

    settings = _settings(ctx)
    index = settings.index()
    described = index.describe()
    path = artifact.resolve(settings.model, settings.models_dir)
    data_month = None
    if path is not None:
        with user_errors():
            data_month = Valuer.load(path).data_month
    if as_json:
        click.echo(json.dumps({**described, "model_data_month": data_month}, ensure_ascii=False))
        return
    click.echo(f"{price_index.CREDIT}, São Paulo, series '{index.series}' (all flats)")
    click.echo(f"source: {index.source}")
    for n in ("sale", "rent"):
        line = f"{n:<5} {index.first(n)} to {index.last(n)} ({len(index.months(n))} months)"
        if data_month is not None and data_month in index.values[n]:
            factor = index.factor(n, data_month, index.last(n))
            line += f"; × {factor:.4f} from the model's {data_month} to {index.last(n)}"
        click.echo(line)


cli.add_command(db)
cli.add_command(monitor)


def main() -> None:
    """Entry point: runs the CLI, turning a broken pipe into a quiet exit."""
    try:
        cli(prog_name="imovsp")
    except BrokenPipeError:
        sys.exit(1)
