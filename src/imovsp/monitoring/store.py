"""The prediction log's tables and every query on them (SQLAlchemy Core).

A SQLite file by default; PostgreSQL when the URL says so (``postgresql://`` URLs are served by
psycopg 3). The schema is created and changed only by the Alembic migrations in ``migrations/``,
which ship inside the package: :meth:`Store.upgrade` runs them (``imovsp db upgrade``, and the
service at start). Times are stored in UTC, without a zone.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

MIGRATIONS = "imovsp.monitoring:migrations"
KINDS = {"sold": "sale", "rented": "rent", "listed": None}  # feedback kind -> negotiation
PRUNE_BATCH = 5000  # valuations deleted per transaction by ``imovsp db prune``

metadata = sa.MetaData()
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

valuations = sa.Table(
    "valuations",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("item_index", sa.Integer(), nullable=True, comment="position in a batch request"),
    sa.Column("source", sa.String(16), nullable=False, comment="api, batch, web or legacy"),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    # The property as valued: the district as the model spells it, null for a field not given.
    sa.Column("negotiation", sa.String(8), nullable=False),
    sa.Column("district", sa.String(80), nullable=False),
    sa.Column("size_m2", sa.Float(), nullable=False),
    sa.Column("rooms", sa.Integer(), nullable=True),
    sa.Column("toilets", sa.Integer(), nullable=True),
    sa.Column("suites", sa.Integer(), nullable=True),
    sa.Column("parking", sa.Integer(), nullable=True),
    sa.Column("condo_fee", sa.Float(), nullable=True),
    sa.Column("elevator", sa.Boolean(), nullable=True),
    sa.Column("furnished", sa.Boolean(), nullable=True),
    sa.Column("swimming_pool", sa.Boolean(), nullable=True),
    sa.Column("new", sa.Boolean(), nullable=True),
    sa.Column("latitude", sa.Float(), nullable=True),
    sa.Column("longitude", sa.Float(), nullable=True),
    sa.Column("given", sa.JSON(), nullable=False, comment="the fields as the client sent them"),
    sa.Column(
        "defaulted", sa.JSON(), nullable=False, comment="fields not given, priced as unknown"
    ),
    sa.Column("location_estimated", sa.Boolean(), nullable=False),
    # The answer (unrounded; responses round it).
    sa.Column("price", sa.Float(), nullable=False),
    sa.Column("price_low", sa.Float(), nullable=True),
    sa.Column("price_high", sa.Float(), nullable=True),
    sa.Column("level", sa.Float(), nullable=True),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    # The money the answer was shown in: the prices above are in the model's month (drift is
    # measured there); the client saw them times index_factor (feedback is compared with that).
    sa.Column(
        "as_of",
        sa.String(7),
        nullable=True,
        comment="the month (YYYY-MM) whose money the answer was shown in",
    ),
    sa.Column(
        "index_factor",
        sa.Float(),
        nullable=False,
        server_default="1.0",
        comment="the shown price over the logged one (1: the model's month)",
    ),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column(
        "valuation_id",
        Id,
        sa.ForeignKey("valuations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("actual_price", sa.Float(), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.CheckConstraint("kind IN ('sold', 'rented', 'listed')", name="feedback_kind"),
    sa.CheckConstraint("actual_price > 0", name="feedback_actual_price_positive"),
)


INSERTED = tuple(c.name for c in valuations.columns if c.name != "id")
_inserted = operator.itemgetter(*INSERTED)
_JSON_AT = [i for i, c in enumerate(INSERTED) if isinstance(valuations.c[c].type, sa.JSON)]
_TIME_AT = INSERTED.index("created_at")


class DatabaseURLError(ValueError):
    """A database URL that cannot be used; the message says why."""


def database_url(url: str) -> URL:
    """``url`` parsed, with PostgreSQL routed to psycopg 3 (``postgres://`` accepted too)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(
            f"IMOVSP_DATABASE_URL {url!r} is not a database URL: use e.g. sqlite:///imovsp.db "
            "or postgresql://user:password@host:5432/imovsp"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseURLError(
            f"IMOVSP_DATABASE_URL: {backend!r} databases are not supported; use sqlite or "
            "postgresql"
        )
    return parsed


def shown(url: str | URL) -> str:
    """The URL as logs and messages may show it: no password."""
    try:
        return database_url(str(url) if isinstance(url, URL) else url).render_as_string(
            hide_password=True
        )
    except DatabaseURLError:
        return "(invalid URL)"


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets the monitor read while workers write; busy_timeout lets several worker
    # processes take turns writing instead of failing at once. synchronous=NORMAL, SQLite's
    # advice with WAL: no fsync at each commit, only at checkpoints. A crash of imovsp loses
    # nothing written; a power cut may lose the last commits, as it loses the half second of
    # valuations the writer holds in memory anyway. Served valuations/s: +1.3% (session 14).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def json_text(value: Any) -> str:
    # orjson: the JSON columns are most of the writer's work with the standard library's.
    return orjson.dumps(value).decode()


def create_engine(url: str) -> Engine:
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, json_serializer=json_text)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        parsed,
        json_serializer=json_text,
        pool_pre_ping=True,
        pool_size=2,
        connect_args={"connect_timeout": 5},
    )


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Store:
    """The prediction log in one database. Thread-safe: each call takes its own connection."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.url = shown(self.engine.url)
        self._sqlite = self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- schema -----------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (does nothing when it is there)."""
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        with self._begin() as conn:
            if self._revision(conn) == head():
                return
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The migration the database is at (``None``: none applied)."""
        with self.engine.connect() as conn:
            return self._revision(conn)

    @staticmethod
    def _revision(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    # -- writing ----------------------------------------------------------------------------

    def insert_valuations(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write valuation rows, dicts of the table's columns (one executemany)."""
        self.insert_values([self.values(r) for r in rows])

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """A valuation row as :meth:`insert_values` takes it."""
        values = list(_inserted(row))
        for i in _JSON_AT:
            values[i] = json_text(values[i])
        values[_TIME_AT] = self.time_value(values[_TIME_AT])
        return tuple(values)

    @property
    def times_as_text(self) -> bool:
        """Whether :meth:`time_value` gives text (SQLite)."""
        return self._sqlite

    def time_value(self, when: datetime) -> Any:
        """A time (UTC, no zone) as the driver takes it: as SQLAlchemy stores times in SQLite
        (text), else as it is."""
        return when.isoformat(" ", "microseconds") if self._sqlite else when

    def insert_values(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write valuation rows in the driver's terms (one executemany): tuples of the values
        of :data:`INSERTED`, JSON as text and times by :meth:`time_value`.

        The statement goes to the driver as it is: SQLAlchemy's per-row parameter processing
        cost three times the database's own work, in the writer thread that shares the GIL
        with the requests. The prediction log's writer builds these tuples itself
        (:func:`imovsp.monitoring.recorder.values`).
        """
        with self._begin() as conn:
            conn.exec_driver_sql(self._insert, rows)

    @property
    def _insert(self) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        return (
            f"INSERT INTO valuations ({', '.join(quote(c) for c in INSERTED)}) "
            f"VALUES ({', '.join([mark] * len(INSERTED))})"
        )

    def find_valuations(self, request_id: str) -> list[sa.Row[Any]]:
        """The valuations recorded under ``request_id``, newest first."""
        query = (
            sa.select(valuations)
            .where(valuations.c.request_id == request_id)
            .order_by(valuations.c.id.desc())
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def insert_feedback(
        self, *, valuation_id: int, request_id: str, actual_price: float, kind: str
    ) -> tuple[int, datetime]:
        """Store one real outcome; its id and time."""
        now = utcnow()
        with self._begin() as conn:
            result = conn.execute(
                feedback.insert().returning(feedback.c.id),
                {
                    "valuation_id": valuation_id,
                    "request_id": request_id,
                    "actual_price": actual_price,
                    "kind": kind,
                    "created_at": now,
                },
            )
            return int(result.scalar_one()), now

    # -- retention --------------------------------------------------------------------------

    def prune(
        self,
        before: datetime,
        *,
        with_feedback: bool = False,
        dry_run: bool = False,
        batch: int = PRUNE_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, int]:
        """Delete the valuations recorded before ``before``; ``(deleted, kept)``.

        Those with feedback are kept (the live error is measured on them) unless
        ``with_feedback``, and then their feedback goes too. Deleted ``batch`` at a time, each
        in its own short transaction, so that a running service's writes wait little; with
        ``dry_run``, only counted.
        """
        old = valuations.c.created_at < before
        has_feedback = sa.exists().where(feedback.c.valuation_id == valuations.c.id)
        doomed = old if with_feedback else old & ~has_feedback
        count = sa.select(sa.func.count()).select_from(valuations)
        if dry_run:
            with self.engine.connect() as conn:
                total = int(conn.execute(count.where(old)).scalar_one())
                deleted = int(conn.execute(count.where(doomed)).scalar_one())
            return deleted, total - deleted
        deleted = 0
        while True:
            with self._begin() as conn:
                ids = list(conn.scalars(sa.select(valuations.c.id).where(doomed).limit(batch)))
                if not ids:
                    break
                if with_feedback:
                    conn.execute(feedback.delete().where(feedback.c.valuation_id.in_(ids)))
                conn.execute(valuations.delete().where(valuations.c.id.in_(ids)))
            deleted += len(ids)
            if progress is not None:
                progress(deleted)
        with self.engine.connect() as conn:
            kept = int(conn.execute(count.where(old)).scalar_one())
        return deleted, kept

    # -- reading, for the monitor -----------------------------------------------------------

    def valuations_since(self, since: datetime) -> list[dict[str, Any]]:
        query = sa.select(valuations).where(valuations.c.created_at >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def feedback_since(self, since: datetime) -> list[dict[str, Any]]:
        """Feedback received since ``since``, with the valuation it is about (the latest
        feedback per valuation only)."""
        latest = (
            sa.select(sa.func.max(feedback.c.id))
            .where(feedback.c.created_at >= since)
            .group_by(feedback.c.valuation_id)
        )
        query = (
            sa.select(
                feedback.c.actual_price,
                feedback.c.kind,
                feedback.c.created_at.label("feedback_at"),
                valuations,
            )
            .join(valuations, feedback.c.valuation_id == valuations.c.id)
            .where(feedback.c.id.in_(latest))
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def head() -> str:
    """The newest migration shipped with this imovsp."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    revision = ScriptDirectory.from_config(config).get_current_head()
    assert revision is not None
    return revision
