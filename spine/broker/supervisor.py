"""Resurrection: start the configured components, revive dead ones, stop a crash loop.

Three layers, from pure to I/O:

- `RestartPolicy`: restart intensity (at most `max_restarts` in `window` seconds) with
  exponential backoff between restarts; past the limit it says "give up".
- `ChildLifecycle`: one component's states (STOPPED, RUNNING, TERMINATING, KILLING,
  BACKOFF, FAILED), fed events (started, declared dead, exited, stop) and the time, and
  answering with actions (START, TERMINATE, KILL). Revival is SIGTERM → grace → SIGKILL →
  restart, as SPEC §4 asks.
- `Supervisor`: the thin I/O layer. It spawns the processes (same argv, same environment
  every time, so a component comes back with the keys it keeps on disk), signals their
  process groups, reaps them without blocking and reports what happened as
  `SupervisorEvent`s. The broker drives it from its loop (`poll`, `declare_dead`,
  `next_deadline`); `main` runs it standalone as `spine supervise CONFIG`.

The configuration is TOML::

    [supervisor]                      # optional; these are the defaults
    grace_seconds = 5.0
    max_restarts = 5
    restart_window_seconds = 60.0
    backoff_initial_seconds = 0.5
    backoff_max_seconds = 30.0

    [[component]]
    name = "memory-1"                 # the name the component has in the whitelist
    argv = ["python3", "-m", "memory_worker"]
    env = { SPINE_KEYS_DIR = "/var/lib/spine/components/memory-1" }
    cwd = "/var/lib/spine"            # optional
"""

from __future__ import annotations

import argparse
import collections
import enum
import logging
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from spine.errors import ConfigError, SupervisorError

