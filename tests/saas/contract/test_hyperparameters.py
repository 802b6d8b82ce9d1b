"""The hyperparameter table: defaults, ranges, resolution and the runners' view of it."""

from __future__ import annotations

import pytest

from saas.contract import (
    CNN_SMALL,
    HYPERPARAMETERS,
    IMAGE,
    TEXT,
    TEXT_EMBEDDING_BAG,
    ContractError,
    base_models_for,
    resolve,
    runner_hyperparameters,
)
from saas.contract.hyperparameters import FINE_TUNE_LEARNING_RATE, accepted, stored_defaults

HUB = ["mobilenet_v2"]


def test_new_jobs_store_the_core_defaults_only():
    assert resolve(task=TEXT, base_model=None, hyperparameters=None) == (
        TEXT_EMBEDDING_BAG,
        {"epochs": 10, "batch_size": 32, "learning_rate": 0.005, "validation_split": 0.2},
    )
    assert resolve(task=IMAGE, base_model=None, hyperparameters={"dropout": 0.1})[1] == {
        "epochs": 30,
        "batch_size": 32,
        "learning_rate": 0.003,
        "validation_split": 0.2,
        "dropout": 0.1,
    }


def test_fine_tuning_lowers_the_default_learning_rate_only():
    _, hp = resolve(
        task=IMAGE, base_model="mobilenet_v2", hyperparameters={"fine_tune": True}, hub_models=HUB
    )
    assert hp["learning_rate"] == FINE_TUNE_LEARNING_RATE and hp["fine_tune"] is True
    _, hp = resolve(
        task=IMAGE,
        base_model="mobilenet_v2",
        hyperparameters={"fine_tune": True, "learning_rate": 0.01},
        hub_models=HUB,
    )
    assert hp["learning_rate"] == 0.01
    assert runner_hyperparameters("mobilenet_v2", {"fine_tune": True})["learning_rate"] == 1e-4


def test_every_bad_field_is_listed_at_once():
    with pytest.raises(ContractError) as err:
        resolve(
            task=TEXT,
            base_model=None,
            hyperparameters={
                "epochs": 0,
                "batch_size": 2.5,
                "lr_schedule": "linear",
                "image_size": 32,
                "fine_tune": "yes",
                "dropout": True,
                "learning_rate": 10**400,
            },
        )
    fields = {e["field"]: e["message"] for e in err.value.errors}
    assert fields["hyperparameters.epochs"] == "must be between 1 and 200; got 0"
    assert fields["hyperparameters.batch_size"] == "must be an integer"
    assert "one of: constant, cosine" in fields["hyperparameters.lr_schedule"]
    assert fields["hyperparameters.image_size"].startswith("unknown for text-embedding-bag")
    assert fields["hyperparameters.fine_tune"].startswith("unknown")  # hub models only
    assert fields["hyperparameters.dropout"] == "must be a number"  # a bool is not a number
    assert "between" in fields["hyperparameters.learning_rate"]  # no OverflowError


def test_unknown_base_model_names_the_field_and_the_choices():
    with pytest.raises(ContractError) as err:
        resolve(task=IMAGE, base_model="resnet", hyperparameters=None, hub_models=HUB)
    assert err.value.errors == [
        {"field": "base_model", "message": "must be one of: cnn-small, mobilenet_v2"}
    ]
    assert base_models_for(TEXT, HUB) == [TEXT_EMBEDDING_BAG]


def test_the_runners_get_every_hyperparameter_their_family_accepts():
    assert set(runner_hyperparameters(TEXT_EMBEDDING_BAG, {})) == {
        "epochs",
        "batch_size",
        "learning_rate",
        "validation_split",
        "lr_schedule",
        "dropout",
        "max_tokens",
        "sequence_length",
        "embedding_dim",
    }
    cnn = runner_hyperparameters(CNN_SMALL, {"image_size": 16})
    assert cnn["image_size"] == 16 and cnn["lr_schedule"] == "cosine"
    assert runner_hyperparameters("mobilenet_v2", None)["image_size"] is None


@pytest.mark.parametrize("family", ["text", "cnn", "hub"])
def test_defaults_are_inside_their_own_ranges(family):
    for name, h in accepted(family).items():
        default = h.defaults[family]
        if default is None:
            continue
        assert h.check(default) == (default, None), name
    assert set(stored_defaults(family)) <= set(accepted(family))


def test_help_text_states_the_range_and_the_defaults():
    assert (
        HYPERPARAMETERS["epochs"]
        .help_text()
        .endswith("(integer, 1–200; default: text-embedding-bag 10; cnn-small 30; hub models 5)")
    )
    assert "one of: constant, cosine" in HYPERPARAMETERS["lr_schedule"].help_text()
