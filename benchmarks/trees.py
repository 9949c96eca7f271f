"""What the ensemble's trees buy: accuracy with its members cut back to a share of their trees,
and with each member left out.

    uv run python benchmarks/trees.py [--data CSV] [--splits 1 2 3 4]

For each split seed, as ``imovsp train`` does: hold out 15% of the listings, tune on the rest by
cross-validation, fit the ensemble on the train rows. Then score the held-out rows with every
member limited to a share of its trees (LightGBM's ``num_iteration``: the same trees as
training that many rounds), and with all the trees of all members but one. Prints mean MAPE /
median APE and tree counts over the splits.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from tuned_splits import Scores, arguments, errors, report, tuned_splits

from imovsp import ensemble, training

SHARES = (0.5, 0.67, 0.8, 1.0)  # of each member's trees


def log_price(
    members: list[lgb.Booster], x: np.ndarray, share: float, keep: list[int]
) -> tuple[np.ndarray, int]:
    """The average of members ``keep`` cut to ``share`` of their trees, and its tree count."""
    cuts = [(i, max(1, round(members[i].num_trees() * share))) for i in keep]
    outputs = [members[i].predict(x, num_iteration=k) + ensemble.offset(i, x) for i, k in cuts]
    return np.mean(outputs, axis=0), sum(k for _, k in cuts)


def main() -> None:
    args = arguments(__doc__ or "")
    scores: Scores = {}
    names = [suffix or "tuned" for suffix, *_ in ensemble.MEMBERS]
    for tuned in tuned_splits(args.data, args.splits):
        n, x = tuned.negotiation, tuned.x_test
        members = training.fit_ensemble(tuned.x, tuned.y, tuned.params).members
        everyone = list(range(len(members)))
        for share in SHARES:
            scores.setdefault((n, "all", share), []).append(
                errors(tuned, *log_price(members, x, share, everyone))
            )
        for left_out, name in enumerate(names):
            keep = [i for i in everyone if i != left_out]
            scores.setdefault((n, f"all but {name}", 1.0), []).append(
                errors(tuned, *log_price(members, x, 1.0, keep))
            )
    report(scores, {"members": "<18", "share": ">6"})


if __name__ == "__main__":
    main()
