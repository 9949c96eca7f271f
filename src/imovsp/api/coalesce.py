"""Valuations asked for in the same turn of the event loop, computed together.

Under load a worker has many requests in flight: wrk's 256 connections put ~128 on each of two
workers, and a turn of the event loop reads every one that has arrived. Valued one by one, each
request builds its own feature row and walks the ~1,100 trees of its model alone, and the rest
of the request path between two valuations pushes the trees out of the CPU caches. Valued
together (:meth:`Valuer.value_many`), the rows are built by numpy in one go and LightGBM runs
them through the trees in one call, with the same numbers to the bit.

Nothing waits for a batch to fill or for a clock. The first request of a turn schedules the
computation two turns of the loop later: a timer due at once (``call_later(0)``), which the
loop runs in its next turn after that turn's I/O callbacks, schedules it (``call_soon``) after
the requests those callbacks have just read. So a batch holds the requests of this turn, of
the next, and those read in the next, whose tasks run first. Scheduled for the next turn
alone, it missed the requests read meanwhile: under load each batch held about a third of a
worker's connections, and the trees ran three times as often for the same valuations
(docs/benchmarks.md, session 12). A request alone is valued two turns later, on an idle loop
at once; many at once share the work. This is the event loop's own batching, which the
general dynamic-batching libraries (a queue with a size and a timeout, a worker thread) would
only add latency and a thread hop to.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from dataclasses import dataclass, field

from imovsp.api import prometheus
from imovsp.features import Property
from imovsp.valuer import Valuation, Valuer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Options:
    """How a valuation was asked for (see :meth:`Valuer.value`); asks alike are valued together."""

    level: float
    explain: bool = False
    comparables: int = 0


@dataclass(slots=True)
class _Ask:
    prop: Property
    future: asyncio.Future[Valuation] = field(repr=False)


class Coalescer:
    """Values the properties asked for within one turn of the running event loop together."""

    def __init__(self, valuer: Valuer) -> None:
        self.valuer = valuer
        # Per event loop (a server has one; tests and tools may run several, one after
        # another or at once): the asks of its current turn, whose flush it has scheduled.
        # A loop that ends with a flush still scheduled takes its asks with it, and cannot
        # keep another loop's asks from being flushed.
        self._waiting: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Options, list[_Ask]]
        ] = weakref.WeakKeyDictionary()

    def value(self, prop: Property, options: Options) -> asyncio.Future[Valuation]:
        """The valuation of ``prop`` (already prepared, see :meth:`Valuer.prepare`), ready on
        the event loop's next turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Valuation] = loop.create_future()
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = {}
            # After the next turn's I/O callbacks, then after the tasks they started.
            loop.call_later(0, loop.call_soon, self._flush, loop)
        waiting.setdefault(options, []).append(_Ask(prop, future))
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting = self._waiting.pop(loop, {})
        asks = [a for group in waiting.values() for a in group]
        try:
            for options, group in waiting.items():
                self._answer(group, options)
        finally:
            # Every future gets an answer, whatever happens (even a KeyboardInterrupt here).
            for ask in asks:
                if not ask.future.done():
                    ask.future.set_exception(RuntimeError("the valuation was not computed"))

    def _answer(self, asks: list[_Ask], options: Options) -> None:
        live = [a for a in asks if not a.future.cancelled()]  # clients that went away
        if not live:
            return
        found: list[Valuation] | None
        try:
            found = value_together(self.valuer, [a.prop for a in live], options)
        except Exception:
            # A bug, not the askers' input (each property was resolved before it was
            # queued): said in the log, then each is valued alone so that one cannot fail
            # the others.
            log.exception({"event": "valuations_together_failed", "asks": len(live)})
            found = None
        valued: Counter[str] = Counter()
        for i, ask in enumerate(live):
            try:
                if found is None:
                    only = value_together(self.valuer, [ask.prop], options)
                    ask.future.set_result(only[0])
                else:
                    ask.future.set_result(found[i])
                valued[ask.prop.negotiation] += 1
            except Exception as exc:
                ask.future.set_exception(exc)
        # Counted per batch, not per request: each count is a write to the metrics' shared file.
        prometheus.record_valuations(valued)


def value_together(valuer: Valuer, props: list[Property], options: Options) -> list[Valuation]:
    """:meth:`Valuer.value_many` with the options of a request."""
    return valuer.value_many(
        props,
        level=options.level,
        explain=options.explain,
        comparables=options.comparables,
    )
