"""The base-model catalogue: which base models each task offers.

Hub models are named by the deployment (``TRAINYARD_HUB_HANDLES``: name → handle), so the
functions here take those names as an argument instead of reading settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

from saas.contract.tasks import IMAGE, TASKS, TEXT

TEXT_EMBEDDING_BAG: Final = "text-embedding-bag"
CNN_SMALL: Final = "cnn-small"

Family = Literal["text", "cnn", "hub"]


def base_models_for(task: str, hub_models: Iterable[str] = ()) -> list[str]:
    """Base models valid for ``task``.

    Args:
        task: ``TEXT`` or ``IMAGE``.
        hub_models: names of the TF Hub image models this deployment offers.

    Returns:
        Text: ``["text-embedding-bag"]``; images: ``["cnn-small", *sorted(hub_models)]``.

    Raises:
        ValueError: unknown task.
    """
    if task == TEXT:
        return [TEXT_EMBEDDING_BAG]
    if task == IMAGE:
        return [CNN_SMALL, *sorted(set(hub_models) - {CNN_SMALL, TEXT_EMBEDDING_BAG})]
    raise ValueError(f"Unknown task {task!r}; known: {', '.join(TASKS)}.")


def default_base_model(task: str) -> str:
    """``"text-embedding-bag"`` for text, ``"cnn-small"`` for images."""
    return TEXT_EMBEDDING_BAG if task == TEXT else CNN_SMALL


def family(base_model: str) -> Family:
    """Which runner code path and hyperparameter set a base model uses.

    ``"text"`` for text-embedding-bag, ``"cnn"`` for cnn-small, ``"hub"`` for any other name
    (a TF Hub feature extractor resolved from the catalogue).
    """
    if base_model == TEXT_EMBEDDING_BAG:
        return "text"
    if base_model == CNN_SMALL:
        return "cnn"
    return "hub"
