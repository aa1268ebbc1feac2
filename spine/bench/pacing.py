"""The one pacer of the benchmarks (absolute deadlines) and the send schedule of closed-loop clients.

Tick k of a loop is due at start + k × period: a late tick does not move the
ones after it, so the loop never drifts.  ``Pacer.sleep_until`` sleeps with
``time.sleep`` (clock_nanosleep on CLOCK_MONOTONIC in CPython 3.11) to
``spin`` before the deadline and spins for the rest, because a sleeping
thread wakes 50–100 µs late on a stock kernel; the timer slack of the calling
thread is cut to 1 ns first so the sleep part is as tight as the kernel allows.

A closed-loop client (one request outstanding) that is held up by a slow
reply cannot send the requests that fell due meanwhile.  It skips them and
sends the next one on schedule; the skipped ones are accounted for by
HdrHistogram's ``record_corrected_value(latency, period)``, which adds exactly
``synthesized_count(latency, period)`` samples — the same number ``next_slot``
skips.  Latencies are always measured from the scheduled send time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import time
from typing import Callable

_PR_SET_TIMERSLACK = 29


def set_timer_slack(ns: int = 1) -> bool:
    """Set this thread's timer slack (how late the kernel may wake a sleeper) to ``ns``; False if refused."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Pacer:
    """Sleeps to absolute CLOCK_MONOTONIC deadlines: sleep for the bulk, spin for the last ``spin_ns``.

    ``spin_ns=0`` only sleeps (a probe paced every few ms, a consumer held to a
    rate).  ``clock`` (monotonic ns) and ``sleep`` (seconds) are the time
    module's unless a test injects its own.
    """

    def __init__(self, spin_ns: int = 100_000, *, clock: Callable[[], int] = time.monotonic_ns,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.spin_ns = spin_ns
        self._clock = clock
        self._sleep = sleep

    def sleep_until(self, deadline_ns: int) -> int:
        """Return at or just after ``deadline_ns`` (monotonic ns) with the time of waking."""
        left = deadline_ns - self._clock()
        if left > self.spin_ns:
            self._sleep((left - self.spin_ns) / 1e9)
        while True:
            now = self._clock()
            if now >= deadline_ns:
                return now


def next_slot(slot: int, latency_ns: int, period_ns: int) -> int:
    """The slot a closed-loop client sends next after slot ``slot`` took ``latency_ns`` (from its due time).

    The first slot due at or after the reply: slots that fell due while the
    request was outstanding are skipped, never sent late.
    """
    return slot + max(1, math.ceil(latency_ns / period_ns))


def synthesized_count(latency_ns: int, period_ns: int) -> int:
    """Samples ``HdrHistogram.record_corrected_value(latency_ns, period_ns)`` adds besides the measured one.

    Equal to the number of slots ``next_slot`` skips for the same latency.
    """
    return max(0, math.ceil(latency_ns / period_ns) - 1)
