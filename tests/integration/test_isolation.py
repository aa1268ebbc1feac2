"""One consumer that stops reading never stalls anyone else (issue 14, item 1): a real broker,
real components, over ipc and tcp."""

from __future__ import annotations

import threading
import time

import pytest

from spine.client.component import Component
from spine.client.status import fetch_status
from spine.errors import RecipientQueueFull, SendFailed
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import Kind
from spine.security.keys import load_or_create
from spine.security.whitelist import Entry, add_entry
from spine.testing import BrokerProcess, free_tcp_base

QUEUE_MAX = 300
FLOOD = 8_000
PAIR = 2_000
PAD = "x" * 2048  # so that the kernel's TCP buffers fill too, not only libzmq's pipes


@pytest.fixture
def small_queues(short_tmp):
    """A broker with small pipes and queues, so a stalled consumer fills them quickly."""
    keys_dir = short_tmp / "keys"
    keys_dir.mkdir(mode=0o700)
    for name, kind in (("slow", pb.VISUAL_CORTEX), ("flooder", pb.PHYSICS_ENGINE),
                       ("producer", pb.REASONING_ENGINE), ("fast", pb.MEMORY_SYSTEM),
                       ("cli", pb.CLI_CONTROLLER)):
        add_entry(keys_dir, Entry(load_or_create(keys_dir, name).public, name, kind))
    config = short_tmp / "broker.toml"
    config.write_text(f"[broker]\nhwm = 500\nqueue_max_messages = {QUEUE_MAX}\n"
                      "slow_consumer_after_s = 0.5\n")
    broker = BrokerProcess(keys_dir, short_tmp / "run", tcp_host="127.0.0.1",
                           tcp_port=free_tcp_base(), log_path=short_tmp / "broker.log",
                           extra_args=["--config", str(config)]).start()
    comps: list[Component] = []

    def component(name: str, tcp: bool) -> Component:
        comp = Component(name, keys_dir=keys_dir, endpoints=broker.tcp if tcp else broker.ipc,
                         broker_key=broker.public_key, heartbeat=False, hwm=500).connect()
        comps.append(comp)
        return comp

    try:
        yield broker, component
    finally:
        for comp in comps:
            comp.close()
        broker.stop()


def _send_all(sender: Component, to: str, count: int) -> list:
    """Send ``count`` numbered messages, waiting (on the socket) whenever the local pipe is
    full; return the broker's refusals that came back meanwhile."""
    refusals = []
    for i in range(count):
        while True:
            try:
                sender.send(to, new_spike(text_data=f"{i} {PAD}"))
                break
            except SendFailed:
                msg = sender.recv(timeout=0.01)
                if msg is not None and msg.kind is Kind.ERROR:
                    refusals.append(msg.refusal())
    while (msg := sender.recv(timeout=0)) is not None:
        if msg.kind is Kind.ERROR:
            refusals.append(msg.refusal())
    return refusals


@pytest.mark.parametrize("tcp", [False, True], ids=["ipc", "tcp"])
def test_a_stalled_consumer_stalls_nobody_else_and_recovers_in_order(small_queues, tcp):
    broker, component = small_queues
    slow = component("slow", tcp)  # connected, and reads nothing until the end
    flooder, producer, fast = (component(n, tcp) for n in ("flooder", "producer", "fast"))

    refusals = _send_all(flooder, "slow", FLOOD)
    broker.wait_for_log("slow is a slow consumer")

    got: list[int] = []

    def read_fast() -> None:
        deadline = time.monotonic() + 30
        while len(got) < PAIR and time.monotonic() < deadline:
            msg = fast.recv(timeout=1)
            if msg is not None:
                got.append(int(msg.spike.text_data.split()[0]))

    reader = threading.Thread(target=read_fast)
    reader.start()
    assert _send_all(producer, "fast", PAIR) == []
    reader.join()
    assert got == list(range(PAIR))  # every one, in order, while slow is stuck

    while (msg := flooder.recv(timeout=0.05)) is not None:  # refusals still on their way
        if msg.kind is Kind.ERROR:
            refusals.append(msg.refusal())
    assert refusals and all(isinstance(r, RecipientQueueFull) for r in refusals)
    assert refusals[0].recipient == "slow" and refusals[0].retry_after == 0.5

    cli = component("cli", tcp)
    queue = fetch_status(cli)["queues"]["recipients"]["slow"]
    assert queue["slow"] and 0 < queue["depth"] <= QUEUE_MAX
    # a flooder that does not read its answers may miss some (its own pipe is full)
    assert queue["refused"] >= len(refusals)

    seen = []  # slow reads again: what waited arrives in order, nothing twice
    while (msg := slow.recv(timeout=2)) is not None:
        seen.append(int(msg.spike.text_data.split()[0]))
    assert seen == sorted(set(seen)) and seen[0] == 0
    assert len(seen) + queue["refused"] == FLOOD  # delivered once, or refused to the sender
    broker.wait_for_log("slow is reading again")
    assert not fetch_status(cli)["queues"]["recipients"]["slow"]["slow"]
