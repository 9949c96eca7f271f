"""What the tree benchmarks (``trees.py``, ``members.py``) share: honest splits of the dev file,
tuned as ``imovsp train`` tunes them, the test error of a log-price estimate, and the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imovsp import data, training
from imovsp.builder import FeatureBuilder
from imovsp.features import frame_columns
from imovsp.settings import DEV_DATA

# Per (negotiation, labels...): (MAPE, median APE, trees) of each split.
Scores = dict[tuple[Any, ...], list[tuple[float, float, int]]]


@dataclass
class Tuned:
    """One split seed's rows of one negotiation type, with the parameters tuned on them."""

    negotiation: str
    x: np.ndarray  # features of the train rows (each left out of its own neighbourhood)
    y: np.ndarray  # their log prices
    params: dict[str, Any]  # tuned (``num_rounds``, output ``scale``, ...)
    x_test: np.ndarray  # features of the held-out rows
    actual: np.ndarray  # their prices


def arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    return parser.parse_args()


def tuned_splits(path: Path, seeds: list[int]) -> Iterator[Tuned]:
    """For each split seed, as ``imovsp train`` does: hold out 15% of the listings and tune on
    the rest by cross-validation; one :class:`Tuned` per negotiation type."""
    frame, _ = data.load_training_data(path)
    for seed in seeds:
        train_rows, test_rows = training.split(frame, test_size=0.15, seed=seed)
        builder = FeatureBuilder().fit(train_rows)
        for n in data.NEGOTIATIONS:
            x, y = training._design(builder, train_rows, n)
            params, _ = training.tune(x, y, seed=seed, folds=4)
            rows = test_rows[test_rows[data.NEGOTIATION] == n]
            x_test = builder.matrix(frame_columns(rows), negotiation=n)
            yield Tuned(n, x, y, params, x_test, rows[data.PRICE].to_numpy(float))
        print(f"split {seed} done", flush=True)


def errors(tuned: Tuned, log_price: np.ndarray, trees: int) -> tuple[float, float, int]:
    """MAPE and median APE (%) on the held-out rows of the scaled estimate, and ``trees``."""
    ape = 100 * np.abs(tuned.params["scale"] * np.exp(log_price) - tuned.actual) / tuned.actual
    return float(ape.mean()), float(np.median(ape)), trees


def report(scores: Scores, labels: dict[str, str]) -> None:
    """The mean over splits of each row of ``scores``; ``labels`` names the key's parts after
    the negotiation type, with their columns' format (``">6"``, ``"<30"``)."""
    head = "".join(f" {name:{spec}}" for name, spec in labels.items())
    print(f"{'type':<5}{head} {'MAPE':>6} {'median':>7} {'trees':>6}")
    for (n, *parts), runs in scores.items():
        mape, median, trees = np.mean(runs, axis=0)
        cells = "".join(f" {p!s:{spec}}" for p, spec in zip(parts, labels.values(), strict=True))
        print(f"{n:<5}{cells} {mape:>6.2f} {median:>7.2f} {trees:>6.0f}")
