"""The model presenters (code snippets, the try-it result): plain values in, plain values out,
no database."""

from __future__ import annotations

import json
import re

from saas.dashboard import presenters as p


def test_text_snippets_call_this_host_with_a_json_body():
    s = p.snippets(base_url="http://localhost:8000", model_id="mdl_abc", task="text-classification")
    url = "http://localhost:8000/v1/models/mdl_abc/predict"
    assert s["url"] == url
    assert s["curl"].startswith(f"curl -X POST {url} \\\n")
    assert '-H "Authorization: Bearer $TRAINYARD_API_KEY"' in s["curl"]
    assert '-H "Content-Type: application/json"' in s["curl"]
    body = re.search(r"-d '(.*)'$", s["curl"]).group(1)
    assert json.loads(body) == {"inputs": ["I love it, works great", "Broke after a week"]}
    assert f'"{url}"' in s["python"] and "json=" in s["python"]
    compile(s["python"], "snippet", "exec")  # the snippet is valid Python


def test_image_snippets_upload_a_file():
    s = p.snippets(base_url="https://ty.example", model_id="mdl_x", task="image-classification")
    assert s["url"] == "https://ty.example/v1/models/mdl_x/predict"
    assert s["curl"].endswith("-F files=@photo.png")
    assert "Content-Type" not in s["curl"]
    assert 'files=[("files", fh)]' in s["python"]
    compile(s["python"], "snippet", "exec")


def test_prediction_result_sorts_scores_most_likely_first():
    answer = {
        "predictions": [
            {"label": "b", "score": 0.7, "scores": {"a": 0.1, "b": 0.7, "c": 0.2}},
            {"label": "a", "score": 0.9, "scores": {"a": 0.9, "b": 0.05, "c": 0.05}},
        ],
        "usage": {"predictions": 1, "inference_ms": 12},
    }
    assert p.prediction_result(answer) == {
        "label": "b",
        "score": 0.7,
        "scores": [("b", 0.7), ("c", 0.2), ("a", 0.1)],
        "inference_ms": 12,
    }
    one_class = {"predictions": [{"label": "x", "score": 1.0, "scores": {"x": 1.0}}]}
    assert p.prediction_result(one_class)["inference_ms"] is None
    assert p.prediction_result(one_class)["scores"] == [("x", 1.0)]
