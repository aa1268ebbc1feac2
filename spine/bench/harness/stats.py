"""Latency measures: HDR histograms (the ``hdrhistogram`` package) and their percentiles.

Values are recorded in nanoseconds (1 ns to 1 h, 3 significant digits) and
reported in microseconds.  A measure taken by a closed-loop client is recorded
with ``record_corrected_value(value, period)``, which adds the samples of the
sends the client had to skip while it waited (coordinated omission).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_NS = 1
HIGHEST_NS = 3600 * 10**9
SIGNIFICANT_DIGITS = 3
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9), ("p99_99", 99.99))


@dataclass
class Measure:
    """One latency measure of a run: its histogram and the measured (not synthesized) samples."""

    name: str
    description: str
    histogram: HdrHistogram
    samples_ns: np.ndarray
    sample_times_ns: np.ndarray
    deadline_ns: int | None = None

    @property
    def count(self) -> int:
        """Samples in the histogram, synthesized ones included."""
        return self.histogram.get_total_count()

    @property
    def synthesized(self) -> int:
        """Samples the coordinated-omission correction added (sends skipped while waiting)."""
        return self.count - int(self.samples_ns.size)

    @property
    def over_deadline(self) -> int:
        """Samples (synthesized included) above the deadline; 0 without a deadline."""
        if self.deadline_ns is None or self.count == 0:
            return 0
        return sum(item.count_at_value_iterated_to for item in self.histogram.get_recorded_iterator()
                   if self.histogram.get_lowest_equivalent_value(item.value_iterated_to) > self.deadline_ns)

    def percentile_us(self, percentile: float) -> float:
        """The value at ``percentile`` (0–100), in µs."""
        return self.histogram.get_value_at_percentile(percentile) / 1e3

    def summary(self) -> dict[str, float | int]:
        """p50 … p99.99, max and mean in µs, with the sample, synthesized and over-deadline counts."""
        if self.count == 0:
            return {"count": 0}
        out: dict[str, float | int] = {key: self.percentile_us(p) for key, p in PERCENTILES}
        out["max"] = self.histogram.get_max_value() / 1e3
        out["mean"] = self.histogram.get_mean_value() / 1e3
        out["count"] = self.count
        out["synthesized"] = self.synthesized
        if self.deadline_ns is not None:
            out["over_deadline"] = self.over_deadline
        return out


def new_histogram() -> HdrHistogram:
    """An empty histogram for nanosecond latencies."""
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)


def measure(name: str, description: str, values_ns: np.ndarray, times_ns: np.ndarray | None = None, *,
            corrected_interval_ns: int | None = None, deadline_ns: int | None = None) -> Measure:
    """Record ``values_ns`` (negative ones as 0) into a new histogram.

    With ``corrected_interval_ns`` each value is recorded with
    coordinated-omission correction for that expected interval.
    ``times_ns`` says when each sample was taken (for timelines).
    """
    values = np.clip(np.asarray(values_ns, dtype=np.int64), 0, HIGHEST_NS)
    hist = new_histogram()
    if corrected_interval_ns:
        for v in values.tolist():
            hist.record_corrected_value(v, corrected_interval_ns)
    else:
        for v in values.tolist():
            hist.record_value(v)
    times = np.asarray(times_ns if times_ns is not None else np.zeros(values.size), dtype=np.int64)
    return Measure(name, description, hist, values, times, deadline_ns)


def percentile_curve(m: Measure, points: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(percentiles, values in µs) from p0 to just short of the last sample, log-spaced towards 100."""
    if m.count == 0:
        return np.array([]), np.array([])
    top = max(1.0, np.log10(m.count))
    nines = np.linspace(0.0, top, points)
    percentiles = 100.0 * (1.0 - 10.0 ** -nines)
    values = np.array([m.percentile_us(p) for p in percentiles])
    return percentiles, values


def distribution(m: Measure, edges_us: np.ndarray) -> np.ndarray:
    """Counts of the histogram's values (synthesized included) in the bins ``edges_us``."""
    values, counts = [], []
    for item in m.histogram.get_recorded_iterator():
        values.append(item.value_iterated_to / 1e3)
        counts.append(item.count_at_value_iterated_to)
    hist, _ = np.histogram(np.clip(values, edges_us[0], edges_us[-1]), bins=edges_us, weights=counts)
    return hist
