"""The value model: an average, in log price, of a few differently-grown LightGBM boosters.

A plain gradient-boosted model, one grown with extremely randomised splits and one that learns
the price per m² make different mistakes; their average is measurably more accurate than any
of them on this data (see docs/benchmarks.md). Because it is a plain average, TreeSHAP
contributions average too, so the reasons stay exact.

A member that learns the log price per m² gives the log price once ``log(size_m2)`` is added
to its output: in its contributions that term goes to ``size_m2``, less the training rows' mean
log size, which goes to the bias. They still add up to the log price, and the bias is still the
typical apartment's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

from imovsp.features import FEATURES

LOG_PRICE = "log(price)"
LOG_PRICE_M2 = "log(price / size_m2)"
SIZE = FEATURES.index("size_m2")

# (name suffix, parameters over the tuned ones, multiple of the tuned number of trees, target).
# The first is the one cross-validation tunes (:func:`imovsp.training.tune`), on log price.
MEMBERS: tuple[tuple[str, dict[str, Any], float, str], ...] = (
    ("", {}, 1.0, LOG_PRICE),
    # As many trees as the tuned member. Twice as many was no more accurate: on 4 honest
    # splits, the ensemble cut at 1x scored sale MAPE 13.50 / median APE 9.27 and rent 17.88 /
    # 13.38 against 13.50 / 9.32 and 17.88 / 13.36 at 2x, with a third fewer trees to run per
    # valuation (docs/benchmarks.md).
    ("extra", {"extra_trees": True, "seed_shift": 13}, 1.0, LOG_PRICE),
    # The same settings on another target. On 12 honest splits it took sale MAPE from 13.22 to
    # 13.13 (lower in 11 of 12) and rent from 17.77 to 17.64 (11 of 12); a third member of the
    # same target from another seed took 0.01 and 0.00 (docs/benchmarks.md).
    ("per-area", {"seed_shift": 7}, 1.0, LOG_PRICE_M2),
)
TARGETS = tuple(target for *_, target in MEMBERS)
# Keys of the tuned parameters that are not LightGBM's.
OWN_PARAMS = ("num_rounds", "scale", "log_size_mean", "masked")


def member_params(params: dict[str, Any], index: int) -> tuple[dict[str, Any], int]:
    """LightGBM parameters and number of trees of member ``index`` given the tuned ``params``."""
    _, extra, factor, _ = MEMBERS[index]
    p = {k: v for k, v in params.items() if k not in OWN_PARAMS}
    extra = dict(extra)
    p["seed"] = int(p.get("seed", 0)) + int(extra.pop("seed_shift", 0))
    p.update(extra)
    return p, max(1, round(params["num_rounds"] * factor))


def member_names(negotiation: str) -> list[str]:
    """Artifact model names of the members: ``sale``, ``sale-extra``, …"""
    return [negotiation + (f"-{suffix}" if suffix else "") for suffix, *_ in MEMBERS]


def offset(index: int, x: np.ndarray) -> np.ndarray:
    """What member ``index`` leaves out of the log price of rows ``x``: its label is the log
    price less this, and its output plus this is the log price."""
    if TARGETS[index] == LOG_PRICE_M2:
        return np.asarray(np.log(x[:, SIZE]), dtype=np.float64)
    return np.zeros(len(x))


def log_size_mean(x: np.ndarray) -> float:
    """The mean log size of training rows ``x``: the typical apartment's, for the bias."""
    return float(np.mean(np.log(x[:, SIZE])))


