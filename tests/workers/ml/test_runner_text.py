"""The text runner: training, the exported SavedModel, the vocabulary, input errors."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tf

HP = {"epochs": 2, "batch_size": 8, "validation_split": 0.25}


def _spec(dataset_path, output_dir, **overrides):
    from saas.contract.spec import TEXT, TrainSpec

    fields = dict(
        task=TEXT,
        dataset_path=str(dataset_path),
        output_dir=str(output_dir),
        base_model="text-embedding-bag",
        hyperparameters=HP,
        seed=0,
    )
    fields.update(overrides)
    return TrainSpec(**fields)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, text_rows, write_csv):
    """(rows, result, epochs reported) for one tiny training run shared by this module."""
    from workers.ml import runners

    tmp = tmp_path_factory.mktemp("text")
    rows = text_rows
    csv_path = write_csv(tmp / "texts.csv", rows)
    (tmp / "out").mkdir()
    reported = []
    result = runners.train(
        _spec(csv_path, tmp / "out"), on_epoch=lambda e, logs: reported.append((e, logs))
    )
    return rows, result, reported


def test_result_describes_the_run(trained):
    rows, result, reported = trained
    assert result.classes == ["negative", "positive"]
    assert result.num_train == 36 and result.num_validation == 12
    assert result.epochs_completed == 2
    assert result.examples_processed == 72
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert [e for e, _ in reported] == [1, 2]
    for _, logs in reported:
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert all(type(v) is float for v in logs.values())
    metrics = result.metrics
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert set(metrics["per_class"]) == {"negative", "positive"}
    assert sum(c["support"] for c in metrics["per_class"].values()) == 12
    assert np.array(metrics["confusion_matrix"]["matrix"]).sum() == 12
    texts = {text for text, _ in rows}
    assert all(m["input"] in texts for m in result.misclassified)


def test_saved_model_predicts_raw_strings(trained):
    import tensorflow as tf

    _, result, _ = trained
    loaded = tf.saved_model.load(result.saved_model_dir)
    serve = loaded.signatures["serving_default"]
    (spec,) = serve.structured_input_signature[1].values()
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    scores = serve(inputs=tf.constant(["great love nice", "awful hate bad", ""]))["scores"]
    assert scores.dtype == tf.float32 and scores.shape == (3, 2)
    np.testing.assert_allclose(scores.numpy().sum(axis=1), 1.0, rtol=1e-5)
    with open(f"{result.saved_model_dir}/assets/labels.txt", encoding="utf-8") as fh:
        assert fh.read().splitlines() == result.classes


def test_vocabulary_is_adapted_on_the_training_split_only(trained):
    """A token seen only in validation rows maps to OOV: it scores exactly like an unseen one."""
    import tensorflow as tf

    from workers.ml import splits
    from workers.ml.runners.common import encode_labels

    rows, result, _ = trained
    _, y = encode_labels([label for _, label in rows])
    groups = splits.group_ids(splits.text_keys([text for text, _ in rows]))
    train_idx, val_idx = splits.grouped_stratified_split(
        y, groups, result.classes, validation_split=HP["validation_split"], seed=0
    )
    serve = tf.saved_model.load(result.saved_model_dir).signatures["serving_default"]

    def scores(text):
        return serve(inputs=tf.constant([text]))["scores"].numpy()[0]

    unseen = scores("qqqneverseen")
    for i in val_idx[:3]:
        np.testing.assert_array_equal(scores(f"tok{i}"), unseen)
    for i in train_idx[:3]:
        assert not np.array_equal(scores(f"tok{i}"), unseen)


def test_read_csv_handles_bom_quotes_and_column_names(tmp_path, write_csv):
    from workers.ml.runners.text import read_csv

    path = write_csv(
        tmp_path / "t.csv", [('Said "hi", then left', " a "), ("x", "b")], header=("body", "cls")
    )
    assert read_csv(str(path), "body", "cls") == (['Said "hi", then left', "x"], ["a", "b"])


@pytest.mark.parametrize(
    ("rows", "header", "hyperparameters", "message"),
    [
        ([("a", "x"), ("b", "x"), ("c", "y")], ("text", "label"), {}, "at least 2 examples"),
        ([("a", "x"), ("b", "x")], ("text", "label"), {}, "two classes"),
        ([("a", "x"), ("b", "")], ("text", "label"), {}, "empty label"),
        ([("a", "x")], ("body", "label"), {}, "no column named 'text'"),
        ([("a", "x"), ("b", "y")] * 3, ("text", "label"), {"epochs": "many"}, "'epochs'"),
        (
            [("a", "x"), ("b", "y")] * 3,
            ("text", "label"),
            {"validation_split": 0.9},
            "validation_split",
        ),
    ],
)
def test_unusable_input_is_a_training_input_error(
    tmp_path, write_csv, rows, header, hyperparameters, message
):
    from saas.contract.spec import TrainingInputError
    from workers.ml.runners import text

    path = write_csv(tmp_path / "t.csv", rows, header=header)
    with pytest.raises(TrainingInputError, match=message):
        text.train(_spec(path, tmp_path, hyperparameters=hyperparameters))
    assert not (tmp_path / "saved_model").exists()
