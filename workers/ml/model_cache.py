"""Loaded SavedModels kept warm for inference, bounded by (approximate) memory.

Memory is approximated by the SavedModel directory's size on disk (``saved_model.pb``,
variables, assets). For our models that is what dominates the loaded footprint: the variables
are restored into memory at full size and the graph is of the same order as its
serialisation. TensorFlow runtime overhead (kernels, thread pools) is shared by all models and
not counted, so set ``max_bytes`` with some headroom below the worker's memory limit.

Extracted SavedModels on disk (what the data plane loads from; ``serve.runtime``) are a cache
too: :func:`disk_cache_remove` drops a deleted model's files and :func:`disk_cache_prune` keeps
the folder under ``TRAINYARD_MODEL_CACHE_DISK_BYTES`` (default 10 GiB), least recently used
first; the next request for a pruned model extracts it again from artifact storage.

The cache lives per process. ``get_cache()`` creates it on first use, which in a Celery
prefork worker is inside the child after the fork; a child forked from a process that already
had a cache starts without one (``os.register_at_fork``), because TensorFlow state does not
survive ``fork()``. Nothing is loaded at import time.
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split

import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 2 * 1024**3
MAX_BYTES_ENV = "TRAINYARD_MODEL_CACHE_BYTES"
LABELS_PATH = os.path.join("assets", "labels.txt")
DEFAULT_DISK_MAX_BYTES = 10 * 1024**3
DISK_MAX_BYTES_ENV = "TRAINYARD_MODEL_CACHE_DISK_BYTES"
PREDICT_CHUNK = 256


def directory_size(path: str) -> int:
    """Total size in bytes of the regular files under ``path`` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


@dataclass
class LoadedModel:
    """A SavedModel loaded for inference.

    Attributes:
        path: the SavedModel directory it was loaded from.
        labels: class names in output order (from ``assets/labels.txt``).
        size_bytes: on-disk size of ``path``, the cache's memory proxy.
    """

    path: str
    labels: list[str]
    size_bytes: int
    _module: Any = field(repr=False)
    _serve: Any = field(repr=False)

    @classmethod
    def load(cls, path: str) -> LoadedModel:
        """Load a SavedModel exported by ``workers.ml.runners``.

        Raises:
            OSError: ``path`` or its ``assets/labels.txt`` cannot be read.
            ValueError: no ``serving_default`` signature, or its output width differs from the
                number of labels.
        """
        import tensorflow as tf

        with open(os.path.join(path, LABELS_PATH), encoding="utf-8") as fh:
            labels = [line.rstrip("\n") for line in fh if line.rstrip("\n")]
        module = tf.saved_model.load(path)
        serve = module.signatures.get("serving_default")
        if serve is None:
            raise ValueError(f"{path} has no serving_default signature.")
        width = serve.structured_outputs["scores"].shape[-1]
        if width is not None and width != len(labels):
            raise ValueError(f"{path} predicts {width} classes but labels.txt lists {len(labels)}.")
        return cls(
            path=path, labels=labels, size_bytes=directory_size(path), _module=module, _serve=serve
        )

    def scores(self, inputs: Sequence[bytes]) -> Any:
        """Class probabilities for one batch of raw inputs, in one ``serving_default`` call.

        Args:
            inputs: UTF-8 text or encoded image bytes, as the model was trained on.

        Returns:
            A float32 numpy array of shape ``(len(inputs), len(self.labels))``.

        Raises:
            tensorflow.errors.InvalidArgumentError: an image cannot be decoded.
        """
        import tensorflow as tf

        batch = tf.constant(list(inputs), dtype=tf.string)
        return self._serve(inputs=batch)["scores"].numpy()

    def format(self, rows: Any) -> list[dict[str, Any]]:
        """``{"label", "score", "scores": {label: p}}`` per row of :meth:`scores`' output."""
        labels = self.labels
        out = []
        for row in rows.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append(
                {
                    "label": labels[best],
                    "score": row[best],
                    "scores": dict(zip(labels, row, strict=True)),
                }
            )
        return out

    def predict(self, inputs: Sequence[bytes | str]) -> list[dict[str, Any]]:
        """Class probabilities for raw inputs.

        Args:
            inputs: texts (``str``, encoded as UTF-8) or encoded image bytes, as the model
                was trained on. Sent through ``serving_default`` in chunks of
                :data:`PREDICT_CHUNK`.

        Returns:
            One dict per input, in order: ``{"label": best label, "score": its probability,
            "scores": {label: probability}}`` (probabilities as floats summing to ~1).

        Raises:
            tensorflow.errors.InvalidArgumentError: an image cannot be decoded.
        """
        raw = [item.encode("utf-8") if isinstance(item, str) else bytes(item) for item in inputs]
        results: list[dict[str, Any]] = []
        for start in range(0, len(raw), PREDICT_CHUNK):
            results.extend(self.format(self.scores(raw[start : start + PREDICT_CHUNK])))
        return results


