"""Template context for every dashboard page: the current section and the caller's tenant."""

from __future__ import annotations

SECTIONS = {
    "home": "home",
    "datasets": "datasets",
    "dataset": "datasets",
    "dataset_new": "datasets",
    "jobs": "training",
    "job": "training",
    "job_new": "training",
    "models": "models",
    "model": "models",
    "model_try": "models",
    "keys": "keys",
    "members": "members",
    "billing": "billing",
}


def dashboard(request) -> dict:
    """``section`` (which navigation link is current) and ``tenant`` (or None)."""
    match = getattr(request, "resolver_match", None)
    name = match.url_name if match and match.namespace == "dashboard" else None
    return {"section": SECTIONS.get(name or ""), "tenant": getattr(request, "tenant", None)}
