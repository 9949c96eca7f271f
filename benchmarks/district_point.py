"""Is a valuation without coordinates priced where the district is? One flat, every district.

    uv run python benchmarks/district_point.py --model DIR [--model DIR ...] [--points 25]

For each district of the model that the city's map knows, the same flat (60 m², 2 rooms, sale
and rent) is valued without coordinates and at ``--points`` points spread inside the official
district (a grid, the points that fall inside); prints, per model, the no-coordinates price
over the median of the priced points, for the districts where a model is off by more than
25%, and the median and worst ratio over all districts. A person who gives only the district
should get about what the district's own ground is priced at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from imovsp import geo
from imovsp.valuer import Valuer

FLAT = {"size_m2": 60, "rooms": 2}


def points_inside(district: geo.District, wanted: int) -> list[tuple[float, float]]:
    lon_min, lat_min, lon_max, lat_max = district.box
    side = 4
    while True:
        lon, lat = np.meshgrid(
            np.linspace(lon_min, lon_max, side + 2)[1:-1],
            np.linspace(lat_min, lat_max, side + 2)[1:-1],
        )
        inside = district.contains(lat.ravel(), lon.ravel())
        if inside.sum() >= wanted or side > 40:
            return list(zip(lat.ravel()[inside], lon.ravel()[inside], strict=True))[:wanted]
        side += 2


def ratios(valuer: Valuer, negotiation: str, points: int) -> dict[str, float]:
    city = geo.geography()
    out = {}
    for name in valuer.builder.districts_:
        places = city.official_of(name)
        if not places:
            continue
        ask = {"negotiation": negotiation, "district": name, **FLAT}
        alone = valuer.value(valuer.prepare(ask)).price
        at = [
            valuer.value(valuer.prepare({**ask, "latitude": la, "longitude": lo})).price
            for place in places
            for la, lo in points_inside(place, points)
        ]
        out[name] = alone / float(np.median(at))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--points", type=int, default=25)
    args = parser.parse_args()
    for directory in args.model:
        valuer = Valuer.load(directory)
        print(f"model {directory}:")
        for negotiation in ("sale", "rent"):
            found = ratios(valuer, negotiation, args.points)
            values = np.array(list(found.values()))
            far = {n: r for n, r in found.items() if abs(r - 1) > 0.25}
            worst = values[np.argmax(np.abs(np.log(values)))]
            print(
                f"  {negotiation}: {len(found)} districts, no coordinates / at points in the "
                f"district: median {np.median(values):.3f}, worst {worst:.2f}"
            )
            for name, r in sorted(far.items(), key=lambda kv: -abs(kv[1] - 1)):
                print(f"    {name}: {r:.2f}")


if __name__ == "__main__":
    main()
