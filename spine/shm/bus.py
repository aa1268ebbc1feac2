"""WaveformSHM descriptors on the bus: the writer announces frames, reader components follow them.

The frame stays in shared memory; only its descriptor crosses the broker, on
the data plane with `MsgClass.PHYSICS`.  `DescriptorPublisher` sends one
after each committed frame (or at a configured rate), unicast to named
readers and/or published on a topic; `DescriptorFollower` receives them, reads
the frames they point at and reports the ones overwritten before it got there.
Neither side ever blocks the other: a full queue drops a descriptor (counted),
and a late reader finds the slot moved on (counted, not read).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable

from spine.client.component import Component, Message
from spine.errors import (ConfigError, EnvelopeError, ProtocolError, RefusalReason, SendFailed, ShmError,
                          ShmFrameOverwritten)
from spine.protocol import envelope
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.framing import Kind, MsgClass
from spine.shm.descriptors import descriptor_for, read_descriptor, view_descriptor
from spine.shm.rate import DescriptorRate
from spine.shm.reader import Frame, FrameView, WaveformReader
from spine.shm.segment import normalize_name
from spine.shm.writer import WaveformWriter, WrittenFrame

log = logging.getLogger(__name__)

# request ids of recent descriptors, to recognise the broker's refusals of them
_SENT_MEMORY = 1024
# replaced instances remembered per segment name
_RETIRED_MEMORY = 16
# log the first few refusals of each kind, then every LOG_EVERY-th
_LOG_FIRST, _LOG_EVERY = 3, 1000


def _count(counts: dict[str, int], key: str) -> int:
    n = counts[key] = counts.get(key, 0) + 1
    return n


def _worth_logging(n: int) -> bool:
    return n <= _LOG_FIRST or n % _LOG_EVERY == 0


# --------------------------------------------------------------------------- writer side

@dataclass
class PublisherCounters:
    """What a DescriptorPublisher did with the frames it was offered."""

    frames: int = 0           # frames offered
    published: int = 0        # frames announced (to every destination that took it)
    not_due: int = 0          # frames the rate (every / max_rate_hz) left unannounced
    send_failed: dict[str, int] = field(default_factory=dict)  # destination → descriptors dropped on a full queue
    refused: dict[str, int] = field(default_factory=dict)      # broker's reason → descriptors it could not route


class DescriptorPublisher:
    """Announce a writer's frames on the data plane of `component`, never waiting for anybody.

    Each announced frame's WaveformSHM goes unicast to every instance named in
    `to` and, if `topic` is given, is published on that topic for any number
    of subscribers.  `every` and `max_rate_hz` thin the announcements (see
    DescriptorRate).  A descriptor that does not fit in a full send queue is
    dropped and counted in `counters.send_failed`; a descriptor the broker
    cannot route comes back to `component` as an ERROR message, which
    `handle_refusal` recognises and counts.
    """

    def __init__(self, component: Component, writer: WaveformWriter, *, to: str | Iterable[str] = (),
                 topic: str | None = None, every: int = 1, max_rate_hz: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.component = component
        self.writer = writer
        self.to: tuple[str, ...] = (to,) if isinstance(to, str) else tuple(to)
        self.topic = topic
        if not self.to and not topic:
            raise ConfigError("a DescriptorPublisher needs readers to send to (to=...) or a topic (topic=...)")
        self.rate = DescriptorRate(every, max_rate_hz)
        self.counters = PublisherCounters()
        self._clock = clock
        self._sent: OrderedDict[bytes, int] = OrderedDict()  # request id → frame index

    def write(self, data, timestamp_ns: int | None = None) -> WrittenFrame:
        """Commit one frame with the writer, then announce it if it is due; never blocks."""
        written = self.writer.write(data, timestamp_ns)
        self.offer(written)
        return written

    def offer(self, written: WrittenFrame, now: float | None = None) -> bool:
        """Announce `written` (a frame this writer committed) if the rate says so; True if announced."""
        self.counters.frames += 1
        if not self.rate.frame(self._clock() if now is None else now):
            self.counters.not_due += 1
            return False
        self.announce(written)
        return True

    def announce(self, written: WrittenFrame) -> None:
        """Send the descriptor of `written` to every destination now, whatever the rate."""
        request_id = uuid.uuid4().bytes
        spike = pb.NeuralSpike(request_id=str(uuid.UUID(bytes=request_id)), timestamp=envelope.now_ms(),
                               waveform_shm=descriptor_for(self.writer, written))
        payload = spike.SerializeToString()
        for name in self.to:
            self._send(name, Kind.SEND, request_id, payload)
        if self.topic:
            self._send(self.topic, Kind.PUBLISH, request_id, payload)
        self._sent[request_id] = written.frame_index
        if len(self._sent) > _SENT_MEMORY:
            self._sent.popitem(last=False)
        self.counters.published += 1

    def _send(self, to: str, kind: Kind, request_id: bytes, payload: bytes) -> None:
        try:
            self.component.send_bytes(to, request_id, payload, kind=kind, msg_class=MsgClass.PHYSICS)
        except SendFailed as exc:
            n = _count(self.counters.send_failed, to)
            if _worth_logging(n):
                log.warning("%s: dropped a waveform descriptor for %r (%d so far): %s",
                            self.component.name, to, n, exc)

    def handle_refusal(self, msg: Message) -> bool:
        """If `msg` is the broker refusing one of the recent descriptors, count it and return True.

        Feed it the messages the writer's component receives; anything else
        returns False untouched.  The reason (e.g. "unknown_recipient": that
        reader is not connected) is counted in `counters.refused`.
        """
        if msg.kind is not Kind.ERROR or msg.request_id not in self._sent:
            return False
        try:
            spike = msg.spike
        except EnvelopeError:
            text, reason = "", RefusalReason.UNSPECIFIED
        else:
            text = spike.text_data
            try:
                reason = RefusalReason(spike.refusal.reason)
            except ValueError:  # a reason this client does not know yet
                reason = RefusalReason.UNSPECIFIED
        reason = reason.label if reason else "refused"
        n = _count(self.counters.refused, reason)
        if _worth_logging(n):
            log.warning("%s: the broker refused the descriptor of frame %d (%d so far): %s",
                        self.component.name, self._sent[msg.request_id], n, text)
        return True


# --------------------------------------------------------------------------- reader side

@dataclass(frozen=True)
class FollowedFrame:
    """A descriptor whose frame was read whole: `frame` is a consistent copy."""

    sender: str
    descriptor: pb.WaveformSHM
    frame: Frame
    received_ns: int  # time.time_ns() once the frame was held; minus descriptor.timestamp_ns = its age


@dataclass(frozen=True)
class FollowedView:
    """A descriptor whose frame is still in its slot: `view` reads it in place (validate it with `with`)."""

    sender: str
    descriptor: pb.WaveformSHM
    view: FrameView


@dataclass(frozen=True)
class OverwrittenFrame:
    """A descriptor that came too late: its frame was overwritten (or its segment replaced) and was not read."""

    sender: str
    descriptor: pb.WaveformSHM
    reason: str


@dataclass
class FollowerCounters:
    """What a DescriptorFollower made of the descriptors it received."""

    frames: int = 0        # frames read (or viewed) whole
    overwritten: int = 0   # descriptors whose frame was gone
    refused: dict[str, int] = field(default_factory=dict)  # reason → descriptors not followed
    other: int = 0         # messages that were not descriptors


class DescriptorFollower:
    """Follow WaveformSHM descriptors arriving at `component` and read the frames they point at.

    Segments are opened by the name in each descriptor (checked as
    WaveformReader checks them: our uid, mode 0600, valid layout), and opened
    again if the writer recreated the segment; `reader`, if given, is used for
    its segment until then.  `segments` and `senders`, if given, restrict which
    segment names and which (authenticated) senders are followed; other
    descriptors are refused and counted.  Messages that are not descriptors go
    to `on_other` (by default they are counted and dropped).
    """

    def __init__(self, component: Component, reader: WaveformReader | None = None, *,
                 segments: Collection[str] | None = None, senders: Collection[str] | None = None,
                 on_other: Callable[[Message], None] | None = None) -> None:
        self.component = component
        self.counters = FollowerCounters()
        self._segments = None if segments is None else {normalize_name(s) for s in segments}
        self._senders = None if senders is None else set(senders)
        self._on_other = on_other
        self._readers: dict[str, WaveformReader] = {}
        self._given = reader
        self._retired: dict[str, set[int]] = {}  # segment name → ids of instances replaced since
        if reader is not None:
            self._readers[reader.name] = reader

    def next(self, timeout: float | None = None, out=None) -> FollowedFrame | OverwrittenFrame | None:
        """The next descriptor's frame, copied (into `out` if given), or its overwritten notice.

        Waits up to `timeout` seconds (None: no limit) for a descriptor;
        returns None if none came.  With `out`, the frame's data lives in
        `out` until the next call.
        """
        return self._next(timeout, lambda msg, desc: self._read(msg, desc, out))

    def next_view(self, timeout: float | None = None) -> FollowedView | OverwrittenFrame | None:
        """Like `next`, but the frame is read in place: use `event.view` in a `with` block, which validates it."""
        return self._next(timeout, self._view)

    def handle(self, msg: Message, out=None) -> FollowedFrame | OverwrittenFrame | None:
        """Follow `msg` if it is a descriptor (for callers running their own receive loop); else None.

        Unlike `next`, a message that is not a descriptor is returned to the
        caller as None without going to `on_other` or being counted.
        """
        desc = self._descriptor(msg)
        return None if desc is None else self._read(msg, desc, out)

    def _next(self, timeout: float | None, follow):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            msg = self.component.recv(timeout=left)
            if msg is None:
                return None
            desc = self._descriptor(msg)
            if desc is None:
                self.counters.other += 1
                if self._on_other is not None:
                    self._on_other(msg)
                continue
            event = follow(msg, desc)
            if event is not None:
                return event

    def _descriptor(self, msg: Message) -> pb.WaveformSHM | None:
        if msg.kind not in (Kind.SEND, Kind.PUBLISH) or msg.header.msg_class != MsgClass.PHYSICS:
            return None
        try:
            spike = msg.spike
        except EnvelopeError:
            return None
        if spike.WhichOneof("payload") != "waveform_shm":
            return None
        return spike.waveform_shm

    def _refuse(self, msg: Message, reason: str, detail: str) -> None:
        n = _count(self.counters.refused, reason)
        if _worth_logging(n):
            log.warning("%s: not following a waveform descriptor from %r (%d so far): %s",
                        self.component.name, msg.sender, n, detail)

    def _reader_for(self, msg: Message, desc: pb.WaveformSHM) -> WaveformReader | OverwrittenFrame | None:
        """The reader of the descriptor's segment instance, an overwritten notice, or None (refused)."""
        if self._senders is not None and msg.sender not in self._senders:
            self._refuse(msg, "unexpected_sender", f"{msg.sender!r} is not among the followed writers")
            return None
        try:
            name = normalize_name(desc.segment_name)
        except ShmError as exc:
            self._refuse(msg, "bad_segment_name", str(exc))
            return None
        if self._segments is not None and name not in self._segments:
            self._refuse(msg, "unexpected_segment", f"segment {name!r} is not among the followed segments")
            return None
        if desc.segment_id in self._retired.get(name, ()):
            return self._gone(msg, desc, f"segment {name!r} was replaced by a new instance since")
        reader = self._readers.get(name)
        if reader is not None and reader.segment_id != desc.segment_id:
            self._retire(name)
            reader = None
        if reader is None:
            try:
                reader = WaveformReader(name)
            except ShmError as exc:
                self._refuse(msg, "cannot_open", str(exc))
                return None
            self._readers[name] = reader
            if reader.segment_id != desc.segment_id:
                self._retired.setdefault(name, set()).add(desc.segment_id)
                return self._gone(msg, desc, f"segment {name!r} was replaced by a new instance since")
        return reader

    def _retire(self, name: str) -> None:
        """Close the reader of an instance of `name` that its writer replaced; its late descriptors are gone."""
        retired = self._retired.setdefault(name, set())
        retired.add(self._readers[name].segment_id)
        if len(retired) > _RETIRED_MEMORY:
            retired.pop()
        self._close(name)

    def _close(self, name: str) -> None:
        old = self._readers.pop(name)
        if old is not self._given:
            old.close()

    def _gone(self, msg: Message, desc: pb.WaveformSHM, reason: str) -> OverwrittenFrame:
        self.counters.overwritten += 1
        return OverwrittenFrame(msg.sender, desc, reason)

    def _read(self, msg: Message, desc: pb.WaveformSHM, out) -> FollowedFrame | OverwrittenFrame | None:
        reader = self._reader_for(msg, desc)
        if not isinstance(reader, WaveformReader):
            return reader
        try:
            frame = read_descriptor(reader, desc, out)
        except ShmFrameOverwritten as exc:
            return self._gone(msg, desc, str(exc))
        except (ShmError, ProtocolError) as exc:
            self._refuse(msg, "inconsistent", str(exc))
            return None
        self.counters.frames += 1
        return FollowedFrame(msg.sender, desc, frame, time.time_ns())

    def _view(self, msg: Message, desc: pb.WaveformSHM) -> FollowedView | OverwrittenFrame | None:
        reader = self._reader_for(msg, desc)
        if not isinstance(reader, WaveformReader):
            return reader
        try:
            view = view_descriptor(reader, desc)
        except ShmFrameOverwritten as exc:
            return self._gone(msg, desc, str(exc))
        except (ShmError, ProtocolError) as exc:
            self._refuse(msg, "inconsistent", str(exc))
            return None
        self.counters.frames += 1
        return FollowedView(msg.sender, desc, view)

    def close(self) -> None:
        """Unmap the segments this follower opened (a reader passed in stays open: its owner closes it)."""
        for name in list(self._readers):
            self._close(name)
