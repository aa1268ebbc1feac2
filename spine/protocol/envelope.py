"""Building, encoding and validating NeuralSpike envelopes."""

from __future__ import annotations

import time
import uuid

from google.protobuf.message import DecodeError

from spine.errors import EnvelopeError
from spine.protocol import neural_spike_pb2 as pb


def now_ms() -> int:
    """Current Unix time in milliseconds (the envelope's ``timestamp`` unit)."""
    return time.time_ns() // 1_000_000


def new_spike(request_id: bytes | None = None, **fields) -> pb.NeuralSpike:
    """Return a NeuralSpike with a UUID v4 request_id and the current timestamp set.

    ``fields`` are passed to the NeuralSpike constructor (e.g. ``text_data="hi"``).
    """
    rid = uuid.UUID(bytes=request_id) if request_id is not None else uuid.uuid4()
    return pb.NeuralSpike(request_id=str(rid), timestamp=now_ms(), **fields)


def request_id_bytes(spike: pb.NeuralSpike) -> bytes:
    """The envelope's request_id as the 16 bytes the routing header carries."""
    try:
        return uuid.UUID(spike.request_id).bytes
    except ValueError:
        raise EnvelopeError(f"request_id {spike.request_id!r} is not a UUID") from None


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
