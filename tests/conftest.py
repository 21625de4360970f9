"""Fixtures shared by the suite: real RabbitMQ vhosts, real databases, the real stack."""

from __future__ import annotations

import uuid
import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet  # noqa: E402

# nameko's workers run on eventlet: the test process is patched the way `mutualis serve` is
eventlet.monkey_patch()

import pytest  # noqa: E402

from tests.support import PostgresDatabase, Stack  # noqa: E402
from tests.support.stack import Vhosts, wait_for_stops  # noqa: E402


@pytest.hookimpl(trylast=True)  # after pytest groups the tests by the stack they use
def pytest_collection_modifyitems(items):
    """Tests that fuzz the session's stack (the `fuzzes_stack` mark) run after every other
    test: what they leave behind is anyone's guess, and no test sees it."""
    fuzzing = [item for item in items if item.get_closest_marker("fuzzes_stack")]
    if fuzzing:
        items[:] = [item for item in items if item not in fuzzing] + fuzzing


@pytest.fixture(scope="session", autouse=True)
def stacks_stopped():
    """The stacks stopped in the background (`Stack.running`) have all stopped by the end
    of the session, their processes gone, vhosts deleted and databases dropped; a stop that
    failed fails the session here."""
    yield
    wait_for_stops()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory):
    """The whole system through its HTTP gateway, once on each database backend."""
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    with Stack(request.param, workdir).running() as running:
        yield running


@pytest.fixture(scope="session")
def vhosts():
    """Where each test's vhost comes from, and goes back to, without the test waiting."""
    made = Vhosts()
    yield made
    made.close()


@pytest.fixture
def vhost(vhosts):
    """A RabbitMQ vhost of the test's own, empty."""
    host = vhosts.take()
    yield host
    vhosts.give_back(host)


@pytest.fixture
def pg_database(request):
    """A fresh, empty PostgreSQL database for one test."""
    # a random suffix: two checkouts' suites may run at once against the same server
    db = PostgresDatabase(
        f"mutualis_t_{request.node.name[:30].lower()}_{uuid.uuid4().hex[:6]}".replace("[", "_")
        .replace("]", "")
        .replace("-", "_")
    )
    yield db
    db.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database for one test, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return request.getfixturevalue("pg_database").url


@pytest.fixture
def listings_db(database_url):
    """The listings schema (it carries the outbox and processed_events), on each backend."""
    from tests.support.schema import migrated

    migrated("listings", database_url)
    return database_url
