"""The component API beyond plain requests: asyncio, the breaker, reliable sends."""

from __future__ import annotations

import asyncio
import threading

import pytest

from spine.client.component import Plane
from spine.errors import CircuitOpenError, RoutingError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.resilience.guard import CircuitBreaker


def test_asyncio_request_and_receive(bus):
    alice, bob = bus.component("alice"), bus.component("bob")

    async def scenario():
        async def serve_one():
            msg = await bob.arecv(timeout=5)
            bob.reply(msg, new_spike(text_data=f"async {msg.spike.text_data}"))

        server = asyncio.create_task(serve_one())
        reply = await alice.arequest("bob", new_spike(text_data="hello"), timeout=5)
        await server
        return reply

    reply = asyncio.run(scenario())
    assert (reply.sender, reply.spike.text_data) == ("bob", "async hello")


def test_arecv_times_out_with_none(bus):
    alice = bus.component("alice")
    assert asyncio.run(alice.arecv(timeout=0.05)) is None


def test_requests_to_a_failing_agent_open_the_breaker(bus):
    reasoner = bus.component("reasoner", kind=pb.REASONING_ENGINE)
    breaker = CircuitBreaker("tavily", failure_threshold=5, cooldown=30)
    for _ in range(5):  # the agent is not connected: each request fails at the broker
        with pytest.raises(RoutingError):
            reasoner.request("tavily", new_spike(text_data="search"), breaker=breaker)
    sent = reasoner.counters.sent
    with pytest.raises(CircuitOpenError):
        reasoner.request("tavily", new_spike(text_data="search"), breaker=breaker)
    assert reasoner.counters.sent == sent  # open: the dependency was not even tried


def test_reliable_send_delivers_when_the_queue_has_room(bus):
    alice, bob = bus.component("alice"), bus.component("bob")
    alice.send("bob", new_spike(text_data="surely"), reliable=True)
    msg = bob.recv(timeout=5)
    assert msg.spike.text_data == "surely" and msg.plane is Plane.DATA


def test_retried_request_is_answered_once_from_the_reply_cache(bus):
    alice, bob = bus.component("alice"), bus.component("bob")
    handled = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            msg = bob.recv(timeout=0.05)
            if msg is not None:
                handled.append(msg.request_id)
                bob.reply(msg, new_spike(text_data="once"))

    spike = new_spike(text_data="idempotent")
    thread = threading.Thread(target=serve)
    thread.start()
    try:
        first = alice.request("bob", spike, timeout=5)
        second = alice.request("bob", spike, timeout=5)  # same request_id: a retry
    finally:
        stop.set()
        thread.join()
    assert first.spike.text_data == second.spike.text_data == "once"
    assert len(handled) == 1 and bob.counters.dropped["duplicate_request"] == 1


def test_unknown_recipient_with_retries_left_is_waited_out_and_resent(bus):
    alice = bus.component("alice")
    late = bus.component("late", connect=False)
    answered = threading.Event()

    def join_late_and_answer():
        late.connect(timeout=5)
        msg = late.recv(timeout=5)
        late.reply(msg, new_spike(text_data="here now"))
        answered.set()

    joiner = threading.Timer(0.2, join_late_and_answer)  # joins after the first attempt failed
    joiner.start()
    try:
        reply = alice.request("late", new_spike(text_data="anyone?"), timeout=1.0, retries=3)
    finally:
        joiner.join()
    assert reply.sender == "late" and reply.spike.text_data == "here now"
    assert answered.is_set()


def test_unknown_recipient_without_retries_fails_at_once(bus):
    alice = bus.component("alice")
    with pytest.raises(RoutingError, match="unknown_recipient"):
        alice.request("nobody", new_spike(text_data="?"), timeout=5)


def test_another_sender_reusing_a_request_id_gets_its_own_answer(bus):
    alice, mallory, bob = bus.component("alice"), bus.component("mallory"), bus.component("bob")
    handled = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            msg = bob.recv(timeout=0.05)
            if msg is not None:
                handled.append(msg.sender)
                bob.reply(msg, new_spike(text_data=f"for {msg.sender}"))

    spike = new_spike(text_data="mine")
    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert alice.request("bob", spike, timeout=5).spike.text_data == "for alice"
        copy = new_spike(text_data="same id")
        copy.request_id = spike.request_id  # mallory reuses alice's id
        assert mallory.request("bob", copy, timeout=5).spike.text_data == "for mallory"
    finally:
        stop.set()
        thread.join()
    assert handled == ["alice", "mallory"]
    assert alice.recv(timeout=0.2) is None  # alice was not sent her reply a second time
