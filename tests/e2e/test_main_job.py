"""The main job through real processes: gunicorn, the data plane (serve), Celery workers,
PostgreSQL, Redis, TensorFlow."""

from __future__ import annotations

import base64
import io
import signal
import tarfile
import time
import zipfile

import pytest

from saas.jobs.models import TrainingJob
from saas.metering.models import UsageEvent
from saas.registry.models import TrainedModel
from tests.conftest import DATA
from tests.e2e.conftest import ledger_predictions, wait_predictions

pytestmark = [pytest.mark.e2e, pytest.mark.tf]


def sentiment_sample(n_per_class: int = 40) -> bytes:
    lines = (DATA / "text/sentiment_labelled_sentences.csv").read_text().splitlines()
    pos = [line for line in lines[1:] if line.endswith(",positive")][:n_per_class]
    neg = [line for line in lines[1:] if line.endswith(",negative")][:n_per_class]
    return ("text,label\n" + "\n".join(pos + neg) + "\n").encode()


def digits_sample(per_class: int = 8, classes: int = 3) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(DATA / "images/digits_8x8.zip") as src, zipfile.ZipFile(buf, "w") as dst:
        for c in range(classes):
            names = sorted(
                n for n in src.namelist() if n.startswith(f"digits_8x8/{c}/") and n.endswith(".png")
            )
            for n in names[:per_class]:
                dst.writestr(n, src.read(n))
    return buf.getvalue()


def upload(api, data: bytes, task: str, name: str) -> dict:
    return api.json(
        "POST", "/v1/datasets", 201, files={"file": (name, data)}, data={"task": task, "name": name}
    )


