"""Shared fixtures: a small synthetic listings file and one model trained on it per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from imovsp import data, training
from imovsp.settings import get_settings
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer

REAL_DATA = Path(__file__).resolve().parents[1] / "../shared/data/sp-apartments-2019-dev.csv"


@pytest.fixture(scope="session", autouse=True)
def prediction_log_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every app a test starts logs its valuations to a throwaway SQLite file, not to the
    default ``imovsp.db`` in the working directory (tests that look at the log set their own),
    and keeps its compiled trees in a throwaway directory."""
    url = f"sqlite:///{tmp_path_factory.mktemp('log') / 'imovsp.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMOVSP_DATABASE_URL", url)
        # Compiled trees too: in the test session's directory, not the user's cache.
        patch.setenv("IMOVSP_TREES_CACHE", str(tmp_path_factory.mktemp("trees")))
        yield


@pytest.fixture(scope="session")
def listings() -> pd.DataFrame:
    return synthetic_listings(2500, seed=7)


@pytest.fixture(scope="session")
def listings_csv(tmp_path_factory: pytest.TempPathFactory, listings: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "listings.csv"
    listings.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(listings_csv: Path) -> training.TrainResult:
    frame, _ = data.load_training_data(listings_csv)
    return training.train(frame, seed=3, folds=3)


@pytest.fixture(scope="session")
def models_dir(
    tmp_path_factory: pytest.TempPathFactory, trained: training.TrainResult, listings_csv: Path
) -> Path:
    """A models directory holding one saved, current model trained on the synthetic file."""
    directory = tmp_path_factory.mktemp("models")
    _, report = data.load_training_data(listings_csv)
    valuer = training.to_valuer(
        trained,
        data_sha256=data.file_sha256(listings_csv),
        data_report=report,
        source=str(listings_csv),
    )
    valuer.save(directory)
    return directory


@pytest.fixture(scope="session")
def valuer(models_dir: Path) -> Valuer:
    return Valuer.load(models_dir / (models_dir / "CURRENT").read_text().strip())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, models_dir: Path, listings_csv: Path) -> None:
    """Settings pointing at the session's synthetic data and models."""
    monkeypatch.setenv("IMOVSP_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("IMOVSP_DATA", str(listings_csv))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_file():
        pytest.skip("the real listings file (../shared/data) is not beside this clone")
    return REAL_DATA.resolve()
