"""A tiny component process for the liveness tests: connects with its keys and answers.

    python component_child.py NAME --keys-dir D (--runtime-dir D | --tcp HOST:PORT)
                              [--ready-file F] [--exit-when F]

It answers each request with ``NAME pid=PID: TEXT`` so a test sees which process served
it. SIGTERM stops it cleanly (a Python handler: a SIGSTOPped child cannot run it, so the
supervisor has to SIGKILL a frozen one). With ``--exit-when F`` it is a crash-looping
component: it waits until F exists (so a test can subscribe first) and exits with status 3
without connecting. The supervisor re-runs the same argv, so it keeps its identity.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from spine.broker.main import parse_tcp
from spine.client.component import Component
from spine.endpoints import Endpoints
from spine.protocol.envelope import new_spike

CRASH_STATUS = 3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--keys-dir", required=True)
    parser.add_argument("--runtime-dir")
    parser.add_argument("--tcp")
    parser.add_argument("--ready-file", type=Path, help="written (with the pid) once connected")
    parser.add_argument("--exit-when", type=Path, help="crash with status 3 once this file exists")
    args = parser.parse_args()
    if args.exit_when is not None:
        while not args.exit_when.exists():
            time.sleep(0.01)  # the test creates the file; there is no event to wait on
        return CRASH_STATUS
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host, port = parse_tcp(args.tcp)
    endpoints = Endpoints.tcp(host, port) if host else Endpoints.ipc(Path(args.runtime_dir))
    comp = Component(args.name, keys_dir=args.keys_dir, endpoints=endpoints)
    try:
        comp.connect(timeout=20)
        if args.ready_file is not None:
            tmp = args.ready_file.with_suffix(".tmp")
            tmp.write_text(str(os.getpid()))
            tmp.rename(args.ready_file)
        pid = os.getpid()
        comp.serve(lambda msg: new_spike(text_data=f"{args.name} pid={pid}: {msg.spike.text_data}"),
                   should_stop=stop.is_set, poll_s=0.05)
    finally:
        comp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