def test_text_and_image_end_to_end(api):
    # 1. upload
    text_ds = upload(api, sentiment_sample(), "text-classification", "sentiment.csv")
    assert text_ds["classes"] == {"negative": 40, "positive": 40}

    # 2. train and watch it move
    job = api.json(
        "POST",
        "/v1/training-jobs",
        201,
        json={
            "dataset": text_ds["id"],
            "hyperparameters": {"epochs": 3, "batch_size": 16},
            "seed": 1,
        },
    )
    assert job["status"] == "queued" and job["wait_reason"] in ("capacity", "tenant_limit")
    done, seen = api.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    statuses = [s for s, _ in seen]
    assert statuses[-1] == "succeeded" and "queued" not in statuses[statuses.index("succeeded") :]
    assert done["progress"] == {"epoch": 3, "epochs": 3}
    events = api.json("GET", f"/v1/training-jobs/{job['id']}/events?limit=100")["data"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["data"]["epoch"] for e in epochs] == [1, 2, 3]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(e["data"]) for e in epochs)
    assert [e["type"] for e in events][:2] == ["created", "started"] and events[-1][
        "type"
    ] == "succeeded"

    # 3. metrics on the validation split (16 of 80 rows at the default split of 0.2)
    m = done["metrics"]
    assert set(m) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert sum(row["support"] for row in m["per_class"].values()) == 16
    assert m["confusion_matrix"]["labels"] == ["negative", "positive"]
    assert sum(map(sum, m["confusion_matrix"]["matrix"])) == 16

    # 8. usage on the job and in the ledger, written with the success
    usage = done["usage"]
    assert usage["device"] == "cpu" and usage["wall_seconds"] > 0 and usage["cpu_seconds"] > 0
    assert usage["examples_processed"] == 64 * 3
    meters = dict(
        UsageEvent.objects.for_tenant(api.org)
        .filter(source_id=job["id"])
        .values_list("meter", "quantity")
    )
    assert meters["training_examples"] == 192
    assert float(meters["training_compute_seconds"]) == pytest.approx(
        usage["wall_seconds"], abs=1e-3
    )

    # 4. predict
    model_id = done["model"]
    out = api.json(
        "POST",
        f"/v1/models/{model_id}/predict",
        json={"inputs": ["I loved it, great value", "awful, broke at once"]},
    )
    assert len(out["predictions"]) == 2
    for p in out["predictions"]:
        assert set(p["scores"]) == {"negative", "positive"}
        assert sum(p["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert (
            p["label"] == max(p["scores"], key=p["scores"].get)
            and p["score"] == p["scores"][p["label"]]
        )
    # Answered by serve through the public port; metered once the 1-s window is flushed.
    assert out["usage"]["predictions"] == 2
    assert wait_predictions(api.org, 2) == 2

    # 7. download and misclassified
    r = api.call("GET", f"/v1/models/{model_id}/download")
    assert r.headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        names = tar.getnames()
    assert "saved_model/saved_model.pb" in names and "saved_model/assets/labels.txt" in names
    wrong = api.json("GET", f"/v1/training-jobs/{job['id']}/misclassified")
    scores = [row["score"] for row in wrong["data"]]
    assert scores == sorted(scores, reverse=True)
    for row in wrong["data"]:
        assert row["true_label"] != row["predicted_label"] and isinstance(row["input"], str)

    # images: cnn-small and the TF Hub path (locally built module, fine-tuned)
    img_ds = upload(api, digits_sample(), "image-classification", "digits.zip")
    cnn = api.json(
        "POST",
        "/v1/training-jobs",
        201,
        json={"dataset": img_ds["id"], "base_model": "cnn-small", "hyperparameters": {"epochs": 2}},
    )
    hub = api.json(
        "POST",
        "/v1/training-jobs",
        201,
        json={
            "dataset": img_ds["id"],
            "base_model": "mobilenet_v2",
            "hyperparameters": {"epochs": 1, "fine_tune": True},
        },
    )
    for j in (cnn, hub):
        finished, _ = api.wait(j["id"])
        assert finished["status"] == "succeeded", finished["error"]
        assert finished["metrics"]["confusion_matrix"]["labels"] == ["0", "1", "2"]
        with zipfile.ZipFile(io.BytesIO(digits_sample())) as zf:
            png = zf.read(sorted(n for n in zf.namelist() if n.endswith(".png"))[0])
        out = api.json(
            "POST",
            f"/v1/models/{finished['model']}/predict",
            json={"inputs": [{"image_base64": base64.b64encode(png).decode()}]},
        )
        assert out["predictions"][0]["label"] in {"0", "1", "2"}
        # multipart files work too
        out = api.json(
            "POST", f"/v1/models/{finished['model']}/predict", files=[("files", ("a.png", png))]
        )
        assert len(out["predictions"]) == 1
    # 2 texts + 2 images per image model, each counted exactly once (a later flush adds none).
    assert wait_predictions(api.org, 6) == 6
    time.sleep(3)
    assert ledger_predictions(api.org) == 6


def test_cancel_running_job_stops_within_a_batch(api):
    ds = upload(api, sentiment_sample(60), "text-classification", "s.csv")
    job = api.json(
        "POST",
        "/v1/training-jobs",
        201,
        json={"dataset": ds["id"], "hyperparameters": {"epochs": 200, "batch_size": 4}},
    )
    api.wait(job["id"], statuses=("running",), predicate=lambda j: j["progress"]["epoch"] >= 1)
    cancelled_at = time.monotonic()
    r = api.json("POST", f"/v1/training-jobs/{job['id']}/cancel")
    assert r["cancel_requested"] is True
    done, _ = api.wait(job["id"], timeout=60)
    took = time.monotonic() - cancelled_at
    assert done["status"] == "cancelled"
    assert done["progress"]["epoch"] < 200
    assert (
        done["usage"]["billing_reason"] == "cancelled_by_user" and done["usage"]["wall_seconds"] > 0
    )
    assert took < 15, took
    assert TrainedModel.objects.for_tenant(api.org).count() == 0
    types = [
        e["type"]
        for e in api.json("GET", f"/v1/training-jobs/{job['id']}/events?limit=100")["data"]
    ]
    assert "cancel_requested" in types and types[-1] == "cancelled"


def test_worker_killed_mid_job_is_finished_by_a_new_worker_exactly_once(api, stack):
    ds = upload(api, sentiment_sample(60), "text-classification", "s.csv")
    job = api.json(
        "POST",
        "/v1/training-jobs",
        201,
        json={"dataset": ds["id"], "hyperparameters": {"epochs": 12, "batch_size": 4}},
    )
    api.wait(job["id"], statuses=("running",), predicate=lambda j: j["progress"]["epoch"] >= 1)
    stack.kill("worker-training", signal.SIGKILL)
    stack.start_worker("training", "training-cpu")  # the maintenance worker's beat reaps it
    done, seen = api.wait(job["id"], timeout=300)
    assert done["status"] == "succeeded", (done["error"], seen)
    assert done["attempt"] == 2
    assert TrainedModel.objects.for_tenant(api.org).count() == 1
    rows = list(
        UsageEvent.objects.for_tenant(api.org)
        .filter(source_id=job["id"])
        .values_list("meter", flat=True)
    )
    assert sorted(rows) == ["training_compute_seconds", "training_examples"]
    assert TrainingJob.objects.for_tenant(api.org).get(pk=job["id"]).status == "succeeded"
    events = [
        e["type"]
        for e in api.json("GET", f"/v1/training-jobs/{job['id']}/events?limit=100")["data"]
    ]
    assert events.count("started") == 2 and events.count("succeeded") == 1