class Ensemble:
    """Booster-like average of ``members`` (same features; see :data:`MEMBERS` for their
    targets). ``log_size_mean`` is the training rows' mean log size (see the module's note)."""

    def __init__(self, members: Sequence[lgb.Booster], *, log_size_mean: float) -> None:
        if len(members) != len(MEMBERS):
            raise ValueError(f"an ensemble has {len(MEMBERS)} members, not {len(members)}")
        self.members = list(members)
        self.log_size_mean = log_size_mean

    def combine(self, outputs: Sequence[Sequence[float]], sizes: Sequence[float]) -> list[float]:
        """Log prices of rows from their members' raw outputs (``outputs[i][j]``: member ``i``,
        row ``j``) and their sizes. The one place members are averaged on the way to a price:
        a row alone and in a matrix give the same bits."""
        logs = [math.log(s) for s in sizes]
        return [
            sum(
                o[j] + logs[j] if target == LOG_PRICE_M2 else o[j]
                for o, target in zip(outputs, TARGETS, strict=True)
            )
            / len(outputs)
            for j in range(len(logs))
        ]

    def predict(self, x: np.ndarray, *, pred_contrib: bool = False, **kwargs: Any) -> np.ndarray:
        """Log prices of rows ``x``; with ``pred_contrib=True`` the mean contributions (TreeSHAP
        values are linear in the model, so they stay exact for the average)."""
        if not pred_contrib:
            total = np.zeros(len(x))
            for i, member in enumerate(self.members):
                total += np.asarray(member.predict(x, **kwargs), dtype=np.float64) + offset(i, x)
            return total / len(self.members)
        total = np.zeros((len(x), len(FEATURES) + 1))
        for i, (member, target) in enumerate(zip(self.members, TARGETS, strict=True)):
            total += np.asarray(member.predict(x, pred_contrib=True, **kwargs), dtype=np.float64)
            if target == LOG_PRICE_M2:
                total[:, SIZE] += offset(i, x) - self.log_size_mean
                total[:, -1] += self.log_size_mean
        return total / len(self.members)

    def feature_name(self) -> list[str]:
        names: list[str] = self.members[0].feature_name()
        return names

    def num_trees(self) -> int:
        return sum(int(m.num_trees()) for m in self.members)


class Routed:
    """One negotiation type's value model: a flat with every field given (a condo fee of 0
    included, as the listings give it) is priced by the ensemble trained on the listings as
    listed; any other by the one trained on them and on their masked copies (fields left out
    the way people leave them out, see :func:`imovsp.training.masked_copies`). On repeated
    splits the masked ensemble is far more accurate when fields are missing, and the listed one
    more accurate on listings as listed (docs/benchmarks.md)."""

    def __init__(self, listed: Ensemble, masked: Ensemble) -> None:
        self.listed, self.masked = listed, masked

    def pick(self, listed: bool) -> Ensemble:
        """The listed ensemble, or the masked one (see :func:`imovsp.features.listed_columns`)."""
        return self.listed if listed else self.masked

    def predict(
        self, x: np.ndarray, *, listed: np.ndarray, pred_contrib: bool = False, **kwargs: Any
    ) -> np.ndarray:
        """:meth:`Ensemble.predict` of each row by the ensemble that prices it: the listed one
        where ``listed`` (see :func:`imovsp.features.listed_columns`), else the masked one."""
        listed = np.asarray(listed, dtype=bool)
        width = len(FEATURES) + 1 if pred_contrib else None
        out = np.empty((len(x), width) if width else len(x))
        for ensemble, rows in ((self.listed, listed), (self.masked, ~listed)):
            if rows.any():
                out[rows] = ensemble.predict(x[rows], pred_contrib=pred_contrib, **kwargs)
        return out

    def ensembles(self) -> dict[str, Ensemble]:
        """The two ensembles by the suffix of their artifact names (``""``, ``"masked"``)."""
        return {"": self.listed, MASKED: self.masked}

    def feature_name(self) -> list[str]:
        return self.listed.feature_name()

    def num_trees(self) -> int:
        return self.listed.num_trees() + self.masked.num_trees()


MASKED = "masked"


def routed_names(negotiation: str) -> dict[str, list[str]]:
    """Artifact model names of both ensembles' members: ``sale``, ``sale-extra``, …,
    ``sale-masked``, ``sale-masked-extra``, …"""
    return {
        "": member_names(negotiation),
        MASKED: member_names(f"{negotiation}-{MASKED}"),
    }
