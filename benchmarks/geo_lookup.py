"""Point in district: imovsp.geo's numpy ray cast against shapely (GEOS), side by side.

    uv run python benchmarks/geo_lookup.py                    # imovsp.geo only
    uv run --with shapely python benchmarks/geo_lookup.py     # and shapely (not a dependency)

Each contender runs in a fresh interpreter (after numpy is imported, as in a server worker):
the time and resident memory that importing it and loading the 96 districts add, the time to
find the district of one point, and, for shapely, how many of 20,000 random points in the
city's box the two place in different districts.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, sys, time
import numpy as np
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
before, t0 = rss(), time.perf_counter()
if sys.argv[1] == "shapely":
    import shapely
    from importlib import resources
    features = json.loads(resources.files("imovsp").joinpath("geodata", "sp-distritos.geojson")
                          .read_text(encoding="utf-8"))["features"]
    polygons = [shapely.geometry.shape(f["geometry"]) for f in features]
    names = [f["properties"]["Distrito"] for f in features]
    tree = shapely.STRtree(polygons)
    def one(lat, lon):
        hit = tree.query(shapely.Point(lon, lat), predicate="within")
        return names[hit[0]] if len(hit) else None
else:
    from imovsp.geo import geography
    geo = geography()
    def one(lat, lon):
        found = geo.district_at(lat, lon)
        return found.official if found else None
loaded, added = (time.perf_counter() - t0) * 1000, rss() - before
rng = np.random.default_rng(0)
lat, lon = rng.uniform(-24.01, -23.35, 20_000), rng.uniform(-46.83, -46.36, 20_000)
t0 = time.perf_counter()
for i in range(2_000):
    one(lat[i], lon[i])
per_point = (time.perf_counter() - t0) / 2_000 * 1e6
print(json.dumps({"load_ms": round(loaded), "rss_mb": round(added, 1),
                  "per_point_us": round(per_point, 1),
                  "found": [one(a, b) for a, b in zip(lat, lon)]}))
"""


def run(contender: str) -> dict[str, object] | None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, contender], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"{contender}: not measured ({done.stderr.strip().splitlines()[-1]})")
        return None
    return dict(json.loads(done.stdout))


def main() -> None:
    results = {c: run(c) for c in ("imovsp.geo", "shapely")}
    ours = results["imovsp.geo"]
    assert ours is not None
    for name, r in results.items():
        if r is None:
            continue
        line = (
            f"{name:10s} import + load {r['load_ms']} ms, +{r['rss_mb']} MB resident, "
            f"{r['per_point_us']} µs per point"
        )
        if name != "imovsp.geo":
            found, mine = r["found"], ours["found"]
            assert isinstance(found, list)
            assert isinstance(mine, list)
            differ = sum(a != b for a, b in zip(found, mine, strict=True))
            inside = sum(a is not None for a in found)
            line += f"; {differ} of {len(found)} points placed differently ({inside} in the city)"
        print(line)


if __name__ == "__main__":
    main()
