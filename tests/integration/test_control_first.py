"""CTL-01: a control request is served before the data backlog, however deep it is."""

from __future__ import annotations

import threading

from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, MsgClass, pack_header

FLOOD = 15_000


def test_control_request_answered_long_before_the_data_backlog_drains(bus):
    flooder, sink = bus.component("flooder"), bus.component("sink", heartbeat=False)
    alice = bus.component("alice")
    spike = new_spike(text_data="bulk")
    frames = [pack_header(Kind.SEND, "sink", request_id_bytes(spike), msg_class=MsgClass.BULK),
              spike.SerializeToString()]
    for _ in range(FLOOD):
        flooder.data.send_multipart(frames)  # blocks only if both queues (2 x 10,000) are full

    received = 0
    draining = threading.Event()
    done = threading.Event()

    def drain():
        nonlocal received
        draining.set()
        while received < FLOOD and sink.data.poll(10_000):
            sink.data.recv_multipart()
            received += 1
        done.set()

    reader = threading.Thread(target=drain)
    reader.start()
    draining.wait()
    reply = alice.request_broker("ping", timeout=5)
    seen_when_answered = received
    reader.join(60)
    assert reply.spike.text_data.startswith("ping alice")
    assert done.is_set() and received == FLOOD  # nothing of the backlog was lost
    assert seen_when_answered < FLOOD // 2, (
        f"control answered only after {seen_when_answered} of {FLOOD} data messages drained")
