"""Every ``METER.begin()`` in ``serve.runtime._execute`` is matched by an ``end()``, on every
path: success, a failing ``scores``, a failing ``format``, the one-by-one retry of a failed
batch, and an exception that is not an ``Exception``. A leaked token would stay in the meter
for the life of the process, taking a share of every later interval's CPU (under-billing
every tenant on that replica) and growing the meter's dict without bound."""

from __future__ import annotations

import asyncio

import pytest

from serve.cpumeter import METER
from serve.runtime import _execute, _Job


class Abort(BaseException):
    """Not an Exception (like KeyboardInterrupt or SystemExit reaching an executor thread)."""


class Fake:
    def __init__(self, *, scores_raises=None, format_raises=None, bad=b"bad"):
        self.scores_raises, self.format_raises, self.bad = scores_raises, format_raises, bad

    def scores(self, flat):
        if self.scores_raises is not None:
            raise self.scores_raises
        if self.bad in flat:
            raise ValueError("undecodable")
        return [[1.0] for _ in flat]

    def format(self, rows):
        if self.format_raises is not None:
            raise self.format_raises
        return rows


@pytest.fixture
def jobs():
    loop = asyncio.new_event_loop()
    yield lambda *inputs: [_Job("org", list(i), loop.create_future()) for i in inputs]
    loop.close()


def test_a_successful_execution_ends_its_token(jobs):
    before = METER.running()
    out = _execute(Fake(), jobs([b"a"], [b"b", b"c"]))
    assert [len(o[0]) for o in out] == [1, 2]
    assert METER.running() == before


def test_a_failed_batch_retried_one_by_one_ends_every_token(jobs):
    before = METER.running()
    out = _execute(Fake(), jobs([b"a"], [b"bad"], [b"c"]))
    assert isinstance(out[1], Exception) and not isinstance(out[0], Exception)
    assert METER.running() == before


def test_a_failing_format_ends_its_token(jobs):
    before = METER.running()
    with pytest.raises(RuntimeError):
        _execute(Fake(format_raises=RuntimeError("format")), jobs([b"a"]))
    assert METER.running() == before


def test_a_base_exception_from_scores_ends_its_token(jobs):
    before = METER.running()
    with pytest.raises(Abort):
        _execute(Fake(scores_raises=Abort()), jobs([b"a"], [b"b"]))
    assert METER.running() == before
