"""Domain errors. Services raise these; the API's one exception handler maps them to RFC 9457
problem details (``saas.api.errors``)."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``status`` (HTTP), ``code`` (the problem type's slug), ``title``, ``errors``.

    ``errors`` is a list of ``{"field": str | None, "message": str}``.
    """

    status = 400
    code = "invalid-request"
    title = "Invalid request"

    def __init__(self, detail: str, *, errors: list[dict] | None = None, **extra) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class ValidationFailed(DomainError):
    status = 400
    code = "validation-failed"
    title = "The request did not pass validation"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload-too-large"
    title = "The upload is too large"


class NotFound(DomainError):
    """Missing, or another tenant's: the two are indistinguishable on purpose."""

    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "The resource is not in a state that allows this"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service-unavailable"
    title = "No worker answered in time"


class WorkerError(DomainError):
    status = 502
    code = "worker-error"
    title = "The worker could not complete the request"
