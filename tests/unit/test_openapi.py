"""The generated OpenAPI 3.1 document: every route, resolvable refs, bodies and security."""

import json

import jsonschema
import openapi_spec_validator
import pytest

from gateway.examples import BODY_EXAMPLES, RESPONSE_EXAMPLES
from gateway.service import openapi_document

API_ROUTES = {
    ("/api/v1/auth/token", "post"),
    ("/api/v1/me", "get"),
    ("/api/v1/communes", "get"),
    ("/api/v1/communes/{insee_code}", "get"),
    ("/api/v1/listings", "get"),
    ("/api/v1/listings", "post"),
    ("/api/v1/listings/{listing_id}", "get"),
    ("/api/v1/listings/{listing_id}", "patch"),
    ("/api/v1/listings/{listing_id}", "delete"),
    ("/api/v1/listings/{listing_id}/blackouts", "post"),
    ("/api/v1/listings/{listing_id}/availability", "get"),
}
PUBLIC = {
    ("/api/v1/auth/token", "post"),
    ("/api/v1/communes", "get"),
    ("/api/v1/communes/{insee_code}", "get"),
    # content-addressed photos, shown by <img> in pages and mails: the URL is the capability
    ("/api/v1/photos/{kind}/{owner_id}/{name}", "get"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def doc() -> dict:
    # through JSON, as clients get it: anything not serialisable fails here
    return json.loads(json.dumps(openapi_document()))


def operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc, ref: str):
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def operation(doc, path, method):
    return doc["paths"][path][method]


def test_it_is_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]


def test_every_api_route_is_listed(doc):
    listed = {(path, method) for path, method, _ in operations(doc)}
    assert listed >= API_ROUTES
    assert all(path.startswith("/api/v1/") for path, _ in listed)


def test_the_validator_accepts_it(doc):
    openapi_spec_validator.validate(doc)


def test_every_ref_resolves_inside_the_document(doc):
    found = set(refs(doc))
    assert "#/components/schemas/ListingDraft" in found
    for ref in found:
        assert isinstance(resolve(doc, ref), dict)


def test_path_parameters_match_the_template(doc):
    for path, _, op in operations(doc):
        in_template = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == in_template, path
        assert all(p["required"] for p in op["parameters"] if p["in"] == "path")


@pytest.mark.parametrize(
    ("path", "method", "model"),
    [
        ("/api/v1/auth/token", "post", "TokenRequest"),
        ("/api/v1/listings", "post", "ListingDraft"),
        ("/api/v1/listings/{listing_id}", "patch", "ListingChanges"),
        ("/api/v1/listings/{listing_id}/blackouts", "post", "BlackoutDraft"),
    ],
)
def test_request_bodies_reference_the_pydantic_schemas(doc, path, method, model):
    body = operation(doc, path, method)["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{model}"}


def test_the_listing_draft_schema_has_its_fields_and_categories(doc):
    draft = doc["components"]["schemas"]["ListingDraft"]
    assert {"title", "category", "kind", "pricing_unit", "rate_cents"} <= set(draft["required"])
    assert draft["properties"]["category"] == {"$ref": "#/components/schemas/Category"}
    assert "deneigement" in doc["components"]["schemas"]["Category"]["enum"]
    assert draft["additionalProperties"] is False


# -- what generated clients need ---------------------------------------------------------


def test_an_answer_names_every_field_it_always_sends_as_required(doc):
    view = doc["components"]["schemas"]["ListingView"]
    assert set(view["required"]) == set(view["properties"])  # description, rules… have defaults
    draft = doc["components"]["schemas"]["ListingDraft"]
    assert "description" not in draft["required"]  # a body may leave them out


def inline_enums(doc) -> dict[tuple, list[str]]:
    """Where each enum is written out, outside the components that name one."""
    written: dict[tuple, list[str]] = {}

    def walk(node, where):
        if isinstance(node, dict):
            if "enum" in node and where.count("/") > 3:  # not a component itself
                written.setdefault(tuple(node["enum"]), []).append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    walk(doc, "")
    return written


def test_an_enum_is_named_once_and_referred_to(doc):
    schemas = doc["components"]["schemas"]
    named = {tuple(s["enum"]) for s in schemas.values() if "enum" in s}
    assert [where for values in named for where in inline_enums(doc).get(values, [])] == []
    assert {"Category", "AsParty"} <= set(schemas)


# written inline twice and not named yet: the notification preferences' delivery mode
NOT_YET_NAMED = {("immediately", "daily", "never")}


def test_an_enum_written_in_two_places_is_a_named_component(doc):
    """Generated clients make a type of each named enum: an enum written out twice becomes
    two types for the same values."""
    twice = {values: places for values, places in inline_enums(doc).items() if len(places) > 1}
    assert set(twice) <= NOT_YET_NAMED, twice


def test_the_reports_answer_json_or_csv_a_format_named_once(doc):
    assert doc["components"]["schemas"]["ReportFormat"]["enum"] == ["json", "csv"]
    for path in ("/api/v1/statements", "/api/v1/reports/aging"):
        parameters = operation(doc, path, "get")["parameters"]
        (fmt,) = [p for p in parameters if p["name"] == "format"]
        assert fmt["required"] is False
        assert fmt["schema"] == {"$ref": "#/components/schemas/ReportFormat", "default": "json"}


