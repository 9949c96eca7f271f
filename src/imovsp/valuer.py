"""The loaded model: everything that answers a question about a property calls a Valuer.

A valuation is the price, its range at the level asked for (see :mod:`imovsp.ranges`), and on
request the reasons (see :mod:`imovsp.explain`) and comparable listings (see
:mod:`imovsp.comparables`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from imovsp import artifact, comparables, compiled, data, explain, predict, ranges
from imovsp.artifact import Artifact, ArtifactError
from imovsp.bounds import DEFAULT_LEVEL, MAX_COMPARABLES
from imovsp.builder import FeatureBuilder
from imovsp.comparables import ComparableIndex
from imovsp.drift import Reference
from imovsp.ensemble import MASKED, SIZE, Ensemble, Routed, routed_names
from imovsp.features import FEATURES, Property, calibration_class, property_columns
from imovsp.price_index import DEFAULT_DATA_MONTH
from imovsp.ranges import Calibration
from imovsp.single_row import OneRow, predictor

# The answer types are the model layer's too: callers import them from here, with the Valuer.
from imovsp.valuation import SHARPEN_POINTS as SHARPEN_POINTS
from imovsp.valuation import Comparable as Comparable
from imovsp.valuation import Reason as Reason
from imovsp.valuation import Sharpen as Sharpen
from imovsp.valuation import Valuation as Valuation
from imovsp.valuation import sharpen

XY = [FEATURES.index("x_km"), FEATURES.index("y_km")]
# From this many properties of one negotiation type valued together, building their features
# and running the trees as one matrix is cheaper than row by row (measured by group size in
# docs/benchmarks.md, session 12, *Valued together*).
ROWS_TOGETHER = 6


class Valuer:
    """Predicts prices from a trained model. Build with :meth:`load` or
    :func:`imovsp.training.to_valuer`."""

    def __init__(
        self,
        builder: FeatureBuilder,
        boosters: Mapping[str, Routed],
        metadata: dict[str, Any],
        *,
        calibrations: Mapping[str, Calibration],
        listings: Mapping[str, ComparableIndex],
        reference: Reference | None = None,
        fingerprints: np.ndarray | None = None,
    ) -> None:
        self.builder = builder
        self.boosters = dict(boosters)
        self.metadata = metadata
        self.scale = {n: float(metadata["params"][n]["scale"]) for n in self.boosters}
        self.calibrations = dict(calibrations)
        self.listings = dict(listings)  # training listings, for comparables
        # The training distribution, for monitoring (None in models trained before it existed).
        self.reference = reference
        # Hashes of the training listings (see data.fingerprints; None in older models).
        self.fingerprints = fingerprints
        self.path: Path | None = None  # the model directory, once saved or loaded
        self.load_seconds: float | None = None
        # Per negotiation: the ensembles' members' and the spread model's single-row predictors.
        self._single_row: dict[str, tuple[dict[str, list[OneRow]], OneRow]] = {}

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @cached_property
    def data_month(self) -> str:
        """The month (``YYYY-MM``) whose money the model's prices are in."""
        return str(self.metadata["data"].get("month", DEFAULT_DATA_MONTH))

    @property
    def negotiations(self) -> tuple[str, ...]:
        return tuple(self.boosters)

    @property
    def districts(self) -> tuple[str, ...]:
        """The districts the model knows, in its spelling, sorted."""
        return tuple(self.builder.districts_)

    def plain_flat(self, negotiation: str | None = None) -> Property:
        """A plain flat (60 m², 2 rooms, 1 toilet, no suite, 1 parking space) in the first
        known district: what readiness probes, smoke tests and canaries ask the model to
        value (``negotiation``: the model's first type if not given)."""
        return Property(negotiation or self.negotiations[0], self.districts[0], 60.0, 2, 1, 0, 1)

    def district_places(self) -> list[tuple[str, float, float, dict[str, float | None]]]:
        """Per known district: its name, the point (lat, lon) a valuation without coordinates
        is placed at, and the median listed price per m² of the listings that stand in it, per
        negotiation type (``None``: none)."""
        builder, out = self.builder, []
        for name, (lat, lon) in zip(builder.districts_, builder.centroids_.tolist(), strict=True):
            prices = {n: builder.district_price_m2(name, n) for n in data.NEGOTIATIONS}
            out.append((name, lat, lon, prices))
        return out

    def typical_bands(self) -> list[tuple[float, float | None, dict[str, float | bool]]]:
        """What is usual per size band of the training listings: (from m², to m² or ``None``,
        the medians of the counts, the condo fee per m², the usual flags)."""
        return self.builder.typical_bands()

    # -- building ---------------------------------------------------------------------------

    def to_artifact(self) -> Artifact:
        _, arrays = self.builder.state()
        arrays.update(comparables.state(self.listings))
        if self.reference is not None:
            arrays.update(self.reference.state()[1])
        if self.fingerprints is not None:
            arrays["training_fingerprints"] = self.fingerprints
        models = {
            name: member.model_to_string()
            for n, model in self.boosters.items()
            for route, names in routed_names(n).items()
            for name, member in zip(names, model.ensembles()[route].members, strict=True)
        }
        for n, calibration in self.calibrations.items():
            models[f"{n}-spread"] = calibration.spread.model_to_string()
            arrays.update(calibration.arrays(n))
        return Artifact(metadata=self.metadata, models=models, arrays=arrays)

    def save(self, models_dir: Path, *, make_current: bool = True) -> Path:
        art = self.to_artifact()
        self.path = artifact.save(art, models_dir, make_current=make_current)
        self.metadata = art.metadata
        return self.path

    @classmethod
    def load(cls, path: Path, *, trees_cache: Path | None = None) -> Valuer:
        """Load a model directory, refusing (``ArtifactError``) anything it cannot trust.
        With ``trees_cache``, the boosters run compiled trees kept there (:mod:`imovsp.compiled`:
        the same numbers, faster); without it, LightGBM runs them."""
        started = time.perf_counter()
        art = artifact.load(path)
        meta = art.metadata
        try:
            builder = FeatureBuilder.from_state(meta["feature_schema"], art.arrays)
            models = compiled.boosters(art.models, trees_cache)
            negotiations = meta["negotiations"]
            missing = [f"{n}-spread" for n in negotiations if f"{n}-spread" not in models]
            if missing:
                raise ArtifactError(f"{path} has no range model {', '.join(missing)}")
            calibrations = {
                n: ranges.Calibration.from_state(
                    models[f"{n}-spread"], meta["ranges"], art.arrays, n
                )
                for n in negotiations
            }
            listings = comparables.from_state(art.arrays)
            reference = (
                Reference.from_state(meta["reference"], art.arrays, builder.districts_)
                if "reference" in meta
                else None
            )
        except (KeyError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"{path} cannot be used: {exc!s}") from None
        for name, booster in models.items():
            if booster.feature_name() != meta["feature_schema"]["features"]:
                raise ArtifactError(f"{path}: the {name} model's features differ from its metadata")
        absent = [
            m
            for n in negotiations
            for names in routed_names(n).values()
            for m in names
            if m not in models
        ]
        if absent:
            raise ArtifactError(f"{path} has no model {', '.join(absent)}")
        try:
            boosters = {}
            for n in negotiations:
                names, params = routed_names(n), meta["params"][n]
                listed, masked = (
                    Ensemble(
                        [models[m] for m in names[route]],
                        log_size_mean=float(p["log_size_mean"]),
                    )
                    for route, p in (("", params), (MASKED, params[MASKED]))
                )
                boosters[n] = Routed(listed, masked)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{path} cannot be used: no usable log_size_mean ({exc!s})"
            ) from None
        valuer = cls(
            builder,
            boosters,
            meta,
            calibrations=calibrations,
            listings=listings,
            reference=reference,
            fingerprints=art.arrays.get("training_fingerprints"),
        )
        valuer.path = path
        valuer.load_seconds = time.perf_counter() - started
        return valuer

    # -- predicting -------------------------------------------------------------------------

    def district(self, name: str) -> str:
        """The known district ``name`` refers to, in the model's spelling (any case or accents;
        ``UnknownDistrictError`` with the closest names otherwise)."""
        return self.builder.resolve_district(name)

    def resolve(self, prop: Property) -> Property:
        """``prop`` with its district spelled as the model knows it (``UnknownDistrictError``)."""
        if prop.negotiation not in self.boosters:
            raise ValueError(f"negotiation must be one of {', '.join(self.boosters)}")
        if (prop.latitude is None) != (prop.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        if prop.latitude is not None and not data.in_city(prop.latitude, prop.longitude):
            raise ValueError(
                f"coordinates ({prop.latitude}, {prop.longitude}) are outside São Paulo"
            )
        district = self.builder.resolve_district(prop.district)
        # Most callers already spell it as the model does: no copy (and no re-validation) then.
        return prop if district == prop.district else replace(prop, district=district)

    def prepare(self, fields: Mapping[str, Any]) -> Property:
        """The one way in: the fields a caller gave (the :class:`Property` field names; absent
        or ``None`` for a field not given) as a property the model can value, its district
        spelled as the model knows it. A field not given stays unknown: the model was trained
        to price it so. ``ValueError`` (``UnknownDistrictError`` included) for a property the
        model cannot value."""
        return self.resolve(Property(**{k: v for k, v in fields.items() if v is not None}))

    def typical(self, size_m2: float, names: Sequence[str]) -> dict[str, float | bool]:
        """What is usual for a flat of ``size_m2`` in the training listings, for ``names``
        (context to show beside a valuation; never priced)."""
        found = self.builder.typical(size_m2)
        return {name: found[name] for name in names if name in found}

    def _matrix(self, prop: Property) -> np.ndarray:
        return self.builder.row(prop)

    def predict_one(self, prop: Property) -> float:
        """The price of one property (sale price, or monthly rent), in BRL."""
        return self._predict_resolved(self.resolve(prop))

    def _row_models(self, negotiation: str) -> tuple[dict[str, list[OneRow]], OneRow]:
        """Single-row predictors (:func:`imovsp.single_row.predictor`) for both ensembles (by
        route: ``""``, ``"masked"``) and the spread model of ``negotiation`` (set up on first
        use: training never needs it)."""
        found = self._single_row.get(negotiation)
        if found is None:
            n = len(FEATURES)
            members = {
                route: [predictor(m, n) for m in model.members]
                for route, model in self.boosters[negotiation].ensembles().items()
            }
            spread = predictor(self.calibrations[negotiation].spread, n)
            found = self._single_row[negotiation] = (members, spread)
        return found

    def _log_median(self, x: np.ndarray, prop: Property) -> float:
        """The log-price estimate of one property from its feature row, by the ensemble that
        prices it (see :attr:`Property.listed`)."""
        negotiation = prop.negotiation
        members, _ = self._row_models(negotiation)
        route = "" if prop.listed else MASKED
        outputs = [[p.predict(x)] for p in members[route]]
        model = self.boosters[negotiation].pick(prop.listed)
        return model.combine(outputs, [float(x[0, SIZE])])[0]

    def _predict_resolved(self, prop: Property) -> float:
        log_median = self._log_median(self._matrix(prop), prop)
        return self.scale[prop.negotiation] * float(np.exp(log_median))

    def value(
        self,
        prop: Property,
        *,
        level: float = DEFAULT_LEVEL,
        explain: bool = False,
        comparables: int = 0,
    ) -> Valuation:
        """Value one property: the price and its range at ``level`` (0.5 to 0.95), its price
        per m² against the district's median; the reasons if ``explain``; the ``comparables``
        most similar training listings (0 to 20). Fields of ``prop`` that are ``None`` are
        priced as unknown, and the range is calibrated for the fields that were given.
        """
        return self.value_many([prop], level=level, explain=explain, comparables=comparables)[0]

    def value_many(
        self,
        props: Sequence[Property],
        *,
        level: float = DEFAULT_LEVEL,
        explain: bool = False,
        comparables: int = 0,
    ) -> list[Valuation]:
        """:meth:`value` of each of ``props`` (with the same options), in order, to the bit,
        at a fraction of the cost per property when there are several: their features and
        trees are computed together. ``ValueError`` if any one cannot be valued (see
        :meth:`resolve`): callers that must value the others check each with it first.
        """
        level = ranges.check_level(level)
        if (
            isinstance(comparables, bool)
            or not isinstance(comparables, int)
            or not 0 <= comparables <= MAX_COMPARABLES
        ):
            raise ValueError(
                f"comparables must be a whole number from 0 to {MAX_COMPARABLES}, "
                f"not {comparables!r}"
            )
        resolved = [self.resolve(p) for p in props]
        out: list[Valuation | None] = [None] * len(resolved)
        version, district_price_m2 = self.version, self.builder.district_price_m2
        for n in self.negotiations:
            at = [i for i, p in enumerate(resolved) if p.negotiation == n]
            if not at:
                continue
            group = [resolved[i] for i in at]
            listed = [p.listed for p in group]
            x, log_medians, spreads = self._estimate(group, n, listed)
            calibration, scale = self.calibrations[n], self.scale[n]
            bounds_one = calibration.bounds_one
            for j, i in enumerate(at):
                prop, log_median, spread = group[j], log_medians[j], spreads[j]
                price = scale * float(np.exp(log_median))  # as in the batch path, to the bit
                not_given = prop.not_given
                klass = calibration_class(not_given, listed=listed[j])
                low, high = bounds_one(log_median, spread, price, level, klass)
                row = x[j : j + 1]
                baseline, reasons = self._reasons(prop, row) if explain else (None, None)
                out[i] = Valuation(
                    property=prop,
                    price=price,
                    model_version=version,
                    not_given=not_given,
                    typical=self.typical(prop.size_m2, not_given) if not_given else None,
                    sharpen=sharpen(calibration, spread, level, klass, not_given, scale),
                    location_estimated=prop.latitude is None or prop.longitude is None,
                    price_m2=price / prop.size_m2,
                    district_median_price_m2=district_price_m2(prop.district, n),
                    level=level,
                    price_low=low,
                    price_high=high,
                    baseline=baseline,
                    reasons=reasons,
                    comparables=self._comparables(prop, row, comparables) if comparables else None,
                )
        valued = [v for v in out if v is not None]
        if len(valued) != len(out):  # resolve() lets through only the model's negotiations
            raise RuntimeError("value_many left properties without a valuation")
        return valued

    def _estimate(
        self, props: list[Property], negotiation: str, listed: list[bool]
    ) -> tuple[np.ndarray, list[float], list[float]]:
        """Feature rows, ensemble log-price estimates and raw spread-model outputs of resolved
        ``props`` of one negotiation type (``listed``: each one's :attr:`Property.listed`).

        Below :data:`ROWS_TOGETHER` properties each row is built and run through the trees on
        its own (LightGBM's single-row call); from it on, numpy builds the matrix and LightGBM
        runs all its rows in one call. The two give the same numbers to the bit (tested): the
        choice is only about speed.
        """
        model = self.boosters[negotiation]
        if len(props) < ROWS_TOGETHER:
            members, spread = self._row_models(negotiation)
            x = np.concatenate([self._matrix(p) for p in props])
            spreads = [spread.predict(row) for row in x]
            log_medians = []
            for is_listed, row in zip(listed, x, strict=True):
                route = "" if is_listed else MASKED
                outputs = [[p.predict(row)] for p in members[route]]
                log_medians += model.pick(is_listed).combine(outputs, [float(row[SIZE])])
            return x, log_medians, spreads
        else:
            x = self.builder.matrix(property_columns(props), negotiation=negotiation)
            # One thread, as the single-row call: a server's workers already share the cores.
            # (LightGBM applies num_threads beyond the call, see SingleRowPredictor; as for
            # _reasons, the callers are servers, whose every call wants one thread.)
            spreads = _on_one_thread(self.calibrations[negotiation].spread, x)
        given = np.array(listed, dtype=bool)
        log_medians = [0.0] * len(x)
        for route, ensemble in model.ensembles().items():
            rows = np.flatnonzero(given if route == "" else ~given)
            if not len(rows):
                continue
            sub = x[rows]
            outputs = [_on_one_thread(m, sub) for m in ensemble.members]
            # Combined as the single-row path combines them, so that both give the same bits.
            for i, value in zip(
                rows, ensemble.combine(outputs, sub[:, SIZE].tolist()), strict=True
            ):
                log_medians[i] = value
        return x, log_medians, spreads

    def _reasons(self, prop: Property, x: np.ndarray) -> tuple[float, tuple[Reason, ...]]:
        """The typical apartment's price and what moved this one away from it."""
        contributions = self.boosters[prop.negotiation].predict(
            x, listed=np.array([prop.listed]), pred_contrib=True, num_threads=1
        )
        bias, log_effects = explain.grouped(np.asarray(contributions)[0])
        baseline = self.scale[prop.negotiation] * float(np.exp(bias))
        return baseline, tuple(
            Reason(group, explain.describe(group, prop), pct, brl)
            for group, pct, brl in explain.effects(baseline, log_effects)
        )

    def _comparables(self, prop: Property, x: np.ndarray, k: int) -> tuple[Comparable, ...]:
        index = self.listings.get(prop.negotiation)
        if index is None:
            return ()
        # Fields not given are looked for at what is typical for the size: a search, not a price.
        cols = prop.columns()
        for name, value in self.typical(prop.size_m2, prop.not_given).items():
            cols[name] = np.array([float(value)])
        attrs = comparables.table(cols, np.array([np.nan]), np.array([np.nan]))
        return tuple(
            Comparable(
                **index.describe(match.row, self.builder.districts_),
                distance_km=match.distance_km,
            )
            for match in index.query(x[0, XY], attrs[0], k)
        )

    def estimate_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """``price``, unscaled ``log_median`` and range ``sigma`` for validated listings (see
        :func:`imovsp.data.validate`); districts the model does not know give NaN (use
        :meth:`unknown_districts` to explain them)."""
        known = ~self.unknown_districts(frame)
        rows = frame[known]
        rows = rows.assign(**{data.DISTRICT: [self.district(d) for d in rows[data.DISTRICT]]})
        found = predict.estimate(
            self.builder, self.boosters, self.calibrations, rows, self.metadata["params"]
        )
        out = {k: np.full(len(frame), np.nan) for k in found}
        for k, values in found.items():
            out[k][known] = values
        return out

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Prices for validated listings (NaN for districts the model does not know)."""
        return self.estimate_frame(frame)["price"]

    def range_frame(
        self, frame: pd.DataFrame, *, level: float = DEFAULT_LEVEL
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prices and their ranges at ``level`` (low, high) for validated listings."""
        level = ranges.check_level(level)
        est = self.estimate_frame(frame)
        negotiation = frame[data.NEGOTIATION].to_numpy()
        low, high = predict.bounds(negotiation, est, self.calibrations, level)
        return est["price"], low, high

    def seen(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Which validated listings were among the model's training rows (``None`` for a model
        that does not keep their fingerprints)."""
        if self.fingerprints is None:
            return None
        found: np.ndarray = np.isin(data.fingerprints_unsorted(frame), self.fingerprints)
        return found

    def unknown_districts(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of rows whose district the model does not know."""
        return np.array(
            [data.fold(d) not in self.builder.folded_ for d in frame[data.DISTRICT]], dtype=bool
        )


def _on_one_thread(booster: lgb.Booster, x: np.ndarray) -> list[float]:
    out: list[float] = np.asarray(booster.predict(x, num_threads=1), dtype=np.float64).tolist()
    return out
