"""Errors a service raises over RPC; the gateway maps each to one HTTP status.

They are registered with nameko's remote-error registry so that the gateway receives
the same class with its arguments, not a bare RemoteError.
"""

from typing import Any

from nameko.exceptions import registry


class ServiceError(Exception):
    """Base of the errors a client may see; `detail` is shown to the user."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail, errors or [], extra)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class InvalidInput(ServiceError):
    status = 422
    title = "Invalid input"


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


def _register(cls: type[ServiceError]) -> None:
    # nameko rebuilds a registered exception from (path, args); ours take them positionally.
    registry[f"{cls.__module__}.{cls.__name__}"] = lambda detail, errors, extra: cls(
        detail, errors, **extra
    )


for _cls in (ServiceError, InvalidInput, NotFound, Forbidden, Conflict):
    _register(_cls)


def field_errors(exc: Exception) -> list[dict[str, Any]]:
    """pydantic's ValidationError as one entry per field: {field, message, type}."""
    entries = []
    for err in exc.errors(include_url=False):  # type: ignore[attr-defined]
        loc = [str(part) for part in err.get("loc", ())]
        entries.append(
            {
                "field": ".".join(loc) or None,
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return entries


def field_error(field: str | None, message: str, kind: str = "value_error", **extra: Any) -> dict:
    """One entry of a refusal's `errors`: which field, what is wrong, which rule."""
    return {"field": field, "message": message, "type": kind, **extra}


def unknown_commune(field: str, code: str) -> InvalidInput:
    return InvalidInput(
        f"Unknown commune {code}", [field_error(field, f"no commune has INSEE code {code}")]
    )


def validated(model: Any, data: Any) -> Any:
    """Validate `data` as `model`, raising InvalidInput with per-field errors."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"Invalid {model.__name__}", field_errors(exc)) from None


class Unavailable(ServiceError):
    """A service or the broker cannot answer now; the client may retry."""

    status = 503
    title = "Service unavailable"


_register(Unavailable)
