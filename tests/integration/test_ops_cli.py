"""Operating a real broker: ``spine status``, ``spine ping`` and a clean SIGTERM exit."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from liveness_support import wait_until
from spine.client.ping import run_ping
from spine.client.status import connect_from_args, fetch_status, run_status
from spine.errors import RoutingError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.testing import BrokerProcess


def spine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spine", *args], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture
def ops_bus(bus):
    """The shared bus with a ``cli`` controller identity and a heartbeating ``worker``."""
    bus.admit("cli", pb.CLI_CONTROLLER)
    worker = bus.component("worker")
    with pytest.raises(RoutingError):  # one drop with a reason, for the counters
        worker.request("nobody", new_spike(text_data="?"), timeout=5)
    args = argparse.Namespace(name="cli", keys_dir=bus.keys_dir, runtime_dir=bus.runtime_dir,
                              tcp=None)
    cli = connect_from_args(args)
    try:
        wait_until(lambda: any(c["name"] == "worker" and c["pid"]
                               for c in fetch_status(cli)["components"]), 10,
                   "the worker's first StatusReport")
    finally:
        cli.close()
    return bus


def test_status_prints_components_and_per_plane_counters(ops_bus):
    done = spine("status", "--keys-dir", str(ops_bus.keys_dir),
                 "--runtime-dir", str(ops_bus.runtime_dir))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == ["NAME", "KIND", "STATE", "LAST", "SEEN", "PID", "CPU", "MEMORY",
                              "MESSAGES"]
    worker = next(line for line in lines if line.startswith("worker "))
    assert re.match(rf"worker +MEMORY_SYSTEM +alive +[\d.]+ s ago +{os.getpid()} "
                    r"+[\d.]+% +[\d.]+ MiB +\d+ out / \d+ in$", worker), worker
    control = next(line for line in lines if line.startswith("control "))
    assert re.match(r"control +\d+ +\d+ +[1-9]\d* \(.*unknown_recipient 1.*\)$", control), control
    assert any(line.startswith("data ") for line in lines)


def test_status_json_over_tcp_is_the_brokers_answer(ops_bus):
    port = ops_bus.broker.tcp_port
    done = spine("status", "--json", "--keys-dir", str(ops_bus.keys_dir),
                 "--tcp", f"127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["public_key"] == ops_bus.broker.public_key.decode()
    assert status["planes"]["control"]["dropped"]["unknown_recipient"] == 1
    worker = next(c for c in status["components"] if c["name"] == "worker")
    assert worker["state"] == "alive" and worker["kind"] == "MEMORY_SYSTEM"


def test_ping_prints_each_round_trip_and_a_summary(ops_bus):
    done = spine("ping", "-c", "3", "-i", "0.05", "--keys-dir", str(ops_bus.keys_dir),
                 "--runtime-dir", str(ops_bus.runtime_dir))
    assert done.returncode == 0, done.stderr
    replies = re.findall(r"^answer from broker: seq=(\d+) time=([\d.]+) ms$", done.stdout, re.M)
    assert [seq for seq, _ in replies] == ["1", "2", "3"]
    assert re.search(r"^3 transmitted, 3 received, 0% loss, time \d+ ms$", done.stdout, re.M)
    rtt = re.search(r"^rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms$",
                    done.stdout, re.M)
    low, avg, high, _ = map(float, rtt.groups())
    assert low <= avg <= high
    assert low == min(float(t) for _, t in replies) and high == max(float(t) for _, t in replies)


def test_status_and_ping_handlers_take_parsed_arguments(ops_bus, capsys):
    args = argparse.Namespace(name="cli", keys_dir=ops_bus.keys_dir, tcp=None,
                              runtime_dir=ops_bus.runtime_dir, json=True, count=2, interval=0.01)
    assert run_status(args) == 0
    assert json.loads(capsys.readouterr().out)["whitelist"]["entries"] == 2  # cli, worker
    assert run_ping(args) == 0
    assert "2 transmitted, 2 received, 0% loss" in capsys.readouterr().out


def test_broker_exits_within_a_second_of_sigterm_leaving_its_runtime_dir_empty(short_tmp):
    keys_dir, runtime_dir = short_tmp / "keys", short_tmp / "run"
    keys_dir.mkdir(mode=0o700)
    broker = BrokerProcess(keys_dir, runtime_dir, log_path=short_tmp / "broker.log").start()
    try:
        assert any(runtime_dir.iterdir())
        broker.signal(signal.SIGTERM)
        sent_at = time.monotonic()
        assert broker.proc.wait(timeout=1.0) == 0
        took = time.monotonic() - sent_at
    finally:
        broker.stop()
    assert list(runtime_dir.iterdir()) == []
    print(f"\nbroker exited {took * 1000:.0f} ms after SIGTERM")
