"""``spine status``: the broker's components and per-plane counters, as a table or JSON.

The command connects as a whitelisted identity from the key directory (``cli`` unless
``--name`` says otherwise), sends the ``status`` admin command on the control plane and
prints what the broker answers. It sends no heartbeats, so running it never adds a
component to the broker's watchdog.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from spine import paths
from spine.client.component import Component
from spine.endpoints import Endpoints
from spine.errors import ProtocolError

DEFAULT_NAME = "cli"
CONNECT_TIMEOUT_S = 5.0
STATUS_TIMEOUT_S = 5.0


def connect_from_args(args: argparse.Namespace, *, timeout: float = CONNECT_TIMEOUT_S) -> Component:
    """A connected, heartbeat-less Component for a command-line tool.

    Reads ``name``, ``keys_dir``, ``runtime_dir`` and ``tcp`` (``HOST:PORT``, the control
    port) from ``args``; raises BrokerUnavailable with a hint when the broker does not answer.
    """
    from spine.broker.main import parse_tcp

    host, port = parse_tcp(getattr(args, "tcp", None))
    endpoints = (Endpoints.tcp(host, port) if host
                 else Endpoints.ipc(paths.runtime_dir(getattr(args, "runtime_dir", None))))
    comp = Component(getattr(args, "name", None) or DEFAULT_NAME,
                     keys_dir=getattr(args, "keys_dir", None), endpoints=endpoints,
                     heartbeat=False)
    try:
        return comp.connect(timeout=timeout)
    except BaseException:
        comp.close()
        raise


def fetch_status(comp: Component, timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """Ask the broker for its status; the JSON object it answers (ProtocolError if malformed)."""
    reply = comp.request_broker("status", timeout=timeout)
    spike = reply.spike
    if not spike.HasField("rich_payload") or spike.rich_payload.mime_type != "application/json":
        raise ProtocolError("the broker answered 'status' without a JSON payload; "
                            "is it an older spine broker?")
    try:
        status = json.loads(spike.rich_payload.data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"the broker's status is not valid JSON: {exc}") from None
    if not isinstance(status, dict):
        raise ProtocolError("the broker's status is not a JSON object")
    return status


def _bytes(n: Any) -> str:
    if not isinstance(n, (int, float)) or n <= 0:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"  # unreachable: the loop returns at GiB


def _messages(component: dict[str, Any]) -> str:
    metrics = component.get("metrics") or {}
    if "sent" not in metrics and "received" not in metrics:
        return "-"
    return f"{int(metrics.get('sent', 0))} out / {int(metrics.get('received', 0))} in"


def _component_row(c: dict[str, Any]) -> tuple[str, ...]:
    last_seen = c.get("last_seen_s")
    cpu = c.get("cpu_percent")
    return (str(c.get("name", "?")), str(c.get("kind", "?")), str(c.get("state", "?")),
            "-" if last_seen is None else f"{last_seen:.1f} s ago",
            str(c.get("pid") or "-"),
            "-" if not c.get("pid") or cpu is None else f"{cpu:.1f}%",
            _bytes(c.get("memory_rss_bytes")), _messages(c))


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)


def format_status(status: dict[str, Any], out: TextIO | None = None) -> None:
    """Print ``status`` (the broker's answer) as a readable report."""
    out = out if out is not None else sys.stdout
    print(f"broker {status.get('broker', '?')}  up {status.get('uptime_s', 0):.0f} s  "
          f"key {status.get('public_key', '?')}", file=out)
    components = status.get("components") or []
    print(file=out)
    if components:
        _table([("NAME", "KIND", "STATE", "LAST SEEN", "PID", "CPU", "MEMORY", "MESSAGES")]
               + [_component_row(c) for c in components], out)
    else:
        print("no components connected", file=out)
    print(file=out)
    rows = [("PLANE", "IN", "OUT", "DROPPED")]
    for plane, counters in sorted((status.get("planes") or {}).items()):
        dropped = counters.get("dropped") or {}
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items()))
        rows.append((plane, str(counters.get("in", 0)), str(counters.get("out", 0)),
                     f"{sum(dropped.values())}" + (f" ({reasons})" if reasons else "")))
    _table(rows, out)
    auth = status.get("auth") or {}
    denied = auth.get("denied") or {}
    print(f"\nauthentication: {auth.get('allowed', 0)} allowed, {sum(denied.values())} denied"
          + (f" ({', '.join(f'{k} {v}' for k, v in sorted(denied.items()))})" if denied else ""),
          file=out)
    queues = status.get("queues") or {}
    waiting = {name: q for name, q in (queues.get("recipients") or {}).items()
               if q.get("depth") or q.get("slow") or q.get("refused") or q.get("dropped")}
    if waiting:
        print(f"recipient queues: {_bytes(queues.get('total_bytes', 0))} of "
              f"{_bytes(queues.get('max_bytes', 0))} in use", file=out)
        _table([("RECIPIENT", "DEPTH", "BYTES", "REFUSED", "DROPPED", "CONFLATED", "SLOW")]
               + [(name, str(q.get("depth", 0)), _bytes(q.get("bytes", 0)),
                   str(q.get("refused", 0)), str(q.get("dropped", 0)),
                   str(q.get("conflated", 0)),
                   ("SLOW CONSUMER" if q.get("slow") else "no")
                   + (f" ({q['slow_events']}x)" if q.get("slow_events") else ""))
                  for name, q in sorted(waiting.items())], out)
    if status.get("supervised"):
        print("supervised components:", file=out)
        for child in status["supervised"]:
            pid = child["pid"] if child["pid"] is not None else "-"
            print(f"  {child['name']:<20} {child['state']:<12} pid {pid:<8} "
                  f"restarts in window {child['recent_restarts']}", file=out)


def run_status(args: argparse.Namespace) -> int:
    """``spine status [--json] [--name NAME] [--keys-dir D] [--runtime-dir D] [--tcp HOST:PORT]``."""
    comp = connect_from_args(args)
    try:
        status = fetch_status(comp)
    finally:
        comp.close()
    if getattr(args, "json", False):
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        format_status(status)
    return 0
