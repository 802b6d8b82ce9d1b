"""The control plane's adapter to the ML contract's hyperparameters (:mod:`saas.contract`).

The contract is Django-free, so two things are added here: the deployment's TF Hub catalogue
(``settings.TRAINYARD_HUB_HANDLES``) and the mapping of :class:`~saas.contract.ContractError`
to :class:`~saas.common.errors.ValidationFailed` (a 400 listing every field). Defaults, ranges
and the base-model rules all live in :mod:`saas.contract.hyperparameters`.
"""

from __future__ import annotations

from django.conf import settings

from saas.common.errors import ValidationFailed
from saas.contract import ContractError, catalogue
from saas.contract import hyperparameters as contract


def base_models_for(task: str) -> list[str]:
    """Base models valid for ``task``: text has one; images have cnn-small and the hub catalogue."""
    return catalogue.base_models_for(task, settings.TRAINYARD_HUB_HANDLES)


def resolve(*, task: str, base_model: str | None, hyperparameters: dict | None) -> tuple[str, dict]:
    """Return ``(base_model, stored hyperparameters)`` with the core defaults filled in.

    See :func:`saas.contract.hyperparameters.resolve`.

    Raises:
        ValidationFailed: listing every bad field: unknown base model for the task, unknown
            hyperparameter, wrong type, out of range.
    """
    try:
        return contract.resolve(
            task=task,
            base_model=base_model,
            hyperparameters=hyperparameters,
            hub_models=settings.TRAINYARD_HUB_HANDLES,
        )
    except ContractError as exc:
        raise ValidationFailed(exc.detail, errors=exc.errors) from None
