"""The routing header: round trips and every way a header frame can be malformed."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spine.errors import ProtocolError
from spine.protocol import framing
from spine.protocol.framing import (
    FORMAT_VERSION,
    HEADER_SIZE,
    Flag,
    Header,
    Kind,
    MsgClass,
    new_request_id,
    pack_header,
    unpack_header,
)

RID = bytes(range(16))


def raw_header(version: int = FORMAT_VERSION, msg_class: int = 0, kind: int = 0,
               flags: int = 0, request_id: bytes = RID, sender: bytes = b"a",
               recipient: bytes = b"b") -> bytes:
    """A header built byte by byte, bypassing pack_header's checks."""
    return struct.pack("!BBBB16s32s32s", version, msg_class, kind, flags, request_id,
                       sender, recipient)


def test_header_is_84_bytes_in_the_documented_layout():
    raw = pack_header(Kind.REQUEST, "memory-1", RID, msg_class=MsgClass.COGNITIVE,
                      sender="physics", flags=Flag.STAMPED)
    assert HEADER_SIZE == len(raw) == 84
    assert raw[0] == FORMAT_VERSION
    assert raw[1] == MsgClass.COGNITIVE
    assert raw[2] == Kind.REQUEST
    assert raw[3] == Flag.STAMPED
    assert raw[framing.REQUEST_ID_SLICE] == RID
    assert raw[framing.SENDER_SLICE] == b"physics".ljust(32, b"\0")
    assert raw[framing.RECIPIENT_SLICE] == b"memory-1".ljust(32, b"\0")


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("msg_class", list(MsgClass))
def test_every_kind_and_class_round_trips(kind, msg_class):
    raw = pack_header(kind, "to", RID, msg_class=msg_class, sender="from")
    assert unpack_header(raw) == Header(msg_class, kind, RID, "from", "to")


names = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                max_size=32).filter(lambda s: len(s.encode()) <= 32)


@given(sender=names, recipient=names, request_id=st.binary(min_size=16, max_size=16),
       kind=st.sampled_from(Kind), msg_class=st.sampled_from(MsgClass),
       flags=st.sampled_from([Flag.NONE, Flag.STAMPED]))
def test_any_valid_header_round_trips(sender, recipient, request_id, kind, msg_class, flags):
    header = Header(msg_class, kind, request_id, sender, recipient, flags)
    assert unpack_header(header.pack()) == header


def test_a_name_of_exactly_32_utf8_bytes_round_trips():
    name = "é" * 16  # 32 bytes in UTF-8, no NUL padding left
    assert unpack_header(pack_header(Kind.SEND, name, RID, sender=name)).recipient == name


def test_empty_sender_is_allowed_and_decodes_empty():
    assert unpack_header(pack_header(Kind.SEND, "x", RID)).sender == ""


def test_new_request_id_is_a_uuid4_in_16_bytes():
    import uuid
    rid = new_request_id()
    assert len(rid) == 16 and uuid.UUID(bytes=rid).version == 4
    assert new_request_id() != rid


@pytest.mark.parametrize("size", [0, 1, 83, 85, 168])
def test_header_of_wrong_length_is_refused(size):
    with pytest.raises(ProtocolError, match="84"):
        unpack_header(bytes(size))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_header_of_another_version_is_refused(version):
    with pytest.raises(ProtocolError, match="version"):
        unpack_header(raw_header(version=version))


@pytest.mark.parametrize("field,value", [("msg_class", len(MsgClass)), ("msg_class", 255),
                                         ("kind", len(Kind)), ("kind", 255)])
def test_header_with_out_of_range_enum_is_refused(field, value):
    with pytest.raises(ProtocolError, match="out of range"):
        unpack_header(raw_header(**{field: value}))


@pytest.mark.parametrize("field", ["sender", "recipient"])
def test_header_name_that_is_not_utf8_is_refused(field):
    with pytest.raises(ProtocolError, match="UTF-8"):
        unpack_header(raw_header(**{field: b"\xff\xfe"}))


@pytest.mark.parametrize("field", ["sender", "recipient"])
def test_header_name_with_an_inner_nul_is_refused(field):
    with pytest.raises(ProtocolError, match="NUL"):
        unpack_header(raw_header(**{field: b"ab\0cd"}))


def test_name_longer_than_32_bytes_is_refused_when_packing():
    with pytest.raises(ProtocolError, match="at most 32"):
        pack_header(Kind.SEND, "x" * 33, RID)
    with pytest.raises(ProtocolError, match="at most 32"):
        pack_header(Kind.SEND, "x", RID, sender="é" * 17)


def test_name_with_nul_is_refused_when_packing():
    with pytest.raises(ProtocolError, match="NUL"):
        pack_header(Kind.SEND, "a\0b", RID)


@pytest.mark.parametrize("size", [0, 15, 17, 36])
def test_request_id_of_wrong_size_is_refused_when_packing(size):
    with pytest.raises(ProtocolError, match="16 bytes"):
        pack_header(Kind.SEND, "x", bytes(size))


def test_unpack_accepts_a_memoryview_frame():
    raw = pack_header(Kind.SEND, "x", RID, sender="y")
    assert unpack_header(memoryview(raw)) == unpack_header(raw)


@pytest.mark.parametrize("flags", [0x02, 0x80, 0xFF])
def test_header_with_unknown_flag_bits_is_refused(flags):
    with pytest.raises(ProtocolError, match="flag"):
        unpack_header(raw_header(flags=flags))
