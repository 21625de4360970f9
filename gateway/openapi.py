"""The OpenAPI 3.1 document, generated from the routes' pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from gateway.examples import BODY_EXAMPLES, RESPONSE_EXAMPLES
from gateway.http import FILE_PART, MULTIPART, ApiRoute

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")
REF = "#/components/schemas/{model}"
READ = "serialization"

PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "in": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail", "errors"],
}
# a 409 says what is in the way: the period taken, a series' occurrences that clash, or the
# status that refuses the action
CONFLICT_SCHEMA = {
    "allOf": [
        {"$ref": REF.format(model="Problem")},
        {
            "type": "object",
            "properties": {
                "conflicting_period": {
                    "type": "object",
                    "properties": {
                        "start": {"type": "string", "format": "date-time"},
                        "end": {"type": "string", "format": "date-time"},
                    },
                    "required": ["start", "end"],
                },
                "conflicts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "start": {"type": "string", "format": "date-time"},
                            "end": {"type": "string", "format": "date-time"},
                            "detail": {"type": "string"},
                        },
                        "required": ["start", "end", "detail"],
                    },
                },
                "current_status": {"type": "string"},
                "rule": {"type": "string"},
            },
        },
    ]
}
ERRORS = {
    "400": "Malformed request",
    "401": "Missing or invalid token",
    "403": "Missing role",
    "404": "Not found, or another commune's private object",
    "409": "Conflict: the slot taken (`conflicting_period`, a series' `conflicts`) or the "
    "state that refuses the action (`current_status`)",
    "413": "Body too large",
    "414": "Request line (path and query) over 8 KB",
    "422": "Invalid input, one entry per field",
    "431": "A header over 8 KB, or all of them over 64 KB",
    "503": "A service is unavailable, or has not yet learned what another published a moment "
    "ago: retry after `Retry-After` seconds when it is given",
}


# a document (PDF, UBL, iCalendar) or a file sent as is: bytes, a file in generated clients
BINARY = {"type": "string", "format": "binary"}
# the same file sent as a form's part `file`
UPLOAD = {
    "type": "object",
    "properties": {FILE_PART: BINARY},
    "required": [FILE_PART],
    "additionalProperties": False,
}


class AnswerSchemas(GenerateJsonSchema):
    """An answer's field that has a default is answered all the same: required in the
    serialization schema (what generated clients type as always there)."""

    def field_is_required(self, field, total: bool) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)


def routes_of(service_cls: type) -> list[tuple[str, ApiRoute]]:
    """(method name, route) of every API route; the entrypoints are not bound to a container
    here, so the name comes from the class."""
    found = []
    for name in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, name), "nameko_entrypoints", ()):
            if isinstance(entrypoint, ApiRoute):
                found.append((name, entrypoint))
    return sorted(found, key=lambda pair: (pair[1].url, pair[1].method))


def _models(routes: list[tuple[str, ApiRoute]]) -> list[tuple[type[BaseModel], str]]:
    """Each body as pydantic validates it, each answer as pydantic serializes it (a field
    with a default is always answered: required there, optional in a body)."""
    models: list[tuple[type[BaseModel], str]] = []
    for _, route in routes:
        for model, mode in ((route.body_model, "validation"), (route.response_model, READ)):
            known = isinstance(model, type) and issubclass(model, BaseModel)
            if known and (model, mode) not in models:
                models.append((model, mode))
    return models


def build_openapi(service_cls: type, title: str, version: str) -> dict[str, Any]:
    routes = routes_of(service_cls)
    models = _models(routes)
    keys, defs = (
        models_json_schema(models, ref_template=REF, schema_generator=AnswerSchemas)
        if models
        else ({}, {})
    )
    schemas = dict(defs.get("$defs", {}))
    for name, schema in schemas.items():
        if name.endswith(("-Input", "-Output")):  # a model read and answered differently
            schema["title"] = name.replace("-", "")  # generators name classes by titles
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ConflictProblem"] = CONFLICT_SCHEMA
    paths: dict[str, dict] = {}
    for operation_id, route in routes:
        path = _PATH_PARAM.sub(r"{\1}", route.url)
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": operation_id,
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in _PATH_PARAM.findall(route.url)
            ],
            "responses": {},
        }
        operation["description"] = "\n\n".join(filter(None, [route.description, _who_may(route)]))
        if route.query_model is not None:
            operation["parameters"] += _query_parameters(route.query_model, schemas)
        if route.idempotent:
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "Same key and body: the stored response; another body: 422.",
                }
            )
        if route.consumes:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    **{kind: {"schema": BINARY} for kind in route.consumes_documented},
                    MULTIPART: {"schema": UPLOAD},
                },
            }
        if route.body_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": keys[(route.body_model, "validation")],
                        **_example_of(route.body_model, BODY_EXAMPLES),
                    }
                },
            }
        success: dict[str, Any] = {"description": "OK"}
        if route.response_model is not None and (route.response_model, READ) in keys:
            success["content"] = {
                route.produces: {
                    "schema": keys[(route.response_model, READ)],
                    **_example_of(route.response_model, RESPONSE_EXAMPLES),
                }
            }
        elif route.produces != "application/json":
            success["content"] = {route.produces: {"schema": BINARY}}
        for kind in route.also_produces:
            success.setdefault("content", {})[kind] = {"schema": {"type": "string"}}
        operation["responses"][str(route.status)] = success
        for code, text in ERRORS.items():
            if code == "401" and route.public:
                continue
            model = "ConflictProblem" if code == "409" else "Problem"
            operation["responses"][code] = {
                "description": text,
                "content": {
                    "application/problem+json": {"schema": {"$ref": REF.format(model=model)}}
                },
            }
        operation["responses"].update(route.responses)
        if not route.public:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Neighbouring communes lend each other equipment, services "
            "and expert staff. Money is integer cents; periods are "
            "half-open [start, end). A date-only `start`, `end`, `from` or `to` is a day "
            "in Europe/Paris, from 00:00 Paris time (23:00 UTC the day before in winter, "
            "22:00 in summer): an `end` date is the first day not taken, a `to` date the "
            "last day included.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _example_of(model: type[BaseModel], examples: dict[type, dict]) -> dict[str, Any]:
    example = examples.get(model)
    return {} if example is None else {"example": example}


def _who_may(route: ApiRoute) -> str:
    """Who may call the operation, and whether a retry is safe: said of every operation,
    new ones included, from the route itself."""
    if route.public:
        who = "Anyone, without a token."
    elif route.roles:
        who = "A token with the role " + " or ".join(f"`{r.value}`" for r in route.roles) + "."
    else:
        who = "Any signed-in user (a token of any role)."
    if route.idempotent:
        who += " Send an `Idempotency-Key` to make a retry safe: the same key and body "
        who += "answer the first answer again."
    return who


def _query_parameters(model: type[BaseModel], schemas: dict) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF, by_alias=True)
    schemas.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
