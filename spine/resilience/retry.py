"""The reliable-send retry policy (SPEC §5) as a pure class: when to try again, or give up.

Reading of SPEC §5 ("on EAGAIN retry after 10, 20, 30 ms; at most 3 attempts"): the
message is first sent at once; each EAGAIN schedules one retry attempt, the k-th after
``delays[k]`` seconds, and there are at most ``len(delays)`` = 3 retry attempts. So a
message that never finds room is tried at t = 0, then 10 ms after that, 20 ms after the
second, 30 ms after the third (four calls to send, about 60 ms in all) before the caller
hears it did not go. This is the only reading in which all three stated spacings occur;
three sends in all would leave the 30 ms spacing unused. ``delays=(0.010, 0.020)``
gives the other reading (three sends in all) if it is ever wanted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spine.errors import ConfigError


@dataclass(frozen=True)
class RetryPolicy:
    """Delays (seconds) before retry attempts 1, 2, 3, …; its length bounds the retries."""

    delays: tuple[float, ...] = (0.010, 0.020, 0.030)

    def __post_init__(self) -> None:
        if not all(isinstance(d, (int, float)) and math.isfinite(d) and d >= 0 for d in self.delays):
            raise ConfigError(f"retry delays must be finite numbers of seconds >= 0, got {self.delays!r}")

    @property
    def max_retries(self) -> int:
        """How many retry attempts follow the first send at most."""
        return len(self.delays)

    def next_attempt_at(self, retries_done: int, failed_at: float) -> float | None:
        """When to try again after an attempt that hit EAGAIN at ``failed_at`` (monotonic s).

        ``retries_done`` is how many retry attempts have already been made (0 after the
        first send). Returns ``None`` when the retries are used up: give up.
        """
        if retries_done < 0:
            raise ValueError(f"retries_done must be >= 0, got {retries_done}")
        if retries_done >= len(self.delays):
            return None
        return failed_at + self.delays[retries_done]
