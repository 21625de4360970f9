"""The OpenAPI 3.1 document, generated from the routes' pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.http import ApiRoute

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")
REF = "#/components/schemas/{model}"

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
ERRORS = {
    "400": "Malformed request",
    "401": "Missing or invalid token",
    "403": "Missing role",
    "404": "Not found, or another commune's private object",
    "409": "Conflict",
    "413": "Body too large",
    "414": "Request line (path and query) over 8 KB",
    "422": "Invalid input, one entry per field",
    "431": "A header over 8 KB, or all of them over 64 KB",
    "503": "A service is unavailable, or has not yet learned what another published a moment "
    "ago: retry after `Retry-After` seconds when it is given",
}


def routes_of(service_cls: type) -> list[tuple[str, ApiRoute]]:
    """(method name, route) of every API route; the entrypoints are not bound to a container
    here, so the name comes from the class."""
    found = []
    for name in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, name), "nameko_entrypoints", ()):
            if isinstance(entrypoint, ApiRoute):
                found.append((name, entrypoint))
    return sorted(found, key=lambda pair: (pair[1].url, pair[1].method))


def _models(routes: list[tuple[str, ApiRoute]]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = []
    for _, route in routes:
        for model in (route.body_model, route.response_model):
            if isinstance(model, type) and issubclass(model, BaseModel) and model not in models:
                models.append(model)
    return models


def build_openapi(service_cls: type, title: str, version: str) -> dict[str, Any]:
    routes = routes_of(service_cls)
    models = _models(routes)
    keys, defs = (
        models_json_schema([(m, "validation") for m in models], ref_template=REF)
        if models
        else ({}, {})
    )
    schemas = dict(defs.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA
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
        if route.description:
            operation["description"] = route.description
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
                "content": {kind: {"schema": {"type": "string"}} for kind in route.consumes},
            }
        if route.body_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keys[(route.body_model, "validation")]}},
            }
        success: dict[str, Any] = {"description": "OK"}
        if route.response_model is not None and (route.response_model, "validation") in keys:
            success["content"] = {
                route.produces: {"schema": keys[(route.response_model, "validation")]}
            }
        elif route.produces != "application/json":
            success["content"] = {route.produces: {"schema": {"type": "string"}}}
        for kind in route.also_produces:
            success.setdefault("content", {})[kind] = {"schema": {"type": "string"}}
        operation["responses"][str(route.status)] = success
        for code, text in ERRORS.items():
            if code == "401" and route.public:
                continue
            operation["responses"][code] = {
                "description": text,
                "content": {
                    "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
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
            "half-open [start, end).",
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
