"""The broker's configuration: built-in defaults, a TOML file, environment and flags."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from spine import paths
from spine.endpoints import Endpoints
from spine.errors import ConfigError


HEARTBEAT_S = 1.0  # how often components send their StatusReport (spine.client.heartbeat)


@dataclass(frozen=True)
class BrokerConfig:
    """Everything the broker needs to start. Every field has a working default."""

    keys_dir: Path = field(default_factory=paths.keys_dir)
    runtime_dir: Path = field(default_factory=paths.runtime_dir)
    state_dir: Path = field(default_factory=paths.state_dir)
    name: str = "broker"                  # the broker's own identity in keys_dir
    tcp_host: str | None = None           # also listen on TCP when set
    tcp_port: int = 5555                  # control; data, events, pairing follow
    hwm: int = 10_000                     # SNDHWM and RCVHWM on every socket
    control_max_bytes: int = 64 * 1024    # MAXMSGSIZE of the control plane
    data_max_bytes: int = 64 * 1024 * 1024  # MAXMSGSIZE of the data plane
    data_batch: int = 256                 # data messages served per loop turn at most
    spin_us: int = 250                    # after a message, poll without sleeping this long
                                          # while that keeps paying off (0: never)
    data_io_nice: int = 10                # niceness of the data plane's I/O thread (0: leave it)
    whitelist_poll_s: float = 0.25        # how often whitelist.txt is checked for edits
    degrade_after_s: float = 3.0
    dead_after_s: float = 10.0
    pairing_window_s: float = 300.0
    components_file: Path | None = None   # components to supervise (TOML)
    # What a recipient cannot take yet waits in its own queue (spine.broker.queues):
    queue_max_messages: int = 10_000      # per recipient
    queue_max_bytes: int = 64 * 1024 * 1024   # per recipient
    queues_max_bytes: int = 512 * 1024 * 1024  # all recipients together
    slow_consumer_after_s: float = 2.0    # a queue full this long is a slow consumer

    def __post_init__(self) -> None:
        from spine.security.keys import NAME_RE  # zmq's import cost, only when configuring
        for key, (low, high) in LIMITS.items():
            _check_range(key, getattr(self, key), low, high)
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ConfigError(f"name {self.name!r} is not a valid identity name: 1 to 32 of "
                              "letters, digits, '_', '.', '-', starting with a letter or digit",
                              key="name", value=self.name, allowed=NAME_RE.pattern)
        if self.dead_after_s <= self.degrade_after_s:
            raise ConfigError(
                f"watchdog thresholds degrade_after_s={self.degrade_after_s}, dead_after_s="
                f"{self.dead_after_s}: dead_after_s must be larger than degrade_after_s "
                f"(components report every {HEARTBEAT_S:g} s, so degrade_after_s is at "
                f"least {2 * HEARTBEAT_S:g} s, or healthy components flap)",
                key="dead_after_s", value=self.dead_after_s,
                allowed=f"> degrade_after_s ({self.degrade_after_s})")
        if self.data_max_bytes < self.control_max_bytes:
            raise ConfigError(
                f"data_max_bytes={self.data_max_bytes} is below control_max_bytes="
                f"{self.control_max_bytes}: the data plane carries the larger messages",
                key="data_max_bytes", value=self.data_max_bytes,
                allowed=f">= control_max_bytes ({self.control_max_bytes})")
        if self.queue_max_bytes > self.queues_max_bytes:
            raise ConfigError(
                f"queue_max_bytes={self.queue_max_bytes} (one recipient) is above "
                f"queues_max_bytes={self.queues_max_bytes} (all recipients together)",
                key="queue_max_bytes", value=self.queue_max_bytes,
                allowed=f"<= queues_max_bytes ({self.queues_max_bytes})")

    def ipc_endpoints(self) -> Endpoints:
        """The ipc endpoints in the runtime directory."""
        return Endpoints.ipc(self.runtime_dir)

    def tcp_endpoints(self) -> Endpoints | None:
        """The TCP endpoints, when TCP is enabled."""
        return Endpoints.tcp(self.tcp_host, self.tcp_port) if self.tcp_host else None

    def with_overrides(self, **overrides) -> "BrokerConfig":
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_PATH_FIELDS = {"keys_dir", "runtime_dir", "state_dir", "components_file"}

_MIB = 1024 * 1024

LIMITS: dict[str, tuple[float, float]] = {
    # key: (lowest, highest) allowed, both included; every number must also be finite.
    "tcp_port": (1, 65532),                 # four consecutive ports from here
    "hwm": (1, 10_000_000),
    "control_max_bytes": (4096, 16 * _MIB),   # small: the broker parses what comes here
    "data_max_bytes": (4096, 2048 * _MIB),
    "data_batch": (1, 65536),
    "spin_us": (0, 10_000),                 # beyond 10 ms a spin is a busy core, not a gain
    "data_io_nice": (0, 19),                # raising priority is the scheduler's job (systemd)
    "whitelist_poll_s": (0.01, 3600.0),
    "degrade_after_s": (2 * HEARTBEAT_S, 3600.0),
    "dead_after_s": (2 * HEARTBEAT_S, 86400.0),
    "pairing_window_s": (1.0, 86400.0),
    "queue_max_messages": (1, 10_000_000),
    "queue_max_bytes": (4096, 65536 * _MIB),
    "queues_max_bytes": (4096, 65536 * _MIB),
    "slow_consumer_after_s": (0.05, 3600.0),
}


def _check_range(key: str, value: object, low: float, high: float) -> None:
    """Raise ConfigError naming ``key``, ``value`` and the range unless low <= value <= high."""
    if isinstance(low, int) and isinstance(high, int):
        allowed = f"an integer from {low} to {high}"
        good_type = isinstance(value, int) and not isinstance(value, bool)
    else:
        allowed = f"a number from {low:g} to {high:g}"
        good_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not good_type or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{key} = {value!r} is out of range: it must be {allowed}",
                          key=key, value=value, allowed=allowed)


def load(path: Path | None, **overrides) -> BrokerConfig:
    """Defaults, then the TOML file at ``path`` (``[broker]`` table), then ``overrides``."""
    config = BrokerConfig()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        stray = sorted(set(data) - {"broker"})
        if stray:
            raise ConfigError(f"{path}: unknown top-level keys or tables {', '.join(stray)}; "
                              "the broker's settings go in a [broker] table")
        table = data.get("broker", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: 'broker' must be a table ([broker]), got {table!r}")
        known = {f.name: f for f in fields(BrokerConfig)}
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown [broker] keys {', '.join(unknown)}; "
                              f"known keys are {', '.join(sorted(known))}")
        values = {key: _checked(Path(path), key, value, getattr(config, key))
                  for key, value in table.items()}
        try:
            config = replace(config, **values)
        except ConfigError as exc:
            raise ConfigError(f"{path}: [broker] {exc}", key=exc.key, value=exc.value,
                              allowed=exc.allowed) from None
    return config.with_overrides(**overrides)


def _checked(path: Path, key: str, value: object, default: object) -> object:
    """``value`` from the TOML file as the type of field ``key``, or raise ConfigError."""
    if key in _PATH_FIELDS:
        expected: type = str
    else:  # the default's type; tcp_host's default is None, but it is a string when set
        expected = str if default is None else type(default)
    is_bool = isinstance(value, bool)  # a bool is an int to Python, never to a reader
    if expected is float and isinstance(value, int) and not is_bool:
        value = float(value)
    if not isinstance(value, expected) or (is_bool and expected is not bool):
        wanted = "a path (string)" if key in _PATH_FIELDS else expected.__name__
        raise ConfigError(f"{path}: [broker] {key} must be {wanted}, got {value!r}")
    if key in _PATH_FIELDS:
        return Path(value) if Path(value).is_absolute() else path.parent / value
    return value
