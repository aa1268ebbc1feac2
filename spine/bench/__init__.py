"""Benchmarks, and the infrastructure they share.

Each benchmark (a module or a package listed in ``BENCHMARKS``) exposes ``main(argv) -> int``
and writes its figures with ``--json``; ``spine bench NAME`` runs it. The rest is shared:
``procs`` (role processes), ``pacing`` (the pacer), ``stats`` (percentiles and histograms),
``stamps`` (frames that show a torn read), ``common`` (a throw-away bus, output), ``roles``
(the core benchmarks' processes), ``realtime`` (SCHED_FIFO, pinning, PM QoS) and
``harness`` (the 1 kHz loop that ``spine bench loop`` runs).
"""

BENCHMARKS = ("breaker", "clock_offset", "heartbeat_flood", "loop", "priority", "rtt", "shm", "throughput")
