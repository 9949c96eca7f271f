"""Records every valuation served, without slowing or breaking any.

The request path only appends a tuple to an in-memory buffer (:meth:`Recorder.record`). One
writer thread per process drains it every ``log_flush_seconds`` (sooner when a batch is full),
turns the tuples into rows and writes them in batches of ``log_batch_size`` with one
executemany. Its first job is the schema: it runs the migrations to the newest one.

When the database fails, the writer keeps the rows and tries again after growing pauses (the
flush interval, doubled each time, at most :data:`MAX_PAUSE`); rows that have been through
``log_retries`` failed attempts are dropped and counted in
``imovsp_prediction_log_dropped_total{reason="database"}``. When the buffer is full, new records
are dropped at once and counted under ``reason="overflow"``; a batch of valuations first waits up
to a few seconds for a busy (not failing) writer to make room (:meth:`Recorder.make_room`).
Valuations are answered throughout.
At shutdown (:meth:`Recorder.close`, from the app's lifespan after SIGTERM) the writer writes
everything still buffered, retrying for up to ``log_shutdown_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import Counter, Gauge

from imovsp.monitoring.store import Store, json_text, shown
from imovsp.settings import Settings
from imovsp.valuer import Valuation

log = logging.getLogger("imovsp.prediction_log")
MAX_PAUSE = 10.0  # seconds between attempts at most, however long the database is away

WRITTEN = Counter("imovsp_prediction_log_written_total", "Valuations written to the log.")
DROPPED = Counter(
    "imovsp_prediction_log_dropped_total",
    "Valuations never written to the log: the database kept failing, or the buffer was full.",
    ["reason"],
)
WRITE_ERRORS = Counter(
    "imovsp_prediction_log_write_errors_total", "Failed attempts to write to the log."
)
BUFFERED = Gauge(
    "imovsp_prediction_log_buffered",
    "Valuations waiting in memory for the database.",
    multiprocess_mode="livesum",
)
_overflow = DROPPED.labels("overflow")
_database = DROPPED.labels("database")

# One recorded valuation, as the request path hands it over: (unix time, source, request id,
# batch index or None, the fields as given, the Valuation (in the model's month), seconds it
# took, the month the answer was shown in or None, the factor from the Valuation's prices to
# the shown ones).
Record = tuple[float, str, str, int | None, Any, Valuation, float, str | None, float]


class Marker(threading.Event):
    """Put in the buffer by :meth:`Recorder.flush`: set once everything before it was handled;
    ``written`` says whether it all reached the database."""

    written = False


@dataclass
class Batch:
    rows: list[tuple[Any, ...]]  # as Store.insert_values takes them
    markers: list[Marker] = field(default_factory=list)
    failures: int = 0


def given_fields(given: Any) -> dict[str, Any]:
    """The fields a client sent: a pydantic model's set fields, or a mapping as it is."""
    fields_set = getattr(given, "model_fields_set", None)
    if fields_set is not None:
        return {name: getattr(given, name) for name in sorted(fields_set)}
    return dict(given) if isinstance(given, Mapping) else {}


def _given_text(given: Any) -> str:
    """``json_text(given_fields(given))``, to the character: a model that was sent every one of
    its fields (most are) is written out whole, its keys sorted by orjson."""
    fields_set = getattr(given, "model_fields_set", None)
    if fields_set is not None and len(fields_set) == len(type(given).model_fields):
        return orjson.dumps(given.__dict__, option=orjson.OPT_SORT_KEYS).decode()
    return json_text(given_fields(given))


# The second of the last row's time, and its text as SQLite stores times.
_second: tuple[int, str] = (-1, "")


def _created_at(at: float, store: Store) -> Any:
    """``store.time_value`` of the row's time (a Unix time), the text of each second made once
    for all of its rows: formatting the date and time was a quarter of a row's cost."""
    global _second
    when = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
    if not store.times_as_text:
        return store.time_value(when)
    if when.microsecond == 0:  # on the second, or rounded up to the next one
        return store.time_value(when)
    whole = int(at)  # when's second, as it was not rounded up
    second, text = _second
    if whole != second:
        full: str = store.time_value(when)  # "YYYY-MM-DD HH:MM:SS.ffffff"
        _second = (whole, full[:-7])
        return full
    return f"{text}.{when.microsecond:06d}"


