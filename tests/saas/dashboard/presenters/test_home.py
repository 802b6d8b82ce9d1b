"""The home page's presenter (the getting-started checklist): plain values in, plain values out,
no database."""

from __future__ import annotations

from saas.dashboard import presenters as p


def test_getting_started_steps_in_order_with_done_and_allowed():
    steps = p.getting_started_steps(
        has_dataset=True,
        has_job=False,
        has_model=False,
        has_key=True,
        can_upload=True,
        can_train=False,
        can_predict=True,
        can_create_key=False,
    )
    assert steps == [
        ("Upload a labelled dataset", True, "dashboard:dataset_new", True),
        ("Train a model", False, "dashboard:job_new", False),
        ("Try it in the browser", False, "dashboard:models", True),
        ("Create an API key", True, "dashboard:keys", False),
    ]
