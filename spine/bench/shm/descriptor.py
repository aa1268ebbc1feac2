"""Descriptors through a real broker: write() called → a reader component holds the frame in place."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from spine.bench.common import BenchBus
from spine.bench.procs import FORK, RoleLink, RoleProcess
from spine.bench.shm.common import GAP_NS, PACER, acked, percentiles
from spine.bench.stamps import stamp, stamp_ok
from spine.client.component import Component
from spine.errors import ShmFrameOverwritten
from spine.protocol import neural_spike_pb2 as pb
from spine.shm import DescriptorFollower, DescriptorPublisher, OverwrittenFrame, WaveformWriter


def _descriptor_reader(link: RoleLink, keys: Path, endpoints, broker_key: bytes, frames: int, ack) -> dict:
    comp = Component("bench-viz", keys_dir=keys, endpoints=endpoints, broker_key=broker_key,
                     heartbeat=False).connect(timeout=10)
    follower = DescriptorFollower(comp)
    done: list[tuple[int, int]] = []
    torn = overwritten = 0
    try:
        link.ready()
        while len(done) + overwritten < frames:
            event = follower.next_view(timeout=10.0)
            if event is None:
                break
            if isinstance(event, OverwrittenFrame):
                overwritten += 1
                ack.set()
                continue
            try:
                with event.view as view:
                    words = np.frombuffer(view.data, dtype=np.uint64)
                    ok = stamp_ok(words, view.frame_index)
                    del words
            except ShmFrameOverwritten:
                ok = False
            done.append((event.descriptor.frame_index, time.monotonic_ns()))
            torn += not ok
            ack.set()
    finally:
        follower.close()
        comp.close()
    return {"done": done, "torn": torn, "overwritten": overwritten}


def descriptor_handoff(size: int, frames: int) -> dict:
    """Latency percentiles (µs): write() called → a reader component holds the frame in place.

    The writer commits the frame and sends its WaveformSHM descriptor through a
    real broker (ipc, CURVE) to a reader process, which follows it with a
    DescriptorFollower and checks the frame through a validated zero-copy view.
    """
    segment = f"/spine-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ack = FORK.Event()
    payload = np.random.default_rng(5).integers(0, 256, size, dtype=np.uint8)
    starts: dict[int, int] = {}
    with ExitStack() as held:
        bus = held.enter_context(BenchBus({"bench-physics": pb.PHYSICS_ENGINE, "bench-viz": pb.VISUAL_CORTEX}))
        broker = bus.broker
        reader = held.enter_context(RoleProcess("descriptor reader", _descriptor_reader,
                                                (bus.keys_dir, broker.ipc, broker.public_key, frames, ack)))
        comp = Component("bench-physics", keys_dir=bus.keys_dir, endpoints=broker.ipc, broker_key=broker.public_key,
                         heartbeat=False)
        held.callback(comp.close)
        comp.connect(timeout=10)
        writer = held.enter_context(WaveformWriter(segment, size, 8))
        publisher = DescriptorPublisher(comp, writer, to="bench-viz")
        for i in range(frames):
            stamp(payload, i)
            PACER.sleep_until(time.monotonic_ns() + GAP_NS)
            starts[i] = time.monotonic_ns()
            publisher.write(payload)
            acked(ack, reader)
        report = reader.result(30)
    done, torn, overwritten = report["done"], report["torn"], report["overwritten"]
    warm = [(f, t) for f, t in done if f >= min(10, frames // 10)]
    result = percentiles([t - starts[f] for f, t in warm])
    result.update(torn=torn, overwritten=overwritten)
    return result
