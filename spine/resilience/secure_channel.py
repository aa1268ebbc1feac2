"""SEC-01 framing for the executor's guest-agent channel: a 16-byte header, then the payload.

Header, network byte order, four uint32 (``struct`` format ``!IIII``)::

    magic 0xDEADBEEF | payload_len | crc32(payload) | sequence_id

Each sender numbers its frames from ``first_sequence`` upwards by one; the receiver
accepts exactly the next number, so a replayed, reordered or dropped frame is rejected
(the transport underneath is an ordered byte stream, so any gap is tampering or loss).
The decoder checks magic, then length (against ``max_payload``), then sequence, as soon
as those header bytes arrive, and the CRC once the payload is complete; each failure
raises its own :class:`~spine.errors.SecureChannelError` subclass before any payload is
handed on. After an error the stream is out of step, so the decoder refuses all further
input: open a new channel.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from spine.errors import (BadChecksumError, BadLengthError, BadMagicError, ConfigError, ReplayError,
                          SecureChannelError)

HEADER = struct.Struct("!IIII")
HEADER_SIZE = HEADER.size
MAGIC = 0xDEADBEEF
UINT32_MAX = 0xFFFFFFFF
DEFAULT_MAX_PAYLOAD = 1 << 20

_MAGIC_BYTES = struct.pack("!I", MAGIC)


@dataclass(frozen=True)
class ChannelFrame:
    """One decoded frame: its sequence number and its payload (CRC already verified)."""

    sequence_id: int
    payload: bytes


def _check_limits(max_payload: int, first_sequence: int) -> None:
    if not 0 <= max_payload <= UINT32_MAX:
        raise ConfigError(f"secure channel max_payload must be 0..{UINT32_MAX} bytes, got {max_payload}")
    if not 0 <= first_sequence <= UINT32_MAX:
        raise ConfigError(f"secure channel first_sequence must be 0..{UINT32_MAX}, got {first_sequence}")


def encode_frame(payload: bytes, sequence_id: int, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Return header + payload for one frame; raise BadLengthError if the payload is too long."""
    if len(payload) > max_payload:
        raise BadLengthError(f"payload of {len(payload)} bytes exceeds the channel maximum of {max_payload}; "
                             f"split it or raise max_payload on both ends")
    if not 0 <= sequence_id <= UINT32_MAX:
        raise ReplayError(f"sequence_id {sequence_id} does not fit in uint32")
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload), sequence_id) + bytes(payload)


class FrameEncoder:
    """Numbers and frames outgoing payloads for one channel direction."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD, first_sequence: int = 0) -> None:
        _check_limits(max_payload, first_sequence)
        self.max_payload = max_payload
        self.next_sequence = first_sequence

    def encode(self, payload: bytes) -> bytes:
        """ChannelFrame ``payload`` with the next sequence number; raise once the 2**32 numbers are spent."""
        if self.next_sequence > UINT32_MAX:
            raise SecureChannelError("secure channel sequence numbers exhausted (2**32 frames); open a new channel")
        frame = encode_frame(payload, self.next_sequence, self.max_payload)
        self.next_sequence += 1
        return frame


class FrameDecoder:
    """Turns an incoming byte stream, fed in pieces of any size, into verified frames."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD, first_sequence: int = 0) -> None:
        _check_limits(max_payload, first_sequence)
        self.max_payload = max_payload
        self.expected_sequence = first_sequence
        self._buffer = bytearray()
        self._failure: SecureChannelError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[ChannelFrame]:
        """Add received bytes; return the frames they complete, in order.

        Raises BadMagicError, BadLengthError, ReplayError or BadChecksumError for the first
        bad frame (frames before it in the same call are lost with the channel).
        """
        if self._failure is not None:
            raise SecureChannelError(f"secure channel already failed ({self._failure}); open a new channel")
        self._buffer += data
        try:
            return self._drain()
        except SecureChannelError as exc:
            self._failure = exc
            self._buffer.clear()
            raise

    def finish(self) -> None:
        """Declare end of stream; raise SecureChannelError if it ended inside a frame."""
        if self._buffer:
            raise SecureChannelError(f"secure channel stream ended inside a frame ({len(self._buffer)} bytes "
                                     f"of an incomplete frame)")

    def _drain(self) -> list[ChannelFrame]:
        buf = self._buffer
        frames: list[ChannelFrame] = []
        pos = 0
        while True:
            available = len(buf) - pos
            if available >= 4 and buf[pos:pos + 4] != _MAGIC_BYTES:
                got = int.from_bytes(buf[pos:pos + 4], "big")
                raise BadMagicError(f"secure channel frame starts with 0x{got:08X}, not 0x{MAGIC:08X}: "
                                    f"not a SEC-01 peer, or the stream is out of step")
            if available >= 8:
                length = int.from_bytes(buf[pos + 4:pos + 8], "big")
                if length > self.max_payload:
                    raise BadLengthError(f"secure channel frame declares {length} payload bytes, "
                                         f"more than the maximum of {self.max_payload}")
            if available < HEADER_SIZE:
                break
            _, length, crc, sequence_id = HEADER.unpack_from(buf, pos)
            if sequence_id != self.expected_sequence:
                raise ReplayError(f"secure channel frame has sequence_id {sequence_id}, expected "
                                  f"{self.expected_sequence}: replayed, reordered or dropped frame")
            end = pos + HEADER_SIZE + length
            if len(buf) < end:
                break
            payload = bytes(buf[pos + HEADER_SIZE:end])
            if zlib.crc32(payload) != crc:
                raise BadChecksumError(f"secure channel frame {sequence_id}: payload CRC-32 "
                                       f"0x{zlib.crc32(payload):08X} does not match header 0x{crc:08X}")
            frames.append(ChannelFrame(sequence_id, payload))
            self.expected_sequence += 1
            pos = end
        if pos:
            del buf[:pos]
        return frames
