"""The value model: an average, in log price, of a few differently-grown LightGBM boosters.

A plain gradient-boosted model and one grown with extremely randomised splits make different
mistakes; their average is measurably more accurate than either on this data (see
docs/benchmarks.md). Because it is a plain average, TreeSHAP contributions average too, so the
reasons stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

# (name suffix, parameters over the tuned ones, multiple of the tuned number of trees)
MEMBERS: tuple[tuple[str, dict[str, Any], float], ...] = (
    ("", {}, 1.0),
    # As many trees as the tuned member. Twice as many was no more accurate: on 4 honest
    # splits, the ensemble cut at 1x scored sale MAPE 13.50 / median APE 9.27 and rent 17.88 /
    # 13.38 against 13.50 / 9.32 and 17.88 / 13.36 at 2x, with a third fewer trees to run per
    # valuation (docs/benchmarks.md).
    ("extra", {"extra_trees": True, "seed_shift": 13}, 1.0),
)


def member_params(params: dict[str, Any], index: int) -> tuple[dict[str, Any], int]:
    """LightGBM parameters and number of trees of member ``index`` given the tuned ``params``."""
    _, extra, factor = MEMBERS[index]
    p = {k: v for k, v in params.items() if k not in ("num_rounds", "scale")}
    extra = dict(extra)
    p["seed"] = int(p.get("seed", 0)) + int(extra.pop("seed_shift", 0))
    p.update(extra)
    return p, max(1, round(params["num_rounds"] * factor))


def member_names(negotiation: str) -> list[str]:
    """Artifact model names of the members: ``sale``, ``sale-extra``, …"""
    return [negotiation + (f"-{suffix}" if suffix else "") for suffix, _, _ in MEMBERS]


class Ensemble:
    """Booster-like average of ``members`` (same features, log-price outputs)."""

    def __init__(self, members: Sequence[lgb.Booster]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one booster")
        self.members = list(members)

    def predict(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Mean of the members' predictions; with ``pred_contrib=True`` the mean contributions
        (TreeSHAP values are linear in the model, so they stay exact for the average)."""
        outputs = [np.asarray(m.predict(x, **kwargs), dtype=np.float64) for m in self.members]
        return np.asarray(np.mean(outputs, axis=0), dtype=np.float64)

    def feature_name(self) -> list[str]:
        names: list[str] = self.members[0].feature_name()
        return names

    def num_trees(self) -> int:
        return sum(int(m.num_trees()) for m in self.members)
