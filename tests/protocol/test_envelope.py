"""Envelope validation, and unknown fields from a newer schema surviving a v1 hop."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, unknown_fields

from spine.errors import EnvelopeError
from spine.protocol import envelope
from spine.protocol import neural_spike_pb2 as pb

# Field 99 (varint 42) and field 100 (length-delimited b"new"), unknown to v1.
UNKNOWN_VARINT_99 = bytes([0x98, 0x06, 42])
UNKNOWN_BYTES_100 = bytes([0xA2, 0x06, 3]) + b"new"


def test_new_spike_has_a_uuid4_request_id_and_a_timestamp():
    spike = envelope.new_spike(text_data="hi")
    assert uuid.UUID(spike.request_id).version == 4
    assert spike.timestamp > 0
    assert envelope.validate(spike) is spike


def test_new_spike_keeps_a_given_request_id_and_header_bytes_match():
    rid = uuid.uuid4().bytes
    spike = envelope.new_spike(rid)
    assert envelope.request_id_bytes(spike) == rid


def test_encode_decode_round_trip():
    spike = envelope.new_spike(text_data="hello", sender=pb.PHYSICS_ENGINE,
                               recipient=pb.ORCHESTRATOR)
    decoded = envelope.decode(envelope.encode(spike))
    assert decoded == spike
    assert decoded.HasField("recipient") and decoded.recipient == pb.ORCHESTRATOR


def test_decode_accepts_a_memoryview():
    spike = envelope.new_spike(text_data="x")
    assert envelope.decode(memoryview(envelope.encode(spike))) == spike


def test_envelope_without_request_id_is_refused():
    spike = pb.NeuralSpike(timestamp=envelope.now_ms(), text_data="x")
    with pytest.raises(EnvelopeError, match="no request_id"):
        envelope.validate(spike)
    with pytest.raises(EnvelopeError, match="no request_id"):
        envelope.decode(spike.SerializeToString())
    with pytest.raises(EnvelopeError, match="no request_id"):
        envelope.encode(spike)


@pytest.mark.parametrize("rid", ["42", "not-a-uuid", "0123456789abcdef0123456789abcdeg"])
def test_envelope_with_non_uuid_request_id_is_refused(rid):
    spike = pb.NeuralSpike(request_id=rid, timestamp=envelope.now_ms())
    with pytest.raises(EnvelopeError, match="not a UUID"):
        envelope.decode(spike.SerializeToString())


@pytest.mark.parametrize("timestamp", [0, -1])
def test_envelope_without_timestamp_is_refused(timestamp):
    spike = pb.NeuralSpike(request_id=str(uuid.uuid4()), timestamp=timestamp)
    with pytest.raises(EnvelopeError, match="no timestamp"):
        envelope.decode(spike.SerializeToString())


def test_empty_payload_is_refused_as_missing_fields():
    with pytest.raises(EnvelopeError):
        envelope.decode(b"")


@pytest.mark.parametrize("garbage", [
    b"\xff\xff\xff",                        # invalid tag varint
    b"\x0a\xff",                            # length runs past the end
    b"\x0a\x02\xff\xfe\x10\x01",            # request_id that is not UTF-8
    b"\x12\x05abc",                         # timestamp sent as a truncated string
    bytes(range(256)),
])
def test_garbage_protobuf_is_refused(garbage):
    with pytest.raises(EnvelopeError):
        envelope.decode(garbage)


def test_unknown_fields_from_a_newer_schema_survive_decode_and_reencode():
    spike = envelope.new_spike(text_data="from the future")
    newer = envelope.encode(spike) + UNKNOWN_VARINT_99 + UNKNOWN_BYTES_100

    decoded = envelope.decode(newer)
    kept = {(f.field_number, f.data) for f in unknown_fields.UnknownFieldSet(decoded)}
    assert kept == {(99, 42), (100, b"new")}
    reencoded = envelope.encode(decoded)
    assert reencoded.endswith(UNKNOWN_VARINT_99 + UNKNOWN_BYTES_100)
    assert envelope.decode(reencoded) == decoded


def _newer_neural_spike_class():
    """NeuralSpike of a hypothetical newer schema: v1 plus ``string future_note = 99``."""
    file_proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(file_proto)
    message = next(m for m in file_proto.message_type if m.name == "NeuralSpike")
    message.field.add(name="future_note", number=99, label=1, type=9, json_name="futureNote")
    pool = descriptor_pool.DescriptorPool()
    for dependency in pb.DESCRIPTOR.dependencies:
        dep_proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(dep_proto)
        pool.Add(dep_proto)
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("spine.v1.NeuralSpike"))


def test_a_newer_schema_field_reaches_a_newer_receiver_through_a_v1_hop():
    NewerSpike = _newer_neural_spike_class()
    sent = NewerSpike(request_id=str(uuid.uuid4()), timestamp=envelope.now_ms(),
                      text_data="hi", future_note="kept")

    relayed = envelope.encode(envelope.decode(sent.SerializeToString()))  # the v1 hop

    received = NewerSpike.FromString(relayed)
    assert received.future_note == "kept"
    assert received.text_data == "hi" and received.request_id == sent.request_id


def test_uuid_text_and_fast_request_id_parsing_agree_with_the_uuid_module():
    from spine.protocol.envelope import new_uuid4_text, request_id_bytes, uuid_text

    for _ in range(2000):
        u = uuid.uuid4()
        assert uuid_text(u.bytes) == str(u)
        assert request_id_bytes(pb.NeuralSpike(request_id=str(u))) == u.bytes
        assert request_id_bytes(pb.NeuralSpike(request_id=str(u).upper())) == u.bytes
        fresh = uuid.UUID(new_uuid4_text())
        assert fresh.version == 4 and fresh.variant == uuid.RFC_4122
    # the other spellings uuid.UUID accepts still work; what it refuses is still refused
    assert request_id_bytes(pb.NeuralSpike(request_id="{12345678-1234-1234-1234-123456789abc}")) == \
        bytes.fromhex("12345678123412341234123456789abc")
    for bad in ("12345678-1234-1234-1234-12345678 9ab", "1234567g-1234-1234-1234-123456789abc", "x"):
        with pytest.raises(EnvelopeError):
            request_id_bytes(pb.NeuralSpike(request_id=bad))
