"""The extracted-model folder (workers/ml/model_cache.py): a deleted model's files removed,
the folder bounded by bytes least recently used first, models in memory kept; and the
in-memory cache drops every version of a deleted model. Real files; no TensorFlow."""

from __future__ import annotations

import os
import time

import pytest

from workers.ml import model_cache
from workers.ml.model_cache import (
    ModelCache,
    disk_cache_prune,
    disk_cache_remove,
    disk_cache_touch,
)


def _extracted(root, model_id: str, size: int, age: float) -> None:
    path = root / model_id / "v1" / "saved_model"
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"x" * size)
    then = time.time() - age
    os.utime(root / model_id, (then, then))


def test_remove_drops_every_version_and_rejects_paths(tmp_path):
    _extracted(tmp_path, "mdl_a", 10, 0)
    (tmp_path / "mdl_a" / "v2").mkdir()
    _extracted(tmp_path, "mdl_b", 10, 0)
    assert disk_cache_remove(tmp_path, "mdl_a") is True
    assert not (tmp_path / "mdl_a").exists() and (tmp_path / "mdl_b").exists()
    assert disk_cache_remove(tmp_path, "mdl_a") is False
    for bad in ("../mdl_b", "mdl_b/v1", "", ".", ".."):
        with pytest.raises(ValueError):
            disk_cache_remove(tmp_path, bad)
    assert (tmp_path / "mdl_b").exists()


def test_prune_removes_least_recently_used_until_under_budget(tmp_path):
    _extracted(tmp_path, "mdl_old", 400, 300)
    _extracted(tmp_path, "mdl_mid", 400, 200)
    _extracted(tmp_path, "mdl_new", 400, 100)
    (tmp_path / ".extract-tmp").mkdir()  # an extraction in progress is never touched
    disk_cache_touch(tmp_path, "mdl_old")  # just used: now the most recent
    assert disk_cache_prune(tmp_path, 900) == ["mdl_mid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".extract-tmp", "mdl_new", "mdl_old"]
    assert disk_cache_prune(tmp_path, 900) == []  # 800 bytes: within budget


def test_prune_keeps_models_in_use_even_over_budget(tmp_path):
    _extracted(tmp_path, "mdl_a", 500, 300)
    _extracted(tmp_path, "mdl_b", 500, 200)
    assert disk_cache_prune(tmp_path, 100, keep={"mdl_a", "mdl_b"}) == []
    assert disk_cache_prune(tmp_path, 100, keep={"mdl_a"}) == ["mdl_b"]
    assert disk_cache_prune(tmp_path / "missing", 0) == []


def test_disk_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(model_cache.DISK_MAX_BYTES_ENV, "12345")
    assert model_cache.disk_max_bytes() == 12345
    monkeypatch.delenv(model_cache.DISK_MAX_BYTES_ENV)
    assert model_cache.disk_max_bytes() == model_cache.DEFAULT_DISK_MAX_BYTES


def test_memory_cache_evicts_every_version_of_a_model():
    cache = ModelCache(10)
    # The entries a get() would make, without loading TensorFlow.
    cache._models.update({("mdl_a", 1): object(), ("mdl_a", 2): object(), ("mdl_b", 1): object()})
    assert cache.evict_model("mdl_a") == 2
    assert cache.keys() == [("mdl_b", 1)]
    assert cache.evict_model("mdl_a") == 0