def test_documents_are_binary_and_a_statement_may_be_a_form_file(doc):
    for path in ("/api/v1/invoices/{invoice_id}/pdf", "/api/v1/bookings.ics"):
        content = operation(doc, path, "get")["responses"]["200"]["content"]
        assert [media["schema"] for media in content.values()] == [
            {"type": "string", "format": "binary"}
        ]
    body = operation(doc, "/api/v1/payments/import", "post")["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert body["application/octet-stream"]["schema"]["format"] == "binary"


def test_a_conflict_says_what_is_in_the_way(doc):
    conflict = operation(doc, "/api/v1/bookings", "post")["responses"]["409"]
    schema = conflict["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ConflictProblem"}
    extra = doc["components"]["schemas"]["ConflictProblem"]["allOf"][1]["properties"]
    assert {"conflicting_period", "conflicts", "current_status"} <= set(extra)


def test_every_operation_says_who_may_call_it(doc):
    for path, method, op in operations(doc):
        assert op["description"], (path, method)
    publish = operation(doc, "/api/v1/listings", "post")["description"]
    assert "`manager`" in publish and "Idempotency-Key" in publish
    assert "Anyone" in operation(doc, "/api/v1/auth/token", "post")["description"]


def test_every_body_has_an_example_the_api_accepts(doc):
    for path, method, op in operations(doc):
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        if media is not None:
            assert "example" in media, (path, method)
    for model, example in BODY_EXAMPLES.items():
        model.model_validate(example)  # a ValidationError names the model and the field


MAIN_VIEWS = {
    ("/api/v1/listings", "get"),
    ("/api/v1/listings/{listing_id}", "get"),
    ("/api/v1/bookings", "get"),
    ("/api/v1/bookings", "post"),
    ("/api/v1/bookings/{booking_id}", "get"),
    ("/api/v1/invoices", "get"),
    ("/api/v1/invoices/{invoice_id}", "get"),
}


def test_the_main_views_show_an_example_of_what_they_answer(doc):
    """Listings, bookings and invoices: the example in the document is exactly what the model
    serialises (every field it always sends) and matches the response schema served."""
    for path, method in MAIN_VIEWS:
        (success,) = (r for s, r in operation(doc, path, method)["responses"].items() if s < "300")
        assert "example" in success["content"]["application/json"], (path, method)
    validator = jsonschema.Draft202012Validator
    for model, example in RESPONSE_EXAMPLES.items():
        assert model.model_validate(example).model_dump(mode="json") == example, model
        schema = {"$ref": f"#/components/schemas/{model.__name__}", "components": doc["components"]}
        validator(schema).validate(example)


def test_a_date_only_start_is_said_to_be_a_paris_day(doc):
    assert "Europe/Paris" in doc["info"]["description"]
    request = doc["components"]["schemas"]["BookingRequest"]["properties"]["start"]
    assert "Europe/Paris" in request["description"]


def test_bodiless_routes_have_no_request_body(doc):
    for path, method, op in operations(doc):
        if method in {"get", "delete"}:
            assert "requestBody" not in op, (path, method)


def test_responses_reference_their_schemas(doc):
    ok = operation(doc, "/api/v1/listings", "get")["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ListingPage"
    }
    created = operation(doc, "/api/v1/listings", "post")["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ListingView"
    }


def test_errors_are_problem_json(doc):
    invalid = operation(doc, "/api/v1/listings", "post")["responses"]["422"]
    assert invalid["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def test_query_parameters_use_their_wire_names(doc):
    listing_params = {p["name"] for p in operation(doc, "/api/v1/listings", "get")["parameters"]}
    assert {"q", "category", "near", "radius_km", "available_from", "cursor"} <= listing_params
    window = operation(doc, "/api/v1/listings/{listing_id}/availability", "get")["parameters"]
    required_query = {p["name"] for p in window if p["in"] == "query" and p["required"]}
    assert required_query == {"from", "to"}


def test_idempotent_routes_document_the_idempotency_key(doc):
    params = operation(doc, "/api/v1/listings", "post")["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)


def test_protected_routes_require_the_bearer_token(doc):
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, method, op in operations(doc):
        if (path, method) in PUBLIC:
            continue
        assert op["security"] == [{"bearer": []}], (path, method)
        assert "401" in op["responses"], (path, method)


@pytest.mark.parametrize(("path", "method"), sorted(PUBLIC))
def test_public_routes_need_no_token(doc, path, method):
    op = operation(doc, path, method)
    assert "security" not in op
    # no "missing or invalid token"; the token route's own 401 (wrong password, missing
    # second factor) is documented
    assert op["responses"].get("401", {}).get("description") != "Missing or invalid token"
    assert "security" not in doc  # no global requirement either


def test_every_operation_has_a_unique_operation_id(doc):
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(ids) == len(set(ids))


def test_the_statement_of_account_documents_from_as_it_answers_it(doc):
    # the answer says `from` (serialization alias): the document must not say `from_`
    statement = doc["components"]["schemas"]["StatementOfAccount"]
    assert "from" in statement["properties"] and "from_" not in statement["properties"]
    assert "from" in statement["required"]


def test_a_settlement_is_a_proposal_each_party_accepts_or_declines(doc):
    paths = doc["paths"]
    proposed = paths["/api/v1/settlements"]["post"]["responses"]
    assert proposed["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SettlementView"
    )
    assert "200" not in proposed  # never again a netting applied at once
    for action in ("accept", "decline"):
        assert "post" in paths[f"/api/v1/settlements/{{settlement_id}}/{action}"]
    assert "post" in paths["/api/v1/settlements/preview"]
    assert "post" in paths["/api/v1/obligations/{transfer_id}/paid"]
    status = doc["components"]["schemas"]["NettingStatus"]["enum"]
    assert set(status) == {"proposed", "effective", "declined", "expired", "void"}
