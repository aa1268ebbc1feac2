"""A broker killed with SIGKILL and started again: components notice, reconnect by
themselves, and no request is left hanging."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from liveness_support import LiveBus, component_status, wait_until
from spine.errors import RequestTimeout, RoutingError
from spine.protocol.envelope import new_spike, request_id_bytes

BROKER_DEAD_AFTER_S = 3.0  # the heartbeat thread's threshold (SPEC §4)
SLACK_S = 3.0


@pytest.fixture
def live(short_tmp):
    bus = LiveBus(short_tmp).start()
    try:
        yield bus
    finally:
        bus.close()


def kill_broker(bus: LiveBus) -> float:
    bus.broker.proc.kill()
    bus.broker.proc.wait()
    return time.monotonic()


def test_components_notice_a_killed_broker_and_reconnect_to_its_successor(live):
    server = live.spawn("server")
    client = live.component("client")
    assert client.request("server", new_spike(text_data="hello"), timeout=5).spike.text_data \
        == f"server pid={server.pid}: hello"
    assert client.broker_alive

    killed_at = kill_broker(live)
    wait_until(lambda: not client.broker_alive, BROKER_DEAD_AFTER_S + SLACK_S,
               "the client noticing the broker is gone")
    noticed_after = time.monotonic() - killed_at
    # the broker's last answer came at most one heartbeat (1 s) before the kill
    assert BROKER_DEAD_AFTER_S - 1.0 - 0.1 <= noticed_after <= BROKER_DEAD_AFTER_S + SLACK_S
    with pytest.raises(RequestTimeout):  # no broker, no retries: an explicit error, not a hang
        client.request("server", new_spike(text_data="anyone?"), timeout=0.3)

    # a request in flight across the restart: retried with the same request_id
    spike = new_spike(text_data="in flight")
    outcome: dict = {}

    def in_flight() -> None:
        try:
            outcome["reply"] = client.request("server", spike, timeout=1.0, retries=8)
        except (RequestTimeout, RoutingError) as exc:
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - issued_at

    issued_at = time.monotonic()
    thread = threading.Thread(target=in_flight)
    thread.start()
    try:
        live.start()  # the same keys and runtime directory, a new broker instance
        restarted_at = time.monotonic()
        wait_until(lambda: client.broker_alive, 2 + SLACK_S, "the client hearing the new broker")
        back_after = time.monotonic() - restarted_at
    finally:
        thread.join(9 * 1.0 + SLACK_S)
    assert not thread.is_alive(), "a request in flight across the restart hung"
    if "reply" in outcome:
        reply = outcome["reply"]
        assert reply.request_id == request_id_bytes(spike)
        assert reply.spike.text_data == f"server pid={server.pid}: in flight"
    else:  # an explicit failure is allowed; silence is not
        assert isinstance(outcome["error"], (RequestTimeout, RoutingError))
    print(f"\nbroker SIGKILL noticed after {noticed_after:.2f} s; client heard the new broker "
          f"{back_after:.2f} s after its start; in-flight request: "
          f"{'answered' if 'reply' in outcome else outcome['error']!r} after {outcome['took']:.2f} s")

    # both reconnected by themselves: the same server process answers through the new broker
    reply = client.request("server", new_spike(text_data="again"), timeout=1.0, retries=5)
    assert reply.spike.text_data == f"server pid={server.pid}: again"
    assert server.poll() is None


def test_a_broker_restarted_at_once_is_recognised_by_its_new_instance(live, caplog):
    caplog.set_level(logging.INFO, logger="spine.client")
    server = live.spawn("server")
    client = live.component("client")
    client.request("server", new_spike(text_data="hello"), timeout=5)

    kill_broker(live)
    live.start()  # back before the 3 s of silence: only the new instance id tells
    wait_until(lambda: "client: the broker restarted" in caplog.text, 2 + SLACK_S,
               "the client seeing the broker's new instance")
    # the server process rejoins by itself too (until it has, requests to it are refused)
    wait_until(lambda: (row := component_status(client, "server")) and "control" in row["planes"],
               2 + SLACK_S, "the server rejoining the new broker")
    reply = client.request("server", new_spike(text_data="still there?"), timeout=5)
    assert reply.spike.text_data == f"server pid={server.pid}: still there?"
    assert "no heartbeat from the broker" not in caplog.text  # never taken for dead
