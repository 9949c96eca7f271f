"""``imovsp predict``: value one property, and the answer as lines or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imovsp import bounds
from imovsp.cli.common import (
    as_of_option,
    cli,
    fail,
    level_option,
    load_valuer,
    model_option,
    say,
    settings_of,
    user_errors,
)

if TYPE_CHECKING:
    from imovsp import as_of as as_of_module
    from imovsp.valuer import Valuation


NEGOTIATION = click.Choice(bounds.NEGOTIATIONS, case_sensitive=False)


@cli.command()
@click.option("--negotiation", type=NEGOTIATION, help="sale or rent.")
@click.option("--district", help="District name, e.g. 'Santana' (accents and case optional).")
@click.option(
    "--size",
    "size_m2",
    type=click.FloatRange(*bounds.SIZE_M2),
    help="Private area, m².",
)
@click.option("--rooms", type=click.IntRange(*bounds.COUNTS["rooms"]))
@click.option("--toilets", type=click.IntRange(*bounds.COUNTS["toilets"]))
@click.option("--suites", type=click.IntRange(*bounds.COUNTS["suites"]))
@click.option("--parking", type=click.IntRange(*bounds.COUNTS["parking"]))
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
@click.option("--latitude", type=click.FloatRange(*bounds.LATITUDE))
@click.option("--longitude", type=click.FloatRange(*bounds.LONGITUDE))
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
    type=click.IntRange(0, bounds.MAX_COMPARABLES),
    default=0,
    help="Show this many similar listings from the training data "
    f"(up to {bounds.MAX_COMPARABLES}).",
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
    _within_bounds(ctx, fields)
    fee = fields.get("condo_fee")
    if isinstance(fee, int | float) and not isinstance(fee, bool):  # from --file: as the option
        try:
            _condo_fee(float(fee))
        except click.BadParameter as exc:
            fail(f"condo_fee: {exc.message}")
    settings = settings_of(ctx)
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
    if as_json:
        from imovsp import answer

        click.echo(json.dumps(answer.in_month(valuation, at), ensure_ascii=False))
        return
    moved = as_of_module.move(valuation, at.factor)
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


def _within_bounds(ctx: click.Context, fields: dict[str, Any]) -> None:
    """Hold the numbers given (from --file too) to the bounds of the options of the same name
    (those of :mod:`imovsp.bounds`, as the API's), with the options' messages."""
    ranges = {
        p.name: p
        for p in ctx.command.params
        if isinstance(p.type, click.IntRange | click.FloatRange)
    }
    for name, value in fields.items():
        param = ranges.get(name)
        if param is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        try:
            param.type.convert(value, param, ctx)
        except click.BadParameter as exc:
            fail(f"{name}: {exc.message}")


def _condo_fee(fee: float | None) -> float | None:
    """A fee as the API takes it: 0 (unknown) or a monthly fee from R$ 1 to R$ 100,000."""
    if fee is None or fee == 0 or bounds.CONDO_FEE_MIN <= fee <= bounds.CONDO_FEE_MAX:
        return fee
    raise click.BadParameter(
        f"{fee:g} is not 0 (unknown) or a monthly fee from {bounds.CONDO_FEE_MIN:,.0f} to "
        f"{bounds.CONDO_FEE_MAX:,.0f}"
    )


def _round(price: float, negotiation: str) -> float:
    from imovsp import answer  # here: the module needs the model's types, the CLI starts without

    return answer.price(price, negotiation) or 0.0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
