"""A bounded window of recently seen request ids, so a receiver can drop retried duplicates.

A request retried after a timeout is resent with the same ``request_id``; the receiver
asks :meth:`DedupWindow.is_duplicate` before handling it. The window forgets ids older
than ``max_age`` seconds and, beyond ``max_entries`` ids, the oldest first: memory is
bounded whatever peers send, and a duplicate arriving later than that is handled again.
"""

from __future__ import annotations

from collections import OrderedDict

from spine.errors import ConfigError, EnvelopeError

MAX_REQUEST_ID_LENGTH = 64


class DedupWindow:
    """Remembers request ids for ``max_age`` seconds, at most ``max_entries`` of them. Not thread-safe."""

    def __init__(self, max_entries: int = 65_536, max_age: float = 60.0) -> None:
        if max_entries < 1:
            raise ConfigError(f"dedup window max_entries must be >= 1, got {max_entries}")
        if not max_age > 0:
            raise ConfigError(f"dedup window max_age must be > 0 seconds, got {max_age}")
        self.max_entries = max_entries
        self.max_age = max_age
        self.duplicates = 0
        self._seen: OrderedDict[str | bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def is_duplicate(self, request_id: str | bytes, now: float) -> bool:
        """True if ``request_id`` was seen within the window (counted); else remember it and say False.

        ``now`` is monotonic seconds. An empty or over-long id raises
        :class:`~spine.errors.EnvelopeError` (envelopes must carry a UUID request_id).
        """
        if not request_id or len(request_id) > MAX_REQUEST_ID_LENGTH:
            raise EnvelopeError(
                f"request_id must be 1..{MAX_REQUEST_ID_LENGTH} characters/bytes, got length {len(request_id)}")
        self._expire(now)
        if request_id in self._seen:
            self.duplicates += 1
            return True
        self._seen[request_id] = now
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        horizon = now - self.max_age
        seen = self._seen
        while seen:
            oldest_id, seen_at = next(iter(seen.items()))
            if seen_at > horizon:
                break
            del seen[oldest_id]
