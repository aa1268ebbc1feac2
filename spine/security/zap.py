"""The ZAP handler (ZeroMQ RFC 27): CURVE keys checked against the whitelist.

The broker loop owns the ZAP socket and calls :meth:`ZapHandler.handle` for each request;
this class holds only the policy. An admitted connection gets its Z85 public key as ZAP
User-Id, which libzmq attaches to every message of that connection: the broker maps that
key (never anything a peer writes) to the instance name it stamps as the sender.

Every denial is counted; its log line is rate-limited per address and reason
(:class:`spine.ratelimit.LogLimiter`), so a peer knocking with unknown keys cannot fill
the journal.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import zmq

from spine.ratelimit import LogLimiter, log_limited
from spine.security.whitelist import Whitelist

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"
DOMAIN_MAIN = "spine"
DOMAIN_PAIRING = "spine-pairing"

log = logging.getLogger("spine.security")


@dataclass
class ZapStats:
    """What the handler has decided so far."""

    allowed: int = 0
    denied: Counter = field(default_factory=Counter)  # reason -> count
    last_denied: list[tuple[str, str, str]] = field(default_factory=list)  # (key, address, why)


class ZapHandler:
    """Decides ZAP requests: the whitelist for the main planes, ``pairing_policy`` for pairing.

    ``clock`` (monotonic seconds) times the rate limit of denial log lines.
    """

    def __init__(self, whitelist: Whitelist,
                 pairing_policy: Callable[[bytes, str], bool] | None = None,
                 is_revoked: Callable[[bytes], bool] | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 log_limiter: LogLimiter | None = None) -> None:
        self.whitelist = whitelist
        self.pairing_policy = pairing_policy
        self.is_revoked = is_revoked or (lambda key: False)
        self.stats = ZapStats()
        self.clock = clock
        self.log_limiter = log_limiter or LogLimiter()

    def handle(self, frames: list[bytes]) -> list[bytes] | None:
        """Answer one ZAP request; None for a request too malformed to answer."""
        if len(frames) < 6 or frames[0] != ZAP_VERSION:
            self._deny("-", "-", "malformed ZAP request")
            return None
        _, request_id, domain, address, _identity, mechanism, *credentials = frames
        addr = address.decode("utf-8", "replace")
        if mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            self._deny("-", addr, f"mechanism {mechanism.decode('ascii', 'replace')} refused")
            return self._reply(request_id, b"400", b"CURVE required", b"")
        key = zmq.utils.z85.encode(credentials[0])
        key_text = key.decode("ascii")
        dom = domain.decode("utf-8", "replace")
        if self.is_revoked(key):
            self._deny(key_text, addr, "revoked key")
            return self._reply(request_id, b"400", b"denied", b"")
        if dom == DOMAIN_PAIRING:
            if self.pairing_policy is not None and self.pairing_policy(key, addr):
                self.stats.allowed += 1
                return self._reply(request_id, b"200", b"OK", b"pairing:" + key)
            self._deny(key_text, addr, "pairing window closed")
            return self._reply(request_id, b"400", b"denied", b"")
        entry = self.whitelist.lookup(key)
        if entry is None:
            self._deny(key_text, addr, "unknown key")
            return self._reply(request_id, b"400", b"denied", b"")
        if not entry.admits_address(addr):
            self._deny(key_text, addr, "address pin",
                       f"{entry.name} not allowed from this address (pinned to {entry.source})")
            return self._reply(request_id, b"400", b"denied", b"")
        self.stats.allowed += 1
        log.info("authenticated %s (%s) from %s", entry.name, entry.kind_name(), addr or "ipc")
        return self._reply(request_id, b"200", b"OK", key)

    def _deny(self, key: str, address: str, reason: str, detail: str = "") -> None:
        """Count a denial under ``reason`` (a fixed phrase: the statistics key) and log it
        with ``detail`` (what a person needs to fix it), rate-limited per peer and reason."""
        why = f"{reason}: {detail}" if detail else reason
        self.stats.denied[reason] += 1
        self.stats.last_denied = (self.stats.last_denied + [(key, address, why)])[-20:]
        # Keyed by address, not key: a peer can make a new key for every attempt.
        log_limited(log, logging.WARNING, self.log_limiter, (_peer_of(address), reason),
                    self.clock(),
                    "denied connection: key=%s address=%s reason=%s", key, address or "ipc", why)

    @staticmethod
    def _reply(request_id: bytes, code: bytes, text: bytes, user_id: bytes) -> list[bytes]:
        return [ZAP_VERSION, request_id, code, text, user_id, b""]


def _peer_of(address: str) -> str:
    """Who is behind a ZAP address, for rate limits: the IP of a tcp peer, the user and group
    of an ipc peer (libzmq reports ``localhost:UID:GID:PID``; a new process is the same peer)."""
    parts = address.split(":")
    if len(parts) == 4 and parts[0] == "localhost":
        return ":".join(parts[:3])
    return address
