"""Helpers shared by the shm tests: unique segment names, the compiled C tool, torture workers."""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import numpy as np

from spine.shm.segment import unlink_segment

REPO = Path(__file__).resolve().parents[2]
NATIVE = REPO / "native"
C_TOOL_SOURCE = Path(__file__).resolve().parent / "c" / "shm_tool.c"
GOLDEN = 0x9E3779B97F4A7C15


def unique_name(tag: str) -> str:
    """A segment name no other test (or test run) uses."""
    return f"/spine-test-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def cleanup(name: str) -> None:
    """Unlink a test segment if it is still there."""
    unlink_segment(name)


def compile_tool(out_dir: Path, cplusplus: bool = False) -> Path:
    """Compile tests/shm/c/shm_tool.c against native/spine_shm.h (as C11 or C++20) and return the binary."""
    exe = out_dir / ("shm_tool_cpp" if cplusplus else "shm_tool")
    compiler = ["g++", "-std=c++20", "-x", "c++"] if cplusplus else ["gcc", "-std=c11"]
    subprocess.run([*compiler, "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(NATIVE), str(C_TOOL_SOURCE),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    return exe


def pattern_frame(frame: int, size: int) -> np.ndarray:
    """The payload the C tool writes for frame `frame`: word i = frame * GOLDEN + i (mod 2**64)."""
    i = np.arange(size // 8, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return np.uint64((frame * GOLDEN) % 2**64) + i


BODY_COUNT = 64


def torture_bodies(size: int) -> list[bytes]:
    """Distinct random bodies; frame k carries body k % BODY_COUNT."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size - 16, dtype=np.uint8).tobytes() for _ in range(BODY_COUNT)]


def torture_payload(frame: int, bodies: list[bytes]) -> bytes:
    """Frame number, CRC-32 of (frame number + body), body."""
    head = struct.pack("<Q", frame)
    body = bodies[frame % BODY_COUNT]
    return head + struct.pack("<Q", zlib.crc32(body, zlib.crc32(head))) + body


def torture_writer(name: str, slot_size: int, slot_count: int, ready, stop) -> None:
    """Write frames as fast as possible until `stop` is set (runs in a child process)."""
    from spine.shm import WaveformWriter

    bodies = torture_bodies(slot_size)
    with WaveformWriter(name, slot_size, slot_count) as writer:
        ready.set()
        frame = 0
        while not stop.is_set():
            for _ in range(256):
                writer.write(torture_payload(frame, bodies))
                frame += 1


def torture_reader(name: str, slot_size: int, reads: int, mode: str, results) -> None:
    """Read `reads` consistent frames, checking each one's CRC; report counts (runs in a child process)."""
    from spine.errors import ShmFrameOverwritten
    from spine.shm import WaveformReader

    torn = rejected = good = skipped = 0
    out = bytearray(slot_size)
    with WaveformReader(name) as reader:
        while good < reads:
            if mode == "latest":
                count = reader.frame_count
                try:
                    frame = reader.read_frame(count - 1, out)
                except ShmFrameOverwritten:
                    rejected += 1
                    continue
            elif mode == "view":
                try:
                    with reader.view_latest() as view:
                        data = view.data
                        (number, crc) = struct.unpack_from("<QQ", data)
                        bad = number != view.frame_index or zlib.crc32(data[16:], zlib.crc32(data[:8])) != crc
                        del data
                except ShmFrameOverwritten:
                    rejected += 1
                    continue
                torn += bad  # counted only for views that were still valid after use
                good += 1
                continue
            else:
                frame = reader.read_next(out)
                if frame is None:
                    continue
                skipped += frame.skipped
            data = frame.data
            (number, crc) = struct.unpack_from("<QQ", data)
            if number != frame.frame_index or zlib.crc32(data[16:], zlib.crc32(data[:8])) != crc:
                torn += 1
            good += 1
    results.put({"mode": mode, "good": good, "torn": torn, "rejected": rejected, "skipped": skipped})
