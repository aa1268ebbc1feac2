"""Reliable send: a non-blocking ZeroMQ send retried on EAGAIN by a :class:`RetryPolicy`.

The socket stays owned by its thread: :class:`ReliableSender` only calls its
``send_multipart`` from the caller's thread and never polls or closes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import zmq

from spine.errors import SendFailed
from spine.resilience.retry import RetryPolicy

Part = bytes | bytearray | memoryview | zmq.Frame  # one frame of a multipart message


class MultipartSender(Protocol):
    """What the sender needs from a socket (a ``zmq.Socket`` qualifies)."""

    def send_multipart(self, msg_parts: Sequence[Any], flags: int = 0) -> Any:
        """Send one multipart message; raise ``zmq.Again`` when it would block."""
        ...


@dataclass
class SendCounters:
    """Totals since the sender was made: messages sent, retry attempts, messages given up."""

    sent: int = 0
    retries: int = 0
    give_ups: int = 0


class ReliableSender:
    """Send multipart messages without blocking on a full queue for longer than the policy allows.

    ``send`` returns ``True`` when the message was queued, ``False`` when every attempt hit
    EAGAIN (counted in ``counters.give_ups``). Any other ZeroMQ error is raised unchanged
    (e.g. ``EHOSTUNREACH`` from a ROUTER with ``ROUTER_MANDATORY``). With the default policy
    a call blocks the calling thread for at most about 60 ms.
    """

    def __init__(self, socket: MultipartSender, policy: RetryPolicy | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.socket = socket
        self.policy = policy or RetryPolicy()
        self.counters = SendCounters()
        self._clock = clock
        self._sleep = sleep

    def send(self, frames: Part | Sequence[Part]) -> bool:
        """Queue one message (a frame or a list of frames); return whether it went."""
        parts = [frames] if isinstance(frames, (bytes, bytearray, memoryview, zmq.Frame)) else list(frames)
        retries = 0
        while True:
            try:
                self.socket.send_multipart(parts, flags=zmq.NOBLOCK)
            except zmq.Again:
                next_at = self.policy.next_attempt_at(retries, self._clock())
                if next_at is None:
                    self.counters.give_ups += 1
                    return False
                self._wait_until(next_at)
                retries += 1
                self.counters.retries += 1
                continue
            self.counters.sent += 1
            return True

    def send_or_raise(self, frames: Part | Sequence[Part]) -> None:
        """Like :meth:`send`, but a message that did not go raises :class:`~spine.errors.SendFailed`."""
        if not self.send(frames):
            raise SendFailed(
                f"send gave up after {self.policy.max_retries} retries (queue full: the peer is not "
                f"reading or is gone); check that the receiver is alive and keeping up")

    def _wait_until(self, deadline: float) -> None:
        while (remaining := deadline - self._clock()) > 0:
            self._sleep(remaining)
