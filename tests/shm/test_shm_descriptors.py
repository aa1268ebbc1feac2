"""WaveformSHM descriptors: built from a write, followed by a reader, refused once stale or inconsistent."""

from __future__ import annotations

import pytest

from shmtest_support import cleanup, unique_name
from spine.errors import ProtocolError, ShmError, ShmFrameOverwritten
from spine.protocol import neural_spike_pb2 as pb
from spine.shm import WaveformReader, WaveformWriter, descriptor_for, read_descriptor


@pytest.fixture
def channel():
    name = unique_name("desc")
    with WaveformWriter(name, 1024, 4) as writer, WaveformReader(name) as reader:
        yield writer, reader
    cleanup(name)


def test_descriptor_carries_what_the_write_committed(channel):
    writer, _ = channel
    written = writer.write(b"x" * 100, timestamp_ns=777)
    desc = descriptor_for(writer, written)
    assert (desc.segment_id, desc.segment_name) == (writer.segment_id, writer.name)
    assert (desc.data_size, desc.sequence_num, desc.timestamp_ns) == (100, written.sequence_num, 777)
    assert (desc.slot_index, desc.frame_index) == (0, 0)


def test_descriptor_survives_the_wire_and_reads_its_frame(channel):
    writer, reader = channel
    descs = [descriptor_for(writer, writer.write(bytes([i]) * 10)) for i in range(3)]
    wire = [pb.WaveformSHM.FromString(d.SerializeToString()) for d in descs]
    assert [bytes(read_descriptor(reader, d).data) for d in wire] == [bytes([i]) * 10 for i in range(3)]


def test_descriptor_of_an_overwritten_frame_is_reported_not_read(channel):
    writer, reader = channel
    desc = descriptor_for(writer, writer.write(b"old"))
    for _ in range(4):
        writer.write(b"new")
    with pytest.raises(ShmFrameOverwritten):
        read_descriptor(reader, desc)


def test_descriptor_with_a_stale_sequence_number_is_reported(channel):
    writer, reader = channel
    desc = descriptor_for(writer, writer.write(b"frame"))
    desc.sequence_num += 2
    with pytest.raises(ShmFrameOverwritten, match="rewritten"):
        read_descriptor(reader, desc)


@pytest.mark.parametrize(
    "field, value, error, match",
    [
        ("segment_id", 1, ShmError, "recreated"),
        ("segment_name", "/another-segment", ShmError, "is for segment"),
        ("data_size", 4096, ProtocolError, "claims 4096 bytes"),
        ("slot_index", 3, ProtocolError, "slot"),
    ],
)
def test_descriptor_contradicting_the_segment_is_refused(channel, field, value, error, match):
    writer, reader = channel
    desc = descriptor_for(writer, writer.write(b"frame"))
    setattr(desc, field, value)
    with pytest.raises(error, match=match):
        read_descriptor(reader, desc)
