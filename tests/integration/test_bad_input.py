"""Bad input is dropped, counted and logged; the broker keeps serving everyone else."""

from __future__ import annotations

import json

import pytest
import zmq

from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, pack_header
from spine.security.keys import load_or_create


@pytest.fixture
def attacker(bus):
    """A raw DEALER on the data plane holding a whitelisted key (an insider gone wrong)."""
    bus.admit_and_wait("rogue")
    keys = load_or_create(bus.keys_dir, "rogue")
    ctx = zmq.Context()
    socks = {}

    def connect(plane: str = "data") -> zmq.Socket:
        if plane not in socks:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.curve_secretkey, sock.curve_publickey = keys.secret, keys.public
            sock.curve_serverkey = bus.broker.public_key
            sock.routing_id = b"rogue"
            sock.connect(getattr(bus.broker.ipc, plane))
            socks[plane] = sock
        return socks[plane]

    yield connect
    ctx.destroy(linger=0)


def good_frames(to: str, text: str = "ok") -> list[bytes]:
    spike = new_spike(text_data=text)
    return [pack_header(Kind.SEND, to, request_id_bytes(spike)), spike.SerializeToString()]


def dropped(comp, plane="data"):
    return json.loads(comp.request_broker("status").spike.rich_payload.data)["planes"][plane]["dropped"]


def assert_good_client_still_works(bus, sender, receiver):
    sender.send(receiver.name, new_spike(text_data="still fine"))
    msg = receiver.recv(timeout=5)
    assert msg is not None and msg.spike.text_data == "still fine"


@pytest.mark.parametrize("frames, reason", [
    ([b"only one frame"], "frame_count"),
    ([b"a", b"b", b"c"], "frame_count"),
    ([b"short header", b"payload"], "bad_header"),
    ([b"\x09" + bytes(83), b"payload"], "bad_header"),  # unknown format version
    ([pack_header(Kind.SEND, "x", bytes(16))[:2] + b"\x63" + bytes(81), b"p"], "bad_kind"),
], ids=["one-frame", "three-frames", "short-header", "bad-version", "bad-kind"])
def test_malformed_frames_are_dropped_and_counted(bus, attacker, frames, reason):
    alice, bob = bus.component("alice"), bus.component("bob")
    attacker().send_multipart(frames)
    bus.broker.wait_for_log(f"dropped data message from b'rogue': {reason}")
    assert dropped(alice)[reason] == 1
    assert bob.recv(timeout=0.2) is None
    assert_good_client_still_works(bus, alice, bob)


def test_garbage_protobuf_is_dropped_by_the_receiver(bus, attacker):
    alice, bob = bus.component("alice"), bus.component("bob")
    sock = attacker()
    sock.send_multipart([pack_header(Kind.SEND, "bob", bytes(16)), b"\xff\xff\xff garbage"])
    sock.send_multipart([pack_header(Kind.BROKER, "broker", bytes(16)), b"\x0a\xff"])
    bus.broker.wait_for_log("bad_payload")
    assert bob.recv(timeout=0.5) is None
    assert bob.counters.dropped["bad_envelope"] == 1
    assert_good_client_still_works(bus, alice, bob)


def test_oversized_message_never_arrives(bus, attacker):
    alice, bob = bus.component("alice"), bus.component("bob")
    sock = attacker("control")
    big = bytes(200_000)  # over the control plane's 64 KiB MAXMSGSIZE
    sock.send_multipart([pack_header(Kind.SEND, "bob", bytes(16)), big])
    bus.broker.wait_for_log("a connection to the control plane closed")
    assert bob.recv(timeout=0.5) is None
    reply = alice.request_broker("ping")
    assert reply.spike.text_data.startswith("ping")
    assert_good_client_still_works(bus, alice, bob)


def test_unknown_recipient_is_counted_and_answered(bus, attacker):
    alice, bob = bus.component("alice"), bus.component("bob")
    sock = attacker()
    sock.send_multipart(good_frames("ghost"))
    assert sock.poll(5000)
    header, payload = sock.recv_multipart()
    assert header[2] == Kind.ERROR and b"unknown_recipient" in payload
    assert dropped(alice)["unknown_recipient"] == 1
    assert_good_client_still_works(bus, alice, bob)


def test_flood_of_garbage_does_not_stop_the_broker(bus, attacker):
    alice, bob = bus.component("alice"), bus.component("bob")
    sock = attacker()
    for i in range(5000):
        sock.send_multipart([b"x" * (i % 100)])
    sock.send_multipart(good_frames("bob", "after the storm"))
    msg = bob.recv(timeout=10)
    assert msg is not None and msg.spike.text_data == "after the storm"
    assert dropped(alice)["frame_count"] == 5000
