"""Ensemble shapes at equal and at larger tree budgets: more members, other seeds, fewer trees.

    uv run python benchmarks/members.py [--splits 1 2 3 4]

For each split seed, as ``imovsp train`` does: hold out 15% of the listings, tune on the rest
by cross-validation (which fixes the number of trees R). Then fit five boosters on the train
rows with R trees each: the tuned one (seed s), the same with seed s + 7, and extra-trees
boosters with seeds s + 13 (the current second member), s + 29 and s + 41. Each shape below
averages some of them, each cut to a share of R trees, and is scored on the held-out rows with
the tuned output scale. Prints mean MAPE / median APE % and trees per valuation over the splits.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
from tuned_splits import Scores, arguments, errors, report, tuned_splits

from imovsp import ensemble, training

BOOSTERS: dict[str, tuple[dict[str, Any], int]] = {  # name: (parameters over the tuned, seed +)
    "M0": ({}, 0),
    "M7": ({}, 7),
    "E13": ({"extra_trees": True}, 13),
    "E29": ({"extra_trees": True}, 29),
    "E41": ({"extra_trees": True}, 41),
}
SHAPES: dict[str, list[tuple[str, float]]] = {  # name: (booster, share of R trees) averaged
    "now: tuned + extra": [("M0", 1), ("E13", 1)],
    "tuned at 0.8 + extra": [("M0", 0.8), ("E13", 1)],
    "tuned + 2 extra, 0.8/0.6/0.6": [("M0", 0.8), ("E13", 0.6), ("E29", 0.6)],
    "tuned + 2 extra, 0.6 each": [("M0", 0.6), ("E13", 0.6), ("E29", 0.6)],
    "tuned + 2 extra, 0.5 each": [("M0", 0.5), ("E13", 0.5), ("E29", 0.5)],
    "2 tuned + 2 extra, 0.5 each": [("M0", 0.5), ("M7", 0.5), ("E13", 0.5), ("E29", 0.5)],
    "2 tuned + 2 extra, 0.7 each": [("M0", 0.7), ("M7", 0.7), ("E13", 0.7), ("E29", 0.7)],
    "2 tuned + 3 extra, 0.5 each": [(b, 0.5) for b in BOOSTERS],
    "tuned + 2 extra, all trees": [("M0", 1), ("E13", 1), ("E29", 1)],
    "tuned + 3 extra, all trees": [("M0", 1), ("E13", 1), ("E29", 1), ("E41", 1)],
}


def main() -> None:
    args = arguments(__doc__ or "")
    scores: Scores = {}
    for tuned in tuned_splits(args.data, args.splits):
        # The tuned member's parameters and trees, as training fits it.
        params, rounds = ensemble.member_params(tuned.params, 0)
        boosters = {
            name: lgb.train(
                {**params, **extra, "seed": params["seed"] + shift},
                training._dataset(tuned.x, tuned.y),
                rounds,
            )
            for name, (extra, shift) in BOOSTERS.items()
        }
        for shape, parts in SHAPES.items():
            cuts = [(boosters[b], max(1, round(rounds * share))) for b, share in parts]
            log_price = np.mean([b.predict(tuned.x_test, num_iteration=k) for b, k in cuts], axis=0)
            trees = sum(k for _, k in cuts)
            key = (tuned.negotiation, shape)
            scores.setdefault(key, []).append(errors(tuned, log_price, trees))
    report(scores, {"shape": "<30"})


if __name__ == "__main__":
    main()
