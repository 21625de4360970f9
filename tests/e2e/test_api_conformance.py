"""The contract is the API (issue 21): Schemathesis generates requests from the OpenAPI
document the gateway serves — every route, including routes added later, with no list kept
here — and checks each answer of the whole stack: no server error, a documented status, a
documented media type and a body that matches the documented schema. One bounded run per
role (and one without a token), on the session's PostgreSQL stack after every other test
of it (the `fuzzes_stack` mark): the generated requests publish, book, run billing and net
periods at random, which no other test must see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Stack

# the session's stack on PostgreSQL, last (tests/conftest.py moves these tests to the end)
pytestmark = [
    pytest.mark.parametrize("stack", ["postgresql"], indirect=True),
    pytest.mark.fuzzes_stack,
]

# a demo account of every role (the coordinator's routes are the operator's too); None: no
# token (the public routes, and 401 everywhere else)
ROLES = {
    "anonymous": None,
    "agent": "agent.42095@mutualis-demo.fr",
    "manager": "manager.42044@mutualis-demo.fr",
    "finance": "finance.42218@mutualis-demo.fr",
    "operator": "operator@mutualis-demo.fr",
}
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# examples per operation and role: ~65 operations × 5 roles × (examples + 1) requests stay
# within about two minutes on 2 cores; SCHEMATHESIS_MAX_EXAMPLES explores more by hand
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "3"))
# a fixed seed by default, so that a red run is the same red run again; any other explores
SEED = os.environ.get("SCHEMATHESIS_SEED", "21")


@pytest.fixture(scope="module")
def fuzzed_stack(stack):
    """The session's stack, which no test uses after these (its data are anyone's by then);
    the other tests' data are there too, which the answers must conform with as well."""
    return stack


def run_schemathesis(stack: Stack, role: str, email: str | None, reports: Path) -> str:
    """Runs Schemathesis as a role against the served document; its output when it found
    something (the exit status says), else ''."""
    headers = []
    if email is not None:
        token = stack.login(email).headers["Authorization"]
        headers = ["-H", f"Authorization: {token}"]
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{stack.url}/api/openapi.json",
            *headers,
            "--checks",
            CHECKS,
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            SEED,
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--warnings",
            "off",
            "--report",
            "junit",
            "--report-junit-path",
            str(reports / f"schemathesis-{role}.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=reports,  # its example database stays out of the checkout
        env={**os.environ, "NO_COLOR": "1"},
    )
    return "" if done.returncode == 0 else done.stdout[-20_000:] + done.stderr[-5_000:]


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_is_the_documented_one(fuzzed_stack, role, tmp_path):
    found = run_schemathesis(fuzzed_stack, role, ROLES[role], tmp_path)
    assert not found, f"Schemathesis, as {role}:\n{found}"
