"""A training job's ``usage``: one typed value, stored as the job's JSON and shown by the API.

Every place that writes ``TrainingJob.usage`` builds a :class:`JobUsage` and stores
``to_dict()``; the API serialises ``JobUsage.from_dict(job.usage).to_dict()``. The JSON shape is
the one the API has always returned, including which keys are absent and which are ``null``:

- while running: ``cost_so_far``, ``seconds_so_far``, ``billing_reason: null``;
- measured (succeeded, cancelled while running, failed on its input, stopped by the time
  limit or an exhausted quota): ``billable_seconds``,
  ``charge``, ``cost_so_far``, ``wall_seconds``, ``cpu_seconds``, ``examples_processed``,
  ``device``, ``peak_memory_bytes``, ``billing_reason`` and, once priced, ``charge_lines``;
- refused at start (402): ``billing_reason: "not_billed"``, ``charge``, ``billable_seconds``;
- cancelled while queued: ``billing_reason``, ``billable_seconds``, ``charge``, ``wall_seconds``,
  ``cpu_seconds``, ``examples_processed``, ``device``;
- a new job: ``{}``.

Money (``charge``, ``cost_so_far``) is a :class:`~decimal.Decimal` here and a string in JSON;
seconds are floats (``wall_seconds`` and ``cpu_seconds`` of a job cancelled while queued are the
integer ``0``, as they always were).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class _Unset(enum.Enum):
    """A key the JSON does not have (distinct from one whose value is ``null``)."""

    UNSET = "unset"


UNSET = _Unset.UNSET

_MONEY = ("charge", "cost_so_far")


@dataclass(frozen=True)
class JobUsage:
    """The compute a job used and what it was charged. Fields left ``UNSET`` are absent from
    :meth:`to_dict`; see the module docstring for the shapes each stage produces."""

    billing_reason: str | None | _Unset = UNSET
    billable_seconds: float | _Unset = UNSET
    charge: Decimal | _Unset = UNSET
    cost_so_far: Decimal | _Unset = UNSET
    seconds_so_far: float | _Unset = UNSET
    wall_seconds: float | _Unset = UNSET
    cpu_seconds: float | _Unset = UNSET
    examples_processed: int | _Unset = UNSET
    device: str | _Unset = UNSET
    peak_memory_bytes: int | None | _Unset = UNSET
    charge_lines: dict[str, dict] | _Unset = UNSET  # {meter: {billable, unit_price, amount}}

    # ---- the stages -----------------------------------------------------------------------

    @classmethod
    def running(cls, *, cost_so_far: Decimal, seconds_so_far: Decimal | float) -> JobUsage:
        """After an epoch: the compute so far (seconds) at the marginal list price."""
        return cls(
            cost_so_far=cost_so_far, seconds_so_far=float(seconds_so_far), billing_reason=None
        )

    @classmethod
    def not_billed(cls) -> JobUsage:
        """The job was refused at start (402): nothing ran, nothing is charged."""
        return cls(billing_reason="not_billed", charge=Decimal("0.00"), billable_seconds=0.0)

    @classmethod
    def cancelled_while_queued(cls, *, device: str) -> JobUsage:
        """Cancelled before any worker took it: zero compute on ``device``."""
        return cls(
            billing_reason="cancelled_by_user",
            billable_seconds=0.0,
            charge=Decimal("0.00"),
            wall_seconds=0,
            cpu_seconds=0,
            examples_processed=0,
            device=device,
        )

    def measured(
        self, *, resources: dict, examples: int, reason: str, billed: bool = True
    ) -> JobUsage:
        """This usage with a worker's measurement added (``charge`` 0 until :meth:`priced`).

        ``resources`` is ``asdict(workers.resources.Usage)``: ``wall_seconds`` and
        ``cpu_seconds`` (s), ``device``, and ``peak_rss_bytes`` (bytes, may be missing).
        Keys this usage already has and the measurement does not set (``seconds_so_far``)
        are kept.
        """
        wall = round(resources["wall_seconds"], 3)
        return dataclasses.replace(
            self,
            billable_seconds=wall if billed else 0.0,
            charge=Decimal("0.00"),
            cost_so_far=Decimal("0.00"),
            wall_seconds=wall,
            cpu_seconds=round(resources["cpu_seconds"], 3),
            examples_processed=examples,
            device=resources["device"],
            peak_memory_bytes=resources.get("peak_rss_bytes"),
            billing_reason=reason,
        )

    def priced(self, *, charge: Decimal, lines: dict[str, dict]) -> JobUsage:
        """This usage with its final charge and the invoice lines it is made of
        (``saas.billing.services.training_charge``'s ``{meter: {...}}``)."""
        return dataclasses.replace(self, charge=charge, cost_so_far=charge, charge_lines=lines)

    def with_reason(self, reason: str) -> JobUsage:
        return dataclasses.replace(self, billing_reason=reason)

    # ---- JSON -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The stored and API JSON: set fields only, money as strings.

        Keys come in PostgreSQL ``jsonb`` order (shorter keys first, then bytewise), the order
        a stored usage is read back in, so the API's bytes are the same whether a usage was
        just built or read from the row.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is UNSET:
                continue
            out[f.name] = str(value) if f.name in _MONEY and value is not None else value
        return dict(sorted(out.items(), key=lambda kv: (len(kv[0]), kv[0])))

    @classmethod
    def from_dict(cls, data: dict | None) -> JobUsage:
        """Read a stored usage (``{}`` or None is an empty usage). Raises TypeError for a key
        this class does not know (every usage ever stored is one of the shapes above)."""
        values: dict[str, Any] = dict(data or {})
        for name in _MONEY:
            if values.get(name) is not None:
                values[name] = Decimal(values[name])
        return cls(**values)
