"""The API entrypoint: one place for authentication, input validation, idempotency, errors
(problem+json), request ids and HTTP metrics."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property, partial
from typing import Any

from eventlet.event import Event
from nameko.exceptions import RemoteError
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as NoSuchMethod
from werkzeug.formparser import FormDataParser
from werkzeug.wrappers import Request, Response

from contracts import clock
from contracts.caller import Caller, Role
from contracts.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    field_errors,
)
from gateway.auth import InvalidToken, TokenIssuer
from gateway.errors import (
    MalformedBody,
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    status_of,
)
from gateway.models import IdempotencyRecord
from gateway.users import live_users
from infra.codec import to_json
from infra.database import service_engine
from infra.logs import correlation_id_var
from infra.metrics import HTTP_DURATION, HTTP_REQUESTS
from infra.web import HttpEntrypoint

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def answered_by_the_api(path: str) -> bool:
    """The paths machines ask for: the API's, and `/metrics`, which the public port does not
    serve (the gateway's metrics port does): a problem+json 404 there, not a French page."""
    return path.startswith("/api/") or path == "/metrics" or path.startswith("/metrics/")


def request_id_of(request: Request) -> str:
    """The caller's X-Request-ID when it is safe to log and echo, else a new one; it becomes
    the correlation id of everything the request causes."""
    request_id = request.headers.get("X-Request-ID", "")
    if not _SAFE_REQUEST_ID.match(request_id):
        request_id = uuid.uuid4().hex
    correlation_id_var.set(request_id)
    return request_id


def problem(
    status: int, title: str, detail: str, errors: list | None = None, **extra: Any
) -> Response:
    body = {
        "type": f"urn:mutualis:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
        **extra,
    }
    response = Response(to_json(body), status=status, mimetype=PROBLEM_JSON)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mutualis"'
    return response


# a service's database went away mid-call: the client may retry, it is not a bug
UNAVAILABLE_UPSTREAM = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"}
# the gateway's own database (users, idempotency keys) went away: the same, said the same way
UNAVAILABLE_DATABASE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def lost_database(exc: BaseException) -> bool:
    """Whether `exc` says a database went away (the gateway's or a service's): the client
    may retry, it is not a bug. Logged here, once, for the API and the pages alike."""
    if isinstance(exc, UNAVAILABLE_DATABASE):
        log.warning("the gateway lost its database: %s", exc)
        return True
    if isinstance(exc, RemoteError) and exc.exc_type in UNAVAILABLE_UPSTREAM:
        log.warning("a service lost its database: %s", exc)
        return True
    return False


def response_for_exception(exc: BaseException) -> Response:
    """The one table from exceptions to HTTP answers."""
    if isinstance(exc, ServiceError):
        extra = {k: v for k, v in exc.extra.items() if k not in {"type", "title", "status"}}
        response = problem(status_of(exc), exc.title, exc.detail, exc.errors, **extra)
        if "retry_after_seconds" in extra:
            response.headers["Retry-After"] = str(extra["retry_after_seconds"])
        return response
    if lost_database(exc):
        return problem(503, "Service unavailable", "A database is unavailable; retry shortly.")
    if isinstance(exc, RemoteError):
        log.error("a service failed: %s", exc)
        return problem(500, "Internal error", "A service failed; the error is logged.")
    log.exception("unexpected error", exc_info=exc)
    return problem(500, "Internal error", "Unexpected error; it is logged.")


def json_response(payload: Any, status: int = 200) -> Response:
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    return Response(to_json(payload), status=status, mimetype="application/json")


class IdempotencyStore:
    """Same (user, Idempotency-Key) and same request: the stored answer, not a second effect."""

    def __init__(self, engine, in_progress_seconds: float = 300.0):
        self.engine = engine
        # a first request still "in progress" after this long died with its gateway
        self.in_progress = timedelta(seconds=in_progress_seconds)

    def run(
        self, user_id: str, key: str, fingerprint: str, produce: Callable[[], Response]
    ) -> Response:
        if len(key) > 200:
            raise InvalidInput(
                "Idempotency-Key is too long",
                [
                    {
                        "field": "Idempotency-Key",
                        "message": "at most 200 characters",
                        "type": "too_long",
                    }
                ],
            )
        if not key.isprintable():  # e.g. a NUL, which PostgreSQL cannot store
            raise InvalidInput(
                "Idempotency-Key has control characters",
                [
                    {
                        "field": "Idempotency-Key",
                        "message": "printable characters only",
                        "type": "value_error",
                    }
                ],
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    IdempotencyRecord.__table__.insert().values(
                        user_id=user_id,
                        key=key,
                        fingerprint=fingerprint,
                        status=None,
                        body=None,
                        created_at=clock.now(),
                    )
                )
        except IntegrityError:
            replayed = self._replay(user_id, key, fingerprint)
            if replayed is not None:
                return replayed
        response = produce()
        with self.engine.begin() as conn:
            match = (IdempotencyRecord.user_id == user_id) & (IdempotencyRecord.key == key)
            if response.status_code >= 500:
                # nothing was done for sure: let the client try again with the same key
                conn.execute(delete(IdempotencyRecord).where(match))
            else:
                conn.execute(
                    update(IdempotencyRecord)
                    .where(match)
                    .values(status=response.status_code, body=response.get_data(as_text=True))
                )
        return response

    def _replay(self, user_id: str, key: str, fingerprint: str) -> Response | None:
        """The stored answer; None when the first request was abandoned and this one takes
        its place."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(IdempotencyRecord.__table__).where(
                    IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
                )
            ).one()
        if row.fingerprint != fingerprint:
            raise InvalidInput(
                "This Idempotency-Key was used for another request",
                [
                    {
                        "field": "Idempotency-Key",
                        "message": "reused with a different request",
                        "type": "idempotency_key_reused",
                    }
                ],
            )
        if row.status is None:
            if self._take_over(user_id, key):
                return None
            raise Conflict("A request with this Idempotency-Key is still in progress")
        mimetype = PROBLEM_JSON if row.status >= 400 else "application/json"
        response = Response(row.body, status=row.status, mimetype=mimetype)
        response.headers["Idempotent-Replayed"] = "true"
        return response

    def _take_over(self, user_id: str, key: str) -> bool:
        """Whether the first request with this key was abandoned (in progress for longer than
        any request lasts) and this one now owns the key (one of concurrent retries does)."""
        now = clock.now()
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.user_id == user_id,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.status.is_(None),
                    IdempotencyRecord.created_at < now - self.in_progress,
                )
                .values(created_at=now)
            )
        if taken.rowcount:
            log.warning("Idempotency-Key %r was left in progress: a retry takes it over", key)
        return bool(taken.rowcount)


class ApiRoute(HttpEntrypoint):
    """A documented JSON route: validates the query and body with pydantic models, checks
    the token and roles, and passes `caller`, `body`, `query` to the worker."""

    def __init__(
        self,
        method: str,
        url: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        roles: tuple[Role, ...] = (),
        public: bool = False,
        idempotent: bool = False,
        description: str = "",
        produces: str = "application/json",
        also_produces: tuple[str, ...] = (),
        consumes: tuple[str, ...] = (),
        consumes_documented: tuple[str, ...] = (),
        responses: dict[str, dict] | None = None,
        max_body_bytes: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("expected_exceptions", (ServiceError,))
        super().__init__(method, url, **kwargs)
        self.summary = summary
        self.tag = tag
        self.body_model = body
        self.query_model = query
        self.response_model = response
        self.status = status
        self.roles = roles
        self.public = public
        self.idempotent = idempotent
        self.description = description
        self.produces = produces
        # other media types the success may be answered in, when asked (e.g. text/csv)
        self.also_produces = also_produces
        # media types of a body passed as is (bytes), e.g. a bank statement file
        self.consumes = consumes
        # those the OpenAPI document names (default: all), e.g. only application/octet-stream
        # where the others are its synonyms that code generators cannot type
        self.consumes_documented = consumes_documented or consumes
        # OpenAPI response objects documented over the usual ones (a route's own problems)
        self.responses = responses or {}
        # a route taking files may read more than the gateway's usual body limit
        self.max_body_bytes = max_body_bytes

    def setup(self) -> None:
        super().setup()
        settings = self.container.config["GATEWAY"]
        self.settings = settings
        self.tokens = TokenIssuer.from_settings(settings)
        engine = service_engine(self.container.config)
        self.live_users = live_users(
            engine, settings.user_check_seconds, settings.exempt_from_second_factor()
        )
        self.idempotency = IdempotencyStore(engine, settings.idempotency_in_progress_seconds)
        self._counters: dict[int, Any] = {}  # HTTP_REQUESTS' children by status

    # -- the request ------------------------------------------------------------------

    def handle_request(self, request: Request) -> Response:
        request.shallow = False
        started = time.perf_counter()
        request_id = request_id_of(request)
        try:
            response = self._answer(request, request_id)
        except Exception as exc:
            response = response_for_exception(exc)
        response.headers["X-Request-ID"] = request_id
        self._answered(response.status_code).inc()
        self._duration.observe(time.perf_counter() - started)
        return response

    @cached_property
    def _duration(self):
        """This route's duration histogram (prometheus's labels() looks it up under a lock)."""
        return HTTP_DURATION.labels("gateway", self.url, self.method)

    def _answered(self, status: int):
        """This route's counter of answers with `status`, looked up once per status."""
        counter = self._counters.get(status)
        if counter is None:
            counter = HTTP_REQUESTS.labels("gateway", self.url, self.method, str(status))
            self._counters[status] = counter
        return counter

    def answer_unrouted(self, request: Request, exc: HTTPException) -> Response | None:
        """A path under /api/ (or /metrics) that no route has, or a method its route does
        not take: problem+json like every other answer of the API, not werkzeug's HTML."""
        if not answered_by_the_api(request.path):
            return None
        request_id = request_id_of(request)
        if isinstance(exc, NoSuchMethod):
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            response = response_for_exception(MethodNotAllowed(f"Allowed here: {allowed}"))
            response.headers["Allow"] = allowed
        else:
            response = response_for_exception(NotFound("No API route has this path"))
        response.headers["X-Request-ID"] = request_id
        return response

    def _answer(self, request: Request, request_id: str) -> Response:
        caller = None if self.public else self.authenticate(request)
        if self.roles and not caller.has(*self.roles):
            raise Forbidden(
                "This action needs the role " + " or ".join(r.value for r in self.roles)
            )
        raw = self._read_body(request)
        kwargs = dict(request.path_values)
        if caller is not None:
            kwargs["caller"] = caller
        if self.query_model is not None:
            kwargs["query"] = self._validate(self.query_model, request.args.to_dict(), "query")
        if self.consumes:
            if request.mimetype == MULTIPART:
                raw = uploaded_file(raw, request)
            elif request.mimetype not in self.consumes:
                raise UnsupportedMediaType(
                    "Send the body as " + " or ".join((*self.consumes, MULTIPART))
                )
            kwargs["body"] = raw
        if self.body_model is not None:
            if raw.strip() and request.mimetype not in ("application/json", ""):
                raise UnsupportedMediaType("Send the body as application/json")
            kwargs["body"] = self._validate(self.body_model, json_of(raw), "body")
        run = partial(self._run_worker, request, kwargs, request_id)
        key = request.headers.get("Idempotency-Key")
        if self.idempotent and key and caller is not None:
            fingerprint = hashlib.sha256(
                b"%s %s\n" % (request.method.encode(), request.full_path.encode()) + raw
            ).hexdigest()
            return self.idempotency.run(caller.user_id, key, fingerprint, run)
        return run()

    def _run_worker(self, request: Request, kwargs: dict, request_id: str) -> Response:
        try:
            done = Event()
            self.container.spawn_worker(
                self,
                (request,),
                kwargs,
                context_data={"correlation_id": request_id},
                handle_result=partial(self.handle_result, done),
            )
            return self.render(done.wait())
        except Exception as exc:
            return response_for_exception(exc)

    def render(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        return json_response(result, self.status)

    # -- pieces -----------------------------------------------------------------------

    def authenticate(self, request: Request) -> Caller:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("Send an access token: Authorization: Bearer <token>")
        try:
            caller, factor = self.tokens.verify_with_factor(token.strip())
        except InvalidToken:
            raise Unauthenticated("The access token is invalid or expired") from None
        if not self.live_users.admits(caller, factor):
            raise Unauthenticated(
                "The access token's account is disabled or has changed (roles, commune or "
                "second factor): ask for a new token"
            )
        return caller

    def _read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes or self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"The body may not exceed {limit} bytes")
        # without Content-Length (chunked), werkzeug's stream is empty; eventlet's input
        # ends where the body ends
        stream = request.stream if request.content_length is not None else request.input_stream
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The body may not exceed {limit} bytes")
        return raw

    @staticmethod
    def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
        try:
            valid = model.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc)
            for error in errors:
                error["field"] = error["field"] or where  # e.g. a list where an object goes
                error["in"] = where
            raise InvalidInput(f"The {where} has invalid fields", errors) from None
        return valid


MULTIPART = "multipart/form-data"
# the part of a multipart body that holds the file (as generated clients and browsers send it)
FILE_PART = "file"


def uploaded_file(raw: bytes, request: Request) -> bytes:
    """The `file` part of a multipart/form-data body already read (within the body limit)."""
    try:
        _, _, files = FormDataParser().parse(
            io.BytesIO(raw), MULTIPART, len(raw), request.mimetype_params
        )
    except ValueError as exc:
        raise MalformedBody(f"The multipart body is unreadable: {exc}") from None
    part = files.get(FILE_PART)
    if part is None:
        raise InvalidInput(
            "The multipart body has no file",
            [
                {
                    "field": FILE_PART,
                    "message": "send the file as the part 'file'",
                    "type": "missing",
                }
            ],
        )
    return part.read()


def json_of(raw: bytes) -> Any:
    """A request body as JSON: UTF-8 only (RFC 8259; json.loads would guess UTF-16 and
    UTF-32 from bytes); an empty body is an empty object."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("The body must be JSON encoded in UTF-8") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}") from None


api = ApiRoute.decorator
