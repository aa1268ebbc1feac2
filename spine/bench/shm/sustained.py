"""Sustained: large frames written at 1 kHz for a few seconds with one reader process following."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

from spine.bench.procs import RoleLink, RoleProcess
from spine.bench.shm.common import PACER, percentiles
from spine.bench.stamps import stamp, stamp_ok
from spine.shm import WaveformReader, WaveformWriter


def _sustain_reader(link: RoleLink, name: str, size: int, frames: int) -> dict:
    out = np.ones(size, dtype=np.uint8)  # touched now, not on the first frame
    read = torn = skipped = 0
    with WaveformReader(name) as reader:
        link.ready()
        while read + skipped < frames and not link.stop.is_set():
            frame = reader.wait_next(timeout=0.1, out=out)
            if frame is None:
                continue
            read += 1
            skipped += frame.skipped
            torn += not stamp_ok(out, frame.frame_index)
    return {"read": read, "skipped": skipped, "torn": torn}


def sustained(size: int, rate_hz: int, seconds: float) -> dict:
    """Write `size`-byte frames at `rate_hz` for `seconds` with one reader process following."""
    name = f"/spine-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    payload = np.random.default_rng(3).integers(0, 256, size, dtype=np.uint8)
    period = 1_000_000_000 // rate_hz
    frames = int(seconds * rate_hz)
    write_ns = []
    late = 0
    with WaveformWriter(name, size, 16) as writer, \
            RoleProcess("sustain reader", _sustain_reader, (name, size, frames)) as reader:
        t_start = time.monotonic_ns()
        next_at = t_start
        for i in range(frames):
            PACER.sleep_until(next_at)
            t0 = time.monotonic_ns()
            late += t0 - next_at > period
            stamp(payload, i)
            writer.write(payload)
            write_ns.append(time.monotonic_ns() - t0)
            next_at += period
        elapsed = time.monotonic_ns() - t_start
        if not reader.has_result(10):  # the reader reports once it has seen (or skipped) every frame
            reader.stop.set()
        report = reader.result(10)
    del report["cpu_s"]
    report.update(
        frames_written=frames,
        achieved_hz=frames / (elapsed / 1e9),
        write_us=percentiles(write_ns),
        writes_late=late,
    )
    report["sustained"] = bool(report["achieved_hz"] >= 0.99 * rate_hz and report["read"] + report["skipped"]
                               >= 0.99 * frames and report["skipped"] <= 0.01 * frames)
    return report
