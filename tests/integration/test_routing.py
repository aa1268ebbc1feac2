"""Whitelisted components reach each other through a real broker, on both planes."""

from __future__ import annotations

import threading

import pytest

from spine.client.component import Plane
from spine.errors import RefusalReason, RoutingError, UnknownRecipient
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import Kind


def serve_in_thread(comp, stop: threading.Event) -> threading.Thread:
    def handler(msg):
        return new_spike(text_data=f"{msg.spike.text_data} seen by {comp.name} from {msg.sender}")
    thread = threading.Thread(target=comp.serve, args=(handler,),
                              kwargs={"should_stop": stop.is_set, "poll_s": 0.05})
    thread.start()
    return thread


@pytest.mark.parametrize("tcp", [False, True], ids=["ipc", "tcp"])
def test_whitelisted_component_reaches_another_on_both_planes(bus, tcp):
    alice = bus.component("alice", tcp=tcp)
    bob = bus.component("bob", kind=pb.REASONING_ENGINE, tcp=tcp)
    stop = threading.Event()
    thread = serve_in_thread(bob, stop)
    try:
        for plane in Plane:
            reply = alice.request("bob", new_spike(text_data=f"hi on {plane.value}"),
                                  plane=plane, timeout=5)
            assert reply.sender == "bob"
            assert reply.spike.text_data == f"hi on {plane.value} seen by bob from alice"
            assert reply.plane is plane
    finally:
        stop.set()
        thread.join()


def test_one_way_send_arrives_with_the_authenticated_sender(bus):
    alice, bob = bus.component("alice"), bus.component("bob")
    alice.send("bob", new_spike(text_data="one way"))
    msg = bob.recv(timeout=5)
    assert msg is not None and msg.kind is Kind.SEND
    assert (msg.sender, msg.spike.text_data) == ("alice", "one way")


def test_unknown_recipient_gets_an_explicit_error(bus):
    alice = bus.component("alice")
    with pytest.raises(RoutingError, match="unknown_recipient") as caught:
        alice.request("nobody", new_spike(text_data="?"), timeout=5)
    # the reason travels as data in the ERROR's refusal field, not only in its text
    assert type(caught.value) is UnknownRecipient
    assert (caught.value.reason, caught.value.recipient) == (RefusalReason.UNKNOWN_RECIPIENT, "nobody")


def test_a_refused_broker_command_carries_its_reason(bus):
    alice = bus.component("alice")
    with pytest.raises(RoutingError) as caught:
        alice.request_broker("pair-open", timeout=5)  # only a CLI_CONTROLLER may
    assert caught.value.reason is RefusalReason.BAD_COMMAND


def test_events_reach_every_subscriber(bus):
    pub = bus.component("physics", kind=pb.PHYSICS_ENGINE)
    subs = [bus.component(f"viz{i}", kind=pb.VISUAL_CORTEX) for i in range(2)]
    for sub in subs:
        sub.subscribe("neurogenesis")
    # a subscription takes a moment to reach the broker: publish until each has one
    for sub in subs:
        got = None
        for _ in range(200):
            pub.publish("neurogenesis", new_spike(neurogenesis=pb.NeurogenesisEvent(new_node_count=3)))
            got = sub.recv(timeout=0.05)
            if got is not None:
                break
        assert got is not None and got.topic == "neurogenesis" and got.sender == "physics"
        assert got.spike.neurogenesis.new_node_count == 3


def test_round_robin_by_kind_spreads_requests_over_instances(bus):
    client = bus.component("orchestrator", kind=pb.ORCHESTRATOR)
    workers = [bus.component(f"embed{i}", kind=pb.MEMORY_SYSTEM) for i in range(2)]
    stop = threading.Event()
    threads = [serve_in_thread(w, stop) for w in workers]
    try:
        seen = {client.request("kind:MEMORY_SYSTEM", new_spike(text_data="embed"), timeout=5).sender
                for _ in range(6)}
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen == {"embed0", "embed1"}


def test_unknown_fields_from_a_newer_schema_pass_through_intact(bus):
    alice, bob = bus.component("alice"), bus.component("bob")
    spike = new_spike(text_data="from the future")
    future_field = bytes([0xFA, 0x06]) + bytes([5]) + b"v2!!!"  # field 111, length-delimited
    payload = spike.SerializeToString() + future_field
    from spine.protocol.envelope import request_id_bytes
    alice.send_bytes("bob", request_id_bytes(spike), payload)
    msg = bob.recv(timeout=5)
    assert msg.payload == payload  # the broker forwarded the frame untouched
    assert msg.spike.text_data == "from the future"
    assert msg.spike.SerializeToString().endswith(future_field)  # a v1 receiver keeps it


def test_components_cannot_publish_on_the_brokers_topics(bus):
    import json
    rogue, listener = bus.component("rogue"), bus.component("listener")
    listener.subscribe("watchdog")
    rogue.publish("watchdog", new_spike(text_data='{"name": "listener", "to": "dead"}'))
    bus.broker.wait_for_log("may not publish on the broker's topic")
    assert listener.recv(timeout=0.3) is None
    status = json.loads(rogue.request_broker("status").spike.rich_payload.data)
    assert status["planes"]["data"]["dropped"]["reserved_topic"] == 1
