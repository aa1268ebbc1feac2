"""SEC-01 framing: header layout, streaming, each rejection before the payload, and a fuzz run."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spine.errors import (BadChecksumError, BadLengthError, BadMagicError, ConfigError, ReplayError,
                          SecureChannelError)
from spine.resilience.secure_channel import (HEADER_SIZE, MAGIC, UINT32_MAX, ChannelFrame, FrameDecoder,
                                             FrameEncoder, encode_frame)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_header_is_four_big_endian_uint32_magic_length_crc_sequence() -> None:
    frame = encode_frame(b"run ls", sequence_id=7)
    assert HEADER_SIZE == 16
    assert frame[:16] == struct.pack(">IIII", 0xDEADBEEF, 6, zlib.crc32(b"run ls"), 7)
    assert frame[:4] == b"\xde\xad\xbe\xef"
    assert frame[16:] == b"run ls"


def test_frames_come_out_whole_however_the_stream_is_split() -> None:
    encoder = FrameEncoder()
    stream = b"".join(encoder.encode(p) for p in (b"first", b"", b"third" * 100))
    decoder = FrameDecoder()
    frames = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i:i + 1])
    assert frames == [ChannelFrame(0, b"first"), ChannelFrame(1, b""), ChannelFrame(2, b"third" * 100)]
    assert decoder.buffered == 0
    decoder.finish()


def test_bad_magic_is_rejected_from_the_first_four_bytes() -> None:
    with pytest.raises(BadMagicError, match="0xCAFEBABE"):
        FrameDecoder().feed(b"\xca\xfe\xba\xbe")


def test_oversized_length_is_rejected_before_the_payload_arrives() -> None:
    header = struct.pack("!II", MAGIC, 1025)
    with pytest.raises(BadLengthError, match="1025"):
        FrameDecoder(max_payload=1024).feed(header)


def test_a_flipped_payload_bit_is_caught_by_the_crc() -> None:
    payload = b"rm -rf /tmp/x"
    frame = encode_frame(payload, 0)
    for bit in range(len(payload) * 8):
        damaged = bytearray(frame)
        damaged[HEADER_SIZE + bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BadChecksumError):
            FrameDecoder().feed(bytes(damaged))


def test_a_replayed_frame_is_rejected() -> None:
    encoder = FrameEncoder()
    first = encoder.encode(b"transfer")
    decoder = FrameDecoder()
    assert decoder.feed(first) == [ChannelFrame(0, b"transfer")]
    with pytest.raises(ReplayError, match="sequence_id 0, expected 1"):
        decoder.feed(first)


def test_reordered_or_skipped_frames_are_rejected() -> None:
    encoder = FrameEncoder()
    frames = [encoder.encode(b"%d" % i) for i in range(3)]
    with pytest.raises(ReplayError):
        FrameDecoder().feed(frames[1])
    decoder = FrameDecoder()
    decoder.feed(frames[0])
    with pytest.raises(ReplayError):
        decoder.feed(frames[2])


def test_after_an_error_the_decoder_refuses_everything() -> None:
    decoder = FrameDecoder()
    with pytest.raises(BadMagicError):
        decoder.feed(b"\x00" * 16)
    with pytest.raises(SecureChannelError, match="already failed"):
        decoder.feed(encode_frame(b"ok", 0))


def test_stream_ending_inside_a_frame_is_reported() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"abcdef", 0)[:-1])
    with pytest.raises(SecureChannelError, match="ended inside a frame"):
        decoder.finish()


def test_encoder_refuses_payloads_over_the_maximum() -> None:
    with pytest.raises(BadLengthError):
        FrameEncoder(max_payload=4).encode(b"12345")


def test_sequence_numbers_run_out_after_uint32_max() -> None:
    encoder = FrameEncoder(first_sequence=UINT32_MAX)
    last = encoder.encode(b"last")
    with pytest.raises(SecureChannelError, match="exhausted"):
        encoder.encode(b"one too many")
    decoder = FrameDecoder(first_sequence=UINT32_MAX)
    assert decoder.feed(last) == [ChannelFrame(UINT32_MAX, b"last")]
    with pytest.raises(ReplayError):
        decoder.feed(encode_frame(b"wrapped", 0))


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError):
        FrameDecoder(max_payload=-1)
    with pytest.raises(ConfigError):
        FrameEncoder(first_sequence=UINT32_MAX + 1)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@FUZZ
@given(payloads=st.lists(st.binary(max_size=300), max_size=6), data=st.data())
def test_any_split_of_a_valid_stream_decodes_to_the_same_frames(payloads: list[bytes], data: st.DataObject) -> None:
    encoder = FrameEncoder(max_payload=300)
    stream = b"".join(encoder.encode(p) for p in payloads)
    decoder = FrameDecoder(max_payload=300)
    frames = []
    for piece in data.draw(chunked(stream)):
        frames += decoder.feed(piece)
    assert [f.payload for f in frames] == payloads
    assert [f.sequence_id for f in frames] == list(range(len(payloads)))


@FUZZ
@given(garbage=st.binary(max_size=2000), data=st.data())
def test_arbitrary_bytes_raise_nothing_but_codec_errors(garbage: bytes, data: st.DataObject) -> None:
    decoder = FrameDecoder(max_payload=512)
    try:
        for piece in data.draw(chunked(garbage)):
            decoder.feed(piece)
    except SecureChannelError:
        pass


@FUZZ
@given(payloads=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4),
       position=st.integers(min_value=0), value=st.integers(0, 255), data=st.data())
def test_a_mutated_valid_stream_yields_only_true_frames_or_codec_errors(
        payloads: list[bytes], position: int, value: int, data: st.DataObject) -> None:
    encoder = FrameEncoder(max_payload=64)
    stream = bytearray(b"".join(encoder.encode(p) for p in payloads))
    position %= len(stream)
    if stream[position] == value:
        value ^= 0xFF
    stream[position] = value
    decoder = FrameDecoder(max_payload=64)
    frames: list[ChannelFrame] = []
    try:
        for piece in data.draw(chunked(bytes(stream))):
            frames += decoder.feed(piece)
    except SecureChannelError:
        pass
    assert [f.payload for f in frames] == payloads[:len(frames)]
