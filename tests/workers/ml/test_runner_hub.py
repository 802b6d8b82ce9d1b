"""The local TF Hub module and hub base models: interface, frozen vs fine-tuned backbones."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def test_module_follows_the_reusable_saved_model_api(hub_module_path):
    import tensorflow as tf
    import tensorflow_hub as hub

    from workers.ml.runners.image import hub_input_size

    module = hub.load(hub_module_path)
    assert len(module.trainable_variables) < len(module.variables)
    assert list(module.regularization_losses) == []
    assert hub_input_size(module) == 32
    images = tf.random.uniform([2, 32, 32, 3], seed=1)
    features = module.signatures["serving_default"](inputs=images)["feature_vector"]
    assert features.shape == (2, 1280)
    np.testing.assert_allclose(
        module(images, training=False).numpy(), features.numpy(), rtol=1e-5, atol=1e-6
    )


def _backbone_weights(variables):
    return {v.name: v.numpy() for v in variables}


@pytest.fixture(scope="module")
def original_weights(hub_module_path):
    import tensorflow_hub as hub

    return _backbone_weights(hub.load(hub_module_path).variables)


@pytest.mark.parametrize("fine_tune", [True, False])
def test_fine_tune_decides_whether_the_backbone_learns(
    tmp_path, hub_module_path, original_weights, write_digits_zip, digit_pngs, fine_tune
):
    import tensorflow as tf

    from saas.contract.spec import IMAGE, TrainSpec
    from workers.ml import runners

    before = original_weights
    out = tmp_path / "out"
    out.mkdir()
    spec = TrainSpec(
        task=IMAGE,
        dataset_path=str(write_digits_zip(tmp_path / "d.zip", per_class=4)),
        output_dir=str(out),
        base_model="mobilenet_v2",
        handle=hub_module_path,
        # A large rate so that one step visibly moves every trained weight.
        hyperparameters={
            "epochs": 1,
            "batch_size": 8,
            "validation_split": 0.25,
            "fine_tune": fine_tune,
            "learning_rate": 0.01,
        },
    )
    result = runners.train(spec)

    exported = tf.saved_model.load(result.saved_model_dir)
    after = _backbone_weights(exported.model_variables)
    assert set(before) <= set(after)
    changed = {name for name in before if not np.array_equal(before[name], after[name])}
    if fine_tune:
        assert "Conv1/kernel:0" in changed  # the first convolution, far from the head
        assert "bn_Conv1/moving_mean:0" in changed  # batch-norm ran in training mode
    else:
        assert changed == set()
    scores = exported.signatures["serving_default"](inputs=tf.constant([digit_pngs["0"][0][1]]))[
        "scores"
    ]
    assert scores.shape == (1, 3)


def test_image_size_cannot_change_a_fixed_size_module(tmp_path, hub_module_path, write_digits_zip):
    from saas.contract.spec import IMAGE, TrainingInputError, TrainSpec
    from workers.ml import runners

    spec = TrainSpec(
        task=IMAGE,
        dataset_path=str(write_digits_zip(tmp_path / "d.zip", per_class=5)),
        output_dir=str(tmp_path),
        base_model="mobilenet_v2",
        handle=hub_module_path,
        hyperparameters={"image_size": 64},
    )
    with pytest.raises(TrainingInputError, match="32×32"):
        runners.train(spec)
