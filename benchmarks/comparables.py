"""How much comparables (and reasons) add to one valuation, against the 2 ms limit.

    uv run python benchmarks/comparables.py [--model DIR] [--repeat N]

Values the same properties (drawn from the synthetic generator, so they spread over the city)
with and without ``comparables=20`` and ``explain=True`` (and the bare price, without the
range, for reference), interleaved in one run so machine noise hits every variant alike; prints
the median time per valuation of each and the time added to a price with its range, against
the limit (which applies to comparables).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from imovsp import artifact, data
from imovsp.features import Property
from imovsp.settings import get_settings
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer

LIMIT_MS = 2.0
VARIANTS = {
    "price and range": {},
    "+ 20 comparables": {"comparables": 20},
    "+ reasons": {"explain": True},
}


def properties(valuer: Valuer, n: int) -> list[Property]:
    rows = data.validate(synthetic_listings(n, seed=5).astype(str), require_price=False).frame
    rows = rows[~valuer.unknown_districts(rows)]
    out = []
    for _, r in rows.iterrows():
        lat, lon = r[data.LATITUDE], r[data.LONGITUDE]
        out.append(
            Property(
                r[data.NEGOTIATION],
                valuer.builder.resolve_district(r[data.DISTRICT]),
                float(r["Size"]),
                int(r["Rooms"]),
                int(r["Toilets"]),
                int(r["Suites"]),
                int(r["Parking"]),
                condo_fee=float(r["Condo"]),
                latitude=None if lat != lat else float(lat),
                longitude=None if lon != lon else float(lon),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="model directory (default: the current one)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the properties")
    parser.add_argument("--properties", type=int, default=400)
    args = parser.parse_args()
    settings = get_settings()
    path = artifact.resolve(args.model, settings.models_dir)
    if path is None:
        raise SystemExit(f"no model in {settings.models_dir}: run `imovsp train` first")
    valuer = Valuer.load(path)
    props = properties(valuer, args.properties)
    sizes = {n: len(index.table) for n, index in valuer.listings.items()}
    print(f"model {valuer.version}: comparables index {sizes}; {len(props)} properties")
    times: dict[str, list[float]] = {name: [] for name in ("price only", *VARIANTS)}
    for options in VARIANTS.values():  # warm up
        valuer.value(props[0], **options)  # type: ignore[arg-type]
    for _ in range(args.repeat):
        for prop in props:
            started = time.perf_counter()
            valuer.predict_one(prop)
            times["price only"].append(time.perf_counter() - started)
            for name, options in VARIANTS.items():
                started = time.perf_counter()
                valuer.value(prop, **options)  # type: ignore[arg-type]
                times[name].append(time.perf_counter() - started)
    base = statistics.median(times["price and range"]) * 1000
    print(f"{'variant':<18} {'median ms':>10} {'added ms':>9} {'added / limit':>14}")
    for name, values in times.items():
        ms = statistics.median(values) * 1000
        added = ms - base
        ratio = f"{added / LIMIT_MS:>14.2f}" if name.startswith("+") else f"{'':>14}"
        print(f"{name:<18} {ms:>10.3f} {added:>9.3f} {ratio}")


if __name__ == "__main__":
    main()