class ModelCache:
    """A thread-safe LRU of :class:`LoadedModel`, bounded by total on-disk SavedModel size.

    Args:
        max_bytes: budget for the sum of cached models' ``size_bytes``. A model larger than
            the whole budget is loaded and returned but not kept.
    """

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative.")
        self.max_bytes = max_bytes
        self._models: OrderedDict[Hashable, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        """Sum of the cached models' ``size_bytes``."""
        return sum(m.size_bytes for m in self._models.values())

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._models)

    def get(self, key: Hashable, loader_path: str) -> LoadedModel:
        """The model for ``key`` (e.g. ``(model_id, version)``), loading it on a miss.

        Args:
            key: identifies an immutable model version; a key is assumed to always map to
                the same SavedModel.
            loader_path: local SavedModel directory, read only on a miss.

        Returns:
            The loaded model, now the most recently used. Least recently used models are
            evicted until the cache fits ``max_bytes``.

        Raises:
            OSError, ValueError: from :meth:`LoadedModel.load`; nothing is cached then.
        """
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            # Loading under the lock: one load at a time per process, and no duplicate loads
            # of the same model by concurrent threads.
            model = LoadedModel.load(loader_path)
            if model.size_bytes > self.max_bytes:
                return model
            while self._models and self.total_bytes + model.size_bytes > self.max_bytes:
                self._models.popitem(last=False)
            self._models[key] = model
            return model

    def evict(self, key: Hashable) -> bool:
        """Drop ``key`` if cached; returns whether it was."""
        with self._lock:
            return self._models.pop(key, None) is not None

    def evict_model(self, model_id: str) -> int:
        """Drop every cached version of ``model_id`` (keys ``model_id`` or ``(model_id, …)``),
        e.g. once it is deleted; returns how many entries were dropped."""
        with self._lock:
            doomed = [
                k
                for k in self._models
                if k == model_id or (isinstance(k, tuple) and k and k[0] == model_id)
            ]
            for k in doomed:
                del self._models[k]
            return len(doomed)

    def clear(self) -> None:
        """Drop every cached model."""
        with self._lock:
            self._models.clear()


_cache: ModelCache | None = None
_cache_lock = threading.Lock()


def _forget_cache_after_fork() -> None:
    # TensorFlow state does not survive fork(): a child must load its own models.
    global _cache, _cache_lock
    _cache = None
    _cache_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_cache_after_fork)


def get_cache() -> ModelCache:
    """This process's :class:`ModelCache`, created on first call.

    Its budget is the ``TRAINYARD_MODEL_CACHE_BYTES`` environment variable (bytes), default
    2 GiB. Nothing is loaded until :meth:`ModelCache.get` is called; a forked child starts
    with no cache.
    """
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = ModelCache(int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)))
        return _cache


def disk_max_bytes() -> int:
    """The extracted-model folder's budget in bytes: ``TRAINYARD_MODEL_CACHE_DISK_BYTES``,
    default :data:`DEFAULT_DISK_MAX_BYTES` (10 GiB)."""
    return int(os.environ.get(DISK_MAX_BYTES_ENV, DEFAULT_DISK_MAX_BYTES))


def _model_dir(root: Path, model_id: str) -> Path:
    # Model ids are ours (``mdl_…``), but a name with a separator must never reach rmtree.
    if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
        raise ValueError(f"Not a model id: {model_id!r}")
    return Path(root) / model_id


def disk_cache_touch(root: Path, model_id: str) -> None:
    """Mark ``root/model_id`` as just used (its modification time), for
    :func:`disk_cache_prune`'s least-recently-used order."""
    path = _model_dir(root, model_id)
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


def disk_cache_remove(root: Path, model_id: str) -> bool:
    """Remove every extracted version of ``model_id`` under ``root`` (``root/<model id>/…``);
    returns whether there was anything. Raises ValueError for a name that is not a plain
    folder name."""
    path = _model_dir(root, model_id)
    if not path.exists():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def disk_cache_prune(root: Path, max_bytes: int, keep: Collection[str] = ()) -> list[str]:
    """Remove extracted models under ``root`` (one folder per model id), least recently used
    first (folder modification time, see :func:`disk_cache_touch`), until the folder holds at
    most ``max_bytes`` (bytes of regular files). Models named in ``keep`` (in memory, or being
    loaded) are never removed, so the total can stay above ``max_bytes`` when they alone
    exceed it. Returns the removed model ids, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    entries = []
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
            try:
                entries.append((child.stat().st_mtime, child.name, directory_size(str(child))))
            except FileNotFoundError:  # removed meanwhile
                continue
    total = sum(size for _, _, size in entries)
    removed: list[str] = []
    for _mtime, name, size in sorted(entries):
        if total <= max_bytes:
            break
        if name in keep:
            continue
        shutil.rmtree(root / name, ignore_errors=True)
        total -= size
        removed.append(name)
    return removed
