"""What a latency-harness run does: rates, duration, frame size, pinning, injected stalls."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spine.client.component import Component
from spine.endpoints import Endpoints
from spine.errors import ConfigError
from spine.protocol import neural_spike_pb2 as pb

ROLES = ("broker", "writer", "reader", "follower", "controller", "responder",
         "echo-server", "echo-client", "timer")
DEADLINE_NS = 1_000_000          # the 1 ms tick budget: a tick or a round trip over it is a miss
SHM_BUDGET_NS = 113_000          # physics-class data must reach readers within 113 µs (SPEC §8)
MAX_FRAME_BYTES = 64 << 20

# SCHED_FIFO priorities for ``--rt``: the physics path above the control path, as an operator
# would set them with systemd's CPUSchedulingPolicy=fifo / CPUSchedulingPriority=.  Each
# baseline runs at the priority of the role it stands for (cyclictest, too, runs SCHED_FIFO).
# The follower is left out: a slow visualiser-like reader runs under the normal scheduler.
# The broker sits below the control endpoints: it busy-polls after each message (spin_us),
# and a woken controller or responder must be able to preempt that spin, which SCHED_FIFO
# does only for a higher priority.
RT_PRIORITIES = {"writer": 80, "timer": 80, "reader": 79,
                 "controller": 70, "responder": 70, "echo-server": 70, "echo-client": 70, "broker": 60}

# the run's bus identities: instance name -> ComponentID kind in the whitelist
WRITER = "physics"
FOLLOWER = "follower"
CONTROLLER = "controller"
RESPONDER = "responder"
IDENTITIES = {WRITER: pb.PHYSICS_ENGINE, FOLLOWER: pb.VISUAL_CORTEX,
              CONTROLLER: pb.CLI_CONTROLLER, RESPONDER: pb.ORCHESTRATOR}


@dataclass(frozen=True)
class LoopConfig:
    """One run of the 1 kHz harness; every field has a production-like default.

    ``baseline_s`` is how long each same-run baseline (bare timer loop, raw pyzmq
    echo) runs before the system phase; None means min(duration_s, 10).
    ``responder_stall`` = (at_s, for_s) pauses the responder with SIGSTOP at
    ``at_s`` seconds into the system phase for ``for_s`` seconds (to show the
    coordinated-omission correction). ``pin`` maps a role name (see ROLES) to
    the CPUs it may run on; ``rt`` maps a role name to the SCHED_FIFO priority
    it runs at (``RT_PRIORITIES`` is the usual set; roles not named keep the
    normal scheduler).  ``pm_qos`` holds /dev/cpu_dma_latency at 0 µs for the
    run, as tuned's latency-performance profile does.
    """

    duration_s: float = 10.0
    tick_hz: int = 1000
    control_hz: int = 1000
    frame_bytes: int = 1 << 20
    slots: int = 16
    transport: str = "ipc"
    read_mode: str = "view"
    predict: bool = False  # the shm reader waits predictively (wait_*(predict=True)) instead of on the futex alone
    baseline_s: float | None = None
    baselines: bool = True
    spin_us: int = 100
    request_timeout_s: float = 0.5
    responder_stall: tuple[float, float] | None = None
    pin: dict[str, tuple[int, ...]] = field(default_factory=dict)
    broker_config: str | None = None  # a broker TOML file (e.g. to set spin_us)
    rt: dict[str, int] = field(default_factory=dict)  # role -> SCHED_FIFO priority (1-99)
    echo_block_s: float = 1.0  # the system phase's control path alternates bus / raw echo in blocks this long
    pm_qos: bool = False  # hold /dev/cpu_dma_latency at 0 for the whole run (idle CPUs poll, never halt)

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= 24 * 3600:
            raise ConfigError(f"duration must be between 0 and 86400 s, got {self.duration_s}")
        for name in ("tick_hz", "control_hz"):
            rate = getattr(self, name)
            if not 1 <= rate <= 20_000:
                raise ConfigError(f"{name} must be between 1 and 20000 Hz, got {rate}")
        if not 8 <= self.frame_bytes <= MAX_FRAME_BYTES or self.frame_bytes % 8:
            raise ConfigError(f"frame size must be a multiple of 8 between 8 and {MAX_FRAME_BYTES} bytes "
                              f"(frames carry 64-bit stamps), got {self.frame_bytes}")
        if not 2 <= self.slots <= 65536:
            raise ConfigError(f"the shm ring needs 2 to 65536 slots, got {self.slots}")
        if self.transport not in ("ipc", "tcp"):
            raise ConfigError(f"transport must be 'ipc' or 'tcp', got {self.transport!r}")
        if self.read_mode not in ("view", "copy"):
            raise ConfigError(f"read mode must be 'view' (zero-copy, in place) or 'copy', got {self.read_mode!r}")
        if self.baseline_s is not None and not 0 < self.baseline_s <= 24 * 3600:
            raise ConfigError(f"baseline duration must be between 0 and 86400 s, got {self.baseline_s}")
        if not 0 <= self.spin_us <= 1000:
            raise ConfigError(f"spin must be between 0 and 1000 µs, got {self.spin_us}")
        if not 0.001 <= self.echo_block_s <= 3600:
            raise ConfigError(f"echo block must be between 0.001 and 3600 s, got {self.echo_block_s}")
        if not 0 < self.request_timeout_s <= 60:
            raise ConfigError(f"request timeout must be between 0 and 60 s, got {self.request_timeout_s}")
        if self.responder_stall is not None:
            at, length = self.responder_stall
            if at < 0 or length <= 0 or at + length > self.duration_s:
                raise ConfigError(f"responder stall {self.responder_stall} must lie inside the "
                                  f"{self.duration_s} s run")
        for role, cpus in self.pin.items():
            if role not in ROLES:
                raise ConfigError(f"cannot pin unknown role {role!r}; roles are {', '.join(ROLES)}")
            if not cpus or any(c < 0 for c in cpus):
                raise ConfigError(f"pinning {role!r} needs a non-empty list of CPU numbers, got {cpus}")
        for role, priority in self.rt.items():
            if role not in ROLES:
                raise ConfigError(f"cannot give a real-time priority to unknown role {role!r}; "
                                  f"roles are {', '.join(ROLES)}")
            if not 1 <= priority <= 99:
                raise ConfigError(f"SCHED_FIFO priority of {role!r} must be between 1 and 99, got {priority}")

    @property
    def ticks(self) -> int:
        """Ticks the writer runs in the system phase."""
        return max(1, round(self.duration_s * self.tick_hz))

    @property
    def control_slots(self) -> int:
        """Control requests scheduled in the system phase (sent or skipped)."""
        return max(1, round(self.duration_s * self.control_hz))

    @property
    def baseline_duration_s(self) -> float:
        """How long each baseline runs."""
        return self.baseline_s if self.baseline_s is not None else min(self.duration_s, 10.0)

    @property
    def tick_period_ns(self) -> int:
        """Nanoseconds between ticks."""
        return round(1e9 / self.tick_hz)

    @property
    def control_period_ns(self) -> int:
        """Nanoseconds between scheduled control requests."""
        return round(1e9 / self.control_hz)


def parse_cpus(text: str) -> tuple[int, ...]:
    """'0', '0,1' or '0-3' as a tuple of CPU numbers (ConfigError if malformed)."""
    cpus: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"CPU list {text!r} is not like '0', '0,1' or '0-3'") from None
    if not cpus:
        raise ConfigError(f"CPU list {text!r} names no CPU")
    return tuple(cpus)


@dataclass(frozen=True)
class Wiring:
    """Where the roles of one run meet: the broker's endpoints and key, the key directory, the shm segment.

    ``echo_endpoint`` / ``echo_key`` name the raw echo server of the
    same-load baseline, when there is one.
    """

    endpoints: Endpoints
    keys_dir: Path
    broker_key: bytes
    segment: str
    echo_endpoint: str | None = None  # the raw echo server the controller alternates with (a baseline)
    echo_key: bytes | None = None

    def component(self, name: str) -> Component:
        """A connected Component ``name`` of this run (its key is already whitelisted)."""
        comp = Component(name, keys_dir=self.keys_dir, endpoints=self.endpoints, broker_key=self.broker_key)
        try:
            comp.connect(timeout=20.0)
        except BaseException:
            comp.close()
            raise
        return comp
