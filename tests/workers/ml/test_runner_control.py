"""Cancellation, progress reporting, determinism and dispatch, through ``runners.train``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.tf


def _text_spec(tmp_path, write_csv, text_rows, **hyperparameters):
    from saas.contract.spec import TEXT, TrainSpec

    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return TrainSpec(
        task=TEXT,
        dataset_path=str(write_csv(tmp_path / "t.csv", text_rows)),
        output_dir=str(out),
        base_model="text-embedding-bag",
        hyperparameters={"epochs": 3, "batch_size": 8, "validation_split": 0.25, **hyperparameters},
    )


@pytest.fixture
def batches_run(monkeypatch):
    """Counts training batches that actually ran (``on_train_batch_end`` calls)."""
    from workers.ml.runners.common import ProgressCallback

    counter = {"n": 0}
    original = ProgressCallback.on_train_batch_end

    def counting(self, batch, logs=None):
        counter["n"] += 1
        return original(self, batch, logs)

    monkeypatch.setattr(ProgressCallback, "on_train_batch_end", counting)
    return counter


def _stop_after(n_calls):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > n_calls

    return should_stop, calls


@pytest.mark.parametrize("allowed", [3, 6])  # 36 training rows / 8 = 5 batches an epoch
def test_should_stop_cancels_within_one_batch(tmp_path, write_csv, text_rows, batches_run, allowed):
    from saas.contract.spec import TrainingCancelled
    from workers.ml import runners

    spec = _text_spec(tmp_path, write_csv, text_rows)
    should_stop, calls = _stop_after(allowed)
    epochs = []
    with pytest.raises(TrainingCancelled) as cancelled:
        runners.train(spec, should_stop=should_stop, on_epoch=lambda e, logs: epochs.append(e))
    assert calls["n"] == allowed + 1  # not polled again after it said stop
    assert batches_run["n"] <= allowed + 1
    assert batches_run["n"] == allowed  # in fact the pending batch is not run at all
    full_epochs = allowed // 5
    assert epochs == list(range(1, full_epochs + 1))
    assert cancelled.value.epochs_completed == full_epochs
    assert cancelled.value.examples_processed == full_epochs * 36 + (allowed % 5) * 8
    assert not (tmp_path / "out" / "saved_model").exists()


def test_should_stop_is_polled_before_every_batch(tmp_path, write_csv, text_rows, batches_run):
    from workers.ml import runners

    should_stop, calls = _stop_after(10**6)
    result = runners.train(_text_spec(tmp_path, write_csv, text_rows), should_stop=should_stop)
    assert calls["n"] == batches_run["n"] == 3 * 5
    assert result.epochs_completed == 3


def _image_spec(tmp_path, write_digits_zip):
    from saas.contract.spec import IMAGE, TrainSpec

    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return TrainSpec(
        task=IMAGE,
        dataset_path=str(write_digits_zip(tmp_path / "d.zip", per_class=6)),
        output_dir=str(out),
        base_model="cnn-small",
        hyperparameters={"epochs": 2, "batch_size": 8, "image_size": 16, "validation_split": 0.25},
    )


@pytest.mark.parametrize("kind", ["text", "image"])
def test_same_seed_gives_the_same_run(tmp_path, write_csv, text_rows, write_digits_zip, kind):
    from workers.ml import runners

    results = []
    for attempt in ("a", "b"):
        workdir = tmp_path / attempt
        workdir.mkdir()
        if kind == "text":
            spec = _text_spec(workdir, write_csv, text_rows)
        else:
            spec = _image_spec(workdir, write_digits_zip)
        results.append(runners.train(spec))
    first, second = results
    assert first.history == second.history
    assert first.metrics == second.metrics
    assert first.misclassified == second.misclassified


def test_unknown_task_is_a_platform_error(tmp_path):
    from saas.contract.spec import TrainSpec
    from workers.ml import runners

    spec = TrainSpec(
        task="audio", dataset_path="x", output_dir=str(tmp_path), base_model="x", hyperparameters={}
    )
    with pytest.raises(ValueError, match="audio"):
        runners.train(spec)
