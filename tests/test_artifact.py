"""The artifact loads what it saved, and refuses what it cannot trust."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from imovsp import artifact, data
from imovsp.artifact import ArtifactError
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer


@pytest.fixture
def model_copy(tmp_path: Path, valuer: Valuer) -> Path:
    assert valuer.metadata
    assert valuer.version
    target = tmp_path / valuer.version
    assert valuer.path is not None
    shutil.copytree(valuer.path, target)
    return target


def test_saved_model_loads_and_predicts_the_same(valuer: Valuer, model_copy: Path) -> None:
    frame = data.validate(synthetic_listings(30, seed=21).astype(str), require_price=False).frame
    again = Valuer.load(model_copy)
    np.testing.assert_array_equal(again.predict_frame(frame), valuer.predict_frame(frame))
    assert again.version == valuer.version


def test_artifact_holds_no_pickle_and_lists_checksums(model_copy: Path) -> None:
    meta = json.loads((model_copy / "metadata.json").read_text())
    names = {p.name for p in model_copy.iterdir()}
    assert names == {"metadata.json", *meta["files"]}
    assert {"model-sale.txt.gz", "model-rent.txt.gz", "arrays.npz"} <= names
    assert {"model-sale-spread.txt.gz", "model-rent-spread.txt.gz"} <= names
    assert meta["models"] == [
        "sale",
        "sale-extra",
        "sale-per-area",
        "sale-masked",  # the ensemble of partial descriptions (see imovsp.ensemble.Routed)
        "sale-masked-extra",
        "sale-masked-per-area",
        "rent",
        "rent-extra",
        "rent-per-area",
        "rent-masked",
        "rent-masked-extra",
        "rent-masked-per-area",
        "sale-spread",
        "rent-spread",
    ]
    assert "model-sale-extra.txt.gz" in names
    for name in names:
        assert not name.endswith((".pkl", ".pickle", ".joblib"))
    with np.load(model_copy / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    for key in (
        "version",
        "created_at",
        "data",
        "feature_schema",
        "params",
        "metrics",
        "libraries",
        "schema_version",
    ):
        assert key in meta
    assert meta["data"]["sha256"]
    assert meta["data"]["rows"] > 0
    assert set(meta["libraries"]) >= {"python", "lightgbm", "numpy"}


def test_tampered_model_file_is_refused(model_copy: Path) -> None:
    model = model_copy / "model-sale.txt.gz"
    text = gzip.decompress(model.read_bytes()).decode()
    model.write_bytes(gzip.compress(text.replace("shrinkage=", "shrinkage=9", 1).encode()))
    with pytest.raises(
        ArtifactError, match=re.escape("model-sale.txt.gz does not match its checksum")
    ):
        Valuer.load(model_copy)


def test_model_file_that_does_not_unpack_is_refused(model_copy: Path) -> None:
    # Written broken (its checksum taken after): refused as corrupt, not a crash in gzip.
    model = model_copy / "model-sale.txt.gz"
    model.write_bytes(b"not gzip")
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["files"][model.name] = hashlib.sha256(b"not gzip").hexdigest()
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=re.escape(f"{model} is corrupt")):
        Valuer.load(model_copy)


def test_tampered_spread_model_is_refused(model_copy: Path) -> None:
    model = model_copy / "model-rent-spread.txt.gz"
    model.write_bytes(model.read_bytes() + b"\n")
    with pytest.raises(
        ArtifactError, match=re.escape("model-rent-spread.txt.gz does not match its checksum")
    ):
        Valuer.load(model_copy)


def test_metadata_without_its_model_list_is_refused(model_copy: Path) -> None:
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["models"] = ["sale", "../../etc/passwd"]
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=re.escape("has no valid list of models")):
        Valuer.load(model_copy)


def test_metadata_without_the_mean_log_size_is_refused(model_copy: Path) -> None:
    # The per-area member's reasons need it: refused up front, not a KeyError on a valuation.
    meta = json.loads((model_copy / "metadata.json").read_text())
    del meta["params"]["rent"]["log_size_mean"]
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=re.escape("no usable log_size_mean")):
        Valuer.load(model_copy)


def test_unlisted_spread_model_is_refused(model_copy: Path) -> None:
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["models"].remove("sale-spread")
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=re.escape("has no range model sale-spread")):
        Valuer.load(model_copy)


def test_model_of_an_imovsp_with_other_features_is_refused_with_what_differs(
    model_copy: Path,
) -> None:
    meta = json.loads((model_copy / "metadata.json").read_text())
    features = meta["feature_schema"]["features"]
    features.remove("x_rot30_km")  # as saved by an imovsp without the turned axes, say
    features.append("old_feature")
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    message = (
        "it was trained by another version of imovsp, with other features (it lacks "
        "x_rot30_km; it has old_feature, no longer used): train a new model with `imovsp train`"
    )
    with pytest.raises(ArtifactError, match=re.escape(message)):
        Valuer.load(model_copy)


def test_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy / "arrays.npz").unlink()
    with pytest.raises(ArtifactError, match=re.escape("incomplete: arrays.npz is missing")):
        Valuer.load(model_copy)


def test_corrupt_metadata_is_refused(model_copy: Path) -> None:
    (model_copy / "metadata.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=re.escape("metadata.json is corrupt")):
        Valuer.load(model_copy)


def test_missing_metadata_is_refused(model_copy: Path) -> None:
    (model_copy / "metadata.json").unlink()
    with pytest.raises(ArtifactError, match=re.escape("not a model: metadata.json is missing")):
        Valuer.load(model_copy)


def _edit_metadata(path: Path, **changes: object) -> None:
    meta = json.loads((path / "metadata.json").read_text())
    for key, value in changes.items():
        if key == "lightgbm":
            meta["libraries"]["lightgbm"] = value
        else:
            meta[key] = value
    (path / "metadata.json").write_text(json.dumps(meta))


def test_unknown_schema_version_is_refused(model_copy: Path) -> None:
    _edit_metadata(model_copy, schema_version=99)
    with pytest.raises(
        ArtifactError,
        match=re.escape(f"schema version 99; this imovsp reads version {artifact.SCHEMA_VERSION}"),
    ):
        Valuer.load(model_copy)


def test_incompatible_lightgbm_is_refused(model_copy: Path) -> None:
    _edit_metadata(model_copy, lightgbm="3.3.5")
    with pytest.raises(ArtifactError, match=re.escape("trained with LightGBM 3.3.5")):
        Valuer.load(model_copy)


def test_file_outside_the_directory_is_refused(model_copy: Path) -> None:
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["files"]["../evil.txt"] = "0" * 64
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=re.escape("evil.txt is missing")):
        Valuer.load(model_copy)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=re.escape("no model directory")):
        Valuer.load(tmp_path / "nothing")


def test_current_pointer_and_versions(models_dir: Path, valuer: Valuer) -> None:
    assert artifact.versions(models_dir) == [valuer.version]
    assert artifact.current_version(models_dir) == valuer.version
    assert artifact.resolve(None, models_dir) == models_dir / valuer.version
    assert artifact.resolve(Path(valuer.version), models_dir) == models_dir / valuer.version
    with pytest.raises(ArtifactError, match=re.escape("no model version nope")):
        artifact.set_current(models_dir, "nope")


def test_artifact_is_small(model_copy: Path) -> None:
    size = sum(p.stat().st_size for p in model_copy.iterdir())
    assert size < 10 * 1024 * 1024
