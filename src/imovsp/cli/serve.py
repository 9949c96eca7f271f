"""``imovsp serve`` and ``imovsp index``: run the service; show the price index it uses."""

from __future__ import annotations

import json
from pathlib import Path

import click

from imovsp.cli.common import cli, load_valuer, model_option, say, settings_of, user_errors


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
    from imovsp.server.main import exec_server, refuse  # the web stack loads for this command
    from imovsp.server.supervisor import bind

    settings = settings_of(ctx)
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
    trees = settings.trees_dir()
    if trees is not None:  # here, before the workers start; as many at once as workers
        from imovsp import artifact, compiled

        compiled.warm(artifact.load(path).models, trees, say, jobs=workers)
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

    settings = settings_of(ctx)
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
