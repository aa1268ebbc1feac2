"""WaveformSHM descriptors on the bus: a writer announces frames, reader components follow them.

The first tests feed a DescriptorFollower hand-made messages (no sockets); the
rest run a real broker with the writer and the readers in their own processes.
"""

from __future__ import annotations

import multiprocessing as mp
import struct
import time
import uuid
import zlib
from collections import deque

import numpy as np
import pytest

from shmtest_support import cleanup, unique_name
from spine.client.component import Component, Message, Plane
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import Kind, MsgClass, pack_header, unpack_header
from spine.shm import (DescriptorFollower, DescriptorPublisher, FollowedFrame, FollowedView, OverwrittenFrame,
                       WaveformReader, WaveformWriter, descriptor_for)

SLOT_SIZE = 4096


def payload(frame: int, size: int = SLOT_SIZE) -> bytes:
    """Frame number, CRC-32 of the rest, then bytes derived from the frame number."""
    body = np.full(size - 16, frame % 251, dtype=np.uint8).tobytes()
    head = struct.pack("<Q", frame)
    return head + struct.pack("<Q", zlib.crc32(body, zlib.crc32(head))) + body


def intact(data, frame: int) -> bool:
    number, crc = struct.unpack_from("<QQ", data)
    return number == frame and zlib.crc32(bytes(data[16:]), zlib.crc32(bytes(data[:8]))) == crc


# --------------------------------------------------------------------------- without a broker

class FakeComponent:
    """Just enough of a Component for a follower: a name and a queue of received messages."""

    def __init__(self, messages: list[Message]) -> None:
        self.name = "viz"
        self.inbox = deque(messages)

    def recv(self, timeout: float | None = None) -> Message | None:
        return self.inbox.popleft() if self.inbox else None


def message(spike: pb.NeuralSpike, sender: str = "physics", msg_class: MsgClass = MsgClass.PHYSICS,
            kind: Kind = Kind.SEND) -> Message:
    header = unpack_header(pack_header(kind, "viz", uuid.uuid4().bytes, msg_class=msg_class, sender=sender))
    return Message(Plane.DATA, header, spike.SerializeToString())


def announce(writer: WaveformWriter, frame: int, **kwargs) -> Message:
    return message(new_spike(waveform_shm=descriptor_for(writer, writer.write(payload(frame)))), **kwargs)


@pytest.fixture
def segment():
    name = unique_name("bus")
    yield name
    cleanup(name)


def test_follower_reads_the_frames_its_descriptors_point_at(segment):
    with WaveformWriter(segment, SLOT_SIZE, 4) as writer:
        follower = DescriptorFollower(FakeComponent([announce(writer, i) for i in range(3)]))
        events = [follower.next(timeout=0) for _ in range(3)]
        follower.close()
    assert all(isinstance(e, FollowedFrame) and e.sender == "physics" for e in events)
    assert [e.frame.frame_index for e in events] == [0, 1, 2]
    assert all(intact(e.frame.data, i) for i, e in enumerate(events))
    assert (follower.counters.frames, follower.counters.overwritten) == (3, 0)


def test_late_descriptor_is_reported_overwritten_and_not_read(segment):
    with WaveformWriter(segment, SLOT_SIZE, 2) as writer:
        messages = [announce(writer, i) for i in range(5)]  # 2 slots: frames 0-2 are gone
        follower = DescriptorFollower(FakeComponent(messages))
        events = [follower.next(timeout=0) for _ in range(5)]
        follower.close()
    assert [type(e) for e in events] == [OverwrittenFrame] * 3 + [FollowedFrame] * 2
    assert [e.descriptor.frame_index for e in events] == [0, 1, 2, 3, 4]
    assert "overwritten" in events[0].reason
    assert (follower.counters.frames, follower.counters.overwritten) == (2, 3)


def test_in_place_view_of_a_followed_frame_is_validated_after_use(segment):
    with WaveformWriter(segment, SLOT_SIZE, 4) as writer:
        follower = DescriptorFollower(FakeComponent([announce(writer, 7)]))
        event = follower.next_view(timeout=0)
        assert isinstance(event, FollowedView)
        with event.view as view:
            ok = intact(view.data, 7)
        follower.close()
    assert ok


def test_follower_uses_a_given_reader_and_leaves_it_open_for_its_owner(segment):
    with WaveformWriter(segment, SLOT_SIZE, 4) as writer, WaveformReader(segment) as reader:
        follower = DescriptorFollower(FakeComponent([]), reader)
        event = follower.handle(announce(writer, 3))
        assert follower.handle(message(new_spike(text_data="not a descriptor"))) is None
        follower.close()
        assert reader.frame_count == 1  # still usable: the follower did not close it
    assert isinstance(event, FollowedFrame) and intact(event.frame.data, 3)


