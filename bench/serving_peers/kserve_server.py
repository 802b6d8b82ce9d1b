"""KServe peer for bench/serving.py: ``python kserve_server.py --http_port P --model_name sms``.

A ``kserve.Model`` whose ``predict`` calls the SavedModel's ``serving_default`` with the request's
``instances`` (V1 protocol): ``POST /v1/models/sms:predict`` ``{"instances": ["…", …]}`` →
``{"predictions": [{"label", "score", "scores"}, …]}``. KServe has no cross-request batching in
the model server itself (that is its Knative queue-proxy's job), so each request is one call.
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve
from common import SavedModelClassifier


class Classifier(kserve.Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model: SavedModelClassifier | None = None
        self.load()

    def load(self) -> bool:
        self.model = SavedModelClassifier()
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        assert self.model is not None
        return {"predictions": self.model.predict(list(payload["instances"]))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    args, _ = parser.parse_known_args()
    kserve.ModelServer().start([Classifier(args.model_name or "sms")])
