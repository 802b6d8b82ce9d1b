"""CPU seconds per model execution: the data plane's inference cost, as metered.

Wall time is not cost: an execution that waits for a core (another batch holds it, or the
replica's nice'd threads yield to the event loop) costs the operator nothing while it waits,
and one TensorFlow call may keep several intra-op threads busy at once. Per-thread CPU time
does not help either: TensorFlow runs the work of every call on one process-wide intra-op
pool, so the thread that made the call sees almost none of it.

So the meter reads the process's CPU time (``time.process_time``: user + system, all
threads) at every start and end of an execution, and splits the CPU used between two such
events equally among the executions running in that interval (between two events the set
is fixed). The sum handed out over executions equals the process's CPU time while at least
one execution ran; CPU used while none ran (the event loop serving cached or refused
requests) is overhead, attributed to no one. This is the "fair share of a shared resource"
accounting of process-level meters such as cgroup CPU accounting, at execution granularity;
with one execution at a time it is exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CpuMeter:
    """Hands out this process's CPU seconds to the executions running at once.

    ``begin()`` returns a token; ``end(token)`` returns the CPU seconds (float, ≥ 0)
    attributed to that execution since its ``begin``. Thread-safe; O(running executions) per
    call. ``clock`` returns cumulative CPU seconds (default ``time.process_time``).
    Raises ``KeyError`` from ``end`` for a token that was never begun or already ended.
    """

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._running: dict[int, float] = {}
        self._next = 0

    def _advance(self) -> None:
        now = self._clock()
        spent = max(0.0, now - self._last)  # a clock never runs back; guard anyway
        self._last = now
        if self._running and spent:
            share = spent / len(self._running)
            for token in self._running:
                self._running[token] += share

    def begin(self) -> int:
        with self._lock:
            self._advance()
            token = self._next
            self._next += 1
            self._running[token] = 0.0
            return token

    def end(self, token: int) -> float:
        with self._lock:
            self._advance()
            return self._running.pop(token)

    def running(self) -> int:
        """Executions begun and not yet ended."""
        with self._lock:
            return len(self._running)


# One per process: the process's CPU time is what is shared.
METER = CpuMeter()
