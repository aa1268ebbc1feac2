"""What the core benchmarks share: a throw-away bus, baseline keys, output.

Their roles run as ``spine.bench.procs.RoleProcess``; their percentiles come from
``spine.bench.stats``.

Every benchmark starts what it measures as separate processes with CURVE on, measures a
baseline in the same run and reports ratios, because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import zmq

from spine.protocol import neural_spike_pb2 as pb
from spine.security.keys import KeyPair, load_or_create
from spine.security.whitelist import Entry, add_entry
from spine.testing import BrokerProcess, free_tcp_base


class BenchBus:
    """A broker process over ipc with a fresh key directory and whitelisted identities.

    ``names`` are the identities, all ORCHESTRATOR, or a mapping name → ``ComponentKind``.
    The context manager starts the broker and, on exit (or if it does not start), stops it
    and removes the directory.
    """

    def __init__(self, names: Iterable[str] | Mapping[str, int], *, tcp: bool = False,
                 extra_args: list[str] | None = None) -> None:
        kinds = dict(names) if isinstance(names, Mapping) else dict.fromkeys(names, pb.ORCHESTRATOR)
        self.root = Path(tempfile.mkdtemp(prefix="spine-bench-", dir="/tmp"))
        self.keys_dir = self.root / "keys"
        for name, kind in kinds.items():
            keys = load_or_create(self.keys_dir, name)
            add_entry(self.keys_dir, Entry(keys.public, name, kind))
        self.broker = BrokerProcess(self.keys_dir, self.root / "run", log_path=self.root / "broker.log",
                                    tcp_host="127.0.0.1" if tcp else None,
                                    tcp_port=free_tcp_base() if tcp else None, extra_args=extra_args)

    def __enter__(self) -> "BenchBus":
        try:
            self.broker.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.broker.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def keys(self, name: str) -> KeyPair:
        """The identity ``name`` from the bench's key directory."""
        return load_or_create(self.keys_dir, name)


def curve_pair() -> tuple[bytes, bytes]:
    """A throw-away CURVE key pair (public, secret) for baseline sockets."""
    return zmq.curve_keypair()


def machine() -> dict:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "zmq": zmq.zmq_version(), "pyzmq": zmq.__version__, "platform": platform.platform(),
            "load_avg": os.getloadavg()}


def parser(name: str, doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has."""
    p = argparse.ArgumentParser(prog=f"spine bench {name}", description=doc)
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    return p


def write_json(path: str | None, figures: dict) -> None:
    """Write ``figures`` (with the machine description) to ``path`` when one is given."""
    if path:
        figures = {**figures, "machine": machine()}
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {path}")


def table(rows: list[tuple], headers: tuple) -> str:
    """A plain-text table."""
    cells = [tuple(str(c) for c in headers)] + [tuple(_fmt(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