__all__ = [
    "RestartLimits",
    "RestartPolicy",
    "ChildState",
    "Action",
    "ExitDecision",
    "ChildLifecycle",
    "ComponentSpec",
    "SupervisorConfig",
    "load_config",
    "EventKind",
    "SupervisorEvent",
    "ChildStatus",
    "Supervisor",
    "main",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Pure policy
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestartLimits:
    """How hard the supervisor tries: restart intensity, backoff and the kill grace."""

    max_restarts: int = 5
    window: float = 60.0
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    grace: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_restarts <= 1000:
            raise ConfigError(f"max_restarts must be between 0 and 1000, got {self.max_restarts}")
        for name in ("window", "backoff_initial", "backoff_max", "grace"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 86400):
                raise ConfigError(f"{name} must be between 0 and 86400 seconds, got {value}")
        if self.window <= 0 or self.grace <= 0:
            raise ConfigError("window and grace must be greater than zero seconds")
        if not (math.isfinite(self.backoff_factor) and 1 <= self.backoff_factor <= 100):
            raise ConfigError(f"backoff_factor must be between 1 and 100, got {self.backoff_factor}")
        if self.backoff_max < self.backoff_initial:
            raise ConfigError("backoff_max must not be below backoff_initial")


class RestartPolicy:
    """Restart intensity with exponential backoff, for one component.

    A restart granted at time t counts against the limit while `now - t < window`.
    The k-th restart in the window (k from 0) waits `backoff_initial * factor**k`
    seconds, capped at `backoff_max`. Once `max_restarts` restarts sit in the window, the
    next failure is refused: the component is crash-looping and a person must look.
    """

    def __init__(self, limits: RestartLimits) -> None:
        self._limits = limits
        self._granted: collections.deque[float] = collections.deque()

    def recent(self, now: float) -> int:
        """Restarts granted within the window ending at `now`."""
        self._expire(now)
        return len(self._granted)

    def on_failure(self, now: float) -> float | None:
        """The component failed at `now`: the delay before restarting it, or None to give up."""
        self._expire(now)
        count = len(self._granted)
        if count >= self._limits.max_restarts:
            return None
        self._granted.append(now)
        limits = self._limits
        return min(limits.backoff_max, limits.backoff_initial * limits.backoff_factor**count)

    def reset(self) -> None:
        """Forget past restarts (an operator re-enabled the component)."""
        self._granted.clear()

    def _expire(self, now: float) -> None:
        while self._granted and now - self._granted[0] >= self._limits.window:
            self._granted.popleft()


class ChildState(enum.Enum):
    """Where one supervised component stands."""

    STOPPED = "stopped"  # not running, not to be restarted (initial, clean exit, or stopped)
    RUNNING = "running"  # a process is (believed) running
    TERMINATING = "terminating"  # SIGTERM sent; SIGKILL at the grace deadline
    KILLING = "killing"  # SIGKILL sent; waiting to reap it
    BACKOFF = "backoff"  # waiting out the backoff before restarting
    FAILED = "failed"  # gave up: restart intensity exceeded


class Action(enum.Enum):
    """What the I/O layer must do for a component."""

    START = "start"
    TERMINATE = "terminate"  # SIGTERM to its process group
    KILL = "kill"  # SIGKILL to its process group


class ExitDecision(enum.Enum):
    """What follows a process exit."""

    STOPPED = "stopped"
    RESTART = "restart"
    GIVE_UP = "give-up"


class ChildLifecycle:
    """The life of one supervised component, as a pure state machine.

    Legal events per state (anything else raises SupervisorError):

        STOPPED/FAILED --start--> RUNNING                     Action.START
        RUNNING --declare_dead--> TERMINATING                 Action.TERMINATE
        RUNNING --stop--> TERMINATING (stopping)              Action.TERMINATE
        TERMINATING --tick at grace deadline--> KILLING       Action.KILL
        RUNNING --exited(clean)--> STOPPED
        RUNNING --exited(failure)--> BACKOFF | FAILED         (policy)
        TERMINATING/KILLING --exited--> BACKOFF | FAILED      (revival, policy)
                                   or STOPPED                 (when stopping)
        BACKOFF --tick at restart time--> RUNNING             Action.START
        BACKOFF/FAILED --stop--> STOPPED

    `declare_dead` and `stop` in states where they have nothing to do return None.
    """

    def __init__(self, limits: RestartLimits) -> None:
        self._limits = limits
        self._policy = RestartPolicy(limits)
        self._state = ChildState.STOPPED
        self._deadline: float | None = None
        self._stopping = False

    @property
    def state(self) -> ChildState:
        """The current state."""
        return self._state

    @property
    def stopping(self) -> bool:
        """True once `stop` was called while a process was running or being revived."""
        return self._stopping

    def recent_restarts(self, now: float) -> int:
        """Restarts counted against the intensity limit at `now`."""
        return self._policy.recent(now)

    def next_deadline(self) -> float | None:
        """When `tick` has something to do: the SIGKILL deadline or the restart time."""
        return self._deadline

    def start(self, now: float) -> Action:
        """Start the component (first start, or an operator re-enabling a FAILED one)."""
        if self._state not in (ChildState.STOPPED, ChildState.FAILED):
            raise SupervisorError(
                f"cannot start a component that is {self._state.value}; stop it first"
            )
        if self._state is ChildState.FAILED:
            self._policy.reset()
        self._state, self._deadline, self._stopping = ChildState.RUNNING, None, False
        return Action.START

    def declare_dead(self, now: float) -> Action | None:
        """The watchdog found it DEAD: begin revival with SIGTERM (None if not running)."""
        if self._state is not ChildState.RUNNING:
            return None
        self._state, self._deadline = ChildState.TERMINATING, now + self._limits.grace
        return Action.TERMINATE

    def stop(self, now: float) -> Action | None:
        """Stop for good: SIGTERM if running; no restart afterwards."""
        if self._state is ChildState.RUNNING:
            self._stopping = True
            self._state, self._deadline = ChildState.TERMINATING, now + self._limits.grace
            return Action.TERMINATE
        if self._state in (ChildState.TERMINATING, ChildState.KILLING):
            self._stopping = True
            return None
        self._state, self._deadline = ChildState.STOPPED, None
        return None

    def tick(self, now: float) -> Action | None:
        """Act on a deadline that has passed at `now`."""
        if self._deadline is None or now < self._deadline:
            return None
        if self._state is ChildState.TERMINATING:
            self._state, self._deadline = ChildState.KILLING, None
            return Action.KILL
        if self._state is ChildState.BACKOFF:
            self._state, self._deadline = ChildState.RUNNING, None
            return Action.START
        return None

    def exited(self, now: float, clean: bool) -> ExitDecision:
        """Its process is gone (reaped, or could not be spawned). `clean` is exit code 0."""
        if self._state not in (ChildState.RUNNING, ChildState.TERMINATING, ChildState.KILLING):
            raise SupervisorError(f"no process was running (state {self._state.value})")
        if self._stopping or (self._state is ChildState.RUNNING and clean):
            self._state, self._deadline = ChildState.STOPPED, None
            return ExitDecision.STOPPED
        delay = self._policy.on_failure(now)
        if delay is None:
            self._state, self._deadline = ChildState.FAILED, None
            return ExitDecision.GIVE_UP
        self._state, self._deadline = ChildState.BACKOFF, now + delay
        return ExitDecision.RESTART


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------

_MAX_CONFIG_BYTES = 1 << 20
_MAX_COMPONENTS = 256
_MAX_ARGV = 256
_MAX_ENV = 256
_MAX_STRING = 4096
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

# Variables systemd sets for *this* process; a child must not inherit them.
_PROCESS_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """How to run one component: the same argv, env and cwd on every (re)start."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """A parsed supervisor configuration."""

    components: tuple[ComponentSpec, ...]
    limits: RestartLimits


def load_config(path: str | os.PathLike[str]) -> SupervisorConfig:
    """Read and validate a supervisor TOML file; ConfigError says what is wrong and where."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            raw = f.read(_MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read supervisor configuration {where}: {err}") from err
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{where} is larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{where} is not valid TOML: {err}") from err
    return parse_config(doc, where)


