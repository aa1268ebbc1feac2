"""Building, encoding and validating NeuralSpike envelopes."""

from __future__ import annotations

import os
import time
import uuid

from google.protobuf.message import DecodeError

from spine.errors import EnvelopeError
from spine.protocol import neural_spike_pb2 as pb


def now_ms() -> int:
    """Current Unix time in milliseconds (the envelope's ``timestamp`` unit)."""
    return time.time_ns() // 1_000_000


def uuid_text(raw: bytes) -> str:
    """16 bytes as a UUID's canonical text (what ``str(uuid.UUID(bytes=raw))`` gives, at a third of the cost)."""
    h = raw.hex()
    if len(h) != 32:
        raise EnvelopeError(f"a UUID is 16 bytes, got {len(raw)}")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_uuid4_text() -> str:
    """A fresh random UUID v4 in canonical text (what ``str(uuid.uuid4())`` gives)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return uuid_text(raw)


def new_spike(request_id: bytes | None = None, **fields) -> pb.NeuralSpike:
    """Return a NeuralSpike with a UUID v4 request_id and the current timestamp set.

    ``fields`` are passed to the NeuralSpike constructor (e.g. ``text_data="hi"``).
    """
    rid = uuid_text(request_id) if request_id is not None else new_uuid4_text()
    return pb.NeuralSpike(request_id=rid, timestamp=now_ms(), **fields)


def request_id_bytes(spike: pb.NeuralSpike) -> bytes:
    """The envelope's request_id as the 16 bytes the routing header carries."""
    rid = spike.request_id
    # The canonical form every spine sender writes, parsed without building a uuid.UUID;
    # anything else takes uuid.UUID's slower path, which decides what is a UUID.
    if len(rid) == 36 and rid[8] == rid[13] == rid[18] == rid[23] == "-":
        try:
            raw = bytes.fromhex(rid[:8] + rid[9:13] + rid[14:18] + rid[19:23] + rid[24:])
        except ValueError:
            raw = b""
        if len(raw) == 16:
            return raw
    try:
        return uuid.UUID(rid).bytes
    except ValueError:
        raise EnvelopeError(f"request_id {rid!r} is not a UUID") from None


def validate(spike: pb.NeuralSpike) -> pb.NeuralSpike:
    """Check the fields every envelope must carry; return the envelope or raise EnvelopeError."""
    if not spike.request_id:
        raise EnvelopeError("envelope has no request_id; every NeuralSpike needs a UUID v4")
    request_id_bytes(spike)
    if spike.timestamp <= 0:
        raise EnvelopeError("envelope has no timestamp; set it to the creation time in Unix ms")
    return spike


def decode(payload: bytes | memoryview) -> pb.NeuralSpike:
    """Parse and validate a payload frame; unknown fields from newer schemas are kept."""
    spike = pb.NeuralSpike()
    try:
        spike.ParseFromString(payload)
    except DecodeError as exc:
        raise EnvelopeError(f"payload is not a valid NeuralSpike: {exc}") from None
    return validate(spike)


def encode(spike: pb.NeuralSpike) -> bytes:
    """Validate and serialise an envelope."""
    return validate(spike).SerializeToString()
