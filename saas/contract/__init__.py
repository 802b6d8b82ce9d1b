"""The ML contract shared by the control plane, the workers, forms and serializers.

Django-free and free of the project's other packages (an import-linter contract in
``make lint`` keeps it so): task names and image formats (:mod:`.tasks`), the base-model
catalogue (:mod:`.catalogue`), hyperparameter defaults and ranges (:mod:`.hyperparameters`),
the dataset parsers (:mod:`.datasets`) and the spec/result dataclasses the runners consume
(:mod:`.spec`). Everything raises :class:`ContractError` for input that breaks the contract.
"""

from saas.contract.catalogue import (
    CNN_SMALL,
    TEXT_EMBEDDING_BAG,
    base_models_for,
    default_base_model,
    family,
)
from saas.contract.errors import ContractError
from saas.contract.hyperparameters import (
    DEFAULTS,
    HYPERPARAMETERS,
    Hyperparameter,
    resolve,
    runner_hyperparameters,
)
from saas.contract.spec import (
    EpochCallback,
    StopCheck,
    TrainingCancelled,
    TrainingInputError,
    TrainResult,
    TrainSpec,
)
from saas.contract.tasks import IMAGE, IMAGE_EXTENSIONS, IMAGE_FORMATS, TASKS, TEXT

__all__ = [
    "CNN_SMALL",
    "DEFAULTS",
    "HYPERPARAMETERS",
    "IMAGE",
    "IMAGE_EXTENSIONS",
    "IMAGE_FORMATS",
    "TASKS",
    "TEXT",
    "TEXT_EMBEDDING_BAG",
    "ContractError",
    "EpochCallback",
    "Hyperparameter",
    "StopCheck",
    "TrainResult",
    "TrainSpec",
    "TrainingCancelled",
    "TrainingInputError",
    "base_models_for",
    "default_base_model",
    "family",
    "resolve",
    "runner_hyperparameters",
]
