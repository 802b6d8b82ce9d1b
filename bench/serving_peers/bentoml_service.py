"""BentoML peer for bench/serving.py: ``bentoml serve bentoml_service:Classifier --port P``.

Adaptive batching on (``batchable=True``): concurrent requests' ``inputs`` lists are
concatenated along dimension 0, up to ``BENCH_MAX_BATCH`` inputs, the wait chosen by BentoML's
dispatcher. Request ``{"inputs": ["…", …]}`` → ``[{"label", "score", "scores"}, …]``.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
from common import SavedModelClassifier

MAX_BATCH = int(os.environ.get("BENCH_MAX_BATCH", "64"))


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")), traffic={"timeout": 60})
class Classifier:
    def __init__(self) -> None:
        self.model = SavedModelClassifier()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH)
    def predict(self, inputs: list[str]) -> list[dict[str, Any]]:
        return self.model.predict(inputs)
