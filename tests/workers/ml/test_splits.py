"""The duplicate-aware split: copies never straddle it, classes stay on both sides, and the
job's metrics say how duplicated the data was (workers/ml/splits.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.contract.spec import TrainingInputError
from workers.ml import splits

SENTIMENT = Path("/work/shared/data/text/sentiment_labelled_sentences.csv")


@st.composite
def grouped_labels(draw):
    """``(y, groups, num_classes)``: 2–4 classes, each with 2–12 distinct groups of 1–6 copies;
    some groups mix labels (a copy relabelled)."""
    num_classes = draw(st.integers(2, 4))
    y, groups = [], []
    gid = 0
    for c in range(num_classes):
        for _ in range(draw(st.integers(2, 12))):
            size = draw(st.integers(1, 6))
            labels = [c] * size
            if size > 1 and draw(st.booleans()):
                labels[-1] = draw(st.integers(0, num_classes - 1))
            y += labels
            groups += [gid] * size
            gid += 1
    order = draw(st.permutations(range(len(y))))
    return np.array(y)[order], np.array(groups)[order], num_classes


@settings(max_examples=200, deadline=None)
@given(data=grouped_labels(), split=st.sampled_from([0.1, 0.2, 0.25, 0.5]), seed=st.integers(0, 9))
def test_groups_never_straddle_and_every_class_is_on_both_sides(data, split, seed):
    y, groups, k = data
    classes = [f"c{i}" for i in range(k)]
    try:
        train, val = splits.grouped_stratified_split(
            y, groups, classes, validation_split=split, seed=seed
        )
    except TrainingInputError as exc:
        # Only for the documented reasons: a split too small for one example a class, or a
        # class that is the (first) most common label of fewer than two groups.
        majority = [
            min(
                np.flatnonzero(
                    np.bincount(y[groups == g], minlength=k)
                    == np.bincount(y[groups == g], minlength=k).max()
                )
            )
            for g in np.unique(groups)
        ]
        too_few = any(majority.count(c) < 2 for c in range(k))
        assert int(np.floor(split * len(y))) < k or (too_few and "distinct" in str(exc))
        return
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(y)))
    assert not set(groups[train].tolist()) & set(groups[val].tolist())
    # Every class is some group's majority label with >= 2 such groups: on both sides.
    for c in range(k):
        assert c in set(y[train].tolist())
        assert c in set(y[val].tolist())
    again = splits.grouped_stratified_split(y, groups, classes, validation_split=split, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again, strict=True))


def test_distinct_examples_split_like_a_stratified_split():
    y = np.array([0, 1] * 24)
    train, val = splits.grouped_stratified_split(
        y, np.arange(48), ["a", "b"], validation_split=0.25, seed=0
    )
    assert len(val) == 12 and np.bincount(y[val]).tolist() == [6, 6]
    assert len(train) == 36


def test_a_repeated_dataset_keeps_its_share_per_class():
    y = np.tile(np.array([0] * 30 + [1] * 10), 20)
    groups = np.tile(np.arange(40), 20)
    train, val = splits.grouped_stratified_split(
        y, groups, ["a", "b"], validation_split=0.2, seed=3
    )
    assert np.bincount(y[val]).tolist() == [120, 40]  # 6 and 2 distinct examples, 20 copies
    assert not set(groups[train].tolist()) & set(groups[val].tolist())


@pytest.mark.parametrize(
    ("y", "groups", "split", "message"),
    [
        ([0, 0, 1], [0, 1, 2], 0.5, "at least 2 examples"),
        ([0, 0, 1, 1], [0, 1, 2, 2], 0.5, "2 distinct examples: .*too few distinct: b"),
        ([0, 1, 2, 0, 1, 2], [0, 1, 2, 3, 4, 5], 0.25, "fewer than the 3 classes"),
    ],
)
def test_unsplittable_data_is_a_training_input_error(y, groups, split, message):
    with pytest.raises(TrainingInputError, match=message):
        splits.grouped_stratified_split(
            np.array(y),
            np.array(groups),
            ["a", "b", "c"][: max(y) + 1],
            validation_split=split,
            seed=0,
        )


def test_keys_normalise_whitespace_and_case_for_text_and_nothing_for_bytes():
    keys = splits.text_keys(["Great  phone", " great PHONE\t", "great phones"])
    assert keys[0] == keys[1] != keys[2]
    assert splits.group_ids(keys).tolist() == [0, 0, 1]
    b = splits.bytes_keys([b"\x89PNG1", b"\x89PNG1", b"\x89PNG2"])
    assert b[0] == b[1] != b[2]


def test_duplicate_summary_and_its_note():
    groups = np.tile(np.arange(10), 20)  # 200 examples, 10 distinct
    summary = splits.duplicate_summary(groups)
    assert summary["share"] == 0.95 and summary["groups"] == 10 and summary["examples"] == 200
    assert "95%" in summary["note"] and "10 examples are distinct" in summary["note"]
    few = splits.duplicate_summary(np.array([0, 0, *range(1, 40)]))  # one copy in 41
    assert few["groups"] == 1 and few["share"] == round(1 / 41, 4) and "note" not in few
    metrics: dict = {}
    splits.annotate_duplicates(metrics, np.arange(5))
    assert metrics == {}


def _sentiment_slice(n: int) -> list[tuple[str, str]]:
    with open(SENTIMENT, encoding="utf-8-sig", newline="") as fh:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
    rng = np.random.default_rng(0)
    return [rows[i] for i in sorted(rng.choice(len(rows), n, replace=False))]


@pytest.mark.tf
@pytest.mark.skipif(not SENTIMENT.exists(), reason="needs /work/shared/data/text")
def test_sentiment_repeated_20_times_reports_the_real_accuracy(tmp_path, write_csv):
    """The issue's case on a slice: 400 sentiment rows alone and repeated 20 times (8,000 rows)
    give about the same validation accuracy (with copies on both sides of the split the
    repeated file scored 1.000). Both runs see each distinct example equally often (40 epochs
    of the slice, 2 of the repeated file), and both validate on the same distinct texts: the
    groups are drawn in the same order, each 20 times as large."""
    from saas.contract.spec import TEXT, TrainSpec
    from workers.ml import runners

    rows = _sentiment_slice(400)
    accuracy = {}
    results = {}
    for name, data in (("once", rows), ("twenty", rows * 20)):
        out = tmp_path / name
        out.mkdir()
        spec = TrainSpec(
            task=TEXT,
            dataset_path=str(write_csv(tmp_path / f"{name}.csv", data)),
            output_dir=str(out),
            base_model="text-embedding-bag",
            hyperparameters={"epochs": 40 if name == "once" else 2, "validation_split": 0.25},
            seed=0,
        )
        results[name] = runners.train(spec)
        accuracy[name] = results[name].metrics["accuracy"]
    assert accuracy["twenty"] < 0.95, accuracy
    assert abs(accuracy["twenty"] - accuracy["once"]) < 0.1, accuracy
    assert results["twenty"].num_validation % 20 == 0  # whole groups of 20 copies
    duplicates = results["twenty"].metrics["duplicates"]
    assert duplicates["share"] >= 0.94 and "note" in duplicates
    assert (
        "duplicates" not in results["once"].metrics
        or results["once"].metrics["duplicates"]["share"] < 0.05
    )


@pytest.mark.tf
def test_images_with_the_same_bytes_stay_on_one_side(tmp_path, digit_pngs):
    """Each digit PNG stored three times under other names: the image runner groups them by
    bytes, so no validation image's bytes are in training, and the metrics say 2/3 repeat."""
    import zipfile

    from saas.contract.spec import IMAGE, TrainSpec
    from workers.ml import runners
    from workers.ml.runners.image import read_zip

    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for label, files in digit_pngs.items():
            for name, data in files:
                for copy in range(3):
                    zf.writestr(f"{label}/{copy}-{name}", data)
    out = tmp_path / "out"
    out.mkdir()
    spec = TrainSpec(
        task=IMAGE,
        dataset_path=str(path),
        output_dir=str(out),
        base_model="cnn-small",
        hyperparameters={"epochs": 1, "batch_size": 8, "image_size": 16, "validation_split": 0.25},
        seed=0,
    )
    result = runners.train(spec)
    duplicates = result.metrics["duplicates"]
    assert duplicates.pop("note").startswith("67% of the examples repeat another one")
    assert duplicates == {"share": round(48 / 72, 4), "groups": 24, "examples": 72}
    members, images, _ = read_zip(str(path))
    by_member = dict(zip(members, images, strict=True))
    val_bytes = {by_member[m["input"]] for m in result.misclassified}
    assert result.num_validation % 3 == 0  # whole groups of three copies
    # The same split, recomputed as the runner does: no bytes on both sides.
    from workers.ml.runners.common import encode_labels

    _, y = encode_labels([m.split("/")[0] for m in members])
    groups = splits.group_ids(splits.bytes_keys(images))
    train, val = splits.grouped_stratified_split(
        y, groups, ["0", "1", "7"], validation_split=0.25, seed=0
    )
    train_bytes = {images[i] for i in train}
    assert not train_bytes & {images[i] for i in val}
    assert len(val) == result.num_validation
    assert not val_bytes & train_bytes
