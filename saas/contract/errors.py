"""The one error the contract raises."""

from __future__ import annotations

from typing import Any


class ContractError(ValueError):
    """Input that breaks the ML contract (hyperparameters, a dataset file).

    Attributes:
        detail: one sentence for people (``str(error)`` is the same).
        errors: every problem found, ``[{"field": str, "message": str, ...}]``; extra keys
            (``line``, ``member``) say where. The control plane maps this to a 400 listing
            them; a runner turns it into a ``TrainingInputError``.
    """

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[dict[str, Any]] = list(errors or [])
