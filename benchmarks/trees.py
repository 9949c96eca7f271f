"""What the ensemble's trees buy: accuracy with each member cut back to a share of its trees.

    uv run python benchmarks/trees.py [--data CSV] [--splits 1 2 3 4]

For each split seed, as ``imovsp train`` does: hold out 15% of the listings, tune on the rest by
cross-validation, fit the ensemble on the train rows. Then score the held-out rows with each
member limited to a share of its trees (LightGBM's ``num_iteration``: the same trees as
training that many rounds). Prints mean MAPE / median APE and tree counts over the splits.
"""

from __future__ import annotations

from tuned_splits import Scores, arguments, errors, report, tuned_splits

from imovsp import training

SHARES = (0.5, 0.67, 0.8, 1.0)  # of each member's trees; 0 drops the second member


def main() -> None:
    args = arguments(__doc__ or "")
    scores: Scores = {}
    for tuned in tuned_splits(args.data, args.splits):
        n, x = tuned.negotiation, tuned.x_test
        first, second = training.fit_ensemble(tuned.x, tuned.y, tuned.params).members
        for share0 in SHARES:
            k0 = max(1, round(first.num_trees() * share0))
            for share1 in (0.0, *SHARES):
                k1 = round(second.num_trees() * share1)
                log_price = first.predict(x, num_iteration=k0)
                if k1:
                    log_price = (log_price + second.predict(x, num_iteration=k1)) / 2
                scores.setdefault((n, share0, share1), []).append(errors(tuned, log_price, k0 + k1))
    report(scores, {"tuned": ">6", "extra": ">6"})


if __name__ == "__main__":
    main()
