"""The routing header: the small fixed frame in front of every NeuralSpike payload.

A message on the control or data plane is two ZeroMQ frames, ``[header, payload]``; on the
broker's ROUTER side the peer's routing id comes first. The broker reads only the header
(84 bytes, network byte order) and forwards the payload frame untouched, so its work per
message does not depend on the payload size. The full contract is in ``docs/framing.md``.

    offset size  field
    0      1     version      FORMAT_VERSION (1)
    1      1     msg_class    MsgClass: age limit class and priority hint
    2      1     kind         Kind: SEND, REQUEST, REPLY, ERROR, PUBLISH, BROKER, HEARTBEAT
    3      1     flags        Flag bits
    4      16    request_id   UUID bytes, equal to NeuralSpike.request_id
    20     32    sender       instance name, UTF-8, NUL padded (stamped by the broker)
    52     32    recipient    instance name (or topic for PUBLISH), UTF-8, NUL padded
"""

from __future__ import annotations

import struct
import uuid
from typing import NamedTuple
from enum import IntEnum, IntFlag

from spine.errors import ProtocolError

FORMAT_VERSION = 1
NAME_SIZE = 32
HEADER = struct.Struct("!BBBB16s32s32s")
HEADER_SIZE = HEADER.size  # 84
SENDER_SLICE = slice(20, 52)
RECIPIENT_SLICE = slice(52, 84)
REQUEST_ID_SLICE = slice(4, 20)
BROKER = "broker"  # the sender name stamped on what the broker itself says


class MsgClass(IntEnum):
    """What a message is, which decides its age limit (SPEC §2 temporal coherence)."""

    CONTROL = 0     # admin, commands: 100 ms
    COGNITIVE = 1   # cognitive tokens and state: 10 ms
    PHYSICS = 2     # waveform descriptors: 113 µs
    BULK = 3        # bulk data: no age limit
    TELEMETRY = 4   # logs and metrics: fire-and-forget


class Kind(IntEnum):
    """What the broker does with a message."""

    SEND = 0        # one-way unicast to ``recipient``
    REQUEST = 1     # unicast expecting a REPLY with the same request_id
    REPLY = 2       # answer to a REQUEST
    ERROR = 3       # the broker (or a peer) could not handle a message; payload says why
    PUBLISH = 4     # broadcast on the event socket; ``recipient`` is the topic
    BROKER = 5      # addressed to the broker itself (ping, status, admin)
    HEARTBEAT = 6   # liveness, both directions


class Flag(IntFlag):
    """Header flag bits."""

    NONE = 0
    STAMPED = 1     # the sender field was written by the broker from the authenticated key


_KNOWN_FLAGS = int(Flag.STAMPED)  # a v1 header with any other bit set is malformed


class Header(NamedTuple):
    """A decoded routing header (a named tuple: decoding one is on every receive)."""

    msg_class: MsgClass
    kind: Kind
    request_id: bytes
    sender: str
    recipient: str
    flags: Flag = Flag.NONE
    version: int = FORMAT_VERSION

    def pack(self) -> bytes:
        """Encode this header into its 84-byte wire form."""
        return pack_header(self.kind, self.recipient, self.request_id,
                           msg_class=self.msg_class, sender=self.sender, flags=self.flags)


def encode_name(name: str) -> bytes:
    """Encode an instance name for a header field, refusing what cannot round-trip."""
    raw = name.encode("utf-8")
    if len(raw) > NAME_SIZE:
        raise ProtocolError(f"name {name!r} is {len(raw)} bytes; names are at most {NAME_SIZE}")
    if b"\0" in raw:
        raise ProtocolError(f"name {name!r} contains a NUL byte")
    return raw


def pack_header(kind: Kind, recipient: str, request_id: bytes, *,
                msg_class: MsgClass = MsgClass.CONTROL, sender: str = "",
                flags: Flag = Flag.NONE) -> bytes:
    """Build the 84-byte header for one message."""
    if len(request_id) != 16:
        raise ProtocolError(f"request_id must be 16 bytes, got {len(request_id)}")
    return HEADER.pack(FORMAT_VERSION, msg_class, kind, flags, request_id,
                       encode_name(sender), encode_name(recipient))


def unpack_header(raw: bytes) -> Header:
    """Decode and validate a header frame; raise ProtocolError on anything malformed."""
    if len(raw) != HEADER_SIZE:
        raise ProtocolError(f"routing header is {len(raw)} bytes, expected {HEADER_SIZE}")
    version, msg_class, kind, flags, request_id, sender, recipient = HEADER.unpack(raw)
    if version != FORMAT_VERSION:
        raise ProtocolError(f"routing header version {version}, this build speaks {FORMAT_VERSION}")
    if flags & ~_KNOWN_FLAGS:
        raise ProtocolError(f"routing header field out of range: unknown flag bits {flags:#04x}")
    try:  # dictionary look-ups: calling the enum classes costs several times more
        return Header(_CLASSES[msg_class], _KINDS[kind], request_id, _decode_name(sender),
                      _decode_name(recipient), _FLAGS[flags], version)
    except KeyError as exc:
        raise ProtocolError(f"routing header field out of range: {exc} "
                            f"(class {msg_class}, kind {kind})") from None


_CLASSES = {int(c): c for c in MsgClass}
_KINDS = {int(k): k for k in Kind}
_FLAGS = {i: Flag(i) for i in range(256) if not i & ~_KNOWN_FLAGS}


def _decode_name(field: bytes) -> str:
    raw = field.rstrip(b"\0")
    if b"\0" in raw:
        raise ProtocolError("routing header name contains a NUL byte before its end")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("routing header name is not UTF-8") from None


def new_request_id() -> bytes:
    """Return a fresh UUID v4 as 16 bytes."""
    return uuid.uuid4().bytes
