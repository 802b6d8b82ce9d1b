"""The home page's getting-started checklist.

Pure: nothing here queries the database, reads a request or renders HTML.
"""

from __future__ import annotations


def getting_started_steps(
    *,
    has_dataset: bool,
    has_job: bool,
    has_model: bool,
    has_key: bool,
    can_upload: bool,
    can_train: bool,
    can_predict: bool,
    can_create_key: bool,
) -> list[tuple[str, bool, str, bool]]:
    """The home page's checklist: ``[(what, done, url name, whether this role may do it)]``."""
    return [
        ("Upload a labelled dataset", has_dataset, "dashboard:dataset_new", can_upload),
        ("Train a model", has_job, "dashboard:job_new", can_train),
        ("Try it in the browser", has_model, "dashboard:models", can_predict),
        ("Create an API key", has_key, "dashboard:keys", can_create_key),
    ]
