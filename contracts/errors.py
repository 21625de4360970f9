"""Errors a service raises over RPC. Each carries a reason `code` saying which kind of refusal
it is; the gateway alone knows HTTP and maps each reason to one status (gateway.errors).

They are registered with nameko's remote-error registry so that the gateway receives
the same class with its arguments, not a bare RemoteError.
"""

from typing import Any

from nameko.exceptions import registry


class ServiceError(Exception):
    """Base of the errors a client may see; `detail` is shown to the user."""

    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail, errors or [], extra)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class InvalidInput(ServiceError):
    """The request breaks a rule of the input or of the domain; nothing was changed."""

    code = "invalid_input"
    title = "Invalid input"


class NotFound(ServiceError):
    """No such thing, or not one the caller may know of."""

    code = "not_found"
    title = "Not found"


class Forbidden(ServiceError):
    """The caller may see the thing but not do this to it."""

    code = "forbidden"
    title = "Forbidden"


class Conflict(ServiceError):
    """The thing's current state does not allow it (taken, already decided, changed)."""

    code = "conflict"
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

    code = "unavailable"
    title = "Service unavailable"


_register(Unavailable)
