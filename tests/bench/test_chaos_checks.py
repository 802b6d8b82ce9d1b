"""The rules `make chaos` judges a run by (scripts/chaos.py), on event timelines written out.

The harness itself runs in tests/e2e/test_chaos.py; these pin down, fast, that its resume and
billing rule fails what it must: a bill that drops the epochs kept from a killed attempt, or
one that also charges the epoch lost with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from scripts.chaos import billing_problem, sampled_curve, split_attempts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Ev:
    """A JobEvent's fields the rules read: type, data, created_at (seconds after T0)."""

    type: str
    at: float
    data: dict = field(default_factory=dict)

    @property
    def created_at(self) -> datetime:
        return T0 + timedelta(seconds=self.at)


def resumed_timeline() -> list[Ev]:
    # attempt 1: epochs 1 and 2 (4 s each), killed 2 s into epoch 3; attempt 2 resumes from 2,
    # trains epoch 3 (4 s) and finishes 1 s later.
    return [
        Ev("created", 0),
        Ev("started", 0, {"attempt": 1}),
        Ev("epoch", 4, {"epoch": 1}),
        Ev("epoch", 8, {"epoch": 2}),
        Ev("started", 20, {"attempt": 2, "resumed_from_epoch": 2}),
        Ev("epoch", 24, {"epoch": 3}),
        Ev("succeeded", 25),
    ]


def test_split_attempts_cuts_at_each_start_and_drops_what_precedes_the_first():
    attempts = split_attempts(resumed_timeline())
    assert [len(a) for a in attempts] == [3, 3]
    assert attempts[1][0].data["resumed_from_epoch"] == 2


def test_a_bill_of_each_kept_epoch_once_passes():
    # kept: epochs 1, 2 (attempt 1, 8 s) + epoch 3 (4 s) + the last attempt's finish (1 s)
    assert billing_problem(split_attempts(resumed_timeline()), billed=13.0) == ""


def test_a_bill_that_drops_the_earlier_attempts_epochs_fails():
    why = billing_problem(split_attempts(resumed_timeline()), billed=5.0)
    assert "kept epochs" in why


def test_a_bill_that_also_charges_the_lost_partial_epoch_fails():
    # both attempts' whole walls: 20 s + 5 s, though 12 s of attempt 1 trained nothing kept
    why = billing_problem(split_attempts(resumed_timeline()), billed=25.0)
    assert why.startswith("billed 25.0 s >")


def test_a_restart_from_scratch_bills_its_last_attempt():
    events = [
        Ev("started", 0, {"attempt": 1}),
        Ev("epoch", 4, {"epoch": 1}),
        Ev("started", 10, {"attempt": 2}),
        Ev("epoch", 14, {"epoch": 1}),
        Ev("epoch", 18, {"epoch": 2}),
        Ev("succeeded", 19),
    ]
    attempts = split_attempts(events)
    assert billing_problem(attempts, billed=9.0) == ""
    assert billing_problem(attempts, billed=13.0) != ""  # attempt 1's lost epoch billed too


def test_sampled_curve_keeps_the_peak_of_each_mark():
    points = [(0, 100.0), (0, 120.0), (5, 130.0), (9, 90.0), (10, 140.0)]
    assert sampled_curve(points, total=10, n=3) == [(0, 120), (5, 130), (10, 140)]