def test_replaced_segment_is_reopened_and_its_old_descriptors_count_as_overwritten(segment):
    old = WaveformWriter(segment, SLOT_SIZE, 4)
    stale = announce(old, 0)
    old.close()
    with WaveformWriter(segment, SLOT_SIZE * 2, 4) as new:
        fresh = announce(new, 0)
        late = message(stale.spike)  # the old instance's descriptor, arriving after the new one's
        follower = DescriptorFollower(FakeComponent([stale, fresh, late]))
        events = [follower.next(timeout=0) for _ in range(3)]
        follower.close()
    assert [type(e) for e in events] == [OverwrittenFrame, FollowedFrame, OverwrittenFrame]
    assert "replaced" in events[0].reason and "replaced" in events[2].reason
    assert events[1].descriptor.segment_id == new.segment_id


def test_descriptors_from_unexpected_senders_or_segments_are_refused(segment):
    with WaveformWriter(segment, SLOT_SIZE, 4) as writer:
        messages = [announce(writer, 0, sender="intruder"), announce(writer, 1)]
        follower = DescriptorFollower(FakeComponent(messages), senders={"physics"})
        assert follower.next(timeout=0).descriptor.frame_index == 1
        other = DescriptorFollower(FakeComponent([announce(writer, 2)]), segments={"some-other-grid"})
        assert other.next(timeout=0) is None
        follower.close()
        other.close()
    assert follower.counters.refused == {"unexpected_sender": 1}
    assert other.counters.refused == {"unexpected_segment": 1}


def test_messages_that_are_not_descriptors_go_to_on_other(segment):
    others: list[Message] = []
    with WaveformWriter(segment, SLOT_SIZE, 4) as writer:
        text = message(new_spike(text_data="hello"), msg_class=MsgClass.BULK)
        bulk_desc = announce(writer, 0, msg_class=MsgClass.BULK)  # a descriptor must travel as PHYSICS
        follower = DescriptorFollower(FakeComponent([text, bulk_desc, announce(writer, 1)]), on_other=others.append)
        event = follower.next(timeout=0)
        follower.close()
    assert event.descriptor.frame_index == 1
    assert others == [text, bulk_desc] and follower.counters.other == 2


# --------------------------------------------------------------------------- through a real broker

def connect(bus_info: dict, name: str) -> Component:
    return Component(name, keys_dir=bus_info["keys_dir"], endpoints=bus_info["endpoints"],
                     broker_key=bus_info["broker_key"], heartbeat=False).connect(timeout=10)


def writer_process(bus_info: dict, segment: str, slots: int, frames: int, to: tuple[str, ...], topic: str | None,
                   go, written, done) -> None:
    """Write `frames` frames (or, with frames=0, one every 2 ms until `done`), announcing each."""
    comp = connect(bus_info, "physics")
    try:
        with WaveformWriter(segment, SLOT_SIZE, slots) as writer:
            publisher = DescriptorPublisher(comp, writer, to=to, topic=topic)
            go.wait(20)
            i = 0
            while (i < frames) if frames else not done.is_set():
                publisher.write(payload(i))
                i += 1
                if not frames:
                    done.wait(0.002)  # a paced stream while readers subscribe
            written.set()
            done.wait(30)  # keep the segment until the readers are through
    finally:
        comp.close()


def reader_process(bus_info: dict, name: str, expect: int, topic: str | None, wait_for, ready, results) -> None:
    """Follow descriptors until `expect` of them were read or found overwritten; report what happened."""
    comp = connect(bus_info, name)
    if topic:
        comp.subscribe(topic)
    follower = DescriptorFollower(comp, senders={"physics"})
    read, overwritten, torn = [], [], 0
    try:
        ready.set()
        if wait_for is not None:
            wait_for.wait(30)
        deadline = time.monotonic() + 30
        while len(read) + len(overwritten) < expect and time.monotonic() < deadline:
            event = follower.next(timeout=1.0)
            if isinstance(event, FollowedFrame):
                read.append(event.frame.frame_index)
                torn += not intact(event.frame.data, event.frame.frame_index)
            elif isinstance(event, OverwrittenFrame):
                overwritten.append(event.descriptor.frame_index)
        results.put({"name": name, "read": read, "overwritten": overwritten, "torn": torn,
                     "counters": follower.counters})
    finally:
        follower.close()
        comp.close()


@pytest.fixture
def procs():
    """Child processes of a test: always stopped at teardown."""
    started: list[mp.Process] = []
    yield started
    for p in started:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()


