"""Compiled trees (imovsp.compiled) give LightGBM's numbers to the bit, or are not used."""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from imovsp import artifact, compiled, data
from imovsp.compiled import CompiledBooster, check_rows
from imovsp.features import column_properties, frame_columns
from imovsp.server.app import load_model
from imovsp.settings import Settings
from imovsp.single_row import predictor
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer


@pytest.fixture(scope="module")
def model_path(models_dir: Path) -> Path:
    return models_dir / (models_dir / "CURRENT").read_text().strip()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trees")


@pytest.fixture(scope="module")
def fast(model_path: Path, cache: Path) -> Valuer:
    return Valuer.load(model_path, trees_cache=cache)


def boosters_of(valuer: Valuer) -> dict[tuple[str, str], lgb.Booster]:
    """Every booster of ``valuer`` by (negotiation, which)."""
    found = {}
    for negotiation, routed in valuer.boosters.items():
        for route, ensemble in routed.ensembles().items():
            for i, member in enumerate(ensemble.members):
                found[negotiation, f"{route or 'listed'} {i}"] = member
        found[negotiation, "spread"] = valuer.calibrations[negotiation].spread
    return found


def listing_rows(valuer: Valuer, negotiation: str) -> np.ndarray:
    raw = synthetic_listings(400, seed=11).astype(str)
    raw.loc[::3, ["Toilets", "Suites", "Condo"]] = ""
    raw.loc[1::4, ["Latitude", "Longitude"]] = ""
    frame = data.validate(raw, require_price=False).frame
    rows = frame[frame[data.NEGOTIATION] == negotiation]
    return valuer.builder.matrix(frame_columns(rows), negotiation=negotiation)


def test_every_booster_is_compiled_and_gives_lightgbms_outputs_to_the_bit(
    valuer: Valuer, fast: Valuer
) -> None:
    plain, compiled_ = boosters_of(valuer), boosters_of(fast)
    assert all(isinstance(b, CompiledBooster) for b in compiled_.values())
    assert not any(isinstance(b, CompiledBooster) for b in plain.values())
    assert len(compiled_) == 14
    for (negotiation, which), booster in compiled_.items():
        x = np.concatenate([listing_rows(valuer, negotiation), check_rows(booster.num_feature())])
        expected = plain[negotiation, which].predict(x, num_threads=1)
        np.testing.assert_array_equal(booster.predict(x), expected, err_msg=which)
        np.testing.assert_array_equal(booster.predict(x, num_threads=1), expected)
        one = predictor(booster, x.shape[1])
        assert not isinstance(one, type(predictor(plain[negotiation, which], x.shape[1])))
        np.testing.assert_array_equal([one.predict(row) for row in x[:50]], expected[:50])


def test_anything_but_plain_predictions_is_lightgbms(valuer: Valuer, fast: Valuer) -> None:
    booster = fast.boosters["sale"].listed.members[0]
    x = listing_rows(valuer, "sale")
    contributions = booster.predict(x, pred_contrib=True)
    np.testing.assert_array_equal(
        contributions, valuer.boosters["sale"].listed.members[0].predict(x, pred_contrib=True)
    )
    np.testing.assert_allclose(contributions.sum(axis=1), booster.predict(x), rtol=1e-12)


def test_valuations_are_the_same_with_compiled_trees(valuer: Valuer, fast: Valuer) -> None:
    raw = synthetic_listings(60, seed=4).astype(str)
    raw.loc[::2, ["Toilets", "Suites", "Latitude", "Longitude"]] = ""
    frame = data.validate(raw, require_price=False).frame
    props = [valuer.resolve(p) for p in column_properties(frame_columns(frame))]
    together = (valuer.value_many(props, comparables=3), fast.value_many(props, comparables=3))
    assert [astuple(v) for v in together[0]] == [astuple(v) for v in together[1]]
    for prop in props[:5]:  # one at a time: the single-row path, with reasons
        assert astuple(valuer.value(prop, explain=True)) == astuple(fast.value(prop, explain=True))


