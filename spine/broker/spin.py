"""When the broker loop should poll without sleeping: an adaptive busy-poll policy.

After serving a message the loop may keep polling for a short window instead of sleeping,
which saves the wake-up of an idle CPU (tens of microseconds on a VM) when the next
message follows at once, as the answer to a forwarded request does. When messages come
further apart than the window, the spin is CPU taken from everything else for nothing.
The policy keeps an exponentially weighted hit rate of its recent spins and spins only
while it is at least ``threshold``; below it, one chance in ``probe_every`` re-tests the
traffic. Pure: the loop reports each spin's outcome; nothing here reads a clock.
"""

from __future__ import annotations

from spine.errors import ConfigError


class AdaptiveSpin:
    """Decides, after each served message, whether the loop spins for ``window_s``."""

    def __init__(self, window_s: float, *, threshold: float = 0.5, weight: float = 0.1,
                 probe_every: int = 64) -> None:
        if window_s < 0 or not 0 < threshold <= 1 or not 0 < weight <= 1 or probe_every < 1:
            raise ConfigError(f"invalid spin policy: window {window_s} s, threshold {threshold}, "
                              f"weight {weight}, probe every {probe_every}")
        self.window_s = window_s
        self.threshold = threshold
        self.weight = weight
        self.probe_every = probe_every
        self.score = threshold  # undecided: the first spins decide
        self._skipped = 0
        self.spins = 0
        self.hits = 0

    def should_spin(self) -> bool:
        """True when the loop should poll without sleeping for ``window_s`` now."""
        if not self.window_s:
            return False
        if self.score >= self.threshold:
            return True
        self._skipped += 1
        if self._skipped >= self.probe_every:
            self._skipped = 0
            return True
        return False

    def record(self, hit: bool) -> None:
        """Report whether the spin just made ended with a message (a hit) or ran out."""
        self.spins += 1
        self.hits += hit
        self.score += self.weight * ((1.0 if hit else 0.0) - self.score)
