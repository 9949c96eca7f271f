"""One settings object, read from ``IMOVSP_*`` environment variables."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imovsp.price_index import PriceIndex, parse_month
from imovsp.price_index import load as load_index

# The development setup keeps the data beside the clone, in ../shared (see README).
DEV_DATA = Path("../shared/data/sp-apartments-2019-dev.csv")
DATABASE_URL = re.compile(r"^(sqlite|postgres|postgresql)(\+[a-z0-9_]+)?://")


class Settings(BaseSettings):
    """imovsp's configuration; every field can be set as ``IMOVSP_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="IMOVSP_", extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    data: Path = Field(DEV_DATA, description="Training listings CSV (raw published schema).")
    models_dir: Path = Field(Path("models"), description="Where versioned models are kept.")
    model: Path | None = Field(
        None, description="A model directory or version to use instead of the current one."
    )
    seed: int = Field(42, description="Random seed for splits and training.")
    data_month: str = Field(
        "2019-04",
        description="Month (YYYY-MM) of the training listings that have no Month column "
        "(the dev file's listings are of April 2019).",
    )
    price_index: Path | None = Field(
        None,
        description="A price index CSV with the columns of the shipped FipeZAP file, to use "
        "instead of it (e.g. with newer months); refused at start if malformed or incomplete.",
    )

    @field_validator("data_month")
    @classmethod
    def _a_month(cls, value: str) -> str:
        year, month = parse_month(value)
        return f"{year}-{month:02d}"

    @field_validator("price_index")
    @classmethod
    def _a_usable_index(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_index(value)  # refused here, at start, rather than half used later
        return value

    def trees_dir(self) -> Path | None:
        """Where the server's compiled trees are kept; ``None`` if they are turned off."""
        if not self.compiled_trees:
            return None
        if self.trees_cache is not None:
            return self.trees_cache
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imovsp/trees"

    def index(self) -> PriceIndex:
        """The price index in use: ``price_index`` if set, else the shipped one."""
        return load_index(self.price_index)

    # -- the HTTP service (`imovsp serve`) ---------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `imovsp serve` listens on.")
    # PaaS platforms (Heroku and the like) say where to listen with PORT and how many
    # processes to run with WEB_CONCURRENCY; the IMOVSP_ names win when both are set.
    port: int = Field(
        8000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("IMOVSP_PORT", "PORT"),
        description="TCP port of the HTTP service (also read from PORT).",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("IMOVSP_WORKERS", "WEB_CONCURRENCY"),
        description="Server processes (also read from WEB_CONCURRENCY).",
    )
    batch_max_items: int = Field(
        1000, ge=1, le=100_000, description="Most properties one batch request may hold."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted, in bytes (else 413)."
    )
    graceful_timeout: float = Field(
        25.0,
        ge=0,
        description="Seconds that requests in flight get to finish after SIGTERM.",
    )
    worker_timeout: int = Field(
        60,
        ge=1,
        description=(
            "Seconds a worker may take to start, or to answer the supervisor's health check, "
            "before it is replaced (workers import the scientific stack and load the model)."
        ),
    )
    access_log: bool = Field(True, description="Write one JSON line per request to stdout.")
    compiled_trees: bool = Field(
        True,
        description="Serve with the model's trees compiled to machine code (lleaves, linked by "
        "binutils' ld): the same numbers as LightGBM's, ~3x faster. Compiled once per model and "
        "machine (~45 s with 1 worker, ~25 s with 2), into trees_cache; without ld LightGBM runs "
        "them.",
    )
    trees_cache: Path | None = Field(
        None,
        description="Where compiled trees are kept (default: $XDG_CACHE_HOME/imovsp/trees, "
        "else ~/.cache/imovsp/trees). It holds machine code that the server runs: keep it "
        "writable only by the account that runs imovsp.",
    )

    # -- the prediction log and monitoring (see imovsp.monitoring) -----------------------------
    database_url: str = Field(
        "sqlite:///imovsp.db",
        min_length=1,
        description="SQLAlchemy URL of the prediction log: a SQLite file (relative to the "
        "working directory) or postgresql://user:password@host/db.",
    )
    prediction_log: bool = Field(True, description="Record every valuation served.")
    # ~2 KB each (measured on 20,000 batch valuations): 10,000 is ~20 MB of a worker's 250.
    log_buffer_size: int = Field(
        10_000, ge=100, description="Valuations held in memory awaiting the database at most."
    )
    log_batch_size: int = Field(500, ge=1, description="Valuations written per statement.")
    log_flush_seconds: float = Field(
        0.5, gt=0, le=60, description="Longest a valuation waits in memory before its write."
    )
    log_retries: int = Field(
        5, ge=0, le=20, description="Failed writes (with growing pauses) before records drop."
    )
    log_shutdown_seconds: float = Field(
        10.0, ge=0, description="Time that writing the last records gets at shutdown."
    )
    psi_alert: float = Field(
        0.25, gt=0, description="`imovsp monitor` alerts at a PSI above this, for any variable."
    )
    mape_alert_ratio: float = Field(
        1.5, gt=1, description="...and at a live MAPE above this times the model card's."
    )
    coverage_alert: float = Field(
        10.0, gt=0, le=100, description="...or range coverage this many points under nominal."
    )
    monitor_min_valuations: int = Field(
        100, ge=1, description="Valuations of one type needed before drift is judged."
    )
    monitor_min_feedback: int = Field(
        30, ge=1, description="Feedback records of one type needed before error is judged."
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        if not DATABASE_URL.match(url):
            raise ValueError("use sqlite:///FILE or postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        return url

    # -- operations: model reloads and abuse limits (see the README's operations section) ---
    admin_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token that `POST /admin/reload` requires (16 characters or more); "
            "unset: that endpoint is disabled."
        ),
    )
    reload_interval: float = Field(
        0.0,
        ge=0,
        description=(
            "Seconds between checks of the models directory's CURRENT by each worker, which "
            "then serves the new current model; 0: only on SIGHUP or POST /admin/reload."
        ),
    )
    rate_limit: str | None = Field(
        None,
        description=(
            "Requests one client (IP address) may make, e.g. `100/minute` or "
            "`10/second;300/minute`; more get 429 with Retry-After. Counted by each worker "
            "process. Unset: no limit."
        ),
    )

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the admin token must be 16 characters or more")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from limits import parse_many  # only when a limit is set

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. 100/minute or 10/second;300/minute"
            ) from None
        return value.strip()


def variable_names(field: str) -> str:
    """The environment variable(s) that set a field, as a message would name them."""
    info = Settings.model_fields.get(field.lower().removeprefix("imovsp_"))
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return " or ".join(str(c) for c in info.validation_alias.choices)
    return f"IMOVSP_{field.upper().removeprefix('IMOVSP_')}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
