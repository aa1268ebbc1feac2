"""Rate limits for log lines a peer can provoke (refusals, denials, drops).

A hostile or broken peer can make the broker refuse thousands of things a second; one
log line each would fill the journal and cost the loop more than the refusal itself.
:class:`LogLimiter` is a token bucket per key (a peer and a reason): ``burst`` lines at
once, then one every ``every_s`` seconds. A second, shared bucket bounds all keys
together, so a peer that changes its key or address on every attempt gains nothing.
The limiter forgets the least recently seen key beyond ``max_keys``, so it cannot grow
without bound itself. It is pure: every call takes ``now`` (monotonic seconds).

When a key may log again, the limiter says how many of its lines it held back meanwhile,
and :func:`log_limited` appends that to the line.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from spine.errors import ConfigError

DEFAULT_BURST = 10
DEFAULT_EVERY_S = 10.0
DEFAULT_MAX_KEYS = 1024
DEFAULT_TOTAL_BURST = 100
DEFAULT_TOTAL_EVERY_S = 0.5


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    suppressed: int = 0

    def take(self, burst: int, every_s: float, now: float) -> bool:
        if now > self.at:
            self.tokens = min(float(burst), self.tokens + (now - self.at) / every_s)
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class LogLimiter:
    """Decides which lines of a repetitive log to write: per key, ``burst`` then one per
    ``every_s`` seconds; over all keys, ``total_burst`` then one per ``total_every_s``."""

    def __init__(self, burst: int = DEFAULT_BURST, every_s: float = DEFAULT_EVERY_S, *,
                 max_keys: int = DEFAULT_MAX_KEYS, total_burst: int = DEFAULT_TOTAL_BURST,
                 total_every_s: float = DEFAULT_TOTAL_EVERY_S) -> None:
        if burst < 1 or total_burst < 1 or max_keys < 1:
            raise ConfigError("burst, total_burst and max_keys must be at least 1")
        if not (every_s > 0 and total_every_s > 0):
            raise ConfigError("every_s and total_every_s must be positive")
        self.burst, self.every_s, self.max_keys = burst, every_s, max_keys
        self.total_burst, self.total_every_s = total_burst, total_every_s
        self._keys: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._total: _Bucket | None = None
        self.suppressed_total = 0  # every line held back, including those of forgotten keys

    def allow(self, key: Hashable, now: float) -> int | None:
        """None if the line for ``key`` is to be held back at ``now``; otherwise the number
        of lines held back for ``key`` since its last line (0 if none), which is then reset.
        """
        bucket = self._keys.get(key)
        if bucket is None:
            bucket = self._keys[key] = _Bucket(float(self.burst), now)
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        if self._total is None:
            self._total = _Bucket(float(self.total_burst), now)
        # Peek at the per-key bucket first, so a quiet key's line does not spend a shared
        # token only to be held back by its own bucket (or the other way round).
        if bucket.take(self.burst, self.every_s, now):
            if self._total.take(self.total_burst, self.total_every_s, now):
                held, bucket.suppressed = bucket.suppressed, 0
                return held
            bucket.tokens += 1.0  # give the key's token back: the shared bucket said no
        bucket.suppressed += 1
        self.suppressed_total += 1
        return None

    @property
    def tracked_keys(self) -> int:
        """How many keys the limiter remembers now (at most ``max_keys``)."""
        return len(self._keys)


def log_limited(logger: logging.Logger, level: int, limiter: LogLimiter, key: Hashable,
                now: float, msg: str, *args) -> bool:
    """Log ``msg % args`` at ``level`` unless ``limiter`` holds it back for ``key``.

    A line written after some were held back says how many. Returns True if it logged.
    """
    held = limiter.allow(key, now)
    if held is None:
        return False
    if held:
        logger.log(level, msg + " (%d similar lines suppressed)", *args, held)
    else:
        logger.log(level, msg, *args)
    return True
