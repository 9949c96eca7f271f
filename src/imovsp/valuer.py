"""The loaded model: everything that answers a question about a property calls a Valuer.

A valuation is the price, its range at the level asked for (see :mod:`imovsp.ranges`), and on
request the reasons (see :mod:`imovsp.explain`) and comparable listings (see
:mod:`imovsp.comparables`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from imovsp import artifact, comparables, data, explain, ranges, training
from imovsp.artifact import Artifact, ArtifactError
from imovsp.comparables import MAX_COMPARABLES, ComparableIndex
from imovsp.data import DataReport
from imovsp.drift import Reference
from imovsp.ensemble import MEMBERS, SIZE, Ensemble, member_names
from imovsp.features import FEATURES, FeatureBuilder, Property, property_columns
from imovsp.ranges import DEFAULT_LEVEL, Calibration
from imovsp.single_row import SingleRowPredictor
from imovsp.training import TrainResult

XY = [FEATURES.index("x_km"), FEATURES.index("y_km")]
# The month of the listings of models saved before the artifact recorded it: all were trained
# on the dev file, whose listings are of April 2019.
DEFAULT_DATA_MONTH = "2019-04"
# From this many properties of one negotiation type valued together, building their features
# and running the trees as one matrix is cheaper than row by row. Per property, valuing 1,536
# sale listings of the dev data in groups of 1 / 4 / 6 / 8 / 64 (dev model, one thread):
# row by row 354 / 306 / 323 / 311 / 266 µs, as one matrix 688 / 387 / 306 / 267 / 175 µs.
ROWS_TOGETHER = 6


@dataclass(frozen=True, slots=True)
class Reason:
    """What moved a price relative to the typical apartment (filled when asked to explain)."""

    feature: str  # e.g. "size_m2", or "location" for the district and coordinates together
    value: str  # the property's value of it, readable, e.g. "130 m²"
    effect_pct: float  # multiplicative effect in percent: +38.0 means x1.38
    effect_brl: float  # the same effect in BRL


@dataclass(frozen=True, slots=True)
class Comparable:
    """A similar listing of the training data (filled when comparables are asked for)."""

    price: float
    price_m2: float
    distance_km: float  # on the map, from the property valued
    district: str
    size_m2: float
    rooms: int
    toilets: int
    suites: int
    parking: int
    latitude: float
    longitude: float
    condo_fee: float | None  # None: not given in the listing
    elevator: bool
    furnished: bool
    swimming_pool: bool
    new: bool


@dataclass(frozen=True, slots=True)
class Valuation:
    """One property valued: the price and everything said about it.

    Optional parts stay ``None`` until asked for (or until the model supports them), so that
    interfaces can render any of them without changing shape.
    """

    property: Property  # as understood: known district spelling, defaults filled in
    price: float  # BRL; a monthly rent for rentals
    model_version: str
    defaulted: tuple[str, ...] = ()
    location_estimated: bool = False
    price_m2: float = 0.0
    district_median_price_m2: float | None = None
    level: float | None = None  # the range's nominal coverage, e.g. 0.8
    price_low: float | None = None
    price_high: float | None = None
    baseline: float | None = None  # the typical apartment's price that reasons start from
    reasons: tuple[Reason, ...] | None = None
    comparables: tuple[Comparable, ...] | None = None


class Valuer:
    """Predicts prices from a trained model. Build with :meth:`load` or :meth:`from_training`."""

    def __init__(
        self,
        builder: FeatureBuilder,
        boosters: Mapping[str, Ensemble],
        metadata: dict[str, Any],
        *,
        calibrations: Mapping[str, Calibration],
        listings: Mapping[str, ComparableIndex],
        reference: Reference | None = None,
    ) -> None:
        self.builder = builder
        self.boosters = dict(boosters)
        self.metadata = metadata
        self.scale = {n: float(metadata["params"][n]["scale"]) for n in self.boosters}
        self.calibrations = dict(calibrations)
        self.listings = dict(listings)  # training listings, for comparables
        # The training distribution, for monitoring (None in models trained before it existed).
        self.reference = reference
        self.path: Path | None = None  # the model directory, once saved or loaded
        self.load_seconds: float | None = None
        # Per negotiation: the ensemble members' and the spread model's single-row predictors.
        self._single_row: dict[str, tuple[list[SingleRowPredictor], SingleRowPredictor]] = {}

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

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_training(
        cls,
        result: TrainResult,
        *,
        data_sha256: str,
        data_report: DataReport,
        source: str,
        data_month: str | None = None,
        price_index: dict[str, Any] | None = None,
    ) -> Valuer:
        """A Valuer of a training run. ``data_month`` (``YYYY-MM``) is the month whose money
        its prices are in (the listings' month, or the base month they were brought to by
        ``price_index``, described as in :meth:`imovsp.price_index.PriceIndex.describe`)."""
        created = datetime.now(UTC).replace(microsecond=0)
        fingerprint = json.dumps([data_sha256, result.params], sort_keys=True, default=str)
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:8]
        feature_meta, _ = result.builder.state()
        metadata = {
            "version": f"{created:%Y%m%dT%H%M%SZ}-{digest}",
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "data": {
                "source": source,
                "sha256": data_sha256,
                "rows": data_report.rows_kept,
                "report": data_report.to_dict(),
                "month": data_month or data_report.base_month or DEFAULT_DATA_MONTH,
                **({"price_index": price_index} if price_index else {}),
            },
            "negotiations": list(result.boosters),
            "feature_schema": feature_meta,
            "target": "log(price)",
            "members": {
                suffix or "tuned": {"target": target, "params": extra, "trees_factor": factor}
                for suffix, extra, factor, target in MEMBERS
            },
            "params": result.params,
            "cv": result.cv,
            "metrics": result.metrics,
            "ranges": {
                "method": "normalised split-conformal on out-of-fold residuals of the train rows"
                " (signed scores: the misses are shared between the two sides)",
                "default_level": DEFAULT_LEVEL,
                "levels": [ranges.MIN_LEVEL, ranges.MAX_LEVEL],
                "sigma_floor": {n: c.floor for n, c in result.calibrations.items()},
                "typical_sigma": {n: c.typical_sigma for n, c in result.calibrations.items()},
            },
        }
        if result.reference is not None:
            metadata["reference"] = result.reference.state()[0]
        return cls(
            result.builder,
            result.boosters,
            metadata,
            calibrations=result.calibrations,
            listings=result.comparables,
            reference=result.reference,
        )

    def to_artifact(self) -> Artifact:
        _, arrays = self.builder.state()
        arrays.update(comparables.state(self.listings))
        if self.reference is not None:
            arrays.update(self.reference.state()[1])
        models = {
            name: member.model_to_string()
            for n, model in self.boosters.items()
            for name, member in zip(member_names(n), model.members, strict=True)
        }
        for n, calibration in self.calibrations.items():
            models[f"{n}-spread"] = calibration.spread.model_to_string()
            # "signed": models saved before the ranges were asymmetric had |r| / sigma under
            # another name (they lack features of today's models and are refused at load).
            arrays[f"{n}_range_signed_scores"] = calibration.scores
        return Artifact(metadata=self.metadata, models=models, arrays=arrays)

    def save(self, models_dir: Path, *, make_current: bool = True) -> Path:
        art = self.to_artifact()
        self.path = artifact.save(art, models_dir, make_current=make_current)
        self.metadata = art.metadata
        return self.path

    @classmethod
    def load(cls, path: Path) -> Valuer:
        """Load a model directory, refusing (``ArtifactError``) anything it cannot trust."""
        started = time.perf_counter()
        art = artifact.load(path)
        meta = art.metadata
        try:
            builder = FeatureBuilder.from_state(meta["feature_schema"], art.arrays)
            models = {n: lgb.Booster(model_str=text) for n, text in art.models.items()}
            negotiations = meta["negotiations"]
            missing = [f"{n}-spread" for n in negotiations if f"{n}-spread" not in models]
            if missing:
                raise ArtifactError(f"{path} has no range model {', '.join(missing)}")
            calibrations = {
                n: _calibration(models[f"{n}-spread"], meta["ranges"], art.arrays, n)
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
        absent = [m for n in negotiations for m in member_names(n) if m not in models]
        if absent:
            raise ArtifactError(f"{path} has no model {', '.join(absent)}")
        try:
            boosters = {
                n: Ensemble(
                    [models[m] for m in member_names(n)],
                    log_size_mean=float(meta["params"][n]["log_size_mean"]),
                )
                for n in negotiations
            }
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
        )
        valuer.path = path
        valuer.load_seconds = time.perf_counter() - started
        return valuer

    # -- predicting -------------------------------------------------------------------------

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

    def _matrix(self, prop: Property) -> np.ndarray:
        return self.builder.row(prop)

    def predict_one(self, prop: Property) -> float:
        """The price of one property (sale price, or monthly rent), in BRL."""
        return self._predict_resolved(self.resolve(prop))

    def _row_models(self, negotiation: str) -> tuple[list[SingleRowPredictor], SingleRowPredictor]:
        """LightGBM's single-row C API for the ensemble and the spread model of ``negotiation``
        (set up on first use: training never needs it)."""
        found = self._single_row.get(negotiation)
        if found is None:
            n = len(FEATURES)
            members = [SingleRowPredictor(m, n) for m in self.boosters[negotiation].members]
            spread = SingleRowPredictor(self.calibrations[negotiation].spread, n)
            found = self._single_row[negotiation] = (members, spread)
        return found

    def _log_median(self, x: np.ndarray, negotiation: str) -> float:
        """The ensemble's log-price estimate for one feature row."""
        members, _ = self._row_models(negotiation)
        outputs = [[p.predict(x)] for p in members]
        return self.boosters[negotiation].combine(outputs, [float(x[0, SIZE])])[0]

    def _predict_resolved(self, prop: Property) -> float:
        log_median = self._log_median(self._matrix(prop), prop.negotiation)
        return self.scale[prop.negotiation] * float(np.exp(log_median))

    def value(
        self,
        prop: Property,
        *,
        defaulted: tuple[str, ...] = (),
        level: float = DEFAULT_LEVEL,
        explain: bool = False,
        comparables: int = 0,
    ) -> Valuation:
        """Value one property: the price and its range at ``level`` (0.5 to 0.95), its price
        per m² against the district's median; the reasons if ``explain``; the ``comparables``
        most similar training listings (0 to 20).

        ``defaulted`` names the fields that were filled with typical values (see
        :meth:`FeatureBuilder.complete`), to be reported back.
        """
        return self.value_many(
            [prop], defaulted=[defaulted], level=level, explain=explain, comparables=comparables
        )[0]

    def value_many(
        self,
        props: Sequence[Property],
        *,
        defaulted: Sequence[tuple[str, ...]] | None = None,
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
        if defaulted is None:
            defaulted = [()] * len(props)
        elif len(defaulted) != len(props):
            raise ValueError(f"{len(defaulted)} defaulted field lists for {len(props)} properties")
        resolved = [self.resolve(p) for p in props]
        out: list[Valuation | None] = [None] * len(resolved)
        for n in self.negotiations:
            at = [i for i, p in enumerate(resolved) if p.negotiation == n]
            if not at:
                continue
            group = [resolved[i] for i in at]
            x, log_medians, spreads = self._estimate(group, n)
            calibration, scale = self.calibrations[n], self.scale[n]
            for j, i in enumerate(at):
                prop, row = group[j], x[j : j + 1]
                price = scale * float(np.exp(log_medians[j]))  # as in the batch path, to the bit
                low, high = calibration.bounds_one(log_medians[j], spreads[j], price, level)
                baseline, reasons = self._reasons(prop, row) if explain else (None, None)
                out[i] = Valuation(
                    property=prop,
                    price=price,
                    model_version=self.version,
                    defaulted=tuple(defaulted[i]),
                    location_estimated=prop.latitude is None or prop.longitude is None,
                    price_m2=price / prop.size_m2,
                    district_median_price_m2=self.builder.district_price_m2(prop.district, n),
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
        self, props: list[Property], negotiation: str
    ) -> tuple[np.ndarray, list[float], list[float]]:
        """Feature rows, ensemble log-price estimates and raw spread-model outputs of resolved
        ``props`` of one negotiation type.

        Below :data:`ROWS_TOGETHER` properties each row is built and run through the trees on
        its own (LightGBM's single-row call); from it on, numpy builds the matrix and LightGBM
        runs all its rows in one call. The two give the same numbers to the bit (tested): the
        choice is only about speed.
        """
        if len(props) < ROWS_TOGETHER:
            members, spread = self._row_models(negotiation)
            x = np.concatenate([self._matrix(p) for p in props])
            outputs = [[p.predict(row) for row in x] for p in members]
            spreads = [spread.predict(row) for row in x]
        else:
            x = self.builder.matrix(property_columns(props), negotiation=negotiation)
            # One thread, as the single-row call: a server's workers already share the cores.
            # (LightGBM applies num_threads beyond the call, see SingleRowPredictor; as for
            # _reasons, the callers are servers, whose every call wants one thread.)
            outputs = [_on_one_thread(m, x) for m in self.boosters[negotiation].members]
            spreads = _on_one_thread(self.calibrations[negotiation].spread, x)
        # Combined as the single-row path combines them, so that both give the same bits.
        log_medians = self.boosters[negotiation].combine(outputs, x[:, SIZE].tolist())
        return x, log_medians, spreads

    def _reasons(self, prop: Property, x: np.ndarray) -> tuple[float, tuple[Reason, ...]]:
        """The typical apartment's price and what moved this one away from it."""
        contributions = self.boosters[prop.negotiation].predict(x, pred_contrib=True, num_threads=1)
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
        attrs = comparables.table(prop.columns(), np.array([np.nan]), np.array([np.nan]))
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
        rows = rows.assign(
            **{data.DISTRICT: [self.builder.folded_[data.fold(d)] for d in rows[data.DISTRICT]]}
        )
        found = training.estimate(
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
        low, high = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
        negotiation = frame[data.NEGOTIATION].to_numpy()
        for n, calibration in self.calibrations.items():
            m = (negotiation == n) & np.isfinite(est["price"])
            low[m], high[m] = calibration.bounds(
                est["log_median"][m], est["sigma"][m], est["price"][m], level
            )
        return est["price"], low, high

    def unknown_districts(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of rows whose district the model does not know."""
        return np.array(
            [data.fold(d) not in self.builder.folded_ for d in frame[data.DISTRICT]], dtype=bool
        )


def _on_one_thread(booster: lgb.Booster, x: np.ndarray) -> list[float]:
    out: list[float] = np.asarray(booster.predict(x, num_threads=1), dtype=np.float64).tolist()
    return out


def _calibration(
    spread: lgb.Booster, meta: dict[str, Any], arrays: Mapping[str, np.ndarray], negotiation: str
) -> Calibration:
    """The range calibration of ``negotiation`` as saved."""
    return Calibration(
        spread,
        np.asarray(arrays[f"{negotiation}_range_signed_scores"], dtype=float),
        float(meta["sigma_floor"][negotiation]),
        float(meta["typical_sigma"][negotiation]),
    )
