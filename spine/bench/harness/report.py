"""The result of a harness run: measures, counts, ratios and targets, as JSON and as a readable table."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from dataclasses import dataclass

import zmq

from spine.bench.harness.config import SHM_BUDGET_NS, LoopConfig
from spine.bench.stats import Measure

# the order and the labels of the summary table
LABELS = {
    "tick_jitter": "tick jitter (start - due)",
    "tick_total": "tick done (sent - due)",
    "control_rtt": "control RTT (corrected)",
    "control_service": "control RTT (from send)",
    "shm_handoff": "shm hand-off",
    "descriptor": "descriptor (data plane)",
    "raw_echo_loaded_rtt": "raw echo RTT, same load",
    "raw_echo_rtt": "raw echo RTT, quiet",
    "timer_jitter": "bare timer loop jitter",
}
MISS_FRACTION_TARGET = 0.001
CONTROL_VS_RAW_TARGET = 2.5


@dataclass
class LoopResult:
    """Everything a run measured.

    ``measures`` maps a measure name (see LABELS) to its Measure; ``ticks``
    is the writer's tick count; ``misses`` counts ticks and control round
    trips (coordinated-omission samples included) over the 1 ms deadline;
    ``torn`` counts frames a reader took as consistent that were not (must
    be 0); ``counts`` holds the other tallies (frames overwritten before a
    reader got them, requests lost, sends failed, ...); ``cpu_percent`` is
    each process's CPU use over its phase (100 = one core; the roles' include
    their set-up, the broker's does not).
    """

    config: LoopConfig
    measures: dict[str, Measure]
    ticks: int
    counts: dict[str, int]
    machine: dict[str, object]
    cpu_percent: dict[str, float]

    @property
    def misses(self) -> int:
        """Ticks and control round trips over the 1 ms deadline."""
        return sum(self.measures[name].over_deadline for name in ("tick_total", "control_rtt")
                   if name in self.measures)

    @property
    def miss_fraction(self) -> float:
        """misses / (ticks + control slots)."""
        total = self.ticks + (self.measures["control_rtt"].count if "control_rtt" in self.measures else 0)
        return self.misses / total if total else 0.0

    @property
    def torn(self) -> int:
        """Torn frames seen by the shm reader and the descriptor follower."""
        return self.counts.get("shm_torn", 0) + self.counts.get("follower_torn", 0)

    def p(self, name: str, key: str) -> float | None:
        """Percentile ``key`` (e.g. "p50") of measure ``name`` in µs, or None if it was not measured."""
        m = self.measures.get(name)
        return m.summary().get(key) if m is not None and m.count else None

    @property
    def ratios(self) -> dict[str, float]:
        """Figures relative to the same-run baselines (and the shm budget).

        ``control_p50_vs_raw`` compares the control round trip with the raw
        echo measured while the same physics load ran (like for like);
        ``control_p50_vs_raw_quiet`` with the echo on an otherwise idle machine.
        """
        pairs = {
            "control_p50_vs_raw": ("control_rtt", "p50", "raw_echo_loaded_rtt", "p50"),
            "control_p99_vs_raw": ("control_rtt", "p99", "raw_echo_loaded_rtt", "p99"),
            "control_p50_vs_raw_quiet": ("control_rtt", "p50", "raw_echo_rtt", "p50"),
            "control_p99_vs_raw_quiet": ("control_rtt", "p99", "raw_echo_rtt", "p99"),
            "tick_jitter_p50_vs_timer": ("tick_jitter", "p50", "timer_jitter", "p50"),
            "tick_jitter_p99_vs_timer": ("tick_jitter", "p99", "timer_jitter", "p99"),
        }
        out = {}
        for key, (a, pa, b, pb) in pairs.items():
            x, y = self.p(a, pa), self.p(b, pb)
            if x is not None and y:
                out[key] = x / y
        shm = self.p("shm_handoff", "p99")
        if shm is not None:
            out["shm_p99_vs_budget"] = shm / (SHM_BUDGET_NS / 1e3)
        return out

    @property
    def targets(self) -> dict[str, dict[str, object]]:
        """Each target of issue 7 with the figure measured and whether it is met."""
        out: dict[str, dict[str, object]] = {
            "torn": {"target": "== 0", "value": self.torn, "met": self.torn == 0},
            "miss_fraction": {"target": f"<= {MISS_FRACTION_TARGET}", "value": self.miss_fraction,
                              "met": self.miss_fraction <= MISS_FRACTION_TARGET},
        }
        ratio = self.ratios.get("control_p50_vs_raw")
        if ratio is not None:
            out["control_p50_vs_raw"] = {"target": f"<= {CONTROL_VS_RAW_TARGET}", "value": ratio,
                                         "met": ratio <= CONTROL_VS_RAW_TARGET}
        shm = self.p("shm_handoff", "p99")
        if shm is not None:
            out["shm_handoff_p99_us"] = {"target": f"<= {SHM_BUDGET_NS / 1e3:g}", "value": shm,
                                         "met": shm <= SHM_BUDGET_NS / 1e3}
        return out

    def to_json(self) -> dict:
        """The figures as a JSON-able dict: top-level ticks, misses, miss_fraction, torn, ratios, and one
        ``<measure>_us`` object of percentiles per measure."""
        out: dict[str, object] = {
            "ticks": self.ticks,
            "misses": self.misses,
            "miss_fraction": self.miss_fraction,
            "torn": self.torn,
        }
        for name, m in self.measures.items():
            out[f"{name}_us"] = m.summary()
        out["ratios"] = self.ratios
        out["targets"] = self.targets
        out["counts"] = dict(self.counts)
        out["cpu_percent"] = dict(self.cpu_percent)
        cfg = dataclasses.asdict(self.config)
        cfg["pin"] = {role: list(cpus) for role, cpus in self.config.pin.items()}
        out["config"] = cfg
        out["machine"] = self.machine
        return out

    def table(self) -> str:
        """A readable summary: one row per measure, then misses, counts, ratios and targets."""
        c = self.config
        pinned = {role: ",".join(map(str, cpus)) for role, cpus in c.pin.items()}
        lines = [f"spine bench loop: {c.duration_s:g} s at {c.tick_hz} Hz ticks / {c.control_hz} Hz control, "
                 f"{c.frame_bytes} B frames ({c.read_mode}{', predictive wait' if c.predict else ''}), "
                 f"{c.transport}, CURVE on; "
                 + (f"SCHED_FIFO {', '.join(f'{r}={p}' for r, p in c.rt.items())}; " if c.rt else "")
                 + (f"pinned {', '.join(f'{r}={cpus}' for r, cpus in pinned.items())}; " if c.pin else "")
                 + ("/dev/cpu_dma_latency held at 0; " if c.pm_qos else "") +
                 f"baselines {c.baseline_duration_s:g} s each",
                 f"{'µs':<27}{'n':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'p99.99':>9}{'max':>10}{'>1ms':>7}"]
        for name, label in LABELS.items():
            m = self.measures.get(name)
            if m is None or m.count == 0:
                continue
            s = m.summary()
            over = str(s["over_deadline"]) if "over_deadline" in s else ""
            lines.append(f"{label:<27}{s['count']:>8}" + "".join(f"{s[k]:>9.1f}" for k in
                         ("p50", "p90", "p99", "p99_9", "p99_99")) + f"{s['max']:>10.1f}{over:>7}")
        lines.append(f"ticks {self.ticks}, misses {self.misses} ({100 * self.miss_fraction:.3f} %), "
                     f"torn {self.torn}; " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        lines.append("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in self.ratios.items()))
        lines.append("targets: " + ", ".join(
            f"{k} {_fmt(t['value'])} ({t['target']}: {'met' if t['met'] else 'NOT met'})"
            for k, t in self.targets.items()))
        lines.append("CPU % of one core: " + ", ".join(f"{k} {v:g}" for k, v in self.cpu_percent.items()))
        m = self.machine
        lines.append(f"machine: {m.get('cpu')} x{m.get('cpus')}, load {m.get('loadavg_before')} -> "
                     f"{m.get('loadavg_after')}, Python {m.get('python')}, pyzmq {m.get('pyzmq')}")
        return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def machine_description() -> dict[str, object]:
    """What this machine is: CPU model and count, memory, kernel, Python, pyzmq/libzmq, current load."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "memory_gib": mem_gib, "kernel": platform.release(),
            "python": platform.python_version(), "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version(),
            "loadavg_before": load_average(), "executable": sys.executable}


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (how busy the shared machine is)."""
    return [round(x, 2) for x in os.getloadavg()]
