"""The train/validation split, aware of duplicate examples. Pure NumPy: no TensorFlow, no ORM.

A dataset that repeats its rows (a CSV concatenated with itself, the same photo under two
names) would otherwise put copies of one example on both sides of the split, and validation
would measure memory, not generalisation: the sentiment CSV repeated 20 times scored 1.000
where 0.83 is real. So examples are grouped by a duplicate key (:func:`text_keys`: the text
with whitespace collapsed and case folded; :func:`bytes_keys`: the SHA-256 of the bytes) and
whole groups are assigned to one side, stratified by class: each class's groups are shuffled
with the seed and taken into validation until the class's share is reached, keeping every class
with at least two distinct examples on both sides. :func:`duplicate_summary` describes how much
of a dataset is duplicated, for the job's metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from saas.contract.spec import TrainingInputError

#: At or above this share of repeated examples, the metrics carry a note saying so.
DUPLICATE_NOTE_SHARE = 0.1


def text_keys(texts: Iterable[str]) -> list[str]:
    """Duplicate keys for texts: whitespace runs collapsed to one space, ends stripped, case
    folded (``"Great  Phone"`` and ``"great phone "`` are the same example)."""
    return [" ".join(text.split()).casefold() for text in texts]


def bytes_keys(blobs: Iterable[bytes]) -> list[str]:
    """Duplicate keys for binary examples (images): the hex SHA-256 of the exact bytes."""
    return [hashlib.sha256(blob).hexdigest() for blob in blobs]


def group_ids(keys: Sequence[str]) -> np.ndarray:
    """int64 ``[N]``: examples with equal keys share an id; ids number the distinct keys in
    order of first appearance (0, 1, …)."""
    index: dict[str, int] = {}
    return np.fromiter(
        (index.setdefault(key, len(index)) for key in keys), dtype=np.int64, count=len(keys)
    )


def duplicate_summary(groups: np.ndarray) -> dict[str, object]:
    """How duplicated a dataset is, from :func:`group_ids`.

    Returns ``{"share": float in [0, 1), "groups": int, "examples": int}``: ``share`` is the
    fraction of examples that repeat an earlier one (0.95 for a file repeated 20 times),
    ``groups`` the number of distinct examples that occur more than once, ``examples`` the
    number of examples in such groups. With ``share >= DUPLICATE_NOTE_SHARE`` a ``"note"``
    (one English sentence) is added for the API and dashboard to show beside the metrics.
    """
    n = len(groups)
    sizes = np.bincount(groups) if n else np.zeros(0, dtype=np.int64)
    repeated = sizes[sizes > 1]
    share = float((n - len(sizes)) / n) if n else 0.0
    summary: dict[str, object] = {
        "share": round(share, 4),
        "groups": int(len(repeated)),
        "examples": int(repeated.sum()),
    }
    if share >= DUPLICATE_NOTE_SHARE:
        summary["note"] = (
            f"{share:.0%} of the examples repeat another one (after normalising whitespace "
            f"and case for texts; identical bytes for images). Each set of duplicates was kept "
            f"on one side of the validation split, so these metrics are measured on examples "
            f"the model did not train on; only {len(sizes)} examples are distinct."
        )
    return summary


def grouped_stratified_split(
    y: np.ndarray,
    groups: np.ndarray,
    classes: Sequence[str],
    *,
    validation_split: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation split of example indices that never splits a group.

    Args:
        y: int label indices ``[N]``.
        groups: int group ids ``[N]`` (:func:`group_ids`); examples of one group always land on
            the same side. A group whose copies disagree on the label is stratified under its
            most common label (the smallest index on a tie).
        classes: label names, for error messages.
        validation_split: fraction of examples held out, in (0, 0.5].
        seed: seeds the order in which each class's groups are drawn (deterministic).

    Returns:
        ``(train_idx, val_idx)``: sorted int arrays partitioning ``range(N)``. Each class gets
        about ``validation_split`` of its examples in validation (whole groups, so not
        exactly), and at least one group on each side.

    Raises:
        TrainingInputError: a class has fewer than 2 examples, or fewer than 2 distinct ones
            (its duplicates cannot be on both sides), or the validation split is too small to
            hold one example of every class.
    """
    y = np.asarray(y, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    if y.shape != groups.shape:
        raise ValueError("y and groups must have the same length.")
    num_classes = len(classes)
    counts = np.bincount(y, minlength=num_classes)
    too_small = [classes[i] for i, n in enumerate(counts) if n < 2]
    if too_small:
        raise TrainingInputError(
            "Every class needs at least 2 examples (one for training, one for validation); "
            f"too few: {', '.join(too_small[:10])}."
        )
    if int(np.floor(validation_split * len(y))) < num_classes:
        raise TrainingInputError(
            f"Cannot split the data into training and validation sets: a validation split of "
            f"{validation_split:g} holds {int(np.floor(validation_split * len(y)))} of "
            f"{len(y)} examples, fewer than the {num_classes} classes."
        )

    # Each group's stratum: its most common label.
    _, dense = np.unique(groups, return_inverse=True)
    num_groups = int(dense.max()) + 1
    label_counts = np.zeros((num_groups, num_classes), dtype=np.int64)
    np.add.at(label_counts, (dense, y), 1)
    stratum = label_counts.argmax(axis=1)
    sizes = label_counts.sum(axis=1)

    single = [classes[c] for c in range(num_classes) if np.count_nonzero(stratum == c) < 2]
    if single:
        raise TrainingInputError(
            "Every class needs at least 2 distinct examples: copies of one example always go "
            "to the same side of the validation split, so a class whose examples are all the "
            f"same cannot be validated; too few distinct: {', '.join(single[:10])}."
        )

    rng = np.random.default_rng(seed)
    in_validation = np.zeros(num_groups, dtype=bool)
    for c in range(num_classes):
        members = np.flatnonzero(stratum == c)
        members = members[rng.permutation(len(members))]
        target = validation_split * sizes[members].sum()
        taken = 0
        for g in members[:-1]:  # the last one drawn always stays in training
            if taken + sizes[g] <= target:
                in_validation[g] = True
                taken += sizes[g]
        if taken == 0:  # every group was bigger than the class's share: take the smallest
            in_validation[members[np.argmin(sizes[members[:-1]])]] = True

    val_mask = in_validation[dense]
    train_idx, val_idx = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    if len(np.unique(y[train_idx])) != num_classes:
        raise TrainingInputError(
            "A class has no example left in the training split; add more examples."
        )
    return train_idx, val_idx


def annotate_duplicates(metrics: dict, groups: np.ndarray) -> None:
    """Add ``metrics["duplicates"]`` (:func:`duplicate_summary`) when any example repeats
    another, so the figures are read knowing it; nothing when every example is distinct."""
    summary = duplicate_summary(groups)
    if summary["groups"]:
        metrics["duplicates"] = summary
