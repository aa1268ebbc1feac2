"""``spine broker``: run the broker in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from contextlib import contextmanager
from typing import Iterator

from spine import paths
from spine.broker import config as broker_config
from spine.broker.loop import Broker
from spine.errors import ConfigError


def parse_tcp(value: str | None) -> tuple[str | None, int | None]:
    """Split ``HOST:PORT`` (the control port; data, events and pairing follow)."""
    if not value:
        return None, None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--tcp expects HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


@contextmanager
def signals_routed_to(broker: Broker) -> Iterator[None]:
    """SIGTERM/SIGINT stop the broker and SIGHUP reloads it; the old handlers come back after."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    old_wakeup = signal.set_wakeup_fd(broker.wakeup_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda *_: broker.request_stop())
    signal.signal(signal.SIGINT, lambda *_: broker.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: broker.request_reload())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_wakeup)


def build_config(args: argparse.Namespace) -> broker_config.BrokerConfig:
    """The configuration from defaults, the TOML file and the command-line flags."""
    host, port = parse_tcp(getattr(args, "tcp", None))
    return broker_config.load(
        paths.config_file(getattr(args, "config", None)),
        keys_dir=paths.keys_dir(args.keys_dir) if getattr(args, "keys_dir", None) else None,
        runtime_dir=getattr(args, "runtime_dir", None) and paths.runtime_dir(args.runtime_dir),
        state_dir=getattr(args, "state_dir", None) and paths.state_dir(args.state_dir),
        tcp_host=host, tcp_port=port)


def run_broker(args: argparse.Namespace) -> int:
    """Start the broker on its configuration and serve until told to stop."""
    broker = Broker(build_config(args))
    with signals_routed_to(broker):
        try:
            broker.start()
            print(f"spine broker ready; public key {broker.keys.public.decode()}", flush=True)
            broker.serve_forever()
        finally:
            broker.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the broker without the rest of the CLI (``python -m spine.broker.main``)."""
    parser = argparse.ArgumentParser(prog="spine broker")
    for flag in ("--config", "--keys-dir", "--runtime-dir", "--state-dir", "--tcp"):
        parser.add_argument(flag)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_broker(args)


if __name__ == "__main__":
    sys.exit(main())
