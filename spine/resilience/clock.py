"""The clocks the resilience I/O layer reads; injected so tests control time."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    """A source of monotonic seconds (for deadlines) and of UTC wall time (for persistence)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (``time.monotonic`` semantics)."""
        ...

    def utc_now(self) -> datetime:
        """The current wall time as a timezone-aware UTC datetime."""
        ...


class SystemClock:
    """The real clocks: ``time.monotonic()`` and ``datetime.now(timezone.utc)``."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def utc_now(self) -> datetime:
        """Return the current UTC wall time (timezone-aware)."""
        return datetime.now(timezone.utc)
