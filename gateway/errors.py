"""The one table from the services' reason codes to HTTP statuses: only the gateway speaks
HTTP, so a service says which kind of refusal it makes and the gateway says how."""

from __future__ import annotations

from contracts.errors import ServiceError

STATUS_OF_CODE = {
    "bad_request": 400,
    "malformed_body": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_input": 422,
    "too_many_requests": 429,
    "unavailable": 503,
}


def status_of(exc: ServiceError) -> int:
    """The HTTP status of a refusal (a code missing from the table is a bug: 500)."""
    return STATUS_OF_CODE.get(exc.code, 500)


class Unauthenticated(ServiceError):
    code = "unauthenticated"
    title = "Unauthenticated"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    title = "Request body too large"


class MalformedBody(ServiceError):
    code = "malformed_body"
    title = "Malformed request body"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"
    title = "Unsupported media type"


class MethodNotAllowed(ServiceError):
    code = "method_not_allowed"
    title = "Method not allowed"


class TooManyLogins(ServiceError):
    """Failed logins of the account or the client address: wait before the next attempt."""

    code = "too_many_requests"
    title = "Too many failed logins"

    def __init__(self, retry_after_seconds: int):
        super().__init__(
            f"Too many failed logins: try again in {retry_after_seconds} s",
            retry_after_seconds=retry_after_seconds,
        )
        self.retry_after_seconds = retry_after_seconds
