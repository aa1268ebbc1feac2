"""Same-run baselines: a bare timer loop (what cyclictest measures) and a raw pyzmq CURVE echo.

The timer loop paces exactly like the writer but does no work, so it shows
the wake-up jitter this machine gives any 1 kHz Python loop.  The echo is a
DEALER client and a ROUTER server with CURVE on, over the run's transport, no
broker and no spine code in between, paced and corrected exactly like the
controller: what a control round trip would cost without the bus.
"""

from __future__ import annotations

import time

import numpy as np
import zmq

from spine.bench.harness.config import LoopConfig
from spine.bench.pacing import Pacer, next_slot, set_timer_slack
from spine.bench.procs import LIVE_BASELINE, RoleLink
from spine.errors import BenchError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.sockets import tune


def timer_role(link: RoleLink, cfg: LoopConfig) -> dict:
    """Wake at ``cfg.tick_hz`` on absolute deadlines for the baseline duration; return the wake times."""
    set_timer_slack()
    pacer = Pacer(cfg.spin_us * 1000)
    n = max(1, round(cfg.baseline_duration_s * cfg.tick_hz))
    woke = np.zeros(n, dtype=np.int64)
    start_ns = link.ready()
    for k in range(n):
        woke[k] = pacer.sleep_until(start_ns + k * cfg.tick_period_ns)
        link.live[LIVE_BASELINE] = k + 1
    return {"start_ns": start_ns, "woke": woke}


def echo_server_role(link: RoleLink, endpoint: str, public: bytes, secret: bytes) -> dict:
    """A CURVE ROUTER that sends every message straight back, until the coordinator says stop."""
    ctx = zmq.Context()
    sock = tune(ctx.socket(zmq.ROUTER))
    echoed = 0
    try:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.bind(endpoint)
        link.ready()
        while not link.stop.is_set():
            if sock.poll(50, zmq.POLLIN):
                sock.send_multipart(sock.recv_multipart())
                echoed += 1
    finally:
        sock.close(linger=0)
        ctx.term()
    return {"echoed": echoed}


class RawEcho:
    """A CURVE DEALER round-tripping tagged messages to ``echo_server_role``: the raw path, no bus."""

    def __init__(self, endpoint: str, server_public: bytes, timeout_s: float) -> None:
        self.payload = new_spike(command_req=pb.CommandRequest(command="step", task_id="0")).SerializeToString()
        self.timeout_ns = int(timeout_s * 1e9)
        self.ctx = zmq.Context()
        self.sock = tune(self.ctx.socket(zmq.DEALER))
        try:
            public, secret = zmq.curve_keypair()
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
            self.sock.connect(endpoint)
            self.sock.send(b"warm-up")  # the CURVE handshake happens before the clock starts
            if not self.sock.poll(10_000, zmq.POLLIN):
                raise BenchError(f"the echo server at {endpoint} did not answer within 10 s",
                                 reason=BenchError.NOT_READY, role="echo-server", timeout=10)
            self.sock.recv()
        except BaseException:
            self.close()
            raise

    def round_trip(self, slot: int) -> bool:
        """Send one message tagged ``slot`` and wait for its echo; False if it did not come in time."""
        tag = slot.to_bytes(8, "little")
        self.sock.send_multipart([tag, self.payload])
        return _await_echo(self.sock, tag, time.monotonic_ns() + self.timeout_ns)

    def close(self) -> None:
        """Close the socket (LINGER 0) and terminate the context."""
        self.sock.close(linger=0)
        self.ctx.term()


def echo_client_role(link: RoleLink, cfg: LoopConfig, endpoint: str, server_public: bytes) -> dict:
    """Round trips to the echo server at ``cfg.control_hz``, one outstanding, scheduled like the controller."""
    set_timer_slack()
    pacer = Pacer(cfg.spin_us * 1000)
    n = max(1, round(cfg.baseline_duration_s * cfg.control_hz))
    period = cfg.control_period_ns
    slots, sent, replied = (np.zeros(n, dtype=np.int64) for _ in range(3))
    lost = np.zeros(n, dtype=bool)
    echo = RawEcho(endpoint, server_public, cfg.request_timeout_s)
    count = 0
    try:
        start_ns = link.ready()
        slot = 0
        while slot < n:
            due = start_ns + slot * period
            sent[count] = pacer.sleep_until(due)
            lost[count] = not echo.round_trip(slot)
            replied[count] = time.monotonic_ns()
            slots[count] = slot
            count += 1
            link.live[LIVE_BASELINE] = count
            slot = next_slot(slot, int(replied[count - 1] - due), period)
    finally:
        echo.close()
    return {"start_ns": start_ns, "slots": slots[:count], "sent": sent[:count],
            "replied": replied[:count], "lost": lost[:count]}


def _await_echo(sock: zmq.Socket, tag: bytes, deadline_ns: int) -> bool:
    """Wait for the echo of the message tagged ``tag`` (late echoes of earlier ones are dropped)."""
    while True:
        left_ms = (deadline_ns - time.monotonic_ns()) / 1e6
        if left_ms <= 0 or not sock.poll(max(1, int(left_ms + 0.999)), zmq.POLLIN):
            return False
        if sock.recv_multipart()[0] == tag:
            return True
