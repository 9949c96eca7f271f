"""One settings object, read from ``IMOVSP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The development setup keeps the data beside the clone, in ../shared (see README).
DEV_DATA = Path("../shared/data/sp-apartments-2019-dev.csv")


class Settings(BaseSettings):
    """imovsp's configuration; every field can be set as ``IMOVSP_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="IMOVSP_", extra="ignore")

    data: Path = Field(DEV_DATA, description="Training listings CSV (raw published schema).")
    models_dir: Path = Field(Path("models"), description="Where versioned models are kept.")
    model: Path | None = Field(
        None, description="A model directory or version to use instead of the current one."
    )
    seed: int = Field(42, description="Random seed for splits and training.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
