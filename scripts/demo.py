"""`make demo`: Trainyard's main job end to end, on real data, over real HTTP.

Starts the web server, the data plane and two workers (training, maintenance with Celery beat), creates a demo tenant and API key
with the management commands, uploads the shipped sentiment CSV and digits ZIP, trains a text
model, a cnn-small image model and one TF Hub image model (on a locally built MobileNetV2
module), prints the metrics, predicts inputs that were not in training, and prints the usage
recorded. Exits 1 if an accuracy target is missed.

Uses ``DATABASE_URL`` when set, otherwise SQLite in var/; ``REDIS_URL`` when set, otherwise the
local Redis (redis://127.0.0.1:6379/0), which the data plane needs for admission and metering.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saas.celery import Queue  # noqa: E402
from scripts.stack import Stack, redis_url_or_exit  # noqa: E402

VAR = ROOT / "var"
TARGETS = {"text": 0.78, "cnn-small": 0.90}
NEW_SENTENCES = [
    "The battery died after two days and support never answered.",
    "Absolutely wonderful, I would buy it again tomorrow.",
    "The plot was dull and the acting was wooden.",
    "Friendly staff and the food was delicious.",
]


def log(msg: str = "") -> None:
    print(msg, flush=True)


class Client:
    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"

    def __call__(self, method: str, path: str, expect: int = 200, **kw):
        r = self.s.request(method, self.base + path, timeout=120, **kw)
        if r.status_code != expect:
            raise SystemExit(f"{method} {path} -> {r.status_code}: {r.text[:2000]}")
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else r


def held_out_digits(n: int = 6) -> list[tuple[str, bytes]]:
    """Digits from scikit-learn's copy of the UCI set that are NOT among the shipped 500."""
    import zipfile

    from PIL import Image
    from sklearn.datasets import load_digits

    with zipfile.ZipFile(ROOT / "data/images/digits_8x8.zip") as zf:
        used = {int(Path(n).stem.split("_")[1]) for n in zf.namelist() if n.endswith(".png")}
    digits = load_digits()
    out = []
    for idx in range(len(digits.target) - 1, -1, -1):
        if idx in used:
            continue
        pixels = (digits.images[idx] * 255 / 16).round().astype("uint8")
        buf = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buf, format="PNG")
        out.append((str(digits.target[idx]), buf.getvalue()))
        if len(out) == n:
            break
    return out


def wait_job(api: Client, job_id: str, label: str) -> dict:
    last = None
    while True:
        job = api("GET", f"/v1/training-jobs/{job_id}")
        state = (job["status"], job["progress"]["epoch"], job["queue_position"])
        if state != last:
            extra = (
                f" (queue position {job['queue_position']}, waiting for {job['wait_reason']})"
                if job["status"] == "queued"
                else ""
            )
            log(
                f"  {label}: {job['status']} epoch {job['progress']['epoch']}/{job['progress']['epochs']}{extra}"
            )
            last = state
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1)


