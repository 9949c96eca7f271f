"""``imovsp``: one command line for training, scoring, inspecting and serving.

Commands are thin wrappers over the core. A user's mistake ends with one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from imovsp import artifact, data, training
from imovsp.artifact import ArtifactError
from imovsp.batch import score_file
from imovsp.data import DataError
from imovsp.features import Property, UnknownDistrictError
from imovsp.metrics import by_negotiation, format_table
from imovsp.settings import Settings, get_settings, variable_names
from imovsp.valuer import Valuer

USER_ERRORS = (DataError, ArtifactError, UnknownDistrictError, FileNotFoundError)


class UserError(click.ClickException):
    """A mistake in what the user asked for: one line, exit code 2."""

    exit_code = 2


def fail(message: str) -> NoReturn:
    raise UserError(message)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except USER_ERRORS as exc:
        fail(str(exc))


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
    settings: Settings, data_path: Path, *, seed: int, out: Path, compare_seed: bool = True
) -> Valuer:
    """Train on ``data_path`` and save the model as the current one in ``out``."""
    step = stepper()
    step(f"reading {data_path}")
    frame, report = data.load_training_data(data_path)
    step(report.summary())
    result = training.train(frame, seed=seed, compare_seed=compare_seed, progress=step)
    valuer = Valuer.from_training(
        result, data_sha256=data.file_sha256(data_path), data_report=report, source=str(data_path)
    )
    path = valuer.save(out)
    step(f"saved {path} (current)")
    return valuer


def load_valuer(settings: Settings, model: Path | None, *, train_if_missing: bool) -> Valuer:
    """The model asked for, else the current one; trains one first if there is none."""
    path = artifact.resolve(model or settings.model, settings.models_dir)
    if path is None:
        if not train_if_missing:
            fail(f"no model in {settings.models_dir}: run `imovsp train` first")
        say(f"no model in {settings.models_dir} yet: training one from {settings.data} first")
        return train_model(settings, settings.data, seed=settings.seed, out=settings.models_dir)
    return Valuer.load(path)


model_option = click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Model directory or version name (default: the current model in the models directory).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    help="Training listings CSV (default: IMOVSP_DATA).",
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
    data_path: Path | None,
    out: Path | None,
    seed: int | None,
    no_seed_comparison: bool,
) -> None:
    """Train, tune and evaluate a model; save it as a new current version."""
    settings = _settings(ctx)
    with user_errors():
        valuer = train_model(
            settings,
            data_path or settings.data,
            seed=settings.seed if seed is None else seed,
            out=out or settings.models_dir,
            compare_seed=not no_seed_comparison,
        )
    metrics = valuer.metadata["metrics"]
    click.echo(f"model {valuer.version}: test split of {metrics['split']['test_rows']} rows")
    click.echo(format_table(metrics["test"]))


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
@click.pass_context
def evaluate(ctx: click.Context, data_path: Path, model: Path | None, as_json: bool) -> None:
    """Score a labelled listings file and report accuracy per negotiation type."""
    settings = _settings(ctx)
    with user_errors():
        valuer = load_valuer(settings, model, train_if_missing=False)
        validated = data.validate(data.read_listings(data_path, require_price=True))
        frame = validated.frame
        frame = frame[~valuer.unknown_districts(frame)]
        predicted = valuer.predict_frame(frame)
    results = {
        "imovsp": by_negotiation(
            frame[data.PRICE].to_numpy(float), predicted, frame[data.NEGOTIATION].to_numpy()
        )
    }
    say(validated.report.summary())
    if as_json:
        click.echo(json.dumps({"model": valuer.version, "metrics": results["imovsp"]}, indent=2))
    else:
        click.echo(f"model {valuer.version} on {data_path}")
        click.echo(format_table(results))


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output CSV (default: SOURCE with .scored.csv).",
)
@model_option
@click.pass_context
def score(ctx: click.Context, source: Path, output: Path | None, model: Path | None) -> None:
    """Score a listings CSV: every row kept, plus predicted_price or an error."""
    settings = _settings(ctx)
    target = output or source.with_suffix(".scored.csv")
    with user_errors():
        if not source.is_file():
            fail(f"input file not found: {source}")
        valuer = load_valuer(settings, model, train_if_missing=True)
        started = time.perf_counter()
        summary = score_file(valuer, source, target)
    seconds = time.perf_counter() - started
    say(
        f"scored {summary.scored} of {summary.rows} rows ({summary.errors} with errors) in "
        f"{seconds:.1f}s with model {valuer.version} → {target}"
    )


@cli.command()
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    help="Models directory (default: IMOVSP_MODELS_DIR).",
)
@click.pass_context
def models(ctx: click.Context, models_dir: Path | None) -> None:
    """List model versions with their test metrics; * marks the current one."""
    directory = models_dir or _settings(ctx).models_dir
    found = artifact.versions(directory)
    if not found:
        click.echo(f"no models in {directory}: run `imovsp train`")
        return
    current = artifact.current_version(directory)
    click.echo(f"  {'version':<26} {'sale MAPE%':>10} {'rent MAPE%':>10} {'rows':>7}")
    for version in found:
        try:
            meta = json.loads((directory / version / artifact.METADATA).read_text("utf-8"))
            test = meta["metrics"]["test"]["imovsp"]
            rows = meta["data"]["rows"]
            cells = [
                f"{test.get(n, {}).get('mape', float('nan')):>10.2f}" for n in ("sale", "rent")
            ]
            line = f"{' '.join(cells)} {rows:>7}"
        except (OSError, ValueError, KeyError, TypeError):
            line = "  (unreadable metadata)"
        mark = "*" if version == current else " "
        click.echo(f"{mark} {version:<26} {line}")


NEGOTIATION = click.Choice(data.NEGOTIATIONS, case_sensitive=False)


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
@click.option("--condo-fee", type=click.FloatRange(min=0), help="Monthly condo fee, BRL.")
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
@click.option("--json", "as_json", is_flag=True, help="Print the valuation as JSON.")
@click.pass_context
def predict(
    ctx: click.Context, /, file_: Any, model: Path | None, as_json: bool, **options: Any
) -> None:
    """Value one property given as options or as a JSON file.

    Only --negotiation, --district and --size are needed; other fields default to what is
    typical for a flat of that size.
    """
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
    settings = _settings(ctx)
    with user_errors():
        valuer = load_valuer(settings, model, train_if_missing=False)
        try:
            fields["negotiation"] = str(fields["negotiation"]).lower()
            prop, defaulted = valuer.builder.complete(**fields)
            valuation = valuer.value(prop, defaulted=tuple(defaulted))
        except (TypeError, ValueError) as exc:
            fail(str(exc))
    prop = valuation.property
    result = {
        "price": round(valuation.price, -1 if prop.negotiation == "rent" else -3),
        "negotiation": prop.negotiation,
        "district": prop.district,
        "size_m2": prop.size_m2,
        "defaulted": list(valuation.defaulted),
        "location_estimated": valuation.location_estimated,
        "model_version": valuer.version,
    }
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    per = "/month" if prop.negotiation == "rent" else ""
    click.echo(
        f"{prop.district}, {prop.size_m2:g} m², {prop.negotiation}: R$ {result['price']:,.0f}{per}"
    )
    if valuation.defaulted:
        say(f"typical values used for: {', '.join(valuation.defaulted)}")


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
    settings = _settings(ctx)
    with user_errors():
        # Loaded here once so that a bad model stops the start with one line, not a traceback
        # in every worker; the workers load their own copies.
        path = load_valuer(settings, model, train_if_missing=True).path
    assert path is not None
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    say(f"serving model {path.name} on http://{host}:{port} with {workers} worker(s)")
    from imovsp.api.server import run  # the web stack only loads for this command

    run(settings, path, host=host, port=port, workers=workers)


def main() -> None:
    """Entry point: runs the CLI, turning a broken pipe into a quiet exit."""
    try:
        cli(prog_name="imovsp")
    except BrokenPipeError:
        sys.exit(1)
