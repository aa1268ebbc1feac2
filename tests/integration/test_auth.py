"""Ironhouse at work: only whitelisted keys talking to the real broker key get anything through."""

from __future__ import annotations

import json

import pytest
import zmq

from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, pack_header
from spine.security.keys import load_or_create


def raw_dealer(ctx, endpoint, *, keys=None, server_key=None, routing_id=None):
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        sock.curve_secretkey, sock.curve_publickey = keys.secret, keys.public
        sock.curve_serverkey = server_key
    if routing_id is not None:
        sock.routing_id = routing_id
    sock.connect(endpoint)
    return sock


def frames_to(to, text, sender=""):
    spike = new_spike(text_data=text)
    return [pack_header(Kind.SEND, to, request_id_bytes(spike), sender=sender),
            spike.SerializeToString()]


def status(comp):
    return json.loads(comp.request_broker("status").spike.rich_payload.data)


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def test_unknown_key_gets_nothing_through_and_is_logged(bus, ctx):
    target = bus.component("target")
    stranger = load_or_create(bus.root / "other-keys", "stranger")
    sock = raw_dealer(ctx, bus.broker.ipc.data, keys=stranger, server_key=bus.broker.public_key)
    sock.send_multipart(frames_to("target", "let me in"), zmq.NOBLOCK)
    log = bus.broker.wait_for_log(f"key={stranger.public.decode()}")
    assert "unknown key" in log
    assert target.recv(timeout=0.5) is None
    assert sock.poll(200) == 0  # stealth: no answer at all
    assert status(target)["auth"]["denied"]["unknown key"] >= 1


def test_wrong_broker_key_gets_nothing_through_and_is_logged(bus, ctx):
    target = bus.component("target")
    bus.admit_and_wait("mallory")
    mallory = load_or_create(bus.keys_dir, "mallory")
    impostor_server = load_or_create(bus.root / "other-keys", "fake-broker")
    sock = raw_dealer(ctx, bus.broker.ipc.data, keys=mallory, server_key=impostor_server.public)
    sock.send_multipart(frames_to("target", "hello?"), zmq.NOBLOCK)
    bus.broker.wait_for_log("wrong broker key")
    assert target.recv(timeout=0.5) is None


def test_no_curve_at_all_gets_nothing_through_and_is_logged(bus, ctx):
    target = bus.component("target")
    sock = raw_dealer(ctx, bus.broker.ipc.data)
    sock.send_multipart(frames_to("target", "plain text"), zmq.NOBLOCK)
    bus.broker.wait_for_log("no CURVE")
    assert target.recv(timeout=0.5) is None
    assert sock.poll(200) == 0


def test_header_naming_another_sender_is_delivered_as_the_real_sender(bus):
    alice, carol = bus.component("alice"), bus.component("carol")
    bus.component("bob")
    alice.data.send_multipart(frames_to("carol", "I am bob", sender="bob"))
    msg = carol.recv(timeout=5)
    assert (msg.sender, msg.spike.text_data) == ("alice", "I am bob")


def test_routing_id_of_another_component_is_refused(bus, ctx):
    carol = bus.component("carol")
    bus.admit_and_wait("alice")
    alice_keys = load_or_create(bus.keys_dir, "alice")
    sock = raw_dealer(ctx, bus.broker.ipc.data, keys=alice_keys, server_key=bus.broker.public_key,
                      routing_id=b"bob")
    sock.send_multipart(frames_to("carol", "spoofed"), zmq.NOBLOCK)
    bus.broker.wait_for_log("SECURITY: key of 'alice' used routing id b'bob'")
    assert carol.recv(timeout=0.5) is None
    assert status(carol)["planes"]["data"]["dropped"]["spoofed_identity"] == 1


def test_whitelist_edit_admits_a_new_key_and_refuses_a_removed_one(bus):
    from spine.security.whitelist import remove_entry
    alice = bus.component("alice")
    late = bus.component("late", kind=pb.AUDIO_CORTEX)  # admitted while the broker runs
    late.send("alice", new_spike(text_data="new here"))
    assert alice.recv(timeout=5).sender == "late"
    remove_entry(bus.keys_dir, "late")
    bus.broker.wait_for_log("late removed from the whitelist")
    late.send("alice", new_spike(text_data="still here?"))
    assert alice.recv(timeout=0.5) is None
    again = bus.component("late", admit=False, connect=False)
    with pytest.raises(Exception, match="did not answer"):
        again.connect(timeout=1.0)


def test_keys_survive_a_broker_restart(bus):
    first = bus.broker.public_key
    bus.broker.stop()
    bus.broker.start()
    assert bus.broker.public_key == first
    alice = bus.component("alice")
    assert alice.request_broker("ping").spike.text_data.startswith("ping alice")



def test_identity_is_the_key_not_the_name(bus):
    """A name given a new key: the connection still holding the old key is routed no more."""
    from spine.security.keys import create_keypair
    from spine.security.whitelist import Entry, add_entry
    bob = bus.component("bob")
    old = bus.component("alice")
    old_key = old.keys.public.decode()
    new_keys = create_keypair(bus.root / "elsewhere", "alice")
    add_entry(bus.keys_dir, Entry(new_keys.public, "alice", pb.MEMORY_SYSTEM), replace=True)
    bus.broker.wait_for_log(f"key {old_key} of alice left the whitelist")
    old.send("bob", new_spike(text_data="from the old key"))
    assert bob.recv(timeout=0.5) is None
    assert status(bob)["planes"]["data"]["dropped"]["not_whitelisted"] == 1