def parse_config(doc: Mapping[str, object], where: str = "<config>") -> SupervisorConfig:
    """Validate an already-parsed TOML document (see `load_config`)."""
    _no_unknown(doc, {"supervisor", "component"}, where)
    settings = doc.get("supervisor", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: [supervisor] must be a table")
    keys = {
        "grace_seconds": "grace",
        "max_restarts": "max_restarts",
        "restart_window_seconds": "window",
        "backoff_initial_seconds": "backoff_initial",
        "backoff_max_seconds": "backoff_max",
        "backoff_factor": "backoff_factor",
    }
    _no_unknown(settings, set(keys), f"{where} [supervisor]")
    values: dict[str, float | int] = {}
    for key, attr in keys.items():
        if key in settings:
            value = settings[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where} [supervisor] {key} must be a number")
            if key == "max_restarts" and not isinstance(value, int):
                raise ConfigError(f"{where} [supervisor] max_restarts must be an integer")
            values[attr] = value
    try:
        limits = RestartLimits(**values)  # type: ignore[arg-type]
    except ConfigError as err:
        raise ConfigError(f"{where} [supervisor]: {err}") from err

    entries = doc.get("component", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: components are written as [[component]] tables")
    if len(entries) > _MAX_COMPONENTS:
        raise ConfigError(f"{where}: {len(entries)} components, at most {_MAX_COMPONENTS}")
    specs: list[ComponentSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        spec = _parse_component(entry, f"{where} [[component]] #{index + 1}")
        if spec.name in seen:
            raise ConfigError(f"{where}: component name {spec.name!r} appears twice")
        seen.add(spec.name)
        specs.append(spec)
    return SupervisorConfig(tuple(specs), limits)


def _parse_component(entry: object, where: str) -> ComponentSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    _no_unknown(entry, {"name", "argv", "env", "cwd"}, where)
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: name must be 1-64 characters of letters, digits and _.@:- "
            f"starting with a letter or digit, got {name!r}"
        )
    where = f"{where} ({name})"
    argv = entry.get("argv")
    if not isinstance(argv, list) or not argv or len(argv) > _MAX_ARGV:
        raise ConfigError(f"{where}: argv must be a non-empty list of at most {_MAX_ARGV} strings")
    for arg in argv:
        _check_string(arg, f"{where}: argv item")
    if not argv[0]:
        raise ConfigError(f"{where}: argv[0] (the program) must not be empty")
    env = entry.get("env", {})
    if not isinstance(env, dict) or len(env) > _MAX_ENV:
        raise ConfigError(f"{where}: env must be a table of at most {_MAX_ENV} strings")
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ConfigError(f"{where}: {key!r} is not a valid environment variable name")
        _check_string(value, f"{where}: env {key}")
    cwd = entry.get("cwd")
    if cwd is not None:
        _check_string(cwd, f"{where}: cwd")
        if not os.path.isabs(cwd):
            raise ConfigError(f"{where}: cwd must be an absolute path, got {cwd!r}")
    return ComponentSpec(name, tuple(argv), dict(env), cwd)


def _check_string(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, got {value!r}")
    if len(value) > _MAX_STRING or "\0" in value:
        raise ConfigError(f"{what} must be under {_MAX_STRING} characters with no NUL byte")


def _no_unknown(table: Mapping[str, object], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


# --------------------------------------------------------------------------------------
# I/O layer
# --------------------------------------------------------------------------------------


class EventKind(enum.Enum):
    """What happened to a supervised component."""

    STARTED = "started"
    START_FAILED = "start-failed"  # the program could not be executed
    EXITED = "exited"
    TERMINATING = "terminating"  # SIGTERM sent
    KILLED = "killed"  # SIGKILL sent after the grace period
    RESTART_SCHEDULED = "restart-scheduled"
    GAVE_UP = "gave-up"  # restart intensity exceeded: an alert
    STOPPED = "stopped"
    UNREAPED = "unreaped"  # still there after SIGKILL and close's bound: an alert


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """One thing that happened, for the broker to log and publish.

    `alert` is True for events a person must look at (a component given up on).
    """

    name: str
    kind: EventKind
    at: float
    pid: int | None = None
    detail: str = ""

    @property
    def alert(self) -> bool:
        """True when a person must act (the component will not be restarted)."""
        return self.kind in (EventKind.GAVE_UP, EventKind.UNREAPED)

    def __str__(self) -> str:
        pid = f" pid {self.pid}" if self.pid is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.name}{pid} {self.kind.value}{detail}"


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """One row of `Supervisor.status()`."""

    name: str
    state: ChildState
    pid: int | None
    recent_restarts: int


class _Child:
    __slots__ = ("spec", "lifecycle", "process")

    def __init__(self, spec: ComponentSpec, limits: RestartLimits) -> None:
        self.spec = spec
        self.lifecycle = ChildLifecycle(limits)
        self.process: subprocess.Popen[bytes] | None = None


class Supervisor:
    """Runs the configured components and keeps them alive. Not thread-safe: drive it
    from one loop.

    Every child is its own process group (new session), so SIGTERM/SIGKILL reach what it
    spawned too. Children inherit stdout/stderr (journald under systemd) and the
    supervisor's environment as it was at construction, minus systemd's per-process
    variables (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*), with SPINE_LIVELINESS=manual, plus
    the component's `env`.

    Exits are noticed by `poll` (a non-blocking waitpid per child). While children run,
    `next_deadline` is at most `exit_check_interval` away so a loop that only wakes on
    deadlines still notices; pass None when the caller wakes on SIGCHLD itself.
    """

    def __init__(
        self,
        components: Sequence[ComponentSpec],
        limits: RestartLimits | None = None,
        *,
        base_env: Mapping[str, str] | None = None,
        exit_check_interval: float | None = 0.5,
    ) -> None:
        self._limits = limits or RestartLimits()
        env = dict(os.environ if base_env is None else base_env)
        for name in _PROCESS_ENV:
            env.pop(name, None)
        # a supervised component's own loop vouches for it, so a frozen one is revived
        # (spine.client.liveliness); its `env` may still say automatic
        env["SPINE_LIVELINESS"] = "manual"
        self._base_env = env
        self._exit_check_interval = exit_check_interval
        self._children: dict[str, _Child] = {}
        for spec in components:
            if spec.name in self._children:
                raise ConfigError(f"component name {spec.name!r} appears twice")
            self._children[spec.name] = _Child(spec, self._limits)

    @classmethod
    def from_config(
        cls,
        config: SupervisorConfig,
        *,
        base_env: Mapping[str, str] | None = None,
        exit_check_interval: float | None = 0.5,
    ) -> Supervisor:
        """A supervisor for a parsed configuration (see `load_config`)."""
        return cls(
            config.components,
            config.limits,
            base_env=base_env,
            exit_check_interval=exit_check_interval,
        )

    @property
    def limits(self) -> RestartLimits:
        """The restart limits and grace in force."""
        return self._limits

    def supervises(self, name: str) -> bool:
        """True if `name` is one of the configured components."""
        return name in self._children

    def pid(self, name: str) -> int | None:
        """The pid of `name`'s running (not yet reaped) process, or None."""
        child = self._child(name)
        return None if child.process is None else child.process.pid

    def state(self, name: str) -> ChildState:
        """The lifecycle state of `name`."""
        return self._child(name).lifecycle.state

    def status(self, now: float) -> list[ChildStatus]:
        """Every component with its state, pid and restarts in the window, by name."""
        return [
            ChildStatus(
                name,
                child.lifecycle.state,
                None if child.process is None else child.process.pid,
                child.lifecycle.recent_restarts(now),
            )
            for name, child in sorted(self._children.items())
        ]

    def start(self, now: float, names: Sequence[str] | None = None) -> list[SupervisorEvent]:
        """Start the given components (default: every STOPPED one).

        A FAILED component named explicitly is started again with a clean restart count.
        """
        events: list[SupervisorEvent] = []
        for name in names if names is not None else list(self._children):
            child = self._child(name)
            if names is None and child.lifecycle.state is not ChildState.STOPPED:
                continue
            self._act(child, child.lifecycle.start(now), now, events)
        return events

    def declare_dead(self, name: str, now: float) -> list[SupervisorEvent]:
        """The watchdog says `name` is DEAD: SIGTERM it now, SIGKILL after the grace,
        then restart. Unknown names and components not running are ignored."""
        child = self._children.get(name)
        if child is None:
            return []
        events: list[SupervisorEvent] = []
        self._reap(child, now, events)  # it may have exited already
        action = child.lifecycle.declare_dead(now)
        if action is not None:
            self._act(child, action, now, events, "declared dead by the watchdog")
        return events

    def poll(self, now: float) -> list[SupervisorEvent]:
        """Reap exited children and act on due deadlines. Never blocks."""
        events: list[SupervisorEvent] = []
        for child in self._children.values():
            self._reap(child, now, events)
            action = child.lifecycle.tick(now)
            if action is not None:
                self._act(child, action, now, events)
        return events

    def next_deadline(self, now: float) -> float | None:
        """When `poll` should next run (None: nothing to do until an external event)."""
        best: float | None = None
        for child in self._children.values():
            due = child.lifecycle.next_deadline()
            if due is None and child.process is not None and self._exit_check_interval:
                due = now + self._exit_check_interval
            if due is not None and (best is None or due < best):
                best = due
        return best

    def stop(self, now: float) -> list[SupervisorEvent]:
        """Begin stopping every component (SIGTERM, SIGKILL after the grace via `poll`)."""
        events: list[SupervisorEvent] = []
        for child in self._children.values():
            self._reap(child, now, events)
            before = child.lifecycle.state
            action = child.lifecycle.stop(now)
            if action is not None:
                self._act(child, action, now, events, "supervisor stopping")
            elif before in (ChildState.BACKOFF, ChildState.FAILED):
                events.append(SupervisorEvent(child.spec.name, EventKind.STOPPED, now))
        return events

    @property
    def running(self) -> bool:
        """True while any child process has not been reaped."""
        return any(child.process is not None for child in self._children.values())

    def close(self, reap_timeout: float = 2.0) -> list[SupervisorEvent]:
        """Stop every child and wait for it: SIGTERM, the grace, SIGKILL, reap. Blocks for
        at most the grace period plus ``reap_timeout``: a child that SIGKILL has not ended
        by then (stuck in the kernel, uninterruptible) is left behind with an UNREAPED
        alert naming its pid, never waited for without limit. Safe to call more than once."""
        now = time.monotonic()
        events = self.stop(now)
        kill_at = now + self._limits.grace
        for child in self._children.values():
            if child.process is not None:
                try:
                    child.process.wait(timeout=max(0.0, kill_at - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        events += self.poll(time.monotonic())  # reaps the exited, SIGKILLs the rest
        reap_by = time.monotonic() + reap_timeout
        for name, child in self._children.items():
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.0, reap_by - time.monotonic()))
            except subprocess.TimeoutExpired:
                events.append(SupervisorEvent(
                    name, EventKind.UNREAPED, time.monotonic(), child.process.pid,
                    f"still running {reap_timeout:g} s after SIGKILL; left behind (look at "
                    f"/proc/{child.process.pid}/stack)"))
                child.process = None
        events += self.poll(time.monotonic())
        return events

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise SupervisorError(
                f"no component named {name!r} in the supervisor configuration"
            ) from None

    def _reap(self, child: _Child, now: float, events: list[SupervisorEvent]) -> None:
        process = child.process
        if process is None:
            return
        code = process.poll()
        if code is None:
            return
        child.process = None
        detail = f"killed by {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        events.append(SupervisorEvent(child.spec.name, EventKind.EXITED, now, process.pid, detail))
        self._after_exit(child, now, code == 0, events)

    def _after_exit(
        self, child: _Child, now: float, clean: bool, events: list[SupervisorEvent]
    ) -> None:
        name = child.spec.name
        decision = child.lifecycle.exited(now, clean)
        if decision is ExitDecision.STOPPED:
            events.append(SupervisorEvent(name, EventKind.STOPPED, now))
        elif decision is ExitDecision.RESTART:
            at = child.lifecycle.next_deadline() or now
            events.append(
                SupervisorEvent(
                    name, EventKind.RESTART_SCHEDULED, now, None,
                    f"restart in {at - now:.3g} s "
                    f"({child.lifecycle.recent_restarts(now)} of {self._limits.max_restarts} "
                    f"in {self._limits.window:g} s)",
                )
            )
        else:
            event = SupervisorEvent(
                name, EventKind.GAVE_UP, now, None,
                f"restarted {self._limits.max_restarts} times within {self._limits.window:g} s; "
                "not restarting it again: fix the component, then restart it or the supervisor",
            )
            log.critical("ALERT: %s", event)
            events.append(event)

    def _act(
        self,
        child: _Child,
        action: Action,
        now: float,
        events: list[SupervisorEvent],
        why: str = "",
    ) -> None:
        name = child.spec.name
        if action is Action.START:
            self._spawn(child, now, events)
        elif child.process is None:
            return
        elif action is Action.TERMINATE:
            _signal_group(child.process, signal.SIGTERM)
            events.append(SupervisorEvent(name, EventKind.TERMINATING, now, child.process.pid, why))
        else:
            _signal_group(child.process, signal.SIGKILL)
            events.append(
                SupervisorEvent(
                    name, EventKind.KILLED, now, child.process.pid,
                    f"still running {self._limits.grace:g} s after SIGTERM",
                )
            )

    def _spawn(self, child: _Child, now: float, events: list[SupervisorEvent]) -> None:
        spec = child.spec
        env = {**self._base_env, **spec.env}
        try:
            child.process = subprocess.Popen(
                spec.argv,
                env=env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            events.append(
                SupervisorEvent(spec.name, EventKind.START_FAILED, now, None,
                                f"cannot run {spec.argv[0]!r}: {err.strerror or err}")
            )
            self._after_exit(child, now, False, events)
            return
        events.append(SupervisorEvent(spec.name, EventKind.STARTED, now, child.process.pid))


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Only while the leader is unreaped: its pid (= the group id) cannot have been reused.
    if process.returncode is not None:
        return
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)  # the component and whatever it spawned
        else:
            os.kill(process.pid, sig)  # it left the group we gave it
    except ProcessLookupError:
        pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --------------------------------------------------------------------------------------
# Standalone: spine supervise CONFIG
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`spine supervise CONFIG`: run the configured components until SIGTERM/SIGINT.

    Speaks sd_notify (READY once every component was started, WATCHDOG pings from the
    loop, STATUS, STOPPING) when run under systemd. Returns 0 after a clean stop, 2 on a
    configuration error.
    """
    from spine.broker.notify import SystemdNotify

    parser = argparse.ArgumentParser(
        prog="spine supervise",
        description="Start the components listed in CONFIG and keep them alive.",
    )
    parser.add_argument("config", type=Path, help="supervisor TOML file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level, stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",
        )
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"spine supervise: {err}", file=sys.stderr)
        return 2

    stop_requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    def log_hup(signum: int, frame: FrameType | None) -> None:
        log.warning("SIGHUP: configuration reload is not supported; restart the supervisor")

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in (
            (signal.SIGTERM, request_stop),
            (signal.SIGINT, request_stop),
            (signal.SIGHUP, log_hup),
            (signal.SIGCHLD, lambda signum, frame: None),  # only to wake the selector
        )
    }
    previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    selector = selectors.DefaultSelector()
    selector.register(wake_r, selectors.EVENT_READ)
    notify = SystemdNotify()
    supervisor = Supervisor.from_config(config, exit_check_interval=None)
    try:
        for event in supervisor.start(time.monotonic()):
            _log_event(event)
        notify.ready(_summary(supervisor))
        stopping = False
        while True:
            now = time.monotonic()
            if stop_requested and not stopping:
                stopping = True
                notify.stopping()
                for event in supervisor.stop(now):
                    _log_event(event)
            events = supervisor.poll(now)
            for event in events:
                _log_event(event)
            if stopping and not supervisor.running:
                break
            if events and not stopping:
                notify.status(_summary(supervisor))
            if notify.watchdog_due(now):
                notify.ping(now)
            deadlines = [
                d
                for d in (supervisor.next_deadline(now), notify.next_watchdog_deadline(now))
                if d is not None
            ]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            if selector.select(timeout):
                _drain(wake_r)
        return 0
    finally:
        for event in supervisor.close():
            _log_event(event)
        notify.close()
        selector.close()
        signal.set_wakeup_fd(previous_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 512):
                return
        except BlockingIOError:
            return


def _log_event(event: SupervisorEvent) -> None:
    level = logging.CRITICAL if event.alert else logging.INFO
    if event.kind in (EventKind.START_FAILED, EventKind.KILLED):
        level = logging.WARNING
    log.log(level, "%s", event)


def _summary(supervisor: Supervisor) -> str:
    counts = collections.Counter(s.state.value for s in supervisor.status(time.monotonic()))
    return "components: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
