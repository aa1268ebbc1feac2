"""Shared pieces of the liveness tests: a broker run from a config file, child components,
broker events and polling with a deadline. Imported by the test_*.py files next to it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from spine.client.component import Component, Message
from spine.client.status import fetch_status
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import BROKER
from spine.security.keys import load_or_create
from spine.security.whitelist import Entry, add_entry
from spine.testing import BrokerProcess

CHILD = Path(__file__).with_name("component_child.py")
T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float, what: str, every: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy; that value (TimeoutError if never)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(every)  # polling a condition with a deadline


def process_state(pid: int) -> str:
    """The one-letter state of ``pid`` from /proc (R, S, T for stopped, Z...), '' if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


class LiveBus:
    """A broker child process started from a TOML config, its keys, and child components."""

    def __init__(self, root: Path, *, degrade_after_s: float = 2.0, dead_after_s: float = 4.0,
                 env: dict[str, str] | None = None, log_name: str = "broker.log") -> None:
        self.root = root
        self.keys_dir = root / "keys"
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        self.runtime_dir = root / "run"
        self.log_path = root / log_name
        lines = ["[broker]", f"degrade_after_s = {degrade_after_s}",
                 f"dead_after_s = {dead_after_s}"]
        self.config = root / "broker.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.env = env
        self.broker = self._broker_process()
        self.components: list[Component] = []
        self.children: list[subprocess.Popen] = []

    def _broker_process(self) -> BrokerProcess:
        return BrokerProcess(self.keys_dir, self.runtime_dir, log_path=self.log_path,
                             extra_args=["--config", str(self.config)], env=self.env)

    def supervise(self, specs: dict[str, list[str]], **settings: float) -> None:
        """Have the broker supervise ``name → argv`` (call before ``start``); ``settings``
        go to the ``[supervisor]`` table (grace_seconds, max_restarts, ...)."""
        lines = ["[supervisor]", *(f"{key} = {value}" for key, value in settings.items())]
        for name, argv in specs.items():
            lines += ["", "[[component]]", f"name = {json.dumps(name)}",
                      f"argv = {json.dumps(argv)}"]
        (self.root / "components.toml").write_text("\n".join(lines) + "\n")
        self.config.write_text(self.config.read_text() + 'components_file = "components.toml"\n')

    def start(self) -> "LiveBus":
        """Start the broker (again, after a kill: same keys, same runtime directory)."""
        if self.broker.proc is not None:
            self.broker.stop()
            self.broker = self._broker_process()
        self.broker.start()
        return self

    def admit(self, name: str, kind: int = pb.MEMORY_SYSTEM) -> bytes:
        """Create (or load) the identity ``name`` and whitelist it; its public key."""
        keys = load_or_create(self.keys_dir, name)
        add_entry(self.keys_dir, Entry(keys.public, name, kind, None), replace=True)
        return keys.public

    def component(self, name: str, kind: int = pb.ORCHESTRATOR, **kwargs: Any) -> Component:
        """An in-process component of this bus, whitelisted and connected."""
        self.admit(name, kind)
        comp = Component(name, keys_dir=self.keys_dir, endpoints=self.broker.ipc, **kwargs)
        self.components.append(comp)
        return comp.connect(timeout=10)

    def observer(self, *topics: str) -> Component:
        """A heartbeat-less CLI_CONTROLLER component subscribed to broker event ``topics``."""
        comp = self.component("observer", pb.CLI_CONTROLLER, heartbeat=False)
        if topics:
            subscribe_confirmed(comp, *topics)
        return comp

    def child_argv(self, name: str, *extra: str) -> list[str]:
        """The command line of component_child.py as ``name`` on this bus."""
        return [sys.executable, str(CHILD), name, "--keys-dir", str(self.keys_dir),
                "--runtime-dir", str(self.runtime_dir), *extra]

    def spawn(self, name: str, kind: int = pb.MEMORY_SYSTEM, timeout: float = 15.0) -> subprocess.Popen:
        """Start component_child.py as ``name`` (not supervised) and wait until it connected."""
        self.admit(name, kind)
        ready = self.root / f"{name}.ready"
        ready.unlink(missing_ok=True)
        child = subprocess.Popen(self.child_argv(name, "--ready-file", str(ready)),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.children.append(child)
        wait_until(lambda: ready.exists() or child.poll() is not None, timeout,
                   f"{name} connecting")
        assert child.poll() is None, f"{name} exited with {child.returncode}"
        return child

    def close(self) -> None:
        """Close components, stop the broker, kill whatever child is left."""
        for comp in self.components:
            comp.close()
        self.broker.stop()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGCONT)
                child.kill()
            child.wait()


def subscribe_confirmed(comp: Component, *topics: str) -> None:
    """Subscribe to ``topics`` and return once the subscription is in force at the broker.

    A subscription travels to the broker on its own; publishing probes on a sub-topic of
    the first topic until one comes back shows it has arrived (and so have the others,
    sent before it on the same connection).
    """
    comp.subscribe(*topics)
    probe_topic = f"{topics[0]}/probe"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        comp.publish(probe_topic, new_spike(text_data="probe"))
        msg = comp.recv(timeout=0.05)
        while msg is not None:
            if msg.topic == probe_topic:
                return
            msg = comp.recv(timeout=0)
    raise TimeoutError(f"subscription to {topics} not in force within 10 s")


class Events:
    """Broker events (``watchdog``, ``supervisor`` topics) received by an observer, decoded."""

    def __init__(self, observer: Component) -> None:
        self.observer = observer
        self.seen: list[tuple[float, str, dict]] = []

    def _take(self, msg: Message) -> None:
        if msg.topic and "/probe" not in msg.topic and msg.sender == BROKER:
            self.seen.append((time.monotonic(), msg.topic, json.loads(msg.spike.text_data)))

    def wait_for(self, topic: str, timeout: float, after: float = 0.0,
                 **fields: Any) -> tuple[float, dict]:
        """The first event on ``topic`` with ``fields`` received at or after ``after``
        (already seen, or arriving within ``timeout``), as (monotonic time received, event);
        TimeoutError if none."""
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            for at, seen_topic, event in self.seen[index:]:
                if at >= after and seen_topic == topic and \
                        all(event.get(k) == v for k, v in fields.items()):
                    return at, event
            index = len(self.seen)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {topic} event {fields} within {timeout} s; saw {self.seen}")
            msg = self.observer.recv(timeout=remaining)
            if msg is not None:
                self._take(msg)

    def of(self, topic: str, **fields: Any) -> list[dict]:
        """Every event seen so far on ``topic`` with ``fields``."""
        return [e for _, t, e in self.seen
                if t == topic and all(e.get(k) == v for k, v in fields.items())]


def component_status(observer: Component, name: str) -> dict | None:
    """The broker's ``spine status`` row for ``name``, or None if it lists none."""
    for row in fetch_status(observer)["components"]:
        if row["name"] == name:
            return row
    return None
