"""The one percentile of the benchmarks: nearest rank, on raw samples and in HDR histograms.

The p-th percentile of n samples is the smallest sample that at least p % of
the samples do not exceed: the ⌈p·n/100⌉-th smallest (nearest rank, never an
interpolation between two samples, so it is always a value that was measured).
HdrHistogram's ``get_value_at_percentile`` answers the same question over its
buckets, so a raw-sample figure and a histogram figure mean the same thing (hdrh
rounds a fractional rank p·n/100 to the nearest whole one where nearest rank
takes the next: they can differ by one rank, never by an interpolation).

Raw samples: ``percentile`` and ``summary`` (what the core benchmarks and the
waveform benchmark report).  Histograms (the 1 kHz harness): values are
recorded in nanoseconds (1 ns to 1 h, 3 significant digits) and reported in
microseconds.  A measure taken by a closed-loop client is recorded with
``record_corrected_value(value, period)``, which adds the samples of the sends
the client had to skip while it waited (coordinated omission).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from hdrh.histogram import HdrHistogram

from spine.errors import BenchError, ConfigError

# the points the core benchmarks report; the waveform benchmark reports p50, p99 and p99.9
POINTS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


def percentile(samples: Iterable[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``samples``.

    BenchError (reason ``incomplete``) if there are no samples: the run measured nothing.
    """
    a = _sorted(samples)
    if a.size == 0:
        raise BenchError("no samples to take a percentile of: the run measured nothing",
                         reason=BenchError.INCOMPLETE)
    return _at(a, p)


def summary(samples: Iterable[float], points: Sequence[tuple[str, float]] = POINTS,
            scale: float = 1.0) -> dict[str, float]:
    """n, the nearest-rank percentiles ``points`` ((key, p) pairs), max and mean of ``samples`` × ``scale``.

    ``{"n": 0}`` when there are no samples.
    """
    a = _sorted(samples) * scale
    if a.size == 0:
        return {"n": 0}
    out: dict[str, float] = {"n": int(a.size)}
    out.update((key, _at(a, p)) for key, p in points)
    out["max"] = float(a[-1])
    out["mean"] = float(a.mean())
    return out


def _sorted(samples: Iterable[float]) -> np.ndarray:
    values = samples if isinstance(samples, np.ndarray) else list(samples)
    return np.sort(np.asarray(values, dtype=np.float64))


def _at(ascending: np.ndarray, p: float) -> float:
    if not 0 < p <= 100:
        raise ConfigError(f"a percentile lies in (0, 100], got {p}")
    rank = math.ceil(Fraction(str(p)) * ascending.size / 100)  # exact: 99.9 % of 1000 is rank 999, not 1000
    return float(ascending[rank - 1])


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
