"""The watchdog end to end: real component processes go silent and the broker notices.

Thresholds are shortened through the broker's TOML config (degrade 2 s, dead 4 s; the
heartbeat stays at 1 s). Times are checked with tolerances only: a bound that cannot be
beaten (nothing is declared before its threshold) and a generous upper one.
"""

from __future__ import annotations

import signal
import time

import pytest

from liveness_support import Events, LiveBus, component_status, process_state, wait_until
from spine.errors import RoutingError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike

DEGRADE_S, DEAD_S = 2.0, 4.0
HEARTBEAT_S = 1.0
SLACK_S = 3.0  # a loaded 2-core machine may be late by this much, never early


@pytest.fixture
def live(short_tmp):
    bus = LiveBus(short_tmp, degrade_after_s=DEGRADE_S, dead_after_s=DEAD_S).start()
    try:
        yield bus
    finally:
        bus.close()


def test_killed_component_goes_degraded_then_dead(live):
    child = live.spawn("worker")
    observer = live.observer("watchdog")
    events = Events(observer)
    row = wait_until(lambda: (r := component_status(observer, "worker")) and r["pid"] and r,
                     10, "worker's first StatusReport")
    assert (row["state"], row["pid"], row["kind"]) == ("alive", child.pid, "MEMORY_SYSTEM")
    assert row["memory_rss_bytes"] > 0 and "sent" in row["metrics"]

    child.kill()
    killed_at = time.monotonic()
    child.wait()
    degraded_at, _ = events.wait_for("watchdog", DEGRADE_S + SLACK_S, after=killed_at,
                                     name="worker", to="degraded")
    dead_at, _ = events.wait_for("watchdog", DEAD_S + SLACK_S, after=killed_at, name="worker",
                                 to="dead")
    # its last report came at most one heartbeat before the kill
    assert DEGRADE_S - HEARTBEAT_S <= degraded_at - killed_at <= DEGRADE_S + SLACK_S
    assert DEAD_S - DEGRADE_S - 0.5 <= dead_at - degraded_at
    assert dead_at - killed_at <= DEAD_S + SLACK_S
    row = component_status(observer, "worker")
    assert row["state"] == "dead" and row["last_seen_s"] >= DEAD_S
    print(f"\nSIGKILL -> degraded {degraded_at - killed_at:.2f} s, dead {dead_at - killed_at:.2f} s")


def test_frozen_component_is_skipped_by_round_robin_and_comes_back_when_thawed(live):
    child = live.spawn("worker")
    observer = live.observer("watchdog")
    events = Events(observer)
    reply = observer.request("kind:MEMORY_SYSTEM", new_spike(text_data="before"), timeout=5)
    assert reply.spike.text_data == f"worker pid={child.pid}: before"

    child.send_signal(signal.SIGSTOP)
    wait_until(lambda: process_state(child.pid) == "T", 5, "worker stopping")
    stopped_at = time.monotonic()
    degraded_at, _ = events.wait_for("watchdog", DEGRADE_S + SLACK_S, after=stopped_at,
                                     name="worker", to="degraded")
    assert degraded_at - stopped_at >= DEGRADE_S - HEARTBEAT_S
    assert component_status(observer, "worker")["state"] == "degraded"
    # DEGRADED instances get no round-robin work: with none left, an explicit refusal
    with pytest.raises(RoutingError, match="unknown_recipient"):
        observer.request("kind:MEMORY_SYSTEM", new_spike(text_data="while frozen"), timeout=5)

    child.send_signal(signal.SIGCONT)
    _, event = events.wait_for("watchdog", HEARTBEAT_S + SLACK_S, after=degraded_at,
                               name="worker", to="alive")
    assert event["from"] in ("degraded", "dead")
    reply = observer.request("kind:MEMORY_SYSTEM", new_spike(text_data="thawed"), timeout=5)
    assert reply.spike.text_data == f"worker pid={child.pid}: thawed"
    print(f"\nSIGSTOP -> degraded {degraded_at - stopped_at:.2f} s")


def test_a_component_whose_loop_freezes_goes_degraded_then_dead_under_manual_liveliness(live):
    """Its heartbeat thread goes on, but its main loop stops: manual liveliness (the default
    under the supervisor) says so, where automatic kept saying alive."""
    from spine.client.liveliness import Liveliness
    stuck_s = 1.0
    frozen = live.component("frozen", kind=pb.MEMORY_SYSTEM, liveliness=Liveliness.MANUAL,
                            stuck_after_s=stuck_s)
    observer = live.observer("watchdog")
    events = Events(observer)
    frozen.recv(timeout=0)  # the loop's last turn; from here the test never drives it
    frozen_at = time.monotonic()
    degraded_at, _ = events.wait_for("watchdog", stuck_s + HEARTBEAT_S + SLACK_S,
                                     after=frozen_at, name="frozen", to="degraded")
    assert degraded_at - frozen_at >= stuck_s - 0.05
    dead_at, _ = events.wait_for("watchdog", DEAD_S + SLACK_S, after=degraded_at,
                                 name="frozen", to="dead")
    assert component_status(observer, "frozen")["state"] == "dead"
    print(f"\nloop frozen -> degraded {degraded_at - frozen_at:.2f} s, "
          f"dead {dead_at - frozen_at:.2f} s")
    frozen.recv(timeout=0)  # it runs again: the next heartbeat says READY
    events.wait_for("watchdog", HEARTBEAT_S + SLACK_S, after=dead_at, name="frozen", to="alive")
