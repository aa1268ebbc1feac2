"""The broker's endpoints: where each plane listens and where components connect."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spine.errors import ConfigError

IPC_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL


@dataclass(frozen=True, slots=True)
class Endpoints:
    """One address per plane, e.g. ``ipc:///run/spine/control.ipc`` or ``tcp://host:5555``."""

    control: str
    data: str
    events: str
    pairing: str

    @classmethod
    def ipc(cls, runtime_dir: Path) -> "Endpoints":
        """The same-host endpoints inside ``runtime_dir``."""
        base = Path(runtime_dir).absolute()
        eps = {plane: f"ipc://{base / (plane + '.ipc')}"
               for plane in ("control", "data", "events", "pairing")}
        for address in eps.values():
            if len(address) - len("ipc://") > IPC_PATH_MAX:
                raise ConfigError(f"ipc path {address} is longer than {IPC_PATH_MAX} bytes; "
                                  "use a shorter runtime directory (SPINE_RUNTIME_DIR)")
        return cls(**eps)

    @classmethod
    def tcp(cls, host: str, base_port: int) -> "Endpoints":
        """Four consecutive TCP ports from ``base_port``: control, data, events, pairing."""
        if not 0 < base_port <= 65532:
            raise ConfigError(f"TCP base port {base_port} out of range (1-65532)")
        return cls(*(f"tcp://{host}:{base_port + i}" for i in range(4)))

    def ipc_paths(self) -> list[Path]:
        """The socket files behind the ipc endpoints (to clean up after a crash)."""
        return [Path(ep[len("ipc://"):]) for ep in (self.control, self.data, self.events,
                                                     self.pairing) if ep.startswith("ipc://")]
