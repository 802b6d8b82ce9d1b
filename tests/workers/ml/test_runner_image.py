"""The image runner: archive reading, preprocessing, cnn-small training and serving."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def _spec(dataset_path, output_dir, **overrides):
    from saas.contract.spec import IMAGE, TrainSpec

    fields = dict(
        task=IMAGE,
        dataset_path=str(dataset_path),
        output_dir=str(output_dir),
        base_model="cnn-small",
        hyperparameters={"epochs": 2, "batch_size": 8, "image_size": 16, "validation_split": 0.25},
        seed=0,
    )
    fields.update(overrides)
    return TrainSpec(**fields)


@pytest.mark.parametrize("top", ["digits", None])
def test_read_zip_skips_junk_and_an_optional_top_folder(tmp_path, write_digits_zip, top):
    from workers.ml.runners.image import read_zip

    path = write_digits_zip(tmp_path / "d.zip", per_class=3, top=top)
    members, images, labels = read_zip(str(path))
    assert len(members) == len(images) == 9
    assert sorted(set(labels)) == ["0", "1", "7"]
    prefix = f"{top}/" if top else ""
    assert all(m.startswith(prefix) and m.endswith(".png") for m in members)
    assert all(m.split("/")[-2] == label for m, label in zip(members, labels, strict=True))
    assert all(image.startswith(b"\x89PNG") for image in images)


def test_read_zip_rejects_images_outside_class_folders(tmp_path):
    from saas.contract.spec import TrainingInputError
    from workers.ml.runners.image import read_zip

    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as zf:
        zf.writestr("a/x.png", b"x")
        zf.writestr("loose.png", b"x")
    with pytest.raises(TrainingInputError, match="loose.png"):
        read_zip(str(tmp_path / "flat.zip"))


def test_preprocess_gives_the_same_pixels_for_png_and_jpeg(digit_pngs, png_to_jpeg):
    import tensorflow as tf

    from workers.ml.runners.image import preprocess_image

    png = digit_pngs["7"][0][1]
    a = preprocess_image(tf.constant(png), 24).numpy()
    b = preprocess_image(tf.constant(png_to_jpeg(png)), 24).numpy()
    assert a.shape == b.shape == (24, 24, 3) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.5
    assert np.abs(a - b).mean() < 0.05  # JPEG is lossy, but it is the same digit


def test_cnn_small_trains_and_serves_png_and_jpeg(
    tmp_path, write_digits_zip, digit_pngs, png_to_jpeg
):
    import tensorflow as tf

    from workers.ml import runners

    path = write_digits_zip(tmp_path / "d.zip")
    out = tmp_path / "out"
    out.mkdir()
    result = runners.train(_spec(path, out))
    assert result.classes == ["0", "1", "7"]
    assert (result.num_train, result.num_validation) == (18, 6)
    assert result.epochs_completed == 2 and len(result.history) == 2
    assert all(m["input"].startswith("digits/") for m in result.misclassified)

    serve = tf.saved_model.load(result.saved_model_dir).signatures["serving_default"]
    png = digit_pngs["1"][0][1]
    scores = serve(inputs=tf.constant([png, png_to_jpeg(png)]))["scores"].numpy()
    assert scores.shape == (2, 3) and scores.dtype == np.float32
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    with open(f"{result.saved_model_dir}/assets/labels.txt", encoding="utf-8") as fh:
        assert fh.read().splitlines() == ["0", "1", "7"]


def test_undecodable_image_is_a_training_input_error(tmp_path, write_digits_zip):
    from saas.contract.spec import TrainingInputError
    from workers.ml.runners import image

    path = write_digits_zip(tmp_path / "d.zip", per_class=3)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("digits/7/broken.png", b"\x89PNG not really")
    with pytest.raises(TrainingInputError, match="broken.png"):
        image.train(_spec(path, tmp_path))
    assert not (tmp_path / "saved_model").exists()


def test_hub_base_model_without_handle_is_a_platform_error(tmp_path, write_digits_zip):
    from workers.ml.runners import image

    path = write_digits_zip(tmp_path / "d.zip", per_class=3)
    with pytest.raises(ValueError, match="handle"):
        image.train(_spec(path, tmp_path, base_model="mobilenet_v2"))
