"""Fixtures shared by the suite: real RabbitMQ vhosts, real databases, the real stack."""

from __future__ import annotations

import os
import uuid
import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet  # noqa: E402

# nameko's workers run on eventlet: the test process is patched the way `mutualis serve` is
eventlet.monkey_patch()

if os.environ.get("PYTEST_XDIST_WORKER"):
    import execnet.gateway_base

    # A pytest-xdist worker receives its tests on execnet's thread, started before the
    # patching: the lock and event it hands them over with must be the OS's, or the worker
    # waits on a green event that thread can never wake.
    os_threading = eventlet.patcher.original("threading")
    execnet.gateway_base.MainThreadOnlyExecModel.RLock = lambda self: os_threading.RLock()
    execnet.gateway_base.MainThreadOnlyExecModel.Event = lambda self: os_threading.Event()

import pytest  # noqa: E402

from tests.support import PostgresDatabase, Stack  # noqa: E402
from tests.support.stack import Vhosts, wait_for_stops  # noqa: E402


def pytest_itemcollected(item):
    """Under pytest-xdist (`make test`: `-n 2 --dist loadgroup`), the tests that share a
    stack run in the same worker, so that each stack starts once in the whole run: the
    session's stack on each backend is one group, a module's own stack (on each backend it
    is started on) another; the other tests go to whichever worker is free."""
    group = stack_group(item)
    if group is not None:
        item.add_marker(pytest.mark.xdist_group(group))


def stack_group(item) -> str | None:
    """The group of the tests sharing `item`'s stack: the session's stack on its backend,
    else its module's fixtures (a module's own stack, on its backend, if parametrized);
    None when it shares nothing."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    if "stack" in params:
        return f"stack-{params['stack']}"
    module_scoped = [
        name
        for name, definitions in item._fixtureinfo.name2fixturedefs.items()
        if definitions[-1].scope == "module"
    ]
    if not module_scoped:
        return None
    backends = [str(params[name]) for name in module_scoped if name in params]
    return "-".join([item.nodeid.split("::")[0], *backends])


@pytest.hookimpl(trylast=True)  # after pytest groups the tests by the stack they use
def pytest_collection_modifyitems(items):
    """Tests that fuzz the session's stack (the `fuzzes_stack` mark) run after every other
    test: what they leave behind is anyone's guess, and no test sees it. Under pytest-xdist
    they end their stack's group, whose tests one worker runs in this order."""
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
