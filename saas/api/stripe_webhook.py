"""``POST /stripe/webhook``: the HTTP side of Stripe's webhooks.

Verification and event handling are billing services
(:func:`saas.billing.services.stripe_events.stripe_webhook_receive`); this view only reads the
raw body and the signature header and turns the outcome into a response.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from saas.billing.services.stripe_events import stripe_webhook_receive
from saas.common.errors import DomainError

from .errors import PROBLEM_JSON, problem

log = logging.getLogger(__name__)


def _problem(exc: DomainError) -> JsonResponse:
    body = problem(exc.status, exc.code, exc.title, exc.detail)
    return JsonResponse(body, status=exc.status, content_type=PROBLEM_JSON)


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """``POST /stripe/webhook``: verify the raw body against ``Stripe-Signature`` and apply it.

    200 ``{"received": true}`` for a new or duplicate event; 400 problem+json for a bad
    signature, stale timestamp or malformed event (nothing is recorded); 405 for other methods;
    413 for a body over Django's upload limit.
    """
    if request.method != "POST":
        body = problem(405, "method-not-allowed", "Method not allowed", "Use POST.")
        resp = JsonResponse(body, status=405, content_type=PROBLEM_JSON)
        resp["Allow"] = "POST"
        return resp
    try:
        payload = request.body
    except RequestDataTooBig:
        body = problem(413, "payload-too-large", "The request body is too large", "Too large.")
        return JsonResponse(body, status=413, content_type=PROBLEM_JSON)
    try:
        stripe_webhook_receive(payload=payload, signature=request.headers.get("Stripe-Signature"))
    except DomainError as exc:
        log.warning("stripe webhook refused: %s", exc.detail)
        return _problem(exc)
    return JsonResponse({"received": True})
