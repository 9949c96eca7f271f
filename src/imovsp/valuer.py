"""The loaded model: everything that answers a question about a property calls a Valuer."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from imovsp import artifact, data
from imovsp.artifact import Artifact, ArtifactError
from imovsp.data import DataReport
from imovsp.features import FeatureBuilder, Property, frame_columns
from imovsp.single_row import SingleRowPredictor
from imovsp.training import TrainResult


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
    distance_km: float
    district: str
    size_m2: float
    rooms: int
    toilets: int
    suites: int
    parking: int
    latitude: float
    longitude: float


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
        self, builder: FeatureBuilder, boosters: Mapping[str, lgb.Booster], metadata: dict[str, Any]
    ) -> None:
        self.builder = builder
        self.boosters = dict(boosters)
        self.metadata = metadata
        self.scale = {n: float(metadata["params"][n]["scale"]) for n in self.boosters}
        self.path: Path | None = None  # the model directory, once saved or loaded
        self.load_seconds: float | None = None
        self._single_row: dict[str, SingleRowPredictor] = {}

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def negotiations(self) -> tuple[str, ...]:
        return tuple(self.boosters)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_training(
        cls, result: TrainResult, *, data_sha256: str, data_report: DataReport, source: str
    ) -> Valuer:
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
            },
            "negotiations": list(result.boosters),
            "feature_schema": feature_meta,
            "target": "log(price)",
            "params": result.params,
            "cv": result.cv,
            "metrics": result.metrics,
        }
        return cls(result.builder, result.boosters, metadata)

    def to_artifact(self) -> Artifact:
        _, arrays = self.builder.state()
        models = {n: b.model_to_string() for n, b in self.boosters.items()}
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
            boosters = {n: lgb.Booster(model_str=text) for n, text in art.models.items()}
        except (KeyError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"{path} cannot be used: {exc}") from None
        for negotiation, booster in boosters.items():
            if booster.feature_name() != meta["feature_schema"]["features"]:
                raise ArtifactError(
                    f"{path}: the {negotiation} model's features differ from its metadata"
                )
        valuer = cls(builder, boosters, meta)
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
        return replace(prop, district=self.builder.resolve_district(prop.district))

    def predict_one(self, prop: Property) -> float:
        """The price of one property (sale price, or monthly rent), in BRL."""
        return self._predict_resolved(self.resolve(prop))

    def _predict_resolved(self, prop: Property) -> float:
        negotiation = prop.negotiation
        x = self.builder.row(prop)
        predictor = self._single_row.get(negotiation)
        if predictor is None:  # set up on first use: training never needs it
            predictor = SingleRowPredictor(self.boosters[negotiation], x.shape[1])
            self._single_row[negotiation] = predictor
        return self.scale[negotiation] * float(np.exp(predictor.predict(x)))

    def value(self, prop: Property, *, defaulted: tuple[str, ...] = ()) -> Valuation:
        """Value one property: the price, its price per m² against the district's median.

        ``defaulted`` names the fields that were filled with typical values (see
        :meth:`FeatureBuilder.complete`), to be reported back.
        """
        prop = self.resolve(prop)
        price = self._predict_resolved(prop)
        return Valuation(
            property=prop,
            price=price,
            model_version=self.version,
            defaulted=tuple(defaulted),
            location_estimated=prop.latitude is None or prop.longitude is None,
            price_m2=price / prop.size_m2,
            district_median_price_m2=self.builder.district_price_m2(
                prop.district, prop.negotiation
            ),
        )

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Prices for validated listings (see :func:`imovsp.data.validate`); districts the model
        does not know give NaN (use :meth:`unknown_districts` to explain them)."""
        cols = frame_columns(frame)
        known = np.array(
            [data.fold(d) in self.builder.folded_ for d in cols["district"]], dtype=bool
        )
        cols["district"] = np.array(
            [self.builder.folded_.get(data.fold(d), "") for d in cols["district"]], dtype=object
        )
        out = np.full(len(frame), np.nan)
        for negotiation, booster in self.boosters.items():
            m = known & (cols["negotiation"] == negotiation)
            if m.any():
                x = self.builder.matrix({k: v[m] for k, v in cols.items()}, negotiation=negotiation)
                out[m] = self.scale[negotiation] * np.exp(booster.predict(x))
        return out

    def unknown_districts(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of rows whose district the model does not know."""
        return np.array(
            [data.fold(d) not in self.builder.folded_ for d in frame[data.DISTRICT]], dtype=bool
        )
