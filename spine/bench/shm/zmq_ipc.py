"""The zmq baseline: one-way latency of the same frames over a PUSH/PULL ipc:// pair."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import zmq

from spine.bench.procs import FORK, RoleLink, RoleProcess
from spine.bench.shm.common import GAP_NS, PACER, acked, percentiles
from spine.bench.stamps import stamp, stamp_ok


def _zmq_receiver(link: RoleLink, endpoint: str, frames: int, ack) -> dict:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    done = []
    torn = 0
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        link.ready()
        for _ in range(frames):
            head, body = sock.recv_multipart()
            t = time.monotonic_ns()
            index = int.from_bytes(head, "little")
            torn += not stamp_ok(body, index)
            done.append((index, t))
            ack.set()
    finally:
        sock.close(0)
        ctx.term()
    return {"done": done, "torn": torn}


def zmq_ipc_latency(size: int, frames: int) -> dict:
    """One-way latency (send() called → receiver holds the bytes) of `size`-byte frames over zmq PUSH/PULL ipc://."""
    tmp = tempfile.mkdtemp(prefix="spine-bench-")
    endpoint = f"ipc://{tmp}/shm-bench.sock"
    ack = FORK.Event()
    payload = np.random.default_rng(2).integers(0, 256, size, dtype=np.uint8)
    sends: dict[int, int] = {}
    try:
        with RoleProcess("zmq receiver", _zmq_receiver, (endpoint, frames, ack)) as receiver:
            ctx = zmq.Context()  # made after the fork: the receiver has its own
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            try:
                sock.connect(endpoint)
                for i in range(frames):
                    stamp(payload, i)
                    PACER.sleep_until(time.monotonic_ns() + GAP_NS)
                    sends[i] = time.monotonic_ns()
                    sock.send_multipart([i.to_bytes(8, "little"), payload])
                    acked(ack, receiver)
                report = receiver.result(60)
            finally:
                sock.close(0)
                ctx.term()
    finally:
        try:
            os.unlink(f"{tmp}/shm-bench.sock")
        except FileNotFoundError:
            pass
        os.rmdir(tmp)
    done, torn = report["done"], report["torn"]
    warm = [(f, t) for f, t in done if f >= min(10, frames // 10)]
    result = percentiles([t - sends[f] for f, t in warm])
    result["torn"] = torn
    return result