@pytest.fixture
def bus_info(bus):
    return {"keys_dir": bus.keys_dir, "endpoints": bus.broker.ipc, "broker_key": bus.broker.public_key}


def start(procs: list, target, *args) -> None:
    p = mp.get_context("fork").Process(target=target, args=args, daemon=True)
    p.start()
    procs.append(p)


@pytest.mark.timeout(60)
def test_reader_process_follows_descriptors_from_a_writer_process(bus, bus_info, segment, procs):
    bus.admit("physics", pb.PHYSICS_ENGINE)
    bus.admit("viz", pb.VISUAL_CORTEX)
    ctx = mp.get_context("fork")
    ready, written, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    frames = 64  # as many slots as frames: none can be overwritten, every one must be read
    start(procs, reader_process, bus_info, "viz", frames, None, None, ready, results)
    assert ready.wait(20), "reader did not connect"
    start(procs, writer_process, bus_info, segment, frames, frames, ("viz",), None, ready, written, done)
    report = results.get(timeout=40)
    done.set()
    assert report["read"] == list(range(frames))
    assert (report["overwritten"], report["torn"]) == ([], 0)


@pytest.mark.timeout(60)
def test_descriptor_arriving_after_its_frame_was_overwritten_is_reported_not_read(bus, bus_info, segment, procs):
    bus.admit("physics", pb.PHYSICS_ENGINE)
    bus.admit("viz", pb.VISUAL_CORTEX)
    ctx = mp.get_context("fork")
    ready, written, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    # 2 slots, 10 frames, and the reader looks only once all are written: frames 0-7 are gone
    start(procs, reader_process, bus_info, "viz", 10, None, written, ready, results)
    assert ready.wait(20), "reader did not connect"
    start(procs, writer_process, bus_info, segment, 2, 10, ("viz",), None, ready, written, done)
    report = results.get(timeout=40)
    done.set()
    assert report["overwritten"] == list(range(8))
    assert report["read"] == [8, 9]
    assert report["torn"] == 0 and report["counters"].overwritten == 8


@pytest.mark.timeout(60)
def test_descriptors_published_on_a_topic_reach_every_subscribed_reader(bus, bus_info, segment, procs):
    bus.admit("physics", pb.PHYSICS_ENGINE)
    names = ["viz0", "viz1"]
    for name in names:
        bus.admit(name, pb.VISUAL_CORTEX)
    ctx = mp.get_context("fork")
    readies = [ctx.Event() for _ in names]
    go, written, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    for name, ready in zip(names, readies):
        start(procs, reader_process, bus_info, name, 20, "waveform", None, ready, results)
    assert all(r.wait(20) for r in readies), "readers did not connect"
    # subscriptions reach the broker a little after connecting: stream until both have followed 20
    start(procs, writer_process, bus_info, segment, 8, 0, (), "waveform", go, written, done)
    go.set()
    reports = [results.get(timeout=40) for _ in names]
    done.set()
    for report in reports:
        assert len(report["read"]) + len(report["overwritten"]) == 20, report
        assert report["read"] == sorted(report["read"]) and report["torn"] == 0


def test_descriptor_for_a_reader_that_is_not_connected_comes_back_refused(bus, segment):
    comp = bus.component("physics", kind=pb.PHYSICS_ENGINE)
    with WaveformWriter(segment, SLOT_SIZE, 4) as writer:
        publisher = DescriptorPublisher(comp, writer, to="nobody")
        publisher.write(payload(0))
        msg = comp.recv(timeout=10)
    assert msg is not None and publisher.handle_refusal(msg)
    assert publisher.counters.refused == {"unknown_recipient": 1}
    someone_elses = Message(Plane.DATA, unpack_header(pack_header(Kind.ERROR, "physics", uuid.uuid4().bytes)),
                            msg.payload)
    assert not publisher.handle_refusal(someone_elses)


def test_every_nth_frame_is_announced_through_the_broker(bus, segment):
    physics = bus.component("physics", kind=pb.PHYSICS_ENGINE)
    viz = bus.component("viz", kind=pb.VISUAL_CORTEX)
    with WaveformWriter(segment, SLOT_SIZE, 16) as writer:
        publisher = DescriptorPublisher(physics, writer, to="viz", every=4)
        for i in range(12):
            publisher.write(payload(i))
        follower = DescriptorFollower(viz)
        got = [follower.next(timeout=10).frame.frame_index for _ in range(3)]
        assert follower.next(timeout=0.05) is None
        follower.close()
    assert got == [0, 4, 8]
    assert (publisher.counters.published, publisher.counters.not_due) == (3, 9)
