"""Measuring the compute a unit of work used: wall time, CPU time, peak memory, device.

Usage::

    with measure() as usage:
        result = runners.train(spec)
    usage.wall_seconds, usage.cpu_seconds, usage.peak_rss_bytes, usage.device
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split

import contextlib
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


@dataclass
class Usage:
    """Compute used inside a :func:`measure` block; filled in when the block exits.

    Attributes:
        wall_seconds: elapsed monotonic time.
        cpu_seconds: user + system CPU time of this process, all its threads (TensorFlow's
            thread pools included). Child processes are not counted: the runners train
            in-process, and ``RUSAGE_CHILDREN`` only covers children already waited for.
        peak_rss_bytes: highest resident set size during the block (Linux: the VmHWM
            high-water mark, reset when the block starts). Where it cannot be reset (not
            Linux, or ``/proc`` not writable) it is the process's lifetime peak, an upper
            bound; ``peak_rss_is_lifetime`` says so.
        peak_rss_is_lifetime: True when ``peak_rss_bytes`` could not be scoped to the block.
        device: ``"gpu"`` if TensorFlow sees a GPU, else ``"cpu"``.
    """

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_rss_is_lifetime: bool = False
    device: str = "cpu"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_peak_rss() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")  # 5: reset the peak-RSS high-water mark (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_rss_since_reset() -> int | None:
    try:
        with open(_STATUS) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _lifetime_peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kB on Linux


def detect_device() -> str:
    """``"gpu"`` if TensorFlow lists a physical GPU, else ``"cpu"`` (imports TensorFlow)."""
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


@contextlib.contextmanager
def measure() -> Iterator[Usage]:
    """Measure the enclosed block; the yielded :class:`Usage` is filled in on exit.

    Figures are recorded even when the block raises (a cancelled or failed job used compute
    too). The device is detected on exit, when TensorFlow has usually been imported already.
    """
    usage = Usage()
    scoped = _reset_peak_rss()
    start_wall = time.perf_counter()
    start_cpu = _cpu_seconds()
    try:
        yield usage
    finally:
        usage.wall_seconds = time.perf_counter() - start_wall
        usage.cpu_seconds = _cpu_seconds() - start_cpu
        peak = _peak_rss_since_reset() if scoped else None
        usage.peak_rss_is_lifetime = peak is None
        usage.peak_rss_bytes = peak if peak is not None else _lifetime_peak_rss()
        usage.device = detect_device()
