"""The broker's configuration: built-in defaults, a TOML file, environment and flags."""

from __future__ import annotations

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
        if self.degrade_after_s < 2 * HEARTBEAT_S or self.dead_after_s <= self.degrade_after_s:
            raise ConfigError(
                f"watchdog thresholds degrade_after_s={self.degrade_after_s}, dead_after_s="
                f"{self.dead_after_s}: components report every {HEARTBEAT_S:g} s, so "
                f"degrade_after_s must be at least {2 * HEARTBEAT_S:g} s (or healthy components "
                "flap) and dead_after_s larger than it")
        if self.spin_us < 0 or self.hwm < 1 or self.data_batch < 1:
            raise ConfigError("spin_us must be >= 0, hwm and data_batch >= 1")

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
        config = replace(config, **values)
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
