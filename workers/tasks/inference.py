"""Online predictions (queue ``inference``). A later issue moves them to the ``serve`` data
plane; until then a worker keeps recently used models warm in a per-process cache."""

from __future__ import annotations

import base64
import time

from celery import shared_task
from django.conf import settings

from saas.celery import Queue, TaskName
from saas.contract.tasks import TEXT
from saas.registry.selectors import model_get
from saas.registry.services import model_artifact_extract
from workers.ml.model_cache import get_cache


# Not acks_late: the web request waits for the answer only TRAINYARD_PREDICT_TIMEOUT_SECONDS,
# so a redelivered prediction would be computed for nobody, and an input that kills the
# worker (out of memory) would be redelivered to kill the next one.
@shared_task(name=TaskName.PREDICT, queue=Queue.INFERENCE.value, acks_late=False)
def predict(*, organization_id: str, model_id: str, inputs: list[str]) -> dict:
    """Run already-validated ``inputs`` through a model kept warm in this process.

    ``inputs`` are texts, or base64 image bytes for image models. Returns
    ``{"predictions": [...], "inference_ms": float}``. Raises the registry's not-found error for
    a model that is not the organisation's.
    """
    model = model_get(organization_id=organization_id, model_id=model_id)
    dest = settings.TRAINYARD_MODEL_CACHE_DIR / model.pk / f"v{model.version}"
    saved_model_dir = model_artifact_extract(key=model.artifact_key, dest=dest)
    loaded = get_cache().get((model.pk, model.version), str(saved_model_dir))
    batch = inputs if model.task == TEXT else [base64.b64decode(x) for x in inputs]
    t0 = time.perf_counter()
    predictions = loaded.predict(batch)
    return {"predictions": predictions, "inference_ms": round((time.perf_counter() - t0) * 1000, 3)}
