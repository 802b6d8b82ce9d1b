"""measure(): wall and CPU seconds, peak memory scoped to the block, device."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def test_measure_records_time_memory_and_device():
    from workers.ml.resources import detect_device, measure

    with measure() as usage:
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:
            pass
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
        time.sleep(0.05)
    del block
    assert usage.wall_seconds >= 0.25
    assert 0.15 <= usage.cpu_seconds <= usage.wall_seconds + 0.5
    assert usage.peak_rss_bytes >= 64 * 1024 * 1024
    assert usage.device == detect_device() and usage.device in {"cpu", "gpu"}
    if sys.platform == "linux":
        assert usage.peak_rss_is_lifetime is False


def test_measure_fills_in_figures_when_the_block_raises():
    from workers.ml.resources import measure

    with pytest.raises(RuntimeError), measure() as usage:
        time.sleep(0.01)
        raise RuntimeError("boom")
    assert usage.wall_seconds >= 0.01 and usage.peak_rss_bytes > 0
