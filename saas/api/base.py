"""The one base class every /v1 endpoint uses: tenant resolution, scope checks, pagination.

Subclasses declare the ``Action`` each HTTP method takes and never build their own querysets:
they call tenant-scoped selectors with ``self.organization``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from saas.apikeys.models import ApiKey
from saas.billing.selectors import plan_limits_for_request
from saas.common.actor import Actor, client_ip
from saas.common.errors import DomainError, ValidationFailed
from saas.common.request_log import bind_organization
from saas.limits.idempotency import (
    Replay,
    idempotency_begin,
    idempotency_finish,
    idempotency_release,
)
from saas.limits.ratelimit import rate_limit_check
from saas.tenancy.access import Access, AccessDenied, NotAMember, OrganizationSuspended
from saas.tenancy.models import Organization
from saas.tenancy.permissions import Action

from .fingerprint import request_fingerprint

__all__ = ["OrganizationSuspended", "RateLimited", "TenantAPIView"]

log = logging.getLogger(__name__)

HANDLER_METHODS = ("get", "post", "put", "patch", "delete")


class RateLimited(DomainError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class ListPagination(CursorPagination):
    """Cursor pagination: ``{"object": "list", "data": [...], "next_cursor": str | null}``.

    ``?limit=`` (an integer ≥ 1, default 20, capped at 100) and ``?cursor=`` (the previous
    page's ``next_cursor``). A malformed limit or cursor is a 400 problem.
    """

    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100
    ordering: tuple[str, ...] = ("-created_at", "-pk")

    def __init__(self, ordering: tuple[str, ...] | None = None) -> None:
        if ordering:
            self.ordering = ordering

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationFailed(
                "Invalid limit.",
                errors=[
                    {
                        "field": "limit",
                        "message": "must be an integer ≥ 1 (at most 100 are returned)",
                    }
                ],
            )
        return min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (exceptions.NotFound, DjangoValidationError, ValueError, OverflowError, TypeError):
            raise ValidationFailed(
                "Invalid cursor.",
                errors=[{"field": "cursor", "message": "pass a next_cursor from a previous page"}],
            ) from None

    def get_paginated_response(self, data):
        next_link = self.get_next_link()
        cursor = parse_qs(urlparse(next_link).query).get("cursor", [None])[0] if next_link else None
        return Response({"object": "list", "data": data, "next_cursor": cursor})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": schema,
                "next_cursor": {"type": "string", "nullable": True},
            },
        }


def paginate_list(request, view, items: list, *, page_size: int | None = None) -> Response:
    """Cursor-paginate an in-memory list (e.g. a job's stored misclassified examples).

    The cursor is the opaque base64 of an offset; same ``limit`` rules as :class:`ListPagination`.
    """
    size = ListPagination().get_page_size(request)
    raw = request.query_params.get("cursor")
    offset = 0
    if raw:
        try:
            offset = int(base64.urlsafe_b64decode(raw.encode()).decode().removeprefix("o="))
            if offset < 0:
                raise ValueError
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise ValidationFailed(
                "Invalid cursor.",
                errors=[{"field": "cursor", "message": "pass a next_cursor from a previous page"}],
            ) from None
    page = items[offset : offset + size]
    nxt = offset + size
    cursor = base64.urlsafe_b64encode(f"o={nxt}".encode()).decode() if nxt < len(items) else None
    return Response({"object": "list", "data": page, "next_cursor": cursor, "total": len(items)})


class TenantAPIView(APIView):
    """Base for tenant-owned endpoints. Declare ``actions = {"GET": Action.X, "POST": ...}``.

    Fails closed: defining a handler (``get``, ``post``, ``put``, ``patch``, ``delete``) with no
    entry in ``actions`` is a ``TypeError`` when the class is created, and a request whose
    method has a handler but no resolvable action is refused (403) before anything runs.
    HEAD and OPTIONS take GET's action.

    Before the handler runs, in this order: authentication (401), the tenant and principal
    (:class:`saas.tenancy.access.Access`: the key's organisation, or the signed-in user's
    current one), the permission for the method's action (role table and key scopes, 403
    naming what is missing), suspension (403 for writes that cost money), rate limits (429
    with Retry-After), and for POST the ``Idempotency-Key`` (replay, 409 or 422). Handlers get
    ``self.access``, ``self.organization``, ``self.actor``, ``self.api_key``, ``self.role``.
    """

    actions: dict[str, Action] = {}
    idempotency_redact: tuple[str, ...] = ()  # response fields never stored for replays
    access: Access
    organization: Organization
    api_key: ApiKey | None
    actor: Actor
    role: str | None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        missing = [
            name.upper()
            for name in HANDLER_METHODS
            if callable(getattr(cls, name, None)) and name.upper() not in cls.actions
        ]
        if missing:
            raise TypeError(
                f"{cls.__qualname__} handles {', '.join(missing)} without an entry in "
                "`actions`: declare the Action each method takes"
            )

    def _action(self, method: str) -> Action | None:
        if method in ("HEAD", "OPTIONS"):
            method = "GET"
        return self.actions.get(method)

    def initial(self, request, *args, **kwargs):
        self._idempotency = None
        self._rate_headers: dict[str, str] = {}
        super().initial(request, *args, **kwargs)  # authentication + IsAuthenticated
        action = self._action(request.method)
        if action is None and callable(getattr(self, request.method.lower(), None)):
            # A handler exists but no action says who may run it: refuse, never allow.
            raise AccessDenied(f"No permission is declared for {request.method} here; refused.")
        ip = client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES)
        if isinstance(request.auth, ApiKey):
            self.access = Access.for_api_key(request.auth, creator_role=request.user.creator_role)
            self.api_key = request.auth
        else:
            try:
                self.access = Access.for_session(
                    request.user, request.session.get("organization_id")
                )
            except NotAMember as exc:
                raise exceptions.PermissionDenied(exc.detail) from None
            self.api_key = None
        self.organization, self.role = self.access.organization, self.access.role
        bind_organization(self.organization.pk)  # a session's too (the key's is bound already)
        self.actor = self.access.actor(ip=ip)
        if action is not None:  # None only for a method with no handler: DRF answers 405
            self.access.require(action)
        limits = plan_limits_for_request(organization_id=self.organization.pk)
        decision = rate_limit_check(
            organization_id=self.organization.pk,
            principal=self.access.principal,
            requests_per_key=limits.requests_per_key,
            requests_per_organization=limits.requests_per_organization,
        )
        if decision is not None:
            self._rate_headers = decision.headers()
            if not decision.allowed:
                raise RateLimited(
                    f"Rate limit of {decision.limit} requests per {settings.TRAINYARD_RATE_LIMIT_WINDOW_SECONDS} s "
                    f"reached; retry in {decision.retry_after_seconds} s."
                )
        key_header = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key_header is not None:
            self._idempotency = idempotency_begin(
                organization_id=self.organization.pk,
                # Per principal too: a replay must never hand one member another member's response.
                route=f"{request.path}#{self.access.principal}",
                key=key_header,
                fingerprint=request_fingerprint(request),
            )

    def dispatch(self, request, *args, **kwargs):
        """DRF's dispatch, plus: a request that leaves without a response releases its
        ``Idempotency-Key``. DRF turns every ``Exception`` into a (problem) response, which
        :meth:`finalize_response` records or releases; what escapes is a ``BaseException``
        (gunicorn's worker timeout is ``SystemExit`` raised in the request, a Ctrl-C is
        ``KeyboardInterrupt``) or an error while finalising, and then the claim is dropped here
        so the client's retry runs instead of answering 409 for the lease's length."""
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException:
            record = getattr(self, "_idempotency", None)
            if record is not None:
                self._idempotency = None
                try:
                    idempotency_release(record=record)
                except Exception:  # the database is what failed: the lease frees the key
                    log.exception("could not release an idempotency key")
            raise

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            record = exc.record
            response = Response(
                record.response_body,
                status=record.response_status,
                headers={"Idempotent-Replayed": "true"},
            )
            response.content_type = record.response_headers.get("Content-Type")
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(self, "_rate_headers", {}).items():
            response[name] = value
        record = getattr(self, "_idempotency", None)
        if record is not None and "Idempotent-Replayed" not in response:
            body = getattr(response, "data", None)
            # DRF sets Content-Type when rendering; keep the explicit one (problem+json) if any.
            kept = (
                {"Content-Type": response.content_type}
                if getattr(response, "content_type", None)
                else {}
            )
            if isinstance(body, dict) and self.idempotency_redact:
                # Secrets are shown once and never stored: a replay says so instead.
                body = {
                    **{k: v for k, v in body.items() if k not in self.idempotency_redact},
                    "redacted": sorted(set(self.idempotency_redact) & set(body)),
                }
            idempotency_finish(record=record, status=response.status_code, body=body, headers=kept)
            self._idempotency = None
        return response

    def paginate(
        self, queryset, serializer_class, ordering: tuple[str, ...] | None = None
    ) -> Response:
        paginator = ListPagination(ordering)
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


@functools.cache
def _bound_output(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


def represent(serializer_class: type[serializers.Serializer], instance) -> dict:
    """``serializer_class(instance).data`` for an output serializer, without rebuilding it.

    DRF deep-copies every declared field each time a serializer is instantiated (~0.15 ms for
    ``ModelOut``, as much as the rest of a cached-auth request's Python). Output serializers
    keep no per-call state in ``to_representation`` (no context, no validation), so one
    instance per class, its fields bound once, serves every response. Not for serializers
    that read ``self.context`` or ``self.instance``.
    """
    return _bound_output(serializer_class).to_representation(instance)


PAGE_PARAMS = [
    OpenApiParameter("limit", int, description="page size, 1–100 (default 20)"),
    OpenApiParameter("cursor", str, description="the next_cursor of the previous page"),
]


def page_of(serializer_class, name: str | None = None):
    """OpenAPI shape of a list page of ``serializer_class`` items, a component named ``name``
    (default: the serializer's name less ``Out``, plus ``List``)."""
    return inline_serializer(
        name=name or f"{serializer_class.__name__.removesuffix('Out')}List",
        fields={
            "object": serializers.CharField(default="list"),
            "data": serializer_class(many=True),
            "next_cursor": serializers.CharField(allow_null=True),
        },
    )


def metrics_inline(metrics: dict | None) -> dict | None:
    """A job's or model's ``metrics`` as one object's answer shows them: whole, except a
    ``confusion_matrix`` over ``TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES`` classes, which
    only the confusion-matrix download serves (so one answer stays small)."""
    if not metrics:
        return metrics
    cm = metrics.get("confusion_matrix") or {}
    if len(cm.get("labels", [])) <= settings.TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES:
        return metrics
    return {k: v for k, v in metrics.items() if k != "confusion_matrix"}
