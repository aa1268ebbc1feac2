"""Resurrection end to end: the broker starts the components of its components_file,
revives a frozen one (SIGTERM, grace, SIGKILL, restart with the same identity) and gives
up on a crash loop with an alert."""

from __future__ import annotations

import os
import json
import re
import signal
import time

import pytest

from liveness_support import Events, LiveBus, component_status, process_state, wait_until
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.security.keys import load_public, public_path

DEGRADE_S, DEAD_S, GRACE_S = 2.0, 4.0, 1.0
SLACK_S = 3.0
MAX_RESTARTS = 3


@pytest.fixture
def supervised(short_tmp):
    bus = LiveBus(short_tmp, degrade_after_s=DEGRADE_S, dead_after_s=DEAD_S)
    bus.admit("worker", pb.MEMORY_SYSTEM)
    bus.supervise({"worker": bus.child_argv("worker")}, grace_seconds=GRACE_S,
                  backoff_initial_seconds=0.1)
    bus.start()
    try:
        yield bus
    finally:
        bus.close()


def test_frozen_component_is_killed_and_restarted_with_the_same_identity(supervised):
    key_before = load_public(public_path(supervised.keys_dir, "worker"))
    observer = supervised.observer("watchdog", "supervisor")
    events = Events(observer)
    first = wait_until(lambda: (r := component_status(observer, "worker")) and r["pid"] and r,
                       15, "the supervised worker's first StatusReport")
    old_pid = first["pid"]

    stopped_at = time.monotonic()
    os.kill(old_pid, signal.SIGSTOP)
    degraded_at, _ = events.wait_for("watchdog", DEGRADE_S + SLACK_S, after=stopped_at,
                                     name="worker", to="degraded")
    dead_at, _ = events.wait_for("watchdog", DEAD_S + SLACK_S, after=stopped_at, name="worker",
                                 to="dead")
    term_at, term = events.wait_for("supervisor", SLACK_S, name="worker", event="terminating")
    kill_at, _ = events.wait_for("supervisor", GRACE_S + SLACK_S, name="worker", event="killed")
    _, exited = events.wait_for("supervisor", SLACK_S, name="worker", event="exited")
    started_at, started = events.wait_for("supervisor", SLACK_S, after=stopped_at, name="worker",
                                          event="started")
    _, revived = events.wait_for("watchdog", SLACK_S, after=dead_at, name="worker", to="alive")
    assert term["pid"] == old_pid and exited["pid"] == old_pid
    assert exited["detail"] == "killed by SIGKILL"  # SIGTERM could not reach a frozen process
    assert kill_at - term_at >= GRACE_S - 0.05
    assert revived["from"] == "dead"
    new_pid = started["pid"]
    assert new_pid != old_pid and process_state(old_pid) == ""

    # the new process is "worker" again: same key file, authenticated by the same key
    row = wait_until(lambda: (r := component_status(observer, "worker")) and
                     r["pid"] == new_pid and r, 15, "the revived worker reporting")
    assert row["state"] == "alive"
    assert load_public(public_path(supervised.keys_dir, "worker")) == key_before
    for to in ("worker", "kind:MEMORY_SYSTEM"):  # unicast, and round robin routes to it again
        reply = observer.request(to, new_spike(text_data="back?"), timeout=10)
        assert reply.sender == "worker"
        assert reply.spike.text_data == f"worker pid={new_pid}: back?"
    print(f"\nSIGSTOP -> degraded {degraded_at - stopped_at:.2f} s, dead "
          f"{dead_at - stopped_at:.2f} s, SIGKILL {kill_at - stopped_at:.2f} s, restarted "
          f"{started_at - stopped_at:.2f} s")

    supervised.broker.stop()  # the supervisor stops its children with the broker
    assert process_state(new_pid) == ""
    assert supervised.broker.proc.returncode == 0


def test_component_that_dies_at_once_is_given_up_with_an_alert(short_tmp):
    go = short_tmp / "go"
    bus = LiveBus(short_tmp)
    bus.admit("crasher", pb.MEMORY_SYSTEM)
    bus.supervise({"crasher": bus.child_argv("crasher", "--exit-when", str(go))},
                  max_restarts=MAX_RESTARTS, backoff_initial_seconds=0.05,
                  restart_window_seconds=60)
    bus.start()
    try:
        observer = bus.observer("supervisor")
        events = Events(observer)
        go.touch()  # the first run (started with the broker) crashes now, and so does each restart
        _, gave_up = events.wait_for("supervisor", 10, name="crasher", event="gave-up")
        assert gave_up["alert"] is True
        assert f"restarted {MAX_RESTARTS} times" in gave_up["detail"]
        assert len(events.of("supervisor", name="crasher", event="restart-scheduled")) == MAX_RESTARTS
        exits = events.of("supervisor", name="crasher", event="exited")
        assert len(exits) == MAX_RESTARTS + 1
        assert {e["detail"] for e in exits} == {"exit code 3"}
        bus.broker.wait_for_log("ALERT", timeout=5)
        status = json.loads(observer.request_broker("status").spike.rich_payload.data)
        assert {"name": "crasher", "state": "failed", "pid": None,
                "recent_restarts": MAX_RESTARTS} in status["supervised"]
    finally:
        bus.close()
    log = bus.broker.log_text()
    assert len(re.findall(r"supervisor: crasher pid \d+ started", log)) == MAX_RESTARTS + 1
    assert "ALERT: crasher gave-up" in log
