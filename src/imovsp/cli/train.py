"""``imovsp train`` and ``imovsp evaluate``: fit a model; score a saved one on a labelled file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imovsp.cli.common import (
    cli,
    fail,
    load_valuer,
    model_option,
    say,
    settings_of,
    train_model,
    user_errors,
)

if TYPE_CHECKING:
    import pandas as pd

    from imovsp.valuer import Valuer


def data_option(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--data``: a listings file in the raw schema, as ``data_path``."""
    return click.option("--data", "data_path", type=click.Path(path_type=Path), **kwargs)


@cli.command()
@data_option(
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

    settings = settings_of(ctx)
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
@data_option(required=True, help="Listings CSV with prices, in the raw schema.")
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

    settings = settings_of(ctx)
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