def row(record: Record) -> dict[str, Any]:
    """A recorded valuation as a row of the ``valuations`` table."""
    at, source, request_id, index, given, v, seconds, as_of, index_factor = record
    p = v.property
    return {
        "created_at": datetime.fromtimestamp(at, UTC).replace(tzinfo=None),
        "request_id": request_id[:64],
        "item_index": index,
        "source": source,
        "model_version": v.model_version,
        **p.as_dict(),
        "given": given_fields(given),
        "defaulted": list(v.not_given),
        "location_estimated": bool(v.location_estimated),
        "price": float(v.price),
        "price_low": v.price_low,
        "price_high": v.price_high,
        "level": v.level,
        "latency_ms": round(seconds * 1000, 3),
        "as_of": as_of,
        "index_factor": float(index_factor),
    }


_defaulted: dict[tuple[str, ...], str] = {}  # not_given as JSON, one per subset of OPTIONAL


def values(record: Record, store: Store) -> tuple[Any, ...]:
    """:func:`row` as ``store`` writes it (:meth:`Store.insert_values`), built without the
    dict: the same values, in the columns' order (tested against ``store.values(row(...))``).
    The writer thread builds one per valuation, sharing the GIL with the requests."""
    at, source, request_id, index, given, v, seconds, as_of, index_factor = record
    not_given = v.not_given
    defaulted = _defaulted.get(not_given)
    if defaulted is None:
        defaulted = _defaulted[not_given] = json_text(list(not_given))
    return (
        _created_at(at, store),
        request_id[:64],
        index,
        source,
        v.model_version,
        *v.property.as_dict().values(),
        _given_text(given),
        defaulted,
        bool(v.location_estimated),
        float(v.price),
        v.price_low,
        v.price_high,
        v.level,
        round(seconds * 1000, 3),
        as_of,
        float(index_factor),
    )


