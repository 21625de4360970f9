"""The services say which kind of refusal they make; the gateway alone turns it into HTTP."""

import pytest

from contracts import errors
from gateway import errors as gateway_errors
from gateway.errors import STATUS_OF_CODE, status_of


def every_error_class(base=errors.ServiceError):
    for sub in base.__subclasses__():
        yield sub
        yield from every_error_class(sub)


def test_every_kind_of_refusal_has_one_status():
    classes = [errors.ServiceError, *every_error_class()]
    assert {gateway_errors.Unauthenticated, errors.InvalidInput} <= set(classes)
    for cls in classes:
        assert cls.code in STATUS_OF_CODE, f"{cls.__name__}.code {cls.code!r} has no HTTP status"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidInput("bad"), 422),
        (errors.NotFound("gone"), 404),
        (errors.Forbidden("no"), 403),
        (errors.Conflict("taken"), 409),
        (errors.Unavailable("down"), 503),
        (errors.ServiceError("odd"), 400),
        (gateway_errors.Unauthenticated("who?"), 401),
        (gateway_errors.PayloadTooLarge("big"), 413),
        (gateway_errors.UnsupportedMediaType("xml"), 415),
    ],
)
def test_statuses_of_the_refusals(error, status):
    assert status_of(error) == status


def test_the_services_errors_know_no_http():
    for cls in every_error_class():
        assert not hasattr(cls, "status"), f"{cls.__name__} carries an HTTP status"
