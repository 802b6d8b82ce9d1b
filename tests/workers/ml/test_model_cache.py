"""ModelCache: loading, predicting, LRU eviction by on-disk size."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.tf


def _export_tiny_model(path, *, n_floats: int, classes=("neg", "pos")) -> str:
    """A SavedModel like the runners' exports: longer inputs score higher for the last class."""
    import tensorflow as tf

    from workers.ml.runners.common import export_saved_model

    module = tf.Module()
    module.padding = tf.Variable(tf.zeros([n_floats]))  # sets the on-disk size

    def serve(inputs):
        length = tf.cast(tf.strings.length(inputs), tf.float32)[:, None] + tf.reduce_sum(
            module.padding
        )
        logits = tf.concat([tf.zeros_like(length), length / 4.0], axis=1)
        return tf.nn.softmax(logits)

    return export_saved_model(
        module=module, serve=serve, classes=list(classes), saved_model_dir=str(path)
    )


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    import shutil

    tmp = tmp_path_factory.mktemp("cache")
    first = _export_tiny_model(tmp / "a", n_floats=100_000)
    # Three versions of the same size, each in its own directory.
    return {
        "a": first,
        "b": shutil.copytree(first, tmp / "b"),
        "c": shutil.copytree(first, tmp / "c"),
    }


def test_predict_returns_label_score_and_all_scores(saved_models):
    from workers.ml.model_cache import ModelCache

    model = ModelCache(10**9).get(("m", 1), saved_models["a"])
    assert model.labels == ["neg", "pos"]
    short, long = model.predict(["", b"a rather long input text"])
    assert short["label"] == "neg" or short["scores"]["neg"] == pytest.approx(0.5)
    assert long == {
        "label": "pos",
        "score": pytest.approx(long["scores"]["pos"]),
        "scores": long["scores"],
    }
    assert sum(long["scores"].values()) == pytest.approx(1.0)
    assert model.predict([]) == []


def test_lru_evicts_least_recently_used_by_size(saved_models):
    from workers.ml.model_cache import ModelCache, directory_size

    size = directory_size(saved_models["a"])
    assert size > 400_000  # the 100k-float variable dominates
    cache = ModelCache(max_bytes=int(size * 2.5))  # room for two
    a = cache.get(("a", 1), saved_models["a"])
    cache.get(("b", 1), saved_models["b"])
    assert cache.get(("a", 1), saved_models["a"]) is a  # a hit, and a is now most recent
    cache.get(("c", 1), saved_models["c"])
    assert cache.keys() == [("a", 1), ("c", 1)]  # b was least recently used
    assert cache.total_bytes <= cache.max_bytes
    assert cache.get(("b", 1), saved_models["b"]) is not None
    assert cache.keys() == [("c", 1), ("b", 1)]


def test_a_model_larger_than_the_budget_is_served_but_not_kept(saved_models):
    from workers.ml.model_cache import ModelCache

    cache = ModelCache(max_bytes=1000)
    model = cache.get(("a", 1), saved_models["a"])
    assert model.predict(["x"])[0]["label"] in {"neg", "pos"}
    assert cache.keys() == []


def test_a_failed_load_caches_nothing(tmp_path):
    from workers.ml.model_cache import ModelCache

    cache = ModelCache(10**9)
    with pytest.raises(OSError):
        cache.get(("missing", 1), str(tmp_path / "nothing"))
    assert cache.keys() == []


def test_get_cache_is_lazy_and_configured_from_the_environment(monkeypatch):
    from workers.ml import model_cache

    monkeypatch.setattr(model_cache, "_cache", None)
    monkeypatch.setenv(model_cache.MAX_BYTES_ENV, "12345")
    cache = model_cache.get_cache()
    assert cache.max_bytes == 12345 and cache.keys() == []
    assert model_cache.get_cache() is cache
