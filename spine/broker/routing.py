"""The routing table: who is reachable on which plane, and where a message goes.

Strategies (SPEC §6) map a recipient to a destination: an instance name routes by
unicast; ``kind:NAME`` (e.g. ``kind:MEMORY_SYSTEM``) round-robins over the live,
non-degraded instances of that kind; PUBLISH goes to the event socket (broadcast). A
recipient the table cannot resolve is an explicit error for the sender, never a silent drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KIND_PREFIX = b"kind:"


@dataclass(slots=True)
class Peer:
    """What the broker knows of one connected instance."""

    name: str
    kind: int
    planes: set[str] = field(default_factory=set)
    degraded: bool = False


class RoutingTable:
    """Instances by routing id, per plane, with the strategies that resolve a recipient."""

    def __init__(self, planes: tuple[str, ...] = ("control", "data")) -> None:
        self.peers: dict[bytes, Peer] = {}
        self._present: dict[str, set[bytes]] = {p: set() for p in planes}
        self._rr_cursor: dict[tuple[str, bytes], int] = {}

    def present(self, plane: str) -> set[bytes]:
        """Routing ids heard from on ``plane`` (the hot path tests membership directly)."""
        return self._present[plane]

    def join(self, plane: str, rid: bytes, name: str, kind: int) -> Peer:
        """Record that the instance ``name`` is reachable on ``plane`` at ``rid``."""
        peer = self.peers.get(rid)
        if peer is None:
            peer = self.peers[rid] = Peer(name, kind)
        peer.planes.add(plane)
        self._present[plane].add(rid)
        return peer

    def leave(self, rid: bytes) -> None:
        """Forget an instance on every plane (revoked, removed or dead)."""
        self.peers.pop(rid, None)
        for present in self._present.values():
            present.discard(rid)

    def set_degraded(self, name: str, degraded: bool) -> None:
        """Mark an instance as (not) degraded: degraded ones get no round-robin work."""
        peer = self.peers.get(name.encode())
        if peer is not None:
            peer.degraded = degraded

    def resolve(self, plane: str, recipient: bytes) -> bytes | None:
        """The routing id a message for ``recipient`` goes to on ``plane``, or None."""
        if recipient in self._present[plane]:
            return recipient
        if recipient.startswith(KIND_PREFIX):
            return self._round_robin(plane, recipient)
        return None

    def _round_robin(self, plane: str, recipient: bytes) -> bytes | None:
        from spine.protocol import neural_spike_pb2 as pb
        try:
            kind = pb.ComponentID.Value(recipient[len(KIND_PREFIX):].decode())
        except (ValueError, UnicodeDecodeError):
            return None
        live = sorted(rid for rid in self._present[plane]
                      if self.peers[rid].kind == kind and not self.peers[rid].degraded)
        if not live:
            return None
        key = (plane, recipient)
        cursor = self._rr_cursor.get(key, -1) + 1
        self._rr_cursor[key] = cursor
        return live[cursor % len(live)]