class Recorder:
    """The prediction log of one process: call :meth:`record` for every valuation served."""

    def __init__(self, store: Store | None, settings: Settings) -> None:
        self.store = store
        self.capacity = settings.log_buffer_size
        self.batch_size = settings.log_batch_size
        self.interval = settings.log_flush_seconds
        self.retries = settings.log_retries
        self.shutdown_seconds = settings.log_shutdown_seconds
        self.buffer: deque[Record | Marker] = deque()
        self.pending: list[Batch] = []  # taken from the buffer, not yet written
        self.pending_rows = 0
        self.ready = False  # the schema is up to date
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0  # consecutive failed rounds

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def record(
        self,
        source: str,
        request_id: str,
        given: Any,
        valuation: Valuation,
        seconds: float,
        index: int | None = None,
        *,
        as_of: str | None = None,
        index_factor: float = 1.0,
    ) -> None:
        """Log one valuation served: ``source`` is api, batch, web or legacy; ``given`` the
        fields as the client sent them (a pydantic model or a mapping); ``valuation`` in the
        model's month; ``seconds`` the time the server took; ``index`` its position in a batch;
        ``as_of`` the month the answer was shown in and ``index_factor`` the multiplier from
        ``valuation``'s prices to the shown ones (1 and ``None``: shown in the model's month).
        Never blocks, never raises."""
        buffer = self.buffer
        if len(buffer) + self.pending_rows >= self.capacity:
            _overflow.inc()
            return
        buffer.append(
            (
                time.time(),
                source,
                request_id,
                index,
                given,
                valuation,
                seconds,
                as_of,
                index_factor,
            )
        )
        if len(buffer) == self.batch_size:
            self._wake.set()

    # -- the writer thread ------------------------------------------------------------------

    def start(self) -> Recorder:
        if self.store is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        self._round()  # at once: the schema is brought up to date
        while not self._stop.is_set():
            if self._failures:
                self._stop.wait(min(self.interval * 2 ** (self._failures - 1), MAX_PAUSE))
            self._wake.wait(self.interval)
            self._wake.clear()
            self._round()
        self._final()

    def _take(self) -> None:
        """Move what is buffered into batches of at most ``batch_size`` rows."""
        assert self.store is not None
        store = self.store
        batch = Batch([])
        while self.buffer:
            item = self.buffer.popleft()
            if isinstance(item, Marker):
                batch.markers.append(item)
                continue
            try:
                batch.rows.append(values(item, store))
            except Exception:  # a record that cannot be a row must not stop the others
                log.exception({"event": "prediction_log_bad_record"})
                _database.inc()
                continue
            if len(batch.rows) >= self.batch_size:
                self._queue(batch)
                batch = Batch([])
        if batch.rows or batch.markers:
            self._queue(batch)

    def _queue(self, batch: Batch) -> None:
        self.pending.append(batch)
        self.pending_rows += len(batch.rows)

    def _round(self) -> bool:
        """One attempt at writing everything buffered; ``True`` if it all went in."""
        assert self.store is not None
        self._take()
        try:
            if not self.ready:
                self.store.upgrade()
                self.ready = True
                log.info({"event": "prediction_log_ready", "database": self.store.url})
            while self.pending:
                batch = self.pending[0]
                if batch.rows:
                    self.store.insert_values(batch.rows)
                    WRITTEN.inc(len(batch.rows))
                self.pending.pop(0)
                self.pending_rows -= len(batch.rows)
                for marker in batch.markers:
                    marker.written = True
                    marker.set()
        except Exception as exc:  # the database is away: keep the rows, retry later
            self._failed(exc)
            return False
        finally:
            BUFFERED.set(len(self.buffer) + self.pending_rows)
        self._failures = 0
        return True

    def _failed(self, exc: Exception) -> None:
        WRITE_ERRORS.inc()
        self._failures += 1
        dropped = 0
        for batch in self.pending:
            batch.failures += 1
        while self.pending and self.pending[0].failures > self.retries:
            dropped += self._drop(self.pending.pop(0))
        log.warning(
            {
                "event": "prediction_log_write_failed",
                "database": self.store.url if self.store else None,
                "error": f"{type(exc).__name__}: {exc}"[:500],
                "attempt": self._failures,
                "dropped": dropped,
                "waiting": len(self.buffer) + self.pending_rows,
            }
        )

    def _drop(self, batch: Batch) -> int:
        self.pending_rows -= len(batch.rows)
        _database.inc(len(batch.rows))
        for marker in batch.markers:
            marker.set()
        return len(batch.rows)

    def _final(self) -> None:
        """At shutdown: write what is left, retrying until the shutdown time is up."""
        deadline = time.monotonic() + self.shutdown_seconds
        pause = self.interval
        while not self._round() and time.monotonic() < deadline:
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, MAX_PAUSE)
        left = sum(self._drop(batch) for batch in self.pending)
        self.pending.clear()
        BUFFERED.set(0)
        if left:
            log.error({"event": "prediction_log_lost_at_shutdown", "dropped": left})

    # -- control ----------------------------------------------------------------------------

    def make_room(self, n: int, timeout: float) -> None:
        """If ``n`` more records would overflow the buffer, wait up to ``timeout`` seconds for
        a working writer to catch up: for callers off the event loop (the batch endpoint's
        thread), which can wait for a busy database rather than have their records dropped.
        While the database is failing nobody waits: the records that do not fit are dropped
        and counted at once, as for every other valuation."""
        if self._failures or self._thread is None:
            return
        if len(self.buffer) + self.pending_rows + min(n, self.capacity) > self.capacity:
            self.flush(timeout)

    def flush(self, timeout: float) -> bool:
        """Write everything recorded so far; ``True`` if it is all in the database."""
        if self._thread is None or not self._thread.is_alive():
            return False
        marker = Marker()
        self.buffer.append(marker)
        self._wake.set()
        return marker.wait(timeout) and marker.written

    def close(self) -> None:
        """Stop the writer once everything buffered is written (or the shutdown time is up)."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(self.shutdown_seconds + 5)
            self._thread = None
        if self.store is not None:
            self.store.dispose()


class Off(Recorder):
    """The recorder when the prediction log is turned off: records nothing."""

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def create(settings: Settings) -> Recorder:
    """The process's recorder, writing to ``settings.database_url`` and started (one that
    records nothing when the log is turned off)."""
    if not settings.prediction_log:
        return Off(None, settings)
    store = Store(settings.database_url)
    log.info({"event": "prediction_log", "database": shown(settings.database_url)})
    return Recorder(store, settings).start()
