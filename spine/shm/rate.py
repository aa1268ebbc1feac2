"""Which committed frames get a WaveformSHM descriptor: every Nth frame, at most R per second.

A pure decision fed one event per committed frame and the current monotonic
time; the bus layer (`spine.shm.bus`) carries out what it decides.
"""

from __future__ import annotations

import math

from spine.errors import ConfigError


class DescriptorRate:
    """Decide, frame by frame, whether to publish a descriptor.

    A frame is due when at least `every` frames have been committed since the
    last published one (the first frame is always due) and, with
    `max_rate_hz`, the rate's schedule allows it.  The schedule keeps its
    phase: publications fall on the first frame at or after each tick of a
    1/max_rate_hz grid, so a 1 kHz writer limited to 60 Hz publishes 60 a
    second (not 1000 / ceil(1000 / 60) = 58.8), and any stretch of t seconds
    holds fewer than t * max_rate_hz + 2 of them.  After an idle spell longer
    than a period the grid restarts at the next publication: no burst to
    catch up.
    """

    def __init__(self, every: int = 1, max_rate_hz: float | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"descriptor 'every' must be a whole number of frames >= 1, got {every!r}")
        if max_rate_hz is not None and not (isinstance(max_rate_hz, (int, float)) and math.isfinite(max_rate_hz)
                                            and max_rate_hz > 0):
            raise ConfigError(f"descriptor max_rate_hz must be a positive number of Hz, got {max_rate_hz!r}")
        self.every = every
        self.period = None if max_rate_hz is None else 1.0 / max_rate_hz
        self._since = every - 1  # frames since the last publication; the first frame is due
        self._next_at: float | None = None  # earliest time of the next publication (rate limit)

    def frame(self, now: float) -> bool:
        """One frame was committed at `now` (monotonic seconds): return True if it gets a descriptor."""
        self._since += 1
        if self._since < self.every:
            return False
        if self.period is not None:
            if self._next_at is not None and now < self._next_at:
                return False
            on_grid = self._next_at is not None and now - self._next_at < self.period
            self._next_at = (self._next_at if on_grid else now) + self.period
        self._since = 0
        return True