def test_a_second_load_takes_the_trees_from_the_cache(
    model_path: Path, cache: Path, fast: Valuer
) -> None:
    libraries = {p: p.stat().st_mtime_ns for p in cache.glob("*.so")}
    assert len(libraries) == 14
    assert compiled.warm(artifact.load(model_path).models, cache) == 0
    again = Valuer.load(model_path, trees_cache=cache)
    assert all(isinstance(b, CompiledBooster) for b in boosters_of(again).values())
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.so")} == libraries


def test_a_damaged_library_is_compiled_again(model_path: Path, tmp_path: Path) -> None:
    name, text = "sale-spread", artifact.load(model_path).models["sale-spread"]
    compiled.boosters({name: text}, tmp_path)
    (library,) = tmp_path.glob("*.so")
    damaged = bytearray(library.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    # A new file in its place (as a disk error would leave it): this process has the library
    # loaded, and writing into a loaded library changes the code it runs.
    (tmp_path / "damaged").write_bytes(bytes(damaged))
    (tmp_path / "damaged").replace(library)
    assert not compiled.cached(library)
    booster = compiled.boosters({name: text}, tmp_path)[name]
    assert isinstance(booster, CompiledBooster)
    assert library.read_bytes() != bytes(damaged)  # compiled again, not loaded
    rows = check_rows(booster.num_feature())
    np.testing.assert_array_equal(booster.predict(rows), lgb.Booster(model_str=text).predict(rows))


def lightgbm_runs(
    model_path: Path, name: str, cache: Path, caplog: pytest.LogCaptureFixture
) -> str:
    """Load booster ``name`` of the model with compiled trees in ``cache``; check that it is
    LightGBM's own and return what was logged."""
    texts = {name: artifact.load(model_path).models[name]}
    with caplog.at_level(logging.WARNING, logger="imovsp.compiled"):
        booster = compiled.boosters(texts, cache)[name]
    assert type(booster) is lgb.Booster
    return caplog.text


def test_trees_that_differ_in_a_bit_are_run_by_lightgbm(
    model_path: Path,
    cache: Path,
    fast: Valuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exact = compiled.CompiledTrees.predict

    def off_by_a_bit(self: compiled.CompiledTrees, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.nextafter(exact(self, x), np.inf)
        return out

    monkeypatch.setattr(compiled.CompiledTrees, "predict", off_by_a_bit)
    assert "trees_differ" in lightgbm_runs(model_path, "sale", cache, caplog)


def test_without_a_linker_lightgbm_runs_the_trees(
    model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ld on it (the compiling process inherits it)
    logged = lightgbm_runs(model_path, "rent-spread", tmp_path / "trees", caplog)
    assert "no linker (`ld`, Debian's binutils)" in logged


def test_where_no_process_can_start_lightgbm_runs_the_trees(
    model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_processes(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")  # as multiprocessing without /dev/shm

    monkeypatch.setattr(compiled, "ProcessPoolExecutor", no_processes)
    assert "Function not implemented" in lightgbm_runs(model_path, "sale-spread", tmp_path, caplog)


def test_warm_compiles_what_is_missing_once(model_path: Path, tmp_path: Path) -> None:
    texts = artifact.load(model_path).models
    two = {k: texts[k] for k in ("sale-spread", "rent-spread")}
    said: list[str] = []
    assert compiled.warm(two, tmp_path, said.append, jobs=2) == 2
    assert said[0].startswith("compiling the model's trees to machine code (2 boosters")
    assert said[-1].startswith("  2/2 compiled")
    assert len(list(tmp_path.glob("*.so"))) == 2
    assert compiled.warm(two, tmp_path, said.append) == 0


def test_settings_name_the_cache_or_turn_it_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("IMOVSP_TREES_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Settings().trees_dir() == tmp_path / "imovsp" / "trees"
    assert Settings(trees_cache=tmp_path / "t").trees_dir() == tmp_path / "t"
    assert Settings(compiled_trees=False, trees_cache=tmp_path / "t").trees_dir() is None


def test_the_server_loads_compiled_trees(env: None, cache: Path) -> None:
    served = load_model(Settings(trees_cache=cache))
    assert all(isinstance(b, CompiledBooster) for b in boosters_of(served).values())
    plain = load_model(Settings(compiled_trees=False))
    assert not any(isinstance(b, CompiledBooster) for b in boosters_of(plain).values())
