"""The client's background work: the sweeper (phase deadlines, idle expiry) and the
statistics logger, in a cancel scope of their own.

The tasks run in the client's nursery but inside :attr:`Background.scope`, not in the
nursery's own cancel scope, which also encloses the body of the client's ``async with``
block: stopping the background (``Client.close()``, which may be called inside the block)
must not cancel the caller. A background task that crashes still cancels the body, through
the nursery, as structured concurrency wants.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import trio

if TYPE_CHECKING:
    from ._pool import EndpointPool
    from ._timeouts import Timeouts

__all__ = ["Background", "sweep_tick"]

_log = logging.getLogger("trio_infer")
_SWEEP_MAX: Final = 0.1
_SWEEP_MIN: Final = 0.001


def sweep_tick(timeouts: Timeouts) -> float:
    """How often the sweeper must look for these phase limits to be enforced within a tenth
    of the smallest (at most every 100 ms, at least every 1 ms)."""
    limits = [t for t in (timeouts.connect, timeouts.write, timeouts.read) if t is not None]
    smallest = min(limits, default=math.inf) / 10
    return max(_SWEEP_MIN, min(_SWEEP_MAX, smallest))


class Background:
    """The sweeper and the statistics logger of one client."""

    def __init__(
        self,
        pools: Sequence[EndpointPool],
        now: Callable[[], float],
        summary: Callable[[], dict[str, Any]],
        stats_interval: float | None,
        tick: float,
    ) -> None:
        self._pools = pools
        #: the sweeper's tick for the client's own timeouts
        self.tick = tick
        self._nap: trio.CancelScope | None = None
        #: the smallest tick asked for by calls since the last sweep
        self._hurried = math.inf
        #: the clock (the client binds the run's clock on entry, as for its pools)
        self.now = now
        self._summary = summary
        self._stats_interval = stats_interval
        self._parked: trio.Event | None = None
        #: the scope the background tasks run in; cancelled by :meth:`stop`
        self.scope = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sweeper, name="trio_infer sweeper")
                if self._stats_interval is not None:
                    nursery.start_soon(
                        self._log_stats, self._stats_interval, name="trio_infer stats logger"
                    )
                task_status.started()

    def stop(self) -> None:
        self.scope.cancel()

    def wake(self) -> None:
        """A connection was opened: the parked sweeper has work again."""
        parked = self._parked
        if parked is not None:
            self._parked = None
            parked.set()

    def hurry(self, tick: float) -> None:
        """A call with smaller phase limits than the client's started: sweep within ``tick``
        (also when the sweeper is parked: its first nap after waking is that short)."""
        self._hurried = min(self._hurried, tick)
        nap = self._nap
        if nap is not None:
            nap.deadline = min(nap.deadline, self.now() + tick)

    async def _sweeper(self) -> None:
        """Enforce phase deadlines and idle expiry; park while there are no connections.
        Each round waits the smallest tick the exchanges in progress need (the client's, or
        a call's own smaller limits), so one call's tiny timeout speeds the sweeper up only
        while that call runs."""
        pools = self._pools
        tick = self.tick
        while True:
            if all(pool.is_empty for pool in pools):
                parked = self._parked = trio.Event()
                await parked.wait()
            tick = min(tick, self._hurried)
            self._hurried = math.inf
            with trio.CancelScope(deadline=self.now() + tick) as nap:
                self._nap = nap
                await trio.sleep_forever()
            self._nap = None
            now = self.now()
            tick = self.tick
            for pool in pools:
                tick = min(tick, pool.sweep(now))

    async def _log_stats(self, interval: float) -> None:
        """One structured INFO line per interval: the JSON of ``stats().summary()``, also
        attached to the record as ``record.trio_infer_stats``. No header appears in it."""
        while True:
            await trio.sleep(interval)
            summary = self._summary()
            _log.info(
                "trio_infer stats %s",
                json.dumps(summary, sort_keys=True, separators=(",", ":")),
                extra={"trio_infer_stats": summary},
            )
