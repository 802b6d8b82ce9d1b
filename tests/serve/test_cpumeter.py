"""The data plane's inference cost is CPU seconds, shared out over concurrent executions."""

from __future__ import annotations

import threading
import time

import pytest

from serve.cpumeter import CpuMeter


class Clock:
    """A process CPU clock the test moves by hand (the meter's only input)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_one_execution_gets_all_the_cpu_it_ran_with():
    clock = Clock()
    m = CpuMeter(clock)
    clock.t += 5.0  # before anything runs: overhead, nobody's
    a = m.begin()
    clock.t += 2.0
    assert m.end(a) == pytest.approx(2.0)
    assert m.running() == 0


def test_overlapping_executions_split_each_interval_equally_and_sum_to_the_total():
    clock = Clock()
    m = CpuMeter(clock)
    a = m.begin()
    clock.t += 1.0  # a alone
    b = m.begin()
    clock.t += 3.0  # a and b: 1.5 each
    ca = m.end(a)
    clock.t += 0.5  # b alone
    cb = m.end(b)
    assert ca == pytest.approx(2.5) and cb == pytest.approx(2.0)
    assert ca + cb == pytest.approx(4.5)  # all CPU while something ran, handed out once


def test_an_unknown_or_ended_token_raises():
    m = CpuMeter(Clock())
    t = m.begin()
    m.end(t)
    with pytest.raises(KeyError):
        m.end(t)


def test_the_real_clock_bills_busy_work_and_not_sleeping():
    m = CpuMeter()
    t = m.begin()
    time.sleep(0.3)  # waiting costs no CPU
    slept = m.end(t)
    t = m.begin()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    busy = m.end(t)
    assert slept < 0.1 and busy >= 0.2


def test_threads_sharing_the_meter_never_get_more_than_the_process_used():
    m = CpuMeter()
    got: list[float] = []
    start = time.process_time()

    def work() -> None:
        t = m.begin()
        end = time.perf_counter() + 0.15
        while time.perf_counter() < end:
            pass
        got.append(m.end(t))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    used = time.process_time() - start
    assert len(got) == 3 and all(g > 0 for g in got)
    assert sum(got) <= used + 1e-6
