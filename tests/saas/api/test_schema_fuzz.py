"""schemathesis against the OpenAPI schema (drf-spectacular's /v1/openapi.json), in process
through the WSGI app, with the project's own auth: an all-scopes API key of an organisation
that owns one of everything, whose ids replace the generated path parameters (so the fuzzed
bodies and queries reach real objects; random ids are the corpus test's job).

Checks: never a 5xx, every error is problem+json, and the content type and body of every
answer the schema documents conform to it. (Status-code conformance is not checked: the
schema does not list the 4xx problems each operation can answer.) Bounded (``MAX_EXAMPLES`` per
operation) and derandomized, so CI runs the same cases every time in well under 2 minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from saas.wsgi import application
from tests.saas.api.fuzz_world import World, build_world

MAX_EXAMPLES = 12
#: Answered by the data plane, which no test process runs here: the web tier's 503 is right.
DATA_PLANE = "/v1/models/{model_id}/predict"


@pytest.fixture
def world(db, settings) -> World:
    settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS = 0.05
    return build_world("schemafuzz")


@pytest.fixture
def keep_connection(db):
    """The raw WSGI app closes the database connection after each request (Django's
    request_started/finished signals); the test client turns that off so a test's transaction
    survives its requests, and so does this."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# Loaded at collection (the schema view reads no database): one test per operation.
schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", application)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_and_never_answers_5xx(case, world, keep_connection):
    if case.path_parameters:
        case.path_parameters = {k: world.ids.get(k, v) for k, v in case.path_parameters.items()}
    response = case.call(headers={"Authorization": f"Bearer {world.key}"})
    if case.operation.path == DATA_PLANE and response.status_code == 503:
        return
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    if response.status_code >= 400:
        content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
        assert content_type[0].startswith("application/problem+json"), response.text[:300]
