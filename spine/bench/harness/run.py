"""``run_loop``: the harness coordinator — baselines, then the system, in separate processes, CURVE on.

Phases, one after the other so they do not disturb each other:

1. bare timer loop (one process);
2. raw pyzmq CURVE echo (server and client processes) on a quiet machine;
3. the system: a broker child process (``BrokerProcess``) with a fresh key
   directory whose whitelist admits the run's identities; the physics
   writer, the in-place shm reader, the descriptor follower, the controller
   and the responder, each its own process.  With baselines on, an echo
   server runs too and the controller takes turns, block by block, between
   the bus and the raw echo: the like-for-like baseline of the control
   round trip, measured at the same rate under the same load.

Every process is stopped, the broker too, the shm segment unlinked and the
temporary directory removed, whatever happens.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import psutil
import zmq

from spine.bench.harness.baselines import echo_client_role, echo_server_role, timer_role
from spine.bench.harness.config import DEADLINE_NS, IDENTITIES, LoopConfig, Wiring
from spine.bench.harness.control import controller_role, responder_role
from spine.bench.harness.physics import GRACE_S, follower_role, reader_role, writer_role
from spine.bench.harness.report import LoopResult, load_average, machine_description
from spine.bench.procs import (LIVE_BASELINE, LIVE_CONTROL, LIVE_CONTROL_MISSES, LIVE_SLOTS, LIVE_TICK_MISSES,
                               LIVE_TICKS, RoleProcess, new_live_counters, new_stop_event)
from spine.bench.realtime import PmQos, fifo_process, pin_process
from spine.bench.stats import Measure, measure
from spine.security.keys import load_or_create
from spine.security.whitelist import Entry, add_entry
from spine.shm.segment import unlink_segment
from spine.testing import BrokerProcess, free_tcp_base

Progress = Callable[[str, float, float, dict[str, int]], None]
LEAD_IN_NS = 300_000_000  # between the start signal and the first tick: every role is waiting by then
SETUP_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 0.2


def run_loop(config: LoopConfig, progress: Progress | None = None) -> LoopResult:
    """Run the baselines and the system as ``config`` says and return what they measured.

    ``progress(phase, elapsed_s, total_s, live_counts)`` is called a few
    times a second while a phase runs.  BenchError if a role fails.
    """
    run = _Run(config, progress)
    machine = machine_description()
    with ExitStack() as held:
        if config.pm_qos:
            held.enter_context(PmQos())
        tmp = Path(tempfile.mkdtemp(prefix="spine-loop-", dir="/tmp"))  # short: ipc paths max 107 bytes
        held.callback(shutil.rmtree, tmp, ignore_errors=True)
        measures: dict[str, Measure] = {}
        counts: dict[str, int] = {}
        if config.baselines:
            measures["timer_jitter"] = run.timer_baseline()
            measures["raw_echo_rtt"], counts["echo_lost"] = run.echo_baseline(tmp)
        system, system_counts = run.system(tmp)
        measures.update(system)
        counts.update(system_counts)
    machine["loadavg_after"] = load_average()
    return LoopResult(config, _ordered(measures), config.ticks, counts, machine, run.cpu_percent)


def _ordered(measures: dict[str, Measure]) -> dict[str, Measure]:
    order = ("tick_jitter", "tick_total", "control_rtt", "control_service", "shm_handoff", "descriptor",
             "raw_echo_loaded_rtt", "raw_echo_rtt", "timer_jitter")
    return {name: measures[name] for name in order if name in measures}


class _Run:
    """The phases of one run and the process bookkeeping they share."""

    def __init__(self, config: LoopConfig, progress: Progress | None) -> None:
        self.cfg = config
        self.progress = progress
        self.stop = new_stop_event()
        self.live = new_live_counters()
        self.cpu_percent: dict[str, float] = {}

    def _cpu(self, role: str, cpu_s: float, phase_s: float) -> None:
        self.cpu_percent[role] = round(100 * cpu_s / (phase_s + LEAD_IN_NS / 1e9), 1)

    def _role(self, stack: ExitStack, name: str, target, *args) -> RoleProcess:
        proc = RoleProcess(name, target, args, stop=self.stop, live=self.live, cpus=self.cfg.pin.get(name),
                           rt_priority=self.cfg.rt.get(name))
        stack.callback(proc.close)
        stack.callback(self.stop.set)  # runs first on the way out: serving roles end by themselves
        return proc

    def _reset(self) -> None:
        self.stop.clear()
        for i in range(LIVE_SLOTS):
            self.live[i] = 0

    def _start(self, roles: list[RoleProcess]) -> int:
        start_ns = time.monotonic_ns() + LEAD_IN_NS
        for role in roles:
            role.go(start_ns)
        return start_ns

    def _watch(self, phase: str, start_ns: int, total_s: float, until: list[RoleProcess],
               events: list[tuple[float, Callable[[], None]]] | None = None) -> None:
        """Report progress and fire timed ``events`` (seconds after start) until every role in ``until`` reported."""
        pending = sorted(events or [], key=lambda e: e[0])
        hard_stop = time.monotonic() + LEAD_IN_NS / 1e9 + total_s + SETUP_TIMEOUT_S
        last_report = 0.0
        while not all(role.has_result() for role in until):
            now_ns = time.monotonic_ns()
            elapsed = (now_ns - start_ns) / 1e9
            while pending and elapsed >= pending[0][0]:
                pending.pop(0)[1]()
            if time.monotonic() > hard_stop:
                return  # result() names the role that hangs
            if self.progress is not None and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                self.progress(phase, max(0.0, elapsed), total_s, self._live_counts())
            wait = PROGRESS_EVERY_S / 4
            if pending:
                wait = min(wait, max(0.0, pending[0][0] - elapsed))
            time.sleep(wait)  # a monitoring period, not a synchronisation
        if self.progress is not None:
            self.progress(phase, total_s, total_s, self._live_counts())

    def _live_counts(self) -> dict[str, int]:
        return {"ticks": self.live[LIVE_TICKS], "tick_misses": self.live[LIVE_TICK_MISSES],
                "control": self.live[LIVE_CONTROL], "control_misses": self.live[LIVE_CONTROL_MISSES],
                "baseline": self.live[LIVE_BASELINE]}

    # ------------------------------------------------------------------ baselines

    def timer_baseline(self) -> Measure:
        """The bare timer loop: wake-up lateness at the tick rate."""
        cfg = self.cfg
        self._reset()
        with ExitStack() as stack:
            timer = self._role(stack, "timer", timer_role, cfg)
            timer.wait_ready(SETUP_TIMEOUT_S)
            start_ns = self._start([timer])
            self._watch("timer baseline", start_ns, cfg.baseline_duration_s, [timer])
            r = timer.result(SETUP_TIMEOUT_S)
        self._cpu("timer", r["cpu_s"], cfg.baseline_duration_s)
        due = r["start_ns"] + np.arange(r["woke"].size, dtype=np.int64) * cfg.tick_period_ns
        return measure("timer_jitter", "bare timer loop: wake-up time - due time", r["woke"] - due,
                       due - r["start_ns"], deadline_ns=DEADLINE_NS)  # the machine's own misses

    def _echo_server(self, stack: ExitStack, cfg: LoopConfig, tmp: Path) -> tuple[RoleProcess, str, bytes]:
        """A raw echo server, already serving: (role, endpoint, its public key)."""
        if cfg.transport == "tcp":
            endpoint = f"tcp://127.0.0.1:{free_tcp_base(count=1)}"
        else:
            endpoint = f"ipc://{tmp}/echo.ipc"
        public, secret = zmq.curve_keypair()
        server = self._role(stack, "echo-server", echo_server_role, endpoint, public, secret)
        server.wait_ready(SETUP_TIMEOUT_S)
        server.go(0)
        return server, endpoint, public

    def echo_baseline(self, tmp: Path) -> tuple[Measure, int]:
        """The raw pyzmq CURVE echo at the control rate on a quiet machine: (round trip measure, requests lost)."""
        cfg = self.cfg
        self._reset()
        with ExitStack() as stack:
            server, endpoint, public = self._echo_server(stack, cfg, tmp)
            client = self._role(stack, "echo-client", echo_client_role, cfg, endpoint, public)
            client.wait_ready(SETUP_TIMEOUT_S)
            start_ns = self._start([client])
            self._watch("raw echo baseline", start_ns, cfg.baseline_duration_s, [client])
            r = client.result(SETUP_TIMEOUT_S)
            self.stop.set()
            self._cpu("echo-server", server.result(SETUP_TIMEOUT_S)["cpu_s"], cfg.baseline_duration_s)
        self._cpu("echo-client", r["cpu_s"], cfg.baseline_duration_s)
        return _round_trips("raw_echo_rtt", "raw pyzmq DEALER-ROUTER CURVE echo, quiet machine, from the due time",
                            r, cfg.control_period_ns), int(r["lost"].sum())

    # ------------------------------------------------------------------ the system

    def _physics(self, stack: ExitStack, cfg: LoopConfig, tmp: Path) -> "_Physics":
        """Start the broker, the writer, the shm reader and the descriptor follower; every role waits for go."""
        keys_dir, runtime_dir = tmp / "keys", tmp / "run"
        keys_dir.mkdir(mode=0o700, parents=True)
        for name, kind in IDENTITIES.items():
            add_entry(keys_dir, Entry(load_or_create(keys_dir, name).public, name, kind), replace=True)
        broker = BrokerProcess(keys_dir, runtime_dir, log_path=tmp / "broker.log",
                               extra_args=["--config", cfg.broker_config] if cfg.broker_config else None,
                               tcp_host="127.0.0.1" if cfg.transport == "tcp" else None,
                               tcp_port=free_tcp_base() if cfg.transport == "tcp" else None)
        segment = f"spine-loop-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        stack.callback(unlink_segment, "/" + segment)  # only matters if the writer died
        broker.start()
        stack.callback(broker.stop)
        if "broker" in cfg.pin:
            pin_process(broker.proc.pid, cfg.pin["broker"])
        if "broker" in cfg.rt:
            fifo_process(broker.proc.pid, cfg.rt["broker"])
        assert broker.public_key is not None
        wiring = Wiring(broker.tcp if cfg.transport == "tcp" else broker.ipc, keys_dir,
                        broker.public_key, segment)
        writer = self._role(stack, "writer", writer_role, cfg, wiring)
        writer.wait_ready(SETUP_TIMEOUT_S)  # the segment exists from here on
        reader = self._role(stack, "reader", reader_role, cfg, wiring)
        follower = self._role(stack, "follower", follower_role, cfg, wiring)
        reader.wait_ready(SETUP_TIMEOUT_S)
        follower.wait_ready(SETUP_TIMEOUT_S)
        return _Physics(wiring, psutil.Process(broker.proc.pid), writer, reader, follower)

    def system(self, tmp: Path) -> tuple[dict[str, Measure], dict[str, int]]:
        """The broker and the five bus roles for ``duration_s``."""
        cfg = self.cfg
        self._reset()
        with ExitStack() as stack:
            physics = self._physics(stack, cfg, tmp / "system")
            wiring = physics.wiring
            echo_server = None
            if cfg.baselines:  # the same-load baseline: the controller alternates with a raw echo
                echo_server, echo_endpoint, echo_key = self._echo_server(stack, cfg, tmp / "system")
                wiring = dataclasses.replace(wiring, echo_endpoint=echo_endpoint, echo_key=echo_key)
            responder = self._role(stack, "responder", responder_role, cfg, wiring)
            controller = self._role(stack, "controller", controller_role, cfg, wiring)
            responder.wait_ready(SETUP_TIMEOUT_S)
            controller.wait_ready(SETUP_TIMEOUT_S)
            broker_cpu_before = physics.broker.cpu_times()
            writer = physics.writer
            start_ns = self._start([writer, responder, physics.reader, physics.follower, controller])
            events = []
            if cfg.responder_stall is not None:
                at, length = cfg.responder_stall
                events = [(at, lambda: responder.signal(signal.SIGSTOP)),
                          (at + length, lambda: responder.signal(signal.SIGCONT))]
            self._watch("system", start_ns, cfg.duration_s, [writer, controller], events)
            w = writer.result(SETUP_TIMEOUT_S)
            c = controller.result(SETUP_TIMEOUT_S)
            rd = physics.reader.result(GRACE_S + SETUP_TIMEOUT_S)
            f = physics.follower.result(GRACE_S + SETUP_TIMEOUT_S)
            self.stop.set()
            resp = responder.result(SETUP_TIMEOUT_S)
            if echo_server is not None:
                self._cpu("echo-server (same load)", echo_server.result(SETUP_TIMEOUT_S)["cpu_s"], cfg.duration_s)
            broker_cpu = physics.broker.cpu_times()
        for role, r in (("writer", w), ("controller", c), ("reader", rd), ("follower", f), ("responder", resp)):
            self._cpu(role, r["cpu_s"], cfg.duration_s)
        self._cpu("broker", broker_cpu.user + broker_cpu.system - broker_cpu_before.user - broker_cpu_before.system,
                  cfg.duration_s)
        return self._system_measures(w, c, rd, f, resp)

    def _system_measures(self, w: dict, c: dict, rd: dict, f: dict, resp: dict,
                         ) -> tuple[dict[str, Measure], dict[str, int]]:
        cfg = self.cfg
        n = cfg.ticks
        due = w["start_ns"] + np.arange(n, dtype=np.int64) * cfg.tick_period_ns
        at = due - w["start_ns"]
        held, received, committed = rd["held"], f["received"], w["committed"]
        got, arrived = held >= 0, received >= 0
        echo, c = _only(c, c["raw"]), _only(c, ~c["raw"])
        raw = echo["slots"].size > 0
        measures = {
            "tick_jitter": measure("tick_jitter", "writer: tick start - due time", w["started"] - due, at),
            "tick_total": measure("tick_total", "writer: descriptor sent - due time", w["ended"] - due, at,
                                  deadline_ns=DEADLINE_NS),
            "control_rtt": _round_trips("control_rtt", "controller -> broker -> responder -> controller, "
                                        "from the due time", c, cfg.control_period_ns, DEADLINE_NS),
            "control_service": measure("control_service", "the same round trips from the actual send "
                                       "(no correction)", c["replied"] - c["sent"], c["sent"] - c["start_ns"],
                                       deadline_ns=DEADLINE_NS),
            "shm_handoff": measure("shm_handoff", f"write committed -> reader holds a consistent frame "
                                   f"({cfg.read_mode})", held[got] - committed[got], at[got]),
            "descriptor": measure("descriptor", "write committed -> follower has the WaveformSHM descriptor",
                                  received[arrived] - committed[arrived], at[arrived]),
        }
        if raw:
            measures["raw_echo_loaded_rtt"] = _round_trips(
                "raw_echo_loaded_rtt", "raw pyzmq DEALER-ROUTER CURVE echo in the system phase, taking turns "
                f"with the bus in {cfg.echo_block_s:g} s blocks, from the due time", echo, cfg.control_period_ns)
        counts = {
            "echo_same_load_sent": int(echo["slots"].size),
            "echo_same_load_lost": int(echo["lost"].sum()),
            "control_sent": int(c["slots"].size),
            "control_lost": int(c["lost"].sum()),
            "control_skipped": measures["control_rtt"].synthesized,
            "responder_served": int(resp["served"]),
            "responder_dropped": int(sum(resp["dropped"].values())),
            "shm_torn": int(rd["torn"]),
            "shm_overwritten": int(rd["overwritten"]),
            "shm_missed": int(n - got.sum() - rd["torn"] - rd["overwritten"]),
            "follower_torn": int(f["torn"]),
            "follower_overwritten": int(f["overwritten"]),
            "follower_unexpected": int(f["unexpected"]),
            "descriptors_lost": int(n - arrived.sum()),
            "descriptor_send_failed": int(w["send_failed"]),
        }
        return measures, counts


@dataclass
class _Physics:
    """The physics side of a phase: where it meets, the broker process and the three roles."""

    wiring: Wiring
    broker: psutil.Process
    writer: RoleProcess
    reader: RoleProcess
    follower: RoleProcess


def _only(r: dict, mask: np.ndarray) -> dict:
    """The controller's result ``r`` restricted to the requests in ``mask``."""
    return {key: (value[mask] if isinstance(value, np.ndarray) else value) for key, value in r.items()}


def _round_trips(name: str, description: str, r: dict, period_ns: int,
                 deadline_ns: int | None = None) -> Measure:
    """A closed-loop client's round trips, from each slot's due time, corrected for skipped slots."""
    due = r["start_ns"] + r["slots"] * period_ns
    return measure(name, description, r["replied"] - due, due - r["start_ns"],
                   corrected_interval_ns=period_ns, deadline_ns=deadline_ns)

