"""What the broker parses itself stays small and cheap, whatever a peer sends it.

An authenticated insider sends heartbeats and broker commands that are too big, on the
wrong plane, or carry far too many metrics: the real broker survives, counts what it cut,
answers ``status`` briefly, and a good client is answered right after. Refusal log lines
are rate-limited, so a stranger knocking with unknown keys cannot fill the journal.
"""

from __future__ import annotations

import json
import time

import pytest
import zmq

from spine.broker.loop import MAX_METRICS
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, pack_header
from spine.ratelimit import DEFAULT_BURST
from spine.security.keys import load_or_create

SMALL_STATUS_BYTES = 64 * 1024


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def rogue(bus, ctx):
    """A raw DEALER for a whitelisted key on a plane (an insider gone wrong)."""
    bus.admit_and_wait("rogue")
    keys = load_or_create(bus.keys_dir, "rogue")

    def connect(plane: str) -> zmq.Socket:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_secretkey, sock.curve_publickey = keys.secret, keys.public
        sock.curve_serverkey = bus.broker.public_key
        sock.routing_id = b"rogue"
        sock.connect(getattr(bus.broker.ipc, plane))
        return sock

    return connect


def heartbeat(metrics: int, key_len: int = 6) -> list[bytes]:
    spike = new_spike(status=pb.StatusReport(
        state=pb.StatusReport.READY, pid=4242,
        metrics={f"{i:0{key_len}d}": float(i) for i in range(metrics)}))
    return [pack_header(Kind.HEARTBEAT, "broker", request_id_bytes(spike)), spike.SerializeToString()]


def command(name: str, padding: int = 0) -> list[bytes]:
    spike = new_spike(command_req=pb.CommandRequest(command=name, args=["x" * padding] if padding else []))
    return [pack_header(Kind.BROKER, "broker", request_id_bytes(spike)), spike.SerializeToString()]


def status_bytes(comp) -> bytes:
    return comp.request_broker("status", timeout=5).spike.rich_payload.data


def answer(sock: zmq.Socket, timeout_ms: int = 5000) -> tuple[bytes, bytes]:
    assert sock.poll(timeout_ms), "the broker did not answer"
    header, payload = sock.recv_multipart()
    return header, payload


def wait_until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)  # polling the broker's status with a deadline; no event to wait on


def assert_good_client_answered(comp):
    started = time.monotonic()
    assert comp.request_broker("ping", timeout=2).spike.text_data.startswith(f"ping {comp.name}")
    assert time.monotonic() - started < 1.0


def test_a_huge_heartbeat_on_the_data_plane_is_refused_unread(bus, rogue):
    alice = bus.component("alice")
    sock = rogue("data")
    frames = heartbeat(300_000)  # ~5 MB: far over the control plane's limit, under the data plane's
    sock.send_multipart(frames)
    header, payload = answer(sock)
    assert header[2] == Kind.ERROR and b"heartbeat_on_data" in payload
    data = status_bytes(alice)
    status = json.loads(data)
    assert status["planes"]["data"]["dropped"]["heartbeat_on_data"] == 1
    assert len(data) < SMALL_STATUS_BYTES
    assert all(c["name"] != "rogue" or not c["metrics"] for c in status["components"])
    assert_good_client_answered(alice)


def test_a_huge_broker_command_on_the_data_plane_is_refused_unread(bus, rogue):
    alice = bus.component("alice")
    sock = rogue("data")
    sock.send_multipart(command("status", padding=20_000_000))
    header, payload = answer(sock)
    assert header[2] == Kind.ERROR and b"oversized_command" in payload
    assert json.loads(status_bytes(alice))["planes"]["data"]["dropped"]["oversized_command"] == 1
    assert_good_client_answered(alice)


def test_the_data_plane_takes_hello_and_ping_but_no_other_command(bus, rogue):
    alice = bus.component("alice")
    sock = rogue("data")
    for name in ("hello", "ping"):
        sock.send_multipart(command(name))
        header, payload = answer(sock)
        assert header[2] == Kind.REPLY and f"{name} rogue data".encode() in payload
    sock.send_multipart(command("status"))
    header, payload = answer(sock)
    assert header[2] == Kind.ERROR and b"control_only" in payload
    assert_good_client_answered(alice)


def test_a_heartbeat_with_too_many_metrics_keeps_a_bounded_report(bus, rogue):
    alice = bus.component("alice")
    sock = rogue("control")
    sock.send_multipart(heartbeat(500, key_len=3))  # ~7 KiB: read, but cut to MAX_METRICS
    header, payload = answer(sock)
    assert header[2] == Kind.HEARTBEAT and b"alive" in payload
    data = status_bytes(alice)
    status = json.loads(data)
    row = next(c for c in status["components"] if c["name"] == "rogue")
    assert len(row["metrics"]) == MAX_METRICS and row["pid"] == 4242
    assert status["heartbeats"]["metrics_dropped"] == 500 - MAX_METRICS
    assert len(data) < SMALL_STATUS_BYTES
    assert_good_client_answered(alice)


def test_a_maximal_heartbeat_on_control_is_not_read_but_proves_the_sender_alive(bus, rogue):
    alice = bus.component("alice")
    sock = rogue("control")
    frames = heartbeat(3500, key_len=4)  # ~60 KiB: just under the control plane's 64 KiB
    assert len(frames[1]) < 64 * 1024
    for _ in range(20):
        sock.send_multipart(frames)
    for _ in range(20):
        header, payload = answer(sock)
        assert header[2] == Kind.HEARTBEAT and b"alive" in payload
    data = status_bytes(alice)
    status = json.loads(data)
    assert status["heartbeats"]["oversized"] == 20
    row = next(c for c in status["components"] if c["name"] == "rogue")
    assert row["state"] == "alive" and row["metrics"] == {}
    assert len(data) < SMALL_STATUS_BYTES
    assert_good_client_answered(alice)


def test_many_zap_denials_from_unknown_keys_log_a_bounded_number_of_lines(bus, ctx):
    alice = bus.component("alice")
    attempts = 60
    for i in range(attempts):
        stranger = load_or_create(bus.root / "strangers", f"stranger-{i}")
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_secretkey, sock.curve_publickey = stranger.secret, stranger.public
        sock.curve_serverkey = bus.broker.public_key
        sock.connect(bus.broker.ipc.control)
    wait_until(lambda: json.loads(status_bytes(alice))["auth"]["denied"].get("unknown key", 0)
               >= attempts)
    lines = [line for line in bus.broker.log_text().splitlines() if "denied connection" in line]
    assert DEFAULT_BURST <= len(lines) <= DEFAULT_BURST + 2
    assert json.loads(status_bytes(alice))["log_lines_suppressed"] >= attempts - len(lines)
    assert_good_client_answered(alice)
