"""Model pages (trained models, not Django models): the "call it from your code" snippets
and the try-it box's answer.

Pure: nothing here queries the database, reads a request or renders HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from saas.datasets.models import Task

# The example inputs of the "call it from your code" snippets (text models).
_TEXT_EXAMPLES = '["I love it, works great", "Broke after a week"]'


def snippets(*, base_url: str, model_id: str, task: str) -> dict[str, str]:
    """The "call it from your code" examples for one model.

    Args:
        base_url: the host the browser used, without a trailing slash
            (``https://trainyard.example``).
        model_id: the model's id (``mdl_…``).
        task: ``text-classification`` (a JSON body) or anything else (an image upload).

    Returns:
        ``{"curl", "python", "url"}``: shell and Python source reading the key from
        ``TRAINYARD_API_KEY``, and the predict URL they call.
    """
    url = f"{base_url}/v1/models/{model_id}/predict"
    if task == Task.TEXT_CLASSIFICATION:
        curl = (
            f"curl -X POST {url} \\\n"
            '  -H "Authorization: Bearer $TRAINYARD_API_KEY" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{{\"inputs\": {_TEXT_EXAMPLES}}}'"
        )
        python = (
            "import os\nimport requests\n\n"
            "response = requests.post(\n"
            f'    "{url}",\n'
            '    headers={"Authorization": f"Bearer {os.environ[\'TRAINYARD_API_KEY\']}"},\n'
            f'    json={{"inputs": {_TEXT_EXAMPLES}}},\n'
            "    timeout=30,\n)\nresponse.raise_for_status()\n"
            'for p in response.json()["predictions"]:\n'
            '    print(p["label"], round(p["score"], 3))'
        )
    else:
        curl = (
            f"curl -X POST {url} \\\n"
            '  -H "Authorization: Bearer $TRAINYARD_API_KEY" \\\n'
            "  -F files=@photo.png"
        )
        python = (
            "import os\nimport requests\n\n"
            'with open("photo.png", "rb") as fh:\n'
            "    response = requests.post(\n"
            f'        "{url}",\n'
            '        headers={"Authorization": f"Bearer {os.environ[\'TRAINYARD_API_KEY\']}"},\n'
            '        files=[("files", fh)],\n'
            "        timeout=30,\n    )\nresponse.raise_for_status()\n"
            'print(response.json()["predictions"][0])'
        )
    return {"curl": curl, "python": python, "url": url}


def prediction_result(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The first prediction of a ``prediction_create`` answer, for the try-it box.

    Args:
        answer: ``{"predictions": [{"label", "score", "scores": {label: p}}], "usage": {...}}``.

    Returns:
        ``{"label", "score", "scores": [(label, p)] most likely first, "inference_ms"}``
        (``inference_ms`` is ``None`` when the usage does not say).
    """
    pred = answer["predictions"][0]
    return {
        "label": pred["label"],
        "score": pred["score"],
        "scores": sorted(pred["scores"].items(), key=lambda kv: -kv[1]),
        "inference_ms": (answer.get("usage") or {}).get("inference_ms"),
    }
