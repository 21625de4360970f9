"""What every refusal of the API looks like: an RFC 9457 problem+json that says what is wrong."""

from __future__ import annotations

PROBLEM_JSON = "application/problem+json"


def assert_problem(answer, status: int) -> dict:
    """Checks that `answer` is a complete problem of `status`, and returns its body."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == PROBLEM_JSON
    problem = answer.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(problem)
    assert problem["status"] == status
    assert problem["type"] and problem["title"] and problem["detail"]
    assert isinstance(problem["errors"], list)
    return problem
