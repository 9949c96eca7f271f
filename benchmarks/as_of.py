"""What moving an answer to another month costs on the API's hot path: rendering one valuation
as ``POST /v1/valuations`` did before (``valuation_dict``) and as it does now (the price index
look-up, every amount moved, the month's fields: ``dating.valuation_body``), side by side in
one run, beside the valuation itself.

    python benchmarks/as_of.py [--model DIR] [--repeat 7] [--number 2000]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from pathlib import Path

from imovsp import artifact, as_of, price_index
from imovsp.api import dating
from imovsp.api.render import valuation_dict
from imovsp.settings import get_settings
from imovsp.valuer import Valuer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model directory (default: the current one)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    settings = get_settings()
    path = artifact.resolve(args.model, settings.models_dir)
    assert path is not None, "no model: run `imovsp train` first"
    valuer = Valuer.load(path)
    index = price_index.load()
    prop = valuer.prepare(
        {"negotiation": "sale", "district": "Santana", "size_m2": 130.0, "rooms": 4}
    )
    v = valuer.value(prop)
    explained = valuer.value(prop, explain=True, comparables=5)

    def before(v=v):  # type: ignore[no-untyped-def]
        return valuation_dict(v, request_id="x")

    def after(v=v):  # type: ignore[no-untyped-def]
        at = as_of.resolve(index, valuer.data_month, "sale", None)
        return dating.valuation_body(v, at, request_id="x")

    def valuing() -> object:
        return valuer.value(prop)

    cases = {
        "render, plain (before)": before,
        "render, plain, moved to as_of (now)": after,
        "render, 11 reasons + 5 comparables (before)": lambda: before(explained),
        "render, 11 reasons + 5 comparables, moved (now)": lambda: after(explained),
        "the valuation itself (Valuer.value)": valuing,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):  # interleaved, so that the machine's noise hits all alike
        for name, fn in cases.items():
            times[name].append(timeit.timeit(fn, number=args.number) / args.number * 1e6)
    print(f"model {valuer.version}; median of {args.repeat} runs of {args.number} calls, µs/call")
    for name, values in times.items():
        print(f"  {name:<50} {statistics.median(values):8.2f}")


if __name__ == "__main__":
    main()