def print_metrics(label: str, job: dict) -> None:
    m = job["metrics"]
    log(
        f"\n{label}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}, "
        f"trained in {job['usage']['wall_seconds']:.1f} s wall / {job['usage']['cpu_seconds']:.1f} s CPU, "
        f"charge ${job['usage']['charge']} ({job['usage']['billing_reason']})"
    )
    log(f"  {'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for cls, row in m["per_class"].items():
        log(
            f"  {cls:<10} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} {row['support']:>7}"
        )


def main() -> int:
    t0 = time.monotonic()
    VAR.mkdir(exist_ok=True)
    hub_dir = VAR / "hub" / "mobilenet_v2"
    env = {
        "TRAINYARD_HUB_HANDLES": json.dumps({"mobilenet_v2": str(hub_dir)}),
        "REDIS_URL": redis_url_or_exit(),
    }
    run_dir = VAR / "demo" / time.strftime("%Y%m%d-%H%M%S")
    with Stack(env=env, log_dir=run_dir) as stack:
        if not (hub_dir / "saved_model.pb").exists():
            log(
                f"Building a local MobileNetV2 feature-vector module at {hub_dir} (no downloads here) …"
            )
            stack.manage("build_hub_module", str(hub_dir))
        slug = "demo-" + time.strftime("%H%M%S")
        stack.manage(
            "create_tenant", slug, "--name", "Demo Inc.", "--owner-email", "owner@demo.test"
        )
        key = stack.manage("create_api_key", slug, "--name", "demo")
        stack.start_web()
        stack.start_serve()
        stack.start_worker("training", Queue.TRAINING_CPU)
        stack.start_worker("maintenance", Queue.MAINTENANCE, beat=True)
        stack.wait_web()
        log(
            f"Trainyard on {stack.base_url} (data plane; the rest proxied to the web tier); "
            f"logs in {run_dir}; tenant '{slug}', key {key[:20]}…"
        )
        api = Client(stack.base_url, key)

        log("\n1. Upload datasets")
        with open(ROOT / "data/text/sentiment_labelled_sentences.csv", "rb") as fh:
            text_ds = api(
                "POST",
                "/v1/datasets",
                201,
                files={"file": fh},
                data={"task": "text-classification", "name": "sentiment sentences"},
            )
        log(
            f"  {text_ds['id']}: {text_ds['num_examples']} sentences {text_ds['classes']}; warnings: {text_ds['report']['warnings']}"
        )
        with open(ROOT / "data/images/digits_8x8.zip", "rb") as fh:
            img_ds = api(
                "POST",
                "/v1/datasets",
                201,
                files={"file": fh},
                data={"task": "image-classification", "name": "handwritten digits"},
            )
        log(
            f"  {img_ds['id']}: {img_ds['num_examples']} images, sizes {img_ds['report']['image_sizes']}"
        )

        log("\n2. Train (text, cnn-small, TF Hub mobilenet_v2)")
        jobs = {
            "text": api("POST", "/v1/training-jobs", 201, json={"dataset": text_ds["id"]}),
            "cnn-small": api(
                "POST",
                "/v1/training-jobs",
                201,
                json={"dataset": img_ds["id"], "base_model": "cnn-small"},
            ),
            "hub": api(
                "POST",
                "/v1/training-jobs",
                201,
                json={
                    "dataset": img_ds["id"],
                    "base_model": "mobilenet_v2",
                    "hyperparameters": {"epochs": 5, "learning_rate": 0.01, "fine_tune": False},
                },
            ),
        }
        done = {name: wait_job(api, j["id"], name) for name, j in jobs.items()}
        failed = [n for n, j in done.items() if j["status"] != "succeeded"]
        if failed:
            for n in failed:
                log(f"  {n} ended {done[n]['status']}: {done[n]['error']}")
            return 1

        log("\n3. Metrics on the held-out validation split")
        for name, job in done.items():
            print_metrics(name, job)
        events = api("GET", f"/v1/training-jobs/{done['text']['id']}/events")["data"]
        log(
            f"\n  text job timeline: {len(events)} events, epochs: "
            + ", ".join(
                f"{e['data']['epoch']}:acc={e['data'].get('accuracy', 0):.2f}"
                for e in events
                if e["type"] == "epoch"
            )
        )
        wrong = api("GET", f"/v1/training-jobs/{done['text']['id']}/misclassified?limit=3")
        log(f"  most confident text mistakes ({wrong['total']} in all):")
        for row in wrong["data"]:
            log(
                f"    {row['score']:.2f} said {row['predicted_label']}, was {row['true_label']}: {row['input'][:70]!r}"
            )

        log("\n4. Predict inputs that were not in training")
        text_model = done["text"]["model"]
        out = api("POST", f"/v1/models/{text_model}/predict", json={"inputs": NEW_SENTENCES})
        log(
            f"  (data plane: {out['usage']['inference_ms']:.1f} ms in the model, "
            f"cold_start={out['usage']['cold_start']})"
        )
        for sentence, p in zip(NEW_SENTENCES, out["predictions"], strict=True):
            log(f"  {p['label']:<8} {p['score']:.2f}  {sentence}")
        digits = held_out_digits()
        out = api(
            "POST",
            f"/v1/models/{done['cnn-small']['model']}/predict",
            json={"inputs": [{"image_base64": base64.b64encode(b).decode()} for _, b in digits]},
        )
        right = sum(p["label"] == t for (t, _), p in zip(digits, out["predictions"], strict=True))
        log(
            "  digits: "
            + ", ".join(
                f"{t}->{p['label']} ({p['score']:.2f})"
                for (t, _), p in zip(digits, out["predictions"], strict=True)
            )
            + f"  [{right}/{len(digits)} right]"
        )
        blob = api("GET", f"/v1/models/{text_model}/download")
        log(f"  downloaded the text SavedModel: {len(blob.content)} bytes (.tar.gz)")

        log("\n5. Usage recorded")
        # The data plane meters per one-second window and flushes to the ledger within ~3 s.
        expected = len(NEW_SENTENCES) + len(digits)
        for _ in range(50):
            usage = api("GET", "/v1/usage")["data"]
            counted = sum(float(r["quantity"]) for r in usage if r["meter"] == "predictions")
            if counted >= expected:
                break
            time.sleep(0.2)
        for row in usage:
            log(f"  {row['date']} {row['meter']:<26} {row['quantity']:>14} {row['unit']}")

        wall = time.monotonic() - t0
        log(f"\nDemo finished in {wall:.0f} s.")
        misses = [
            f"{n} accuracy {done[n]['metrics']['accuracy']:.3f} < {t}"
            for n, t in TARGETS.items()
            if done[n]["metrics"]["accuracy"] < t
        ]
        if misses:
            log("TARGET MISSED: " + "; ".join(misses))
            return 1
        log("Targets met: " + ", ".join(f"{n} ≥ {t}" for n, t in TARGETS.items()))
        return 0


if __name__ == "__main__":
    sys.exit(main())
