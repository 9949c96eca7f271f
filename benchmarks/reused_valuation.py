"""imovsp's own server with the model taken out: every valuation after a worker's first is that
first one, reused. Everything else is what ``imovsp serve`` runs (the same settings, workers,
validation, rendering, metrics, access log and prediction log).

``benchmarks/api.py`` loads it beside the real server. The gap between the two is what the
model costs per request; the gap between this and the bare ASGI app is what the rest of
imovsp's request path costs. It measures a limit and is not a way to serve: the answers
ignore the request's property.

    python benchmarks/reused_valuation.py --host H --port P --workers N --model DIR
"""

from __future__ import annotations

import sys

# As imovsp.server.main does for its own processes; this module is the main module of the
# server and of each worker it spawns, so the patch below is made in every one of them.
sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]

from typing import Any  # noqa: E402

from imovsp.valuer import Valuation, Valuer  # noqa: E402

_value_many = Valuer.value_many
_first: list[Valuation] = []


def _reused(self: Valuer, props: Any, *args: Any, **kwargs: Any) -> list[Valuation]:
    if not _first:
        _first.extend(_value_many(self, props[:1], *args, **kwargs))
    return _first * len(props)


Valuer.value_many = _reused  # type: ignore[method-assign]

if __name__ == "__main__":
    from imovsp.server.main import main

    main()
